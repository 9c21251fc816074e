//! What every pod worker of the kubelet shares: the client, images, limits, the process
//! registry, metrics, events and the pod IPs.

use super::cgroups::Enforcement;
use super::images::ImageResolver;
use super::metrics::Metrics;
use super::network::PodNetwork;
use super::process::PidRegistry;
use crate::apimachinery::events::Recorder;
use crate::apimachinery::network::AddressPlan;
use kube::Client;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What every pod worker shares.
pub(crate) struct KubeletShared {
    pub client: Client,
    pub state_dir: PathBuf,
    pub images: ImageResolver,
    pub enforcement: Enforcement,
    pub pids: PidRegistry,
    pub metrics: Metrics,
    pub recorder: Recorder,
    pub backoff: Backoff,
    pub ips: Mutex<IpPool>,
    /// The pod network (namespace mode); `None` in process mode.
    pub network: Option<Arc<PodNetwork>>,
    /// Where pod IPs come from.
    pub plan: AddressPlan,
    /// What running containers were started with, for exec.
    pub containers: super::exec::Containers,
}

/// Pod IPs from the address plan's pod range, one per pod, handed out round the range.
#[derive(Debug, Default)]
pub(super) struct IpPool {
    used: HashMap<Ipv4Addr, String>,
    cursor: u32,
}

impl IpPool {
    /// The pod's IP: the one it has, else `preferred` when free, else the next free one.
    pub(super) fn allocate(
        &mut self,
        (base, len): (Ipv4Addr, u8),
        uid: &str,
        preferred: Option<Ipv4Addr>,
    ) -> Option<Ipv4Addr> {
        if let Some((ip, _)) = self.used.iter().find(|(_, u)| *u == uid) {
            return Some(*ip);
        }
        let base = u32::from(base);
        let size = 1u32 << (32 - len);
        if let Some(ip) = preferred
            && u32::from(ip) & !(size - 1) == base
            && !self.used.contains_key(&ip)
        {
            self.used.insert(ip, uid.to_string());
            return Some(ip);
        }
        if self.cursor == 0 {
            // A random start keeps several sandboxes on one machine (e.g. parallel tests)
            // from handing out the same addresses.
            self.cursor = rand::Rng::random_range(&mut rand::rng(), 2..size - 1);
        }
        for _ in 0..size {
            self.cursor = (self.cursor % (size - 3)) + 2;
            let ip = Ipv4Addr::from(base + self.cursor);
            if let std::collections::hash_map::Entry::Vacant(slot) = self.used.entry(ip) {
                slot.insert(uid.to_string());
                return Some(ip);
            }
        }
        None
    }

    /// Frees a stopped pod's IP.
    pub(super) fn release(&mut self, uid: &str) {
        self.used.retain(|_, u| u != uid);
    }
}

/// Restart back-off: immediate first restart, then `base`, doubling up to five minutes.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// How long to wait before the next restart after `previous_crashes` crashes.
    pub fn delay(&self, previous_crashes: u32) -> Duration {
        if previous_crashes == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (previous_crashes - 1).min(16);
        (self.base * factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.delay(0), Duration::ZERO);
        assert_eq!(b.delay(1), Duration::from_secs(10));
        assert_eq!(b.delay(2), Duration::from_secs(20));
        assert_eq!(b.delay(9), Duration::from_secs(300));
    }
}
