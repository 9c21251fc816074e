//! The process kubelet: registers the sandbox's node and runs the pods bound to it as local
//! processes, each on its own loopback IP, reporting their status through the API.

mod attach;
pub(crate) mod cgroups;
mod container;
mod context;
mod exec;
mod images;
mod infra;
pub(crate) mod metrics;
pub mod namespaces;
pub(crate) mod network;
pub(crate) mod node;
mod pidns;
mod pod;
mod portforward;
mod probes;
mod process;
mod projected;
mod remotecommand;
mod rootfs;
mod server;
mod shared;
mod spdy;

pub use node::{ISOLATION_ANNOTATION, LIMITS_ANNOTATION};
#[cfg(feature = "standin")]
pub(crate) mod standin;

use crate::apimachinery::events::Recorder;
use crate::apimachinery::informers::Informer;
use crate::apimachinery::network::{AddressPlan, NODE_NAME};
use crate::kubelet::cgroups::Enforcement;
use crate::kubelet::images::{ImageError, ImageResolver};
use crate::shutdown::{Shutdown, ShutdownSignal};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use metrics::Metrics;
use process::PidRegistry;
use shared::Backoff;
use shared::KubeletShared;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How the kubelet runs pods.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub state_dir: PathBuf,
    pub backoff: Backoff,
    /// `None` detects cgroups; tests may force [`Enforcement::Polling`].
    pub enforcement: Option<Enforcement>,
    /// Directories searched first for image programs (e.g. a test's target directory).
    pub program_dirs: Vec<PathBuf>,
    /// The pod network for namespace mode; `None` runs pods as plain processes.
    pub network: Option<Arc<network::PodNetwork>>,
    /// Why pods run without isolation, when they do (shown on the node).
    pub isolation_off: Option<String>,
}

impl KubeletConfig {
    /// A kubelet keeping its files under `state_dir`, with the default back-off and cgroup detection.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            backoff: Backoff::default(),
            enforcement: None,
            program_dirs: Vec::new(),
            network: None,
            isolation_off: None,
        }
    }
}

