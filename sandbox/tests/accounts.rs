//! Identity and authorization with the real kubectl (the machine's, and 1.37 from
//! `HK8S_TEST_KUBECTL_NEW` when set) and the official Python client (`HK8S_TEST_PYTHON`):
//! default ServiceAccounts and the root CA in every namespace, the `kubernetes` Service,
//! `kubectl create token`, RBAC enforced for ServiceAccount tokens, `kubectl auth can-i
//! --as`, and the token volume the kubelet writes into a pod.

mod common;

use base64::Engine;
use common::kubectl::Kubectl;
use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig};
use serde_json::Value;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

async fn start(runtime: NodeRuntime) -> (Sandbox, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig::new(dir.path().join("state")).with_runtime(runtime);
    let sandbox = Sandbox::start(config).await.unwrap();
    (sandbox, dir)
}

/// kubectl arguments that authenticate with `token` instead of the kubeconfig's.
fn with_token<'a>(token: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--token", token];
    v.extend_from_slice(args);
    v
}

/// The claims of a JWT (its middle part), unverified.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test]
async fn namespaces_get_a_default_service_account_and_the_root_ca_and_the_api_has_a_service() {
    let (sandbox, _dir) = start(NodeRuntime::Processes).await;
    let kubectl = &Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT)[0];
    kubectl.ok(&["create", "namespace", "team"]).await;
    kubectl
        .eventually(&["get", "serviceaccounts", "-n", "team"], |o| {
            o.contains("default")
        })
        .await;
    let ca = kubectl
        .eventually(
            &[
                "get",
                "configmap",
                "kube-root-ca.crt",
                "-n",
                "team",
                "-o",
                "jsonpath={.data.ca\\.crt}",
            ],
            |o| !o.is_empty(),
        )
        .await;
    assert_eq!(
        ca.trim(),
        sandbox.ca_pem().trim(),
        "the sandbox's CA is published"
    );
    kubectl
        .ok(&["delete", "serviceaccount", "default", "-n", "team"])
        .await;
    kubectl
        .ok(&["delete", "configmap", "kube-root-ca.crt", "-n", "team"])
        .await;
    kubectl
        .eventually(
            &[
                "get",
                "serviceaccount",
                "default",
                "-n",
                "team",
                "-o",
                "name",
            ],
            |o| o.trim() == "serviceaccount/default",
        )
        .await;
    kubectl
        .eventually(
            &[
                "get",
                "configmap",
                "kube-root-ca.crt",
                "-n",
                "team",
                "-o",
                "name",
            ],
            |o| o.trim() == "configmap/kube-root-ca.crt",
        )
        .await;
    for ns in ["default", "kube-system"] {
        kubectl
            .ok(&["get", "serviceaccount", "default", "-n", ns])
            .await;
    }
    let svc = kubectl
        .ok(&["get", "service", "kubernetes", "-n", "default"])
        .await;
    assert!(
        svc.contains("ClusterIP") && svc.contains("443/TCP"),
        "{svc}"
    );
    let port = kubectl
        .ok(&[
            "get",
            "endpointslice",
            "kubernetes",
            "-n",
            "default",
            "-o",
            "jsonpath={.endpoints[0].addresses[0]}:{.ports[0].port}",
        ])
        .await;
    assert_eq!(port, format!("127.0.0.1:{}", sandbox.addr().port()));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn service_account_tokens_get_what_rbac_grants_and_nothing_else() {
    let (sandbox, _dir) = start(NodeRuntime::Standin).await;
    for (i, kubectl) in Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT)
        .iter()
        .enumerate()
    {
        let ns = format!("rbac{i}");
        let sa_user = format!("system:serviceaccount:{ns}:robot");
        kubectl.ok(&["create", "namespace", &ns]).await;
        kubectl
            .ok(&["create", "serviceaccount", "robot", "-n", &ns])
            .await;
        let token = kubectl.ok(&["create", "token", "robot", "-n", &ns]).await;
        let token = token.trim();
        let c = claims(token);
        assert_eq!(c["sub"], sa_user.as_str(), "{c}");
        assert_eq!(c["iss"], "https://kubernetes.default.svc.cluster.local");
        assert_eq!(c["aud"][0], "https://kubernetes.default.svc.cluster.local");
        assert_eq!(c["kubernetes.io"]["namespace"], ns.as_str());
        assert_eq!(c["kubernetes.io"]["serviceaccount"]["name"], "robot");
        let lifetime = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
        assert_eq!(lifetime, 3600, "the default duration is an hour");
        let who = kubectl.ok(&with_token(token, &["auth", "whoami"])).await;
        assert!(
            who.contains(&sa_user) && who.contains("system:serviceaccounts"),
            "{who}"
        );

        let denied = kubectl
            .fails(&with_token(token, &["get", "pods", "-n", &ns]))
            .await;
        assert!(
            denied.contains(&format!(
                "pods is forbidden: User \"{sa_user}\" cannot list resource \"pods\" in API group \"\" in the namespace \"{ns}\""
            )),
            "{denied}"
        );
        kubectl
            .ok(&[
                "create",
                "role",
                "reader",
                "--verb=get,list,watch",
                "--resource=pods",
                "-n",
                &ns,
            ])
            .await;
        kubectl
            .ok(&[
                "create",
                "rolebinding",
                "robot-reads",
                "--role=reader",
                &format!("--serviceaccount={ns}:robot"),
                "-n",
                &ns,
            ])
            .await;
        let bindings = kubectl
            .ok(&["get", "rolebinding", "robot-reads", "-n", &ns, "-o", "wide"])
            .await;
        assert!(
            bindings.contains("Role/reader") && bindings.contains(&format!("{ns}/robot")),
            "{bindings}"
        );
        let listed = kubectl
            .run(&with_token(token, &["get", "pods", "-n", &ns]))
            .await;
        assert!(
            listed.ok && listed.stderr.contains("No resources found"),
            "{}",
            listed.stderr
        );
        kubectl
            .ok(&["run", "web", "--image=nginx", "-n", &ns])
            .await;
        kubectl
            .ok(&with_token(token, &["get", "pod", "web", "-n", &ns]))
            .await;
        let delete = kubectl
            .fails(&with_token(token, &["delete", "pod", "web", "-n", &ns]))
            .await;
        assert!(
            delete.contains(&format!(
                "pods \"web\" is forbidden: User \"{sa_user}\" cannot delete resource \"pods\""
            )),
            "{delete}"
        );
        let elsewhere = kubectl
            .fails(&with_token(token, &["get", "pods", "-n", "default"]))
            .await;
        assert!(
            elsewhere.contains("in the namespace \"default\""),
            "{elsewhere}"
        );
        let secrets = kubectl
            .fails(&with_token(token, &["get", "secrets", "-n", &ns]))
            .await;
        assert!(
            secrets.contains("cannot list resource \"secrets\""),
            "{secrets}"
        );

        let can = |verb: &'static str, what: &'static str| {
            let user = sa_user.clone();
            let ns = ns.clone();
            async move {
                let out = kubectl
                    .run(&[
                        "auth",
                        "can-i",
                        &format!("--as={user}"),
                        verb,
                        what,
                        "-n",
                        &ns,
                    ])
                    .await;
                out.stdout.trim().to_string()
            }
        };
        assert_eq!(can("list", "pods").await, "yes");
        assert_eq!(can("delete", "pods").await, "no");
        assert_eq!(can("list", "deployments.apps").await, "no");
        kubectl
            .ok(&[
                "create",
                "clusterrolebinding",
                &format!("robot-view-{i}"),
                "--clusterrole=view",
                &format!("--serviceaccount={ns}:robot"),
            ])
            .await;
        assert_eq!(can("list", "deployments.apps").await, "yes");
        kubectl
            .ok(&with_token(token, &["get", "deployments", "-A"]))
            .await;
        let secrets = kubectl
            .fails(&with_token(token, &["get", "secrets", "-A"]))
            .await;
        assert!(secrets.contains("at the cluster scope"), "{secrets}");

        let short = kubectl
            .fails(&["create", "token", "robot", "-n", &ns, "--duration=5m"])
            .await;
        assert!(
            short.contains("may not specify a duration less than 10 minutes"),
            "{short}"
        );
        let other = kubectl
            .ok(&["create", "token", "robot", "-n", &ns, "--audience=vault"])
            .await;
        let refused = kubectl
            .fails(&["--token", other.trim(), "get", "pods", "-n", &ns])
            .await;
        assert!(
            refused.contains("Unauthorized"),
            "a token for another audience: {refused}"
        );
        kubectl
            .ok(&["delete", "serviceaccount", "robot", "-n", &ns])
            .await;
        let gone = kubectl
            .fails(&with_token(token, &["get", "pods", "-n", &ns]))
            .await;
        assert!(gone.contains("Unauthorized"), "the account is gone: {gone}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_python_client_is_refused_and_allowed_by_the_rules() {
    let Some(python) = std::env::var_os("HK8S_TEST_PYTHON").filter(|p| !p.is_empty()) else {
        eprintln!(
            "HK8S_TEST_PYTHON is not set (scripts/test.sh sets it): skipping the Python client"
        );
        return;
    };
    let (sandbox, dir) = start(NodeRuntime::Standin).await;
    let kubectl = &Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT)[0];
    kubectl.ok(&["create", "namespace", "py"]).await;
    kubectl
        .ok(&["create", "serviceaccount", "app", "-n", "py"])
        .await;
    kubectl
        .ok(&[
            "create",
            "rolebinding",
            "app-edit",
            "--clusterrole=edit",
            "--serviceaccount=py:app",
            "-n",
            "py",
        ])
        .await;
    let token = kubectl.ok(&["create", "token", "app", "-n", "py"]).await;
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, sandbox.ca_pem()).unwrap();
    let script = r#"
