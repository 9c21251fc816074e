//! NetworkPolicy enforcement (issue 11) with the real kubectl and real processes: in
//! namespace mode a deny-all ingress policy cuts a client pod off from a server pod (by pod
//! IP and through its Service), an allow rule for a label and a named port lets that
//! client back in, and deleting the policies restores access. Egress the same way from the
//! client's side, with the Service judged by the endpoint it reaches, an ipBlock with an
//! exception, and cluster DNS closed by deny-all egress until a port-53 rule allows it. In
//! process mode the node says NetworkPolicies are not enforced.

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

/// The body `from` gets from `url` (empty when it gets nothing within 3 s).
async fn answer(env: &Env, from: &str, url: &str) -> String {
    let curl = format!("curl -s -m 3 {url}");
    let out = env
        .kubectl(&["exec", "-n", "demo", from, "--", "sh", "-c", &curl])
        .await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `from` resolves the Service `web` through the cluster DNS (within 4 s).
async fn resolves(env: &Env, from: &str) -> bool {
    let getent = "timeout 4 getent hosts web.demo.svc.cluster.local.";
    let out = env
        .kubectl(&["exec", "-n", "demo", from, "--", "sh", "-c", getent])
        .await;
    out.status.success() && !out.stdout.is_empty()
}

/// Waits until `from` resolving names is `expected`.
async fn settle_dns(env: &Env, from: &str, expected: bool) {
    let what = format!(
        "{from}'s DNS to be {}",
        if expected { "open" } else { "closed" }
    );
    wait_for(&what, Duration::from_secs(30), async || {
        (resolves(env, from).await == expected).then_some(())
    })
    .await;
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

/// A server answering every GET with its hostname, the pod's name.
const HOSTNAME_SERVER: &str = "import http.server, socket
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = socket.gethostname().encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(('', 8000), H).serve_forever()
";

/// Starts pod `name` serving its name on port 8000, named `http`.
async fn start_server(env: &Env, name: &str, labels: serde_json::Value) {
    env.apply(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "demo", "labels": labels},
        "spec": {"containers": [{"name": "main", "image": "py",
            "command": ["python3", "-c", HOSTNAME_SERVER],
            "ports": [{"name": "http", "containerPort": 8000}]}]}
    }))
    .await;
}

async fn pod_ip(env: &Env, name: &str) -> String {
    env.kubectl_ok(&["get", "pod", name, "-o", "jsonpath={.status.podIP}"])
        .await
}

/// The server pod `web` behind Service `web`, and the pods `client` (`role: client`) and
/// `other`; returns the URLs of web's pod IP and of the Service.
async fn start_pods(env: &Env) -> (String, String) {
    start_server(env, "web", json!({"app": "web"})).await;
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
    let ip = pod_ip(env, "web").await;
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

/// A NetworkPolicy in `demo` for the pods labelled `role: client`.
fn client_policy(name: &str, spec: serde_json::Value) -> serde_json::Value {
    let mut spec = spec;
    spec["podSelector"] = json!({"matchLabels": {"role": "client"}});
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": spec
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn egress_policies_deny_allow_by_label_block_and_dns_and_go_away() {
    let env = Env::start(IMAGES).await;
    if !env.isolated().await {
        env.shutdown().await;
        return;
    }
    let (web_url, svc_url) = start_pods(&env).await;
    start_server(&env, "web2", json!({"app": "web", "copy": "2"})).await;
    env.kubectl_ok(&["wait", "--for=condition=Ready", "pod/web2", "--timeout=60s"])
        .await;
    let web_ip = pod_ip(&env, "web").await;
    let web2_url = format!("http://{}:8000/", pod_ip(&env, "web2").await);
    settle(&env, "client", &web_url, true).await;
    settle(&env, "client", &web2_url, true).await;
    assert!(resolves(&env, "client").await, "DNS before any policy");

    env.apply(client_policy(
        "deny-egress",
        json!({"policyTypes": ["Egress"]}),
    ))
    .await;
    settle(&env, "client", &web_url, false).await;
    assert!(!reaches(&env, "client", &web2_url).await);
    assert!(
        !reaches(&env, "client", &svc_url).await,
        "through the Service"
    );
    assert!(!resolves(&env, "client").await, "DNS is egress too");
    assert!(
        reaches(&env, "other", &web_url).await,
        "other is not selected"
    );
    assert!(reaches(&env, "other", &svc_url).await);
    assert!(resolves(&env, "other").await);

    let web_only = json!({"matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "copy", "operator": "DoesNotExist"}]});
    env.apply(client_policy(
        "to-web",
        json!({"egress": [
        {"to": [{"podSelector": web_only}], "ports": [{"port": "http"}]}]}),
    ))
    .await;
    settle(&env, "client", &web_url, true).await;
    assert!(!reaches(&env, "client", &web2_url).await, "web2 has copy=2");
    for _ in 0..4 {
        let got = answer(&env, "client", &svc_url).await;
        assert_eq!(got, "web", "the Service's one endpoint client may reach");
    }
    assert!(!resolves(&env, "client").await, "no rule allows port 53");

    let kube_dns = json!({
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}});
    env.apply(client_policy(
        "dns",
        json!({"egress": [{"to": [kube_dns],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}),
    ))
    .await;
    settle_dns(&env, "client", true).await;

    let (net, _) = web_ip.rsplit_once('.').expect("an IPv4 pod IP");
    env.apply(client_policy(
        "pods-but-web",
        json!({"egress": [{
        "to": [{"ipBlock": {"cidr": format!("{net}.0/24"), "except": [format!("{web_ip}/32")]}}],
        "ports": [{"protocol": "TCP", "port": 8000}]}]}),
    ))
    .await;
    settle(&env, "client", &web2_url, true).await;
    env.kubectl_ok(&["delete", "networkpolicy", "to-web"]).await;
    settle(&env, "client", &web_url, false).await;
    for _ in 0..4 {
        let got = answer(&env, "client", &svc_url).await;
        assert_eq!(got, "web2", "web is the ipBlock's exception");
    }

    env.kubectl_ok(&["delete", "networkpolicy", "--all"]).await;
    settle(&env, "client", &web_url, true).await;
    assert!(reaches(&env, "client", &web2_url).await);
    assert!(
        reaches(&env, "client", &svc_url).await,
        "through the Service"
    );
    env.shutdown().await;
}
