//! The sandbox's one Node object, built here for both writers: the API server's bootstrap
//! (so a sandbox without a kubelet still has its node) and the kubelet, which registers it,
//! refreshes its status and renews its Lease.

use super::cgroups::Enforcement;
use crate::apimachinery::network::{AddressPlan, NODE_IP, NODE_NAME};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;
use std::time::Duration;

/// Annotation on the Node saying how CPU and memory limits are enforced.
pub const LIMITS_ANNOTATION: &str = "hk8s.dev/limit-enforcement";

/// Annotation on the Node saying how pods are isolated (namespaces, or why not).
pub const ISOLATION_ANNOTATION: &str = "hk8s.dev/pod-isolation";

/// What `hk8s sandbox status` and `hk8s doctor` show about pod isolation.
pub(crate) fn isolation_summary(plan: &AddressPlan, off: Option<&str>) -> String {
    match (plan.bridge_name(), off) {
        (Some(bridge), _) => {
            let (pods, len) = plan.pod_cidr();
            let (svcs, slen) = plan.service_cidr();
            let (mode, users) = if crate::rootless::active() {
                (
                    ", rootless: a user namespace maps your user to root inside the sandbox",
                    "runAsUser and runAsGroup not honoured (the user namespace maps one user): \
                     pods run as your user; pod and cluster IPs are reachable only inside the \
                     sandbox (from your shell use NodePorts, LoadBalancer addresses, the \
                     ingress or kubectl port-forward), and pods have no route off this machine",
                )
            } else {
                (
                    "",
                    "securityContext users honoured, a pod without one runs as nobody (65534) \
                     unless its program is root's alone",
                )
            };
            format!(
                "namespaces{mode} (network, UTS, IPC, mount per pod; pods {pods}/{len} and \
                 cluster IPs {svcs}/{slen} on bridge {bridge}; cluster DNS on the bridge; \
                 per-pod resolv.conf and hosts; volumes at their mountPath; PID namespace per \
                 container, or per pod with shareProcessNamespace, with its own /proc; {}; \
                 {users}; NetworkPolicy ingress and egress enforced)",
                match super::cgroups::kill_support() {
                    Some(_) => killing(),
                    None => "no writable cgroups, but all a container started dies with its PID \
                             namespace"
                        .into(),
                }
            )
        }
        (None, reason) => format!(
            "off ({}): pods run as plain processes on loopback addresses; no network, mount, \
             PID or UTS namespaces, no cluster DNS, NetworkPolicies not enforced, every pod \
             runs as the sandbox's user; {}",
            reason.unwrap_or("not requested"),
            killing()
        ),
    }
}

/// How a container's descendants are found when it is stopped.
fn killing() -> String {
    match super::cgroups::kill_support() {
        Some(support) => format!(
            "each container enters its cgroup before it execs and all it started dies with it \
             ({support})"
        ),
        None => "no writable cgroups: a process that leaves its container's process group \
                 (setsid) can outlive it"
            .into(),
    }
}

/// The node as registered: labels as a kubelet sets them, Ready, this machine's capacity.
pub(crate) fn node(plan: &AddressPlan) -> Node {
    let (base, len) = plan.pod_cidr();
    let cidr = format!("{base}/{len}");
    Node {
        metadata: ObjectMeta {
            name: Some(NODE_NAME.into()),
            labels: Some(BTreeMap::from([
                ("kubernetes.io/hostname".to_string(), NODE_NAME.to_string()),
                (
                    "kubernetes.io/os".to_string(),
                    std::env::consts::OS.to_string(),
                ),
                ("kubernetes.io/arch".to_string(), arch().to_string()),
                (
                    "node-role.kubernetes.io/control-plane".to_string(),
                    String::new(),
                ),
            ])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cidr.clone()),
            pod_cidrs: Some(vec![cidr]),
            ..Default::default()
        }),
        status: Some(status()),
    }
}