import sys
from kubernetes import client
cfg = client.Configuration()
cfg.host, cfg.ssl_ca_cert = sys.argv[1], sys.argv[2]
cfg.api_key = {"authorization": "Bearer " + sys.argv[3]}
v1 = client.CoreV1Api(client.ApiClient(cfg))
v1.create_namespaced_config_map("py", {"metadata": {"name": "settings"}, "data": {"k": "v"}})
print("configmaps", [c.metadata.name for c in v1.list_namespaced_config_map("py").items])
try:
    v1.list_namespace()
except client.exceptions.ApiException as e:
    print("namespaces", e.status, e.reason)
"#;
    let out = tokio::process::Command::new(python)
        .args([
            "-c",
            script,
            &sandbox.url(),
            ca.to_str().unwrap(),
            token.trim(),
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("configmaps ['settings']"), "{stdout}");
    assert!(stdout.contains("namespaces 403 Forbidden"), "{stdout}");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn pods_get_a_token_volume_the_api_server_accepts() {
    let (sandbox, _dir) = start(NodeRuntime::Processes).await;
    std::fs::write(
        hk8s_sandbox::paths::images_config_path(sandbox.state_dir()),
        "images:\n  sleeper: { program: sleep, args: [\"300\"] }\n",
    )
    .unwrap();
    let kubectl = &Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT)[0];
    kubectl.ok(&["create", "namespace", "demo"]).await;
    kubectl
        .eventually(
            &[
                "get",
                "serviceaccount",
                "default",
                "-n",
                "demo",
                "-o",
                "name",
            ],
            |o| !o.is_empty(),
        )
        .await;
    kubectl
        .eventually(
            &[
                "get",
                "configmap",
                "kube-root-ca.crt",
                "-n",
                "demo",
                "-o",
                "name",
            ],
            |o| !o.is_empty(),
        )
        .await;
    kubectl
        .ok(&["run", "app", "--image=sleeper", "-n", "demo"])
        .await;
    let pod: Value = serde_json::from_str(
        &kubectl
            .ok(&["get", "pod", "app", "-n", "demo", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    let volume = pod["spec"]["volumes"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(volume.starts_with("kube-api-access-"), "{pod:#}");
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    kubectl
        .eventually(
            &[
                "get",
                "pod",
                "app",
                "-n",
                "demo",
                "-o",
                "jsonpath={.status.phase}",
            ],
            |o| o == "Running",
        )
        .await;
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let dir = sandbox
        .state_dir()
        .join("pods")
        .join(uid)
        .join("volumes")
        .join(&volume);
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap_or_else(|e| panic!("{f} in {}: {e}", dir.display()))
    };
    assert_eq!(read("namespace"), "demo");
    assert_eq!(read("ca.crt").trim(), sandbox.ca_pem().trim());
    let token = read("token");
    let c = claims(&token);
    assert_eq!(
        c["kubernetes.io"]["pod"]["name"], "app",
        "bound to the pod: {c}"
    );
    assert!(c["kubernetes.io"]["warnafter"].is_i64(), "{c}");
    let who = kubectl.ok(&["--token", &token, "auth", "whoami"]).await;
    assert!(who.contains("system:serviceaccount:demo:default"), "{who}");
    kubectl
        .ok(&["delete", "pod", "app", "-n", "demo", "--wait=true"])
        .await;
    let refused = kubectl.fails(&["--token", &token, "auth", "whoami"]).await;
    assert!(
        refused.contains("Unauthorized"),
        "the pod's token dies with it: {refused}"
    );
    sandbox.shutdown().await;
}
