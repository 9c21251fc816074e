//! The sandbox's node and control plane in one handle: controllers, scheduler, process
//! kubelet and service proxy, all talking to the API through a kube-rs client.

use crate::controllers::{ControllerConfig, Controllers};
use crate::kubelet::{Kubelet, KubeletConfig, KubeletError};
use crate::proxy::ServiceProxy;
use kube::Client;

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

    pub async fn shutdown(self) {
        self.controllers.shutdown().await;
        self.proxy.shutdown().await;
        self.kubelet.shutdown().await;
    }
}
