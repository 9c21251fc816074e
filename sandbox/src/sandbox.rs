//! Starting and stopping a sandbox: state directory, TLS, token, kubeconfig, the HTTPS
//! listener, and the background tasks.

use crate::apiserver::registry::Api;
use crate::apiserver::server;
use crate::apiserver::storage::Store;
use crate::apiserver::tls::{self, write_private};
use crate::error::SandboxError;
use crate::instance::InstanceLock;
use crate::paths;
use crate::shutdown::{Shutdown, ShutdownSignal};
use base64::Engine;
use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};
use rand::Rng;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{JoinHandle, JoinSet};

/// The kubeconfig context (and cluster and user) name the sandbox writes.
pub const CONTEXT: &str = "hk8s-sandbox";

/// kube-apiserver's `ReadHeaderTimeout` (just shy of its 34 s request timeout bound).
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);
/// HTTP/2 connections are pinged this often and closed when a ping goes unanswered for
/// [`H2_PING_TIMEOUT`].
const H2_PING_EVERY: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// What makes the pods the API stores run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRuntime {
    /// Pods run as local processes: controllers, scheduler, the process kubelet and the
    /// service proxy, as `hk8s sandbox up` runs them.
    Processes,
    /// The API server alone: nothing schedules or runs pods, and a bound pod being deleted
    /// is removed by the server when its grace period ends.
    ApiOnly,
    /// For tests (cargo feature `standin`): the stand-in kubelet binds pending pods and
    /// marks them Running and Ready without running anything; no controllers run.
    #[cfg(feature = "standin")]
    Standin,
}

/// How to run a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Where the store, certificates, token, kubeconfig, logs and volumes live.
    pub state_dir: PathBuf,
    /// Address to listen on; loopback unless `allow_non_loopback`.
    pub bind: IpAddr,
    /// Port to listen on; 0 reuses the previous run's port when free, else picks one.
    pub port: u16,
    /// Listen on a non-loopback address (the API is then reachable from the network).
    pub allow_non_loopback: bool,
    /// What runs the pods; [`NodeRuntime::Processes`] unless set.
    pub runtime: NodeRuntime,
    /// Deleting a pod bound to the node marks it Terminating for its grace period and
    /// leaves removal to the kubelet (with a fallback after grace + 2 s).
    pub graceful_pod_deletion: bool,
    /// How long a client may take to send a request's headers (and how long an idle
    /// HTTP/1.1 connection stays open) before the connection is closed, as kube-apiserver's
    /// `ReadHeaderTimeout`; slow or stuck clients cannot hold connections forever.
    pub header_read_timeout: Duration,
    /// How many bytes of recent changes watches and exact lists can go back through
    /// before they get 410 Gone; bounds the server's memory whatever the objects' size.
    pub history_bytes: usize,
}

impl SandboxConfig {
    /// A loopback sandbox with its state in `state_dir`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        SandboxConfig {
            state_dir: state_dir.into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            allow_non_loopback: false,
            runtime: NodeRuntime::Processes,
            graceful_pod_deletion: true,
            header_read_timeout: HEADER_READ_TIMEOUT,
            history_bytes: crate::apiserver::storage::HISTORY_BYTES,
        }
    }

    /// The same configuration with another node runtime.
    pub fn with_runtime(mut self, runtime: NodeRuntime) -> Self {
        self.runtime = runtime;
        self
    }

    /// `$HK8S_SANDBOX_DIR`, else `$XDG_DATA_HOME/hk8s/sandbox`, else
    /// `~/.local/share/hk8s/sandbox`.
    pub fn default_state_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("HK8S_SANDBOX_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(d);
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share"))
            })
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("hk8s").join("sandbox")
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig::new(SandboxConfig::default_state_dir())
    }
}

