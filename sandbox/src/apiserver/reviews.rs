//! Answers to `kubectl auth can-i` and `kubectl auth whoami`: the sandbox has one user, the
//! holder of its token, who may do everything.

use crate::apimachinery::errors::{ApiError, Cause};
use crate::apimachinery::resources::Resource;
use serde_json::{Value, json};

/// The user the sandbox's bearer token authenticates as.
pub const USER: &str = "hk8s-sandbox-admin";

const REASON: &str = "the hk8s sandbox has a single user, who may do everything";

/// The review `request` asked for, with its status filled in.
pub fn answer(r: &Resource, request: Value) -> Result<Value, ApiError> {
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = match r.kind {
        "SelfSubjectAccessReview" => {
            let attributes = spec
                .get("resourceAttributes")
                .or_else(|| spec.get("nonResourceAttributes"));
            if attributes.is_none() {
                return Err(ApiError::invalid(
                    r,
                    "",
                    &[Cause {
                        reason: "FieldValueRequired",
                        field: "spec.resourceAttributes".into(),
                        message: "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
                    }],
                ));
            }
            json!({"allowed": true, "reason": REASON})
        }
        "SelfSubjectRulesReview" => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        _ => json!({"userInfo": {
            "username": USER,
            "groups": ["system:masters", "system:authenticated"],
        }}),
    };
    Ok(json!({
        "kind": r.kind,
        "apiVersion": r.api_version(),
        "metadata": {"creationTimestamp": null},
        "spec": spec,
        "status": status,
    }))
}
