//! `meta.k8s.io/v1` Table answers: the columns `kubectl get` prints, computed the way the
//! real API server's printers compute them (pod STATUS and RESTARTS, service PORT(S), ...).

use crate::apimachinery::resources::Resource;
use serde_json::{Value, json};
use std::sync::Arc;

/// Kubernetes' `duration.HumanDuration`, as in the AGE column.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age(ts: &Value) -> String {
    let Some(t) = ts.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    human_duration(jiff::Timestamp::now().as_second() - t.as_second())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(v: String) -> String {
    if v.is_empty() { "<none>".into() } else { v }
}

type Col = (&'static str, &'static str, u8);

fn columns(r: &Resource) -> Vec<Col> {
    let name: Col = ("Name", "string", 0);
    let age: Col = ("Age", "string", 0);
    match (r.group, r.kind) {
        ("", "Pod") => vec![
            name,
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            age,
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        ("", "Service") => vec![
            name,
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            age,
            ("Selector", "string", 1),
        ],
        ("apps", "Deployment") => vec![
            name,
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            age,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        ("apps", "ReplicaSet") => vec![
            name,
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            age,
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        ("apps", "StatefulSet") => vec![
            name,
            ("Ready", "string", 0),
            age,
            ("Containers", "string", 1),
            ("Images", "string", 1),
        ],
        ("", "PersistentVolumeClaim") => vec![
            name,
            ("Status", "string", 0),
            ("Volume", "string", 0),
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("StorageClass", "string", 0),
            ("VolumeAttributesClass", "string", 0),
            age,
            ("VolumeMode", "string", 1),
        ],
        ("", "PersistentVolume") => vec![
            name,
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("Reclaim Policy", "string", 0),
            ("Status", "string", 0),
            ("Claim", "string", 0),
            ("StorageClass", "string", 0),
            ("VolumeAttributesClass", "string", 0),
            ("Reason", "string", 0),
            age,
            ("VolumeMode", "string", 1),
        ],
        ("", "Event") => vec![
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("Message", "string", 0),
            ("First Seen", "string", 1),
            ("Count", "string", 1),
            ("Name", "string", 1),
        ],
        ("", "Namespace") => vec![name, ("Status", "string", 0), age],
        ("", "Node") => vec![
            name,
            ("Status", "string", 0),
            ("Roles", "string", 0),
            age,
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        ("", "Endpoints") => vec![name, ("Endpoints", "string", 0), age],
        ("discovery.k8s.io", "EndpointSlice") => vec![
            name,
            ("AddressType", "string", 0),
            ("Ports", "string", 0),
            ("Endpoints", "string", 0),
            age,
        ],
        ("coordination.k8s.io", "Lease") => vec![name, ("Holder", "string", 0), age],
        ("autoscaling", "HorizontalPodAutoscaler") => vec![
            name,
            ("Reference", "string", 0),
            ("Targets", "string", 0),
            ("MinPods", "string", 0),
            ("MaxPods", "string", 0),
            ("Replicas", "string", 0),
            age,
        ],
        ("", "ConfigMap") => vec![name, ("Data", "string", 0), age],
        ("", "Secret") => vec![name, ("Type", "string", 0), ("Data", "string", 0), age],
        ("", "ServiceAccount") => vec![name, ("Secrets", "string", 0), age],
        ("storage.k8s.io", "StorageClass") => vec![
            name,
            ("Provisioner", "string", 0),
            ("ReclaimPolicy", "string", 0),
            ("VolumeBindingMode", "string", 0),
            ("AllowVolumeExpansion", "string", 0),
            age,
        ],
        _ => vec![name, ("Created At", "date", 0)],
    }
}

/// Up to three items and how many more, as kubectl lists endpoints, ports and addresses;
/// `empty` when there are none.
fn first_three(items: impl IntoIterator<Item = String>, empty: &str) -> String {
    let all: Vec<String> = items.into_iter().collect();
    match all.len() {
        0 => empty.to_string(),
        n if n > 3 => format!("{} + {} more...", all[..3].join(","), n - 3),
        _ => all.join(","),
    }
}

/// Kubectl's pod STATUS: the most telling container reason, else the phase.
pub fn pod_status(pod: &Value) -> String {
    let st = &pod["status"];
    let mut reason = st["reason"]
        .as_str()
        .or(st["phase"].as_str())
        .unwrap_or("Pending")
        .to_string();
    for (i, c) in st["initContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let term = &c["state"]["terminated"];
        if term.is_object() && term["exitCode"].as_i64() == Some(0) {
            continue;
        }
        let total = pod["spec"]["initContainers"].as_array().map_or(0, Vec::len);
        reason = if term.is_object() {
            format!("Init:{}", term["reason"].as_str().unwrap_or("Error"))
        } else if let Some(w) = c["state"]["waiting"]["reason"].as_str()
            && w != "PodInitializing"
        {
            format!("Init:{w}")
        } else {
            format!("Init:{i}/{total}")
        };
        return reason;
    }
    let mut has_running = false;
    for c in st["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
    {
        let state = &c["state"];
        if let Some(w) = state["waiting"]["reason"].as_str() {
            reason = w.to_string();
        } else if state["terminated"].is_object() {
            reason = match state["terminated"]["reason"].as_str() {
                Some(r) => r.to_string(),
                None => match state["terminated"]["signal"].as_i64() {
                    Some(sig) if sig != 0 => format!("Signal:{sig}"),
                    _ => format!(
                        "ExitCode:{}",
                        state["terminated"]["exitCode"].as_i64().unwrap_or(0)
                    ),
                },
            };
        } else if c["ready"] == true && state["running"].is_object() {
            has_running = true;
        }
    }
    if reason == "Completed" && has_running {
        reason = "Running".into();
    }
    if !pod["metadata"]["deletionTimestamp"].is_null() {
        reason = if st["reason"] == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

fn pod_restarts(pod: &Value) -> String {
    let mut restarts = 0;
    let mut last: Option<jiff::Timestamp> = None;
    for c in pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        restarts += c["restartCount"].as_i64().unwrap_or(0);
        if let Some(t) = c["lastState"]["terminated"]["finishedAt"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            && last.is_none_or(|l| t > l)
        {
            last = Some(t);
        }
    }
    match last {
        Some(t) if restarts > 0 => format!(
            "{restarts} ({} ago)",
            human_duration(jiff::Timestamp::now().as_second() - t.as_second())
        ),
        _ => restarts.to_string(),
    }
}

fn container_list(spec: &Value, field: &str) -> String {
    spec["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| s(&c[field]))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn selector_string(sel: &Value) -> String {
    or_none(crate::apimachinery::selectors::LabelSelector::from_object(sel).to_query())
}

fn map_selector(sel: &Value) -> String {
    or_none(
        sel.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", s(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
    )
}

fn access_modes(modes: &Value) -> String {
    modes
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    Some(match m.as_str()? {
                        "ReadWriteOnce" => "RWO",
                        "ReadOnlyMany" => "ROX",
                        "ReadWriteMany" => "RWX",
                        "ReadWriteOncePod" => "RWOP",
                        other => other,
                    })
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn cells(r: &Resource, o: &Value) -> Vec<Value> {
    let m = &o["metadata"];
    let name = json!(s(&m["name"]));
    let created = age(&m["creationTimestamp"]);
    let spec = &o["spec"];
    let st = &o["status"];
    match (r.group, r.kind) {
        ("", "Pod") => {
            let total = spec["containers"].as_array().map_or(0, Vec::len);
            let ready = st["containerStatuses"]
                .as_array()
                .map_or(0, |cs| cs.iter().filter(|c| c["ready"] == true).count());
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(pod_restarts(o)),
                json!(created),
                json!(or_none(s(&st["podIP"]))),
                json!(or_none(s(&spec["nodeName"]))),
                json!(or_none(s(&st["nominatedNodeName"]))),
                json!("<none>"),
            ]
        }
        ("", "Service") => {
            let ty = s(&spec["type"]);
            let ingress: Vec<String> = st["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    s(if i["ip"].is_null() {
                        &i["hostname"]
                    } else {
                        &i["ip"]
                    })
                })
                .collect();
            let external = match ty.as_str() {
                "LoadBalancer" if ingress.is_empty() => "<pending>".to_string(),
                "LoadBalancer" => ingress.join(","),
                "ExternalName" => s(&spec["externalName"]),
                _ => spec["externalIPs"]
                    .as_array()
                    .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
                    .filter(|x| !x.is_empty())
                    .unwrap_or_else(|| "<none>".into()),
            };
            let ports: Vec<String> = spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    let proto = p["protocol"].as_str().unwrap_or("TCP");
                    match p["nodePort"].as_i64() {
                        Some(np) => format!("{}:{np}/{proto}", s(&p["port"])),
                        None => format!("{}/{proto}", s(&p["port"])),
                    }
                })
                .collect();
            let ports = if ports.is_empty() {
                "<none>".into()
            } else {
                ports.join(",")
            };
            let cip = s(&spec["clusterIP"]);
            vec![
                name,
                json!(ty),
                json!(if cip.is_empty() { "<none>".into() } else { cip }),
                json!(external),
                json!(ports),
                json!(created),
                json!(map_selector(&spec["selector"])),
            ]
        }
        ("apps", "Deployment") => vec![
            name,
            json!(format!(
                "{}/{}",
                st["readyReplicas"].as_i64().unwrap_or(0),
                spec["replicas"].as_i64().unwrap_or(1)
            )),
            json!(st["updatedReplicas"].as_i64().unwrap_or(0)),
            json!(st["availableReplicas"].as_i64().unwrap_or(0)),
            json!(created),
            json!(container_list(&spec["template"]["spec"], "name")),
            json!(container_list(&spec["template"]["spec"], "image")),
            json!(selector_string(&spec["selector"])),
        ],
        ("apps", "ReplicaSet") => vec![
            name,
            json!(spec["replicas"].as_i64().unwrap_or(1)),
            json!(st["replicas"].as_i64().unwrap_or(0)),
            json!(st["readyReplicas"].as_i64().unwrap_or(0)),
            json!(created),
            json!(container_list(&spec["template"]["spec"], "name")),
            json!(container_list(&spec["template"]["spec"], "image")),
            json!(selector_string(&spec["selector"])),
        ],
        ("apps", "StatefulSet") => vec![
            name,
            json!(format!(
                "{}/{}",
                st["readyReplicas"].as_i64().unwrap_or(0),
                spec["replicas"].as_i64().unwrap_or(1)
            )),
            json!(created),
            json!(container_list(&spec["template"]["spec"], "name")),
            json!(container_list(&spec["template"]["spec"], "image")),
        ],
        ("", "PersistentVolumeClaim") => vec![
            name,
            json!(s(&st["phase"])),
            json!(s(&spec["volumeName"])),
            json!(s(&st["capacity"]["storage"])),
            json!(access_modes(&st["accessModes"])),
            json!(or_none(s(&spec["storageClassName"]))),
            json!(or_none(s(&spec["volumeAttributesClassName"]))),
            json!(created),
            json!(s(&spec["volumeMode"])),
        ],
        ("", "PersistentVolume") => {
            let claim = if spec["claimRef"].is_object() {
                format!(
                    "{}/{}",
                    s(&spec["claimRef"]["namespace"]),
                    s(&spec["claimRef"]["name"])
                )
            } else {
                String::new()
            };
            vec![
                name,
                json!(s(&spec["capacity"]["storage"])),
                json!(access_modes(&spec["accessModes"])),
                json!(s(&spec["persistentVolumeReclaimPolicy"])),
                json!(s(&st["phase"])),
                json!(claim),
                json!(s(&spec["storageClassName"])),
                json!(or_none(s(&spec["volumeAttributesClassName"]))),
                json!(s(&st["reason"])),
                json!(created),
                json!(s(&spec["volumeMode"])),
            ]
        }
        ("", "Event") => {
            let last = if !o["lastTimestamp"].is_null() {
                age(&o["lastTimestamp"])
            } else if !o["eventTime"].is_null() {
                age(&o["eventTime"])
            } else {
                created.clone()
            };
            let first = if o["firstTimestamp"].is_null() {
                created.clone()
            } else {
                age(&o["firstTimestamp"])
            };
            let io = &o["involvedObject"];
            let source = {
                let c = s(&o["source"]["component"]);
                let h = s(&o["source"]["host"]);
                if h.is_empty() { c } else { format!("{c}, {h}") }
            };
            vec![
                json!(last),
                json!(s(&o["type"])),
                json!(s(&o["reason"])),
                json!(format!(
                    "{}/{}",
                    s(&io["kind"]).to_lowercase(),
                    s(&io["name"])
                )),
                json!(s(&io["fieldPath"])),
                json!(source),
                json!(s(&o["message"]).trim().to_string()),
                json!(first),
                json!(o["count"].as_i64().unwrap_or(1).to_string()),
                name,
            ]
        }
        ("", "Namespace") => vec![name, json!(s(&st["phase"])), json!(created)],
        ("", "Node") => {
            let ready = st["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .map(|c| {
                    if c["status"] == "True" {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                })
                .unwrap_or("Unknown");
            let roles: Vec<String> = m["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/").map(String::from))
                .collect();
            let addr = |t: &str| {
                st["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|a| a["type"] == t)
                    .map(|a| s(&a["address"]))
                    .unwrap_or_else(|| "<none>".into())
            };
            let info = &st["nodeInfo"];
            vec![
                name,
                json!(ready),
                json!(or_none(roles.join(","))),
                json!(created),
                json!(s(&info["kubeletVersion"])),
                json!(addr("InternalIP")),
                json!(addr("ExternalIP")),
                json!(s(&info["osImage"])),
                json!(s(&info["kernelVersion"])),
                json!(s(&info["containerRuntimeVersion"])),
            ]
        }
        ("", "Endpoints") => {
            let mut eps = Vec::new();
            for sub in o["subsets"].as_array().into_iter().flatten() {
                for a in sub["addresses"].as_array().into_iter().flatten() {
                    for p in sub["ports"].as_array().into_iter().flatten() {
                        eps.push(format!("{}:{}", s(&a["ip"]), s(&p["port"])));
                    }
                }
            }
            vec![name, json!(first_three(eps, "<none>")), json!(created)]
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            let ports = o["ports"].as_array().into_iter().flatten().map(|p| {
                match (p["port"].as_i64(), p["name"].as_str()) {
                    (Some(port), _) => port.to_string(),
                    (None, Some(name)) => name.to_string(),
                    (None, None) => "<unset>".to_string(),
                }
            });
            let addresses = o["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|e| e["addresses"].as_array().into_iter().flatten())
                .map(s);
            vec![
                name,
                json!(s(&o["addressType"])),
                json!(first_three(ports, "<unset>")),
                json!(first_three(addresses, "<unset>")),
                json!(created),
            ]
        }
        ("coordination.k8s.io", "Lease") => {
            vec![name, json!(s(&spec["holderIdentity"])), json!(created)]
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let tref = &spec["scaleTargetRef"];
            let mut targets = Vec::new();
            for (i, mt) in spec["metrics"].as_array().into_iter().flatten().enumerate() {
                if mt["type"] == "Resource" {
                    let res = s(&mt["resource"]["name"]);
                    let want = &mt["resource"]["target"];
                    let cur = st["currentMetrics"]
                        .get(i)
                        .map(|c| &c["resource"]["current"]);
                    let want_s = if want["averageUtilization"].is_null() {
                        s(&want["averageValue"])
                    } else {
                        format!("{}%", s(&want["averageUtilization"]))
                    };
                    let cur_s = match cur {
                        Some(c) if !c["averageUtilization"].is_null() => {
                            format!("{}%", s(&c["averageUtilization"]))
                        }
                        Some(c) if !c["averageValue"].is_null() => s(&c["averageValue"]),
                        _ => "<unknown>".into(),
                    };
                    targets.push(format!("{res}: {cur_s}/{want_s}"));
                }
            }
            vec![
                name,
                json!(format!("{}/{}", s(&tref["kind"]), s(&tref["name"]))),
                json!(or_none(targets.join(", "))),
                json!(spec["minReplicas"].as_i64().unwrap_or(1).to_string()),
                json!(s(&spec["maxReplicas"])),
                json!(st["currentReplicas"].as_i64().unwrap_or(0).to_string()),
                json!(created),
            ]
        }
        ("", "ConfigMap") => {
            let n = o["data"].as_object().map_or(0, |d| d.len())
                + o["binaryData"].as_object().map_or(0, |d| d.len());
            vec![name, json!(n.to_string()), json!(created)]
        }
        ("", "Secret") => vec![
            name,
            json!(s(&o["type"])),
            json!(o["data"].as_object().map_or(0, |d| d.len()).to_string()),
            json!(created),
        ],
        ("", "ServiceAccount") => vec![
            name,
            json!(o["secrets"].as_array().map_or(0, Vec::len).to_string()),
            json!(created),
        ],
        ("storage.k8s.io", "StorageClass") => {
            let default = m["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true";
            vec![
                json!(if default {
                    format!("{} (default)", s(&m["name"]))
                } else {
                    s(&m["name"])
                }),
                json!(s(&o["provisioner"])),
                json!(s(&o["reclaimPolicy"])),
                json!(s(&o["volumeBindingMode"])),
                json!(
                    o["allowVolumeExpansion"]
                        .as_bool()
                        .unwrap_or(false)
                        .to_string()
                ),
                json!(created),
            ]
        }
        _ => vec![name, json!(s(&m["creationTimestamp"]))],
    }
}

/// A partial-object row object, as `includeObject=Metadata` (the default) returns.
pub fn partial_metadata(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
}

/// Renders objects as a Table. `include_object` is the query parameter (`None`,
/// `Metadata` or `Object`).
pub fn table(
    r: &Resource,
    items: &[Arc<Value>],
    include_object: &str,
    resource_version: u64,
    with_columns: bool,
) -> Value {
    let cols: Vec<Value> = if with_columns {
        columns(r)
            .into_iter()
            .map(|(n, t, p)| {
                let mut c =
                    json!({"name": n, "type": t, "format": "", "description": n, "priority": p});
                if n == "Name" {
                    c["format"] = json!("name");
                }
                c
            })
            .collect()
    } else {
        Vec::new()
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let object = match include_object {
                "None" => Value::Null,
                "Object" => (**o).clone(),
                _ => partial_metadata(o),
            };
            json!({"cells": cells(r, o), "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": cols,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 60), "3h1m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
    }

    #[test]
    fn pod_status_prefers_container_reasons() {
        let pod = json!({"status": {"phase": "Running", "containerStatuses": [
            {"ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}});
        assert_eq!(pod_status(&pod), "CrashLoopBackOff");
        let pod = json!({"status": {"phase": "Running", "containerStatuses": [
            {"ready": true, "state": {"running": {}}}]}});
        assert_eq!(pod_status(&pod), "Running");
    }
}
