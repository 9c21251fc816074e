//! Lessons 0-2 end to end against an in-process sandbox (`hk8s_sandbox::Sandbox`): each
//! lesson with --yes, `verify` passing on the result and failing, with the reason, on a
//! deliberately broken state; `reset` refusing a namespace hk8s did not create.

mod support;

use support::text;

use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig};
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use tempfile::TempDir;

/// A sandbox in a temporary directory plus a private hk8s data dir.
struct Env {
    dir: TempDir,
    sandbox: Sandbox,
    kubeconfig: PathBuf,
}

impl Env {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::start(
            SandboxConfig::new(dir.path().join("sandbox")).with_runtime(NodeRuntime::Standin),
        )
        .await
        .expect("sandbox starts");
        let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
        Self {
            dir,
            sandbox,
            kubeconfig,
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs the hk8s binary against the sandbox (killed after 120 s).
    async fn hk8s(&self, args: &[&str]) -> Output {
        run_hk8s(args, &self.kubeconfig, &self.data_dir()).await
    }

    fn client(&self) -> kube::Client {
        self.sandbox.client().expect("sandbox client")
    }
}

async fn run_hk8s(args: &[&str], kubeconfig: &Path, data: &Path) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("HK8S_DATA_DIR", data)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("HK8S_NAMESPACE")
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(120), child)
        .await
        .unwrap_or_else(|_| panic!("hk8s {args:?} did not finish within 120 s"))
        .expect("hk8s runs")
}

