//! What the service proxy, its ingress controller and the NetworkPolicy enforcer read, kept as kube-proxy and a
//! CNI's node agent keep it: one watch per kind into a reflector store. A change wakes the
//! loops, which then read the stores instead of listing every kind over the API again.

use crate::apimachinery::informers::{Informer, Kind};
use crate::shutdown::Shutdown;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::Client;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The proxy's informers.
pub(crate) struct Watched {
    pub(crate) services: Arc<Informer<Service>>,
    pub(crate) endpoints: Arc<Informer<Endpoints>>,
    /// For the ingress controller.
    pub(crate) ingresses: Arc<Informer<Ingress>>,
    /// What a policy decision reads; `None` where policies are not enforced.
    pub(crate) policy: Option<PolicyKinds>,
    /// Set once every store is ready: a store wakes only one waiter (kube-runtime's
    /// `DelayedInit` keeps a single waker), so the proxy, ingress and enforcer wait here.
    synced: tokio::sync::OnceCell<()>,
}

/// The kinds a NetworkPolicy decision reads.
pub(crate) struct PolicyKinds {
    pub(crate) policies: Arc<Informer<NetworkPolicy>>,
    pub(crate) pods: Arc<Informer<Pod>>,
    pub(crate) namespaces: Arc<Informer<Namespace>>,
}

impl Watched {
    /// Services and Endpoints, and with `policies` the kinds NetworkPolicies are judged by.
    pub(crate) fn new(client: &Client, policies: bool) -> Arc<Self> {
        Arc::new(Self {
            services: Informer::new(client),
            endpoints: Informer::new(client),
            ingresses: Informer::new(client),
            policy: policies.then(|| PolicyKinds {
                policies: Informer::new(client),
                pods: Informer::new(client),
                namespaces: Informer::new(client),
            }),
            synced: tokio::sync::OnceCell::new(),
        })
    }

    /// Starts every watch, until `shutdown`.
    pub(crate) fn start(&self, shutdown: &Shutdown) -> Vec<JoinHandle<()>> {
        let mut tasks = vec![
            self.services.start(shutdown.clone()),
            self.endpoints.start(shutdown.clone()),
            self.ingresses.start(shutdown.clone()),
        ];
        if let Some(kinds) = &self.policy {
            tasks.extend([
                kinds.policies.start(shutdown.clone()),
                kinds.pods.start(shutdown.clone()),
                kinds.namespaces.start(shutdown.clone()),
            ]);
        }
        tasks
    }

    /// Wakes `trigger` on every change to a Service or Endpoints.
    pub(crate) fn wake_on_services(&self, trigger: &Arc<Notify>) {
        wake(&self.services, trigger);
        wake(&self.endpoints, trigger);
    }

    /// Wakes `trigger` on every change to an Ingress or Service.
    pub(crate) fn wake_on_ingresses(&self, trigger: &Arc<Notify>) {
        wake(&self.ingresses, trigger);
        wake(&self.services, trigger);
    }

    /// Wakes `trigger` on every change to a NetworkPolicy, Pod or Namespace.
    pub(crate) fn wake_on_policies(&self, trigger: &Arc<Notify>) {
        if let Some(kinds) = &self.policy {
            wake(&kinds.policies, trigger);
            wake(&kinds.pods, trigger);
            wake(&kinds.namespaces, trigger);
        }
    }

    /// Returns once every store holds its first complete list.
    pub(crate) async fn synced(&self) {
        self.synced.get_or_init(|| self.wait_for_stores()).await;
    }

    async fn wait_for_stores(&self) {
        let _ = self.services.store().wait_until_ready().await;
        let _ = self.endpoints.store().wait_until_ready().await;
        let _ = self.ingresses.store().wait_until_ready().await;
        if let Some(kinds) = &self.policy {
            let _ = kinds.policies.store().wait_until_ready().await;
            let _ = kinds.pods.store().wait_until_ready().await;
            let _ = kinds.namespaces.store().wait_until_ready().await;
        }
    }
}

fn wake<K: Kind>(informer: &Informer<K>, trigger: &Arc<Notify>) {
    let trigger = trigger.clone();
    informer.on_change(move |_| trigger.notify_one());
}

/// Every object in `informer`'s store, owned.
pub(crate) fn all<K: Kind>(informer: &Informer<K>) -> Vec<K> {
    informer
        .store()
        .state()
        .iter()
        .map(|o| (**o).clone())
        .collect()
}
