//! Patches as kubectl and kube-rs send them: strategic merge (lists merged by their
//! patchMergeKey), JSON merge and JSON patch.

use super::{Api, Outcome, PatchBody, PatchKind, WriteOpts};
use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::Resource;
use serde_json::{Map, Value};
use std::sync::Arc;

/// The key list items of field `field` merge on, looking at a sample item when the field
/// name alone is ambiguous (`ports` of a container vs of a Service).
pub fn merge_key(field: &str, sample: Option<&Value>) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "hostAliases" => "ip",
        "addresses" if sample.is_some_and(|s| s.get("type").is_some()) => "type",
        "ports" => {
            if sample.is_some_and(|s| s.get("containerPort").is_some()) {
                "containerPort"
            } else {
                "port"
            }
        }
        "metrics" | "containerStatuses" | "initContainerStatuses" => return None,
        _ => return None,
    })
}

/// Primitive lists that merge as sets under strategic merge.
fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

pub(super) fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|x| x.get("$patch").and_then(Value::as_str) != Some("delete"))
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Applies a strategic merge patch to `target` in place.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(pm) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    for (k, pv) in pm {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(del)) = (
                target.get_mut(field).and_then(Value::as_array_mut),
                pv.as_array(),
            ) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        let tm = target.as_object_mut().expect("made an object above");
        if pv.is_null() {
            tm.remove(k);
            continue;
        }
        match (tm.get_mut(k), pv) {
            (Some(tv @ Value::Object(_)), Value::Object(_)) => {
                if pv.get("$patch").and_then(Value::as_str) == Some("delete") {
                    tm.remove(k);
                } else {
                    strategic_merge(tv, pv);
                }
            }
            (Some(Value::Array(tl)), Value::Array(pl)) => {
                if let Some(key) = merge_key(k, pl.first().or(tl.first())) {
                    merge_list(tl, pl, key);
                } else if is_set_list(k) {
                    for x in pl {
                        if !tl.contains(x) {
                            tl.push(x.clone());
                        }
                    }
                } else {
                    *tl = pl.iter().map(strip_directives).collect();
                }
            }
            _ => {
                tm.insert(k.clone(), strip_directives(pv));
            }
        }
    }
}

fn merge_list(target: &mut Vec<Value>, patch: &[Value], key: &str) {
    if patch
        .iter()
        .any(|p| p.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *target = patch
            .iter()
            .filter(|p| p.get("$patch").is_none())
            .map(strip_directives)
            .collect();
        return;
    }
    for item in patch {
        let Some(kv) = item.get(key) else {
            target.push(strip_directives(item));
            continue;
        };
        let pos = target.iter().position(|t| t.get(key) == Some(kv));
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(p) = pos {
                target.remove(p);
            }
            continue;
        }
        match pos {
            Some(p) => strategic_merge(&mut target[p], item),
            None => target.push(strip_directives(item)),
        }
    }
}

/// Applies an RFC 7396 JSON merge patch.
pub fn json_merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let p: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
    json_patch::patch(target, &p).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!("the JSON patch could not be applied: {e}"),
        )
    })
}

impl Api {
    /// Patches an object; an apply patch creates it when missing.
    pub fn patch(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        name: &str,
        subresource: &str,
        patch: PatchBody,
        opts: &WriteOpts,
    ) -> Result<Outcome, ApiError> {
        let PatchBody { kind, body } = patch;
        if kind == PatchKind::Apply {
            return self.apply(r, ns, name, subresource, body, opts);
        }
        self.commit_update(r, ns, name, opts, |cur, taken| {
            let mut new = cur.clone();
            match kind {
                PatchKind::Json => json_patch(&mut new, &body)?,
                PatchKind::Merge => json_merge(&mut new, &body),
                PatchKind::Strategic => {
                    if !body.is_object() {
                        return Err(ApiError::bad_request(
                            "a strategic merge patch must be a JSON object",
                        ));
                    }
                    strategic_merge(&mut new, &body)
                }
                PatchKind::Apply => unreachable!("handled above"),
            }
            Self::finish_update(r, cur, new, subresource, opts, taken, true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let mut live = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}]}});
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
                           {"name": "b", "$patch": "delete"}]}});
        strategic_merge(&mut live, &patch);
        assert_eq!(
            live,
            json!({"spec": {"containers": [{"name": "a", "image": "a:2",
                "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]}})
        );
    }
}
