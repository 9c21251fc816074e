//! Version conversion, as the API server's: a kind served in several versions is stored in
//! one (its storage version) and converted on every read and write, so the same object is
//! readable in each. `autoscaling/v1` HorizontalPodAutoscalers are stored as `autoscaling/v2`;
//! what v1 cannot say (other metrics, behavior, conditions, metric statuses) rides in the
//! annotations Kubernetes' conversion uses, so a v1 round trip loses nothing.

use crate::apimachinery::resources::{RESOURCES, Resource};
use serde_json::{Map, Value, json};

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// Annotations only conversion writes: dropped before each conversion fills them again.
const ROUND_TRIP: &[&str] = &[
    METRICS,
    CURRENT_METRICS,
    CONDITIONS,
    BEHAVIOR,
    "autoscaling.alpha.kubernetes.io/scale-down-tolerance",
    "autoscaling.alpha.kubernetes.io/scale-up-tolerance",
];
/// The CPU target v1 implies when nothing else is asked for.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

/// The resource whose storage holds `r`'s objects: the first served version of its kind.
pub(crate) fn storage_of(r: &Resource) -> &'static Resource {
    RESOURCES
        .iter()
        .find(|s| s.group == r.group && s.plural == r.plural)
        .expect("resource comes from RESOURCES")
}

/// `obj` as `r`'s version, converted when it is in another version of the same kind.
pub(crate) fn to_version(obj: &Value, r: &Resource) -> Value {
    let want = r.api_version();
    match (obj["apiVersion"].as_str(), want.as_str()) {
        (Some(have), _) if have == want => obj.clone(),
        (Some("autoscaling/v2"), "autoscaling/v1") if r.kind == "HorizontalPodAutoscaler" => {
            hpa_v2_to_v1(obj)
        }
        (Some("autoscaling/v1"), "autoscaling/v2") if r.kind == "HorizontalPodAutoscaler" => {
            hpa_v1_to_v2(obj)
        }
        _ => obj.clone(),
    }
}

fn take_annotation(obj: &mut Value, key: &str) -> Option<Vec<Value>> {
    let text = obj["metadata"]["annotations"][key].as_str()?.to_string();
    match serde_json::from_str(&text).ok()? {
        Value::Array(items) => Some(items),
        other => Some(vec![other]),
    }
}

fn drop_round_trip(obj: &mut Value) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
        a.retain(|k, _| !ROUND_TRIP.contains(&k.as_str()));
        if a.is_empty() {
            meta.remove("annotations");
        }
    }
}

fn annotate(obj: &mut Value, key: &str, value: &Value) {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(value.to_string());
}

fn is_cpu_utilization(metric: &Value) -> bool {
    metric["type"] == "Resource"
        && metric["resource"]["name"] == "cpu"
        && !metric["resource"]["target"]["averageUtilization"].is_null()
}

/// Copies the members of `from` named in `keys` (source name, target name) that are set.
fn pick(from: &Value, keys: &[(&str, &str)]) -> Value {
    let mut out = Map::new();
    for (src, dst) in keys {
        if !from[*src].is_null() {
            out.insert((*dst).to_string(), from[*src].clone());
        }
    }
    Value::Object(out)
}

fn hpa_v2_to_v1(obj: &Value) -> Value {
    let mut out = json!({
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v1",
        "metadata": obj["metadata"].clone(),
    });
    drop_round_trip(&mut out);
    let spec = &obj["spec"];
    let metrics = spec["metrics"].as_array().cloned().unwrap_or_default();
    let mut v1spec = pick(
        spec,
        &[
            ("scaleTargetRef", "scaleTargetRef"),
            ("minReplicas", "minReplicas"),
            ("maxReplicas", "maxReplicas"),
        ],
    );
    if let Some(cpu) = metrics.iter().find(|m| is_cpu_utilization(m)) {
        v1spec["targetCPUUtilizationPercentage"] =
            cpu["resource"]["target"]["averageUtilization"].clone();
    }
    out["spec"] = v1spec;
    let status = &obj["status"];
    let current = status["currentMetrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut v1status = pick(
        status,
        &[
            ("observedGeneration", "observedGeneration"),
            ("lastScaleTime", "lastScaleTime"),
            ("currentReplicas", "currentReplicas"),
            ("desiredReplicas", "desiredReplicas"),
        ],
    );
    if let Some(cpu) = current
        .iter()
        .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
        && !cpu["resource"]["current"]["averageUtilization"].is_null()
    {
        v1status["currentCPUUtilizationPercentage"] =
            cpu["resource"]["current"]["averageUtilization"].clone();
    }
    if status.is_object() {
        v1status
            .as_object_mut()
            .map(|m| m.entry("currentReplicas").or_insert(json!(0)));
        v1status
            .as_object_mut()
            .map(|m| m.entry("desiredReplicas").or_insert(json!(0)));
        out["status"] = v1status;
    }
    let other: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .map(metric_spec_to_v1)
        .collect();
    if !other.is_empty() {
        annotate(&mut out, METRICS, &json!(other));
    }
    if !current.is_empty() {
        let v1: Vec<Value> = current.iter().map(metric_status_to_v1).collect();
        annotate(&mut out, CURRENT_METRICS, &json!(v1));
    }
    if spec["behavior"].is_object() {
        annotate(&mut out, BEHAVIOR, &recase(&spec["behavior"], to_pascal));
    }
    if let Some(conditions) = status["conditions"].as_array().filter(|c| !c.is_empty()) {
        annotate(&mut out, CONDITIONS, &json!(conditions));
    }
    out
}

