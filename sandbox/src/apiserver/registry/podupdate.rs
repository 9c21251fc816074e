//! kube-apiserver's `ValidatePodUpdate`: a pod's spec is fixed once created except for the
//! container images, a shorter activeDeadlineSeconds, added tolerations, removed scheduling
//! gates and a negative terminationGracePeriodSeconds set to 1. Ephemeral containers change
//! only through the `ephemeralcontainers` subresource, so through the pod they are fixed too.

use crate::apimachinery::errors::Cause;
use serde_json::{Map, Value};

/// The message's list of what may change, as upstream's `updatablePodSpecFields`.
const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,\
`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),\
`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// The causes a PUT, PATCH or apply of a pod's main resource fails with.
pub(super) fn check_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let (old, new) = (&old["spec"], &new["spec"]);
    for key in ["containers", "initContainers"] {
        if !check_containers(&old[key], &new[key], &format!("spec.{key}"), causes) {
            return;
        }
    }
    if !check_deadline(old, new, causes) {
        return;
    }
    check_tolerations(&old["tolerations"], &new["tolerations"], causes);
    check_gates(&old["schedulingGates"], &new["schedulingGates"], causes);
    let old = normalized(old);
    let munged = normalized(&munge(&old, normalized(new)));
    if munged != old {
        causes.push(Cause {
            reason: "FieldValueForbidden",
            field: "spec".into(),
            message: format!(
                "Forbidden: pod updates may not change fields other than {UPDATABLE}\n{}",
                spec_diff(&old, &munged)
            ),
        });
    }
}

/// `ValidateContainerUpdates`: as many containers as before, each with an image; false
/// stops the checks, as upstream does.
fn check_containers(old: &Value, new: &Value, field: &str, causes: &mut Vec<Cause>) -> bool {
    let len = |v: &Value| v.as_array().map_or(0, Vec::len);
    if len(old) != len(new) {
        causes.push(forbidden(
            field,
            "pod updates may not add or remove containers",
        ));
        return false;
    }
    for (i, c) in new.as_array().into_iter().flatten().enumerate() {
        let image = c["image"].as_str().unwrap_or_default();
        if image.is_empty() {
            causes.push(Cause::required(format!("{field}[{i}].image")));
        } else if image.trim() != image {
            causes.push(Cause::invalid(
                format!("{field}[{i}].image"),
                format!("{image:?}"),
                "must not have leading or trailing whitespace",
            ));
        }
    }
    true
}

/// activeDeadlineSeconds may be set, or lowered, never raised or removed.
fn check_deadline(old: &Value, new: &Value, causes: &mut Vec<Cause>) -> bool {
    let field = "spec.activeDeadlineSeconds";
    let (before, after) = (&old["activeDeadlineSeconds"], &new["activeDeadlineSeconds"]);
    match (before.as_i64(), after.as_i64()) {
        (_, Some(n)) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            causes.push(Cause::invalid(
                field,
                n,
                "must be between 0 and 2147483647, inclusive",
            ));
            false
        }
        (Some(o), Some(n)) if o < n => {
            causes.push(Cause::invalid(
                field,
                n,
                "must be less than or equal to previous value",
            ));
            false
        }
        (Some(_), None) => {
            causes.push(Cause::invalid(
                field,
                "null",
                "must not update from a positive integer to nil value",
            ));
            true
        }
        _ => true,
    }
}

/// Every existing toleration stays, up to its tolerationSeconds.
fn check_tolerations(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let without_seconds = |t: &Value| {
        let mut t = normalized(t);
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    let new: Vec<Value> = new
        .as_array()
        .into_iter()
        .flatten()
        .map(without_seconds)
        .collect();
    let kept = old
        .as_array()
        .into_iter()
        .flatten()
        .all(|o| new.contains(&without_seconds(o)));
    if !kept {
        causes.push(forbidden(
            "spec.tolerations",
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
}

/// Scheduling gates may only be removed.
fn check_gates(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|g| g["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let before = names(old);
    for (i, gate) in names(new).iter().enumerate() {
        if !before.contains(gate) {
            causes.push(forbidden(
                &format!("spec.schedulingGates[{i}].name"),
                &format!("only deletion is allowed, but found new scheduling gate '{gate}'"),
            ));
        }
    }
}

/// The new spec with what may change set back to the old values.
fn munge(old: &Value, mut new: Value) -> Value {
    for key in ["containers", "initContainers"] {
        let images: Vec<Value> = old[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["image"].clone())
            .collect();
        if let Some(list) = new[key].as_array_mut() {
            for (c, image) in list.iter_mut().zip(images) {
                c["image"] = image;
            }
        }
    }
    let grace = "terminationGracePeriodSeconds";
    if old[grace].as_i64().is_some_and(|g| g < 0) && new[grace] == 1 {
        new[grace] = old[grace].clone();
    }
    if let Some(spec) = new.as_object_mut() {
        for key in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old.get(key) {
                Some(v) => spec.insert(key.into(), v.clone()),
                None => spec.remove(key),
            };
        }
    }
    new
}

/// Nulls, empty lists and empty objects dropped, as `Semantic.DeepEqual` treats nil and
/// empty alike.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// The changed fields, in the shape of the diff upstream appends (Go field names).
fn spec_diff(old: &Value, new: &Value) -> String {
    let empty = Map::new();
    let (o, n) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut lines = vec!["  core.PodSpec{".to_string()];
    let mut identical = 0;
    for key in keys {
        if o.get(key) == n.get(key) {
            identical += 1;
            continue;
        }
        let field = go_name(key);
        if let Some(v) = o.get(key) {
            lines.push(format!("- \t{field}: {v},"));
        }
        if let Some(v) = n.get(key) {
            lines.push(format!("+ \t{field}: {v},"));
        }
    }
    if identical > 0 {
        lines.push(format!("  \t... // {identical} identical fields"));
    }
    lines.push("  }".into());
    lines.join("\n")
}

fn go_name(key: &str) -> String {
    let mut chars = key.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn forbidden(field: &str, why: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden",
        field: field.into(),
        message: format!("Forbidden: {why}"),
    }
}
