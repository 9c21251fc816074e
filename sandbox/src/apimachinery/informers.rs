//! Shared informers, as client-go's: one watch per kind feeds a reflector store that the
//! controllers and the scheduler read instead of listing, and every change is announced
//! (to handlers, then to subscribers) only after the store applied it, so whatever a change
//! triggers finds the store at least that new.

use crate::shutdown::Shutdown;
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
    ReplicationController, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// Changes a subscriber may fall behind by before it re-reads the whole store.
const FAN_OUT_BUFFER: usize = 4096;

/// One change the store applied, with the object as it was before.
#[derive(Debug)]
pub(crate) enum Change<K> {
    Added(Arc<K>),
    Modified {
        old: Arc<K>,
        new: Arc<K>,
    },
    /// The last state seen; after a re-list, the state before the watch broke.
    Deleted(Arc<K>),
}

impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Added(o) => Change::Added(o.clone()),
            Change::Modified { old, new } => Change::Modified {
                old: old.clone(),
                new: new.clone(),
            },
            Change::Deleted(o) => Change::Deleted(o.clone()),
        }
    }
}

impl<K: Resource> Change<K> {
    /// The object now, or as last seen for a deletion.
    pub(crate) fn object(&self) -> &K {
        match self {
            Change::Added(o) | Change::Deleted(o) => o,
            Change::Modified { new, .. } => new,
        }
    }

    /// The objects whose relations a change concerns: the new one, and the old one too when
    /// its labels or owners differ (a pod leaving a Service's selector, an adopted pod).
    fn touched(&self) -> Vec<K>
    where
        K: Clone,
    {
        match self {
            Change::Modified { old, new }
                if old.meta().labels != new.meta().labels
                    || old.meta().owner_references != new.meta().owner_references =>
            {
                vec![(**old).clone(), (**new).clone()]
            }
            _ => vec![self.object().clone()],
        }
    }
}

type Handler<K> = Box<dyn Fn(&Change<K>) + Send + Sync>;

/// The kinds an informer serves.
pub(crate) trait Kind:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}
impl<K> Kind for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

/// One kind's watch, store and change fan-out.
pub(crate) struct Informer<K: Kind> {
    api: Api<K>,
    config: watcher::Config,
    store: Store<K>,
    writer: Mutex<Option<Writer<K>>>,
    handlers: RwLock<Vec<Handler<K>>>,
    changes: broadcast::Sender<Change<K>>,
}

impl<K: Kind> Informer<K> {
    pub(crate) fn new(client: &Client) -> Arc<Self> {
        Self::selecting(client, watcher::Config::default())
    }

    /// An informer of only the objects `config` selects (e.g. the kubelet's pods, by a
    /// `spec.nodeName` field selector).
    pub(crate) fn selecting(client: &Client, config: watcher::Config) -> Arc<Self> {
        let writer = Writer::default();
        Arc::new(Self {
            api: Api::all(client.clone()),
            config,
            store: writer.as_reader(),
            writer: Mutex::new(Some(writer)),
            handlers: RwLock::default(),
            changes: broadcast::channel(FAN_OUT_BUFFER).0,
        })
    }

    /// The cache every reader shares.
    pub(crate) fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Calls `handler` on every change, after the store applied it and before subscribers
    /// hear of it (client-go's event handlers): where expectations are lowered.
    pub(crate) fn on_change(&self, handler: impl Fn(&Change<K>) + Send + Sync + 'static) {
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(handler));
    }

    /// The objects of every later change (both versions when labels or owners changed, the
    /// last state of deleted ones), for `Controller::for_stream`, `owns_stream` and
    /// `watches_stream`. A subscriber that falls behind gets the whole store again.
    pub(crate) fn subscribe(
        &self,
    ) -> impl Stream<Item = Result<K, watcher::Error>> + Send + use<K> {
        let store = self.store.clone();
        futures::stream::unfold(self.changes.subscribe(), move |mut rx| {
            let store = store.clone();
            async move {
                match rx.recv().await {
                    Ok(change) => Some((change.touched(), rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        Some((store.state().iter().map(|o| (**o).clone()).collect(), rx))
                    }
                    Err(broadcast::error::RecvError::Closed) => None,
                }
            }
        })
        .flat_map(futures::stream::iter)
        .map(Ok)
    }

    /// Watches until `shutdown`; restarts the watch with back-off when it fails.
    pub(crate) fn start(self: &Arc<Self>, shutdown: Shutdown) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let Some(mut writer) = this.writer.lock().unwrap_or_else(|e| e.into_inner()).take()
            else {
                return;
            };
            let mut events = watcher(this.api.clone(), this.config.clone())
                .default_backoff()
                .boxed();
            let mut relist = None;
            loop {
                let event = tokio::select! {
                    _ = shutdown.recv() => return,
                    event = events.next() => event,
                };
                match event {
                    None => return,
                    Some(Ok(event)) => {
                        for change in apply(&this.store, &mut writer, &mut relist, event) {
                            this.announce(change);
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(kind = %K::kind(&()), error = %e, "watch failed; retrying")
                    }
                }
            }
        })
    }

    fn announce(&self, change: Change<K>) {
        for handler in self
            .handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            handler(&change);
        }
        let _ = self.changes.send(change);
    }
}