fn hpa_v1_to_v2(obj: &Value) -> Value {
    let mut src = obj.clone();
    let other = take_annotation(&mut src, METRICS);
    let current = take_annotation(&mut src, CURRENT_METRICS);
    let conditions = take_annotation(&mut src, CONDITIONS);
    let behavior = src["metadata"]["annotations"][BEHAVIOR]
        .as_str()
        .and_then(|b| serde_json::from_str::<Value>(b).ok());
    let mut out = json!({
        "kind": "HorizontalPodAutoscaler",
        "apiVersion": "autoscaling/v2",
        "metadata": src["metadata"].clone(),
    });
    drop_round_trip(&mut out);
    let spec = &src["spec"];
    let mut v2spec = pick(
        spec,
        &[
            ("scaleTargetRef", "scaleTargetRef"),
            ("minReplicas", "minReplicas"),
            ("maxReplicas", "maxReplicas"),
        ],
    );
    let mut metrics: Vec<Value> = other.iter().flatten().map(metric_spec_to_v2).collect();
    let cpu_target = spec["targetCPUUtilizationPercentage"].as_i64();
    if let Some(target) = cpu_target {
        metrics.push(cpu_utilization_metric(target));
    }
    if metrics.is_empty() {
        metrics.push(cpu_utilization_metric(DEFAULT_CPU_UTILIZATION));
    }
    v2spec["metrics"] = json!(metrics);
    if let Some(b) = behavior.filter(|b| b.as_object().is_some_and(|m| !m.is_empty())) {
        v2spec["behavior"] = recase(&b, to_camel);
    }
    out["spec"] = v2spec;
    let status = &src["status"];
    if status.is_object() {
        let mut v2status = pick(
            status,
            &[
                ("observedGeneration", "observedGeneration"),
                ("lastScaleTime", "lastScaleTime"),
                ("currentReplicas", "currentReplicas"),
                ("desiredReplicas", "desiredReplicas"),
            ],
        );
        if let Some(current) = current {
            v2status["currentMetrics"] =
                json!(current.iter().map(metric_status_to_v2).collect::<Vec<_>>());
        } else if let Some(cpu) = status["currentCPUUtilizationPercentage"].as_i64() {
            v2status["currentMetrics"] = json!([{"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": cpu}}}]);
        }
        if let Some(conditions) = conditions {
            v2status["conditions"] = json!(conditions);
        }
        out["status"] = v2status;
    }
    out
}

fn cpu_utilization_metric(target: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu",
           "target": {"type": "Utilization", "averageUtilization": target}}})
}

