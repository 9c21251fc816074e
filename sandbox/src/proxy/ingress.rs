//! The built-in ingress controller of IngressClass `hk8s`: one HTTP listener on its own
//! loopback address (port 80, or 8080 where 80 is not permitted) routes each request by
//! host and path to the backend Service's cluster IP and port, and writes that address to
//! each Ingress's `status.loadBalancer`.

use super::watched::{Watched, all};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// `spec.controller` of the IngressClass this controller serves.
pub(crate) const CONTROLLER: &str = "hk8s.dev/ingress-controller";
/// The IngressClass the sandbox creates, marked default.
const CLASS: &str = "hk8s";
/// The ingress's own address, outside the Service, pod and load balancer ranges.
const INGRESS_IP: Ipv4Addr = Ipv4Addr::new(127, 241, 0, 1);

/// How a rule's path matches, as `spec.rules[].http.paths[].pathType` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathKind {
    Exact,
    Prefix,
    /// Treated as a plain string prefix, as ingress-nginx does without regex annotations.
    ImplementationSpecific,
}

/// One host and path of an Ingress, and the Service port it routes to.
#[derive(Debug, Clone)]
struct Route {
    host: Option<String>,
    path: String,
    kind: PathKind,
    target: SocketAddr,
}

/// The routing table built from every Ingress of the class.
#[derive(Debug, Default)]
struct Routes {
    rules: Vec<Route>,
    default: Option<SocketAddr>,
}

fn host_rank(rule: Option<&str>, host: &str) -> Option<u8> {
    match rule {
        None => Some(0),
        Some(r) if r == host => Some(2),
        Some(r) => {
            let suffix = r.strip_prefix("*.")?;
            let (first, rest) = host.split_once('.')?;
            (!first.is_empty() && rest == suffix).then_some(1)
        }
    }
}

fn path_matches(route: &Route, path: &str) -> bool {
    match route.kind {
        PathKind::Exact => path == route.path,
        PathKind::ImplementationSpecific => path.starts_with(&route.path),
        PathKind::Prefix => {
            let p = route.path.trim_end_matches('/');
            p.is_empty() || path == p || path.starts_with(&format!("{p}/"))
        }
    }
}

impl Routes {
    /// The backend for a request: the most specific host, then the longest path (Exact
    /// before Prefix on a tie), else a default backend.
    fn pick(&self, host: &str, path: &str) -> Option<SocketAddr> {
        self.rules
            .iter()
            .filter_map(|r| {
                let rank = host_rank(r.host.as_deref(), host)?;
                path_matches(r, path).then_some((rank, r.path.len(), r.kind == PathKind::Exact, r))
            })
            .max_by_key(|(rank, len, exact, _)| (*rank, *len, *exact))
            .map(|(.., r)| r.target)
            .or(self.default)
    }
}

/// Whether this controller serves an Ingress: its class is `hk8s`, or it names none.
fn ours(ing: &Ingress) -> bool {
    let class = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.clone())
        .or_else(|| {
            ing.annotations()
                .get("kubernetes.io/ingress.class")
                .cloned()
        });
    class.is_none_or(|c| c == CLASS)
}

/// The cluster IP and port a backend names, when its Service exists.
fn resolve(ns: &str, backend: &IngressBackend, services: &[Service]) -> Option<SocketAddr> {
    let b = backend.service.as_ref()?;
    let svc = services
        .iter()
        .find(|s| s.namespace().as_deref() == Some(ns) && s.name_any() == b.name)?;
    let spec = svc.spec.as_ref()?;
    let ip: Ipv4Addr = spec.cluster_ip.as_deref()?.parse().ok()?;
    let port = b.port.as_ref()?;
    let number = match (&port.name, port.number) {
        (_, Some(n)) => n,
        (Some(name), None) => {
            spec.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))?
                .port
        }
        (None, None) => return None,
    };
    Some(SocketAddr::new(ip.into(), u16::try_from(number).ok()?))
}

fn build_routes(ingresses: &[Ingress], services: &[Service]) -> Routes {
    let mut routes = Routes::default();
    for ing in ingresses.iter().filter(|i| ours(i)) {
        let ns = ing.namespace().unwrap_or_default();
        let Some(spec) = &ing.spec else { continue };
        if routes.default.is_none() {
            routes.default = spec
                .default_backend
                .as_ref()
                .and_then(|b| resolve(&ns, b, services));
        }
        for rule in spec.rules.iter().flatten() {
            for p in rule.http.iter().flat_map(|h| &h.paths) {
                let kind = match p.path_type.as_str() {
                    "Exact" => PathKind::Exact,
                    "Prefix" => PathKind::Prefix,
                    _ => PathKind::ImplementationSpecific,
                };
                if let Some(target) = resolve(&ns, &p.backend, services) {
                    routes.rules.push(Route {
                        host: rule.host.clone().filter(|h| !h.is_empty()),
                        path: p.path.clone().unwrap_or_else(|| "/".into()),
                        kind,
                        target,
                    });
                }
            }
        }
    }
    routes
}

