//! `SandboxError`: why the sandbox library could not start or stop.

use std::path::PathBuf;

/// Why the sandbox could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot use the sandbox state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a sandbox state directory (it holds other files and no hk8s-sandbox.json); \
         pick an empty or new directory with --state-dir or HK8S_SANDBOX_DIR"
    )]
    ForeignStateDir { path: PathBuf },
    #[error(
        "the sandbox store {path} is corrupt or from an incompatible version: {detail}; \
         move it away to start a fresh sandbox (its objects would be lost)"
    )]
    CorruptStore { path: PathBuf, detail: String },
    #[error(
        "the sandbox store {path} is in use by another running sandbox; stop it with `hk8s sandbox down`"
    )]
    StoreLocked { path: PathBuf },
    #[error(
        "a sandbox already runs from {}{}; stop it with `hk8s sandbox down`",
        dir.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    AlreadyRunning { dir: PathBuf, pid: Option<i32> },
    #[error(
        "no space left on the disk holding {}: {detail}; the store is intact — free some space \
         there (see `df {}`) and start again",
        dir.display(),
        dir.display()
    )]
    DiskFull { dir: PathBuf, detail: String },
    #[error(
        "refusing to listen on {addr}: the sandbox serves loopback only unless SandboxConfig::allow_non_loopback is set"
    )]
    NonLoopback { addr: std::net::SocketAddr },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the sandbox TLS certificates: {0}")]
    Tls(String),
    #[error("cannot write the sandbox kubeconfig {0}")]
    Kubeconfig(String),
    #[error("cannot build a client for the sandbox: {0}")]
    Client(String),
    #[error("sandbox store error: {0}")]
    Store(String),
}
