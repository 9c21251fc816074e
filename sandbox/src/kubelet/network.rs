//! The pod network on the host (namespace mode): one bridge per sandbox carrying its slot
//! of 198.18.0.0/15, a local route that makes its cluster IPs host addresses the service
//! proxy can listen on, and one veth pair per pod, all through rtnetlink.
//!
//! Only interfaces named after this sandbox's slot are created or removed; the host's own
//! interfaces, routes and firewall are left alone.

use crate::apimachinery::network::AddressPlan;
use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::packet_route::route::{RouteScope, RouteType};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// The routing table of host-local addresses (`ip route show table local`).
const LOCAL_TABLE: u32 = 255;

/// Why the pod network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("pod network: cannot open a netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("pod network: {what} failed: {source}")]
    Netlink {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("pod network: every slot of 198.18.0.0/15 is taken by another sandbox's bridge")]
    NoSlot,
    #[error("pod network: {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn netlink(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let what = what.into();
    move |source| NetworkError::Netlink { what, source }
}

/// A netlink connection in the calling thread's network namespace.
fn connect() -> Result<Handle, NetworkError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(NetworkError::Socket)?;
    tokio::spawn(connection);
    Ok(handle)
}

async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetworkError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link.map(|l| l.header.index)),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_enodev() => Ok(None),
        Err(e) => Err(netlink(format!("looking up {name}"))(e)),
    }
}

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

/// The sandbox's bridge; removing it on shutdown removes its addresses and routes.
#[derive(Debug)]
pub struct PodNetwork {
    pub plan: AddressPlan,
    handle: Handle,
    bridge: u32,
}

impl PodNetwork {
    /// Claims a free slot (the one this state directory had before when it is free), creates
    /// its bridge with the gateway address and the cluster IP route, and records the plan.
    pub async fn claim(state_dir: &Path) -> Result<Self, NetworkError> {
        let handle = connect()?;
        let previous = AddressPlan::load(state_dir).slot;
        let start: u8 = rand::random();
        let candidates = previous
            .into_iter()
            .chain((0..=255u8).map(|i| start.wrapping_add(i)));
        for slot in candidates {
            let plan = AddressPlan::bridged(slot);
            let name = plan.bridge_name().unwrap_or_default();
            if Some(slot) == previous && owner_is_gone(state_dir) {
                remove_link(&handle, &name).await;
            }
            if !create_bridge(&handle, &name).await? {
                if !left_by_ended_sandbox(&handle, &name).await {
                    continue;
                }
                tracing::info!(bridge = %name, "removing the bridge of a sandbox that ended without removing it");
                remove_link(&handle, &name).await;
                if !create_bridge(&handle, &name).await? {
                    continue;
                }
            }
            let bridge = link_index(&handle, &name)
                .await?
                .ok_or(NetworkError::NoSlot)?;
            let network = PodNetwork {
                plan,
                handle,
                bridge,
            };
            if let Err(e) = network.configure_bridge().await {
                network.remove().await;
                return Err(e);
            }
            plan.save(state_dir).map_err(|source| NetworkError::Io {
                what: format!("recording the address plan in {}", state_dir.display()),
                source,
            })?;
            record_owner(state_dir);
            return Ok(network);
        }
        Err(NetworkError::NoSlot)
    }

    /// The owner's alias, gateway address on the bridge, the bridge up, and the slot's
    /// cluster IPs local.
    async fn configure_bridge(&self) -> Result<(), NetworkError> {
        let name = self.plan.bridge_name().unwrap_or_default();
        let gateway = self.plan.gateway().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let (_, len) = self.plan.pod_cidr();
        let links = self.handle.link();
        links
            .set(
                LinkUnspec::new_with_index(self.bridge)
                    .alias(owner_alias())
                    .build(),
            )
            .execute()
            .await
            .map_err(netlink(format!("naming the owner of bridge {name}")))?;
        if crate::rootless::active() {
            links
                .set(LinkUnspec::new_with_name("lo").up().build())
                .execute()
                .await
                .map_err(netlink("bringing up lo in the node's network namespace"))?;
        }
        let addresses = self.handle.address();
        addresses
            .add(self.bridge, IpAddr::V4(gateway), len)
            .execute()
            .await
            .map_err(netlink(format!("adding {gateway}/{len} to {name}")))?;
        links
            .set(LinkUnspec::new_with_index(self.bridge).up().build())
            .execute()
            .await
            .map_err(netlink(format!("bringing {name} up")))?;
        let (services, len) = self.plan.service_cidr();
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(services, len)
            .output_interface(self.bridge)
            .table_id(LOCAL_TABLE)
            .kind(RouteType::Local)
            .scope(RouteScope::Host)
            .build();
        self.handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(netlink(format!(
                "routing {services}/{len} locally on {name}"
            )))
    }

