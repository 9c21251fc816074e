//! A stand-in kubelet for when no real one runs: binds pending pods to the node and marks
//! them Running and Ready, and removes pods marked for deletion. It runs no processes.
//! Test only (cargo feature `standin`): `NodeRuntime::Standin` runs it.

use crate::apimachinery::network::{NODE_NAME, POD_CIDR};
use crate::apimachinery::resources::by_kind;
use crate::apiserver::registry::Api;
use crate::apiserver::registry::defaults;
use crate::apiserver::storage::{EventType, Write};
use rand::Rng;
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::sync::Arc;

fn pod_ip() -> String {
    let base = u32::from(POD_CIDR.0);
    let size = 1u32 << (32 - POD_CIDR.1);
    Ipv4Addr::from(base + rand::rng().random_range(2..size - 1)).to_string()
}

fn running(pod: &Value) -> Value {
    let now = defaults::now();
    let mut p = pod.clone();
    if p["spec"]["nodeName"].as_str().is_none_or(str::is_empty) {
        p["spec"]["nodeName"] = json!(NODE_NAME);
    }
    let statuses: Vec<Value> = p["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": true,
                   "started": true, "restartCount": 0, "state": {"running": {"startedAt": now}}})
        })
        .collect();
    let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": now});
    let ip = pod_ip();
    p["status"] = json!({
        "phase": "Running",
        "qosClass": pod["status"]["qosClass"],
        "hostIP": crate::apimachinery::network::NODE_IP.to_string(),
        "hostIPs": [{"ip": crate::apimachinery::network::NODE_IP.to_string()}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": now,
        "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"), cond("Ready"),
                       cond("ContainersReady"), cond("PodScheduled")],
        "containerStatuses": statuses,
    });
    p
}

fn reconcile(api: &Api, pod: &Value) {
    let pods = by_kind("v1", "Pod").expect("pods are served");
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let uid = pod["metadata"]["uid"].clone();
    let _ = api.store.write(pods, ns, name, |cur| {
        let Some(cur) = cur.filter(|c| c["metadata"]["uid"] == uid) else {
            return Ok(Write::Unchanged(None));
        };
        if !cur["metadata"]["deletionTimestamp"].is_null() {
            let finalizers = cur["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
            return Ok(if finalizers {
                Write::Unchanged(None)
            } else {
                Write::Delete
            });
        }
        if cur["status"]["phase"] == "Pending" {
            return Ok(Write::Put(running(cur)));
        }
        Ok(Write::Unchanged(None))
    });
}

/// Runs until cancelled (the sandbox shuts down).
pub async fn run(api: Arc<Api>) {
    let pods = by_kind("v1", "Pod").expect("pods are served");
    let (existing, rv, mut rx) = api.store.snapshot_and_subscribe(pods, None);
    for p in existing {
        reconcile(&api, &p);
    }
    loop {
        match rx.recv().await {
            Ok(ev) => {
                if ev.rv <= rv || ev.resource.kind != "Pod" || !ev.resource.group.is_empty() {
                    continue;
                }
                if ev.kind != EventType::Deleted {
                    reconcile(&api, &ev.object);
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                let (all, _) = api.store.list(pods, None);
                for p in all {
                    reconcile(&api, &p);
                }
            }
            Err(_) => return,
        }
    }
}
