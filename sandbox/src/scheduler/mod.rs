//! The scheduler: binds a pending pod to the sandbox's node when its requests fit what the
//! node has left, else marks it Unschedulable with the message a real scheduler gives.

use crate::apimachinery::errors::is_benign;
use crate::apimachinery::events::{EventType, Recorder};
use crate::apimachinery::network::NODE_NAME;
use crate::apimachinery::quantity;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

/// CPU (millicores) and memory (bytes) a pod asks for: containers summed, init containers
/// at their maximum; a limit without a request counts as the request, as the API defaults.
pub fn pod_requests(spec: &PodSpec) -> (u64, u64) {
    let one = |c: &k8s_openapi::api::core::v1::Container| {
        let res = c.resources.as_ref();
        let get = |key: &str| {
            res.and_then(|r| r.requests.as_ref())
                .and_then(|m| m.get(key))
                .or_else(|| res.and_then(|r| r.limits.as_ref()).and_then(|m| m.get(key)))
        };
        (
            get("cpu")
                .and_then(|q| quantity::cpu_millis(&q.0))
                .unwrap_or(0),
            get("memory")
                .and_then(|q| quantity::memory_bytes(&q.0))
                .unwrap_or(0),
        )
    };
    let (mut cpu, mut mem) = spec
        .containers
        .iter()
        .map(one)
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    for init in spec.init_containers.iter().flatten() {
        let (c, m) = one(init);
        cpu = cpu.max(c);
        mem = mem.max(m);
    }
    (cpu, mem)
}

fn allocatable(node: &Node) -> (u64, u64, u64) {
    let a = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone())
        .unwrap_or_default();
    (
        a.get("cpu")
            .and_then(|q| quantity::cpu_millis(&q.0))
            .unwrap_or(0),
        a.get("memory")
            .and_then(|q| quantity::memory_bytes(&q.0))
            .unwrap_or(0),
        a.get("pods").and_then(|q| q.0.parse().ok()).unwrap_or(110),
    )
}

fn scheduled_condition(pod: &Pod) -> Option<(String, Option<String>)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .map(|c| (c.status.clone(), c.message.clone()))
}

/// One scheduling pass over `pods` against the node in `nodes`; `events` records
/// Scheduled and FailedScheduling.
pub(crate) async fn reconcile(
    client: &Client,
    events: &Recorder,
    nodes: &[Node],
    pods: &[Pod],
) -> Result<(), kube::Error> {
    let Some(node) = nodes.iter().find(|n| n.name_any() == NODE_NAME) else {
        return Ok(());
    };
    let (cpu_cap, mem_cap, pods_cap) = allocatable(node);
    let running = |p: &&Pod| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE_NAME)
            && !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
    };
    let (mut cpu_used, mut mem_used, mut pods_used) = (0u64, 0u64, 0u64);
    for pod in pods.iter().filter(running) {
        let (c, m) = pod_requests(pod.spec.as_ref().expect("filtered on spec"));
        cpu_used += c;
        mem_used += m;
        pods_used += 1;
    }
    let mut pending: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            p.spec.as_ref().is_some_and(|s| {
                s.node_name.as_deref().unwrap_or_default().is_empty()
                    && s.scheduler_name
                        .as_deref()
                        .is_none_or(|n| n == "default-scheduler")
            }) && p.metadata.deletion_timestamp.is_none()
        })
        .collect();
    pending.sort_by_key(|p| {
        p.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_nanosecond())
            .unwrap_or(0)
    });
    for pod in pending {
        let spec = pod.spec.as_ref().expect("filtered on spec");
        let (cpu, mem) = pod_requests(spec);
        let ns = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        let mut reasons = Vec::new();
        if let Some(selector) = &spec.node_selector
            && !selector
                .iter()
                .all(|(k, v)| node.labels().get(k) == Some(v))
        {
            reasons.push("1 node(s) didn't match Pod's node affinity/selector".to_string());
        }
        if cpu_used + cpu > cpu_cap {
            reasons.push("1 Insufficient cpu".to_string());
        }
        if mem_used + mem > mem_cap {
            reasons.push("1 Insufficient memory".to_string());
        }
        if pods_used + 1 > pods_cap {
            reasons.push("1 Too many pods".to_string());
        }
        let reference = Recorder::reference(pod);
        if !reasons.is_empty() {
            let message = format!(
                "0/1 nodes are available: {}. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
                reasons.join(", ")
            );
            if scheduled_condition(pod) != Some(("False".into(), Some(message.clone()))) {
                let patch = serde_json::json!({ "status": { "conditions": [ {
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": message, "lastTransitionTime": Time(jiff::Timestamp::now()),
                } ] } });
                api.patch_status(
                    &pod.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
                events
                    .publish(&reference, EventType::Warning, "FailedScheduling", &message)
                    .await;
            }
            continue;
        }
        bind(&api, pod).await?;
        cpu_used += cpu;
        mem_used += mem;
        pods_used += 1;
        events
            .publish(
                &reference,
                EventType::Normal,
                "Scheduled",
                &format!(
                    "Successfully assigned {ns}/{} to {NODE_NAME}",
                    pod.name_any()
                ),
            )
            .await;
    }
    Ok(())
}

/// Binds through the `binding` subresource like kube-scheduler; falls back to setting
/// `spec.nodeName` on an API server without it.
async fn bind(api: &Api<Pod>, pod: &Pod) -> Result<(), kube::Error> {
    let name = pod.name_any();
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: pod.namespace(),
            ..Default::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(NODE_NAME.into()),
            api_version: Some("v1".into()),
            ..Default::default()
        },
    };
    match api
        .create_subresource::<Binding, serde_json::Value>(
            "binding",
            &name,
            &PostParams::default(),
            &binding,
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => {
            // Either the pod is gone or binding is unsupported: try the plain field.
            let patch = serde_json::json!({ "spec": { "nodeName": NODE_NAME } });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(e) if is_benign(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Err(e) if is_benign(&e) => return Ok(()),
        Err(e) => return Err(e),
    }
    let patch = serde_json::json!({ "status": { "conditions": [ {
        "type": "PodScheduled", "status": "True", "lastTransitionTime": Time(jiff::Timestamp::now()),
    } ] } });
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}
