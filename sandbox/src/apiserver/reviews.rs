//! Access and identity reviews, answered from RBAC as kube-apiserver answers them:
//! `kubectl auth can-i` (SelfSubjectAccessReview, `--list`: SelfSubjectRulesReview),
//! SubjectAccessReview and LocalSubjectAccessReview for any user, and `kubectl auth whoami`
//! (SelfSubjectReview).

use crate::apimachinery::errors::{ApiError, Cause};
use crate::apimachinery::resources::Resource;
use crate::apiserver::auth::UserInfo;
use crate::apiserver::rbac::{self, Attributes};
use crate::apiserver::registry::Api;
use serde_json::{Value, json};

/// The review `request` asked for (at namespace `ns` for local reviews) by `user`, with
/// its status filled in.
pub(crate) fn answer(
    api: &Api,
    user: &UserInfo,
    r: &Resource,
    ns: &str,
    request: Value,
) -> Result<Value, ApiError> {
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = match r.kind {
        "SelfSubjectAccessReview" => access(api, user, r, &spec)?,
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            if r.kind == "LocalSubjectAccessReview"
                && spec["resourceAttributes"]["namespace"].as_str() != Some(ns)
            {
                return Err(ApiError::invalid(
                    r,
                    "",
                    &[Cause::invalid(
                        "spec.resourceAttributes.namespace",
                        format!("{:?}", spec["resourceAttributes"]["namespace"]),
                        "must match metadata.namespace",
                    )],
                ));
            }
            let subject = subject(r, &spec)?;
            access(api, &subject, r, &spec)?
        }
        "SelfSubjectRulesReview" => rules(api, user, spec["namespace"].as_str().unwrap_or("")),
        _ => json!({"userInfo": {
            "username": user.username,
            "uid": if user.uid.is_empty() { Value::Null } else { json!(user.uid) },
            "groups": user.groups,
        }}),
    };
    let mut metadata = json!({"creationTimestamp": null});
    if !ns.is_empty() {
        metadata["namespace"] = json!(ns);
    }
    let mut out = json!({
        "kind": r.kind,
        "apiVersion": r.api_version(),
        "metadata": metadata,
        "spec": spec,
        "status": status,
    });
    if let Some(info) = out["status"]["userInfo"].as_object_mut() {
        info.retain(|_, v| !v.is_null());
    }
    Ok(out)
}

/// The user a SubjectAccessReview asks about.
fn subject(r: &Resource, spec: &Value) -> Result<UserInfo, ApiError> {
    let username = spec["user"].as_str().unwrap_or_default();
    let groups: Vec<String> = spec["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g.as_str().map(String::from))
        .collect();
    if username.is_empty() && groups.is_empty() {
        return Err(ApiError::invalid(
            r,
            "",
            &[Cause {
                reason: "FieldValueRequired",
                field: "spec.user".into(),
                message: "Invalid value: \"\": at least one of user or group must be specified"
                    .into(),
            }],
        ));
    }
    Ok(UserInfo {
        username: username.into(),
        uid: spec["uid"].as_str().unwrap_or_default().into(),
        groups,
    })
}

fn access(api: &Api, user: &UserInfo, r: &Resource, spec: &Value) -> Result<Value, ApiError> {
    let Some(attributes) = Attributes::from_review(spec) else {
        return Err(ApiError::invalid(
            r,
            "",
            &[Cause {
                reason: "FieldValueRequired",
                field: "spec.resourceAttributes".into(),
                message: "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
            }],
        ));
    };
    if user.is_master() {
        return Ok(json!({"allowed": true}));
    }
    Ok(match rbac::decide(api, user, &attributes) {
        Some(reason) => json!({"allowed": true, "reason": reason}),
        None => json!({"allowed": false}),
    })
}

/// What `user` may do in `namespace`: every rule bound to them, as the API server lists it.
fn rules(api: &Api, user: &UserInfo, namespace: &str) -> Value {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for grant in rbac::applicable(api, user, namespace) {
        for rule in grant.rules {
            let pick = |keys: &[&str]| {
                let mut out = json!({});
                for k in keys {
                    if rule[*k].as_array().is_some_and(|a| !a.is_empty()) {
                        out[*k] = rule[*k].clone();
                    }
                }
                out
            };
            if rule["nonResourceURLs"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                non_resource_rules.push(pick(&["verbs", "nonResourceURLs"]));
            } else {
                resource_rules.push(pick(&["verbs", "apiGroups", "resources", "resourceNames"]));
            }
        }
    }
    json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    })
}