type Snapshot<K> = HashMap<ObjectRef<K>, Arc<K>>;

/// Applies one watch event to the store and says what changed. A re-list (`Init` ..
/// `InitDone`) is compared with the store before it, so objects deleted while the watch
/// was down are announced too.
fn apply<K: Kind>(
    store: &Store<K>,
    writer: &mut Writer<K>,
    relist: &mut Option<Snapshot<K>>,
    event: watcher::Event<K>,
) -> Vec<Change<K>> {
    match &event {
        watcher::Event::Apply(obj) => {
            let key = ObjectRef::from_obj(obj);
            let old = store.get(&key);
            writer.apply_watcher_event(&event);
            let Some(new) = store.get(&key) else {
                return Vec::new();
            };
            vec![match old {
                Some(old) => Change::Modified { old, new },
                None => Change::Added(new),
            }]
        }
        watcher::Event::Delete(obj) => {
            writer.apply_watcher_event(&event);
            vec![Change::Deleted(Arc::new(obj.clone()))]
        }
        watcher::Event::Init => {
            *relist = Some(snapshot(store));
            writer.apply_watcher_event(&event);
            Vec::new()
        }
        watcher::Event::InitApply(_) => {
            writer.apply_watcher_event(&event);
            Vec::new()
        }
        watcher::Event::InitDone => {
            writer.apply_watcher_event(&event);
            diff(relist.take().unwrap_or_default(), snapshot(store))
        }
    }
}

fn snapshot<K: Kind>(store: &Store<K>) -> Snapshot<K> {
    store
        .state()
        .into_iter()
        .map(|o| (ObjectRef::from_obj(&*o), o))
        .collect()
}

fn diff<K: Kind>(mut before: Snapshot<K>, after: Snapshot<K>) -> Vec<Change<K>> {
    let mut changes = Vec::new();
    for (key, new) in after {
        match before.remove(&key) {
            None => changes.push(Change::Added(new)),
            Some(old) if old.resource_version() != new.resource_version() => {
                changes.push(Change::Modified { old, new })
            }
            Some(_) => {}
        }
    }
    changes.extend(before.into_values().map(Change::Deleted));
    changes
}

/// The informers of the kinds the controllers and the scheduler read (client-go's
/// SharedInformerFactory): one watch each, however many readers.
pub(crate) struct Informers {
    pub(crate) deployments: Arc<Informer<Deployment>>,
    pub(crate) replicasets: Arc<Informer<ReplicaSet>>,
    pub(crate) statefulsets: Arc<Informer<StatefulSet>>,
    pub(crate) pods: Arc<Informer<Pod>>,
    pub(crate) nodes: Arc<Informer<Node>>,
    pub(crate) services: Arc<Informer<Service>>,
    pub(crate) endpoints: Arc<Informer<Endpoints>>,
    pub(crate) endpoint_slices: Arc<Informer<EndpointSlice>>,
    pub(crate) pvcs: Arc<Informer<PersistentVolumeClaim>>,
    pub(crate) pvs: Arc<Informer<PersistentVolume>>,
    pub(crate) hpas: Arc<Informer<HorizontalPodAutoscaler>>,
    pub(crate) jobs: Arc<Informer<Job>>,
    pub(crate) cron_jobs: Arc<Informer<CronJob>>,
    pub(crate) daemon_sets: Arc<Informer<DaemonSet>>,
    pub(crate) replication_controllers: Arc<Informer<ReplicationController>>,
    pub(crate) namespaces: Arc<Informer<Namespace>>,
    pub(crate) service_accounts: Arc<Informer<ServiceAccount>>,
    pub(crate) config_maps: Arc<Informer<ConfigMap>>,
    pub(crate) pdbs: Arc<Informer<PodDisruptionBudget>>,
    synced: tokio::sync::OnceCell<()>,
}

impl Informers {
    pub(crate) fn new(client: &Client) -> Self {
        Self {
            deployments: Informer::new(client),
            replicasets: Informer::new(client),
            statefulsets: Informer::new(client),
            pods: Informer::new(client),
            nodes: Informer::new(client),
            services: Informer::new(client),
            endpoints: Informer::new(client),
            endpoint_slices: Informer::new(client),
            pvcs: Informer::new(client),
            pvs: Informer::new(client),
            hpas: Informer::new(client),
            jobs: Informer::new(client),
            cron_jobs: Informer::new(client),
            daemon_sets: Informer::new(client),
            replication_controllers: Informer::new(client),
            namespaces: Informer::new(client),
            service_accounts: Informer::new(client),
            config_maps: Informer::new(client),
            pdbs: Informer::new(client),
            synced: tokio::sync::OnceCell::new(),
        }
    }

