//! The process kubelet: registers the sandbox's node and runs the pods bound to it as local
//! processes, each on its own loopback IP, reporting their status through the API.

pub(crate) mod cgroups;
mod container;
mod context;
mod images;
pub(crate) mod metrics;
pub(crate) mod node;
mod pod;
mod probes;
mod process;
mod shared;

pub use node::LIMITS_ANNOTATION;
#[cfg(feature = "standin")]
pub(crate) mod standin;

use crate::apimachinery::events::Recorder;
use crate::apimachinery::network::{NODE_NAME, POD_CIDR};
use crate::kubelet::cgroups::Enforcement;
use crate::kubelet::images::{ImageError, ImageResolver};
use crate::shutdown::{Shutdown, ShutdownSignal};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
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
}

impl KubeletConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Self {
            state_dir: state_dir.into(),
            backoff: Backoff::default(),
            enforcement: None,
            program_dirs: Vec::new(),
        }
    }
}

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
}

/// A running kubelet; [`Kubelet::shutdown`] stops every pod process.
pub struct Kubelet {
    stop: ShutdownSignal,
    task: JoinHandle<()>,
    metrics: Metrics,
    enforcement: Enforcement,
    sampler: JoinHandle<()>,
    publisher: JoinHandle<()>,
    pids: PidRegistry,
    stopped: bool,
}

impl Kubelet {
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
            enforcement: enforcement.clone(),
            pids: pids.clone(),
            metrics: metrics.clone(),
            backoff: config.backoff,
            ips: Mutex::default(),
        });
        let stop = ShutdownSignal::new();
        let task = tokio::spawn(run(shared.clone(), stop.listener()));
        let sampler = metrics.spawn_sampler();
        let publisher = tokio::spawn(metrics::publish(shared.client.clone(), metrics.clone()));
        Ok(Self {
            stop,
            task,
            metrics,
            enforcement,
            sampler,
            publisher,
            pids,
            stopped: false,
        })
    }

    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    pub fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }

    /// Stops every pod's processes (SIGTERM, then SIGKILL) and the kubelet itself.
    pub async fn shutdown(mut self) {
        self.stop.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(30), &mut self.task).await;
        self.sampler.abort();
        self.publisher.abort();
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
            self.pids.kill_all();
        }
    }
}

async fn run(shared: Arc<KubeletShared>, shutdown: Shutdown) {
    let trigger = Arc::new(Notify::new());
    let watch_task = {
        let trigger = trigger.clone();
        let api: Api<Pod> = Api::all(shared.client.clone());
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while events.next().await.is_some() {
                trigger.notify_one();
            }
        })
    };
    let heartbeat = tokio::spawn(node::heartbeat(
        shared.client.clone(),
        shared.enforcement.clone(),
    ));
    let mut workers: HashMap<String, Worker> = HashMap::new();
    let stopping: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut finalizers = tokio::task::JoinSet::new();
    let mut pruned = false;
    loop {
        tokio::select! {
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.recv() => break,
        }
        let pods = match Api::<Pod>::all(shared.client.clone())
            .list(&ListParams::default())
            .await
        {
            Ok(list) => list.items,
            Err(e) => {
                tracing::debug!(error = %e, "kubelet cannot list pods");
                continue;
            }
        };
        let mine: Vec<Pod> = pods
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE_NAME))
            .collect();
        if !pruned {
            prune_leftovers(&shared, &mine);
            pruned = true;
        }
        let present: HashSet<String> = mine.iter().filter_map(|p| p.uid()).collect();
        for pod in &mine {
            let Some(uid) = pod.uid() else { continue };
            if stopping
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&uid)
            {
                continue;
            }
            let terminating = pod.metadata.deletion_timestamp.is_some();
            if terminating {
                let worker = workers.remove(&uid);
                stopping
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(uid.clone());
                finalizers.spawn(finish_pod(
                    shared.clone(),
                    pod.clone(),
                    worker,
                    stopping.clone(),
                    true,
                ));
                continue;
            }
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if workers.contains_key(&uid) || matches!(phase, Some("Succeeded" | "Failed")) {
                continue;
            }
            let preferred = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|ip| ip.parse().ok());
            let Some(ip) = shared
                .ips
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .allocate(&uid, preferred)
            else {
                tracing::warn!(pod = %pod.name_any(), "no free pod IP left in {:?}", POD_CIDR);
                continue;
            };
            let stop = ShutdownSignal::new();
            let handle = tokio::spawn(pod::run_pod(
                shared.clone(),
                pod.clone(),
                ip,
                stop.listener(),
            ));
            workers.insert(uid, Worker { stop, handle });
        }
        let gone: Vec<String> = workers
            .keys()
            .filter(|uid| !present.contains(*uid))
            .cloned()
            .collect();
        for uid in gone {
            let worker = workers.remove(&uid);
            stopping
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(uid.clone());
            let mut placeholder = Pod::default();
            placeholder.metadata.uid = Some(uid);
            finalizers.spawn(finish_pod(
                shared.clone(),
                placeholder,
                worker,
                stopping.clone(),
                false,
            ));
        }
        workers.retain(|_, w| !w.handle.is_finished());
        while finalizers.try_join_next().is_some() {}
    }
    watch_task.abort();
    heartbeat.abort();
    for (uid, worker) in workers.drain() {
        worker.stop.trigger();
        finalizers.spawn(async move {
            let _ = worker.handle.await;
            drop(uid);
        });
    }
    while finalizers.join_next().await.is_some() {}
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
fn prune_leftovers(shared: &KubeletShared, pods: &[Pod]) {
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
