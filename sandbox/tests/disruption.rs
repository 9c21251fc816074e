//! PodDisruptionBudgets and the eviction subresource with the real kubectl (the machine's,
//! and 1.37 from `HK8S_TEST_KUBECTL_NEW` for the last drain when set): the disruption
//! controller's status, `kubectl cordon`/`uncordon`, and `kubectl drain
//! --ignore-daemonsets` evicting only what the budget allows.

mod common;

use common::kubectl::Kubectl;
use hk8s_sandbox::{Sandbox, SandboxConfig};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
const NODE: &str = "hk8s-sandbox";
const VIOLATES: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

impl Kubectl {
    /// The names of the `app=web` pods, sorted, with their phases.
    async fn web_pods(&self) -> Vec<String> {
        let out = self
            .ok(&[
                "get",
                "pods",
                "-n",
                "demo",
                "-l",
                "app=web",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}",
            ])
            .await;
        let mut pods: Vec<String> = out.lines().map(String::from).collect();
        pods.sort();
        pods
    }
}

fn running(pods: &str) -> usize {
    pods.lines().filter(|l| l.ends_with("=Running")).count()
}

#[tokio::test]
async fn drain_evicts_only_what_the_disruption_budget_allows() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxConfig::new(dir.path().join("state")))
        .await
        .unwrap();
    std::fs::write(
        hk8s_sandbox::paths::images_config_path(sandbox.state_dir()),
        "images:\n  sleeper: { program: sleep, args: [\"300\"] }\n",
    )
    .unwrap();
    let kubectl = Kubectl::new(sandbox.kubeconfig_path(), TIMEOUT);
    let pods_args = [
        "get",
        "pods",
        "-n",
        "demo",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}",
    ];
    kubectl.ok(&["create", "namespace", "demo"]).await;
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
        .ok(&[
            "create",
            "deployment",
            "web",
            "--image=sleeper",
            "--replicas=2",
            "-n",
            "demo",
        ])
        .await;
    kubectl
        .ok(&[
            "rollout",
            "status",
            "deployment/web",
            "-n",
            "demo",
            "--timeout=60s",
        ])
        .await;
    kubectl
        .ok(&[
            "create",
            "pdb",
            "web",
            "--selector=app=web",
            "--min-available=2",
            "-n",
            "demo",
        ])
        .await;
    let status = kubectl
        .eventually(
            &["get", "pdb", "web", "-n", "demo", "-o", "jsonpath={.status.expectedPods}/{.status.desiredHealthy}/{.status.currentHealthy}/{.status.disruptionsAllowed}"],
            |o| o == "2/2/2/0",
        )
        .await;
    assert_eq!(status, "2/2/2/0");
    let table = kubectl.ok(&["get", "pdb", "-n", "demo"]).await;
    assert!(
        table.contains("MIN AVAILABLE") && table.contains("ALLOWED DISRUPTIONS"),
        "{table}"
    );
    let before = kubectl.web_pods().await;

    // The budget allows nothing: drain cordons the node and keeps being refused.
    let drain = kubectl
        .run(&["drain", NODE, "--ignore-daemonsets", "--timeout=6s"])
        .await;
    assert!(!drain.ok, "{}", drain.stdout);
    assert!(drain.stderr.contains(VIOLATES), "{}", drain.stderr);
    let nodes = kubectl.ok(&["get", "nodes"]).await;
    assert!(nodes.contains("SchedulingDisabled"), "{nodes}");
    assert_eq!(kubectl.web_pods().await, before, "nothing was evicted");

    // One disruption allowed: one pod goes, its replacement cannot be scheduled on the
    // cordoned node, and the second eviction is refused.
    kubectl
        .ok(&[
            "patch",
            "pdb",
            "web",
            "-n",
            "demo",
            "--type=merge",
            "-p",
            "{\"spec\":{\"minAvailable\":1}}",
        ])
        .await;
    kubectl
        .eventually(
            &[
                "get",
                "pdb",
                "web",
                "-n",
                "demo",
                "-o",
                "jsonpath={.status.disruptionsAllowed}",
            ],
            |o| o == "1",
        )
        .await;
    let drain = kubectl
        .run(&["drain", NODE, "--ignore-daemonsets", "--timeout=8s"])
        .await;
    assert!(
        !drain.ok && drain.stderr.contains(VIOLATES),
        "{}",
        drain.stderr
    );
    assert!(drain.stdout.contains("evicted"), "{}", drain.stdout);
    let after = kubectl.eventually(&pods_args, |o| running(o) == 1).await;
    assert!(
        after.contains("=Pending"),
        "the replacement waits for the node: {after}"
    );
    let pending = kubectl
        .eventually(
            &[
                "get",
                "events",
                "-n",
                "demo",
                "--field-selector=reason=FailedScheduling",
            ],
            |o| o.contains("node(s) were unschedulable"),
        )
        .await;
    assert!(pending.contains("node(s) were unschedulable"), "{pending}");

    // Uncordoned, the replacement runs; with no pod required, a drain completes.
    kubectl.ok(&["uncordon", NODE]).await;
    kubectl.eventually(&pods_args, |o| running(o) == 2).await;
    kubectl
        .ok(&[
            "patch",
            "pdb",
            "web",
            "-n",
            "demo",
            "--type=merge",
            "-p",
            "{\"spec\":{\"minAvailable\":0}}",
        ])
        .await;
    kubectl
        .eventually(
            &[
                "get",
                "pdb",
                "web",
                "-n",
                "demo",
                "-o",
                "jsonpath={.status.disruptionsAllowed}",
            ],
            |o| o == "2",
        )
        .await;
    let kubectls = Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT);
    let last = kubectls.last().unwrap();
    let drained = last
        .ok(&["drain", NODE, "--ignore-daemonsets", "--timeout=50s"])
        .await;
    assert!(
        drained.contains(&format!("node/{NODE} drained")),
        "{drained}"
    );
    let left = kubectl.ok(&pods_args).await;
    assert_eq!(running(&left), 0, "every pod was evicted: {left}");
    last.ok(&["uncordon", NODE]).await;
    kubectl.eventually(&pods_args, |o| running(o) == 2).await;
    sandbox.shutdown().await;
}
