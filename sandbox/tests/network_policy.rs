//! NetworkPolicy enforcement (issue 11) with the real kubectl and real processes: in
//! namespace mode a deny-all ingress policy cuts a client pod off from a server pod (by pod
//! IP and through its Service), an allow rule for a label and a named port lets that
//! client back in, and deleting the policies restores access; in process mode the node
//! says NetworkPolicies are not enforced.

mod common;

use common::{Env, wait_for};
use serde_json::json;
use std::time::Duration;

const IMAGES: &str = "  shell: sh\n  py: python3\n";

/// Whether `from` gets the server's page at `url` (curl gives up after 3 s).
async fn reaches(env: &Env, from: &str, url: &str) -> bool {
    // `Env::kubectl` appends `--namespace=demo`, which `sh -c` takes as its `$0`.
    let curl = format!("curl -s -o /dev/null -m 3 -w '%{{http_code}}' {url}");
    let out = env
        .kubectl(&["exec", "-n", "demo", from, "--", "sh", "-c", &curl])
        .await;
    String::from_utf8_lossy(&out.stdout) == "200"
}

/// Waits until `from` reaching `url` is `expected` (rules follow policies within seconds).
async fn settle(env: &Env, from: &str, url: &str, expected: bool) {
    let what = format!(
        "{from} → {url} to be {}",
        if expected { "open" } else { "closed" }
    );
    wait_for(&what, Duration::from_secs(30), async || {
        (reaches(env, from, url).await == expected).then_some(())
    })
    .await;
}

async fn start_pods(env: &Env) -> (String, String) {
    env.apply(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "demo", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "main", "image": "py",
            "command": ["python3", "-m", "http.server", "8000"],
            "ports": [{"name": "http", "containerPort": 8000}]}]}
    }))
    .await;
    env.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8000}]}
    }))
    .await;
    for (name, labels) in [("client", json!({"role": "client"})), ("other", json!({}))] {
        env.apply(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "demo", "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "shell",
                "command": ["sh", "-c", "sleep 1000"]}]}
        }))
        .await;
    }
    env.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/web",
        "pod/client",
        "pod/other",
        "--timeout=60s",
    ])
    .await;
    let ip = env
        .kubectl_ok(&["get", "pod", "web", "-o", "jsonpath={.status.podIP}"])
        .await;
    let svc = env
        .kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"])
        .await;
    (format!("http://{ip}:8000/"), format!("http://{svc}/"))
}

#[tokio::test(flavor = "multi_thread")]
async fn ingress_policies_deny_allow_by_label_and_go_away() {
    let env = Env::start(IMAGES).await;
    if !env.isolated().await {
        let node = env
            .kubectl_ok(&[
                "get",
                "node",
                "-o",
                "jsonpath={.items[0].metadata.annotations}",
            ])
            .await;
        assert!(node.contains("NetworkPolicies not enforced"), "{node}");
        env.shutdown().await;
        return;
    }
    let (pod_url, svc_url) = start_pods(&env).await;
    // The server has no readiness probe: wait until it answers.
    settle(&env, "client", &pod_url, true).await;
    for from in ["client", "other"] {
        for url in [&pod_url, &svc_url] {
            assert!(
                reaches(&env, from, url).await,
                "{from} → {url} before any policy"
            );
        }
    }
    env.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": "demo"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}
    }))
    .await;
    settle(&env, "client", &pod_url, false).await;
    assert!(
        !reaches(&env, "client", &svc_url).await,
        "through the Service"
    );
    assert!(!reaches(&env, "other", &pod_url).await);
    env.apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "web-from-clients", "namespace": "demo"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                              "ports": [{"port": "http"}]}]}
    }))
    .await;
    settle(&env, "client", &pod_url, true).await;
    assert!(
        reaches(&env, "client", &svc_url).await,
        "through the Service"
    );
    assert!(
        !reaches(&env, "other", &pod_url).await,
        "other has no role=client"
    );
    assert!(
        !reaches(&env, "other", &svc_url).await,
        "nor through the Service"
    );
    env.kubectl_ok(&["delete", "networkpolicy", "deny-all", "web-from-clients"])
        .await;
    settle(&env, "other", &pod_url, true).await;
    assert!(
        reaches(&env, "other", &svc_url).await,
        "through the Service"
    );
    env.shutdown().await;
}
