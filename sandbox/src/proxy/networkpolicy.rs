//! NetworkPolicy ingress enforcement for pods with network namespaces of their own, as a
//! CNI's node agent does it: a pod selected by a policy with the `Ingress` type accepts only
//! what one of its rules allows (peers by podSelector, namespaceSelector or ipBlock, and
//! ports, named ones resolved on the pod); a pod no policy selects accepts everything.
//! Two places enforce the same table: iptables rules inside each pod's network namespace
//! (pod-to-pod traffic on the bridge) and the service proxy, which checks the client's pod
//! IP before it connects to an endpoint (traffic to cluster IPs reaches the pod from the
//! node, which the pod's rules admit, as real CNIs admit the kubelet's probes).

use crate::apimachinery::selectors::LabelSelector;
use crate::kubelet::namespaces::PodNamespaces;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use kube::api::{Api, ListParams};
use serde_json::Value;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A source a rule admits.
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

/// A protocol and port range a rule admits (`None`: every port of the protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PortRule {
    protocol: String,
    ports: Option<(u16, u16)>,
}

/// One ingress rule: `None` peers or ports admit all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allow {
    peers: Option<Vec<Peer>>,
    ports: Option<Vec<PortRule>>,
}

/// The ingress rules of every pod a policy isolates, by pod IP.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Policies {
    isolated: HashMap<Ipv4Addr, Vec<Allow>>,
}

/// The objects a policy decision reads.
pub(crate) struct Objects {
    policies: Vec<Value>,
    pods: Vec<Value>,
    namespaces: Vec<Value>,
}

impl Policies {
    /// The rules the policies give, for every pod with an IP.
    pub(crate) fn build(objects: &Objects) -> Policies {
        let mut isolated: HashMap<Ipv4Addr, Vec<Allow>> = HashMap::new();
        for policy in &objects.policies {
            let spec = &policy["spec"];
            let ns = policy["metadata"]["namespace"].as_str().unwrap_or_default();
            let types: Vec<&str> = spec["policyTypes"]
                .as_array()
                .map(|t| t.iter().filter_map(Value::as_str).collect())
                .unwrap_or_else(|| vec!["Ingress"]);
            if !types.contains(&"Ingress") {
                continue;
            }
            let selector = LabelSelector::from_object(&spec["podSelector"]);
            for pod in objects.pods_in(ns) {
                let Some(ip) = pod_ip(pod) else { continue };
                if !selector.matches(&pod["metadata"]["labels"]) {
                    continue;
                }
                let allows = isolated.entry(ip).or_default();
                for rule in spec["ingress"].as_array().into_iter().flatten() {
                    allows.push(Allow {
                        peers: non_empty(&rule["from"]).map(|from| {
                            from.iter()
                                .flat_map(|peer| objects.peers(ns, peer))
                                .collect()
                        }),
                        ports: non_empty(&rule["ports"])
                            .map(|ports| ports.iter().filter_map(|p| port_rule(pod, p)).collect()),
                    });
                }
            }
        }
        Policies { isolated }
    }

    /// Whether a TCP connection from `src` to the pod address `dst` is admitted.
    pub(crate) fn admits(&self, dst: SocketAddr, src: IpAddr) -> bool {
        let (IpAddr::V4(dst_ip), IpAddr::V4(src)) = (dst.ip(), src) else {
            return true;
        };
        let Some(allows) = self.isolated.get(&dst_ip) else {
            return true;
        };
        allows.iter().any(|allow| {
            let peer_ok = allow
                .peers
                .as_ref()
                .is_none_or(|peers| peers.iter().any(|p| p.contains(src)));
            let port_ok = allow.ports.as_ref().is_none_or(|ports| {
                ports.iter().any(|p| {
                    p.protocol == "TCP"
                        && p.ports
                            .is_none_or(|(from, to)| (from..=to).contains(&dst.port()))
                })
            });
            peer_ok && port_ok
        })
    }

