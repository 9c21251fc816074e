//! Strategic merge checked against Kubernetes' own test cases, and merge and JSON patch
//! edge cases with the answers the API server gives.
//!
//! `testdata/upstream-cases.json` holds every patch application of k8s.io/apimachinery
//! v0.37.2's `strategicpatch/patch_test.go` (`customStrategicMergePatchTestCaseData`,
//! `customStrategicMergePatchRawTestCases`, `createStrategicMergePatchTestCaseData`,
//! `strategicMergePatchRawTestCases`): the two-way case applies `twoWay` to `original`
//! and expects `modified` (or the expected error), the three-way case applies `threeWay`
//! to `current` and expects `result`. Cases on the test schema's pointer, RawExtension and
//! raw JSON fields are left out (no Kubernetes kind the sandbox serves has such fields).
//! The test schema's fields map onto real fields with the same patch strategy:
//! `mergingList` -> `containers` (merge key `name`), `mergingIntList` -> `finalizers`
//! (merged primitives), `nonMergingList` -> `args`, `nonMergingIntList` -> `command`,
//! `simpleMap` -> `labels`, `retainKeysMap` -> `strategy`, `retainKeysMergingList` ->
//! `volumes` (merge key `name`, retainKeys).

use super::strategic::{ListStrategy, list_strategy};
use super::*;
use serde_json::json;

const RENAMES: &[(&str, &str)] = &[
    ("retainKeysMergingList", "volumes"),
    ("retainKeysMap", "strategy"),
    ("nonMergingIntList", "command"),
    ("nonMergingList", "args"),
    ("mergingIntList", "finalizers"),
    ("mergingList", "containers"),
    ("simpleMap", "labels"),
];

fn rename_field(k: &str) -> String {
    for prefix in ["$setElementOrder/", "$deleteFromPrimitiveList/"] {
        if let Some(rest) = k.strip_prefix(prefix) {
            return format!("{prefix}{}", rename_field(rest));
        }
    }
    RENAMES
        .iter()
        .find(|(from, _)| *from == k)
        .map_or_else(|| k.to_string(), |(_, to)| to.to_string())
}

/// The test schema's field names as the real fields with the same strategy.
fn rename(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v) {
                        ("$retainKeys", Value::Array(keys)) => Value::Array(
                            keys.iter()
                                .map(|k| k.as_str().map_or(k.clone(), |s| json!(rename_field(s))))
                                .collect(),
                        ),
                        _ => rename(v),
                    };
                    (rename_field(k), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(rename).collect()),
        other => other.clone(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `sortMergeListsByName`, which the upstream tests apply to the documents of their YAML
/// cases: merging lists sorted (primitives also deduplicated), recursively.
fn sort_merge_lists(v: &Value) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let sorted = m.iter().map(|(k, v)| {
        let v = match v {
            Value::Array(a) if k == "$retainKeys" || k.starts_with("$deleteFromPrimitiveList") => {
                let mut a = a.clone();
                a.sort_by_key(text);
                Value::Array(a)
            }
            Value::Object(_) if !k.starts_with('$') => sort_merge_lists(v),
            Value::Array(a) if !k.starts_with('$') => sort_list(k, a),
            other => other.clone(),
        };
        (k.clone(), v)
    });
    Value::Object(sorted.collect())
}

fn sort_list(field: &str, items: &[Value]) -> Value {
    match list_strategy(field, items.first()) {
        ListStrategy::Replace => Value::Array(items.to_vec()),
        _ if items.iter().all(|i| !i.is_object()) => {
            let mut unique: Vec<Value> = Vec::new();
            for i in items {
                if !unique.contains(i) {
                    unique.push(i.clone());
                }
            }
            unique.sort_by_key(text);
            Value::Array(unique)
        }
        strategy => {
            let key = match strategy {
                ListStrategy::MergeByKey(k) => k,
                _ => "",
            };
            let mut all: Vec<Value> = items.iter().map(sort_merge_lists).collect();
            all.sort_by_key(|i| text(&i[key]));
            Value::Array(all)
        }
    }
}

/// What applying a patch gives, as the upstream test harness sees it.
fn apply_to(document: &Value, patch: &Value) -> Result<Value, SmpError> {
    let mut doc = if document.is_null() {
        json!({})
    } else {
        document.clone()
    };
    let patch = if patch.is_null() {
        json!({})
    } else {
        patch.clone()
    };
    strategic_merge(&mut doc, &patch)?;
    Ok(doc)
}

