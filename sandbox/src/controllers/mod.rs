//! The control plane's controllers, as kube-rs clients of the sandbox API like the real
//! kube-controller-manager: one kube-runtime `Controller` per kind, each reconciling one
//! object at a time, triggered by changes to it and to the objects it owns or watches, and
//! reading those from the shared informers' stores instead of listing.
//!
//! | controller | reconciles | triggered by (owns / watches) | reads from the stores |
//! |---|---|---|---|
//! | `deployment` | Deployment | owns ReplicaSets | ReplicaSets |
//! | `replicaset` | ReplicaSet | owns Pods | Pods |
//! | `statefulset` | StatefulSet | owns Pods | Pods, PVCs |
//! | `endpoints` | Service | watches Pods (mapped to the Services selecting them); owns Endpoints and EndpointSlices | Pods, Endpoints, EndpointSlices |
//! | `services` | Service (LoadBalancer) | | Services (addresses taken) |
//! | `volumes` (claims) | PersistentVolumeClaim | | PersistentVolumes |
//! | `volumes` (volumes) | PersistentVolume | watches PVCs (mapped to their bound volume) | PVCs |
//! | `hpa` | HorizontalPodAutoscaler | requeues itself every sync period | Deployments, StatefulSets, Pods |
//! | `job` | Job | owns Pods; requeues itself for back-offs, deadlines and TTLs | Pods |
//! | `daemonset` | DaemonSet | owns Pods; watches Nodes (mapped to every DaemonSet) | Nodes, Pods |
//! | `replicationcontroller` | ReplicationController (through the ReplicaSet logic) | owns Pods | Pods |
//! | `cronjob` | CronJob | owns Jobs; requeues itself for the next scheduled time, and on every clock advance | Jobs |
//! | `garbagecollector` | ReplicaSet, Pod, Endpoints, EndpointSlice | watches their owners' deletion (Deployment; ReplicaSet, StatefulSet; Service) | the owners (then the API, to confirm) |
//! | `serviceaccounts` | Namespace | watches `default` ServiceAccounts (mapped to their namespace) | ServiceAccounts |
//! | `rootca` | Namespace | watches `kube-root-ca.crt` ConfigMaps (mapped to their namespace) | ConfigMaps |
//! | `disruption` | PodDisruptionBudget | watches Pods (mapped to the budgets selecting them) | Pods, ReplicaSets, StatefulSets |
//! | `scheduler/` | Pod (pending) | watches the Node and pods leaving it (mapped to pending pods) | Pods, Node |
//!
//! Each kind is watched once, by the shared informers (`apimachinery::informers`), which
//! feed every controller's trigger streams (`Controller::for_stream`, `owns_stream`,
//! `watches_stream`) and stores; a change reaches a trigger only after its store applied
//! it. Failed reconciles retry per object with back-off (`apimachinery::workqueue`).
//!
//! Stores can be older than a controller's own last write, so controllers that create,
//! delete or change objects record [`expectations`] and act again only once the informers
//! observed them.

mod cronjob;
mod daemonset;
mod deployment;
mod disruption;
mod endpoints;
mod expectations;
mod garbagecollector;
mod history;
mod hpa;
mod job;
mod pod_control;
mod replicaset;
mod replicationcontroller;
mod rootca;
mod serviceaccounts;
mod services;
mod statefulset;
mod util;
mod volumes;

use crate::apimachinery::clock::Clock;
use crate::apimachinery::informers::Informers;
use crate::kubelet::metrics::Metrics;
use crate::shutdown::Shutdown;
use expectations::Expectations;
use futures::future::BoxFuture;
use kube::Client;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// What the controllers need besides the API.
#[derive(Debug, Clone)]
pub(crate) struct ControllerConfig {
    pub(crate) state_dir: PathBuf,
    /// Live pod usage from the kubelet, for the HPA; without it HPAs report no metrics.
    pub(crate) metrics: Option<Metrics>,
    /// The time Jobs and CronJobs act on.
    pub(crate) clock: Clock,
}