/// Why the kubelet could not start.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error(transparent)]
    Images(#[from] ImageError),
    #[error("cannot use the kubelet's state under {path}: {source}")]
    State {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

struct Worker {
    stop: ShutdownSignal,
    handle: JoinHandle<()>,
    /// The pod as last listed, for the ephemeral containers added while it runs.
    updates: tokio::sync::watch::Sender<Pod>,
}

/// A running kubelet; [`Kubelet::shutdown`] stops every pod process.
pub struct Kubelet {
    stop: ShutdownSignal,
    task: JoinHandle<()>,
    metrics: Metrics,
    sampler: JoinHandle<()>,
    publisher: JoinHandle<()>,
    streaming: JoinHandle<()>,
    pids: PidRegistry,
    network: Option<Arc<network::PodNetwork>>,
    stopped: bool,
}

impl Kubelet {
    /// Starts the kubelet: kills processes a crashed run left, registers the node and runs the
    /// pods bound to it.
    pub async fn start(client: Client, config: KubeletConfig) -> Result<Self, KubeletError> {
        let mut images = ImageResolver::load(&config.state_dir)?;
        for dir in &config.program_dirs {
            images = images.with_search_dir(dir);
        }
        let registry_path = crate::paths::pid_registry_path(&config.state_dir);
        let (pids, killed) =
            PidRegistry::open(&registry_path).map_err(|source| KubeletError::State {
                path: registry_path.display().to_string(),
                source,
            })?;
        if killed > 0 {
            tracing::warn!(
                killed,
                "killed pod processes left over from a previous sandbox run"
            );
        }
        let enforcement = config.enforcement.clone().unwrap_or_else(cgroups::detect);
        let metrics = Metrics::default();
        let shared = Arc::new(KubeletShared {
            recorder: Recorder::new(client.clone(), "kubelet"),
            client,
            state_dir: config.state_dir.clone(),
            images,
            enforcement,
            pids: pids.clone(),
            metrics: metrics.clone(),
            backoff: config.backoff,
            ips: Mutex::default(),
            plan: config
                .network
                .as_ref()
                .map_or_else(AddressPlan::loopback, |n| n.plan),
            network: config.network.clone(),
            containers: Default::default(),
        });
        let isolation = node::isolation_summary(&shared.plan, config.isolation_off.as_deref());
        let streaming =
            server::start(shared.clone())
                .await
                .map_err(|source| KubeletError::State {
                    path: "the streaming server's port".into(),
                    source,
                })?;
        let stop = ShutdownSignal::new();
        let task = tokio::spawn(run(shared.clone(), isolation, stop.listener()));
        let sampler = metrics.spawn_sampler();
        let publisher = tokio::spawn(metrics::publish(shared.client.clone(), metrics.clone()));
        Ok(Self {
            stop,
            task,
            metrics,
            sampler,
            publisher,
            streaming,
            pids,
            network: config.network.clone(),
            stopped: false,
        })
    }

    /// Live pod usage, which the controllers (the HPA) read.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Stops every pod's processes (SIGTERM, then SIGKILL) and the kubelet itself.
    pub async fn shutdown(mut self) {
        self.stop.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
        self.sampler.abort();
        self.publisher.abort();
        self.streaming.abort();
        // The bridge goes now, so a sandbox started next on this state directory gets the
        // same slot (and its Services keep their cluster IPs).
        if let Some(network) = self.network.take() {
            network.remove().await;
        }
        self.stopped = true;
    }
}

impl Drop for Kubelet {
    /// A kubelet dropped without [`Kubelet::shutdown`] (e.g. a panicking caller) still
    /// leaves no pod process behind.
    fn drop(&mut self) {
        if !self.stopped {
            self.stop.trigger();
            self.task.abort();
            self.sampler.abort();
            self.publisher.abort();
            self.streaming.abort();
            self.pids.kill_all();
        }
    }
}

/// The kubelet's loop: an informer keeps the pods bound to the node (a `spec.nodeName`
/// field selector, as the kubelet's own watch); on every change (or every 2 s) the workers
/// are brought in line with it.
async fn run(shared: Arc<KubeletShared>, isolation: String, shutdown: Shutdown) {
    let config = watcher::Config::default().fields(&format!("spec.nodeName={NODE_NAME}"));
    let informer = Informer::<Pod>::selecting(&shared.client, config);
    let trigger = Arc::new(Notify::new());
    let changed = trigger.clone();
    informer.on_change(move |_| changed.notify_one());
    let watch_task = informer.start(shutdown.clone());
    let pods = informer.store();
    let heartbeat = tokio::spawn(node::heartbeat(
        shared.client.clone(),
        shared.enforcement.clone(),
        shared.plan,
        isolation,
    ));
    let mut workers = PodWorkers::new(shared.clone());
    tokio::select! {
        ready = pods.wait_until_ready() => {
            if ready.is_ok() {
                prune_leftovers(&shared, &pods.state());
            }
        }
        _ = shutdown.recv() => {}
    }
    while !shutdown.is_shutdown() {
        workers.sync(&pods.state());
        tokio::select! {
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.recv() => break,
        }
    }
    watch_task.abort();
    heartbeat.abort();
    workers.stop_all().await;
}

/// The pod workers: one per running pod, and the pods being stopped.
struct PodWorkers {
    shared: Arc<KubeletShared>,
    workers: HashMap<String, Worker>,
    /// Pods (by uid) whose processes are being stopped; they are left alone meanwhile.
    stopping: Arc<Mutex<HashSet<String>>>,
    finalizers: tokio::task::JoinSet<()>,
}

impl PodWorkers {
    fn new(shared: Arc<KubeletShared>) -> Self {
        PodWorkers {
            shared,
            workers: HashMap::new(),
            stopping: Arc::default(),
            finalizers: tokio::task::JoinSet::new(),
        }
    }

    fn is_stopping(&self, uid: &str) -> bool {
        self.stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(uid)
    }

    /// Brings the workers in line with the node's pods.
    fn sync(&mut self, pods: &[Arc<Pod>]) {
        for pod in pods {
            let Some(uid) = pod.uid() else { continue };
            if self.is_stopping(&uid) {
                continue;
            }
            if pod.metadata.deletion_timestamp.is_some() {
                self.finish(Pod::clone(pod), true);
            } else {
                self.start(pod, uid);
            }
        }
        let present: HashSet<String> = pods.iter().filter_map(|p| p.uid()).collect();
        let gone: Vec<String> = self
            .workers
            .keys()
            .filter(|uid| !present.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            let mut placeholder = Pod::default();
            placeholder.metadata.uid = Some(uid);
            self.finish(placeholder, false);
        }
        self.workers.retain(|_, w| !w.handle.is_finished());
        while self.finalizers.try_join_next().is_some() {}
    }

    /// Starts a worker for a pod that has none and has not finished, on a free pod IP
    /// (its previous one when the sandbox restarted).
    fn start(&mut self, pod: &Pod, uid: String) {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if let Some(worker) = self.workers.get(&uid) {
            worker.updates.send_if_modified(|last| {
                let changed = last.spec != pod.spec;
                *last = pod.clone();
                changed
            });
            return;
        }
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return;
        }
        let preferred = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok());
        let ip = self
            .shared
            .ips
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allocate(self.shared.plan.pod_cidr(), &uid, preferred);
        let Some(ip) = ip else {
            let cidr = self.shared.plan.pod_cidr();
            tracing::warn!(pod = %pod.name_any(), "no free pod IP left in {}/{}", cidr.0, cidr.1);
            return;
        };
        let stop = ShutdownSignal::new();
        let (updates, listened) = tokio::sync::watch::channel(pod.clone());
        let run = pod::run_pod(
            self.shared.clone(),
            pod.clone(),
            ip,
            listened,
            stop.listener(),
        );
        let handle = tokio::spawn(run);
        self.workers.insert(
            uid,
            Worker {
                stop,
                handle,
                updates,
            },
        );
    }

    /// Stops a pod's worker in the background; `delete` completes a deletion afterwards.
    fn finish(&mut self, pod: Pod, delete: bool) {
        let uid = pod.uid().unwrap_or_default();
        let worker = self.workers.remove(&uid);
        self.stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid);
        let shared = self.shared.clone();
        let stopping = self.stopping.clone();
        self.finalizers
            .spawn(finish_pod(shared, pod, worker, stopping, delete));
    }

    /// Stops every worker and waits for them and the pods being stopped.
    async fn stop_all(mut self) {
        for (_, worker) in self.workers.drain() {
            worker.stop.trigger();
            self.finalizers.spawn(async move {
                let _ = worker.handle.await;
            });
        }
        while self.finalizers.join_next().await.is_some() {}
    }
}

