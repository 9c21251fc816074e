//! The RBAC authorizer, as kube-apiserver's: a request is allowed when a rule of a Role or
//! ClusterRole bound to its user (by name, group or ServiceAccount) grants its verb on its
//! resource, subresource, API group and name, or its non-resource path; `system:masters`
//! is allowed everything. Denials are the API server's 403 with its message.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::by_kind;
use crate::apiserver::auth::{UserInfo, service_account_username};
use crate::apiserver::registry::Api;
use serde_json::{Value, json};
use std::sync::Arc;

const RBAC: &str = "rbac.authorization.k8s.io/v1";

/// What a request does, as `authorizer.Attributes`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Attributes {
    pub(crate) verb: String,
    pub(crate) group: String,
    pub(crate) resource: String,
    pub(crate) subresource: String,
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// Set for non-resource requests (`/api`, `/healthz`, ...).
    pub(crate) path: Option<String>,
}

impl Attributes {
    pub(crate) fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        subresource: &str,
        namespace: &str,
        name: &str,
    ) -> Self {
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
            path: None,
        }
    }

    pub(crate) fn non_resource(verb: &str, path: &str) -> Self {
        Attributes {
            verb: verb.into(),
            path: Some(path.into()),
            ..Default::default()
        }
    }

    /// `authorizer.Attributes` as a SubjectAccessReview spells them.
    pub(crate) fn from_review(spec: &Value) -> Option<Self> {
        let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
        if let Some(r) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
            return Some(Attributes {
                verb: s(r, "verb"),
                group: s(r, "group"),
                resource: s(r, "resource"),
                subresource: s(r, "subresource"),
                namespace: s(r, "namespace"),
                name: s(r, "name"),
                path: None,
            });
        }
        let n = spec
            .get("nonResourceAttributes")
            .filter(|v| v.is_object())?;
        Some(Attributes::non_resource(&s(n, "verb"), &s(n, "path")))
    }

    /// `User "u" cannot list resource "pods" in API group "" in the namespace "demo"`.
    fn denial(&self, user: &str) -> String {
        if let Some(path) = &self.path {
            return format!("User {user:?} cannot {} path {path:?}", self.verb);
        }
        let mut resource = self.resource.clone();
        if !self.subresource.is_empty() {
            resource = format!("{resource}/{}", self.subresource);
        }
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", self.namespace)
        };
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} {scope}",
            self.verb, self.group
        )
    }

    /// The 403 a denied request gets.
    pub(crate) fn forbidden(&self, user: &str) -> ApiError {
        let why = self.denial(user);
        let gr = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        let message = match (gr.is_empty(), self.name.is_empty()) {
            (true, _) => format!("forbidden: {why}"),
            (false, true) => format!("{gr} is forbidden: {why}"),
            (false, false) => format!("{gr} {:?} is forbidden: {why}", self.name),
        };
        let mut details = json!({"kind": self.resource});
        if !self.name.is_empty() {
            details["name"] = json!(self.name);
        }
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        ApiError::new(403, "Forbidden", message).with_details(details)
    }
}

/// Ok when `user` may do `a`; the API server's 403 otherwise.
pub(crate) fn authorize(api: &Api, user: &UserInfo, a: &Attributes) -> Result<(), ApiError> {
    if user.is_master() || decide(api, user, a).is_some() {
        Ok(())
    } else {
        Err(a.forbidden(&user.username))
    }
}

/// Why `user` may do `a` (`RBAC: allowed by ...`), or `None`.
pub(crate) fn decide(api: &Api, user: &UserInfo, a: &Attributes) -> Option<String> {
    applicable(api, user, &a.namespace)
        .into_iter()
        .find(|g| g.rules.iter().any(|r| rule_allows(r, a)))
        .map(|g| format!("RBAC: allowed by {}", g.by))
}

/// The rules of one binding that applies to a user, with how to name it.
pub(crate) struct Grant {
    pub(crate) by: String,
    pub(crate) rules: Vec<Value>,
}

/// Every grant that applies to `user` in `namespace` (cluster bindings always; role
/// bindings of that namespace when it is set).
pub(crate) fn applicable(api: &Api, user: &UserInfo, namespace: &str) -> Vec<Grant> {
    let mut out = Vec::new();
    let store = &api.store;
    let crb = by_kind(RBAC, "ClusterRoleBinding").expect("served");
    for b in store.list(crb, None).0 {
        if let Some(g) = grant(api, &b, "", user) {
            out.push(g);
        }
    }
    if !namespace.is_empty() {
        let rb = by_kind(RBAC, "RoleBinding").expect("served");
        for b in store.list(rb, Some(namespace)).0 {
            if let Some(g) = grant(api, &b, namespace, user) {
                out.push(g);
            }
        }
    }
    out
}

