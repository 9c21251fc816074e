//! networking.k8s.io/v1 with real HTTP: two Services behind one Ingress, routed by host and
//! path through the built-in ingress controller (`curl -H 'Host: …' http://<ingress ip>/`),
//! the default IngressClass, Table output, validation; NetworkPolicies stored and printed.

mod common;

use common::kubectl::Kubectl;
use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig, ServiceProxy};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// kubectl against the sandbox: whether it succeeded, its stdout and its stderr.
async fn kubectl(kubeconfig: &Path, args: &[&str], input: Option<&str>) -> (bool, String, String) {
    let out = Kubectl::new(kubeconfig, Duration::from_secs(30))
        .run_with_input(args, input)
        .await;
    (out.ok, out.stdout, out.stderr)
}

/// An HTTP server on 127.0.0.1 answering `<name> <path>` to every request.
async fn backend(name: &'static str) -> u16 {
    let app = axum::Router::new()
        .fallback(move |uri: http::Uri| async move { format!("{name} {}", uri.path()) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// A selector-less Service with hand-written Endpoints pointing at a local server.
fn service_and_endpoints(name: &str, port: u16) -> [Value; 2] {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}]}});
    let ep = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "http", "port": port}]}]});
    [svc, ep]
}

const INGRESS: &str = r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: hello
spec:
  rules:
  - host: hello.local
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: front, port: {number: 80}}}}
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {name: http}}}}
  - host: api.local
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
"#;

async fn curl(ip: &str, host: &str, path: &str) -> String {
    let out = tokio::process::Command::new("curl")
        .args([
            "-s",
            "-m",
            "5",
            "-H",
            &format!("Host: {host}"),
            &format!("http://{ip}{path}"),
        ])
        .output()
        .await
        .expect("curl is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn ingress_routes_by_host_and_path_to_services() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(
        SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::Standin),
    )
    .await
    .unwrap();
    let proxy = ServiceProxy::start(sandbox.client().unwrap(), None).await;
    let kc = sandbox.kubeconfig_path();
    let (front, api) = (backend("front").await, backend("api").await);
    let items: Vec<Value> = service_and_endpoints("front", front)
        .into_iter()
        .chain(service_and_endpoints("api", api))
        .collect();
    let manifests = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
    let (ok, _, err) = kubectl(kc, &["apply", "-f", "-"], Some(&manifests)).await;
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl(kc, &["apply", "-f", "-"], Some(INGRESS)).await;
    assert!(ok, "{err}");

    let mut ip = String::new();
    for _ in 0..100 {
        let (_, out, _) = kubectl(kc, &["get", "ingress", "hello", "-o", "json"], None).await;
        let ing: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            ing["spec"]["ingressClassName"], "hk8s",
            "the default class is set"
        );
        if let Some(found) = ing["status"]["loadBalancer"]["ingress"][0]["ip"].as_str() {
            ip = found.to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!ip.is_empty(), "the controller publishes its address");
    let mut answers = Vec::new();
    for _ in 0..50 {
        answers = vec![
            curl(&ip, "hello.local", "/").await,
            curl(&ip, "hello.local", "/api/messages").await,
            curl(&ip, "hello.local", "/apiary").await,
            curl(&ip, "api.local", "/").await,
            curl(&ip, "nobody.local", "/").await,
        ];
        if answers[0] == "front /" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        answers,
        [
            "front /",
            "api /api/messages",
            "front /apiary",
            "api /",
            "default backend - 404\n"
        ]
    );

    let (_, table, _) = kubectl(kc, &["get", "ingress"], None).await;
    let row = table.lines().nth(1).unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..5],
        ["hello", "hk8s", "hello.local,api.local", ip.as_str(), "80"],
        "{table}"
    );
    let (_, classes, _) = kubectl(kc, &["get", "ingressclass"], None).await;
    assert!(
        classes.contains("hk8s") && classes.contains("hk8s.dev/ingress-controller"),
        "{classes}"
    );
    proxy.shutdown().await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn ingresses_and_network_policies_are_validated_and_printed() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(
        SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::Standin),
    )
    .await
    .unwrap();
    let kc = sandbox.kubeconfig_path();
    let bad = r#"{"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "bad"},
        "spec": {"rules": [{"host": "10.0.0.1", "http": {"paths": [{"path": "api", "pathType": "Exact",
          "backend": {"service": {"name": "api", "port": {}}}}, {"path": "/", "backend": {"service": {"name": "x", "port": {"number": 80}}}}]}}]}}"#;
    let (ok, _, err) = kubectl(kc, &["create", "-f", "-"], Some(bad)).await;
    assert!(!ok);
    for part in [
        "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address",
        "spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path",
        "spec.rules[0].http.paths[0].backend.service.port: Invalid value",
        "spec.rules[0].http.paths[1].pathType: Required value: pathType must be specified",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    let policy = r#"{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "redis-from-api"},
        "spec": {"podSelector": {"matchLabels": {"app": "redis"}},
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "api"}}}], "ports": [{"port": 6379}]}]}}"#;
    let (ok, _, err) = kubectl(kc, &["create", "-f", "-"], Some(policy)).await;
    assert!(ok, "{err}");
    let (_, out, _) = kubectl(kc, &["get", "netpol", "redis-from-api", "-o", "json"], None).await;
    let np: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));
    assert_eq!(np["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
    let (_, table, _) = kubectl(kc, &["get", "networkpolicies"], None).await;
    assert!(
        table.starts_with("NAME") && table.contains("POD-SELECTOR") && table.contains("app=redis"),
        "{table}"
    );
    let (ok, _, err) = kubectl(
        kc,
        &["create", "-f", "-"],
        Some(r#"{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "bad"}, "spec": {"policyTypes": ["Sideways"]}}"#),
    )
    .await;
    assert!(
        !ok && err.contains("spec.policyTypes[0]: Unsupported value: \"Sideways\""),
        "{err}"
    );
    sandbox.shutdown().await;
}