/// Ready now, with the pressure conditions a healthy kubelet reports.
fn status() -> NodeStatus {
    let now = Time(jiff::Timestamp::now());
    let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    };
    let capacity = capacity();
    NodeStatus {
        capacity: Some(capacity.clone()),
        allocatable: Some(capacity),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            condition(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
            ),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: NODE_IP.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: NODE_NAME.into(),
            },
        ]),
        node_info: Some(NodeSystemInfo {
            architecture: arch().into(),
            container_runtime_version: "hk8s-process://0.1.0".into(),
            kernel_version: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            kube_proxy_version: "v1.37.2-hk8s".into(),
            kubelet_version: "v1.37.2-hk8s".into(),
            operating_system: std::env::consts::OS.into(),
            os_image: "hk8s sandbox (local processes)".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The architecture as Go's GOARCH names it, as Kubernetes labels nodes.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The node's capacity: this machine's CPUs and memory, 110 pods as kubeadm's default.
fn capacity() -> BTreeMap<String, Quantity> {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| {
                    v.split_whitespace()
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                })
        })
        .unwrap_or(4 * 1024 * 1024);
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpus.to_string())),
        ("memory".to_string(), Quantity(format!("{mem_kib}Ki"))),
        ("pods".to_string(), Quantity("110".into())),
        ("ephemeral-storage".to_string(), Quantity("100Gi".into())),
    ])
}

/// Registers the node (if the API server has not) and keeps its Ready condition and Lease
/// fresh, every 10 s until aborted.
pub(super) async fn heartbeat(
    client: Client,
    enforcement: Enforcement,
    plan: AddressPlan,
    isolation: String,
) {
    let api: Api<Node> = Api::all(client.clone());
    loop {
        if let Err(e) = register(&api, &enforcement, &plan, &isolation).await {
            tracing::debug!(error = %e, "node status not written");
        }
        if let Err(e) = renew_lease(&client).await {
            tracing::debug!(error = %e, "node lease not renewed");
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

/// Renews the node's Lease in kube-node-lease, the heartbeat a kubelet keeps and
/// `kubectl describe node` shows.
async fn renew_lease(client: &Client) -> Result<(), kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": NODE_NAME},
        "spec": {
            "holderIdentity": NODE_NAME,
            "leaseDurationSeconds": 40,
            "renewTime": MicroTime(jiff::Timestamp::now()),
        },
    });
    api.patch(
        NODE_NAME,
        &PatchParams::apply("kubelet").force(),
        &Patch::Apply(&lease),
    )
    .await
    .map(|_| ())
}

async fn register(
    api: &Api<Node>,
    enforcement: &Enforcement,
    plan: &AddressPlan,
    isolation: &str,
) -> Result<(), kube::Error> {
    if api.get_opt(NODE_NAME).await?.is_none() {
        let node = node(plan);
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let mut patch = serde_json::json!({ "status": status() });
    if let Some(conditions) = patch["status"]["conditions"].as_array_mut() {
        for c in conditions {
            if let Some(o) = c.as_object_mut() {
                o.retain(|_, v| !v.is_null());
            }
        }
    }
    api.patch_status(NODE_NAME, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let annotate = serde_json::json!({ "metadata": { "annotations": {
        LIMITS_ANNOTATION: enforcement.to_string(),
        ISOLATION_ANNOTATION: isolation,
    } } });
    api.patch(NODE_NAME, &PatchParams::default(), &Patch::Merge(&annotate))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_carries_gos_architecture_name_and_this_machines_capacity() {
        let node = node(&AddressPlan::loopback());
        let labels = node.metadata.labels.unwrap_or_default();
        let expected = if cfg!(target_arch = "x86_64") {
            "amd64"
        } else if cfg!(target_arch = "aarch64") {
            "arm64"
        } else {
            std::env::consts::ARCH
        };
        assert_eq!(labels["kubernetes.io/arch"], expected);
        let status = node.status.unwrap_or_default();
        assert_eq!(status.node_info.unwrap_or_default().architecture, expected);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            status.capacity.unwrap_or_default()["cpu"].0,
            cpus.to_string()
        );
    }
}