/// Stops a pod's processes; for a pod being deleted, completes the deletion afterwards.
async fn finish_pod(
    shared: Arc<KubeletShared>,
    pod: Pod,
    worker: Option<Worker>,
    stopping: Arc<Mutex<HashSet<String>>>,
    delete: bool,
) {
    let uid = pod.uid().unwrap_or_default();
    if let Some(worker) = worker {
        worker.stop.trigger();
        let _ = worker.handle.await;
    }
    shared
        .ips
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .release(&uid);
    let _ = std::fs::remove_dir_all(crate::paths::pod_dir(&shared.state_dir, &uid));
    if delete {
        let api: Api<Pod> =
            Api::namespaced(shared.client.clone(), &pod.namespace().unwrap_or_default());
        let mut params = DeleteParams::default().grace_period(0);
        params.preconditions = Some(kube::api::Preconditions {
            uid: Some(uid.clone()),
            resource_version: None,
        });
        if let Err(e) = api.delete(&pod.name_any(), &params).await {
            tracing::debug!(pod = %pod.name_any(), error = %e, "final pod deletion failed");
        }
    }
    stopping
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&uid);
}

/// Removes scratch directories and logs of pods that no longer exist.
fn prune_leftovers(shared: &KubeletShared, pods: &[Arc<Pod>]) {
    let uids: HashSet<String> = pods.iter().filter_map(|p| p.uid()).collect();
    if let Ok(entries) = std::fs::read_dir(crate::paths::pods_dir(&shared.state_dir)) {
        for entry in entries.flatten() {
            if !uids.contains(&entry.file_name().to_string_lossy().to_string()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let names: HashSet<(String, String)> = pods
        .iter()
        .map(|p| (p.namespace().unwrap_or_default(), p.name_any()))
        .collect();
    if let Ok(namespaces) = std::fs::read_dir(crate::paths::logs_dir(&shared.state_dir)) {
        for ns in namespaces.flatten() {
            let ns_name = ns.file_name().to_string_lossy().to_string();
            for pod in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
                let pod_name = pod.file_name().to_string_lossy().to_string();
                if !names.contains(&(ns_name.clone(), pod_name)) {
                    let _ = std::fs::remove_dir_all(pod.path());
                }
            }
        }
    }
}
