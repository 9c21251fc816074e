//! One pod on the node: its volumes, environment and containers, and the status it reports.

use super::container::{Supervisor, waiting};
use super::context::PodContext;
use super::shared::KubeletShared;
use crate::shutdown::Shutdown;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerStatus, HostIP, PersistentVolume, PersistentVolumeClaim, Pod,
    PodCondition, PodIP, PodStatus, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Debug, thiserror::Error)]
pub(super) enum PodSetupError {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Kube(#[from] kube::Error),
}

/// Runs a pod until `shutdown`; containers are stopped before this returns.
pub(super) async fn run_pod(
    kubelet: Arc<KubeletShared>,
    pod: Pod,
    ip: Ipv4Addr,
    shutdown: Shutdown,
) {
    let namespace = pod.namespace().unwrap_or_else(|| "default".into());
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(kubelet.client.clone(), &namespace);
    let start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.clone())
        .unwrap_or_else(|| Time(jiff::Timestamp::now()));
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    // A pod restored after a sandbox restart keeps counting its restarts from where it was.
    let restarts = |name: &str| {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == name))
            .map_or(0, |c| c.restart_count)
    };
    let initial: BTreeMap<String, ContainerStatus> = containers
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                ContainerStatus {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                    image_id: String::new(),
                    ready: false,
                    started: Some(false),
                    restart_count: restarts(&c.name),
                    state: Some(waiting("ContainerCreating", "")),
                    ..Default::default()
                },
            )
        })
        .collect();
    let writer = StatusWriter {
        api: api.clone(),
        name: name.clone(),
        ip,
        start_time,
        last: None,
    };
    let mut writer = writer;
    writer.write(&pod, &initial).await;

    let setup = loop {
        match prepare(&kubelet, &pod, &uid, ip).await {
            Ok(done) => break done,
            Err(e) => {
                tracing::debug!(pod = %name, error = %e, "pod not ready to start yet");
                let statuses: BTreeMap<_, _> = initial
                    .iter()
                    .map(|(k, s)| {
                        let mut s = s.clone();
                        s.state = Some(waiting("ContainerCreating", &e.to_string()));
                        (k.clone(), s)
                    })
                    .collect();
                writer.write(&pod, &statuses).await;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.recv() => return,
                }
            }
        }
    };
    let (volumes, service_env, manifest_env) = setup;
    let ctx = Arc::new(PodContext {
        pod_ref: pod.object_ref(&()),
        kubelet: kubelet.clone(),
        pod: pod.clone(),
        namespace,
        name: name.clone(),
        uid,
        ip,
        volumes,
        service_env,
        manifest_env,
        statuses: Mutex::new(initial),
        changed: Notify::new(),
    });
    let mut supervisors = tokio::task::JoinSet::new();
    for container in containers {
        supervisors.spawn(
            Supervisor {
                ctx: ctx.clone(),
                container,
                shutdown: shutdown.clone(),
            }
            .run(),
        );
    }
    loop {
        tokio::select! {
            _ = ctx.changed.notified() => {
                // Coalesce bursts of changes (Created, Started, ready) into one write.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let snapshot = ctx.statuses.lock().unwrap_or_else(|e| e.into_inner()).clone();
                writer.write(&pod, &snapshot).await;
            }
            _ = shutdown.recv() => break,
            Some(_) = supervisors.join_next() => {
                let snapshot = ctx.statuses.lock().unwrap_or_else(|e| e.into_inner()).clone();
                writer.write(&pod, &snapshot).await;
            }
        }
    }
    while tokio::time::timeout(Duration::from_secs(20), supervisors.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
}

type Setup = (
    HashMap<String, PathBuf>,
    Vec<(String, String)>,
    HashMap<String, Vec<(String, String)>>,
);

