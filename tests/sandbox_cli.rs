//! `hk8s sandbox up --detach | status | kubeconfig | down` as a learner runs them, with
//! the real kubectl in between: objects survive down and up; a corrupt store is refused.

mod support;

use support::text;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn run(cmd: &mut Command) -> Output {
    support::run_within(cmd, Duration::from_secs(30))
}

fn hk8s(state: &Path, args: &[&str]) -> Output {
    support::sandbox_command(state, args, Duration::from_secs(30))
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    run(Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig))
}

/// Stops a background sandbox the test left running (a failed assertion).
struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = hk8s(&self.0, &["down"]);
    }
}

#[test]
fn up_status_kubeconfig_down_and_up_again_keeps_objects() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    let _guard = StopOnDrop(state.clone());

    let up = hk8s(&state, &["up", "--detach"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(text(&up).contains("export KUBECONFIG="), "{}", text(&up));

    let path = hk8s(&state, &["kubeconfig"]);
    assert!(path.status.success());
    let kubeconfig = PathBuf::from(String::from_utf8_lossy(&path.stdout).trim());
    assert_eq!(kubeconfig, state.join("kubeconfig"));

    let status = hk8s(&state, &["status"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(text(&status).contains("running"), "{}", text(&status));

    let ns = kubectl(&kubeconfig, &["get", "ns"]);
    assert!(ns.status.success(), "{}", text(&ns));
    assert!(text(&ns).contains("default"));
    let created = kubectl(
        &kubeconfig,
        &[
            "create",
            "configmap",
            "kept",
            "--from-literal=message=hello",
        ],
    );
    assert!(created.status.success(), "{}", text(&created));

    let down = hk8s(&state, &["down"]);
    assert!(down.status.success(), "{}", text(&down));
    let status = hk8s(&state, &["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    assert!(text(&status).contains("not running"));

    let up = hk8s(&state, &["up", "--detach"]);
    assert!(up.status.success(), "{}", text(&up));
    let value = kubectl(
        &kubeconfig,
        &["get", "configmap", "kept", "-o", "jsonpath={.data.message}"],
    );
    assert!(value.status.success(), "{}", text(&value));
    assert_eq!(String::from_utf8_lossy(&value.stdout), "hello");
    let down = hk8s(&state, &["down"]);
    assert!(down.status.success(), "{}", text(&down));
}

#[test]
fn a_corrupt_store_is_reported_not_wiped() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("hk8s-sandbox.json"), "{\"format\": 1}\n").unwrap();
    std::fs::write(state.join("store.redb"), b"garbage").unwrap();
    let up = hk8s(&state, &["up"]);
    assert!(!up.status.success());
    let out = text(&up);
    assert!(out.contains("is corrupt"), "{out}");
    assert!(out.contains("move it away"), "{out}");
    assert_eq!(std::fs::read(state.join("store.redb")).unwrap(), b"garbage");

    let kubeconfig = hk8s(&dir.path().join("never-started"), &["kubeconfig"]);
    assert!(!kubeconfig.status.success());
    assert!(text(&kubeconfig).contains("has not been started yet"));
}