/// A running sandbox API server. Dropping it stops serving; `shutdown` also waits.
pub struct Sandbox {
    api: Option<Arc<Api>>,
    addr: SocketAddr,
    state_dir: PathBuf,
    kubeconfig: PathBuf,
    token: String,
    ca_pem: String,
    stop: ShutdownSignal,
    server: Option<JoinHandle<()>>,
    runtime: Option<crate::runtime::Runtime>,
    clock: crate::apimachinery::clock::Clock,
    /// Held while this sandbox serves the state directory; released last.
    lock: Option<InstanceLock>,
}

fn io_err(path: &Path, source: std::io::Error) -> SandboxError {
    SandboxError::StateDir {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the state directory private to its owner and takes it for this process; a
/// directory that holds anything else is refused before anything is written into it.
fn claim_state_dir(dir: &Path) -> Result<InstanceLock, SandboxError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    refuse_foreign(dir)?;
    set_mode(dir, 0o700)?;
    let lock = InstanceLock::acquire(dir)?;
    mark_state_dir(dir)?;
    Ok(lock)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), SandboxError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path).map_err(|e| io_err(path, e))?;
    if meta.file_type().is_symlink() || meta.permissions().mode() & 0o777 == mode {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err(path, e))
}

/// The state directory holds Secrets (in the store), the token, keys and pod logs: the
/// directory and the logs' directories are 0700, the files in them 0600, repaired at every
/// start whatever an earlier version or the learner's umask left.
fn secure_state_dir(dir: &Path) -> Result<(), SandboxError> {
    set_mode(dir, 0o700)?;
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_file() => set_mode(&path, 0o600)?,
            Ok(t) if t.is_dir() && path == paths::logs_dir(dir) => secure_tree(&path)?,
            Ok(t) if t.is_dir() => set_mode(&path, 0o700)?,
            _ => {}
        }
    }
    Ok(())
}

fn secure_tree(dir: &Path) -> Result<(), SandboxError> {
    set_mode(dir, 0o700)?;
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    for entry in entries.filter_map(Result::ok) {
        match entry.file_type() {
            Ok(t) if t.is_dir() => secure_tree(&entry.path())?,
            Ok(t) if t.is_file() => set_mode(&entry.path(), 0o600)?,
            _ => {}
        }
    }
    Ok(())
}

/// A directory without the sandbox's marker may hold only the CLI's own files (log, pid,
/// lock) and image mappings, which may precede the first start.
fn refuse_foreign(dir: &Path) -> Result<(), SandboxError> {
    if paths::marker_path(dir).exists() {
        return Ok(());
    }
    let foreign = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(Result::ok)
        .any(|e| {
            !matches!(
                e.file_name().to_str(),
                Some(
                    paths::SANDBOX_LOG
                        | paths::SANDBOX_PID
                        | paths::SANDBOX_LOCK
                        | paths::IMAGES_CONFIG
                )
            )
        });
    if foreign {
        return Err(SandboxError::ForeignStateDir {
            path: dir.to_path_buf(),
        });
    }
    Ok(())
}

fn mark_state_dir(dir: &Path) -> Result<(), SandboxError> {
    let marker = paths::marker_path(dir);
    if !marker.exists() {
        std::fs::write(&marker, "{\"format\": 1}\n").map_err(|e| io_err(&marker, e))?;
    }
    Ok(())
}

fn load_or_create_token(dir: &Path) -> Result<String, SandboxError> {
    let path = paths::token_path(dir);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => {
            let bytes: [u8; 32] = rand::rng().random();
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            write_private(&path, token.as_bytes())?;
            Ok(token)
        }
    }
}

