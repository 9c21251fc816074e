//! Whether a pod fits the node: its requests against what the node has left, its node
//! selector against the node's labels, with the message kube-scheduler gives when not.

use crate::apimachinery::quantity;
use k8s_openapi::api::core::v1::{Container, Node, PodSpec};
use kube::ResourceExt;

/// CPU (millicores) and memory (bytes) a pod asks for: containers summed, init containers
/// at their maximum; a limit without a request counts as the request, as the API defaults.
pub(crate) fn pod_requests(spec: &PodSpec) -> (u64, u64) {
    let one = |c: &Container| {
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

/// What the pods on a node ask for in total (or what a node offers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Resources {
    pub(crate) cpu: u64,
    pub(crate) memory: u64,
    pub(crate) pods: u64,
}

impl Resources {
    /// One pod's requests.
    pub(crate) fn of(spec: &PodSpec) -> Self {
        let (cpu, memory) = pod_requests(spec);
        Self {
            cpu,
            memory,
            pods: 1,
        }
    }

    pub(crate) fn add(&mut self, other: Resources) {
        self.cpu += other.cpu;
        self.memory += other.memory;
        self.pods += other.pods;
    }
}

/// What `node` offers to pods.
pub(crate) fn allocatable(node: &Node) -> Resources {
    let a = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone())
        .unwrap_or_default();
    Resources {
        cpu: a
            .get("cpu")
            .and_then(|q| quantity::cpu_millis(&q.0))
            .unwrap_or(0),
        memory: a
            .get("memory")
            .and_then(|q| quantity::memory_bytes(&q.0))
            .unwrap_or(0),
        pods: a.get("pods").and_then(|q| q.0.parse().ok()).unwrap_or(110),
    }
}

/// `Ok` if a pod with `spec` fits `node` whose pods already use `used`; else the
/// `FailedScheduling` message.
pub(crate) fn fit(spec: &PodSpec, node: &Node, used: Resources) -> Result<(), String> {
    let wants = Resources::of(spec);
    let cap = allocatable(node);
    let mut reasons = Vec::new();
    let cordoned = node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
    let tolerates = spec.tolerations.iter().flatten().any(|t| {
        t.key.as_deref() == Some("node.kubernetes.io/unschedulable")
            && t.effect.as_deref().is_none_or(|e| e == "NoSchedule")
    });
    if cordoned && !tolerates {
        reasons.push("1 node(s) were unschedulable");
    }
    if let Some(selector) = &spec.node_selector
        && !selector
            .iter()
            .all(|(k, v)| node.labels().get(k) == Some(v))
    {
        reasons.push("1 node(s) didn't match Pod's node affinity/selector");
    }
    if used.cpu + wants.cpu > cap.cpu {
        reasons.push("1 Insufficient cpu");
    }
    if used.memory + wants.memory > cap.memory {
        reasons.push("1 Insufficient memory");
    }
    if used.pods + 1 > cap.pods {
        reasons.push("1 Too many pods");
    }
    if reasons.is_empty() {
        return Ok(());
    }
    Err(format!(
        "0/1 nodes are available: {}. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
        reasons.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeStatus, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use std::collections::BTreeMap;

    fn node(cpu: &str, memory: &str) -> Node {
        Node {
            metadata: kube::api::ObjectMeta {
                labels: Some(BTreeMap::from([("disk".into(), "ssd".into())])),
                ..Default::default()
            },
            status: Some(NodeStatus {
                allocatable: Some(BTreeMap::from([
                    ("cpu".into(), Quantity(cpu.into())),
                    ("memory".into(), Quantity(memory.into())),
                    ("pods".into(), Quantity("2".into())),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn spec(cpu: &str) -> PodSpec {
        PodSpec {
            containers: vec![Container {
                name: "app".into(),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([("cpu".into(), Quantity(cpu.into()))])),
                    limits: Some(BTreeMap::from([("memory".into(), Quantity("64Mi".into()))])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            init_containers: Some(vec![Container {
                name: "init".into(),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([("cpu".into(), Quantity("2".into()))])),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn requests_sum_containers_take_the_largest_init_and_default_to_limits() {
        assert_eq!(pod_requests(&spec("250m")), (2000, 64 << 20));
    }

    #[test]
    fn a_pod_that_does_not_fit_gets_the_schedulers_message() {
        let node = node("4", "1Gi");
        assert_eq!(fit(&spec("1"), &node, Resources::default()), Ok(()));
        let used = Resources {
            cpu: 3000,
            memory: 0,
            pods: 1,
        };
        assert_eq!(
            fit(&spec("1"), &node, used),
            Err("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.".into())
        );
        let mut picky = spec("1");
        picky.node_selector = Some(BTreeMap::from([("disk".into(), "hdd".into())]));
        let full = Resources {
            cpu: 0,
            memory: 1 << 30,
            pods: 2,
        };
        let message = fit(&picky, &node, full).unwrap_err();
        assert!(message.starts_with("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 Insufficient memory, 1 Too many pods."), "{message}");
    }
}
