//! NetworkPolicy enforcement for pods with network namespaces of their own, as a CNI's node
//! agent does it: a pod selected by a policy with the `Ingress` type accepts only what one
//! of its ingress rules allows, and a pod selected by one with the `Egress` type sends only
//! what one of its egress rules allows (peers by podSelector, namespaceSelector or ipBlock,
//! and ports, named ones resolved on the destination pod); a pod no policy of a type selects
//! is open that way. Two places enforce the same table: iptables rules inside each pod's
//! network namespace (pod-to-pod traffic on the bridge, and DNS) and the service proxy, which
//! judges each connection to a cluster IP against the endpoint it picks, as kube-proxy's DNAT
//! lets a CNI do (traffic from the proxy reaches the pod from the node, which the pod's rules
//! admit, as real CNIs admit the kubelet's probes). The cluster DNS server counts as the
//! CoreDNS pod it stands for (see [`dns_pod`]).

use super::watched::{PolicyKinds, Watched, all};
use crate::apimachinery::network::AddressPlan;
use crate::apimachinery::selectors::LabelSelector;
use crate::kubelet::namespaces::PodNamespaces;
use crate::shutdown::Shutdown;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A source (ingress) or destination (egress) a rule allows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Peer {
    Pod(Ipv4Addr),
    Block {
        cidr: (Ipv4Addr, u8),
        except: Vec<(Ipv4Addr, u8)>,
    },
}

impl Peer {
    fn contains(&self, ip: Ipv4Addr) -> bool {
        match self {
            Peer::Pod(p) => *p == ip,
            Peer::Block { cidr, except } => {
                in_cidr(ip, *cidr) && !except.iter().any(|e| in_cidr(ip, *e))
            }
        }
    }
}

fn in_cidr(ip: Ipv4Addr, (base, len): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(base) & mask
}

/// A protocol and port range a rule allows (`None`: every port of the protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortRule {
    protocol: String,
    ports: Option<(u16, u16)>,
}

/// One rule: `None` peers or ports allow all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allow {
    peers: Option<Vec<Peer>>,
    ports: Option<Vec<PortRule>>,
}

impl Allow {
    fn allows(&self, peer: Ipv4Addr, protocol: &str, port: u16) -> bool {
        let peer_ok = self
            .peers
            .as_ref()
            .is_none_or(|peers| peers.iter().any(|p| p.contains(peer)));
        let port_ok = self.ports.as_ref().is_none_or(|ports| {
            ports.iter().any(|p| {
                p.protocol == protocol
                    && p.ports.is_none_or(|(from, to)| (from..=to).contains(&port))
            })
        });
        peer_ok && port_ok
    }
}

/// Which side of a pod a rule list guards.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn chain(self) -> &'static str {
        match self {
            Direction::Ingress => "INPUT",
            Direction::Egress => "OUTPUT",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Direction::Ingress => "HK8S-INGRESS",
            Direction::Egress => "HK8S-EGRESS",
        }
    }

    /// The iptables match for the peer's address: the source coming in, the destination
    /// going out.
    fn peer_flag(self) -> &'static str {
        match self {
            Direction::Ingress => "-s",
            Direction::Egress => "-d",
        }
    }
}

/// The rules of every pod a policy isolates, by pod IP and direction.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Policies {
    /// Pods an Ingress policy selects, with what may connect to them.
    ingress: HashMap<Ipv4Addr, Vec<Allow>>,
    /// Pods an Egress policy selects, with where they may connect.
    egress: HashMap<Ipv4Addr, Vec<Allow>>,
}

/// The objects a policy decision reads.
pub(crate) struct Objects {
    policies: Vec<Value>,
    pods: Vec<Value>,
    namespaces: Vec<Value>,
    /// The cluster DNS server as the pod it stands for, a destination only.
    dns: Option<Value>,
}

