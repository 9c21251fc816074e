//! Field managers (`metadata.managedFields`): FieldsV1 sets of owned fields, and who
//! owns what after an update.

use super::patch::{ListStrategy, list_strategy};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

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
        Value::Array(items) if !items.is_empty() => match list_strategy(field, items.first()) {
            ListStrategy::MergeByKey(key) => collect_associative(key, items, path, out),
            ListStrategy::MergePrimitives if items.iter().all(|i| !i.is_object()) => {
                for item in items {
                    let mut p = path.clone();
                    p.push(format!("v:{item}"));
                    out.insert(p);
                }
            }
            _ => {
                out.insert(path);
            }
        },
        _ => {
            out.insert(path);
        }
    }
}

/// An associative list: each item owned as `k:{"<key>":<value>}` with its fields; a list
/// whose items lack the key is owned whole.
fn collect_associative(key: &str, items: &[Value], path: Vec<String>, out: &mut FieldSet) {
    if items.iter().any(|i| i.get(key).is_none()) {
        out.insert(path);
        return;
    }
    for item in items {
        let mut p = path.clone();
        p.push(format!("k:{}", json!({ key: item[key] })));
        out.insert(p.clone());
        if let Some(m) = item.as_object() {
            for (ck, cv) in m {
                let mut cp = p.clone();
                cp.push(format!("f:{ck}"));
                collect(ck, cv, cp, out);
            }
        }
    }
}

/// The list item a `k:` or `v:` segment names.
fn matches_item(seg: &str, item: &Value) -> bool {
    if let Some(k) = seg.strip_prefix("k:") {
        return serde_json::from_str::<Map<String, Value>>(k)
            .is_ok_and(|key| key.iter().all(|(kk, kv)| item.get(kk) == Some(kv)));
    }
    seg.strip_prefix("v:")
        .and_then(|v| serde_json::from_str::<Value>(v).ok())
        .is_some_and(|v| *item == v)
}

/// The value at a field path, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path {
        cur = match seg.strip_prefix("f:") {
            Some(f) => cur.get(f)?,
            None => cur
                .as_array()?
                .iter()
                .find(|item| matches_item(seg, item))?,
        };
    }
    Some(cur)
}

/// Removes the field at `path` (a map key, a keyed list item or a set member).
pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent_path)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parent_path {
        let next = match seg.strip_prefix("f:") {
            Some(f) => cur.get_mut(f),
            None => cur
                .as_array_mut()
                .and_then(|a| a.iter_mut().find(|item| matches_item(seg, item))),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match last.strip_prefix("f:") {
        Some(f) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(f);
            }
        }
        None => {
            if let Some(a) = cur.as_array_mut() {
                a.retain(|item| !matches_item(last, item));
            }
        }
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
        } else if let Some(v) = seg.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
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
pub(super) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The field manager of kubectl's client-side apply.
pub(super) const CLIENT_SIDE_APPLY: &str = "kubectl-client-side-apply";

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

/// An object's managedFields, decoded.
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