fn grant(api: &Api, binding: &Arc<Value>, ns: &str, user: &UserInfo) -> Option<Grant> {
    let subject = binding["subjects"]
        .as_array()?
        .iter()
        .find(|s| subject_matches(s, ns, user))?;
    let role_ref = &binding["roleRef"];
    let role_kind = role_ref["kind"].as_str()?;
    let role_name = role_ref["name"].as_str()?;
    let (r, role_ns) = match role_kind {
        "ClusterRole" => (by_kind(RBAC, "ClusterRole")?, ""),
        "Role" if !ns.is_empty() => (by_kind(RBAC, "Role")?, ns),
        _ => return None,
    };
    let role = api.store.get(r, role_ns, role_name)?;
    let binding_kind = if ns.is_empty() {
        "ClusterRoleBinding"
    } else {
        "RoleBinding"
    };
    let binding_name = binding["metadata"]["name"].as_str().unwrap_or_default();
    let binding_ref = if ns.is_empty() {
        format!("{binding_kind} {binding_name:?}")
    } else {
        format!("{binding_kind} \"{binding_name}/{ns}\"")
    };
    Some(Grant {
        by: format!(
            "{binding_ref} of {role_kind} {role_name:?} to {} {:?}",
            subject["kind"].as_str().unwrap_or_default(),
            subject["name"].as_str().unwrap_or_default()
        ),
        rules: role["rules"].as_array().cloned().unwrap_or_default(),
    })
}

fn subject_matches(s: &Value, binding_ns: &str, user: &UserInfo) -> bool {
    let name = s["name"].as_str().unwrap_or_default();
    match s["kind"].as_str() {
        Some("User") => user.username == name,
        Some("Group") => user.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let ns = s["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            !ns.is_empty() && user.username == service_account_username(ns, name)
        }
        _ => false,
    }
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn has(v: &Value, want: &str) -> bool {
    strings(v).any(|s| s == "*" || s == want)
}

/// Whether one PolicyRule grants `a` (rbac's `RuleAllows`).
pub(crate) fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    if !has(&rule["verbs"], &a.verb) {
        return false;
    }
    if let Some(path) = &a.path {
        return strings(&rule["nonResourceURLs"]).any(|u| {
            u == "*" || u == path || u.strip_suffix('*').is_some_and(|p| path.starts_with(p))
        });
    }
    if !has(&rule["apiGroups"], &a.group) {
        return false;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let resource_ok = strings(&rule["resources"]).any(|r| {
        r == "*"
            || r == combined
            || (!a.subresource.is_empty() && r == format!("*/{}", a.subresource))
    });
    let names = strings(&rule["resourceNames"]).collect::<Vec<_>>();
    resource_ok && (names.is_empty() || names.contains(&a.name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes::resource(verb, "", resource, sub, "demo", name)
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let rule =
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]});
        assert!(rule_allows(&rule, &attrs("list", "pods", "", "")));
        assert!(rule_allows(&rule, &attrs("get", "pods", "log", "p")));
        assert!(!rule_allows(&rule, &attrs("delete", "pods", "", "p")));
        assert!(!rule_allows(&rule, &attrs("get", "pods", "exec", "p")));
        assert!(!rule_allows(&rule, &attrs("get", "services", "", "s")));
        let apps = Attributes::resource("get", "apps", "deployments", "", "demo", "d");
        assert!(!rule_allows(&rule, &apps));
        let star = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/scale"]});
        assert!(rule_allows(&star, &apps.clone().with_sub("scale")));
        assert!(!rule_allows(&star, &apps));
        let named = json!({"verbs": ["get", "create"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["c"]});
        assert!(rule_allows(&named, &attrs("get", "configmaps", "", "c")));
        assert!(!rule_allows(&named, &attrs("get", "configmaps", "", "d")));
        assert!(!rule_allows(&named, &attrs("create", "configmaps", "", "")));
        let urls = json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/api/*"]});
        assert!(rule_allows(
            &urls,
            &Attributes::non_resource("get", "/api/v1")
        ));
        assert!(!rule_allows(
            &urls,
            &Attributes::non_resource("get", "/apis")
        ));
    }

    impl Attributes {
        fn with_sub(mut self, sub: &str) -> Self {
            self.subresource = sub.into();
            self
        }
    }

    #[test]
    fn denials_read_as_the_api_servers() {
        let user = "system:serviceaccount:demo:default";
        let e = attrs("list", "pods", "", "").forbidden(user);
        assert_eq!(
            e.message,
            "pods is forbidden: User \"system:serviceaccount:demo:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"demo\""
        );
        let e = Attributes::resource("get", "apps", "deployments", "", "", "d").forbidden(user);
        assert_eq!(
            e.message,
            "deployments.apps \"d\" is forbidden: User \"system:serviceaccount:demo:default\" cannot get resource \"deployments\" in API group \"apps\" at the cluster scope"
        );
        let e = Attributes::non_resource("get", "/metrics").forbidden("u");
        assert_eq!(
            e.message,
            "forbidden: User \"u\" cannot get path \"/metrics\""
        );
        assert_eq!(e.code, 403);
    }
}