/// A v2 MetricSpec in the v1 (v2beta1-shaped) form the metrics annotation holds.
fn metric_spec_to_v1(m: &Value) -> Value {
    let mut out = json!({"type": m["type"]});
    for key in ["resource", "containerResource"] {
        if m[key].is_object() {
            let (r, t) = (&m[key], &m[key]["target"]);
            let mut v = pick_map(
                t,
                &[
                    ("averageUtilization", "targetAverageUtilization"),
                    ("averageValue", "targetAverageValue"),
                ],
            );
            v.insert("name".into(), r["name"].clone());
            if key == "containerResource" {
                v.insert("container".into(), r["container"].clone());
            }
            out[key] = Value::Object(v);
        }
    }
    if m["pods"].is_object() {
        let p = &m["pods"];
        let mut v = json!({"metricName": p["metric"]["name"],
                           "targetAverageValue": p["target"]["averageValue"].as_str().unwrap_or("0")});
        if !p["metric"]["selector"].is_null() {
            v["selector"] = p["metric"]["selector"].clone();
        }
        out["pods"] = v;
    }
    if m["object"].is_object() {
        let o = &m["object"];
        let mut v = json!({"target": o["describedObject"], "metricName": o["metric"]["name"],
                           "targetValue": o["target"]["value"].as_str().unwrap_or("0")});
        for (src, dst) in [
            (&o["metric"]["selector"], "selector"),
            (&o["target"]["averageValue"], "averageValue"),
        ] {
            if !src.is_null() {
                v[dst] = src.clone();
            }
        }
        out["object"] = v;
    }
    if m["external"].is_object() {
        let e = &m["external"];
        let mut v = json!({"metricName": e["metric"]["name"]});
        for (src, dst) in [
            (&e["metric"]["selector"], "metricSelector"),
            (&e["target"]["value"], "targetValue"),
            (&e["target"]["averageValue"], "targetAverageValue"),
        ] {
            if !src.is_null() {
                v[dst] = src.clone();
            }
        }
        out["external"] = v;
    }
    out
}

fn pick_map(from: &Value, keys: &[(&str, &str)]) -> Map<String, Value> {
    match pick(from, keys) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A metric target from v1's `targetAverageUtilization` / `targetAverageValue`.
fn utilization_target(v: &Value) -> Value {
    let mut t = pick(
        v,
        &[
            ("targetAverageUtilization", "averageUtilization"),
            ("targetAverageValue", "averageValue"),
        ],
    );
    t["type"] = json!(if v["targetAverageUtilization"].is_null() {
        "AverageValue"
    } else {
        "Utilization"
    });
    t
}

/// The v2 MetricSpec of one entry of the metrics annotation.
fn metric_spec_to_v2(m: &Value) -> Value {
    let mut out = json!({"type": m["type"]});
    if let Some(r) = m.get("resource").filter(|r| r.is_object()) {
        out["resource"] = json!({"name": r["name"], "target": utilization_target(r)});
    }
    if let Some(r) = m.get("containerResource").filter(|r| r.is_object()) {
        out["containerResource"] = json!({"name": r["name"], "container": r["container"],
                                          "target": utilization_target(r)});
    }
    if let Some(p) = m.get("pods").filter(|r| r.is_object()) {
        out["pods"] = json!({"metric": pick(p, &[("metricName", "name"), ("selector", "selector")]),
                             "target": {"type": "AverageValue", "averageValue": p["targetAverageValue"]}});
    }
    if let Some(o) = m.get("object").filter(|r| r.is_object()) {
        let average = !o["averageValue"].is_null();
        let mut target = json!({"type": if average { "AverageValue" } else { "Value" }});
        if !average || o["targetValue"].as_str().is_some_and(|v| v != "0") {
            target["value"] = o["targetValue"].clone();
        }
        if average {
            target["averageValue"] = o["averageValue"].clone();
        }
        out["object"] = json!({"describedObject": o["target"],
                               "metric": pick(o, &[("metricName", "name"), ("selector", "selector")]),
                               "target": target});
    }
    if let Some(e) = m.get("external").filter(|r| r.is_object()) {
        let mut target = pick(
            e,
            &[
                ("targetValue", "value"),
                ("targetAverageValue", "averageValue"),
            ],
        );
        target["type"] = json!(if e["targetValue"].is_null() {
            "AverageValue"
        } else {
            "Value"
        });
        out["external"] = json!({"metric": pick(e, &[("metricName", "name"), ("metricSelector", "selector")]),
                                 "target": target});
    }
    out
}

/// A v2 MetricStatus in the v1 form the current-metrics annotation holds.
fn metric_status_to_v1(m: &Value) -> Value {
    let mut out = json!({"type": m["type"]});
    for key in ["resource", "containerResource"] {
        if m[key].is_object() {
            let (r, c) = (&m[key], &m[key]["current"]);
            let mut v = json!({"name": r["name"],
                               "currentAverageValue": c["averageValue"].as_str().unwrap_or("0")});
            if !c["averageUtilization"].is_null() {
                v["currentAverageUtilization"] = c["averageUtilization"].clone();
            }
            if key == "containerResource" {
                v["container"] = r["container"].clone();
            }
            out[key] = v;
        }
    }
    if m["pods"].is_object() {
        let p = &m["pods"];
        out["pods"] = json!({"metricName": p["metric"]["name"],
            "currentAverageValue": p["current"]["averageValue"].as_str().unwrap_or("0")});
    }
    if m["object"].is_object() {
        let o = &m["object"];
        out["object"] = json!({"target": o["describedObject"], "metricName": o["metric"]["name"],
            "currentValue": o["current"]["value"].as_str().unwrap_or("0")});
    }
    if m["external"].is_object() {
        let e = &m["external"];
        out["external"] = json!({"metricName": e["metric"]["name"],
            "currentValue": e["current"]["value"].as_str().unwrap_or("0")});
    }
    out
}

/// The v2 MetricStatus of one entry of the current-metrics annotation.
fn metric_status_to_v2(m: &Value) -> Value {
    let mut out = json!({"type": m["type"]});
    for key in ["resource", "containerResource"] {
        if let Some(r) = m.get(key).filter(|r| r.is_object()) {
            let mut v = json!({"name": r["name"], "current": pick(r, &[
                ("currentAverageValue", "averageValue"),
                ("currentAverageUtilization", "averageUtilization"),
            ])});
            if key == "containerResource" {
                v["container"] = r["container"].clone();
            }
            out[key] = v;
        }
    }
    if let Some(p) = m.get("pods").filter(|r| r.is_object()) {
        out["pods"] = json!({"metric": pick(p, &[("metricName", "name"), ("selector", "selector")]),
                             "current": {"averageValue": p["currentAverageValue"]}});
    }
    if let Some(o) = m.get("object").filter(|r| r.is_object()) {
        out["object"] = json!({"describedObject": o["target"],
                               "metric": pick(o, &[("metricName", "name"), ("selector", "selector")]),
                               "current": pick(o, &[("currentValue", "value"), ("averageValue", "averageValue")])});
    }
    if let Some(e) = m.get("external").filter(|r| r.is_object()) {
        out["external"] = json!({"metric": pick(e, &[("metricName", "name"), ("metricSelector", "selector")]),
                                 "current": pick(e, &[("currentValue", "value"), ("currentAverageValue", "averageValue")])});
    }
    out
}

/// The behavior annotation holds the internal Go type, whose JSON names are its field names.
fn recase(v: &Value, case: fn(&str) -> String) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, x)| (case(k), recase(x, case))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| recase(x, case)).collect()),
        other => other.clone(),
    }
}

