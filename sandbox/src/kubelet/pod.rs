//! One pod on the node: its volumes, environment and containers, and the status it reports.

use super::container::{Ephemeral, Supervisor, waiting};
use super::context::PodContext;
use super::infra::PodSandbox;
use super::shared::KubeletShared;
use crate::shutdown::Shutdown;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerStateTerminated, ContainerStatus, EnvFromSource, EnvVarSource,
    HostIP, PersistentVolume, PersistentVolumeClaim, Pod, PodCondition, PodIP, PodStatus, Secret,
    Service, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Why a pod cannot start yet (a missing ConfigMap, an unbound claim, the API): the
/// pod waits in ContainerCreating with this message and is retried.
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
    updates: watch::Receiver<Pod>,
    shutdown: Shutdown,
) {
    let namespace = pod.namespace().unwrap_or_else(|| "default".into());
    let name = pod.name_any();
    let uid = pod.uid().unwrap_or_default();
    let initial = initial_statuses(&pod);
    let start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.clone())
        .unwrap_or_else(|| Time(jiff::Timestamp::now()));
    let writer = StatusWriter::spawn(
        Api::namespaced(kubelet.client.clone(), &namespace),
        name.clone(),
        ip,
        start_time,
    );
    let began = std::time::Instant::now();
    writer.write(&pod, &initial);
    let Some(mut setup) = set_up(&kubelet, &pod, ip, &writer, &initial, &shutdown).await else {
        writer.finish().await;
        return;
    };
    tracing::debug!(pod = %name, elapsed = ?began.elapsed(), "pod sandbox ready");
    let sandbox = setup.sandbox.take();
    let ctx = Arc::new(PodContext {
        pod_ref: pod.object_ref(&()),
        kubelet: kubelet.clone(),
        pod: pod.clone(),
        namespace,
        name,
        uid,
        ip,
        namespaces: sandbox.as_ref().map(|s| s.namespaces.clone()),
        volumes: setup.volumes,
        service_env: setup.service_env,
        manifest_env: setup.manifest_env,
        statuses: Mutex::new(initial),
        changed: Notify::new(),
    });
    run_containers(ctx, writer, updates, shutdown).await;
    if let Some(sandbox) = sandbox {
        sandbox.stop(&kubelet).await;
    }
}

/// Every container Waiting (ContainerCreating); a pod restored after a sandbox restart
/// keeps counting its restarts from where it was.
fn initial_statuses(pod: &Pod) -> BTreeMap<String, ContainerStatus> {
    let restarts = |name: &str| {
        pod.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == name))
            .map_or(0, |c| c.restart_count)
    };
    let containers = pod.spec.as_ref().map(|s| s.containers.as_slice());
    containers
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let status = ContainerStatus {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                image_id: String::new(),
                ready: false,
                started: Some(false),
                restart_count: restarts(&c.name),
                state: Some(waiting("ContainerCreating", "")),
                ..Default::default()
            };
            (c.name.clone(), status)
        })
        .collect()
}

/// Prepares the pod's volumes and environment and (namespace mode) its sandbox, retrying
/// (and showing why in the containers' waiting message) until it can; `None` when the pod
/// is stopped first.
async fn set_up(
    kubelet: &KubeletShared,
    pod: &Pod,
    ip: Ipv4Addr,
    writer: &StatusWriter,
    initial: &BTreeMap<String, ContainerStatus>,
    shutdown: &Shutdown,
) -> Option<Setup> {
    let mut sandbox = None;
    loop {
        let e = match attempt(kubelet, pod, ip, &mut sandbox).await {
            Ok(setup) => return Some(setup),
            Err(e) => e,
        };
        tracing::debug!(pod = %pod.name_any(), error = %e, "pod not ready to start yet");
        let statuses: BTreeMap<_, _> = initial
            .iter()
            .map(|(k, s)| {
                let mut s = s.clone();
                s.state = Some(waiting("ContainerCreating", &e.to_string()));
                (k.clone(), s)
            })
            .collect();
        writer.write(pod, &statuses);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.recv() => {
                if let Some(sandbox) = sandbox {
                    sandbox.stop(kubelet).await;
                }
                return None;
            }
        }
    }
}

