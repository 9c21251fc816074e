//! A sandbox in process with its own state directory, for tests that drive it with the
//! real kubectl.

#![allow(dead_code)]

pub mod kubectl;

use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig};
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use serde_json::Value;
use std::time::{Duration, Instant};

pub struct Env {
    pub sandbox: Option<Sandbox>,
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A sandbox with the `demo` namespace and these image mappings (`images.yaml` lines).
    pub async fn start(images: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = SandboxConfig::new(dir.path().join("state"));
        let sandbox = Sandbox::start(config).await.expect("starting the sandbox");
        std::fs::write(
            hk8s_sandbox::paths::images_config_path(sandbox.state_dir()),
            format!("images:\n{images}"),
        )
        .unwrap();
        let env = Env {
            sandbox: Some(sandbox),
            dir,
        };
        env.kubectl_ok(&["create", "namespace", "demo"]).await;
        env
    }

    /// Whether pods run in namespaces; when they do not, asserts that the node says why
    /// (the fallback run of the suite sets `HK8S_SANDBOX_ISOLATION=off`).
    pub async fn isolated(&self) -> bool {
        let client = self.sandbox.as_ref().unwrap().client().unwrap();
        let nodes: Api<Node> = Api::all(client);
        let summary = wait_for(
            "the node's isolation annotation",
            Duration::from_secs(20),
            async || {
                let node = nodes.get_opt(hk8s_sandbox::NODE_NAME).await.ok()??;
                node.metadata
                    .annotations?
                    .get(hk8s_sandbox::ISOLATION_ANNOTATION)
                    .cloned()
            },
        )
        .await;
        let off_requested = std::env::var("HK8S_SANDBOX_ISOLATION").is_ok_and(|v| v == "off");
        let root = std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
        if off_requested || !root {
            assert!(summary.starts_with("off ("), "{summary}");
            return false;
        }
        assert!(summary.starts_with("namespaces"), "{summary}");
        true
    }

    /// Runs the real kubectl against this sandbox (namespace `demo`, given before a `--`
    /// that starts a command for `exec`).
    pub async fn kubectl(&self, args: &[&str]) -> std::process::Output {
        let sandbox = self.sandbox.as_ref().expect("the sandbox is running");
        let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        tokio::process::Command::new("kubectl")
            .args(&args[..split])
            .arg("--namespace=demo")
            .args(&args[split..])
            .env("KUBECONFIG", sandbox.kubeconfig_path())
            .output()
            .await
            .expect("kubectl runs")
    }

    /// kubectl's stdout; fails the test when kubectl fails.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pod's log once it contains `needle`; fails the test after 60 s.
    pub async fn logs_with(&self, pod: &str, needle: &str) -> String {
        wait_for(
            &format!("{needle:?} in {pod}'s log"),
            Duration::from_secs(60),
            async || {
                let out = self.kubectl(&["logs", pod]).await;
                let logs = String::from_utf8_lossy(&out.stdout).to_string();
                logs.contains(needle).then_some(logs)
            },
        )
        .await
    }

    /// `kubectl apply -f` of one object.
    pub async fn apply(&self, object: Value) {
        let path = self.dir.path().join("object.json");
        std::fs::write(&path, object.to_string()).unwrap();
        self.kubectl_ok(&["apply", "-f", path.to_str().unwrap()])
            .await;
    }

    pub async fn shutdown(mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            sandbox.shutdown().await;
        }
    }
}

/// A sandbox whose kubelet runs stand-in pods (no processes), for tests of the API alone,
/// and a client of it.
pub async fn start_standin() -> (Sandbox, kube::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = Sandbox::start(
        SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::Standin),
    )
    .await
    .expect("sandbox starts");
    let client = sandbox.client().expect("client");
    (sandbox, client, dir)
}

/// Polls `check` every 200 ms until it answers; fails the test after `timeout`.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
