//! TCP listeners forwarding to backends round-robin: the sandbox's kube-proxy data plane.

use super::networkpolicy::Policies;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Default)]
struct Backends {
    addrs: RwLock<Vec<SocketAddr>>,
    next: AtomicUsize,
}

impl Backends {
    fn pick(&self) -> Option<SocketAddr> {
        let addrs = self.addrs.read().unwrap_or_else(|e| e.into_inner());
        if addrs.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % addrs.len();
        Some(addrs[i])
    }
}

struct Listener {
    backends: Arc<Backends>,
    task: JoinHandle<()>,
}

/// The set of listening addresses and where each forwards to.
#[derive(Default)]
pub struct ProxyTable {
    listeners: HashMap<SocketAddr, Listener>,
    /// The NetworkPolicies' rules, checked for each client and endpoint (the client pod's
    /// egress, the endpoint's ingress) before it is forwarded (empty, so admitting all,
    /// where they are not enforced).
    pub(crate) policies: Arc<RwLock<Policies>>,
}

impl Drop for ProxyTable {
    fn drop(&mut self) {
        for listener in self.listeners.values() {
            listener.task.abort();
        }
    }
}

impl ProxyTable {
    /// Makes the listeners match `desired`: opens new addresses, closes dropped ones and
    /// updates backends in place (open connections are kept). An address without backends
    /// is not listened on, so a client is refused at once, as kube-proxy's REJECT rule
    /// does, instead of connecting and being hung up on. Returns addresses that could not
    /// be bound, with the error.
    pub async fn sync(
        &mut self,
        desired: &HashMap<SocketAddr, Vec<SocketAddr>>,
    ) -> Vec<(SocketAddr, std::io::Error)> {
        let desired: HashMap<_, _> = desired.iter().filter(|(_, b)| !b.is_empty()).collect();
        self.listeners.retain(|addr, l| {
            let keep = desired.contains_key(addr) && !l.task.is_finished();
            if !keep {
                l.task.abort();
            }
            keep
        });
        let mut failures = Vec::new();
        for (&addr, &backends) in &desired {
            if let Some(listener) = self.listeners.get(addr) {
                let mut current = listener
                    .backends
                    .addrs
                    .write()
                    .unwrap_or_else(|e| e.into_inner());
                if *current != *backends {
                    *current = backends.clone();
                }
                continue;
            }
            match bind(*addr).await {
                Ok(tcp) => {
                    let shared = Arc::new(Backends {
                        addrs: RwLock::new(backends.clone()),
                        next: AtomicUsize::new(0),
                    });
                    let task = tokio::spawn(serve(tcp, shared.clone(), self.policies.clone()));
                    self.listeners.insert(
                        *addr,
                        Listener {
                            backends: shared,
                            task,
                        },
                    );
                }
                Err(e) => failures.push((*addr, e)),
            }
        }
        failures
    }
}

async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    if addr.ip().is_loopback() {
        return crate::rootless::listen_for_host(addr).await;
    }
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn serve(listener: TcpListener, backends: Arc<Backends>, policies: Arc<RwLock<Policies>>) {
    loop {
        let Ok((mut inbound, client)) = listener.accept().await else {
            continue;
        };
        let backends = backends.clone();
        let policies = policies.clone();
        tokio::spawn(async move {
            let _ = inbound.set_nodelay(true);
            // Try each backend at most once, like kube-proxy's iptables retries on a new pick.
            let tries = backends.addrs.read().map(|a| a.len()).unwrap_or(0).max(1);
            for _ in 0..tries {
                let Some(target) = backends.pick() else {
                    return;
                };
                let admitted = policies
                    .read()
                    .map(|p| p.admits(target, client.ip()))
                    .unwrap_or(true);
                if !admitted {
                    continue;
                }
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = outbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn named_server(ip: &str, name: &'static str) -> SocketAddr {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let _ = s.write_all(name.as_bytes()).await;
            }
        });
        addr
    }

    async fn ask(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn forwards_round_robin_and_follows_backend_changes() {
        let a = named_server("127.244.250.1", "a").await;
        let b = named_server("127.244.250.2", "b").await;
        let front: SocketAddr = format!("127.96.250.{}:8080", std::process::id() % 200 + 1)
            .parse()
            .unwrap();
        let mut table = ProxyTable::default();
        let failures = table.sync(&HashMap::from([(front, vec![a, b])])).await;
        assert!(failures.is_empty(), "{failures:?}");
        let mut seen = vec![ask(front).await, ask(front).await];
        seen.sort();
        assert_eq!(seen, ["a", "b"]);
        table.sync(&HashMap::from([(front, vec![b])])).await;
        assert_eq!(ask(front).await, "b");
        assert_eq!(ask(front).await, "b");
        table.sync(&HashMap::from([(front, vec![])])).await;
        refuses(front, "its service lost its last endpoint").await;
        table.sync(&HashMap::from([(front, vec![a])])).await;
        assert_eq!(ask(front).await, "a", "the endpoint came back");
        table.sync(&HashMap::new()).await;
        refuses(front, "its service went away").await;
    }

    /// The listener closes once its aborted task is dropped (a connect racing the close
    /// may be accepted or reset meanwhile); then connects are refused.
    async fn refuses(front: SocketAddr, after: &str) {
        for _ in 0..100 {
            match TcpStream::connect(front).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
                Err(e) if e.kind() != std::io::ErrorKind::ConnectionReset => {
                    panic!("{front} after {after}: {e}, not refused")
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        panic!("{front} still accepts connections after {after}");
    }
}