/// Volumes, service variables and resolved env; errors mean "not yet" (e.g. PVC unbound).
async fn prepare(
    kubelet: &KubeletShared,
    pod: &Pod,
    uid: &str,
    ip: Ipv4Addr,
) -> Result<Setup, PodSetupError> {
    let namespace = pod.namespace().unwrap_or_else(|| "default".into());
    let spec = pod.spec.clone().unwrap_or_default();
    let scratch = crate::paths::pod_dir(&kubelet.state_dir, uid);
    let client = kubelet.client.clone();
    let mut volumes = HashMap::new();
    for volume in spec.volumes.iter().flatten() {
        let dir = if let Some(claim) = &volume.persistent_volume_claim {
            let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace)
                .get_opt(&claim.claim_name)
                .await?
                .ok_or_else(|| {
                    PodSetupError::Message(format!(
                        "persistentvolumeclaim \"{}\" not found",
                        claim.claim_name
                    ))
                })?;
            let pv_name = pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .filter(|_| pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"));
            let pv_name = pv_name.ok_or_else(|| {
                PodSetupError::Message(format!(
                    "pod has unbound immediate PersistentVolumeClaims (\"{}\")",
                    claim.claim_name
                ))
            })?;
            let pv = Api::<PersistentVolume>::all(client.clone())
                .get(&pv_name)
                .await?;
            let spec = pv.spec.unwrap_or_default();
            spec.host_path
                .map(|h| PathBuf::from(h.path))
                .or_else(|| spec.local.map(|l| PathBuf::from(l.path)))
                .unwrap_or_else(|| crate::paths::volume_dir(&kubelet.state_dir, &pv_name))
        } else if let Some(host) = &volume.host_path {
            PathBuf::from(&host.path)
        } else if let Some(cm) = &volume.config_map {
            let dir = scratch.join("volumes").join(&volume.name);
            let data = Api::<ConfigMap>::namespaced(client.clone(), &namespace)
                .get_opt(&cm.name)
                .await?
                .and_then(|c| c.data)
                .unwrap_or_default();
            write_files(&dir, data.into_iter().map(|(k, v)| (k, v.into_bytes())))?;
            dir
        } else if let Some(secret) = &volume.secret {
            let dir = scratch.join("volumes").join(&volume.name);
            let name = secret.secret_name.clone().unwrap_or_default();
            let data = Api::<Secret>::namespaced(client.clone(), &namespace)
                .get_opt(&name)
                .await?
                .and_then(|s| s.data)
                .unwrap_or_default();
            write_files(&dir, data.into_iter().map(|(k, v)| (k, v.0)))?;
            dir
        } else {
            scratch.join("volumes").join(&volume.name)
        };
        std::fs::create_dir_all(&dir).map_err(|e| {
            PodSetupError::Message(format!(
                "cannot create volume {:?} at {}: {e}",
                volume.name,
                dir.display()
            ))
        })?;
        volumes.insert(volume.name.clone(), dir);
    }
    let service_env = if spec.enable_service_links == Some(false) {
        Vec::new()
    } else {
        let services = Api::<Service>::namespaced(client.clone(), &namespace)
            .list(&ListParams::default())
            .await?;
        service_env(&services.items)
    };
    let mut manifest_env = HashMap::new();
    for container in &spec.containers {
        manifest_env.insert(
            container.name.clone(),
            resolve_env(&client, pod, container, ip).await?,
        );
    }
    Ok((volumes, service_env, manifest_env))
}

fn write_files(
    dir: &Path,
    files: impl Iterator<Item = (String, Vec<u8>)>,
) -> Result<(), PodSetupError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| PodSetupError::Message(format!("{}: {e}", dir.display())))?;
    for (key, value) in files {
        if key.contains('/') || key.contains("..") {
            continue;
        }
        std::fs::write(dir.join(&key), value)
            .map_err(|e| PodSetupError::Message(format!("{}: {e}", dir.join(&key).display())))?;
    }
    Ok(())
}

