//! The sandbox's node and control plane in one handle: controllers, scheduler, process
//! kubelet and service proxy, all talking to the API through a kube-rs client.

use crate::controllers::{ControllerConfig, Controllers};
use crate::kubelet::cgroups::Enforcement;
use crate::kubelet::{Kubelet, KubeletConfig, KubeletError};
use crate::proxy::ServiceProxy;
use kube::Client;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Everything that makes stored objects run; stopping it stops every pod process.
pub struct Runtime {
    kubelet: Kubelet,
    controllers: Controllers,
    proxy: ServiceProxy,
}

impl Runtime {
    /// Starts the kubelet (which first kills processes left by a crashed run), the
    /// controllers and the service proxy.
    pub async fn start(client: Client, config: KubeletConfig) -> Result<Self, KubeletError> {
        let state_dir = config.state_dir.clone();
        let kubelet = Kubelet::start(client.clone(), config).await?;
        let controllers = Controllers::start(
            client.clone(),
            ControllerConfig {
                state_dir,
                metrics: Some(kubelet.metrics()),
            },
        );
        let proxy = ServiceProxy::start(client);
        Ok(Self {
            kubelet,
            controllers,
            proxy,
        })
    }

    /// How CPU and memory limits are enforced (for `hk8s sandbox status`).
    pub fn enforcement(&self) -> &Enforcement {
        self.kubelet.enforcement()
    }

    /// Live pod usage, for a metrics.k8s.io endpoint.
    pub fn metrics(&self) -> crate::kubelet::metrics::Metrics {
        self.kubelet.metrics()
    }

    /// LoadBalancer addresses that fell back to their node port (no permission for port 80).
    pub fn load_balancer_fallbacks(&self) -> HashMap<String, SocketAddr> {
        self.proxy.fallbacks()
    }

    pub async fn shutdown(self) {
        self.controllers.shutdown().await;
        self.proxy.shutdown().await;
        self.kubelet.shutdown().await;
    }
}
