//! The sandbox's node and control plane in one handle: controllers, scheduler, process
//! kubelet and service proxy, all talking to the API through a kube-rs client.

use crate::apimachinery::clock::Clock;
use crate::apimachinery::informers::Informers;
use crate::controllers::{ControllerConfig, Scope};
use crate::kubelet::{Kubelet, KubeletConfig, KubeletError};
use crate::proxy::ServiceProxy;
use crate::shutdown::ShutdownSignal;
use kube::Client;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Everything that makes stored objects run; stopping it stops every pod process.
pub struct Runtime {
    kubelet: Kubelet,
    control_plane: ControlPlane,
    /// Also keeps the NetworkPolicy rules in pods' network namespaces (namespace mode).
    proxy: ServiceProxy,
}

/// The controllers and the scheduler (for [`Scope::All`]), and the informers they share.
pub(crate) struct ControlPlane {
    stop: ShutdownSignal,
    tasks: Vec<JoinHandle<()>>,
}

impl ControlPlane {
    /// Subscribes the controllers (and, for the whole control plane, the scheduler) to the
    /// informers, then starts the informers, so none misses a change.
    pub(crate) fn start(client: Client, config: ControllerConfig, scope: Scope) -> Self {
        let stop = ShutdownSignal::new();
        let shutdown = stop.listener();
        let informers = Arc::new(Informers::new(&client));
        let mut tasks =
            crate::controllers::start(client.clone(), informers.clone(), config, scope, &shutdown);
        if scope == Scope::All {
            tasks.push(Self::schedule(client, &informers, &shutdown));
        }
        tasks.extend(informers.start(&shutdown));
        Self { stop, tasks }
    }

    /// The scheduler, once the informers have synced.
    fn schedule(
        client: Client,
        informers: &Arc<Informers>,
        shutdown: &crate::shutdown::Shutdown,
    ) -> JoinHandle<()> {
        let scheduler = crate::scheduler::run(client, informers, shutdown.clone());
        let synced = informers.clone();
        let scheduling = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = synced.synced() => scheduler.await,
                _ = scheduling.recv() => {}
            }
        })
    }

    /// Stops starting reconciles, lets running ones finish (for up to 5 s), then stops.
    pub(crate) async fn shutdown(self) {
        self.stop.stop(self.tasks, Duration::from_secs(5)).await;
    }
}

impl Runtime {
    /// Starts the kubelet (which first kills processes left by a crashed run), the
    /// controllers and scheduler, and the service proxy.
    pub async fn start(
        client: Client,
        config: KubeletConfig,
        clock: Clock,
    ) -> Result<Self, KubeletError> {
        let state_dir = config.state_dir.clone();
        let bridged = config
            .network
            .as_ref()
            .map(|n| n.plan)
            .filter(|plan| plan.gateway().is_some());
        let dns = config
            .network
            .as_ref()
            .and_then(|n| n.plan.gateway())
            .map(|ip| std::net::SocketAddr::new(ip.into(), 53));
        let kubelet = Kubelet::start(client.clone(), config).await?;
        let control_plane = ControlPlane::start(
            client.clone(),
            ControllerConfig {
                state_dir: state_dir.clone(),
                metrics: Some(kubelet.metrics()),
                clock,
            },
            Scope::All,
        );
        let mut proxy = ServiceProxy::start(client, dns).await;
        if let Some(plan) = bridged {
            proxy.enforce_policies(state_dir, plan);
        }
        Ok(Self {
            kubelet,
            control_plane,
            proxy,
        })
    }

    pub async fn shutdown(self) {
        self.control_plane.shutdown().await;
        self.proxy.shutdown().await;
        self.kubelet.shutdown().await;
    }
}
