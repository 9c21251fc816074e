//! The sandbox's node side on its own, joined to an API server it does not run (a real
//! kube-apiserver, whose kube-controller-manager and kube-scheduler do the rest): the process
//! kubelet, the service proxy, and the two controllers a bare control plane lacks
//! (load-balancer addresses and volume provisioning), plus `metrics.k8s.io` as an aggregated
//! APIService for the real HPA controller. Test tooling for judging the lessons
//! on real Kubernetes; learners use [`crate::Sandbox`].

use crate::controllers::{ControllerConfig, Scope};
use crate::kubelet::network::PodNetwork;
use crate::kubelet::{Kubelet, KubeletConfig};
use crate::node_agent_metrics::MetricsApi;
use crate::proxy::ServiceProxy;
use crate::runtime::ControlPlane;
use kube::Client;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the node agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeAgentError {
    /// A real API server refuses loopback addresses in Endpoints and EndpointSlices, so pods
    /// need the namespace mode's bridged addresses, not the process mode's loopback ones.
    #[error(
        "the node agent needs pod isolation (network namespaces on a bridge), because a real \
         API server refuses loopback pod addresses in Endpoints: {0}; run as root"
    )]
    Isolation(String),
    #[error("cannot set up the node agent's pod network under {dir}: {message}")]
    Network { dir: String, message: String },
    #[error("cannot use the node agent's state directory {dir}: {source}")]
    State {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the kubelet did not start: {0}")]
    Kubelet(String),
    #[error("cannot serve metrics.k8s.io: {0}")]
    Metrics(String),
}

/// The node's pod network, claimed before the control plane starts so that its
/// `--service-cluster-ip-range` can be the range the proxy serves.
pub struct NodeNetwork {
    network: Arc<PodNetwork>,
    state_dir: PathBuf,
}

impl NodeNetwork {
    /// Creates `state_dir` and claims a bridge and a free slot of 198.18.0.0/15 for it
    /// (removed again when the agent stops or this is dropped).
    pub async fn claim(state_dir: &Path) -> Result<Self, NodeAgentError> {
        std::fs::create_dir_all(state_dir).map_err(|source| NodeAgentError::State {
            dir: state_dir.display().to_string(),
            source,
        })?;
        crate::kubelet::namespaces::available().map_err(NodeAgentError::Isolation)?;
        let network = PodNetwork::claim(state_dir)
            .await
            .map_err(|e| NodeAgentError::Network {
                dir: state_dir.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            network: Arc::new(network),
            state_dir: state_dir.to_path_buf(),
        })
    }

    /// The cluster IPs the proxy serves, e.g. `198.19.7.0/24`: the API server's
    /// `--service-cluster-ip-range`.
    pub fn service_cidr(&self) -> String {
        let (ip, len) = self.network.plan.service_cidr();
        format!("{ip}/{len}")
    }

    /// The node's `spec.podCIDR`, e.g. `198.18.7.0/24`.
    pub fn pod_cidr(&self) -> String {
        let (ip, len) = self.network.plan.pod_cidr();
        format!("{ip}/{len}")
    }
}

/// What the node agent runs with.
pub struct NodeAgentConfig {
    pub network: NodeNetwork,
    /// Directories searched first for image programs (e.g. a test's target directory).
    pub program_dirs: Vec<PathBuf>,
}

/// A running node side; [`NodeAgent::shutdown`] stops every pod process and removes the
/// bridge.
pub struct NodeAgent {
    kubelet: Kubelet,
    controllers: ControlPlane,
    proxy: ServiceProxy,
    metrics: MetricsApi,
}

impl NodeAgent {
    /// Starts the kubelet (which registers the Node and renews its Lease), the metrics API,
    /// the load-balancer and volume controllers, and the service proxy, all as clients of
    /// `client`'s API server.
    pub async fn start(client: Client, config: NodeAgentConfig) -> Result<Self, NodeAgentError> {
        let NodeNetwork { network, state_dir } = config.network;
        let gateway = network
            .plan
            .gateway()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST);
        let dns = Some(SocketAddr::new(gateway.into(), 53));
        let mut kubelet = KubeletConfig::new(&state_dir);
        kubelet.network = Some(network);
        kubelet.program_dirs = config.program_dirs;
        let kubelet = Kubelet::start(client.clone(), kubelet)
            .await
            .map_err(|e| NodeAgentError::Kubelet(e.to_string()))?;
        let metrics_tls = state_dir.join("metrics-api");
        let metrics = MetricsApi::start(client.clone(), kubelet.metrics(), gateway, &metrics_tls)
            .await
            .map_err(NodeAgentError::Metrics)?;
        let controllers = ControlPlane::start(
            client.clone(),
            ControllerConfig {
                state_dir,
                metrics: Some(kubelet.metrics()),
                clock: Default::default(),
            },
            Scope::NodeSide,
        );
        let proxy = ServiceProxy::start(client, dns).await;
        Ok(Self {
            kubelet,
            controllers,
            proxy,
            metrics,
        })
    }

    /// Stops the controllers and the proxy, then every pod (SIGTERM, then SIGKILL).
    pub async fn shutdown(self) {
        self.controllers.shutdown().await;
        self.metrics.shutdown().await;
        self.proxy.shutdown().await;
        self.kubelet.shutdown().await;
    }
}