/// One try at [`set_up`]: the pod's sandbox (namespaces and network) starts while its
/// volumes and environment are prepared, and is kept for the next try if those are not
/// ready; the containers' roots are built once both are.
async fn attempt(
    kubelet: &KubeletShared,
    pod: &Pod,
    ip: Ipv4Addr,
    sandbox: &mut Option<PodSandbox>,
) -> Result<Setup, PodSetupError> {
    let starting = async {
        if sandbox.is_none() && kubelet.network.is_some() {
            let started = PodSandbox::start(kubelet, pod, ip).await;
            *sandbox = Some(started.map_err(PodSetupError::Message)?);
        }
        Ok::<(), PodSetupError>(())
    };
    let (prepared, started) = tokio::join!(prepare(kubelet, pod, ip), starting);
    started?;
    let mut setup = prepared?;
    if let Some(started) = sandbox.take() {
        if let Err(e) = started.build_roots(kubelet, pod, &setup.volumes).await {
            started.stop(kubelet).await;
            return Err(PodSetupError::Message(e));
        }
        setup.sandbox = Some(started);
    }
    Ok(setup)
}

/// One supervisor per container, and one per ephemeral container as they are added; their
/// status changes are written as they come, and the containers are given up to 20 s to stop
/// once the pod is.
async fn run_containers(
    ctx: Arc<PodContext>,
    writer: StatusWriter,
    mut updates: watch::Receiver<Pod>,
    shutdown: Shutdown,
) {
    let containers = ctx.pod.spec.as_ref().map(|s| s.containers.clone());
    let mut supervisors = tokio::task::JoinSet::new();
    for container in containers.unwrap_or_default() {
        let supervisor = Supervisor {
            ctx: ctx.clone(),
            container,
            ephemeral: None,
            shutdown: shutdown.clone(),
        };
        supervisors.spawn(supervisor.run());
    }
    let mut latest = ctx.pod.clone();
    let mut started = HashSet::new();
    start_ephemeral(&ctx, &latest, &mut started, &mut supervisors, &shutdown);
    let snapshot = |ctx: &PodContext| {
        ctx.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    };
    loop {
        tokio::select! {
            _ = ctx.changed.notified() => writer.write(&latest, &snapshot(&ctx)),
            Ok(()) = updates.changed() => {
                latest = updates.borrow_and_update().clone();
                start_ephemeral(&ctx, &latest, &mut started, &mut supervisors, &shutdown);
            }
            _ = shutdown.recv() => break,
            Some(_) = supervisors.join_next() => writer.write(&latest, &snapshot(&ctx)),
        }
    }
    while tokio::time::timeout(Duration::from_secs(20), supervisors.join_next())
        .await
        .ok()
        .flatten()
        .is_some()
    {}
    writer.finish().await;
}

/// Starts a supervisor for each ephemeral container of `pod` not started yet, Waiting
/// until it runs; ephemeral containers are never restarted or removed, so one that ended
/// before the sandbox restarted keeps its terminated status.
fn start_ephemeral(
    ctx: &Arc<PodContext>,
    pod: &Pod,
    started: &mut HashSet<String>,
    supervisors: &mut tokio::task::JoinSet<()>,
    shutdown: &Shutdown,
) {
    let ephemeral = pod
        .spec
        .as_ref()
        .and_then(|s| s.ephemeral_containers.clone());
    for ec in ephemeral.unwrap_or_default() {
        if !started.insert(ec.name.clone()) {
            continue;
        }
        let Ok(container) = serde_json::to_value(&ec).and_then(serde_json::from_value::<Container>)
        else {
            continue;
        };
        let ran = pod
            .status
            .as_ref()
            .and_then(|s| s.ephemeral_container_statuses.as_ref())
            .and_then(|all| all.iter().find(|s| s.name == ec.name))
            .filter(|s| s.state.as_ref().is_some_and(|st| st.terminated.is_some()));
        let status = ran.cloned().unwrap_or_else(|| ContainerStatus {
            name: ec.name.clone(),
            image: ec.image.clone().unwrap_or_default(),
            state: Some(waiting("ContainerCreating", "")),
            ..Default::default()
        });
        ctx.statuses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ec.name.clone(), status);
        if ran.is_some() {
            continue;
        }
        let supervisor = Supervisor {
            ctx: ctx.clone(),
            container,
            ephemeral: Some(Ephemeral {
                target: ec.target_container_name.clone(),
            }),
            shutdown: shutdown.clone(),
        };
        supervisors.spawn(supervisor.run());
    }
    ctx.changed.notify_one();
}

