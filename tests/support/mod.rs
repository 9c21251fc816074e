//! What several CLI test binaries share: the repository root, the app's binaries built
//! where the sandbox kubelet looks for them, and a command's output as one readable text.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the app's binaries once per test binary, into the target directory the sandbox
/// kubelet searches.
pub fn ensure_app_binaries() {
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "hello-k8s", "--bins"])
            .current_dir(repo_root())
            .status()
            .expect("running cargo build -p hello-k8s");
        assert!(status.success(), "cargo build -p hello-k8s failed");
    });
}

/// `hk8s sandbox ARGS --state-dir STATE` run to completion; fails the test after `limit`.
pub fn sandbox_command(state: &Path, args: &[&str], limit: Duration) -> Output {
    run_within(
        Command::new(env!("CARGO_BIN_EXE_hk8s"))
            .arg("sandbox")
            .args(args)
            .arg("--state-dir")
            .arg(state),
        limit,
    )
}

/// stdout, then stderr under a marker: what an assertion message should show.
pub fn text(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command to completion with no input, killing it and failing the test after
/// `limit`.
pub fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
