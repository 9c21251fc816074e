//! The lessons on a real control plane: the reference (real etcd, kube-apiserver,
//! kube-controller-manager and kube-scheduler 1.37, started by `scripts/reference-up.sh`) with
//! the sandbox's node side joined to it (`hk8s_sandbox::NodeAgent`: the process kubelet, the
//! service proxy, the load-balancer and volume controllers, `metrics.k8s.io` as an aggregated
//! APIService), and the real `hk8s verify --apply --all` run on it through its kubeconfig.
//! Real Deployments, ReplicaSets, StatefulSets, Endpoints, HPA, scheduling and node lifecycle
//! judge hk8s's waits and checks and the kubelet's node protocol (Node status and Lease, pod
//! status, probes). Pods run in network namespaces (root needed): a real API server refuses
//! the process mode's loopback pod addresses in Endpoints.

#[path = "differential/reference.rs"]
mod reference;
mod support;

use hk8s_sandbox::{NODE_NAME, NodeAgent, NodeAgentConfig, NodeNetwork};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use reference::Reference;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};
use support::{ensure_app_binaries, text};

async fn verify_apply(kubeconfig: &Path, data: &Path) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(["verify", "--apply", "--all", "--output", "json"])
        .env("KUBECONFIG", kubeconfig)
        .env("HK8S_DATA_DIR", data)
        .env("NO_COLOR", "1")
        .env_remove("HK8S_KUBECONFIG")
        .env_remove("HK8S_SANDBOX_DIR")
        .env_remove("HK8S_NAMESPACE")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(900), child)
        .await
        .expect("hk8s verify --apply finishes within 15 minutes")
        .expect("hk8s runs")
}

/// The node is Ready, untainted by the real node-lifecycle controller, and its Lease is fresh.
async fn assert_node_healthy(client: &kube::Client) {
    let node = Api::<Node>::all(client.clone())
        .get(NODE_NAME)
        .await
        .unwrap();
    let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
    assert!(taints.is_empty(), "the node was tainted: {taints:?}");
    let ready = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready");
    assert_eq!(ready.map(|c| c.status).as_deref(), Some("True"));
    let lease = Api::<Lease>::namespaced(client.clone(), "kube-node-lease")
        .get(NODE_NAME)
        .await
        .expect("the kubelet's Lease in kube-node-lease");
    let renewed = lease.spec.and_then(|s| s.renew_time).expect("renewTime");
    let age = jiff::Timestamp::now().duration_since(renewed.0);
    assert!(
        age < jiff::SignedDuration::from_secs(30),
        "the Lease was last renewed {age:?} ago"
    );
}

/// The aggregated `metrics.k8s.io` is Available, and the real HPA controller read it.
async fn assert_metrics_served(client: &kube::Client) {
    let gvk = GroupVersionKind::gvk("apiregistration.k8s.io", "v1", "APIService");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "apiservices");
    let apiservice = Api::<DynamicObject>::all_with(client.clone(), &resource)
        .get("v1beta1.metrics.k8s.io")
        .await
        .expect("the metrics.k8s.io APIService");
    let conditions = apiservice.data["status"]["conditions"].clone();
    let available = conditions
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Available" && c["status"] == "True");
    assert!(available, "APIService not Available: {conditions}");
    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), "demo")
        .get("hello-k8s-frontend")
        .await
        .expect("lesson 7's HPA");
    let status = hpa.status.unwrap_or_default();
    let metrics = status.current_metrics.unwrap_or_default();
    assert!(
        !metrics.is_empty(),
        "the real HPA controller read no metrics: {:?}",
        status.conditions
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lesson_passes_on_the_reference_control_plane() {
    ensure_app_binaries();
    let dir = tempfile::tempdir().unwrap();
    let network = NodeNetwork::claim(&dir.path().join("node"))
        .await
        .expect("the node's pod network");
    let started = Instant::now();
    let reference =
        Reference::start_with(&[("HK8S_REFERENCE_SERVICE_CIDR", &network.service_cidr())]);
    let reference_ready = started.elapsed();
    let client = reference.client().await;
    let config = NodeAgentConfig {
        network,
        program_dirs: Vec::new(),
    };
    let agent = NodeAgent::start(client.clone(), config)
        .await
        .expect("the node agent starts");

    let started = Instant::now();
    let out = verify_apply(reference.kubeconfig(), &dir.path().join("data")).await;
    let verified = started.elapsed();
    let t = text(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        let logs = reference.dir().join("logs");
        panic!("{e}:\n{t}\n(reference logs: {})", logs.display())
    });
    let checks = report["checks"].as_array().expect("checks");
    let failed: Vec<&serde_json::Value> = checks.iter().filter(|c| c["passed"] == false).collect();
    assert!(failed.is_empty(), "failed checks: {failed:#?}\n{t}");
    assert_eq!(out.status.code(), Some(0), "{t}");
    let lessons: BTreeSet<u64> = checks.iter().filter_map(|c| c["lesson"].as_u64()).collect();
    assert_eq!(lessons, (0..=7).collect(), "every lesson checked:\n{t}");
    assert_node_healthy(&client).await;
    assert_metrics_served(&client).await;
    eprintln!(
        "reference ready in {:.1} s; hk8s verify --apply --all in {:.1} s",
        reference_ready.as_secs_f64(),
        verified.as_secs_f64()
    );
    agent.shutdown().await;
}