/// The `<SVC>_SERVICE_HOST`/`_PORT` and docker-link variables Kubernetes injects for the
/// services that exist when a pod starts.
pub fn service_env(services: &[Service]) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let Some(ip) = spec
            .cluster_ip
            .as_deref()
            .filter(|ip| !ip.is_empty() && *ip != "None")
        else {
            continue;
        };
        let prefix = svc.name_any().to_uppercase().replace('-', "_");
        let ports = spec.ports.clone().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        env.push((format!("{prefix}_SERVICE_HOST"), ip.to_string()));
        env.push((format!("{prefix}_SERVICE_PORT"), first.port.to_string()));
        for port in &ports {
            if let Some(name) = &port.name {
                env.push((
                    format!(
                        "{prefix}_SERVICE_PORT_{}",
                        name.to_uppercase().replace('-', "_")
                    ),
                    port.port.to_string(),
                ));
            }
        }
        let proto = first.protocol.clone().unwrap_or_else(|| "TCP".into());
        env.push((
            format!("{prefix}_PORT"),
            format!("{}://{ip}:{}", proto.to_lowercase(), first.port),
        ));
        for port in &ports {
            let proto = port.protocol.clone().unwrap_or_else(|| "TCP".into());
            let base = format!("{prefix}_PORT_{}_{}", port.port, proto.to_uppercase());
            env.push((
                base.clone(),
                format!("{}://{ip}:{}", proto.to_lowercase(), port.port),
            ));
            env.push((format!("{base}_PROTO"), proto.to_lowercase()));
            env.push((format!("{base}_PORT"), port.port.to_string()));
            env.push((format!("{base}_ADDR"), ip.to_string()));
        }
    }
    env
}