/// What a pod's containers start with.
struct Setup {
    /// Host directory of each volume.
    volumes: HashMap<String, PathBuf>,
    /// The service variables of the pod's namespace.
    service_env: Vec<(String, String)>,
    /// Each container's resolved `env` and `envFrom`.
    manifest_env: HashMap<String, Vec<(String, String)>>,
    /// The pod's namespaces (namespace mode).
    sandbox: Option<PodSandbox>,
}

/// Volumes, service variables and resolved env; errors mean "not yet" (e.g. PVC unbound).
async fn prepare(kubelet: &KubeletShared, pod: &Pod, ip: Ipv4Addr) -> Result<Setup, PodSetupError> {
    let namespace = pod.namespace().unwrap_or_else(|| "default".into());
    let spec = pod.spec.clone().unwrap_or_default();
    let scratch = crate::paths::pod_dir(&kubelet.state_dir, &pod.uid().unwrap_or_default());
    let mut volumes = HashMap::new();
    for volume in spec.volumes.iter().flatten() {
        let dir = volume_dir(kubelet, &namespace, &scratch, volume).await?;
        std::fs::create_dir_all(&dir).map_err(|e| {
            PodSetupError::Message(format!(
                "cannot create volume {:?} at {}: {e}",
                volume.name,
                dir.display()
            ))
        })?;
        if let Some(projected) = &volume.projected {
            super::projected::write(&kubelet.client, pod, projected, &dir).await?;
        }
        if kubelet.network.is_some() && shared_with_any_user(kubelet, volume, &dir) {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
        }
        volumes.insert(volume.name.clone(), dir);
    }
    // As a kubelet: the namespace's services with service links on, and the API server's
    // `default/kubernetes` always (KUBERNETES_SERVICE_HOST, which in-cluster clients read).
    let mut services = if spec.enable_service_links == Some(false) {
        Vec::new()
    } else {
        Api::<Service>::namespaced(kubelet.client.clone(), &namespace)
            .list(&ListParams::default())
            .await?
            .items
    };
    if !services.iter().any(|s| s.name_any() == "kubernetes")
        && let Some(api) = Api::<Service>::namespaced(kubelet.client.clone(), "default")
            .get_opt("kubernetes")
            .await?
    {
        services.insert(0, api);
    }
    let service_env = service_env(&services);
    let env = EnvSources::new(&kubelet.client, pod, ip);
    let mut manifest_env = HashMap::new();
    for container in &spec.containers {
        manifest_env.insert(container.name.clone(), env.resolve(container).await?);
    }
    Ok(Setup {
        volumes,
        service_env,
        manifest_env,
        sandbox: None,
    })
}

/// Whether a volume is the sandbox's own scratch or provisioned space, which pods running
/// as any user may write (as emptyDir and hostPath-provisioned volumes are 0777 on a
/// cluster); hostPath volumes and the user's own directories are left as they are.
fn shared_with_any_user(kubelet: &KubeletShared, volume: &Volume, dir: &Path) -> bool {
    volume.empty_dir.is_some()
        || (volume.persistent_volume_claim.is_some() && dir.starts_with(&kubelet.state_dir))
}

