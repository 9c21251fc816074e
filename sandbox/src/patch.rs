//! Patches as kubectl and kube-rs send them: strategic merge (lists merged by their
//! patchMergeKey), JSON merge, JSON patch, and server-side apply with field managers
//! (`metadata.managedFields`, FieldsV1 sets, 409 on conflicts unless forced).

use crate::error::ApiError;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

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

fn strip_directives(v: &Value) -> Value {
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

// ---- field sets (managedFields) ----

/// A set of owned field paths; each path is a list of FieldsV1 segments (`f:spec`,
/// `k:{"name":"redis"}`), and a path ending in a keyed item owns the item itself.
pub type FieldSet = BTreeSet<Vec<String>>;

const SKIPPED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// The fields an object (or an applied configuration) sets, leaves only.
pub fn field_set(obj: &Value, include_status: bool) -> FieldSet {
    let mut out = FieldSet::new();
    if let Some(m) = obj.as_object() {
        for (k, v) in m {
            if k == "apiVersion" || k == "kind" || (k == "status" && !include_status) {
                continue;
            }
            let path = vec![format!("f:{k}")];
            if k == "metadata" {
                if let Some(mm) = v.as_object() {
                    for (mk, mv) in mm {
                        if SKIPPED_META.contains(&mk.as_str()) {
                            continue;
                        }
                        let mut p = path.clone();
                        p.push(format!("f:{mk}"));
                        collect(mk, mv, p, &mut out);
                    }
                }
                continue;
            }
            collect(k, v, path, &mut out);
        }
    }
    out
}

fn collect(field: &str, v: &Value, path: Vec<String>, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                collect(k, child, p, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            if let Some(key) = merge_key(field, items.first()) {
                for item in items {
                    let Some(kv) = item.get(key) else {
                        out.insert(path.clone());
                        return;
                    };
                    let mut p = path.clone();
                    p.push(format!("k:{}", json!({ key: kv })));
                    out.insert(p.clone());
                    if let Some(m) = item.as_object() {
                        for (ck, cv) in m {
                            let mut cp = p.clone();
                            cp.push(format!("f:{ck}"));
                            collect(ck, cv, cp, out);
                        }
                    }
                }
            } else {
                out.insert(path);
            }
        }
        _ => {
            out.insert(path);
        }
    }
}

/// The value at a field path, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path {
        if let Some(f) = seg.strip_prefix("f:") {
            cur = cur.get(f)?;
        } else if let Some(k) = seg.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).ok()?;
            cur = cur
                .as_array()?
                .iter()
                .find(|item| key.iter().all(|(kk, kv)| item.get(kk) == Some(kv)))?;
        } else {
            return None;
        }
    }
    Some(cur)
}

/// Removes the field at `path` (a map key or a keyed list item).
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parent_path {
        let next = if let Some(f) = seg.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(k) = seg.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(k) else {
                return;
            };
            cur.as_array_mut().and_then(|a| {
                a.iter_mut()
                    .find(|item| key.iter().all(|(kk, kv)| item.get(kk) == Some(kv)))
            })
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(k) = last.strip_prefix("k:")
        && let Ok(key) = serde_json::from_str::<Map<String, Value>>(k)
        && let Some(a) = cur.as_array_mut()
    {
        a.retain(|item| !key.iter().all(|(kk, kv)| item.get(kk) == Some(kv)));
    }
}