fn to_pascal(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

fn to_camel(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apimachinery::resources::by_kind;

    fn v1() -> &'static Resource {
        by_kind("autoscaling/v1", "HorizontalPodAutoscaler").unwrap()
    }

    fn v2() -> &'static Resource {
        by_kind("autoscaling/v2", "HorizontalPodAutoscaler").unwrap()
    }

    #[test]
    fn a_v1_cpu_target_is_a_v2_utilization_metric_and_back() {
        let hpa = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 1, "maxReplicas": 10, "targetCPUUtilizationPercentage": 50}});
        let stored = to_version(&hpa, v2());
        assert_eq!(storage_of(v1()), v2());
        assert_eq!(
            stored["spec"]["metrics"],
            json!([cpu_utilization_metric(50)])
        );
        assert_eq!(to_version(&stored, v1()), hpa);
        let none = to_version(
            &json!({"apiVersion": "autoscaling/v1", "metadata": {}, "spec": {}}),
            v2(),
        );
        assert_eq!(none["spec"]["metrics"], json!([cpu_utilization_metric(80)]));
    }

    #[test]
    fn what_v1_cannot_say_round_trips_through_annotations() {
        let memory = json!({"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "AverageValue", "averageValue": "100Mi"}}});
        let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "annotations": {"keep": "me"}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
                     "metrics": [memory.clone(), cpu_utilization_metric(60)],
                     "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}},
            "status": {"currentReplicas": 1, "desiredReplicas": 2,
                       "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                           "current": {"averageUtilization": 70, "averageValue": "70m"}}}],
                       "conditions": [{"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"}]}});
        let old = to_version(&hpa, v1());
        assert_eq!(old["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(old["status"]["currentCPUUtilizationPercentage"], 70);
        let behavior = old["metadata"]["annotations"][BEHAVIOR].as_str().unwrap();
        assert!(
            behavior.contains("\"StabilizationWindowSeconds\":30"),
            "{behavior}"
        );
        let back = to_version(&old, v2());
        assert_eq!(back["spec"]["metrics"], hpa["spec"]["metrics"]);
        assert_eq!(back["spec"]["behavior"], hpa["spec"]["behavior"]);
        assert_eq!(back["status"], hpa["status"]);
        assert_eq!(back["metadata"]["annotations"], json!({"keep": "me"}));
    }
}