/// Writes managedFields back; entries that own nothing are dropped, as Kubernetes drops them.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_round_trip() {
        let obj = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
        let set = field_set(&obj, false);
        assert_eq!(from_fields_v1(&to_fields_v1(&set)), set);
    }

    /// The applied ConfigMap of the server-side apply documentation
    /// (kubernetes.io/docs/reference/using-api/server-side-apply) and the fieldsV1 its
    /// Apply entry shows: leaves only, no identity fields.
    #[test]
    fn fields_v1_of_an_applied_map_lists_its_leaves() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "test-cm", "namespace": "default", "labels": {"test-label": "test"}},
            "data": {"key": "some value"}});
        assert_eq!(
            to_fields_v1(&field_set(&cm, false)),
            json!({"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:test-label": {}}}})
        );
    }

    #[test]
    fn associative_lists_and_sets_get_k_and_v_segments() {
        let obj = json!({"metadata": {"finalizers": ["example.com/a", "example.com/b"]},
            "spec": {"containers": [{"name": "web", "image": "web:1",
                "env": [{"name": "MODE", "value": "fast"}]}],
                "args": ["--x"]}});
        let fields = to_fields_v1(&field_set(&obj, false));
        assert_eq!(
            fields,
            json!({
                "f:metadata": {"f:finalizers": {"v:\"example.com/a\"": {}, "v:\"example.com/b\"": {}}},
                "f:spec": {
                    "f:args": {},
                    "f:containers": {"k:{\"name\":\"web\"}": {
                        ".": {}, "f:name": {}, "f:image": {},
                        "f:env": {"k:{\"name\":\"MODE\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}})
        );
        assert_eq!(from_fields_v1(&fields), field_set(&obj, false));
    }

    fn path(segs: &[&str]) -> Vec<String> {
        segs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn paths_find_and_remove_keyed_items_and_set_members() {
        let mut obj = json!({"metadata": {"finalizers": ["a", "b"]},
            "spec": {"containers": [{"name": "web", "image": "i"}, {"name": "side", "image": "s"}]}});
        let image = path(&["f:spec", "f:containers", r#"k:{"name":"side"}"#, "f:image"]);
        assert_eq!(value_at(&obj, &image), Some(&json!("s")));
        assert_eq!(
            display_path(&image),
            r#".spec.containers[name="side"].image"#
        );
        let member = path(&["f:metadata", "f:finalizers", r#"v:"b""#]);
        assert_eq!(value_at(&obj, &member), Some(&json!("b")));
        assert_eq!(display_path(&member), r#".metadata.finalizers[="b"]"#);
        remove_at(&mut obj, &member);
        remove_at(
            &mut obj,
            &path(&["f:spec", "f:containers", r#"k:{"name":"web"}"#]),
        );
        remove_at(&mut obj, &path(&["f:spec", "f:missing", "f:deeper"]));
        assert_eq!(
            obj,
            json!({"metadata": {"finalizers": ["a"]}, "spec": {"containers": [{"name": "side", "image": "s"}]}})
        );
    }

    fn managers(obj: &Value) -> Vec<(String, String, Value)> {
        obj["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["manager"].as_str().unwrap().to_string(),
                    e["operation"].as_str().unwrap().to_string(),
                    e["fieldsV1"].clone(),
                )
            })
            .collect()
    }

    #[test]
    fn updates_take_the_fields_they_change_from_other_managers() {
        let old = json!({"metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}});
        let mut created = old.clone();
        track_update(None, &mut created, "kubectl-create", "", "v1", "t0");
        assert_eq!(
            managers(&created),
            [(
                "kubectl-create".into(),
                "Update".into(),
                json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}}}})
            )]
        );
        let mut edited = created.clone();
        edited["data"]["k"] = json!("w");
        edited["data"]["n"] = json!("new");
        track_update(Some(&created), &mut edited, "kubectl-edit", "", "v1", "t1");
        assert_eq!(
            managers(&edited),
            [
                (
                    "kubectl-create".into(),
                    "Update".into(),
                    json!({"f:metadata": {"f:labels": {"f:a": {}}}})
                ),
                (
                    "kubectl-edit".into(),
                    "Update".into(),
                    json!({"f:data": {"f:k": {}, "f:n": {}}})
                )
            ]
        );
        let mut same = edited.clone();
        track_update(Some(&edited), &mut same, "someone", "", "v1", "t2");
        assert_eq!(
            same, edited,
            "an update that changes nothing records no manager"
        );
        let mut status = edited.clone();
        status["status"] = json!({"phase": "Done"});
        status["data"]["k"] = json!("ignored by the status subresource");
        track_update(
            Some(&edited),
            &mut status,
            "controller",
            "status",
            "v1",
            "t3",
        );
        let entry = &status["metadata"]["managedFields"][2];
        assert_eq!(entry["subresource"], "status");
        assert_eq!(entry["fieldsV1"], json!({"f:status": {"f:phase": {}}}));
    }
}