fn assert_ok(out: &Output) -> String {
    let t = text(out);
    assert_eq!(out.status.code(), Some(0), "expected success:\n{t}");
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lessons_zero_to_two_with_yes_then_verify_passes() {
    let env = Env::start().await;

    let t = assert_ok(&env.hk8s(&["lesson", "0", "--yes"]).await);
    assert!(
        t.contains("Using cluster hk8s-sandbox"),
        "names the cluster first:\n{t}"
    );
    assert!(t.contains("✔ API server reachable"), "{t}");
    assert!(t.contains("✔ a node is Ready"), "{t}");
    assert!(t.contains("$ kubectl get nodes"), "{t}");

    let t = assert_ok(&env.hk8s(&["lesson", "1", "--yes"]).await);
    assert!(t.contains("namespace/demo created"), "{t}");
    let ns = Api::<Namespace>::all(env.client())
        .get("demo")
        .await
        .unwrap();
    assert_eq!(
        ns.metadata
            .labels
            .unwrap_or_default()
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("hk8s"),
        "the namespace is marked as hk8s's own"
    );

    let t = assert_ok(&env.hk8s(&["lesson", "2", "--yes"]).await);
    for svc in ["redis", "api", "frontend"] {
        assert!(t.contains(&format!("service/{svc} created")), "{t}");
        assert!(t.contains(&format!("✔ service {svc}:")), "{t}");
    }
    let frontend = Api::<Service>::namespaced(env.client(), "demo")
        .get("frontend")
        .await
        .unwrap();
    let fields = frontend.metadata.managed_fields.unwrap_or_default();
    assert!(
        fields.iter().any(
            |f| f.manager.as_deref() == Some("hk8s") && f.operation.as_deref() == Some("Apply")
        ),
        "server-side apply with field manager hk8s: {fields:?}"
    );

    // Applying again is safe (server-side apply is idempotent).
    let t = assert_ok(&env.hk8s(&["lesson", "2", "--yes", "--step", "3"]).await);
    assert!(t.contains("service/frontend configured"), "{t}");

    let out = env
        .hk8s(&["verify", "0", "1", "2", "--output", "json"])
        .await;
    let t = assert_ok(&out);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {t}"));
    assert_eq!(report["passed"], true, "{t}");
    assert_eq!(report["summary"]["failed"], 0);
    assert_eq!(
        report["checks"].as_array().unwrap().len(),
        6,
        "2 + 1 + 3 checks: {t}"
    );

    let t = assert_ok(&env.hk8s(&[]).await);
    assert!(t.contains("3/8"), "progress bar over the lessons:\n{t}");
    assert!(t.contains("Next: `hk8s lesson 3"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_fail_with_the_reason_on_a_broken_state() {
    let env = Env::start().await;

    let out = env.hk8s(&["verify", "1"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(
            "FAIL lesson 1 · namespace Active: namespace demo missing — run `hk8s lesson 1`"
        ),
        "{t}"
    );

    assert_ok(&env.hk8s(&["lesson", "1", "--yes"]).await);
    assert_ok(&env.hk8s(&["lesson", "2", "--yes"]).await);
    let services = Api::<Service>::namespaced(env.client(), "demo");
    let wrong_selector =
        serde_json::json!({"spec": {"selector": {"app": "hello-k8s", "tier": "wrong"}}});
    services
        .patch(
            "api",
            &PatchParams::default(),
            &Patch::Merge(&wrong_selector),
        )
        .await
        .unwrap();
    let wrong_port = serde_json::json!({"spec": {"ports": [{"port": 80, "targetPort": 9999}]}});
    services
        .patch(
            "frontend",
            &PatchParams::default(),
            &Patch::Merge(&wrong_port),
        )
        .await
        .unwrap();

    let out = env.hk8s(&["verify", "2"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("PASS lesson 2 · service redis"), "{t}");
    assert!(
        t.contains("FAIL lesson 2 · service api: selector is app=hello-k8s,tier=wrong, expected app=hello-k8s,tier=api"),
        "{t}"
    );
    assert!(
        t.contains("FAIL lesson 2 · service frontend: port 80 forwards to targetPort 9999, but the pods listen on 8080"),
        "{t}"
    );

    // Rerunning the lesson's apply step repairs it.
    assert_ok(&env.hk8s(&["lesson", "2", "--yes", "--step", "3"]).await);
    assert_ok(&env.hk8s(&["verify", "2"]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_deletes_only_a_namespace_hk8s_created() {
    let env = Env::start().await;
    let namespaces = Api::<Namespace>::all(env.client());
    let mine = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some("mine".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &mine)
        .await
        .unwrap();

    let out = env.hk8s(&["reset", "-n", "mine", "--yes"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("namespace mine was not created by hk8s"), "{t}");
    assert!(
        namespaces.get_opt("mine").await.unwrap().is_some(),
        "left alone"
    );

    assert_ok(&env.hk8s(&["lesson", "1", "--yes"]).await);
    let out = env.hk8s(&["reset"]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "without a terminal and without --yes nothing is deleted"
    );
    assert!(text(&out).contains("Nothing deleted"), "{}", text(&out));
    let t = assert_ok(&env.hk8s(&["reset", "--yes"]).await);
    assert!(t.contains("namespace/demo deleted"), "{t}");
    let gone = namespaces.get_opt("demo").await.unwrap();
    assert!(
        gone.is_none() || gone.unwrap().metadata.deletion_timestamp.is_some(),
        "demo is deleted or terminating"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_apply_runs_lessons_zero_to_two_without_prompts() {
    let env = Env::start().await;
    let out = env
        .hk8s(&["verify", "--apply", "0", "1", "2", "--output", "junit"])
        .await;
    let t = assert_ok(&out);
    assert!(
        t.contains("<testsuites name=\"hk8s verify\" tests=\"6\" failures=\"0\""),
        "{t}"
    );
    let services = Api::<Service>::namespaced(env.client(), "demo");
    assert!(
        services.get_opt("frontend").await.unwrap().is_some(),
        "--apply applied lesson 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_on_the_sandbox() {
    let env = Env::start().await;
    let out = env.hk8s(&["doctor"]).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("✔ API server reachable: Kubernetes"), "{t}");
    assert!(t.contains("context: cluster hk8s-sandbox"), "{t}");
    assert!(
        t.contains("✔ RBAC: may create deployments in namespace demo"),
        "{t}"
    );
    assert!(
        t.contains("✔ default StorageClass")
            || t.contains("✔ the sandbox provisions volumes itself"),
        "{t}"
    );
    assert!(t.contains("✔ redis-server found"), "{t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_say_what_to_do() {
    let env = Env::start().await;
    let text_config = std::fs::read_to_string(&env.kubeconfig).unwrap();
    let token = env.sandbox.token().to_string();
    assert!(text_config.contains(&token));
    let expired = env.dir.path().join("expired-kubeconfig");
    std::fs::write(&expired, text_config.replace(&token, "expired-token")).unwrap();
    let out = run_hk8s(&["lesson", "1", "--yes"], &expired, &env.data_dir()).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("rejected hk8s's credentials (401 Unauthorized)"),
        "{t}"
    );
    assert!(t.contains("Log in again"), "{t}");
    assert!(!t.contains("panicked"), "{t}");
}
