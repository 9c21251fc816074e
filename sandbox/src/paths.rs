//! The layout of the sandbox's state directory, in one place: the API server's files, the
//! kubelet's pod files and every log (the container logs the kubelet writes and the API
//! server serves, and the CLI's own log of a detached sandbox).

use std::path::{Path, PathBuf};

/// The file that marks a directory as a sandbox state directory.
pub(crate) fn marker_path(state_dir: &Path) -> PathBuf {
    state_dir.join("hk8s-sandbox.json")
}

/// The redb store of every API object.
pub(crate) fn store_path(state_dir: &Path) -> PathBuf {
    state_dir.join("store.redb")
}

/// The bearer token clients must send.
pub(crate) fn token_path(state_dir: &Path) -> PathBuf {
    state_dir.join("token")
}

/// The port of the last run, reused when free so kubeconfigs stay valid.
pub(crate) fn port_path(state_dir: &Path) -> PathBuf {
    state_dir.join("port")
}

/// The kubeconfig (context [`crate::CONTEXT`]) that reaches the sandbox.
pub fn kubeconfig_path(state_dir: &Path) -> PathBuf {
    state_dir.join("kubeconfig")
}

/// The CA certificate, serving certificate and key of the HTTPS listener.
pub(crate) fn tls_paths(state_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        state_dir.join("ca.crt"),
        state_dir.join("server.crt"),
        state_dir.join("server.key"),
    )
}

/// The log of a sandbox the CLI started in the background.
pub fn sandbox_log_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SANDBOX_LOG)
}

/// The pid file a foreground `hk8s sandbox up` writes once it serves, for people and scripts;
/// nothing trusts it: [`lock_path`] says which process serves.
pub fn sandbox_pid_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SANDBOX_PID)
}

/// The file the serving sandbox holds an exclusive lock on, with its pid and URL inside.
pub fn lock_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SANDBOX_LOCK)
}

/// File names of the CLI's own files, which may precede the first start.
pub(crate) const SANDBOX_LOG: &str = "sandbox.log";
pub(crate) const SANDBOX_PID: &str = "sandbox.pid";
pub(crate) const SANDBOX_LOCK: &str = "sandbox.lock";

/// The directory holding every container log, one directory a namespace and pod.
pub(crate) fn logs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("logs")
}

/// The log of a container's current (or last) run: stdout and stderr interleaved.
pub fn container_log_path(
    state_dir: &Path,
    namespace: &str,
    pod: &str,
    container: &str,
) -> PathBuf {
    pod_log_dir(state_dir, namespace, pod).join(format!("{container}.log"))
}

/// The log of a container's previous run, served by `kubectl logs --previous`.
pub(crate) fn previous_container_log_path(
    state_dir: &Path,
    namespace: &str,
    pod: &str,
    container: &str,
) -> PathBuf {
    pod_log_dir(state_dir, namespace, pod).join(format!("{container}.previous.log"))
}

/// The directory holding all container logs of one pod.
pub(crate) fn pod_log_dir(state_dir: &Path, namespace: &str, pod: &str) -> PathBuf {
    logs_dir(state_dir).join(namespace).join(pod)
}

/// The directory holding every pod's scratch space.
pub(crate) fn pods_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("pods")
}

/// Per-pod scratch space (emptyDir volumes), keyed by pod UID so a recreated pod starts empty.
pub(crate) fn pod_dir(state_dir: &Path, pod_uid: &str) -> PathBuf {
    pods_dir(state_dir).join(pod_uid)
}

/// Directory backing a provisioned PersistentVolume.
pub(crate) fn volume_dir(state_dir: &Path, pv_name: &str) -> PathBuf {
    state_dir.join("volumes").join(pv_name)
}

/// The file listing the processes the kubelet started, to kill leftovers after a crash.
pub fn pid_registry_path(state_dir: &Path) -> PathBuf {
    state_dir.join("kubelet").join("pids")
}

/// User mappings from image repository names to local programs.
pub fn images_config_path(state_dir: &Path) -> PathBuf {
    state_dir.join(IMAGES_CONFIG)
}

/// The image mappings' file name; a learner may write it before the sandbox's first start.
pub(crate) const IMAGES_CONFIG: &str = "images.yaml";