/// Renders a field path the way apply conflicts name them: `.spec.containers[name="x"].image`.
pub fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for seg in path {
        if let Some(f) = seg.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = seg.strip_prefix("k:")
            && let Ok(m) = serde_json::from_str::<Map<String, Value>>(k)
        {
            let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    s
}

/// FieldsV1 JSON for a field set.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Value::Object(Map::new());
    for path in set {
        let mut cur = &mut root;
        for seg in path {
            cur = cur
                .as_object_mut()
                .expect("fieldsV1 nodes are objects")
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        if path.last().is_some_and(|s| s.starts_with("k:")) {
            cur.as_object_mut()
                .expect("fieldsV1 nodes are objects")
                .insert(".".into(), json!({}));
        }
    }
    root
}

/// Parses FieldsV1 JSON back into a field set.
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut FieldSet) {
        let Some(m) = v.as_object() else { return };
        let children: Vec<_> = m.iter().filter(|(k, _)| *k != ".").collect();
        if (children.is_empty() || m.contains_key(".")) && !path.is_empty() {
            out.insert(path.clone());
        }
        for (k, child) in children {
            path.push(k.clone());
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The annotation kubectl's client-side apply keeps its last configuration in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The field manager of kubectl's client-side apply.
const CLIENT_SIDE_APPLY: &str = "kubectl-client-side-apply";

/// One `metadata.managedFields` entry, decoded.
#[derive(Debug, Clone)]
pub struct ManagedEntry {
    pub manager: String,
    pub operation: String,
    pub subresource: String,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
}

pub fn read_managed(obj: &Value) -> Vec<ManagedEntry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| ManagedEntry {
                    manager: e["manager"].as_str().unwrap_or_default().into(),
                    operation: e["operation"].as_str().unwrap_or("Update").into(),
                    subresource: e["subresource"].as_str().unwrap_or_default().into(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
                    time: e["time"].as_str().unwrap_or_default().into(),
                    fields: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_managed(obj: &mut Value, entries: &[ManagedEntry]) {
    let arr: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if arr.is_empty() {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        obj["metadata"]["managedFields"] = Value::Array(arr);
    }
}

/// Records an Update by `manager`: it now owns every field that changed from `old` to
/// `new`; other managers lose those fields.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    api_version: &str,
    now: &str,
) {
    let status = subresource == "status";
    let new_set = field_set(new, status);
    let changed: FieldSet = match old {
        None => new_set,
        Some(old) => new_set
            .into_iter()
            .filter(|p| {
                if status && p.first().map(String::as_str) != Some("f:status") {
                    return false;
                }
                value_at(old, p) != value_at(new, p)
            })
            .collect(),
    };
    let mut entries = old.map(read_managed).unwrap_or_default();
    if changed.is_empty() && old.is_some() {
        write_managed(new, &entries);
        return;
    }
    for e in &mut entries {
        e.fields.retain(|p| !changed.contains(p));
    }
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update" && e.subresource == subresource)
    {
        Some(e) => {
            e.fields.extend(changed);
            e.time = now.to_string();
        }
        None => entries.push(ManagedEntry {
            manager: manager.into(),
            operation: "Update".into(),
            subresource: subresource.into(),
            api_version: api_version.into(),
            time: now.into(),
            fields: changed,
        }),
    }
    write_managed(new, &entries);
}

/// Server-side apply of `applied` by `manager` onto `live` (None: the object is created).
/// Returns the merged object with updated managedFields, or the conflicts
/// (manager, field) when another manager owns a field with a different value.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    now: &str,
) -> Result<Value, Vec<(String, String)>> {
    let applied_set = field_set(applied, false);
    let Some(live) = live else {
        let mut obj = strip_directives(applied);
        write_managed(
            &mut obj,
            &[ManagedEntry {
                manager: manager.into(),
                operation: "Apply".into(),
                subresource: String::new(),
                api_version: api_version.into(),
                time: now.into(),
                fields: applied_set,
            }],
        );
        return Ok(obj);
    };
    let mut entries = read_managed(live);
    let mut conflicts = Vec::new();
    let mut conflicting: FieldSet = FieldSet::new();
    // Like the API server's last-applied manager: fields kubectl's client-side apply set
    // and still hold their last-applied value move to a server-side applier without a
    // conflict, so switching `kubectl apply` to `--server-side` just works.
    let last_applied: Option<Value> = live["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok());
    for e in &entries {
        if e.manager == manager && e.operation == "Apply" {
            continue;
        }
        for p in e.fields.intersection(&applied_set) {
            if value_at(applied, p) != value_at(live, p) && !is_container(value_at(applied, p)) {
                conflicting.insert(p.clone());
                let from_last_applied = e.manager == CLIENT_SIDE_APPLY
                    && last_applied
                        .as_ref()
                        .is_some_and(|la| value_at(la, p) == value_at(live, p));
                if !from_last_applied {
                    conflicts.push((e.manager.clone(), display_path(p)));
                }
            }
        }
    }
    let force = force || (conflicts.is_empty() && !conflicting.is_empty());
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let previous: FieldSet = entries
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut obj = live.clone();
    let others: FieldSet = entries
        .iter()
        .filter(|e| !(e.manager == manager && e.operation == "Apply"))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    // Fields this manager applied before and no longer applies are removed, deepest first,
    // unless another manager still owns them.
    let candidates: Vec<&Vec<String>> = previous
        .iter()
        .filter(|p| !applied_set.contains(*p) && !others.contains(*p))
        .filter(|p| !applied_set.iter().any(|a| a.starts_with(p)))
        .collect();
    // A removed list item takes its fields with it: remove only the outermost paths
    // (its key fields are still needed to find it).
    let mut removed: Vec<&Vec<String>> = candidates
        .iter()
        .filter(|p| {
            !candidates
                .iter()
                .any(|q| q.len() < p.len() && p.starts_with(q))
        })
        .copied()
        .collect();
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in removed {
        remove_at(&mut obj, p);
    }
    strategic_merge(&mut obj, &strip_directives(applied));
    for e in &mut entries {
        if force {
            e.fields.retain(|p| !conflicting.contains(p));
        }
    }
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Apply")
    {
        Some(e) => {
            if e.fields != applied_set {
                e.time = now.into();
            }
            e.fields = applied_set;
        }
        None => entries.push(ManagedEntry {
            manager: manager.into(),
            operation: "Apply".into(),
            subresource: String::new(),
            api_version: api_version.into(),
            time: now.into(),
            fields: applied_set,
        }),
    }
    write_managed(&mut obj, &entries);
    Ok(obj)
}

fn is_container(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Object(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn apply_detects_conflicts_and_removes_dropped_fields() {
        let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}});
        let first = server_side_apply(None, &cfg, "one", false, "v1", "t").unwrap();
        let same = server_side_apply(Some(&first), &cfg, "one", false, "v1", "t").unwrap();
        assert_eq!(first, same);
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "w"}});
        let err = server_side_apply(Some(&first), &other, "two", false, "v1", "t").unwrap_err();
        assert_eq!(err, vec![("one".to_string(), ".data.k".to_string())]);
        let forced = server_side_apply(Some(&first), &other, "two", true, "v1", "t").unwrap();
        assert_eq!(forced["data"]["k"], "w");
        let fewer = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}});
        let shrunk = server_side_apply(Some(&first), &fewer, "one", false, "v1", "t").unwrap();
        assert_eq!(shrunk["metadata"]["labels"], json!({"a": "1"}));
    }

    #[test]
    fn apply_removes_dropped_list_items_whole() {
        let with = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"volumes": [{"name": "data", "emptyDir": {}}], "containers": [{"name": "c", "image": "i",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}});
        let without = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let live = server_side_apply(None, &with, "m", false, "v1", "t").unwrap();
        let after = server_side_apply(Some(&live), &without, "m", false, "v1", "t").unwrap();
        assert_eq!(after["spec"]["containers"][0]["volumeMounts"], json!([]));
        assert_eq!(after["spec"]["volumes"], json!([]));
    }

    #[test]
    fn fields_v1_round_trip() {
        let obj = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
        let set = field_set(&obj, false);
        assert_eq!(from_fields_v1(&to_fields_v1(&set)), set);
    }
}