type Body = BoxBody<Bytes, hyper::Error>;

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from_static(body.as_bytes()))
            .map_err(|e| match e {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp
}

/// Forwards one request to the Service its host and path route to.
async fn forward(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    routes: Arc<RwLock<Routes>>,
    client: HttpClient<HttpConnector, Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| {
            h.rsplit_once(':')
                .map_or(h, |(name, _)| name)
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let path = req.uri().path().to_string();
    let target = routes.read().expect("routes lock").pick(&host, &path);
    let Some(target) = target else {
        return Ok(text(StatusCode::NOT_FOUND, "default backend - 404\n"));
    };
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *req.uri_mut() = format!("http://{target}{pq}").parse().expect("a valid URI");
    let headers = req.headers_mut();
    headers.insert(
        "x-forwarded-for",
        peer.ip().to_string().parse().expect("an IP"),
    );
    headers.insert("x-forwarded-proto", http::HeaderValue::from_static("http"));
    if let Ok(h) = host.parse() {
        headers.insert("x-forwarded-host", h);
    }
    match client.request(req).await {
        Ok(resp) => Ok(resp.map(|b| b.boxed())),
        Err(e) => {
            tracing::debug!(%target, error = %e, "ingress backend unreachable");
            Ok(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "503 Service Temporarily Unavailable\n",
            ))
        }
    }
}

/// Listens on the ingress address: port 80, else 8080 when 80 is refused; when another
/// sandbox on this machine holds the address, on the next one (127.241.0.2, …).
async fn listen() -> std::io::Result<TcpListener> {
    let mut last = None;
    for host in 1..=16u8 {
        let ip = Ipv4Addr::new(127, 241, 0, host);
        let listen = crate::rootless::listen_for_host;
        let bound = match listen(SocketAddr::new(ip.into(), 80)).await {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                listen(SocketAddr::new(ip.into(), 8080)).await
            }
            other => other,
        };
        match bound {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => last = Some(e),
            other => return other,
        }
    }
    Err(last.expect("at least one address was tried"))
}

async fn serve(listener: TcpListener, routes: Arc<RwLock<Routes>>) {
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Incoming>();
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let (routes, client) = (routes.clone(), client.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                forward(req, peer, routes.clone(), client.clone())
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// Writes the ingress address to every served Ingress whose status lacks it.
async fn publish_status(client: &Client, ingresses: &[Ingress], addr: SocketAddr) {
    let mut entry = json!({"ip": addr.ip().to_string()});
    if addr.port() != 80 {
        entry["ports"] = json!([{"port": addr.port(), "protocol": "TCP"}]);
    }
    let want = json!({"ingress": [entry]});
    for ing in ingresses.iter().filter(|i| ours(i)) {
        let have = ing
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .map(|l| serde_json::to_value(l).unwrap_or_default());
        if have.as_ref() == Some(&want) {
            continue;
        }
        let api: Api<Ingress> =
            Api::namespaced(client.clone(), &ing.namespace().unwrap_or_default());
        let patch = Patch::Merge(json!({"status": {"loadBalancer": want}}));
        if let Err(e) = api
            .patch_status(&ing.name_any(), &PatchParams::default(), &patch)
            .await
        {
            tracing::debug!(ingress = %ing.name_any(), error = %e, "cannot write ingress status");
        }
    }
}

/// Runs the ingress controller until the task is aborted: listens, and on every Ingress
/// or Service change in the proxy's stores (or every 2 s) rebuilds the routes and
/// publishes the address.
pub(crate) async fn run(client: Client, watched: Arc<Watched>) {
    let listener = match listen().await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "the ingress controller cannot listen on {INGRESS_IP}");
            return;
        }
    };
    let Ok(addr) = listener.local_addr() else {
        return;
    };
    let routes = Arc::new(RwLock::new(Routes::default()));
    let _server = AbortOnDrop(tokio::spawn(serve(listener, routes.clone())));
    let trigger = Arc::new(Notify::new());
    watched.wake_on_ingresses(&trigger);
    watched.synced().await;
    loop {
        let (ings, svcs) = (all(&watched.ingresses), all(&watched.services));
        *routes.write().expect("routes lock") = build_routes(&ings, &svcs);
        publish_status(&client, &ings, addr).await;
        tokio::select! {
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Aborts a task when the controller stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: Option<&str>, path: &str, kind: PathKind, port: u16) -> Route {
        Route {
            host: host.map(String::from),
            path: path.into(),
            kind,
            target: SocketAddr::new(INGRESS_IP.into(), port),
        }
    }

    #[test]
    fn hosts_then_longest_paths_win_and_exact_beats_prefix() {
        let routes = Routes {
            rules: vec![
                route(Some("hello.local"), "/", PathKind::Prefix, 1),
                route(Some("hello.local"), "/api", PathKind::Prefix, 2),
                route(Some("hello.local"), "/api", PathKind::Exact, 3),
                route(Some("*.wild.local"), "/", PathKind::Prefix, 4),
                route(None, "/other", PathKind::ImplementationSpecific, 5),
            ],
            default: None,
        };
        let port = |host: &str, path: &str| routes.pick(host, path).map(|a| a.port());
        assert_eq!(port("hello.local", "/"), Some(1));
        assert_eq!(
            port("hello.local", "/apix"),
            Some(1),
            "Prefix matches whole elements"
        );
        assert_eq!(port("hello.local", "/api/v1"), Some(2));
        assert_eq!(port("hello.local", "/api"), Some(3));
        assert_eq!(port("a.wild.local", "/x"), Some(4));
        assert_eq!(
            port("a.b.wild.local", "/x"),
            None,
            "a wildcard covers one label"
        );
        assert_eq!(port("anything", "/otherwise"), Some(5));
        assert_eq!(port("anything", "/"), None);
    }
}
