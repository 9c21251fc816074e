//! What the containers of one pod share: the pod, its IP, volumes and environment, and the
//! container statuses the pod worker reports.

use super::images::ProgramKind;
use super::shared::KubeletShared;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, ObjectReference, Pod};
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What the containers of one pod share.
pub(super) struct PodContext {
    pub(super) kubelet: Arc<KubeletShared>,
    pub(super) pod: Pod,
    pub(super) pod_ref: ObjectReference,
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) uid: String,
    pub(super) ip: Ipv4Addr,
    /// The pod's namespaces; `None` in process mode.
    pub(super) namespaces: Option<super::namespaces::PodNamespaces>,
    pub(super) volumes: HashMap<String, PathBuf>,
    pub(super) service_env: Vec<(String, String)>,
    pub(super) manifest_env: HashMap<String, Vec<(String, String)>>,
    pub(super) statuses: Mutex<BTreeMap<String, ContainerStatus>>,
    pub(super) changed: Notify,
}

impl PodContext {
    /// Changes a container's status and wakes the pod worker to write it.
    pub(super) fn update_container(&self, name: &str, f: impl FnOnce(&mut ContainerStatus)) {
        if let Some(status) = self
            .statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(name)
        {
            f(status);
        }
        self.changed.notify_one();
    }

    /// A container's current status.
    pub(super) fn container_status(&self, name: &str) -> Option<ContainerStatus> {
        self.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// The pod's own scratch directory (emptyDir volumes live here).
    pub(super) fn scratch_dir(&self) -> PathBuf {
        crate::paths::pod_dir(&self.kubelet.state_dir, &self.uid)
    }

    /// The host directory behind a container's mount at `mount_path` (or its first mount).
    pub(super) fn volume_for_mount(
        &self,
        container: &Container,
        mount_path: Option<&str>,
    ) -> Option<PathBuf> {
        let mount = container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| match mount_path {
                Some(p) => m.mount_path.trim_end_matches('/') == p,
                None => true,
            })?;
        let base = self.volumes.get(&mount.name)?;
        let dir = match mount.sub_path.as_deref() {
            Some(sub) if !sub.is_empty() && !sub.contains("..") => base.join(sub),
            _ => base.clone(),
        };
        let _ = std::fs::create_dir_all(&dir);
        Some(dir)
    }

    /// The environment a container starts with: PATH, HOSTNAME, service variables, the
    /// manifest's env, and the app's bind address set to the pod IP.
    pub(super) fn container_env(
        &self,
        container: &Container,
        kind: ProgramKind,
    ) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            ),
            ("HOSTNAME".to_string(), self.name.clone()),
        ];
        if let Ok(home) = std::env::var("HOME") {
            env.push(("HOME".into(), home));
        }
        env.extend(self.service_env.iter().cloned());
        env.extend(
            self.manifest_env
                .get(&container.name)
                .into_iter()
                .flatten()
                .cloned(),
        );
        let ip = self.ip.to_string();
        if self.namespaces.is_some() {
            // The pod has its own network: programs bind what their manifest says.
        } else {
            Self::bind_to_pod_ip(&mut env, kind, ip);
        }
        let mut deduped: Vec<(String, String)> = Vec::new();
        for (k, v) in env {
            deduped.retain(|(existing, _)| *existing != k);
            deduped.push((k, v));
        }
        deduped
    }

    /// In process mode all pods share the host's network, so the app binds its pod IP.
    fn bind_to_pod_ip(env: &mut Vec<(String, String)>, kind: ProgramKind, ip: String) {
        match kind {
            ProgramKind::Frontend => env.push(("HKF_HOST".into(), ip)),
            ProgramKind::Api => env.push(("HKA_HOST".into(), ip)),
            _ => {
                env.push(("HKF_HOST".into(), ip.clone()));
                env.push(("HKA_HOST".into(), ip));
            }
        }
    }
}