/// The policy's types as the API server defaults them: those listed, else Ingress, plus
/// Egress when it has egress rules.
fn policy_types(spec: &Value) -> (bool, bool) {
    match non_empty(&spec["policyTypes"]) {
        Some(types) => (
            types.iter().any(|t| t == "Ingress"),
            types.iter().any(|t| t == "Egress"),
        ),
        None => (true, non_empty(&spec["egress"]).is_some()),
    }
}

impl Policies {
    /// The rules the policies give, for every pod with an IP.
    pub(crate) fn build(objects: &Objects) -> Policies {
        let mut out = Policies::default();
        for policy in &objects.policies {
            let spec = &policy["spec"];
            let ns = policy["metadata"]["namespace"].as_str().unwrap_or_default();
            let (ingress, egress) = policy_types(spec);
            let rules = |dir: &str| spec[dir].as_array().into_iter().flatten();
            let sends: Vec<Allow> = match egress {
                true => rules("egress")
                    .flat_map(|rule| objects.egress_allows(ns, rule))
                    .collect(),
                false => Vec::new(),
            };
            let selector = LabelSelector::from_object(&spec["podSelector"]);
            for pod in objects.pods_in(ns) {
                let Some(ip) = pod_ip(pod) else { continue };
                if !selector.matches(&pod["metadata"]["labels"]) {
                    continue;
                }
                if ingress {
                    let receives =
                        rules("ingress").map(|rule| objects.ingress_allow(ns, pod, rule));
                    out.ingress.entry(ip).or_default().extend(receives);
                }
                if egress {
                    out.egress
                        .entry(ip)
                        .or_default()
                        .extend(sends.iter().cloned());
                }
            }
        }
        out
    }

    /// Whether a TCP connection from `src` to the pod address `dst` is allowed, by the
    /// egress rules of the pod at `src` and the ingress rules of the pod at `dst`.
    pub(crate) fn admits(&self, dst: SocketAddr, src: IpAddr) -> bool {
        let (IpAddr::V4(dst_ip), IpAddr::V4(src)) = (dst.ip(), src) else {
            return true;
        };
        let port = dst.port();
        let received = self
            .ingress
            .get(&dst_ip)
            .is_none_or(|allows| allows.iter().any(|a| a.allows(src, "TCP", port)));
        let sent = self
            .egress
            .get(&src)
            .is_none_or(|allows| allows.iter().any(|a| a.allows(dst_ip, "TCP", port)));
        received && sent
    }