#[test]
fn upstream_strategic_merge_cases_apply_as_in_kubernetes() {
    let cases: Vec<Value> =
        serde_json::from_str(include_str!("testdata/upstream-cases.json")).unwrap();
    assert!(cases.len() > 200, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let sorted = case["sorted"] == true;
        let prepare = |v: &Value| {
            let v = rename(v);
            if sorted { sort_merge_lists(&v) } else { v }
        };
        let got = apply_to(&prepare(&case["document"]), &prepare(&case["patch"]));
        let ok = match (&got, case.get("error")) {
            (Err(e), Some(want)) => e.to_string().contains(want.as_str().unwrap()),
            (Ok(v), None) => *v == prepare(&case["expected"]),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: {}\n  got {:?}\n  want {}",
                case["set"],
                case["description"],
                got,
                case.get("expected").or(case.get("error")).unwrap()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Kubernetes puts a patch's new list items before the live ones unless the patch orders
/// them with `$setElementOrder` (k8s.io/apimachinery's StrategicMergePatch on a Pod gives
/// `env: [Y, X]` for this patch), so the merged env is Y, X.
#[test]
fn strategic_merge_merges_containers_by_name() {
    let mut live = json!({"spec": {"containers": [
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
        {"name": "b", "image": "b:1"}]}});
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
                       {"name": "b", "$patch": "delete"}]}});
    strategic_merge(&mut live, &patch).unwrap();
    assert_eq!(
        live,
        json!({"spec": {"containers": [{"name": "a", "image": "a:2",
            "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]}]}})
    );
}

fn smp(mut live: Value, patch: Value) -> Value {
    strategic_merge(&mut live, &patch).unwrap();
    live
}

#[test]
fn pod_lists_merge_on_their_kubernetes_keys() {
    let live = json!({"spec": {"containers": [{"name": "web", "image": "web:1",
        "ports": [{"containerPort": 80, "name": "http"}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "args": ["--a", "--b"]}],
        "volumes": [{"name": "data", "emptyDir": {}}]}});
    let patch = json!({"spec": {"containers": [{"name": "web",
        "ports": [{"containerPort": 81, "name": "admin"}, {"containerPort": 80, "protocol": "TCP"}],
        "volumeMounts": [{"mountPath": "/data", "readOnly": true}],
        "args": ["--c"]}]}});
    let got = smp(live, patch);
    let web = &got["spec"]["containers"][0];
    assert_eq!(web["image"], "web:1");
    assert_eq!(
        web["ports"],
        json!([{"containerPort": 81, "name": "admin"}, {"containerPort": 80, "name": "http", "protocol": "TCP"}])
    );
    assert_eq!(
        web["volumeMounts"],
        json!([{"name": "data", "mountPath": "/data", "readOnly": true}])
    );
    assert_eq!(web["args"], json!(["--c"]), "args has no merge strategy");
}

#[test]
fn service_ports_merge_on_port_and_nulls_delete_fields() {
    let live = json!({"metadata": {"labels": {"app": "web", "tier": "frontend"}},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}}});
    let patch = json!({"metadata": {"labels": {"tier": null, "new": "x"}},
        "spec": {"ports": [{"port": 80, "nodePort": 30080}], "selector": null}});
    assert_eq!(
        smp(live, patch),
        json!({"metadata": {"labels": {"app": "web", "new": "x"}},
            "spec": {"ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}})
    );
}

#[test]
fn retain_keys_switch_a_volume_source_and_a_deployment_strategy() {
    // What `kubectl apply` sends when a manifest changes a volume from emptyDir to
    // hostPath and the strategy from RollingUpdate to Recreate.
    let live = json!({"spec": {
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
        "template": {"spec": {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "logs", "emptyDir": {}}]}}}});
    let patch = json!({"spec": {
        "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null},
        "template": {"spec": {
            "$setElementOrder/volumes": [{"name": "data"}, {"name": "logs"}],
            "volumes": [{"$retainKeys": ["hostPath", "name"], "name": "data", "hostPath": {"path": "/srv"}, "emptyDir": null}]}}}});
    assert_eq!(
        smp(live, patch),
        json!({"spec": {"strategy": {"type": "Recreate"},
            "template": {"spec": {"volumes": [
                {"name": "data", "hostPath": {"path": "/srv"}}, {"name": "logs", "emptyDir": {}}]}}}})
    );
}

#[test]
fn list_directives_replace_delete_and_delete_from_primitive_lists() {
    let live = json!({"metadata": {"finalizers": ["a", "b", "c"]},
        "spec": {"containers": [{"name": "x", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}});
    let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "finalizers": ["d"]},
        "spec": {"containers": [{"name": "x", "env": [{"name": "A", "$patch": "delete"}]}]}});
    assert_eq!(
        smp(live.clone(), patch),
        json!({"metadata": {"finalizers": ["d", "a", "c"]},
            "spec": {"containers": [{"name": "x", "env": [{"name": "B", "value": "2"}]}]}})
    );
    let replace = json!({"spec": {"containers": [{"name": "y"}, {"$patch": "replace"}]}});
    assert_eq!(
        smp(live.clone(), replace)["spec"]["containers"],
        json!([{"name": "y"}])
    );
    let whole = json!({"spec": {"$patch": "replace", "containers": []}});
    assert_eq!(smp(live.clone(), whole)["spec"], json!({"containers": []}));
    let deleted = json!({"spec": {"$patch": "delete"}});
    assert_eq!(smp(live, deleted)["spec"], json!({}));
}

#[test]
fn malformed_strategic_patches_get_the_api_servers_answers() {
    let live = json!({"metadata": {"finalizers": []},
        "spec": {"strategy": {"type": "RollingUpdate"}, "containers": [{"name": "a"}]}});
    let cases = [
        (
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "other": 1}}}),
            400,
            "invalid patch format of retainKeys",
        ),
        (
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
            400,
            "invalid patch format of retainKeys",
        ),
        (
            json!({"spec": {"containers": [{"image": "i"}]}}),
            500,
            "map: map[image:i] does not contain declared merge key: name",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}),
            500,
            "merging lists cannot yet be specified",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "$patch": "explode"}]}}),
            500,
            "unknown patch type: explode in map: map[$patch:explode name:a]",
        ),
        (
            json!({"spec": {"$patch": "explode"}}),
            500,
            "unknown patch type",
        ),
        (
            json!({"metadata": {"finalizers": [["a"]]}}),
            422,
            "lists of lists are not supported",
        ),
        (
            json!({"spec": {"containers": [["a"]]}}),
            500,
            "list element types are not identical: [[map[name:a]] [[a]]]",
        ),
        (
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}], "containers": [{"name": "a"}]}}),
            500,
            "doesn't match",
        ),
    ];
    for (patch, code, message) in cases {
        let mut target = live.clone();
        let err: ApiError = strategic_merge(&mut target, &patch).unwrap_err().into();
        assert_eq!(err.code, code, "{patch}");
        assert!(err.message.contains(message), "{patch}: {}", err.message);
    }
}