/// The host directory behind a volume: a bound claim's volume, a hostPath, ConfigMap or
/// Secret files written into the pod's scratch space, or scratch space (emptyDir).
async fn volume_dir(
    kubelet: &KubeletShared,
    namespace: &str,
    scratch: &Path,
    volume: &Volume,
) -> Result<PathBuf, PodSetupError> {
    let client = kubelet.client.clone();
    let own = scratch.join("volumes").join(&volume.name);
    if let Some(claim) = &volume.persistent_volume_claim {
        return claimed_dir(kubelet, namespace, &claim.claim_name).await;
    }
    if let Some(host) = &volume.host_path {
        return Ok(PathBuf::from(&host.path));
    }
    if let Some(cm) = &volume.config_map {
        let data = Api::<ConfigMap>::namespaced(client, namespace)
            .get_opt(&cm.name)
            .await?
            .and_then(|c| c.data)
            .unwrap_or_default();
        write_files(&own, data.into_iter().map(|(k, v)| (k, v.into_bytes())))?;
    } else if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        let data = Api::<Secret>::namespaced(client, namespace)
            .get_opt(&name)
            .await?
            .and_then(|s| s.data)
            .unwrap_or_default();
        write_files(&own, data.into_iter().map(|(k, v)| (k, v.0)))?;
    }
    Ok(own)
}

/// The directory of the PersistentVolume a claim is bound to.
async fn claimed_dir(
    kubelet: &KubeletShared,
    namespace: &str,
    claim: &str,
) -> Result<PathBuf, PodSetupError> {
    let client = kubelet.client.clone();
    let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .get_opt(claim)
        .await?
        .ok_or_else(|| {
            PodSetupError::Message(format!("persistentvolumeclaim \"{claim}\" not found"))
        })?;
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let pv_name = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|_| bound)
        .ok_or_else(|| {
            PodSetupError::Message(format!(
                "pod has unbound immediate PersistentVolumeClaims (\"{claim}\")"
            ))
        })?;
    let spec = Api::<PersistentVolume>::all(client)
        .get(&pv_name)
        .await?
        .spec
        .unwrap_or_default();
    Ok(spec
        .host_path
        .map(|h| PathBuf::from(h.path))
        .or_else(|| spec.local.map(|l| PathBuf::from(l.path)))
        .unwrap_or_else(|| crate::paths::volume_dir(&kubelet.state_dir, &pv_name)))
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

/// Where a pod's containers' `env` and `envFrom` read from: the pod itself, and the
/// ConfigMaps and Secrets of its namespace.
struct EnvSources<'a> {
    pod: &'a Pod,
    namespace: String,
    ip: Ipv4Addr,
    configmaps: Api<ConfigMap>,
    secrets: Api<Secret>,
}

impl<'a> EnvSources<'a> {
    fn new(client: &kube::Client, pod: &'a Pod, ip: Ipv4Addr) -> Self {
        let namespace = pod.namespace().unwrap_or_else(|| "default".into());
        EnvSources {
            pod,
            ip,
            configmaps: Api::namespaced(client.clone(), &namespace),
            secrets: Api::namespaced(client.clone(), &namespace),
            namespace,
        }
    }

    /// The manifest's `envFrom` then `env`, with field, ConfigMap and Secret references
    /// resolved and `$(VAR)` references expanded.
    async fn resolve(&self, container: &Container) -> Result<Vec<(String, String)>, PodSetupError> {
        let mut env = Vec::new();
        for from in container.env_from.iter().flatten() {
            self.env_from(from, &mut env).await?;
        }
        for var in container.env.iter().flatten() {
            let value = match (&var.value, &var.value_from) {
                (Some(value), _) => Some(super::container::expand_vars(value, &env)),
                (None, Some(from)) => self.value_from(from).await?,
                (None, None) => Some(String::new()),
            };
            if let Some(value) = value {
                env.push((var.name.clone(), value));
            }
        }
        Ok(env)
    }