    /// Starts every watch; handlers and subscribers registered before see every change.
    pub(crate) fn start(&self, shutdown: &Shutdown) -> Vec<JoinHandle<()>> {
        vec![
            self.deployments.start(shutdown.clone()),
            self.replicasets.start(shutdown.clone()),
            self.statefulsets.start(shutdown.clone()),
            self.pods.start(shutdown.clone()),
            self.nodes.start(shutdown.clone()),
            self.services.start(shutdown.clone()),
            self.endpoints.start(shutdown.clone()),
            self.endpoint_slices.start(shutdown.clone()),
            self.pvcs.start(shutdown.clone()),
            self.pvs.start(shutdown.clone()),
            self.hpas.start(shutdown.clone()),
            self.jobs.start(shutdown.clone()),
            self.cron_jobs.start(shutdown.clone()),
            self.daemon_sets.start(shutdown.clone()),
            self.replication_controllers.start(shutdown.clone()),
            self.namespaces.start(shutdown.clone()),
            self.service_accounts.start(shutdown.clone()),
            self.config_maps.start(shutdown.clone()),
            self.pdbs.start(shutdown.clone()),
        ]
    }

    /// Resolves once every store holds its first complete list, so no reader mistakes a
    /// store still filling for an empty cluster. (A store's own readiness wakes only one
    /// waiter at a time, so the stores are awaited once here and everyone else waits on the
    /// cell.)
    pub(crate) async fn synced(&self) {
        self.synced.get_or_init(|| self.wait_for_stores()).await;
    }

    async fn wait_for_stores(&self) {
        let _ = tokio::join!(
            self.deployments.store.wait_until_ready(),
            self.replicasets.store.wait_until_ready(),
            self.statefulsets.store.wait_until_ready(),
            self.pods.store.wait_until_ready(),
            self.nodes.store.wait_until_ready(),
            self.services.store.wait_until_ready(),
            self.endpoints.store.wait_until_ready(),
            self.endpoint_slices.store.wait_until_ready(),
            self.pvcs.store.wait_until_ready(),
            self.pvs.store.wait_until_ready(),
            self.hpas.store.wait_until_ready(),
            self.namespaces.store.wait_until_ready(),
            self.service_accounts.store.wait_until_ready(),
            self.config_maps.store.wait_until_ready(),
            self.pdbs.store.wait_until_ready(),
        );
        let _ = tokio::join!(
            self.jobs.store.wait_until_ready(),
            self.cron_jobs.store.wait_until_ready(),
            self.daemon_sets.store.wait_until_ready(),
            self.replication_controllers.store.wait_until_ready(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn pod(name: &str, rv: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("demo".into()),
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(changes: &[Change<Pod>]) -> Vec<String> {
        let mut v: Vec<String> = changes
            .iter()
            .map(|c| {
                let what = match c {
                    Change::Added(_) => "added",
                    Change::Modified { .. } => "modified",
                    Change::Deleted(_) => "deleted",
                };
                format!("{what} {}", c.object().name_any())
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn the_store_applies_a_change_before_it_is_announced_and_relists_announce_deletions() {
        let mut writer = Writer::<Pod>::default();
        let store = writer.as_reader();
        let mut relist = None;
        let mut feed = |e| apply(&store, &mut writer, &mut relist, e);
        assert!(feed(watcher::Event::Init).is_empty());
        assert!(feed(watcher::Event::InitApply(pod("a", "1"))).is_empty());
        assert!(feed(watcher::Event::InitApply(pod("b", "2"))).is_empty());
        assert_eq!(
            names(&feed(watcher::Event::InitDone)),
            ["added a", "added b"]
        );
        let changes = feed(watcher::Event::Apply(pod("a", "3")));
        assert_eq!(names(&changes), ["modified a"]);
        assert_eq!(
            store
                .get(&ObjectRef::new("a").within("demo"))
                .and_then(|p| p.resource_version()),
            Some("3".into()),
            "the store holds what was announced"
        );
        assert_eq!(
            names(&feed(watcher::Event::Apply(pod("c", "4")))),
            ["added c"]
        );
        // The watch broke; meanwhile b was deleted and c changed.
        feed(watcher::Event::Init);
        feed(watcher::Event::InitApply(pod("a", "3")));
        feed(watcher::Event::InitApply(pod("c", "5")));
        assert_eq!(
            names(&feed(watcher::Event::InitDone)),
            ["deleted b", "modified c"]
        );
        assert_eq!(
            names(&feed(watcher::Event::Delete(pod("a", "6")))),
            ["deleted a"]
        );
        assert!(store.get(&ObjectRef::new("a").within("demo")).is_none());
    }
}
