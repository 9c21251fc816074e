//! The `pods/ephemeralcontainers` subresource, as kube-apiserver's `podEphemeralContainersStrategy`:
//! a write through it changes only `spec.ephemeralContainers`, may add ephemeral containers
//! but never change or remove one, and each new one must be a valid debugging container.

use crate::apimachinery::errors::Cause;
use serde_json::Value;

/// The stored pod with only the written `spec.ephemeralContainers` taken from `new`
/// (`dropNonEphemeralContainerUpdates`).
pub(super) fn keep_only_ephemeral(old: &Value, new: &mut Value) {
    let ephemeral = new["spec"]["ephemeralContainers"].take();
    let rv = new["metadata"]["resourceVersion"].take();
    *new = old.clone();
    match ephemeral {
        Value::Null => {
            if let Some(spec) = new["spec"].as_object_mut() {
                spec.remove("ephemeralContainers");
            }
        }
        list => new["spec"]["ephemeralContainers"] = list,
    }
    if !rv.is_null() {
        new["metadata"]["resourceVersion"] = rv;
    }
}

/// `ValidatePodEphemeralContainersUpdate`: existing ephemeral containers stay as they
/// are, new ones have a unique name, an image, a target that exists, and none of the
/// fields an ephemeral container may not set.
pub(super) fn check_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let list = |v: &Value| -> Vec<Value> {
        v["spec"]["ephemeralContainers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (before, after) = (list(old), list(new));
    for o in &before {
        let name = o["name"].as_str().unwrap_or_default();
        let message = match after.iter().find(|n| n["name"] == o["name"]) {
            None => format!("existing ephemeral containers {name:?} may not be removed\n"),
            Some(n) if n != o => {
                format!("existing ephemeral containers {name:?} may not be changed\n")
            }
            Some(_) => continue,
        };
        causes.push(Cause {
            reason: "FieldValueForbidden",
            field: "spec.ephemeralContainers".into(),
            message: format!("Forbidden: {message}"),
        });
    }
    let spec = &new["spec"];
    let names = |key: &str| -> Vec<String> {
        spec[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let mut taken = names("containers");
    taken.extend(names("initContainers"));
    let regular = names("containers");
    for (i, c) in after.iter().enumerate() {
        check_one(
            c,
            &format!("spec.ephemeralContainers[{i}]"),
            &mut taken,
            &regular,
            causes,
        );
    }
}

/// The fields kube-apiserver forbids on an ephemeral container.
const FORBIDDEN: &[&str] = &[
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resizePolicy",
    "restartPolicy",
];

fn check_one(
    c: &Value,
    field: &str,
    taken: &mut Vec<String>,
    regular: &[String],
    causes: &mut Vec<Cause>,
) {
    match c["name"].as_str() {
        None | Some("") => causes.push(Cause::required(format!("{field}.name"))),
        Some(n) if taken.iter().any(|t| t == n) => causes.push(Cause {
            reason: "FieldValueDuplicate",
            field: format!("{field}.name"),
            message: format!("Duplicate value: \"{n}\""),
        }),
        Some(n) => taken.push(n.to_string()),
    }
    if c["image"].as_str().is_none_or(|s| s.trim().is_empty()) {
        causes.push(Cause::required(format!("{field}.image")));
    }
    if let Some(target) = c["targetContainerName"].as_str()
        && !regular.iter().any(|r| r == target)
    {
        causes.push(Cause {
            reason: "FieldValueNotFound",
            field: format!("{field}.targetContainerName"),
            message: format!("Not found: \"{target}\""),
        });
    }
    for key in FORBIDDEN {
        if c.get(*key).is_some_and(|v| !v.is_null()) {
            causes.push(Cause {
                reason: "FieldValueForbidden",
                field: format!("{field}.{key}"),
                message: "Forbidden: cannot be set for an Ephemeral Container".into(),
            });
        }
    }
}