/// Which controllers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every controller: the sandbox is the whole control plane.
    All,
    /// Only what a bare kube-controller-manager lacks (load-balancer addresses and volume
    /// provisioning), for the node side joined to a real control plane.
    NodeSide,
}

/// What every controller reads and writes through.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) informers: Arc<Informers>,
    pub(crate) expectations: Arc<Expectations>,
    pub(crate) config: ControllerConfig,
}

/// Why one reconcile failed; the object is retried with back-off.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The API server's own message for a failed call, as Kubernetes' controllers put it in
    /// events and conditions (`pods "web-x" is forbidden: …`); else the whole error.
    pub(crate) fn api_message(&self) -> String {
        match self {
            Error::Api {
                source: kube::Error::Api(status),
                ..
            } => status.message.clone(),
            other => other.to_string(),
        }
    }
}

/// Wraps a failed API call with what was being done to which object.
pub(crate) fn api_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { what, source }
}

/// Subscribes every controller to the informers and lets the informers lower the
/// expectations; returns the running controllers. Call before the informers start, so no
/// change is missed.
pub(crate) fn start(
    client: Client,
    informers: Arc<Informers>,
    config: ControllerConfig,
    scope: Scope,
    shutdown: &Shutdown,
) -> Vec<JoinHandle<()>> {
    let expectations = Arc::new(Expectations::default());
    observe(&informers, &expectations);
    let shared = Arc::new(Shared {
        client,
        informers: informers.clone(),
        expectations,
        config,
    });
    let controllers: Vec<BoxFuture<'static, ()>> = match scope {
        Scope::All => every_controller(&shared, shutdown),
        Scope::NodeSide => vec![
            Box::pin(services::run(&shared, shutdown.clone())),
            Box::pin(volumes::run_claims(&shared, shutdown.clone())),
            Box::pin(volumes::run_volumes(&shared, shutdown.clone())),
        ],
    };
    controllers
        .into_iter()
        .map(|controller| {
            let informers = informers.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = informers.synced() => controller.await,
                    _ = shutdown.recv() => {}
                }
            })
        })
        .collect()
}

/// The whole kube-controller-manager, as the sandbox runs it.
fn every_controller(shared: &Arc<Shared>, shutdown: &Shutdown) -> Vec<BoxFuture<'static, ()>> {
    let mut controllers: Vec<BoxFuture<'static, ()>> = vec![
        Box::pin(deployment::run(shared, shutdown.clone())),
        Box::pin(replicaset::run(shared, shutdown.clone())),
        Box::pin(statefulset::run(shared, shutdown.clone())),
        Box::pin(endpoints::run(shared, shutdown.clone())),
        Box::pin(services::run(shared, shutdown.clone())),
        Box::pin(volumes::run_claims(shared, shutdown.clone())),
        Box::pin(volumes::run_volumes(shared, shutdown.clone())),
        Box::pin(hpa::run(shared, shutdown.clone())),
        Box::pin(job::run(shared, shutdown.clone())),
        Box::pin(cronjob::run(shared, shutdown.clone())),
        Box::pin(daemonset::run(shared, shutdown.clone())),
        Box::pin(replicationcontroller::run(shared, shutdown.clone())),
        Box::pin(serviceaccounts::run(shared, shutdown.clone())),
        Box::pin(rootca::run(shared, shutdown.clone())),
        Box::pin(disruption::run(shared, shutdown.clone())),
    ];
    controllers.extend(garbagecollector::run(shared, shutdown));
    controllers
}

/// The changes expectations wait for: objects a controller creates, deletes or writes.
fn observe(informers: &Informers, expectations: &Arc<Expectations>) {
    macro_rules! handle {
        ($($informer:ident),*) => {$(
            let e = expectations.clone();
            informers.$informer.on_change(move |change| e.observe(change));
        )*};
    }
    handle!(
        deployments,
        replicasets,
        statefulsets,
        pods,
        endpoints,
        endpoint_slices,
        services
    );
}
