//! Cluster DNS (issue 14), with the real kubectl and real processes: a pod resolves a
//! Service by its full name and through its search path, a headless Service to its
//! ready pods, and a StatefulSet pod by `<pod>.<service>`.

mod common;

use common::{Env, wait_for};
use serde_json::json;
use std::time::Duration;

const IMAGES: &str = "  shell: sh\n  py: python3\n";

#[tokio::test(flavor = "multi_thread")]
async fn pods_resolve_services_headless_services_and_statefulset_pods() {
    let env = Env::start(IMAGES).await;
    if !env.isolated().await {
        return;
    }
    env.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "api", "namespace": "demo"},
        "spec": {"selector": {"app": "api"}, "ports": [{"port": 5000}]}
    }))
    .await;
    env.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "redis-headless", "namespace": "demo"},
        "spec": {"clusterIP": "None", "selector": {"app": "redis"}, "ports": [{"port": 6379}]}
    }))
    .await;
    env.apply(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "redis", "namespace": "demo"},
        "spec": {"serviceName": "redis-headless", "replicas": 1,
                 "selector": {"matchLabels": {"app": "redis"}},
                 "template": {"metadata": {"labels": {"app": "redis"}},
                   "spec": {"containers": [{"name": "main", "image": "shell",
                     "command": ["sh", "-c", "sleep 1000"]}]}}}
    }))
    .await;
    let script = "for n in api.demo.svc.cluster.local api api.demo redis-0.redis-headless \
        redis-headless; do until getent hosts $n; do sleep 0.2; done; done; echo done; sleep 1000";
    env.apply(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "client", "namespace": "demo"},
        "spec": {"containers": [{"name": "main", "image": "shell",
            "command": ["sh", "-c", script]}]}
    }))
    .await;
    let logs = wait_for(
        "every name to resolve",
        Duration::from_secs(60),
        async || {
            let out = env.kubectl(&["logs", "client"]).await;
            let logs = String::from_utf8_lossy(&out.stdout).to_string();
            logs.contains("done").then_some(logs)
        },
    )
    .await;
    let api_ip = env
        .kubectl_ok(&["get", "svc", "api", "-o", "jsonpath={.spec.clusterIP}"])
        .await;
    let redis_ip = env
        .kubectl_ok(&["get", "pod", "redis-0", "-o", "jsonpath={.status.podIP}"])
        .await;
    let answers: Vec<(&str, &str)> = logs
        .lines()
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            Some((cols.next()?, cols.next()?))
        })
        .collect();
    let ip_of = |name: &str| {
        answers
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(ip, _)| *ip)
            .unwrap_or_else(|| panic!("{name} not in {logs}"))
    };
    assert_eq!(ip_of("api.demo.svc.cluster.local"), api_ip, "{logs}");
    assert_eq!(
        ip_of("redis-0.redis-headless.demo.svc.cluster.local"),
        redis_ip,
        "{logs}"
    );
    assert_eq!(
        ip_of("redis-headless.demo.svc.cluster.local"),
        redis_ip,
        "{logs}"
    );
    env.shutdown().await;
}