/// The sandbox's kubeconfig: its cluster, user and context (all named [`CONTEXT`]) for
/// `url`, written over those of `previous` while everything else the learner added to the
/// file stays: other clusters, users and contexts, the namespace they chose for the
/// sandbox's context, and the current context if it still names one.
fn kubeconfig(previous: Option<Kubeconfig>, url: &str, ca_pem: &str, token: &str) -> Kubeconfig {
    let mut config = previous.unwrap_or_default();
    let namespace = config
        .contexts
        .iter()
        .find(|c| c.name == CONTEXT)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.namespace.clone())
        .unwrap_or_else(|| "default".into());
    config.clusters.retain(|c| c.name != CONTEXT);
    config.clusters.insert(
        0,
        NamedCluster {
            name: CONTEXT.into(),
            cluster: Some(Cluster {
                server: Some(url.into()),
                certificate_authority_data: Some(
                    base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes()),
                ),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    config.auth_infos.retain(|u| u.name != CONTEXT);
    config.auth_infos.insert(
        0,
        NamedAuthInfo {
            name: CONTEXT.into(),
            auth_info: Some(AuthInfo {
                token: Some(token.to_string().into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    config.contexts.retain(|c| c.name != CONTEXT);
    config.contexts.insert(
        0,
        NamedContext {
            name: CONTEXT.into(),
            context: Some(Context {
                cluster: CONTEXT.into(),
                user: Some(CONTEXT.into()),
                namespace: Some(namespace),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let current = config.current_context.take();
    config.current_context = current
        .filter(|name| config.contexts.iter().any(|c| &c.name == name))
        .or_else(|| Some(CONTEXT.into()));
    config.api_version = Some("v1".into());
    config.kind = Some("Config".into());
    config.preferences.get_or_insert_with(Default::default);
    config
}

/// The kubeconfig file as the learner left it, if it can be read.
fn read_kubeconfig(path: &Path) -> Option<Kubeconfig> {
    let text = std::fs::read_to_string(path).ok()?;
    match Kubeconfig::from_yaml(&text) {
        Ok(config) => Some(config),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the sandbox kubeconfig is not valid YAML; rewriting it");
            None
        }
    }
}

/// Writes the sandbox's kubeconfig (private: it holds the token).
fn write_kubeconfig(path: &Path, url: &str, ca_pem: &str, token: &str) -> Result<(), SandboxError> {
    let config = kubeconfig(read_kubeconfig(path), url, ca_pem, token);
    let yaml = serde_saphyr::to_string(&config)
        .map_err(|e| SandboxError::Kubeconfig(format!("{}: {e}", path.display())))?;
    write_private(path, yaml.as_bytes())
}

async fn bind(config: &SandboxConfig) -> Result<tokio::net::TcpListener, SandboxError> {
    let mut ports = Vec::new();
    if config.port != 0 {
        ports.push(config.port);
    } else {
        if let Some(p) = std::fs::read_to_string(paths::port_path(&config.state_dir))
            .ok()
            .and_then(|p| p.trim().parse::<u16>().ok())
        {
            ports.push(p);
        }
        ports.push(0);
    }
    let mut last = None;
    for port in ports {
        let addr = SocketAddr::new(config.bind, port);
        match crate::rootless::listen_for_host(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some((addr, e)),
        }
    }
    let (addr, source) = last.expect("at least one port tried");
    Err(SandboxError::Bind { addr, source })
}

/// In the sandbox's own network namespace (rootless), the API server's port on its
/// loopback too: the controllers, the kubelet and pods (through `default/kubernetes`)
/// reach it there, while the learner reaches the host-side listener.
async fn pod_side_listener(port: u16) -> Result<Option<tokio::net::TcpListener>, SandboxError> {
    if !crate::rootless::active() {
        return Ok(None);
    }
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    tokio::net::TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|source| SandboxError::Bind { addr, source })
}

/// The pod network for namespace mode, or why pods run as plain processes; the address
/// plan (which the API server allocates cluster IPs from) is recorded either way.
async fn claim_pod_network(
    dir: &Path,
    runtime: NodeRuntime,
) -> (
    Option<Arc<crate::kubelet::network::PodNetwork>>,
    Option<String>,
) {
    let off = if runtime != NodeRuntime::Processes {
        Some("no pods run in this sandbox".to_string())
    } else if let Err(reason) = crate::kubelet::namespaces::available() {
        Some(reason)
    } else {
        match crate::kubelet::network::PodNetwork::claim(dir).await {
            Ok(network) => return (Some(Arc::new(network)), None),
            Err(e) => {
                tracing::warn!(error = %e, "pods run without isolation");
                Some(e.to_string())
            }
        }
    };
    let _ = crate::apimachinery::network::AddressPlan::loopback().save(dir);
    (None, off)
}

impl Sandbox {
    /// Opens the state directory, binds the listener, writes the kubeconfig and serves.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        if !config.bind.is_loopback() && !config.allow_non_loopback {
            return Err(SandboxError::NonLoopback {
                addr: SocketAddr::new(config.bind, config.port),
            });
        }
        let dir = config.state_dir.clone();
        let mut lock = claim_state_dir(&dir)?;
        let (network, isolation_off) = claim_pod_network(&dir, config.runtime).await;
        let store =
            Store::open(&paths::store_path(&dir))?.with_history_budget(config.history_bytes);
        secure_state_dir(&dir)?;
        let tls = tls::load_or_generate(&dir)?;
        let token = load_or_create_token(&dir)?;
        let issuer = crate::apiserver::tokens::Issuer::load_or_generate(&dir)?;
        let api = Api::new(store, dir.clone(), config.graceful_pod_deletion, issuer);
        api.bootstrap()
            .map_err(|e| SandboxError::Store(e.to_string()))?;
        if config.runtime == NodeRuntime::Processes {
            api.mark_pods_not_ready()
                .map_err(|e| SandboxError::Store(e.to_string()))?;
        }
        let listener = bind(&config).await?;
        let addr = listener.local_addr().map_err(|e| SandboxError::Bind {
            addr: SocketAddr::new(config.bind, config.port),
            source: e,
        })?;
        let host = match addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
            ip => ip.to_string(),
        };
        let url = format!("https://{host}:{}", addr.port());
        api.publish_apiserver(addr.port())
            .map_err(|e| SandboxError::Store(e.to_string()))?;
        let kubeconfig = paths::kubeconfig_path(&dir);
        write_kubeconfig(&kubeconfig, &url, &tls.ca_pem, &token)?;
        let port_file = paths::port_path(&dir);
        std::fs::write(&port_file, addr.port().to_string()).map_err(|e| io_err(&port_file, e))?;
        #[cfg(feature = "standin")]
        if config.runtime == NodeRuntime::Standin {
            api.spawn(crate::kubelet::standin::run(api.clone()));
        }
        let router = server::router(api.clone(), &token);
        let stop = ShutdownSignal::new();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config.clone());
        let http = http_builder(config.header_read_timeout);
        let inside = pod_side_listener(addr.port()).await?;
        let server = tokio::spawn({
            let inner = inside.map(|l| {
                let http = http_builder(config.header_read_timeout);
                serve(l, acceptor.clone(), http, router.clone(), stop.listener())
            });
            let outer = serve(listener, acceptor, http, router, stop.listener());
            async move {
                match inner {
                    Some(inner) => drop(tokio::join!(outer, inner)),
                    None => outer.await,
                }
            }
        });
        let mut sandbox = Sandbox {
            api: Some(api),
            addr,
            state_dir: dir,
            kubeconfig,
            token,
            ca_pem: tls.ca_pem,
            stop,
            server: Some(server),
            runtime: None,
            clock: Default::default(),
            lock: None,
        };
        if config.runtime == NodeRuntime::Processes {
            let client = sandbox.client()?;
            let mut kubelet = crate::kubelet::KubeletConfig::new(&sandbox.state_dir);
            kubelet.network = network;
            kubelet.isolation_off = isolation_off;
            let runtime = crate::runtime::Runtime::start(client, kubelet, sandbox.clock.clone())
                .await
                .map_err(|e| SandboxError::Client(format!("starting the pod runtime: {e}")))?;
            sandbox.runtime = Some(runtime);
        }
        lock.serving(&url)?;
        sandbox.lock = Some(lock);
        Ok(sandbox)
    }

    /// The clock the controllers act on; tests advance it instead of waiting.
    pub fn clock(&self) -> &crate::apimachinery::clock::Clock {
        &self.clock
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.host(), self.addr.port())
    }

    fn host(&self) -> String {
        match self.addr.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) if ip.is_unspecified() => "127.0.0.1".to_string(),
            ip => ip.to_string(),
        }
    }

    /// The address the API server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the sandbox keeps its store, certificates, logs and volumes.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The kubeconfig (context `hk8s-sandbox`) that reaches this sandbox.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The bearer token clients must send.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The CA certificate (PEM) that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The kube-rs configuration that reaches this sandbox: HTTPS with its CA and token.
    pub fn kube_config(&self) -> Result<kube::Config, SandboxError> {
        let url: http::Uri = self
            .url()
            .parse()
            .map_err(|e| SandboxError::Client(format!("{e}")))?;
        let mut cfg = kube::Config::new(url);
        let der = CertificateDer::from_pem_slice(self.ca_pem.as_bytes())
            .map_err(|e| SandboxError::Client(format!("CA certificate: {e}")))?;
        cfg.root_cert = Some(vec![der.to_vec()]);
        cfg.default_namespace = "default".into();
        let auth = http::HeaderValue::from_str(&format!("Bearer {}", self.token))
            .map_err(|e| SandboxError::Client(e.to_string()))?;
        cfg.headers.push((http::header::AUTHORIZATION, auth));
        Ok(cfg)
    }

    /// A kube-rs client for this sandbox (see [`Sandbox::kube_config`]) whose connections
    /// send at once (`TCP_NODELAY`, as client-go's do): kube-rs' default connector leaves
    /// Nagle on, and a request written in two segments then waits for the server's delayed
    /// ACK, about 40 ms, at every hop of every controller's chain.
    pub fn client(&self) -> Result<kube::Client, SandboxError> {
        use kube::client::ConfigExt;
        let failed = |e: kube::Error| SandboxError::Client(e.to_string());
        let config = self.kube_config()?;
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let https = config
            .rustls_https_connector_with_connector(http)
            .map_err(failed)?;
        let hyper =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        let service = tower::ServiceBuilder::new()
            .layer(config.base_uri_layer())
            .option_layer(config.auth_layer().map_err(failed)?)
            .layer(config.extra_headers_layer().map_err(failed)?)
            .map_err(tower::BoxError::from)
            .service(hyper);
        Ok(kube::Client::new(service, config.default_namespace))
    }

    /// Stops serving, cancels background tasks and closes the store.
    pub async fn shutdown(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown().await;
        }
        self.stop.trigger();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(api) = self.api.take() {
            api.stop_tasks().await;
            // Connections still finishing hold the last references; wait briefly so the
            // store file is closed when this returns.
            let weak = Arc::downgrade(&api);
            drop(api);
            for _ in 0..100 {
                if weak.strong_count() == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        self.lock.take();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(api) = self.api.take() {
            let tasks = api.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move { tasks.stop_tasks().await });
            }
        }
    }
}

pub(crate) type HttpBuilder =
    hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>;

/// HTTP/1.1 and HTTP/2 with timeouts, so clients that stall (slowloris, vanished peers)
/// lose their connection instead of holding it forever.
pub(crate) fn http_builder(header_read_timeout: Duration) -> HttpBuilder {
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    let mut builder = HttpBuilder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    builder
}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    http: HttpBuilder,
    router: axum::Router,
    shutdown: Shutdown,
) {
    let http = Arc::new(http);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.recv() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _peer)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let router = router.clone();
                let http = http.clone();
                conns.spawn(async move {
                    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = http
                        .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named<'a, T>(items: &'a [T], name: &str, of: impl Fn(&T) -> &str) -> Option<&'a T> {
        items.iter().find(|i| of(i) == name)
    }

    #[test]
    fn a_fresh_kubeconfig_reaches_the_sandbox() {
        let config = kubeconfig(None, "https://127.0.0.1:6443", "PEM", "secret");
        let yaml = serde_saphyr::to_string(&config).unwrap();
        let read = Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(read.current_context.as_deref(), Some(CONTEXT));
        let cluster = read.clusters[0].cluster.clone().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("UEVN"));
        assert!(yaml.contains("token: secret"), "{yaml}");
        let context = read.contexts[0].context.clone().unwrap();
        assert_eq!(
            (
                context.cluster.as_str(),
                context.user.as_deref(),
                context.namespace.as_deref()
            ),
            (CONTEXT, Some(CONTEXT), Some("default"))
        );
        assert_eq!(read.kind.as_deref(), Some("Config"));
    }

    #[test]
    fn the_learners_contexts_survive_a_rewrite() {
        let previous = Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\ncurrent-context: demo\n\
             clusters:\n- name: hk8s-sandbox\n  cluster:\n    server: https://127.0.0.1:1111\n\
             - name: kind-kind\n  cluster:\n    server: https://127.0.0.1:2222\n\
             users:\n- name: hk8s-sandbox\n  user:\n    token: old\n- name: kind-kind\n  user:\n    token: k\n\
             contexts:\n- name: hk8s-sandbox\n  context:\n    cluster: hk8s-sandbox\n    user: hk8s-sandbox\n    namespace: demo\n\
             - name: demo\n  context:\n    cluster: hk8s-sandbox\n    user: hk8s-sandbox\n    namespace: demo\n\
             - name: kind-kind\n  context:\n    cluster: kind-kind\n    user: kind-kind\n",
        )
        .unwrap();
        let config = kubeconfig(Some(previous), "https://127.0.0.1:3333", "PEM", "new");
        assert_eq!(config.current_context.as_deref(), Some("demo"));
        let names: Vec<&str> = config.contexts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, [CONTEXT, "demo", "kind-kind"]);
        let sandbox = named(&config.clusters, CONTEXT, |c| &c.name).unwrap();
        let server = sandbox.cluster.as_ref().and_then(|c| c.server.as_deref());
        assert_eq!(server, Some("https://127.0.0.1:3333"));
        let kind = named(&config.clusters, "kind-kind", |c| &c.name).unwrap();
        let server = kind.cluster.as_ref().and_then(|c| c.server.as_deref());
        assert_eq!(server, Some("https://127.0.0.1:2222"));
        assert_eq!(config.auth_infos.len(), 2);
        let ctx = named(&config.contexts, CONTEXT, |c| &c.name).unwrap();
        let namespace = ctx.context.as_ref().and_then(|c| c.namespace.as_deref());
        assert_eq!(
            namespace,
            Some("demo"),
            "the namespace the learner chose stays"
        );
        let yaml = serde_saphyr::to_string(&config).unwrap();
        assert!(
            yaml.contains("token: new") && !yaml.contains("token: old"),
            "{yaml}"
        );
    }

    #[test]
    fn a_current_context_that_is_gone_falls_back_to_the_sandbox() {
        let previous = Kubeconfig {
            current_context: Some("deleted".into()),
            ..Default::default()
        };
        let config = kubeconfig(Some(previous), "https://127.0.0.1:1", "PEM", "t");
        assert_eq!(config.current_context.as_deref(), Some(CONTEXT));
    }

    async fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
        let out = tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .output()
            .await
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The tutorial's lesson 1 adds a `demo` context with kubectl; a sandbox restart keeps it.
    #[tokio::test]
    async fn a_context_added_with_kubectl_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config =
            SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::ApiOnly);
        let sandbox = Sandbox::start(config.clone()).await.unwrap();
        let path = sandbox.kubeconfig_path().to_path_buf();
        kubectl(
            &path,
            &[
                "config",
                "set-context",
                "demo",
                "--cluster",
                CONTEXT,
                "--user",
                CONTEXT,
                "--namespace",
                "demo",
            ],
        )
        .await;
        kubectl(&path, &["config", "use-context", "demo"]).await;
        sandbox.shutdown().await;
        let sandbox = Sandbox::start(config).await.unwrap();
        assert_eq!(kubectl(&path, &["config", "current-context"]).await, "demo");
        assert_eq!(
            kubectl(&path, &["get", "namespace", "default", "-o", "name"]).await,
            "namespace/default"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        sandbox.shutdown().await;
    }
}