    /// Every key of a ConfigMap or Secret, prefixed; a missing source is an error unless
    /// optional.
    async fn env_from(
        &self,
        from: &EnvFromSource,
        env: &mut Vec<(String, String)>,
    ) -> Result<(), PodSetupError> {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let data = self.configmaps.get_opt(&r.name).await?.and_then(|c| c.data);
            if data.is_none() && r.optional != Some(true) {
                let message = format!("configmap \"{}\" not found", r.name);
                return Err(PodSetupError::Message(message));
            }
            env.extend(
                data.unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v)),
            );
        }
        if let Some(r) = &from.secret_ref {
            let data = self.secrets.get_opt(&r.name).await?.and_then(|s| s.data);
            if data.is_none() && r.optional != Some(true) {
                let message = format!("secret \"{}\" not found", r.name);
                return Err(PodSetupError::Message(message));
            }
            env.extend(data.unwrap_or_default().into_iter().map(|(k, v)| {
                (
                    format!("{prefix}{k}"),
                    String::from_utf8_lossy(&v.0).into_owned(),
                )
            }));
        }
        Ok(())
    }

    /// A `valueFrom`; `None` for an optional key that is missing (the variable is unset).
    async fn value_from(&self, from: &EnvVarSource) -> Result<Option<String>, PodSetupError> {
        if let Some(field) = &from.field_ref {
            return Ok(Some(self.field(&field.field_path)));
        }
        if let Some(r) = &from.config_map_key_ref {
            let data = self.configmaps.get_opt(&r.name).await?.and_then(|c| c.data);
            let value = data.unwrap_or_default().get(&r.key).cloned();
            return self.key_or_missing(value, &r.key, "ConfigMap", &r.name, r.optional);
        }
        if let Some(r) = &from.secret_key_ref {
            let data = self.secrets.get_opt(&r.name).await?.and_then(|s| s.data);
            let value = data
                .unwrap_or_default()
                .get(&r.key)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned());
            return self.key_or_missing(value, &r.key, "Secret", &r.name, r.optional);
        }
        Ok(Some(String::new()))
    }

    fn key_or_missing(
        &self,
        value: Option<String>,
        key: &str,
        kind: &str,
        name: &str,
        optional: Option<bool>,
    ) -> Result<Option<String>, PodSetupError> {
        match value {
            Some(v) => Ok(Some(v)),
            None if optional == Some(true) => Ok(None),
            None => Err(PodSetupError::Message(format!(
                "couldn't find key {key} in {kind} {}/{name}",
                self.namespace
            ))),
        }
    }

    /// A `fieldRef` (the downward API).
    fn field(&self, path: &str) -> String {
        let pod = self.pod;
        match path {
            "metadata.name" => pod.name_any(),
            "metadata.namespace" => self.namespace.clone(),
            "metadata.uid" => pod.uid().unwrap_or_default(),
            "spec.nodeName" => crate::apimachinery::network::NODE_NAME.to_string(),
            "spec.serviceAccountName" => pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".into()),
            "status.hostIP" => crate::apimachinery::network::NODE_IP.to_string(),
            "status.podIP" | "status.podIPs" => self.ip.to_string(),
            other => {
                let key = |prefix: &str| other.strip_prefix(prefix)?.strip_suffix("']");
                key("metadata.labels['")
                    .and_then(|k| pod.labels().get(k))
                    .or_else(|| {
                        key("metadata.annotations['").and_then(|k| pod.annotations().get(k))
                    })
                    .cloned()
                    .unwrap_or_default()
            }
        }
    }
}

/// The pod's status reporter, as the kubelet's status manager: a task of its own patches
/// `pods/status` with the latest status, so starting containers never waits for a write,
/// and changes made while a write is in flight go out together in the next one.
struct StatusWriter {
    ip: Ipv4Addr,
    start_time: Time,
    latest: watch::Sender<Option<serde_json::Value>>,
    task: tokio::task::JoinHandle<()>,
}

impl StatusWriter {
    fn spawn(api: Api<Pod>, name: String, ip: Ipv4Addr, start_time: Time) -> Self {
        let (latest, pending) = watch::channel(None);
        let task = tokio::spawn(write_statuses(api, name, pending));
        StatusWriter {
            ip,
            start_time,
            latest,
            task,
        }
    }

    /// Hands the phase, conditions and container statuses to the writer task.
    fn write(&self, pod: &Pod, containers: &BTreeMap<String, ContainerStatus>) {
        let status = self.status(pod, containers.values().cloned().collect());
        if let Ok(value) = serde_json::to_value(&status) {
            self.latest.send_replace(Some(value));
        }
    }

