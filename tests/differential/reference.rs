//! The reference control plane for tests: real etcd, kube-apiserver, kube-controller-manager
//! and kube-scheduler, started by `scripts/reference-up.sh` in a temporary directory and
//! stopped by `scripts/reference-down.sh` when the guard drops.
//!
//! The binaries come from `HK8S_REFERENCE_BIN` (set by `scripts/test.sh`), else from
//! `scripts/reference-build.sh` (cached). When `scripts/test.sh` could not build them it sets
//! `HK8S_REFERENCE_BUILD_ERROR` to the build log, and the tests fail with go's exact output.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running reference control plane; dropping it stops every component it started.
pub struct Reference {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the four binaries, building them when nothing names one.
pub fn binaries() -> PathBuf {
    if let Some(log) = std::env::var_os("HK8S_REFERENCE_BUILD_ERROR") {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        panic!(
            "the reference control plane did not build (scripts/reference-build.sh, log {}):\n{text}",
            Path::new(&log).display()
        );
    }
    if let Some(bin) = std::env::var_os("HK8S_REFERENCE_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/reference-build.sh"))
        .output()
        .expect("running scripts/reference-build.sh");
    assert!(
        out.status.success(),
        "the reference control plane did not build (scripts/reference-build.sh):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

impl Reference {
    /// Starts the control plane and waits until it is ready (about 10 s).
    pub fn start() -> Reference {
        Self::start_with(&[])
    }

    /// As [`Reference::start`], with reference-up.sh's `HK8S_REFERENCE_*` knobs in `env`.
    pub fn start_with(env: &[(&str, &str)]) -> Reference {
        let bin = binaries();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/reference-up.sh"))
            .arg(dir.path())
            .env("HK8S_REFERENCE_BIN", &bin)
            .envs(env.iter().copied())
            .output()
            .expect("running scripts/reference-up.sh");
        let reference = Reference {
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
        };
        assert!(
            out.status.success(),
            "the reference control plane did not start:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        reference
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A kube-rs client as the cluster's admin (group system:masters).
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .expect("the reference kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("a client configuration from the reference kubeconfig");
        kube::Client::try_from(config).expect("a client for the reference")
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/reference-down.sh"))
            .arg(self.dir.path())
            .status();
    }
}
