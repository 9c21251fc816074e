//! Address plan of the sandbox.
//!
//! With pod isolation (network namespaces), pods and Services take addresses from
//! 198.18.0.0/15, the range reserved for network testing, which exists only on the bridge
//! the sandbox creates: pods from 198.18.0.0/16, Services from 198.19.0.0/16. Each sandbox
//! on a machine claims one slot `s` of that plan — pods 198.18.s.0/24 on bridge `hk8s<s>`
//! (whose own address 198.18.s.1 is the pods' gateway and DNS server), cluster IPs
//! 198.19.s.0/24, made local to the host by one route — so sandboxes running side by side
//! never share an address.
//!
//! Without isolation (process mode) every pod and Service gets its own loopback address
//! instead, as on Linux all of 127.0.0.0/8 routes to `lo`.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::Path;

/// Cluster IPs of Services in process mode, like a real cluster's 10.96.0.0/12.
pub const SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 96, 0, 0), 16);

/// Pod IPs in process mode, like a real cluster's 10.244.0.0/16.
pub const POD_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 244, 0, 0), 16);

/// The half of 198.18.0.0/15 pod IPs come from in namespace mode.
pub const POD_NETWORK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);

/// The half of 198.18.0.0/15 cluster IPs come from in namespace mode.
pub const SERVICE_NETWORK: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);

/// External IPs handed to `type: LoadBalancer` Services (`status.loadBalancer.ingress[].ip`).
pub const LOAD_BALANCER_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 240, 0, 0), 16);

/// The node's own address (`status.addresses` InternalIP); NodePorts listen here.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// The NodePort range, as on a real cluster.
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

/// The name of the sandbox's single node.
pub const NODE_NAME: &str = "hk8s-sandbox";

/// The cluster's DNS domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Where one sandbox's pods and Services get their addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AddressPlan {
    /// The slot of 198.18.0.0/15 this sandbox owns; `None` in process mode (loopback).
    pub slot: Option<u8>,
}

impl AddressPlan {
    /// Process mode: pods and Services on loopback addresses.
    pub fn loopback() -> Self {
        Self { slot: None }
    }

    /// Namespace mode on slot `slot` of 198.18.0.0/15.
    pub fn bridged(slot: u8) -> Self {
        Self { slot: Some(slot) }
    }

    /// Pod IPs (`status.podIP`) and their prefix length.
    pub fn pod_cidr(&self) -> (Ipv4Addr, u8) {
        match self.slot {
            Some(s) => (
                Ipv4Addr::from(u32::from(POD_NETWORK) | (u32::from(s) << 8)),
                24,
            ),
            None => POD_CIDR,
        }
    }

    /// Cluster IPs (`spec.clusterIP`) and their prefix length.
    pub fn service_cidr(&self) -> (Ipv4Addr, u8) {
        match self.slot {
            Some(s) => (
                Ipv4Addr::from(u32::from(SERVICE_NETWORK) | (u32::from(s) << 8)),
                24,
            ),
            None => SERVICE_CIDR,
        }
    }

    /// The bridge's own address: the pods' default gateway and DNS server.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        self.slot
            .map(|_| Ipv4Addr::from(u32::from(self.pod_cidr().0) | 1))
    }

    /// The bridge's interface name (at most 15 bytes, unique per slot).
    pub fn bridge_name(&self) -> Option<String> {
        self.slot.map(|s| format!("hk8s{s}"))
    }

    /// The plan a sandbox recorded in its state directory (process mode when none).
    pub fn load(state_dir: &Path) -> Self {
        std::fs::read_to_string(state_dir.join(PLAN_FILE))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// Records the plan, so the API server allocates cluster IPs from it.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        std::fs::write(state_dir.join(PLAN_FILE), text)
    }
}

/// The file under the state directory holding the [`AddressPlan`].
const PLAN_FILE: &str = "network.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_split_the_test_range_between_pods_and_services() {
        let plan = AddressPlan::bridged(7);
        assert_eq!(plan.pod_cidr(), (Ipv4Addr::new(198, 18, 7, 0), 24));
        assert_eq!(plan.service_cidr(), (Ipv4Addr::new(198, 19, 7, 0), 24));
        assert_eq!(plan.gateway(), Some(Ipv4Addr::new(198, 18, 7, 1)));
        assert_eq!(plan.bridge_name().as_deref(), Some("hk8s7"));
        assert_eq!(AddressPlan::loopback().pod_cidr(), POD_CIDR);
    }
}