    /// The `iptables-restore` input for a pod's own network namespace: everything open when
    /// no policy selects it. Isolated for ingress, it accepts its loopback, replies, the
    /// node (probes and the service proxy, which checks policies itself) and what its
    /// rules allow; isolated for egress, it sends to its loopback, replies, cluster IPs
    /// (the service proxy judges the endpoint) and what its rules allow.
    fn iptables(&self, pod: Ipv4Addr, node: Ipv4Addr, services: (Ipv4Addr, u8)) -> String {
        let mut chains = String::new();
        let mut rules = String::new();
        if let Some(allows) = self.ingress.get(&pod) {
            rules.push_str("-A INPUT -i lo -j ACCEPT\n");
            rules.push_str("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
            rules.push_str(&format!("-A INPUT -s {node}/32 -j ACCEPT\n"));
            allow_chains(Direction::Ingress, allows, &mut chains, &mut rules);
            rules.push_str("-A INPUT -j DROP\n");
        }
        if let Some(allows) = self.egress.get(&pod) {
            rules.push_str("-A OUTPUT -o lo -j ACCEPT\n");
            rules.push_str("-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
            rules.push_str(&format!(
                "-A OUTPUT -d {}/{} -j ACCEPT\n",
                services.0, services.1
            ));
            allow_chains(Direction::Egress, allows, &mut chains, &mut rules);
            rules.push_str("-A OUTPUT -j DROP\n");
        }
        format!(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{chains}{rules}COMMIT\n"
        )
    }
}

/// One chain per rule and peer, jumped to from the direction's built-in chain.
fn allow_chains(direction: Direction, allows: &[Allow], chains: &mut String, rules: &mut String) {
    for (i, allow) in allows.iter().enumerate() {
        let peers: Vec<Option<&Peer>> = match &allow.peers {
            None => vec![None],
            Some(peers) => peers.iter().map(Some).collect(),
        };
        for (j, peer) in peers.into_iter().enumerate() {
            let chain = format!("{}-{i}-{j}", direction.prefix());
            chains.push_str(&format!(":{chain} - [0:0]\n"));
            rules.push_str(&format!("-A {} -j {chain}\n", direction.chain()));
            rules.push_str(&peer_rules(direction, &chain, peer, allow.ports.as_deref()));
        }
    }
}

/// One peer's chain: its exceptions return, then each allowed port is accepted.
fn peer_rules(
    direction: Direction,
    chain: &str,
    peer: Option<&Peer>,
    ports: Option<&[PortRule]>,
) -> String {
    let flag = direction.peer_flag();
    let mut out = String::new();
    let address = match peer {
        None => String::new(),
        Some(Peer::Pod(ip)) => format!(" {flag} {ip}/32"),
        Some(Peer::Block { cidr, except }) => {
            for (ip, len) in except {
                out.push_str(&format!("-A {chain} {flag} {ip}/{len} -j RETURN\n"));
            }
            format!(" {flag} {}/{}", cidr.0, cidr.1)
        }
    };
    match ports {
        None => out.push_str(&format!("-A {chain}{address} -j ACCEPT\n")),
        Some(ports) => {
            for p in ports {
                let proto = p.protocol.to_ascii_lowercase();
                let dport = match p.ports {
                    Some((from, to)) if from == to => format!(" --dport {from}"),
                    Some((from, to)) => format!(" --dport {from}:{to}"),
                    None => String::new(),
                };
                out.push_str(&format!(
                    "-A {chain}{address} -p {proto}{dport} -j ACCEPT\n"
                ));
            }
        }
    }
    out
}

fn non_empty(v: &Value) -> Option<&Vec<Value>> {
    v.as_array().filter(|a| !a.is_empty())
}

fn pod_ip(pod: &Value) -> Option<Ipv4Addr> {
    pod["status"]["podIP"].as_str()?.parse().ok()
}

/// A policy port on a pod: numbers (with `endPort`) as given, names looked up among the
/// pod's container ports of the same protocol; `None` when a name is not one of them or
/// the protocol is not one iptables is given here.
fn port_rule(pod: &Value, port: &Value) -> Option<PortRule> {
    let protocol = port["protocol"].as_str().unwrap_or("TCP").to_string();
    if !["TCP", "UDP", "SCTP"].contains(&protocol.as_str()) {
        return None;
    }
    let ports = match &port["port"] {
        Value::Null => None,
        Value::Number(n) => {
            let from = u16::try_from(n.as_u64()?).ok()?;
            let to = port["endPort"]
                .as_u64()
                .and_then(|e| u16::try_from(e).ok())
                .unwrap_or(from);
            Some((from, to))
        }
        Value::String(name) => {
            let number = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find(|p| {
                    p["name"] == name.as_str()
                        && p["protocol"].as_str().unwrap_or("TCP") == protocol
                })
                .and_then(|p| p["containerPort"].as_u64())
                .and_then(|p| u16::try_from(p).ok())?;
            Some((number, number))
        }
        _ => return None,
    };
    Some(PortRule { protocol, ports })
}

/// The cluster DNS server as the pod it stands for, CoreDNS in kube-system (its
/// Deployment's labels and named ports), so an egress rule that allows DNS on a cluster
/// allows it here: a `to`-less port 53 rule, an ipBlock covering the server's address, a
/// namespaceSelector for kube-system (with or without `k8s-app: kube-dns`), or the ports
/// named `dns`/`dns-tcp`.
fn dns_pod(ip: Ipv4Addr) -> Value {
    json!({
        "metadata": {"namespace": "kube-system", "name": "coredns",
                     "labels": {"k8s-app": "kube-dns"}},
        "spec": {"containers": [{"name": "coredns", "ports": [
            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
        ]}]},
        "status": {"podIP": ip.to_string()},
    })
}

impl Objects {
    fn pods_in<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a Value> {
        self.pods
            .iter()
            .filter(move |p| p["metadata"]["namespace"] == ns)
    }

    /// Every pod a rule may name as a peer: the pods and the cluster DNS server.
    fn peer_pods(&self) -> impl Iterator<Item = &Value> {
        self.pods.iter().chain(&self.dns)
    }

    /// One ingress rule of a policy in `ns` for the selected `pod` (named ports are its).
    fn ingress_allow(&self, ns: &str, pod: &Value, rule: &Value) -> Allow {
        Allow {
            peers: non_empty(&rule["from"])
                .map(|from| from.iter().flat_map(|peer| self.peers(ns, peer)).collect()),
            ports: non_empty(&rule["ports"])
                .map(|ports| ports.iter().filter_map(|p| port_rule(pod, p)).collect()),
        }
    }

    /// One egress rule of a policy in `ns`: numbered ports go to the rule's peers; a named
    /// port means what each destination pod among them calls by that name, so it becomes
    /// one allow per such pod.
    fn egress_allows(&self, ns: &str, rule: &Value) -> Vec<Allow> {
        let peers: Option<Vec<Peer>> = non_empty(&rule["to"])
            .map(|to| to.iter().flat_map(|peer| self.peers(ns, peer)).collect());
        let Some(ports) = non_empty(&rule["ports"]) else {
            return vec![Allow { peers, ports: None }];
        };
        let (named, numbered): (Vec<&Value>, Vec<&Value>) =
            ports.iter().partition(|p| p["port"].is_string());
        let mut out = Vec::new();
        let numbered: Vec<PortRule> = numbered
            .into_iter()
            .filter_map(|p| port_rule(&Value::Null, p))
            .collect();
        if !numbered.is_empty() {
            out.push(Allow {
                peers: peers.clone(),
                ports: Some(numbered),
            });
        }
        if named.is_empty() {
            return out;
        }
        for dest in self.peer_pods() {
            let Some(ip) = pod_ip(dest) else { continue };
            if !peers
                .as_ref()
                .is_none_or(|peers| peers.iter().any(|p| p.contains(ip)))
            {
                continue;
            }
            let resolved: Vec<PortRule> = named.iter().filter_map(|p| port_rule(dest, p)).collect();
            if !resolved.is_empty() {
                out.push(Allow {
                    peers: Some(vec![Peer::Pod(ip)]),
                    ports: Some(resolved),
                });
            }
        }
        out
    }

    /// The addresses one `from` or `to` entry names, for a policy in namespace `ns`.
    fn peers(&self, ns: &str, peer: &Value) -> Vec<Peer> {
        if let Some(block) = peer.get("ipBlock") {
            let to_cidr = |v: &Value| parse_cidr(v.as_str().unwrap_or_default());
            return to_cidr(&block["cidr"])
                .map(|cidr| Peer::Block {
                    cidr,
                    except: block["except"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(to_cidr)
                        .collect(),
                })
                .into_iter()
                .collect();
        }
        let in_namespace = |pod_ns: &str| match peer.get("namespaceSelector") {
            None => pod_ns == ns,
            Some(sel) => {
                let sel = LabelSelector::from_object(sel);
                self.namespaces.iter().any(|n| {
                    n["metadata"]["name"] == pod_ns && sel.matches(&n["metadata"]["labels"])
                })
            }
        };
        let pod_selector = peer.get("podSelector").map(LabelSelector::from_object);
        self.peer_pods()
            .filter(|p| in_namespace(p["metadata"]["namespace"].as_str().unwrap_or_default()))
            .filter(|p| {
                pod_selector
                    .as_ref()
                    .is_none_or(|s| s.matches(&p["metadata"]["labels"]))
            })
            .filter_map(pod_ip)
            .map(Peer::Pod)
            .collect()
    }

    /// The policies, pods and namespaces in the proxy's stores, with the cluster DNS
    /// server at `dns` as a destination.
    pub(crate) fn from_stores(kinds: &PolicyKinds, dns: Option<Ipv4Addr>) -> Objects {
        Objects {
            policies: values(&all(&kinds.policies)),
            pods: values(&all(&kinds.pods)),
            namespaces: values(&all(&kinds.namespaces)),
            dns: dns.map(dns_pod),
        }
    }
}

fn values<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items
        .iter()
        .filter_map(|i| serde_json::to_value(i).ok())
        .collect()
}

fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((ip.parse().ok()?, len))
}

/// Keeps every running pod's iptables rules in line with the policies: on each change to
/// a NetworkPolicy, Pod or Namespace (or every 2 s), rewrites the rules of pods whose
/// rules changed. A new pod's network namespace starts open, so a pod no policy isolates
/// needs no write at all. The pod network's gateway is the node's address on the bridge
/// and the cluster DNS server's.
pub(crate) async fn enforce(
    watched: Arc<Watched>,
    state_dir: PathBuf,
    plan: AddressPlan,
    shutdown: Shutdown,
) {
    let (Some(node), Some(kinds)) = (plan.gateway(), &watched.policy) else {
        return;
    };
    let trigger = Arc::new(Notify::new());
    watched.wake_on_policies(&trigger);
    tokio::select! {
        () = watched.synced() => {}
        _ = shutdown.recv() => return,
    }
    // The rules written, by the pod's infra process (a new sandbox for the pod starts clean).
    let mut applied: HashMap<u32, String> = HashMap::new();
    while !shutdown.is_shutdown() {
        let objects = Objects::from_stores(kinds, Some(node));
        let policies = Policies::build(&objects);
        let open = Policies::default();
        let mut seen = Vec::new();
        for pod in &objects.pods {
            let (Some(uid), Some(ip)) = (pod["metadata"]["uid"].as_str(), pod_ip(pod)) else {
                continue;
            };
            let Some(ns) = PodNamespaces::load(&state_dir, uid) else {
                continue;
            };
            seen.push(ns.pid);
            let rules = policies.iptables(ip, node, plan.service_cidr());
            let written = applied
                .entry(ns.pid)
                .or_insert_with(|| open.iptables(ip, node, plan.service_cidr()));
            if *written == rules {
                continue;
            }
            match restore(&ns.ns_path("net"), &rules).await {
                Ok(()) => *written = rules,
                Err(e) => tracing::warn!(pod = uid, error = %e, "network policy rules not written"),
            }
        }
        applied.retain(|pid, _| seen.contains(pid));
        tokio::select! {
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.recv() => {}
        }
    }
}

/// Replaces the filter table inside a network namespace with `rules`.
async fn restore(netns: &Path, rules: &str) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .arg("iptables-restore")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(rules.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if out.status.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "iptables-restore: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, ip: &str, labels: Value) -> Value {
        json!({
            "metadata": {"namespace": ns, "name": name, "labels": labels, "uid": name},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8000}]}]},
            "status": {"podIP": ip},
        })
    }

    fn objects(policies: Vec<Value>) -> Objects {
        Objects {
            policies,
            pods: vec![
                pod("demo", "web", "198.18.0.10", json!({"app": "web"})),
                pod("demo", "client", "198.18.0.11", json!({"role": "client"})),
                pod("demo", "other", "198.18.0.12", json!({})),
                pod("ops", "probe", "198.18.0.13", json!({"role": "client"})),
            ],
            namespaces: vec![
                json!({"metadata": {"name": "demo", "labels": {"kubernetes.io/metadata.name": "demo"}}}),
                json!({"metadata": {"name": "ops", "labels": {"team": "ops"}}}),
                json!({"metadata": {"name": "kube-system",
                                    "labels": {"kubernetes.io/metadata.name": "kube-system"}}}),
            ],
            dns: Some(dns_pod(NODE)),
        }
    }

    const NODE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const SERVICES: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 19, 0, 0), 24);

    fn rules_of(policies: &Policies, last: u8) -> String {
        policies.iptables(Ipv4Addr::new(198, 18, 0, last), NODE, SERVICES)
    }

    fn web(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, 10], port))
    }

    fn from(last: u8) -> IpAddr {
        IpAddr::from([198, 18, 0, last])
    }

    #[test]
    fn unselected_pods_admit_everything_and_deny_all_isolates() {
        let none = Policies::build(&objects(vec![]));
        assert!(none.admits(web(8000), from(12)));
        let deny = json!({"metadata": {"namespace": "demo", "name": "deny"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
        let policies = Policies::build(&objects(vec![deny]));
        assert!(!policies.admits(web(8000), from(11)));
        assert!(policies.admits(SocketAddr::from(([198, 18, 0, 13], 80)), from(12)));
        let rules = rules_of(&policies, 10);
        assert!(rules.contains("-A INPUT -s 198.18.0.1/32 -j ACCEPT\n-A INPUT -j DROP\nCOMMIT"));
    }

    #[test]
    fn pod_and_namespace_selectors_and_named_ports_admit_their_peers() {
        let allow = json!({"metadata": {"namespace": "demo", "name": "allow"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                 "ports": [{"port": "http"}]},
                {"from": [{"namespaceSelector": {"matchLabels": {"team": "ops"}},
                           "podSelector": {}}]},
            ]}});
        let policies = Policies::build(&objects(vec![allow]));
        assert!(policies.admits(web(8000), from(11)));
        assert!(!policies.admits(web(9000), from(11)), "only the named port");
        assert!(!policies.admits(web(8000), from(12)));
        assert!(
            policies.admits(web(9000), from(13)),
            "any port from namespace ops"
        );
        let rules = rules_of(&policies, 10);
        assert!(
            rules.contains("-A HK8S-INGRESS-0-0 -s 198.18.0.11/32 -p tcp --dport 8000 -j ACCEPT"),
            "{rules}"
        );
        assert!(
            rules.contains("-A HK8S-INGRESS-1-0 -s 198.18.0.13/32 -j ACCEPT"),
            "{rules}"
        );
    }

    #[test]
    fn ip_blocks_honour_their_exceptions_and_egress_only_policies_do_not_isolate_ingress() {
        let block = json!({"metadata": {"namespace": "demo", "name": "block"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"ipBlock": {"cidr": "198.18.0.0/24", "except": ["198.18.0.12/32"]}}],
                             "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8010}]}]}});
        let egress = json!({"metadata": {"namespace": "ops", "name": "egress"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]}});
        let policies = Policies::build(&objects(vec![block, egress]));
        assert!(policies.admits(web(8005), from(11)));
        assert!(!policies.admits(web(8005), from(12)));
        assert!(!policies.admits(web(8011), from(11)));
        let probe = SocketAddr::from(([198, 18, 0, 13], 1));
        assert!(policies.admits(probe, from(12)), "ingress stays open");
        assert!(!policies.admits(SocketAddr::from(([198, 18, 0, 11], 1)), from(13)));
        assert!(!rules_of(&policies, 13).contains("-A INPUT"));
    }

    fn client_egress(egress: Value) -> Value {
        json!({"metadata": {"namespace": "demo", "name": "client-egress"},
            "spec": {"podSelector": {"matchLabels": {"role": "client"}}, "egress": egress}})
    }

    #[test]
    fn egress_rules_allow_their_destinations_and_named_ports_of_the_destination() {
        let allow = client_egress(
            json!([{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                                          "ports": [{"port": "http"}]}]),
        );
        let policies = Policies::build(&objects(vec![allow]));
        assert!(policies.admits(web(8000), from(11)));
        assert!(!policies.admits(web(9000), from(11)), "only the named port");
        let other = SocketAddr::from(([198, 18, 0, 12], 8000));
        assert!(
            !policies.admits(other, from(11)),
            "other is not app=web, and it names no port http"
        );
        assert!(
            policies.admits(other, from(13)),
            "unselected pods send anywhere"
        );
        let client = SocketAddr::from(([198, 18, 0, 11], 80));
        assert!(
            !policies.admits(client, from(12)),
            "no policyTypes: Ingress too, with no ingress rules"
        );
        let rules = rules_of(&policies, 11);
        assert!(rules.contains("-A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A OUTPUT -d 198.19.0.0/24 -j ACCEPT\n"), "{rules}");
        assert!(
            rules.contains("-A HK8S-EGRESS-0-0 -d 198.18.0.10/32 -p tcp --dport 8000 -j ACCEPT\n"),
            "{rules}"
        );
        assert!(rules.ends_with("-A OUTPUT -j DROP\nCOMMIT\n"), "{rules}");
        assert!(!rules_of(&policies, 10).contains("OUTPUT -j DROP"));
    }

    #[test]
    fn egress_ip_blocks_honour_their_exceptions() {
        let block = client_egress(json!([{"to": [{"ipBlock": {"cidr": "198.18.0.0/24",
                                                     "except": ["198.18.0.10/32"]}}],
                                          "ports": [{"protocol": "TCP", "port": 8000}]}]));
        let policies = Policies::build(&objects(vec![block]));
        assert!(policies.admits(SocketAddr::from(([198, 18, 0, 12], 8000)), from(11)));
        assert!(!policies.admits(web(8000), from(11)));
        let rules = rules_of(&policies, 11);
        assert!(
            rules.contains(
                "-A HK8S-EGRESS-0-0 -d 198.18.0.10/32 -j RETURN\n\
                 -A HK8S-EGRESS-0-0 -d 198.18.0.0/24 -p tcp --dport 8000 -j ACCEPT\n"
            ),
            "{rules}"
        );
    }

    #[test]
    fn dns_is_allowed_as_coredns_would_be() {
        let dns_rule = |egress: Value| {
            let rules = rules_of(&Policies::build(&objects(vec![client_egress(egress)])), 11);
            rules.contains("-d 198.18.0.1/32 -p udp --dport 53 -j ACCEPT")
                || rules.contains("-d 198.18.0.0/24 -p udp --dport 53 -j ACCEPT")
                || rules.contains("HK8S-EGRESS-0-0 -p udp --dport 53 -j ACCEPT")
        };
        let deny = json!({"metadata": {"namespace": "demo", "name": "deny"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]}});
        let rules = rules_of(&Policies::build(&objects(vec![deny])), 11);
        assert!(!rules.contains("53"), "{rules}");
        let udp53 = json!([{"protocol": "UDP", "port": 53}]);
        assert!(dns_rule(json!([{"ports": udp53}])));
        assert!(dns_rule(
            json!([{"to": [{"namespaceSelector": {"matchLabels":
            {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}], "ports": udp53}])
        ));
        assert!(dns_rule(
            json!([{"to": [{"ipBlock": {"cidr": "198.18.0.0/24"}}], "ports": udp53}])
        ));
        assert!(dns_rule(
            json!([{"ports": [{"protocol": "UDP", "port": "dns"}]}])
        ));
        assert!(
            !dns_rule(json!([{"to": [{"podSelector": {}}], "ports": udp53}])),
            "kube-system is not the policy's namespace"
        );
        assert!(
            !dns_rule(json!([{"ports": [{"port": "dns"}]}])),
            "dns is UDP, not TCP"
        );
    }
}
