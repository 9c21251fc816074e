//! Where the sandbox keeps pod-related files under its state directory, shared by the
//! kubelet (which writes them) and the API server (which serves `kubectl logs`).

use std::path::{Path, PathBuf};

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
pub fn previous_container_log_path(
    state_dir: &Path,
    namespace: &str,
    pod: &str,
    container: &str,
) -> PathBuf {
    pod_log_dir(state_dir, namespace, pod).join(format!("{container}.previous.log"))
}

/// The directory holding all container logs of one pod.
pub fn pod_log_dir(state_dir: &Path, namespace: &str, pod: &str) -> PathBuf {
    state_dir.join("logs").join(namespace).join(pod)
}

/// Per-pod scratch space (emptyDir volumes), keyed by pod UID so a recreated pod starts empty.
pub fn pod_dir(state_dir: &Path, pod_uid: &str) -> PathBuf {
    state_dir.join("pods").join(pod_uid)
}

/// Directory backing a provisioned PersistentVolume.
pub fn volume_dir(state_dir: &Path, pv_name: &str) -> PathBuf {
    state_dir.join("volumes").join(pv_name)
}

/// The file listing the processes the kubelet started, to kill leftovers after a crash.
pub fn pid_registry_path(state_dir: &Path) -> PathBuf {
    state_dir.join("kubelet").join("pids")
}

/// User mappings from image repository names to local programs.
pub fn images_config_path(state_dir: &Path) -> PathBuf {
    state_dir.join("images.yaml")
}