    /// Waits (at most 5 s) until the last status handed over has been written or refused.
    async fn finish(self) {
        drop(self.latest);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }

    fn status(&self, pod: &Pod, statuses: Vec<ContainerStatus>) -> PodStatus {
        let ephemeral_names: HashSet<&str> = pod
            .spec
            .iter()
            .flat_map(|s| s.ephemeral_containers.iter().flatten())
            .map(|c| c.name.as_str())
            .collect();
        let (ephemeral, statuses): (Vec<_>, Vec<_>) = statuses
            .into_iter()
            .partition(|s| ephemeral_names.contains(s.name.as_str()));
        let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready);
        let previous = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let node_ip = crate::apimachinery::network::NODE_IP.to_string();
        PodStatus {
            phase: Some(phase(&statuses).to_string()),
            conditions: Some(conditions(&previous, all_ready)),
            host_ip: Some(node_ip.clone()),
            host_ips: Some(vec![HostIP { ip: node_ip }]),
            pod_ip: Some(self.ip.to_string()),
            pod_ips: Some(vec![PodIP {
                ip: self.ip.to_string(),
            }]),
            start_time: Some(self.start_time.clone()),
            container_statuses: Some(statuses),
            ephemeral_container_statuses: (!ephemeral.is_empty()).then_some(ephemeral),
            qos_class: pod.status.as_ref().and_then(|s| s.qos_class.clone()),
            ..Default::default()
        }
    }
}

/// Patches `pods/status` with each new status, unless nothing but condition times
/// changed since the last write; ends once the pod's writer is dropped and all is written.
async fn write_statuses(
    api: Api<Pod>,
    name: String,
    mut pending: watch::Receiver<Option<serde_json::Value>>,
) {
    let mut last: Option<serde_json::Value> = None;
    while pending.changed().await.is_ok() {
        let Some(mut value) = pending.borrow_and_update().clone() else {
            continue;
        };
        let comparable = strip_times(&value);
        if last.as_ref() == Some(&comparable) {
            continue;
        }
        if let Some(obj) = value.as_object_mut() {
            obj.retain(|_, v| !v.is_null());
        }
        let patch = serde_json::json!({ "status": value });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => last = Some(comparable),
            Err(e) => tracing::debug!(pod = %name, error = %e, "pod status not written"),
        }
    }
}

/// Succeeded or Failed once every container terminated, Running once one ran, else Pending.
fn phase(statuses: &[ContainerStatus]) -> &'static str {
    fn terminated(s: &ContainerStatus) -> Option<&ContainerStateTerminated> {
        s.state.as_ref()?.terminated.as_ref()
    }
    let ran = |s: &ContainerStatus| {
        s.state.as_ref().is_some_and(|st| st.running.is_some())
            || s.restart_count > 0
            || s.last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some())
    };
    if !statuses.is_empty() && statuses.iter().all(|s| terminated(s).is_some()) {
        let ok = statuses
            .iter()
            .all(|s| terminated(s).is_some_and(|t| t.exit_code == 0));
        return if ok { "Succeeded" } else { "Failed" };
    }
    if statuses.iter().any(ran) {
        "Running"
    } else {
        "Pending"
    }
}

/// The pod's conditions; a condition keeps its transition time while its status holds.
fn conditions(previous: &[PodCondition], all_ready: bool) -> Vec<PodCondition> {
    let condition = |type_: &str, ok: bool, reason: Option<&str>| {
        let status = if ok { "True" } else { "False" };
        let since = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone());
        PodCondition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.map(str::to_string),
            last_transition_time: Some(since.unwrap_or_else(|| Time(jiff::Timestamp::now()))),
            ..Default::default()
        }
    };
    let not_ready = (!all_ready).then_some("ContainersNotReady");
    vec![
        condition("PodReadyToStartContainers", true, None),
        condition("Initialized", true, None),
        condition("Ready", all_ready, not_ready),
        condition("ContainersReady", all_ready, not_ready),
        condition("PodScheduled", true, None),
    ]
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
