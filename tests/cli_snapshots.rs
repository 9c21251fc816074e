//! Snapshots of the CLI's fixed output: `lessons`, `--help`, and the shape of
//! `verify --output json|junit` (against a cluster that does not answer).
//! `UPDATE_EXPECTED=1 cargo test --test cli_snapshots` rewrites tests/expected/.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hk8s(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(args)
        .env("HK8S_DATA_DIR", data_dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .env_remove("KUBECONFIG")
        .env_remove("HK8S_NAMESPACE")
        .env_remove("HK8S_CONTEXT")
        .env_remove("HK8S_KUBECONFIG")
        .env_remove("HK8S_REGISTRY")
        .output()
        .expect("run hk8s")
}

fn expect_snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expected")
        .join(name);
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}; run with UPDATE_EXPECTED=1",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "output differs from tests/expected/{name}"
    );
}

/// A kubeconfig whose server is a loopback port nobody listens on.
fn dead_cluster_kubeconfig(dir: &Path) -> PathBuf {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: dead\nclusters:\n- name: dead\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: dead\n  context:\n    cluster: dead\n    user: dead\nusers:\n- name: dead\n  user:\n    token: t\n"
        ),
    )
    .expect("write kubeconfig");
    path
}

#[test]
fn lessons_listing_matches_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let out = hk8s(&["lessons"], dir.path());
    assert!(out.status.success());
    expect_snapshot("lessons.txt", &String::from_utf8(out.stdout).unwrap());
}

#[test]
fn help_matches_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let out = hk8s(&["--help"], dir.path());
    assert!(out.status.success());
    expect_snapshot("help.txt", &String::from_utf8(out.stdout).unwrap());
    let out = hk8s(&["verify", "--help"], dir.path());
    assert!(out.status.success());
    expect_snapshot("verify-help.txt", &String::from_utf8(out.stdout).unwrap());
}

#[test]
fn verify_json_has_one_entry_per_check_and_fails_on_a_dead_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dead_cluster_kubeconfig(dir.path());
    let out = hk8s(
        &[
            "verify",
            "0",
            "1",
            "2",
            "--output",
            "json",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "a failed check must exit 1");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(report["passed"], false);
    assert_eq!(report["namespace"], "demo");
    assert_eq!(report["cluster"], "dead");
    let checks = report["checks"].as_array().expect("checks array");
    assert_eq!(
        checks.len(),
        3,
        "one unreachable-API entry per lesson: {checks:?}"
    );
    let first = &checks[0];
    assert_eq!(first["lesson"], 0);
    assert_eq!(first["name"], "API server reachable");
    assert!(
        first["detail"]
            .as_str()
            .unwrap()
            .contains("does not answer"),
        "the reason says what happened: {first}"
    );
    let mut shape = report.clone();
    for c in shape["checks"].as_array_mut().unwrap() {
        c["detail"] = "<detail>".into();
    }
    expect_snapshot(
        "verify-dead-cluster.json",
        &serde_json::to_string_pretty(&shape).unwrap(),
    );
}

#[test]
fn verify_junit_is_xml_with_a_failure_per_failed_check() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dead_cluster_kubeconfig(dir.path());
    let out = hk8s(
        &[
            "verify",
            "0",
            "--output",
            "junit",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(xml.starts_with("<?xml"));
    assert!(
        xml.contains("<testsuites name=\"hk8s verify\" tests=\"1\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<testsuite name=\"lesson 0: A cluster to work on\""),
        "{xml}"
    );
    assert!(xml.contains("<failure message="), "{xml}");
    assert!(xml.trim_end().ends_with("</testsuites>"));
}

#[test]
fn no_cluster_without_a_terminal_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(["lesson", "1"])
        .env("HK8S_DATA_DIR", dir.path())
        .env("HOME", dir.path())
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("HK8S_KUBECONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("no Kubernetes cluster is configured"), "{err}");
    assert!(err.contains("--sandbox"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_lesson_number_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = hk8s(&["lesson", "42"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("there is no lesson 42"), "{err}");
    assert!(err.contains("0 to 7"), "{err}");
}

#[test]
fn completions_are_generated_for_bash() {
    let dir = tempfile::tempdir().unwrap();
    let out = hk8s(&["completions", "bash"], dir.path());
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains("_hk8s()"), "bash completion function");
    assert!(script.contains("verify"), "subcommands are completed");
    let out = hk8s(&["completions", "zsh"], dir.path());
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(
        script.contains("3\\:\"Deployments\"")
            && script.contains("7\\:\"Horizontal Pod Autoscaler\""),
        "lesson numbers are offered with their titles:\n{script}"
    );
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(["lessons"])
        .env("HK8S_DATA_DIR", dir.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run hk8s");
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}

#[test]
fn manifests_export_rewrites_images_and_never_overwrites_silently() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("k8s");
    let t = target.to_str().unwrap();
    let out = hk8s(
        &["manifests", "export", t, "--registry", "localhost:5000"],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 13);
    let api = std::fs::read_to_string(target.join("03-api-deployment.yml")).unwrap();
    assert!(
        api.contains("image: localhost:5000/hello-k8s-api:0.1.0"),
        "{api}"
    );
    let redis = std::fs::read_to_string(target.join("01-redis-deployment.yml")).unwrap();
    assert!(
        redis.contains("image: redis:7.2.4"),
        "redis is not ours to rewrite: {redis}"
    );

    std::fs::write(target.join("06-frontend-service.yml"), "edited by me").unwrap();
    let out = hk8s(&["manifests", "export", t], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists; pass --force"));
    assert_eq!(
        std::fs::read_to_string(target.join("06-frontend-service.yml")).unwrap(),
        "edited by me",
        "nothing is lost"
    );

    let out = hk8s(&["manifests", "show", "13"], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: HorizontalPodAutoscaler"));
    let out = hk8s(&["manifests", "list"], dir.path());
    let list = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        list.contains("09-redis-with-pv.yml") && list.contains("lesson 5"),
        "{list}"
    );
}
