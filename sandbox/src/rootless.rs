//! Pod isolation without root, rootlesskit's way: the sandbox process enters a user
//! namespace of its own, where the learner's user is root, and a network namespace (the
//! node's) that holds the pod bridge and the cluster IPs. It may then create pods'
//! namespaces as it does as root. What the learner reaches from their own shell (the API
//! server, NodePorts, LoadBalancer and ingress addresses, all on loopback) is bound by one
//! thread left in the host's network namespace, since a socket keeps the namespace it was
//! made in.

use nix::sched::CloneFlags;
use std::io;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::mpsc;

/// A listening socket to make in the host's network namespace.
struct BindRequest {
    addr: SocketAddr,
    reply: mpsc::Sender<io::Result<std::net::TcpListener>>,
}

enum State {
    /// In the user and node network namespaces; the thread binding host addresses.
    Entered(mpsc::Sender<BindRequest>),
    /// Tried and refused by the system: why.
    Refused(String),
}

static STATE: OnceLock<State> = OnceLock::new();

/// Enters a user namespace and a network namespace of the sandbox's own, when the sandbox is
/// not root and pod isolation is wanted. Must be called while the process has one thread
/// (before the async runtime starts): the kernel refuses a user namespace to a threaded
/// process. A refusal is recorded, and pods then run as plain processes saying why.
pub fn enter() {
    if nix::unistd::geteuid().is_root()
        || crate::kubelet::namespaces::off_requested()
        || STATE.get().is_some()
    {
        return;
    }
    let state = match try_enter() {
        Ok(host) => State::Entered(host),
        Err(reason) => State::Refused(reason),
    };
    let _ = STATE.set(state);
}

fn try_enter() -> Result<mpsc::Sender<BindRequest>, String> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("the sandbox is not root and cannot create a user namespace: {e}"))?;
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/self/{file}"), text)
            .map_err(|e| format!("writing /proc/self/{file} in the new user namespace: {e}"))
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("0 {uid} 1\n"))?;
    write("gid_map", format!("0 {gid} 1\n"))?;
    let lock = std::env::temp_dir().join(format!("hk8s-xtables-{uid}.lock"));
    #[allow(unsafe_code)]
    // SAFETY: the process has one thread (see `enter`), so nothing reads the environment
    // concurrently. iptables' own lock under /run belongs to the real root.
    unsafe {
        std::env::set_var("XTABLES_LOCKFILE", lock)
    };
    let (host, requests) = mpsc::channel::<BindRequest>();
    std::thread::Builder::new()
        .name("hk8s-host-net".into())
        .spawn(move || {
            for request in requests {
                let _ = request
                    .reply
                    .send(std::net::TcpListener::bind(request.addr));
            }
        })
        .map_err(|e| format!("starting the host-network thread: {e}"))?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("creating the node's network namespace: {e}"))?;
    Ok(host)
}

/// Whether the sandbox runs in its own user and network namespaces.
pub fn active() -> bool {
    matches!(STATE.get(), Some(State::Entered(_)))
}

/// Why the sandbox, not being root, could not enter its namespaces; `None` when it did
/// or never tried.
pub fn refusal() -> Option<&'static str> {
    match STATE.get() {
        Some(State::Refused(reason)) => Some(reason),
        _ => None,
    }
}

/// A TCP listener on `addr` that the learner's shell reaches: in the host's network
/// namespace when the sandbox runs in its own, else where the caller is.
pub(crate) async fn listen_for_host(addr: SocketAddr) -> io::Result<tokio::net::TcpListener> {
    let Some(State::Entered(host)) = STATE.get() else {
        return tokio::net::TcpListener::bind(addr).await;
    };
    let (reply, answer) = mpsc::channel();
    host.send(BindRequest { addr, reply })
        .map_err(|_| io::Error::other("the host-network thread stopped"))?;
    let listener = tokio::task::spawn_blocking(move || answer.recv())
        .await
        .map_err(io::Error::other)?
        .map_err(|_| io::Error::other("the host-network thread stopped"))??;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}
