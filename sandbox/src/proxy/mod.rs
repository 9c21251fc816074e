//! The service proxy (the sandbox's kube-proxy): each Service port listens on its cluster
//! IP, its NodePort on the node IP, and a LoadBalancer's port on its external IP (or, where
//! port numbers below 1024 are not permitted, on its NodePort there), forwarding round-robin
//! to the ready endpoints; the [`ingress`] controller routes HTTP by host and path to them.

pub(crate) mod dns;
pub(crate) mod ingress;
pub(crate) mod networkpolicy;
mod table;
mod watched;

use crate::apimachinery::events::{EventType, Recorder};
use crate::apimachinery::network::{AddressPlan, NODE_IP};
use crate::shutdown::{Shutdown, ShutdownSignal};
use dns::{ClusterDns, DnsTable};
use k8s_openapi::api::core::v1::{Endpoints, ObjectReference, Service};
use kube::api::Api;
use kube::{Client, Resource, ResourceExt};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use table::ProxyTable;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use watched::Watched;

/// One listening address of a service and where it forwards.
#[derive(Debug, Clone)]
pub struct Listener {
    pub addr: SocketAddr,
    pub backends: Vec<SocketAddr>,
    /// For a LoadBalancer port: where to listen instead if `addr` is not permitted.
    pub fallback: Option<SocketAddr>,
    pub service: ObjectReference,
}

/// The desired listeners for the given services and endpoints.
pub fn desired_listeners(services: &[Service], endpoints: &[Endpoints]) -> Vec<Listener> {
    let mut out = Vec::new();
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let ns = svc.namespace().unwrap_or_default();
        let ep = endpoints.iter().find(|e| {
            e.namespace().as_deref() == Some(ns.as_str()) && e.name_any() == svc.name_any()
        });
        let cluster_ip: Option<Ipv4Addr> =
            spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok());
        let lb_ips: Vec<Ipv4Addr> = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()))
            .collect();
        let service = svc.object_ref(&());
        for port in spec.ports.iter().flatten() {
            if port.protocol.as_deref().is_some_and(|p| p != "TCP") {
                continue;
            }
            let backends: Vec<SocketAddr> = ep
                .and_then(|e| e.subsets.as_ref())
                .into_iter()
                .flatten()
                .flat_map(|subset| {
                    let target = subset
                        .ports
                        .iter()
                        .flatten()
                        .find(|p| {
                            p.name == port.name
                                || p.name.as_deref().unwrap_or("")
                                    == port.name.as_deref().unwrap_or("")
                        })
                        .map(|p| p.port);
                    subset.addresses.iter().flatten().filter_map(move |a| {
                        let ip: IpAddr = a.ip.parse().ok()?;
                        Some(SocketAddr::new(ip, u16::try_from(target?).ok()?))
                    })
                })
                .collect();
            let Ok(svc_port) = u16::try_from(port.port) else {
                continue;
            };
            let node_port = port.node_port.and_then(|p| u16::try_from(p).ok());
            let listener = |addr: SocketAddr, fallback: Option<SocketAddr>| Listener {
                addr,
                backends: backends.clone(),
                fallback,
                service: service.clone(),
            };
            if let Some(ip) = cluster_ip {
                out.push(listener(SocketAddr::new(ip.into(), svc_port), None));
            }
            if let Some(np) = node_port {
                out.push(listener(SocketAddr::new(NODE_IP.into(), np), None));
            }
            for ip in &lb_ips {
                let fallback = node_port.map(|np| SocketAddr::new((*ip).into(), np));
                out.push(listener(SocketAddr::new((*ip).into(), svc_port), fallback));
            }
        }
    }
    out
}

/// A running service proxy. LoadBalancer ports it may not bind (80 without privileges)
/// answer on their node port instead, announced by a `LoadBalancerPortFallback` event on
/// the Service, which is how the CLI and the learner find out.
pub struct ServiceProxy {
    stop: ShutdownSignal,
    tasks: Vec<JoinHandle<()>>,
    watched: Arc<Watched>,
}

