//! Server-side apply: the applied configuration merged onto the live object with field
//! managers, 409 on conflicts unless forced.

use super::fields::{
    CLIENT_SIDE_APPLY, FieldSet, LAST_APPLIED, ManagedEntry, display_path, field_set, read_managed,
    remove_at, value_at, write_managed,
};
use super::patch::{SmpError, strategic_merge, strip_directives};
use super::{Api, Outcome, WriteOpts, defaults, validate};
use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::Resource;
use serde_json::{Value, json};
use std::sync::Arc;

/// Why an apply was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    /// Fields other managers own with another value: (manager, field).
    Conflicts(Vec<(String, String)>),
    /// The applied configuration cannot be merged onto the live object.
    Merge(SmpError),
}

impl ApplyError {
    fn into_api(self, r: &Resource, name: &str) -> ApiError {
        match self {
            ApplyError::Conflicts(c) => ApiError::apply_conflicts(r, name, &c),
            ApplyError::Merge(e) => e.into(),
        }
    }
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
) -> Result<Value, ApplyError> {
    let applied_set = field_set(applied, false);
    let entry = |fields: FieldSet| ManagedEntry {
        manager: manager.into(),
        operation: "Apply".into(),
        subresource: String::new(),
        api_version: api_version.into(),
        time: now.into(),
        fields,
    };
    let Some(live) = live else {
        let mut obj = strip_directives(applied);
        write_managed(&mut obj, &[entry(applied_set)]);
        return Ok(obj);
    };
    let mut entries = read_managed(live);
    let is_mine = |e: &ManagedEntry| e.manager == manager && e.operation == "Apply";
    let (conflicts, conflicting) = find_conflicts(live, applied, &applied_set, &entries, &is_mine);
    // Fields that differ only from kubectl's client-side apply move without a conflict.
    let force = force || (conflicts.is_empty() && !conflicting.is_empty());
    if !conflicts.is_empty() && !force {
        return Err(ApplyError::Conflicts(conflicts));
    }
    let mut obj = live.clone();
    for p in dropped_fields(&entries, &applied_set, &is_mine) {
        remove_at(&mut obj, &p);
    }
    strategic_merge(&mut obj, &strip_directives(applied)).map_err(ApplyError::Merge)?;
    if force {
        for e in &mut entries {
            e.fields.retain(|p| !conflicting.contains(p));
        }
    }
    match entries.iter_mut().find(|e| is_mine(e)) {
        Some(e) => {
            if e.fields != applied_set {
                e.time = now.into();
            }
            e.fields = applied_set;
        }
        None => entries.push(entry(applied_set)),
    }
    write_managed(&mut obj, &entries);
    Ok(obj)
}

