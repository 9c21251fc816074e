//! Validation of the access kinds, as kube-apiserver's: RBAC roles (policy rules) and
//! bindings (role references, subjects), and PodDisruptionBudgets.

use crate::apimachinery::errors::Cause;
use serde_json::Value;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn empty(v: &Value) -> bool {
    v.as_array().is_none_or(Vec::is_empty)
}

fn required(field: String, why: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired",
        field,
        message: format!("Required value: {why}"),
    }
}

/// The checks of a Role or ClusterRole, RoleBinding or ClusterRoleBinding, or
/// PodDisruptionBudget.
pub(super) fn validate(kind: &str, obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    match kind {
        "Role" | "ClusterRole" => {
            for (i, rule) in obj["rules"].as_array().into_iter().flatten().enumerate() {
                check_rule(rule, &format!("rules[{i}]"), kind == "Role", causes);
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => check_binding(kind, obj, old, causes),
        "PodDisruptionBudget" => check_budget(&obj["spec"], causes),
        _ => {}
    }
}

/// Why an RBAC name is not a valid path segment (`path.IsValidPathSegmentName`), if it
/// is not: RBAC names may hold colons, as `system:basic-user`.
pub(super) fn path_segment_problem(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    ["/", "%"]
        .iter()
        .find(|c| name.contains(**c))
        .map(|c| format!("may not contain '{c}'"))
}

fn check_rule(rule: &Value, path: &str, namespaced: bool, causes: &mut Vec<Cause>) {
    if empty(&rule["verbs"]) {
        causes.push(required(
            format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    if !empty(&rule["nonResourceURLs"]) {
        let urls = rule["nonResourceURLs"].to_string();
        if namespaced {
            causes.push(Cause::invalid(
                format!("{path}.nonResourceURLs"),
                &urls,
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !empty(&rule["apiGroups"])
            || !empty(&rule["resources"])
            || !empty(&rule["resourceNames"])
        {
            causes.push(Cause::invalid(
                format!("{path}.nonResourceURLs"),
                &urls,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return;
    }
    if empty(&rule["apiGroups"]) {
        causes.push(required(
            format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if empty(&rule["resources"]) {
        causes.push(required(
            format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
}

fn check_binding(kind: &str, obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let role_ref = &obj["roleRef"];
    if role_ref["apiGroup"] != RBAC_GROUP {
        causes.push(Cause::unsupported(
            "roleRef.apiGroup",
            role_ref["apiGroup"].as_str().unwrap_or_default(),
            &[RBAC_GROUP],
        ));
    }
    let kinds: &[&str] = if kind == "RoleBinding" {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    let role_kind = role_ref["kind"].as_str().unwrap_or_default();
    if !kinds.contains(&role_kind) {
        causes.push(Cause::unsupported("roleRef.kind", role_kind, kinds));
    }
    if role_ref["name"].as_str().is_none_or(str::is_empty) {
        causes.push(Cause::required("roleRef.name"));
    }
    if let Some(old) = old
        && old["roleRef"] != *role_ref
    {
        causes.push(Cause::invalid(
            "roleRef",
            role_ref.to_string(),
            "cannot change roleRef",
        ));
    }
    for (i, s) in obj["subjects"].as_array().into_iter().flatten().enumerate() {
        check_subject(s, &format!("subjects[{i}]"), kind == "RoleBinding", causes);
    }
}

fn check_subject(s: &Value, path: &str, namespaced: bool, causes: &mut Vec<Cause>) {
    if s["name"].as_str().is_none_or(str::is_empty) {
        causes.push(Cause::required(format!("{path}.name")));
    }
    let api_group = s["apiGroup"].as_str().unwrap_or_default();
    match s["kind"].as_str().unwrap_or_default() {
        "ServiceAccount" => {
            if !api_group.is_empty() {
                causes.push(Cause::unsupported(
                    format!("{path}.apiGroup"),
                    api_group,
                    &[""],
                ));
            }
            if !namespaced && s["namespace"].as_str().is_none_or(str::is_empty) {
                causes.push(Cause::required(format!("{path}.namespace")));
            }
        }
        "User" | "Group" => {
            if api_group != RBAC_GROUP {
                causes.push(Cause::unsupported(
                    format!("{path}.apiGroup"),
                    api_group,
                    &[RBAC_GROUP],
                ));
            }
        }
        other => causes.push(Cause::unsupported(
            format!("{path}.kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
}

fn check_budget(spec: &Value, causes: &mut Vec<Cause>) {
    if !spec["minAvailable"].is_null() && !spec["maxUnavailable"].is_null() {
        causes.push(Cause::invalid(
            "spec",
            "{...}",
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for f in ["minAvailable", "maxUnavailable"] {
        let v = &spec[f];
        let bad = match v {
            Value::Number(n) => n.as_i64().is_none_or(|n| n < 0),
            Value::String(s) => s
                .strip_suffix('%')
                .and_then(|p| p.parse::<u32>().ok())
                .is_none_or(|p| p > 100),
            _ => false,
        };
        if bad {
            causes.push(Cause::invalid(
                format!("spec.{f}"),
                v,
                "must be a non-negative integer or a percentage between 0% and 100%",
            ));
        }
    }
    if let Some(p) = spec["unhealthyPodEvictionPolicy"].as_str()
        && !["IfHealthyBudget", "AlwaysAllow"].contains(&p)
    {
        causes.push(Cause::unsupported(
            "spec.unhealthyPodEvictionPolicy",
            p,
            &["AlwaysAllow", "IfHealthyBudget"],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(kind: &str, obj: Value) -> Vec<String> {
        let mut causes = Vec::new();
        validate(kind, &obj, None, &mut causes);
        causes.into_iter().map(|c| c.field).collect()
    }

    #[test]
    fn rules_bindings_and_budgets_are_checked_as_the_api_server_does() {
        let role = json!({"rules": [{"verbs": [], "apiGroups": [""], "resources": ["pods"]}, {"verbs": ["get"], "nonResourceURLs": ["/x"]}]});
        assert_eq!(
            fields("Role", role.clone()),
            ["rules[0].verbs", "rules[1].nonResourceURLs"]
        );
        assert_eq!(fields("ClusterRole", role), ["rules[0].verbs"]);
        let binding = json!({
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "default"}, {"kind": "User", "name": "u"}],
        });
        assert_eq!(
            fields("RoleBinding", binding.clone()),
            ["subjects[1].apiGroup"]
        );
        assert_eq!(
            fields("ClusterRoleBinding", binding),
            [
                "roleRef.kind",
                "subjects[0].namespace",
                "subjects[1].apiGroup"
            ]
        );
        assert_eq!(
            fields(
                "PodDisruptionBudget",
                json!({"spec": {"minAvailable": 1, "maxUnavailable": "120%"}})
            ),
            ["spec", "spec.maxUnavailable"]
        );
        assert!(
            fields(
                "PodDisruptionBudget",
                json!({"spec": {"minAvailable": "50%"}})
            )
            .is_empty()
        );
    }
}