impl ServiceProxy {
    /// Starts forwarding every Service to its ready endpoints, and serving cluster DNS on
    /// `dns` (the pod network's gateway) when there is a pod network.
    pub async fn start(client: Client, dns: Option<SocketAddr>) -> Self {
        let stop = ShutdownSignal::new();
        let table = Arc::new(RwLock::new(DnsTable::default()));
        let server = match dns {
            Some(addr) => match ClusterDns::start(addr, table.clone()).await {
                Ok(server) => Some(server),
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "cluster DNS cannot listen");
                    None
                }
            },
            None => None,
        };
        // NetworkPolicies are enforced where pods have their own addresses on the bridge.
        let enforce = match dns.map(|addr| addr.ip()) {
            Some(IpAddr::V4(ip)) => Some(ip),
            _ => None,
        };
        let watched = Watched::new(&client, enforce.is_some());
        let trigger = Arc::new(Notify::new());
        watched.wake_on_services(&trigger);
        watched.wake_on_policies(&trigger);
        let mut tasks = watched.start(&stop.listener());
        tasks.push(tokio::spawn(run(
            client,
            watched.clone(),
            trigger,
            table,
            server,
            enforce,
            stop.listener(),
        )));
        Self {
            stop,
            tasks,
            watched,
        }
    }

    /// Also keeps each pod's own iptables rules in line with the NetworkPolicies (see
    /// [`networkpolicy::enforce`]); only where the proxy was started with a pod network.
    pub(crate) fn enforce_policies(&mut self, state_dir: PathBuf, plan: AddressPlan) {
        if self.watched.policy.is_none() {
            return;
        }
        let enforce =
            networkpolicy::enforce(self.watched.clone(), state_dir, plan, self.stop.listener());
        self.tasks.push(tokio::spawn(enforce));
    }

    /// Stops listening.
    pub async fn shutdown(self) {
        self.stop.stop(self.tasks, Duration::from_secs(5)).await;
    }
}

/// The proxy's loop: on every Service or Endpoints change (or every 2 s) the listeners are
/// brought in line with the services, and refused LoadBalancer ports fall back. With
/// `enforce` (the cluster DNS server's address) it also follows the NetworkPolicies.
async fn run(
    client: Client,
    watched: Arc<Watched>,
    trigger: Arc<Notify>,
    table: Arc<RwLock<DnsTable>>,
    dns: Option<ClusterDns>,
    enforce: Option<Ipv4Addr>,
    shutdown: Shutdown,
) {
    let ingress = tokio::spawn(ingress::run(client.clone(), watched.clone()));
    let mut proxy = Proxy {
        table: ProxyTable::default(),
        recorder: Recorder::new(client.clone(), "service-proxy"),
        client,
        fallbacks: HashMap::new(),
    };
    tokio::select! {
        () = watched.synced() => {}
        _ = shutdown.recv() => {}
    }
    while !shutdown.is_shutdown() {
        let (listeners, names) = listeners_now(&watched);
        *table.write().unwrap_or_else(|e| e.into_inner()) = names;
        if let (Some(dns), Some(kinds)) = (enforce, &watched.policy) {
            let objects = networkpolicy::Objects::from_stores(kinds, Some(dns));
            let policies = networkpolicy::Policies::build(&objects);
            *proxy
                .table
                .policies
                .write()
                .unwrap_or_else(|e| e.into_inner()) = policies;
        }
        if proxy.sync(listeners).await {
            trigger.notify_one();
        }
        tokio::select! {
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.recv() => {}
        }
    }
    ingress.abort();
    if let Some(dns) = dns {
        dns.shutdown().await;
    }
}

/// The listeners and DNS names the current services and endpoints ask for.
fn listeners_now(watched: &Watched) -> (Vec<Listener>, DnsTable) {
    let services = watched::all(&watched.services);
    let endpoints = watched::all(&watched.endpoints);
    (
        desired_listeners(&services, &endpoints),
        DnsTable::build(&services, &endpoints),
    )
}

/// The proxy's listening sockets and what it learned about refused addresses.
struct Proxy {
    table: ProxyTable,
    recorder: Recorder,
    client: Client,
    /// LoadBalancer addresses that were refused, and where they answer instead.
    fallbacks: HashMap<String, SocketAddr>,
}

/// Where each address forwards, and for LoadBalancer ports the fallback to use if the
/// address is refused.
type Plan = (
    HashMap<SocketAddr, Vec<SocketAddr>>,
    HashMap<SocketAddr, (SocketAddr, ObjectReference)>,
);