    /// The `iptables-restore` input for a pod's own network namespace: everything open when
    /// no policy selects it, else its loopback, replies, the node (probes and the service
    /// proxy, which checks policies itself) and what its rules allow.
    fn iptables(&self, pod: Ipv4Addr, node: Ipv4Addr) -> String {
        let mut chains = String::new();
        let mut rules = String::new();
        if let Some(allows) = self.isolated.get(&pod) {
            rules.push_str("-A INPUT -i lo -j ACCEPT\n");
            rules.push_str("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
            rules.push_str(&format!("-A INPUT -s {node}/32 -j ACCEPT\n"));
            for (i, allow) in allows.iter().enumerate() {
                let peers: Vec<Option<&Peer>> = match &allow.peers {
                    None => vec![None],
                    Some(peers) => peers.iter().map(Some).collect(),
                };
                for (j, peer) in peers.into_iter().enumerate() {
                    let chain = format!("HK8S-INGRESS-{i}-{j}");
                    chains.push_str(&format!(":{chain} - [0:0]\n"));
                    rules.push_str(&format!("-A INPUT -j {chain}\n"));
                    rules.push_str(&peer_rules(&chain, peer, allow.ports.as_deref()));
                }
            }
            rules.push_str("-A INPUT -j DROP\n");
        }
        format!(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n{chains}{rules}COMMIT\n"
        )
    }
}

/// One peer's chain: its exceptions return, then each admitted port is accepted.
fn peer_rules(chain: &str, peer: Option<&Peer>, ports: Option<&[PortRule]>) -> String {
    let mut out = String::new();
    let source = match peer {
        None => String::new(),
        Some(Peer::Pod(ip)) => format!(" -s {ip}/32"),
        Some(Peer::Block { cidr, except }) => {
            for (ip, len) in except {
                out.push_str(&format!("-A {chain} -s {ip}/{len} -j RETURN\n"));
            }
            format!(" -s {}/{}", cidr.0, cidr.1)
        }
    };
    match ports {
        None => out.push_str(&format!("-A {chain}{source} -j ACCEPT\n")),
        Some(ports) => {
            for p in ports {
                let proto = p.protocol.to_ascii_lowercase();
                let dport = match p.ports {
                    Some((from, to)) if from == to => format!(" --dport {from}"),
                    Some((from, to)) => format!(" --dport {from}:{to}"),
                    None => String::new(),
                };
                out.push_str(&format!("-A {chain}{source} -p {proto}{dport} -j ACCEPT\n"));
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
/// pod's container ports; `None` when a name is not one of them.
fn port_rule(pod: &Value, port: &Value) -> Option<PortRule> {
    let protocol = port["protocol"].as_str().unwrap_or("TCP").to_string();
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
                .find(|p| p["name"] == name.as_str())
                .and_then(|p| p["containerPort"].as_u64())
                .and_then(|p| u16::try_from(p).ok())?;
            Some((number, number))
        }
        _ => return None,
    };
    Some(PortRule { protocol, ports })
}

impl Objects {
    fn pods_in<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a Value> {
        self.pods
            .iter()
            .filter(move |p| p["metadata"]["namespace"] == ns)
    }

    /// The sources one `from` entry names, for a policy in namespace `ns`.
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
        self.pods
            .iter()
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

    /// The policies, pods and namespaces now; `None` when the API cannot be read.
    pub(crate) async fn list(client: &Client) -> Option<Objects> {
        let lp = ListParams::default();
        let (policies, pods, namespaces) = (
            Api::<NetworkPolicy>::all(client.clone()),
            Api::<Pod>::all(client.clone()),
            Api::<Namespace>::all(client.clone()),
        );
        let listed = tokio::try_join!(policies.list(&lp), pods.list(&lp), namespaces.list(&lp));
        let (policies, pods, namespaces) = match listed {
            Ok(lists) => lists,
            Err(e) => {
                tracing::debug!(error = %e, "network policies cannot be listed");
                return None;
            }
        };
        Some(Objects {
            policies: values(&policies.items)?,
            pods: values(&pods.items)?,
            namespaces: values(&namespaces.items)?,
        })
    }
}

fn values<T: serde::Serialize>(items: &[T]) -> Option<Vec<Value>> {
    items.iter().map(|i| serde_json::to_value(i).ok()).collect()
}

fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((ip.parse().ok()?, len))
}

/// Keeps every running pod's iptables rules in line with the policies: on each change to
/// a NetworkPolicy, Pod or Namespace (or every 2 s), rewrites the rules of pods whose
/// rules changed. `node` is the pod network's gateway, the node's address on the bridge.
pub(crate) async fn enforce(client: Client, state_dir: PathBuf, node: Ipv4Addr) {
    let trigger = Arc::new(Notify::new());
    let watchers = [
        tokio::spawn(super::notify_on_changes::<NetworkPolicy>(
            client.clone(),
            trigger.clone(),
        )),
        tokio::spawn(super::notify_on_changes::<Pod>(
            client.clone(),
            trigger.clone(),
        )),
        tokio::spawn(super::notify_on_changes::<Namespace>(
            client.clone(),
            trigger.clone(),
        )),
    ];
    let _abort = AbortOnDrop(watchers);
    // The rules written, by the pod's infra process (a new sandbox for the pod starts clean).
    let mut applied: HashMap<u32, String> = HashMap::new();
    loop {
        tokio::select! {
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        let Some(objects) = Objects::list(&client).await else {
            continue;
        };
        let policies = Policies::build(&objects);
        let mut seen = Vec::new();
        for pod in &objects.pods {
            let (Some(uid), Some(ip)) = (pod["metadata"]["uid"].as_str(), pod_ip(pod)) else {
                continue;
            };
            let Some(ns) = PodNamespaces::load(&state_dir, uid) else {
                continue;
            };
            seen.push(ns.pid);
            let rules = policies.iptables(ip, node);
            if applied.get(&ns.pid) == Some(&rules) {
                continue;
            }
            match restore(&ns.ns_path("net"), &rules).await {
                Ok(()) => {
                    applied.insert(ns.pid, rules);
                }
                Err(e) => tracing::warn!(pod = uid, error = %e, "network policy rules not written"),
            }
        }
        applied.retain(|pid, _| seen.contains(pid));
    }
}

struct AbortOnDrop<const N: usize>([tokio::task::JoinHandle<()>; N]);

impl<const N: usize> Drop for AbortOnDrop<N> {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
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
    use serde_json::json;

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
            ],
        }
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
        let rules = policies.iptables(Ipv4Addr::new(198, 18, 0, 10), Ipv4Addr::new(198, 18, 0, 1));
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
        let rules = policies.iptables(Ipv4Addr::new(198, 18, 0, 10), Ipv4Addr::new(198, 18, 0, 1));
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
    fn ip_blocks_honour_their_exceptions_and_egress_only_policies_do_not_isolate() {
        let block = json!({"metadata": {"namespace": "demo", "name": "block"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [{"from": [{"ipBlock": {"cidr": "198.18.0.0/24", "except": ["198.18.0.12/32"]}}],
                             "ports": [{"protocol": "TCP", "port": 8000, "endPort": 8010}]}]}});
        let egress = json!({"metadata": {"namespace": "demo", "name": "egress"},
            "spec": {"podSelector": {}, "policyTypes": ["Egress"]}});
        let policies = Policies::build(&objects(vec![block, egress]));
        assert!(policies.admits(web(8005), from(11)));
        assert!(!policies.admits(web(8005), from(12)));
        assert!(!policies.admits(web(8011), from(11)));
        assert!(policies.admits(SocketAddr::from(([198, 18, 0, 11], 1)), from(12)));
    }
}