#[test]
fn json_merge_patches_follow_rfc_7396() {
    let mut doc = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
    json_merge(
        &mut doc,
        &json!({"a": {"b": null, "c": [3], "e": {"f": null}}, "d": null}),
    );
    assert_eq!(doc, json!({"a": {"c": [3], "e": {}}}));
    json_merge(&mut doc, &json!(["whole"]));
    assert_eq!(
        doc,
        json!(["whole"]),
        "a non-object patch replaces the document"
    );
}

#[test]
fn json_patches_apply_or_fail_with_the_api_servers_codes() {
    let doc =
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"replicas": 1, "ports": [80]}});
    let mut ok = doc.clone();
    json_patch(
        &mut ok,
        &json!([
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "web"},
            {"op": "add", "path": "/spec/ports/-", "value": 443},
            {"op": "copy", "from": "/spec/replicas", "path": "/spec/min"},
            {"op": "move", "from": "/spec/min", "path": "/spec/max"},
            {"op": "remove", "path": "/metadata/labels/app"}
        ]),
    )
    .unwrap();
    assert_eq!(
        ok,
        json!({"metadata": {"labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "max": 3, "ports": [80, 443]}})
    );
    let fails = [
        (
            json!([{"op": "test", "path": "/spec/replicas", "value": 2}]),
            422,
        ),
        (json!([{"op": "remove", "path": "/spec/missing"}]), 422),
        (
            json!([{"op": "replace", "path": "/spec/ports/7", "value": 1}]),
            422,
        ),
        (json!([{"op": "add", "path": "no-slash", "value": 1}]), 422),
        (json!([{"op": "frobnicate", "path": "/spec"}]), 422),
        (json!([{"op": "add", "value": 1}]), 422),
        (json!({"op": "add", "path": "/spec/x", "value": 1}), 400),
        (json!([1, 2]), 400),
    ];
    for (patch, code) in fails {
        let mut target = doc.clone();
        let err = json_patch(&mut target, &patch).unwrap_err();
        assert_eq!(err.code, code, "{patch}: {}", err.message);
        assert_eq!(target, doc, "a failed patch changes nothing: {patch}");
    }
}