/// Fields other managers own that the applied configuration sets to another value: the
/// conflicts to report (manager, field), and every such field. Like the API server's
/// last-applied handling, fields kubectl's client-side apply set that still hold their
/// last-applied value are not conflicts, so switching `kubectl apply` to `--server-side`
/// just works.
fn find_conflicts(
    live: &Value,
    applied: &Value,
    applied_set: &FieldSet,
    entries: &[ManagedEntry],
    is_mine: &impl Fn(&ManagedEntry) -> bool,
) -> (Vec<(String, String)>, FieldSet) {
    let last_applied: Option<Value> = live["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok());
    let mut conflicts = Vec::new();
    let mut conflicting = FieldSet::new();
    for e in entries.iter().filter(|e| !is_mine(e)) {
        for p in e.fields.intersection(applied_set) {
            if value_at(applied, p) == value_at(live, p) || is_container(value_at(applied, p)) {
                continue;
            }
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
    (conflicts, conflicting)
}

/// Fields this manager applied before and no longer applies, unless another manager still
/// owns them: outermost paths only (a removed list item takes its fields with it, and its
/// key fields are still needed to find it), deepest first.
fn dropped_fields(
    entries: &[ManagedEntry],
    applied_set: &FieldSet,
    is_mine: &impl Fn(&ManagedEntry) -> bool,
) -> Vec<Vec<String>> {
    let previous: FieldSet = entries
        .iter()
        .find(|e| is_mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others: FieldSet = entries
        .iter()
        .filter(|e| !is_mine(e))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    let candidates: Vec<&Vec<String>> = previous
        .iter()
        .filter(|p| !applied_set.contains(*p) && !others.contains(*p))
        .filter(|p| !applied_set.iter().any(|a| a.starts_with(p)))
        .collect();
    let mut removed: Vec<Vec<String>> = candidates
        .iter()
        .filter(|p| {
            !candidates
                .iter()
                .any(|q| q.len() < p.len() && p.starts_with(q))
        })
        .map(|p| (*p).clone())
        .collect();
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    removed
}

fn is_container(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Object(_)))
}

impl Api {
    /// PATCH with an apply patch: creates the object when missing, else applies onto it.
    pub(super) fn apply(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        name: &str,
        subresource: &str,
        mut applied: Value,
        opts: &WriteOpts,
    ) -> Result<Outcome, ApiError> {
        Self::check_type(r, &mut applied)?;
        Self::check_namespace(r, ns, &mut applied)?;
        match applied["metadata"]["name"].as_str() {
            None | Some("") => applied["metadata"]["name"] = json!(name),
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            _ => {}
        }
        let (applied, warnings) = validate::decode(r, applied, opts.validation)?;
        // decode() fills nothing in, but typed round trips may add empty containers; the
        // applied configuration is what the manager asked for.
        let api_version = r.api_version();
        let now = defaults::now();
        if self.store.get(r, ns, name).is_none() {
            if r.namespaced {
                self.namespace_ready(ns)?;
            }
            let obj = server_side_apply(
                None,
                &applied,
                &opts.manager,
                opts.force,
                &api_version,
                &now,
            )
            .map_err(|e| e.into_api(r, name))?;
            match self.create_decoded(r, ns, obj, opts, warnings.clone(), true) {
                Err(e) if e.reason == "AlreadyExists" => {}
                other => return other,
            }
        }
        let mut out = self.commit_update(r, ns, name, opts, |cur, taken| {
            let merged = server_side_apply(
                Some(cur),
                &applied,
                &opts.manager,
                opts.force,
                &api_version,
                &now,
            )
            .map_err(|e| e.into_api(r, name))?;
            Self::finish_update(r, cur, merged, subresource, opts, taken, false)
        })?;
        out.warnings = warnings;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fields::{CLIENT_SIDE_APPLY, LAST_APPLIED};
    use super::*;

    #[test]
    fn apply_detects_conflicts_and_removes_dropped_fields() {
        let cfg = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}});
        let first = server_side_apply(None, &cfg, "one", false, "v1", "t").unwrap();
        let same = server_side_apply(Some(&first), &cfg, "one", false, "v1", "t").unwrap();
        assert_eq!(first, same);
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "w"}});
        let err = server_side_apply(Some(&first), &other, "two", false, "v1", "t").unwrap_err();
        assert_eq!(
            err,
            ApplyError::Conflicts(vec![("one".to_string(), ".data.k".to_string())])
        );
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

    fn deployment(image: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "web", "image": image}, {"name": "log", "image": "log:1"}]}}}})
    }

    fn owners(obj: &Value) -> Vec<String> {
        obj["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                format!(
                    "{}/{}",
                    e["manager"].as_str().unwrap(),
                    e["operation"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn conflicts_name_the_keyed_field_and_force_takes_it_over() {
        let live =
            server_side_apply(None, &deployment("web:1", 2), "ci", false, "apps/v1", "t").unwrap();
        let err = server_side_apply(
            Some(&live),
            &deployment("web:2", 2),
            "hotfix",
            false,
            "apps/v1",
            "t",
        )
        .unwrap_err();
        assert_eq!(
            err,
            ApplyError::Conflicts(vec![(
                "ci".into(),
                r#".spec.template.spec.containers[name="web"].image"#.into()
            )])
        );
        let forced = server_side_apply(
            Some(&live),
            &deployment("web:2", 2),
            "hotfix",
            true,
            "apps/v1",
            "t",
        )
        .unwrap();
        assert_eq!(
            forced["spec"]["template"]["spec"]["containers"][0]["image"],
            "web:2"
        );
        assert_eq!(owners(&forced), ["ci/Apply", "hotfix/Apply"]);
        let ci = &forced["metadata"]["managedFields"][0]["fieldsV1"];
        let web = &ci["f:spec"]["f:template"]["f:spec"]["f:containers"][r#"k:{"name":"web"}"#];
        assert!(web.get("f:image").is_none(), "ci lost the image: {ci}");
        assert!(web.get("f:name").is_some(), "ci keeps the rest: {ci}");
        // ci applying its old image again now conflicts with hotfix.
        let back = server_side_apply(
            Some(&forced),
            &deployment("web:1", 2),
            "ci",
            false,
            "apps/v1",
            "t",
        );
        assert!(matches!(back, Err(ApplyError::Conflicts(c)) if c[0].0 == "hotfix"));
    }

    #[test]
    fn same_values_are_shared_and_a_dropped_field_stays_while_another_owns_it() {
        let live =
            server_side_apply(None, &deployment("web:1", 2), "a", false, "apps/v1", "t").unwrap();
        let shared = server_side_apply(
            Some(&live),
            &deployment("web:1", 2),
            "b",
            false,
            "apps/v1",
            "t",
        )
        .unwrap();
        assert_eq!(owners(&shared), ["a/Apply", "b/Apply"]);
        let mut without = deployment("web:1", 2);
        without["spec"].as_object_mut().unwrap().remove("replicas");
        let kept = server_side_apply(Some(&shared), &without, "a", false, "apps/v1", "t").unwrap();
        assert_eq!(kept["spec"]["replicas"], 2, "b still owns replicas");
        let gone = server_side_apply(Some(&kept), &without, "b", false, "apps/v1", "t").unwrap();
        assert!(
            gone["spec"].get("replicas").is_none(),
            "nobody owns replicas any more"
        );
        let mut one = deployment("web:1", 2);
        one["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .pop();
        let fewer = server_side_apply(Some(&gone), &one, "a", false, "apps/v1", "t").unwrap();
        assert_eq!(
            fewer["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            2,
            "b still owns the log container"
        );
    }

    #[test]
    fn set_members_are_owned_one_by_one() {
        let with = |members: &[&str]| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": members}});
        let live =
            server_side_apply(None, &with(&["x/a", "x/b"]), "one", false, "v1", "t").unwrap();
        let both =
            server_side_apply(Some(&live), &with(&["x/c"]), "two", false, "v1", "t").unwrap();
        let members = |o: &Value| {
            let mut m: Vec<String> =
                serde_json::from_value(o["metadata"]["finalizers"].clone()).unwrap();
            m.sort();
            m
        };
        assert_eq!(members(&both), ["x/a", "x/b", "x/c"]);
        let dropped =
            server_side_apply(Some(&both), &with(&["x/a"]), "one", false, "v1", "t").unwrap();
        assert_eq!(
            members(&dropped),
            ["x/a", "x/c"],
            "x/b was one's alone, x/c is two's"
        );
    }

    #[test]
    fn client_side_applied_fields_move_to_a_server_side_applier() {
        // What `kubectl apply` (client-side) leaves, then `kubectl apply --server-side`.
        let mut live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "annotations": {LAST_APPLIED: r#"{"data":{"k":"v","m":"1"}}"#}},
            "data": {"k": "v", "m": "edited"}});
        super::super::fields::track_update(None, &mut live, CLIENT_SIDE_APPLY, "", "v1", "t");
        let unchanged_by_others = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {"k": "new"}});
        let moved = server_side_apply(
            Some(&live),
            &unchanged_by_others,
            "kubectl",
            false,
            "v1",
            "t",
        )
        .unwrap();
        assert_eq!(moved["data"]["k"], "new");
        let csa = &moved["metadata"]["managedFields"][0]["fieldsV1"]["f:data"];
        assert!(csa.get("f:k").is_none(), "kubectl took .data.k over: {csa}");
        let edited_since = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {"m": "2"}});
        let err =
            server_side_apply(Some(&live), &edited_since, "kubectl", false, "v1", "t").unwrap_err();
        assert_eq!(
            err,
            ApplyError::Conflicts(vec![(CLIENT_SIDE_APPLY.into(), ".data.m".into())])
        );
    }
}
