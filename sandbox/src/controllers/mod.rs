//! The control plane's controllers, as kube-rs clients of the sandbox API like the real
//! kube-controller-manager and kube-scheduler: deployments, replica sets, stateful sets,
//! volume provisioning, endpoints, load balancers, scheduling and autoscaling.
//!
//! They are level-triggered: any watch event (or a periodic tick) starts a pass that lists
//! the current objects and makes every controller converge them. Lists are fresh for each
//! pass, so a controller never acts on a cache older than its own last write.

mod deployment;
mod endpoints;
mod hpa;
mod replicaset;
mod services;
mod statefulset;
mod util;
mod volumes;

use crate::apimachinery::events::Recorder;
use crate::kubelet::metrics::Metrics;
use crate::shutdown::{Shutdown, ShutdownSignal};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    Endpoints, Node, PersistentVolume, PersistentVolumeClaim, Pod, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// What the controllers need besides the API.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub state_dir: PathBuf,
    /// Live pod usage from the kubelet, for the HPA; without it HPAs report no metrics.
    pub metrics: Option<Metrics>,
}

/// The objects of one pass, listed fresh.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub deployments: Vec<Deployment>,
    pub replicasets: Vec<ReplicaSet>,
    pub statefulsets: Vec<StatefulSet>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub endpoints: Vec<Endpoints>,
    pub endpoint_slices: Vec<EndpointSlice>,
    pub pvcs: Vec<PersistentVolumeClaim>,
    pub pvs: Vec<PersistentVolume>,
    pub hpas: Vec<HorizontalPodAutoscaler>,
    pub nodes: Vec<Node>,
}

/// Shared by all controllers across passes.
pub struct Ctx {
    pub client: Client,
    pub config: ControllerConfig,
    pub deployments: Recorder,
    pub replicasets: Recorder,
    pub statefulsets: Recorder,
    pub scheduler: Recorder,
    pub volumes: Recorder,
    pub services: Recorder,
    pub hpa: Recorder,
    pub hpa_state: Mutex<hpa::HpaState>,
    pub last_hpa_pass: Mutex<Option<Instant>>,
}

/// Running controllers; [`Controllers::shutdown`] stops them.
pub struct Controllers {
    stop: ShutdownSignal,
    task: JoinHandle<()>,
}

impl Controllers {
    pub fn start(client: Client, config: ControllerConfig) -> Self {
        let recorder = |c: &str| Recorder::new(client.clone(), c);
        let ctx = Arc::new(Ctx {
            deployments: recorder("deployment-controller"),
            replicasets: recorder("replicaset-controller"),
            statefulsets: recorder("statefulset-controller"),
            scheduler: recorder("default-scheduler"),
            volumes: recorder("persistentvolume-controller"),
            services: recorder("service-controller"),
            hpa: recorder("horizontal-pod-autoscaler"),
            hpa_state: Mutex::default(),
            last_hpa_pass: Mutex::default(),
            client,
            config,
        });
        let stop = ShutdownSignal::new();
        let task = tokio::spawn(run(ctx, stop.listener()));
        Self { stop, task }
    }

    pub async fn shutdown(self) {
        self.stop.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

fn watch_kind<K>(client: &Client, trigger: &Arc<Notify>) -> JoinHandle<()>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let trigger = trigger.clone();
    tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while events.next().await.is_some() {
            trigger.notify_one();
        }
    })
}

async fn run(ctx: Arc<Ctx>, shutdown: Shutdown) {
    let trigger = Arc::new(Notify::new());
    let c = &ctx.client;
    let watchers = vec![
        watch_kind::<Deployment>(c, &trigger),
        watch_kind::<ReplicaSet>(c, &trigger),
        watch_kind::<StatefulSet>(c, &trigger),
        watch_kind::<Pod>(c, &trigger),
        watch_kind::<Service>(c, &trigger),
        watch_kind::<PersistentVolumeClaim>(c, &trigger),
        watch_kind::<HorizontalPodAutoscaler>(c, &trigger),
        watch_kind::<Node>(c, &trigger),
    ];
    loop {
        tokio::select! {
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.recv() => break,
        }
        // Let a burst of events (e.g. `kubectl apply` of several files) land first.
        tokio::time::sleep(Duration::from_millis(5)).await;
        match snapshot(&ctx.client).await {
            Ok(snap) => pass(&ctx, &snap).await,
            Err(e) => tracing::debug!(error = %e, "controllers cannot list objects"),
        }
    }
    for w in watchers {
        w.abort();
    }
}

async fn list<K>(client: &Client) -> Result<Vec<K>, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    Ok(Api::<K>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items)
}

pub async fn snapshot(client: &Client) -> Result<Snapshot, kube::Error> {
    let (deployments, replicasets, statefulsets, pods, services, endpoints) = tokio::try_join!(
        list(client),
        list(client),
        list(client),
        list(client),
        list(client),
        list(client)
    )?;
    let (endpoint_slices, pvcs, pvs, hpas, nodes) = tokio::try_join!(
        list(client),
        list(client),
        list(client),
        list(client),
        list(client)
    )?;
    Ok(Snapshot {
        deployments,
        replicasets,
        statefulsets,
        pods,
        services,
        endpoints,
        endpoint_slices,
        pvcs,
        pvs,
        hpas,
        nodes,
    })
}

/// One reconciliation of everything; each controller's failure is logged and retried on
/// the next pass.
pub async fn pass(ctx: &Ctx, snap: &Snapshot) {
    let log = |name: &str, r: Result<(), kube::Error>| {
        if let Err(e) = r {
            tracing::debug!(controller = name, error = %e, "reconcile failed; retrying on the next pass");
        }
    };
    log(
        "scheduler",
        crate::scheduler::reconcile(&ctx.client, &ctx.scheduler, &snap.nodes, &snap.pods).await,
    );
    log("volumes", volumes::reconcile(ctx, snap).await);
    log("deployment", deployment::reconcile(ctx, snap).await);
    log("replicaset", replicaset::reconcile(ctx, snap).await);
    log("statefulset", statefulset::reconcile(ctx, snap).await);
    log("endpoints", endpoints::reconcile(ctx, snap).await);
    log("services", services::reconcile(ctx, snap).await);
    let due = {
        let mut last = ctx.last_hpa_pass.lock().unwrap_or_else(|e| e.into_inner());
        let due = last.is_none_or(|t| t.elapsed() >= hpa::SYNC_PERIOD);
        if due {
            *last = Some(Instant::now());
        }
        due
    };
    if due {
        log("hpa", hpa::reconcile(ctx, snap).await);
    }
}

/// Objects of `items` in namespace `ns`.
pub fn in_namespace<'a, K: kube::ResourceExt>(
    items: &'a [K],
    ns: &str,
) -> impl Iterator<Item = &'a K> {
    let ns = ns.to_string();
    items
        .iter()
        .filter(move |o| o.namespace().as_deref() == Some(ns.as_str()))
}