/// The manifest's `env` and `envFrom`, with field, ConfigMap and Secret references resolved.
async fn resolve_env(
    client: &kube::Client,
    pod: &Pod,
    container: &Container,
    ip: Ipv4Addr,
) -> Result<Vec<(String, String)>, PodSetupError> {
    let namespace = pod.namespace().unwrap_or_else(|| "default".into());
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let mut env: Vec<(String, String)> = Vec::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let data = configmaps.get_opt(&r.name).await?.and_then(|c| c.data);
            if data.is_none() && r.optional != Some(true) {
                return Err(PodSetupError::Message(format!(
                    "configmap \"{}\" not found",
                    r.name
                )));
            }
            env.extend(
                data.unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v)),
            );
        }
        if let Some(r) = &from.secret_ref {
            let data = secrets.get_opt(&r.name).await?.and_then(|s| s.data);
            if data.is_none() && r.optional != Some(true) {
                return Err(PodSetupError::Message(format!(
                    "secret \"{}\" not found",
                    r.name
                )));
            }
            env.extend(data.unwrap_or_default().into_iter().map(|(k, v)| {
                (
                    format!("{prefix}{k}"),
                    String::from_utf8_lossy(&v.0).into_owned(),
                )
            }));
        }
    }
    for var in container.env.iter().flatten() {
        let value = if let Some(value) = &var.value {
            super::container::expand_vars(value, &env)
        } else if let Some(from) = &var.value_from {
            if let Some(field) = &from.field_ref {
                match field.field_path.as_str() {
                    "metadata.name" => pod.name_any(),
                    "metadata.namespace" => namespace.clone(),
                    "metadata.uid" => pod.uid().unwrap_or_default(),
                    "spec.nodeName" => crate::apimachinery::network::NODE_NAME.to_string(),
                    "spec.serviceAccountName" => pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.service_account_name.clone())
                        .unwrap_or_else(|| "default".into()),
                    "status.hostIP" => crate::apimachinery::network::NODE_IP.to_string(),
                    "status.podIP" | "status.podIPs" => ip.to_string(),
                    other => other
                        .strip_prefix("metadata.labels['")
                        .and_then(|k| k.strip_suffix("']"))
                        .and_then(|k| pod.labels().get(k).cloned())
                        .unwrap_or_default(),
                }
            } else if let Some(r) = &from.config_map_key_ref {
                let data = configmaps
                    .get_opt(&r.name)
                    .await?
                    .and_then(|c| c.data)
                    .unwrap_or_default();
                match data.get(&r.key) {
                    Some(v) => v.clone(),
                    None if r.optional == Some(true) => continue,
                    None => {
                        return Err(PodSetupError::Message(format!(
                            "couldn't find key {} in ConfigMap {namespace}/{}",
                            r.key, r.name
                        )));
                    }
                }
            } else if let Some(r) = &from.secret_key_ref {
                let data = secrets
                    .get_opt(&r.name)
                    .await?
                    .and_then(|s| s.data)
                    .unwrap_or_default();
                match data.get(&r.key) {
                    Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                    None if r.optional == Some(true) => continue,
                    None => {
                        return Err(PodSetupError::Message(format!(
                            "couldn't find key {} in Secret {namespace}/{}",
                            r.key, r.name
                        )));
                    }
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

/// Writes the pod's status when it changed since the last write.
struct StatusWriter {
    api: Api<Pod>,
    name: String,
    ip: Ipv4Addr,
    start_time: Time,
    last: Option<serde_json::Value>,
}

impl StatusWriter {
    async fn write(&mut self, pod: &Pod, containers: &BTreeMap<String, ContainerStatus>) {
        let statuses: Vec<ContainerStatus> = containers.values().cloned().collect();
        let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready);
        let running = statuses.iter().any(|s| {
            s.state.as_ref().is_some_and(|st| st.running.is_some())
                || s.restart_count > 0
                || s.last_state
                    .as_ref()
                    .is_some_and(|l| l.terminated.is_some())
        });
        let all_terminated = !statuses.is_empty()
            && statuses
                .iter()
                .all(|s| s.state.as_ref().is_some_and(|st| st.terminated.is_some()));
        let phase = if all_terminated {
            let ok = statuses.iter().all(|s| {
                s.state
                    .as_ref()
                    .and_then(|st| st.terminated.as_ref())
                    .is_some_and(|t| t.exit_code == 0)
            });
            if ok { "Succeeded" } else { "Failed" }
        } else if running {
            "Running"
        } else {
            "Pending"
        };
        let previous_conditions = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let condition = |type_: &str, ok: bool, reason: Option<&str>| {
            let status = if ok { "True" } else { "False" };
            let keep = previous_conditions
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .and_then(|c| c.last_transition_time.clone());
            PodCondition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: reason.map(str::to_string),
                last_transition_time: Some(keep.unwrap_or_else(|| Time(jiff::Timestamp::now()))),
                ..Default::default()
            }
        };
        let not_ready = (!all_ready).then_some("ContainersNotReady");
        let conditions = vec![
            condition("PodReadyToStartContainers", true, None),
            condition("Initialized", true, None),
            condition("Ready", all_ready, not_ready),
            condition("ContainersReady", all_ready, not_ready),
            condition("PodScheduled", true, None),
        ];
        let status = PodStatus {
            phase: Some(phase.to_string()),
            conditions: Some(conditions),
            host_ip: Some(crate::apimachinery::network::NODE_IP.to_string()),
            host_ips: Some(vec![HostIP {
                ip: crate::apimachinery::network::NODE_IP.to_string(),
            }]),
            pod_ip: Some(self.ip.to_string()),
            pod_ips: Some(vec![PodIP {
                ip: self.ip.to_string(),
            }]),
            start_time: Some(self.start_time.clone()),
            container_statuses: Some(statuses),
            qos_class: pod.status.as_ref().and_then(|s| s.qos_class.clone()),
            ..Default::default()
        };
        let Ok(mut value) = serde_json::to_value(&status) else {
            return;
        };
        let comparable = strip_times(&value);
        if self.last.as_ref() == Some(&comparable) {
            return;
        }
        if let Some(obj) = value.as_object_mut() {
            obj.retain(|_, v| !v.is_null());
        }
        let patch = serde_json::json!({ "status": value });
        match self
            .api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => self.last = Some(comparable),
            Err(e) => tracing::debug!(pod = %self.name, error = %e, "pod status not written"),
        }
    }
}

fn strip_times(value: &serde_json::Value) -> serde_json::Value {
    let mut v = value.clone();
    if let Some(conditions) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in conditions {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastTransitionTime");
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};

    #[test]
    fn service_variables_follow_kubernetes_naming() {
        let svc = Service {
            metadata: kube::api::ObjectMeta {
                name: Some("hello-api".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("127.96.0.7".into()),
                ports: Some(vec![ServicePort {
                    port: 5000,
                    name: Some("http".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let env: HashMap<_, _> = service_env(&[svc]).into_iter().collect();
        assert_eq!(env["HELLO_API_SERVICE_HOST"], "127.96.0.7");
        assert_eq!(env["HELLO_API_SERVICE_PORT"], "5000");
        assert_eq!(env["HELLO_API_SERVICE_PORT_HTTP"], "5000");
        assert_eq!(env["HELLO_API_PORT_5000_TCP_ADDR"], "127.96.0.7");
    }
}