    /// Connects a pod's network namespace (held by process `pid`) to the bridge: a veth
    /// pair created with its pod end already in the pod as `eth0` (one request, and no move
    /// between namespaces, which waits for the kernel's RCU grace periods), the host end on
    /// the bridge and up; then inside the pod `ip`, the default route via the gateway, and
    /// loopback up.
    pub async fn attach(&self, pid: u32, ip: Ipv4Addr) -> Result<(), NetworkError> {
        let slot = self.plan.slot.unwrap_or_default();
        let host = format!("hk{slot}p{}", ip.octets()[3]);
        remove_link(&self.handle, &host).await;
        let pod_end = LinkUnspec::new_with_name(POD_INTERFACE)
            .setns_by_pid(pid)
            .build();
        let pair = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host.clone())
            .controller(self.bridge)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(pod_end)))
            .build();
        self.handle
            .link()
            .add(pair)
            .execute()
            .await
            .map_err(netlink(format!(
                "creating veth {host} into pod process {pid}"
            )))?;
        let gateway = self.plan.gateway().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let len = self.plan.pod_cidr().1;
        inside(pid, move |handle| {
            configure_pod_side(handle, ip, len, gateway)
        })
        .await
    }

    /// Deletes the bridge (and with it its addresses and routes).
    pub(crate) async fn remove(&self) {
        let _ = self.handle.link().del(self.bridge).execute().await;
    }
}

impl Drop for PodNetwork {
    /// The bridge goes with the sandbox, however it stops; a thread of its own runs the
    /// removal, as this may be dropped inside or outside a runtime.
    fn drop(&mut self) {
        let bridge = self.bridge;
        let removal = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    if let Ok(handle) = connect() {
                        let _ = handle.link().del(bridge).execute().await;
                    }
                });
            }
        });
        let _ = removal.join();
    }
}

/// The pod's end of its veth pair, as a CNI plugin names it.
const POD_INTERFACE: &str = "eth0";

/// Inside the pod: `lo` up, the pod IP on `eth0`, `eth0` up, the default route.
async fn configure_pod_side(
    handle: Handle,
    ip: Ipv4Addr,
    len: u8,
    gateway: Ipv4Addr,
) -> Result<(), NetworkError> {
    let links = handle.link();
    if let Some(lo) = link_index(&handle, "lo").await? {
        links
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(netlink("bringing the pod's lo up"))?;
    }
    let index = link_index(&handle, POD_INTERFACE)
        .await?
        .ok_or_else(|| NetworkError::Io {
            what: format!("{POD_INTERFACE} did not arrive in the pod's namespace"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
    handle
        .address()
        .add(index, IpAddr::V4(ip), len)
        .execute()
        .await
        .map_err(netlink(format!("adding {ip}/{len} to the pod's eth0")))?;
    links
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(netlink("bringing the pod's eth0 up"))?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gateway)
        .output_interface(index)
        .build();
    handle
        .route()
        .add(route)
        .execute()
        .await
        .map_err(netlink(format!("the pod's default route via {gateway}")))
}

/// Runs `work` with a netlink connection inside the network namespace of process `pid`,
/// on a thread of its own (a thread's namespace changes with `setns`; the runtime's
/// threads must keep the host's).
async fn inside<F, Fut>(pid: u32, work: F) -> Result<(), NetworkError>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), NetworkError>>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("hk8s-netns-{pid}"))
        .spawn(move || {
            let result = (|| {
                let io = |what: &str| {
                    let what = what.to_string();
                    move |source: std::io::Error| NetworkError::Io { what, source }
                };
                let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))
                    .map_err(io("opening the pod's network namespace"))?;
                nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| io("entering the pod's network namespace")(e.into()))?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(io("a runtime for the pod's netlink socket"))?;
                runtime.block_on(async move { work(connect()?).await })
            })();
            let _ = tx.send(result);
        });
    if let Err(source) = spawned {
        return Err(NetworkError::Io {
            what: "a thread to enter the pod's network namespace".into(),
            source,
        });
    }
    rx.await.unwrap_or_else(|_| {
        Err(NetworkError::Io {
            what: "the pod network thread ended early".into(),
            source: std::io::Error::other("no result"),
        })
    })
}

