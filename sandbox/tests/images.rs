//! Image tags against a sandbox running real pods, with the real kubectl: images.yaml written
//! before the first start, an unknown tag stalls a rollout with ErrImagePull and
//! ImagePullBackOff (and the kubelet's events) until `rollout undo`, and imagePullPolicy
//! defaults as on a cluster.

mod common;

use common::kubectl::Kubectl;
use hk8s_sandbox::{Sandbox, SandboxConfig};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn an_unknown_tag_stalls_the_rollout_until_undo() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        hk8s_sandbox::paths::images_config_path(&state),
        "images:\n  web:\n    program: sleep\n    args: [\"3600\"]\n    tags: [\"1.0\"]\n",
    )
    .unwrap();
    let sandbox = Sandbox::start(SandboxConfig::new(&state))
        .await
        .expect("images.yaml written before the first start is kept");
    let k = Kubectl::new(sandbox.kubeconfig_path(), TIMEOUT);
    k.ok(&["create", "namespace", "demo"]).await;
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=example.com/team/web:1.0",
        "--replicas=2",
        "-n",
        "demo",
    ])
    .await;
    k.ok(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "demo",
        "--timeout=60s",
    ])
    .await;
    k.ok(&[
        "set",
        "image",
        "deploy/web",
        "web=example.com/team/web:9.9.9",
        "-n",
        "demo",
    ])
    .await;
    let reasons =
        "jsonpath={range .items[*]}{.status.containerStatuses[0].state.waiting.reason} {end}";
    k.eventually(&["get", "pods", "-n", "demo", "-o", reasons], |out| {
        out.contains("ImagePullBackOff")
    })
    .await;
    // The kubelet writes its events in order, after the status: the last one means all.
    let events = k
        .eventually(
            &[
                "get",
                "events",
                "-n",
                "demo",
                "-o",
                "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
            ],
            |out| out.contains("Failed: Error: ImagePullBackOff"),
        )
        .await;
    let reference = "example.com/team/web:9.9.9";
    for expected in [
        format!("Pulling: Pulling image \"{reference}\""),
        format!(
            "Failed: Failed to pull image \"{reference}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": {reference}: not found"
        ),
        "Failed: Error: ErrImagePull".to_string(),
        format!("BackOff: Back-off pulling image \"{reference}\""),
        "Failed: Error: ImagePullBackOff".to_string(),
    ] {
        assert!(
            events.contains(&expected),
            "missing {expected:?} in:\n{events}"
        );
    }
    let stalled = k
        .run(&[
            "rollout",
            "status",
            "deploy/web",
            "-n",
            "demo",
            "--timeout=2s",
        ])
        .await;
    assert!(
        !stalled.ok,
        "the rollout must not complete with an image that has no such tag"
    );
    let available = k
        .ok(&[
            "get",
            "deploy/web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ])
        .await;
    assert_eq!(available, "2", "the old pods keep serving");
    k.ok(&["rollout", "undo", "deploy/web", "-n", "demo"]).await;
    k.ok(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "demo",
        "--timeout=60s",
    ])
    .await;
    let images = "jsonpath={range .items[*]}{.spec.containers[0].image} {end}";
    k.eventually(&["get", "pods", "-n", "demo", "-o", images], |out| {
        !out.contains("9.9.9") && out.contains("web:1.0")
    })
    .await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn image_pull_policy_defaults_as_on_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxConfig::new(dir.path().join("state")))
        .await
        .unwrap();
    let k = Kubectl::new(sandbox.kubeconfig_path(), TIMEOUT);
    let policy = "jsonpath={.spec.containers[0].imagePullPolicy}";
    for (name, image, expected) in [
        ("untagged", "redis", "Always"),
        ("latest", "redis:latest", "Always"),
        ("tagged", "redis:7", "IfNotPresent"),
        ("registry-port", "localhost:5000/redis", "Always"),
        (
            "digest",
            "redis@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "IfNotPresent",
        ),
    ] {
        k.ok(&["run", name, &format!("--image={image}")]).await;
        let got = k.ok(&["get", "pod", name, "-o", policy]).await;
        assert_eq!(got, expected, "{image}");
    }
    sandbox.shutdown().await;
}

/// The argv of a pod's running container, read from /proc through its container ID
/// (`hk8s://<host pid>`).
async fn running_argv(k: &Kubectl, pod: &str) -> Vec<String> {
    let id = "jsonpath={.status.containerStatuses[0].containerID}";
    let out = k
        .eventually(&["get", "pod", pod, "-o", id], |out| {
            out.starts_with("hk8s://")
        })
        .await;
    let pid = out.trim_start_matches("hk8s://");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    String::from_utf8_lossy(&cmdline)
        .split_terminator('\0')
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn command_and_args_replace_the_images_entrypoint_and_cmd() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        hk8s_sandbox::paths::images_config_path(&state),
        "images:\n  web:\n    entrypoint: []\n    cmd: [\"sleep\", \"999\"]\n",
    )
    .unwrap();
    let sandbox = Sandbox::start(SandboxConfig::new(&state)).await.unwrap();
    let k = Kubectl::new(sandbox.kubeconfig_path(), TIMEOUT);
    let api = "--image=hello-k8s-api:0.1.0";
    k.ok(&["run", "api-args", api, "--", "--flag", "x"]).await;
    k.ok(&["run", "api-command", api, "--command", "--", "sleep", "300"])
        .await;
    k.ok(&["run", "web", "--image=web:1"]).await;
    k.ok(&[
        "run",
        "web-args",
        "--image=web:1",
        "--env=T=250",
        "--",
        "sleep",
        "$(T)",
    ])
    .await;
    k.ok(&[
        "run",
        "redis-port",
        "--image=redis:7",
        "--",
        "--port",
        "7100",
    ])
    .await;
    k.ok(&[
        "run",
        "redis-cli",
        "--image=redis:7",
        "--restart=Never",
        "--",
        "redis-cli",
        "--version",
    ])
    .await;

    let argv = running_argv(&k, "api-args").await;
    assert!(argv[0].ends_with("hello-k8s-api"), "{argv:?}");
    assert_eq!(argv[1..], ["--flag", "x"], "args keep the ENTRYPOINT");
    let argv = running_argv(&k, "api-command").await;
    assert!(
        argv[0].ends_with("sleep") && argv[1..] == ["300"],
        "{argv:?}"
    );
    let argv = running_argv(&k, "web").await;
    assert!(
        argv[0].ends_with("sleep") && argv[1..] == ["999"],
        "the image's CMD: {argv:?}"
    );
    let argv = running_argv(&k, "web-args").await;
    assert!(
        argv[0].ends_with("sleep") && argv[1..] == ["250"],
        "args replace CMD: {argv:?}"
    );
    let argv = running_argv(&k, "redis-port").await.join(" ");
    assert!(argv.contains("7100"), "redis-server with the args: {argv}");
    let phase = "jsonpath={.status.phase}";
    k.eventually(&["get", "pod", "redis-cli", "-o", phase], |out| {
        out == "Succeeded"
    })
    .await;
    let logs = k.ok(&["logs", "redis-cli"]).await;
    assert!(
        logs.starts_with("redis-cli "),
        "docker-entrypoint.sh runs the args: {logs}"
    );
    sandbox.shutdown().await;
}
