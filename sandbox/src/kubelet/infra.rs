//! A pod's infra process (the "pause" container of a real kubelet): it creates and holds
//! the pod's namespaces for as long as the pod runs, is attached to the pod network, and
//! on stop takes every process of the pod with it.

use super::images::ProgramKind;
use super::namespaces::{self, PodNamespaces};
use super::process::{Isolation, Process, ProcessSpec, spawn};
use super::rootfs::{self, RootSpec, VolumeMount};
use super::shared::KubeletShared;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::ResourceExt;
use nix::sys::signal::Signal;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A container's volume mounts with their host sources (a `subPath` inside its volume).
fn volume_mounts(
    container: &Container,
    volumes: &HashMap<String, PathBuf>,
    anonymous: Option<VolumeMount>,
) -> Vec<VolumeMount> {
    let mut mounts: Vec<VolumeMount> = container
        .volume_mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            let base = volumes.get(&m.name)?;
            let source = match m.sub_path.as_deref() {
                Some(sub) if !sub.is_empty() && !sub.contains("..") => base.join(sub),
                _ => base.clone(),
            };
            if !source.exists() {
                let _ = std::fs::create_dir_all(&source);
            }
            Some(VolumeMount {
                source,
                mount_path: m.mount_path.clone(),
                read_only: m.read_only.unwrap_or(false),
            })
        })
        .collect();
    if let Some(anonymous) = anonymous
        && !mounts.iter().any(|m| m.mount_path == anonymous.mount_path)
    {
        mounts.push(anonymous);
    }
    mounts
}

/// The anonymous volume the redis image declares (`VOLUME /data`), writable by any user,
/// for a redis container without a volume there.
fn anonymous_data(
    kubelet: &KubeletShared,
    container: &Container,
    pod_dir: &Path,
) -> Option<VolumeMount> {
    let image = container.image.as_deref().unwrap_or_default();
    let program = kubelet.images.resolve(image).ok()?;
    if program.kind != ProgramKind::Redis {
        return None;
    }
    let source = pod_dir.join(format!("{}-data", container.name));
    std::fs::create_dir_all(&source).ok()?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o777)).ok()?;
    Some(VolumeMount {
        source,
        mount_path: "/data".into(),
        read_only: false,
    })
}

/// A running pod sandbox.
pub(super) struct PodSandbox {
    pub namespaces: PodNamespaces,
    infra: Process,
}

/// Builds `container`'s root in the pod's mount namespace (kept by its infra process).
pub(super) async fn build_root(
    kubelet: &KubeletShared,
    namespaces: &PodNamespaces,
    pod_dir: &Path,
    container: &Container,
    volumes: &HashMap<String, PathBuf>,
) -> Result<(), String> {
    let root = RootSpec {
        root: namespaces.root_dir.join(&container.name),
        overlays: pod_dir.join("overlays").join(&container.name),
        etc_dir: namespaces.etc_dir.clone(),
        volumes: volume_mounts(
            container,
            volumes,
            anonymous_data(kubelet, container, pod_dir),
        ),
        read_only: container
            .security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem)
            .unwrap_or(false),
    };
    rootfs::build(namespaces.pid, root)
        .await
        .map_err(|e| format!("container {:?}: {e}", container.name))
}

impl PodSandbox {
    /// Writes the pod's `resolv.conf` and `hosts`, starts its infra process in new
    /// namespaces and connects it to the pod network with `ip`.
    pub(super) async fn start(
        kubelet: &KubeletShared,
        pod: &Pod,
        ip: Ipv4Addr,
    ) -> Result<Self, String> {
        let network = kubelet
            .network
            .as_ref()
            .ok_or("the pod network is not set up")?;
        let pod_dir = crate::paths::pod_dir(&kubelet.state_dir, &pod.uid().unwrap_or_default());
        let etc_dir = pod_dir.join("etc");
        let namespace = pod.namespace().unwrap_or_else(|| "default".into());
        let spec = pod.spec.clone().unwrap_or_default();
        let hostname = spec.hostname.clone().unwrap_or_else(|| pod.name_any());
        let domain = crate::apimachinery::network::CLUSTER_DOMAIN;
        let fqdn = spec
            .subdomain
            .as_ref()
            .map(|sub| format!("{hostname}.{sub}.{namespace}.svc.{domain}"));
        let gateway = network.plan.gateway().unwrap_or(Ipv4Addr::LOCALHOST);
        let write = |name: &str, text: String| {
            std::fs::create_dir_all(&etc_dir)
                .and_then(|()| std::fs::write(etc_dir.join(name), text))
                .map_err(|e| format!("cannot write the pod's {name}: {e}"))
        };
        write("resolv.conf", namespaces::resolv_conf(gateway, &namespace))?;
        write("hosts", namespaces::hosts(ip, &hostname, fqdn.as_deref()))?;
        let infra = spawn(&ProcessSpec {
            program: "sleep".into(),
            args: vec!["infinity".into()],
            env: vec![(
                "PATH".into(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )],
            cwd: None,
            log_path: pod_dir.join("infra.log"),
            cgroup_procs: Vec::new(),
            stdin: false,
            tty: false,
            isolation: Isolation::NewPod { hostname },
        })
        .await
        .map_err(|e| format!("failed to create pod sandbox: {e}"))?;
        kubelet.pids.add(infra.pid);
        let start_time = super::process::process_start_time(infra.pid).unwrap_or_default();
        let sandbox = PodSandbox {
            namespaces: PodNamespaces {
                pid: infra.pid,
                start_time,
                etc_dir: etc_dir.clone(),
                root_dir: pod_dir.join("rootfs"),
            },
            infra,
        };
        let attached = network.attach(sandbox.infra.pid, ip).await;
        let saved = sandbox.namespaces.save(&pod_dir);
        if let Err(e) = attached {
            sandbox.stop(kubelet).await;
            return Err(format!("failed to set up pod network: {e}"));
        }
        if let Err(e) = saved {
            sandbox.stop(kubelet).await;
            return Err(format!("cannot record the pod's namespaces: {e}"));
        }
        Ok(sandbox)
    }

    /// Builds each container's root (its volumes at their mountPath) in the pod's mount
    /// namespace; on failure the caller stops the sandbox.
    pub(super) async fn build_roots(
        &self,
        kubelet: &KubeletShared,
        pod: &Pod,
        volumes: &HashMap<String, PathBuf>,
    ) -> Result<(), String> {
        let pod_dir = crate::paths::pod_dir(&kubelet.state_dir, &pod.uid().unwrap_or_default());
        for container in pod.spec.iter().flat_map(|s| &s.containers) {
            build_root(kubelet, &self.namespaces, &pod_dir, container, volumes).await?;
        }
        Ok(())
    }

    /// Kills every process left in the pod (its containers have been stopped) and then
    /// the infra process, which releases its namespaces and veth.
    pub(super) async fn stop(mut self, kubelet: &KubeletShared) {
        for _ in 0..50 {
            if namespaces::kill_members(self.infra.pid) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Ok(pid) = i32::try_from(self.infra.pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.infra.exited).await;
        kubelet.pids.remove(self.infra.pid);
    }
}