async fn remove_link(handle: &Handle, name: &str) {
    if let Ok(Some(index)) = link_index(handle, name).await {
        let _ = handle.link().del(index).execute().await;
    }
}

/// Creates bridge `name`; false when a bridge of that name exists (its slot is taken).
async fn create_bridge(handle: &Handle, name: &str) -> Result<bool, NetworkError> {
    let created = handle.link().add(LinkBridge::new(name).build()).execute();
    match created.await {
        Ok(()) => Ok(true),
        Err(rtnetlink::Error::NetlinkError(e))
            if e.raw_code() == -(nix::errno::Errno::EEXIST as i32) =>
        {
            Ok(false)
        }
        Err(e) => Err(netlink(format!("creating bridge {name}"))(e)),
    }
}

/// What a bridge's alias records of the sandbox that made it, so that the bridge of a
/// sandbox that died without removing it (killed, its state directory deleted) can be
/// taken back by any later sandbox instead of holding its slot until the machine reboots.
fn owner_alias() -> String {
    let pid = std::process::id();
    let start = super::process::process_start_time(pid).unwrap_or_default();
    let pidns = pid_namespace().unwrap_or_default();
    format!("{ALIAS_PREFIX} pid={pid} start={start} pidns={pidns}")
}

const ALIAS_PREFIX: &str = "hk8s-sandbox";

fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.display().to_string())
}

/// Whether `alias` names a sandbox of this PID namespace that has ended; a bridge without
/// our alias, or made by a process this one cannot see, is never judged abandoned.
fn alias_owner_is_gone(alias: &str) -> bool {
    let field = |key: &str| {
        alias
            .split_whitespace()
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
    };
    let pid = field("pid").and_then(|p| p.parse::<u32>().ok());
    let start = field("start").and_then(|s| s.parse::<u64>().ok());
    let (Some(pid), Some(start), Some(pidns)) = (pid, start, field("pidns")) else {
        return false;
    };
    alias.starts_with(ALIAS_PREFIX)
        && pid_namespace().as_deref() == Some(pidns)
        && super::process::process_start_time(pid) != Some(start)
}

/// Whether bridge `name` was made by a sandbox that has ended.
async fn left_by_ended_sandbox(handle: &Handle, name: &str) -> bool {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    let Ok(Some(link)) = links.try_next().await else {
        return false;
    };
    link.attributes.iter().any(|a| match a {
        LinkAttribute::IfAlias(alias) => alias_owner_is_gone(alias),
        _ => false,
    })
}

/// The file naming the process that owns this state directory's bridge.
const OWNER_FILE: &str = "network.owner";

fn record_owner(state_dir: &Path) {
    let pid = std::process::id();
    let start = super::process::process_start_time(pid).unwrap_or_default();
    let _ = std::fs::write(state_dir.join(OWNER_FILE), format!("{pid} {start}"));
}

/// Whether the process that created this state directory's bridge has ended (a crash left
/// the bridge behind), so it may be removed and claimed again.
fn owner_is_gone(state_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(state_dir.join(OWNER_FILE)) else {
        return false;
    };
    let mut parts = text.split_whitespace().map(str::parse::<u64>);
    match (parts.next(), parts.next()) {
        (Some(Ok(pid)), Some(Ok(start))) => {
            super::process::process_start_time(pid as u32) != Some(start)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_alias_naming_an_ended_process_of_this_pid_namespace_is_abandoned() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("run true");
        let pid = child.id();
        let start = super::super::process::process_start_time(pid).expect("start time");
        child.wait().expect("wait for true");
        let pidns = pid_namespace().expect("own pid namespace");
        let ended = format!("{ALIAS_PREFIX} pid={pid} start={start} pidns={pidns}");
        assert!(alias_owner_is_gone(&ended), "{ended}");
        assert!(
            !alias_owner_is_gone(&owner_alias()),
            "this process is alive"
        );
        let elsewhere = format!("{ALIAS_PREFIX} pid={pid} start={start} pidns=pid:[1]");
        assert!(!alias_owner_is_gone(&elsewhere), "another pid namespace");
        let foreign = format!("my-bridge pid={pid} start={start} pidns={pidns}");
        assert!(!alias_owner_is_gone(&foreign), "not a sandbox's alias");
        assert!(!alias_owner_is_gone("hk8s-sandbox"), "no owner recorded");
    }
}