impl Proxy {
    /// Listens where the listeners ask; returns whether a refused port moved to its
    /// fallback (the caller syncs again at once).
    async fn sync(&mut self, listeners: Vec<Listener>) -> bool {
        let (desired, fallback_of) = self.plan(listeners);
        let failures = self.table.sync(&desired).await;
        let mut moved = false;
        for (addr, error) in failures {
            match fallback_of.get(&addr) {
                Some((fb, service)) if error.kind() == std::io::ErrorKind::PermissionDenied => {
                    self.fall_back(addr, *fb, service).await;
                    moved = true;
                }
                _ => tracing::warn!(%addr, error = %error, "service proxy cannot listen"),
            }
        }
        moved
    }

    /// An address already known to be refused goes straight to its fallback.
    fn plan(&self, listeners: Vec<Listener>) -> Plan {
        let known = &self.fallbacks;
        let mut desired = HashMap::new();
        let mut fallback_of = HashMap::new();
        for l in listeners {
            match (known.get(&l.addr.to_string()), l.fallback) {
                (Some(fb), _) => {
                    desired.insert(*fb, l.backends);
                }
                (None, Some(fb)) => {
                    fallback_of.insert(l.addr, (fb, l.service));
                    desired.insert(l.addr, l.backends);
                }
                (None, None) => {
                    desired.insert(l.addr, l.backends);
                }
            }
        }
        (desired, fallback_of)
    }

    /// Records that `addr` was refused and `fallback` serves instead, with a Warning event
    /// on the service.
    async fn fall_back(
        &mut self,
        addr: SocketAddr,
        fallback: SocketAddr,
        service: &ObjectReference,
    ) {
        let message = format!(
            "no permission to listen on {addr} (ports below 1024 need privileges); \
             the load balancer answers on {fallback}, its node port, instead"
        );
        tracing::warn!("{message}");
        self.recorder
            .publish(
                service,
                EventType::Warning,
                "LoadBalancerPortFallback",
                &message,
            )
            .await;
        self.fallbacks.insert(addr.to_string(), fallback);
        self.record_refused_ports(addr.ip(), service).await;
    }

    /// Writes the refused ports of load balancer address `ip` into the Service's
    /// `status.loadBalancer.ingress[].ports` with their error, as a cloud controller reports
    /// a port its load balancer could not open; clients then know to use the node port.
    async fn record_refused_ports(&self, ip: IpAddr, service: &ObjectReference) {
        let ports: Vec<serde_json::Value> = self
            .fallbacks
            .keys()
            .filter_map(|a| a.parse::<SocketAddr>().ok())
            .filter(|a| a.ip() == ip)
            .map(
                |a| serde_json::json!({"port": a.port(), "protocol": "TCP", "error": PORT_REFUSED}),
            )
            .collect();
        let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": [
            {"ip": ip.to_string(), "ipMode": "VIP", "ports": ports}
        ]}}});
        let (Some(ns), Some(name)) = (&service.namespace, &service.name) else {
            return;
        };
        let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
        let params = kube::api::PatchParams::default();
        if let Err(e) = api
            .patch_status(name, &params, &kube::api::Patch::Merge(&patch))
            .await
        {
            tracing::warn!(service = %name, error = %e, "cannot record the refused port");
        }
    }
}

/// The error of a load balancer port the proxy may not listen on (below 1024 without
/// privileges), in a cloud provider's `domain/CamelCase` form: it answers on its node port.
pub const PORT_REFUSED: &str = "hk8s.dev/PrivilegedPortNodePortInstead";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_balancers_listen_on_cluster_ip_node_port_and_external_ip() {
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "frontend", "namespace": "demo"},
            "spec": {"type": "LoadBalancer", "clusterIP": "127.96.0.9",
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31000}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "127.240.0.3"}]}}
        }))
        .unwrap();
        let ep: Endpoints = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "frontend", "namespace": "demo"},
            "subsets": [{"addresses": [{"ip": "127.244.0.5"}], "notReadyAddresses": [{"ip": "127.244.0.6"}],
                         "ports": [{"name": "http", "port": 8080}]}]
        }))
        .unwrap();
        let listeners = desired_listeners(&[svc], &[ep]);
        let addrs: Vec<String> = listeners.iter().map(|l| l.addr.to_string()).collect();
        assert_eq!(
            addrs,
            ["127.96.0.9:80", "127.0.0.1:31000", "127.240.0.3:80"]
        );
        assert!(
            listeners
                .iter()
                .all(|l| l.backends == ["127.244.0.5:8080".parse().unwrap()])
        );
        assert_eq!(
            listeners[2].fallback,
            Some("127.240.0.3:31000".parse().unwrap())
        );
    }
}
