//! The kubelet's streaming server, as the kubelet's own port (10250 on a cluster): the API
//! server validates `pods/exec` and proxies the upgraded connection to
//! `/exec/<namespace>/<pod>/<container>` (and port-forwards to `/portForward/<namespace>/<pod>`) here, on the port this kubelet writes into the
//! node's `status.daemonEndpoints.kubeletEndpoint`.

use super::exec::ExecOptions;
use super::portforward;
use super::remotecommand::{self, Version};
use super::shared::KubeletShared;
use crate::apimachinery::network::{NODE_IP, NODE_NAME};
use k8s_openapi::api::core::v1::{ContainerStatus, Node, Pod};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};

/// Binds the streaming server on the node's address and publishes its port on the Node.
pub(crate) async fn start(kubelet: Arc<KubeletShared>) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind((NODE_IP, 0)).await?;
    let port = listener.local_addr()?.port();
    Ok(tokio::spawn(async move {
        tokio::spawn(publish_port(kubelet.client.clone(), port));
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(kubelet.clone(), stream));
        }
    }))
}

/// Writes the port into the node's status (retrying while the node is not registered yet).
async fn publish_port(client: Client, port: u16) {
    let nodes: Api<Node> = Api::all(client);
    let patch = serde_json::json!({
        "status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}
    });
    for _ in 0..100 {
        let written = nodes
            .patch_status(NODE_NAME, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        if written.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::warn!("the kubelet's streaming port was not written to the node");
}

/// What a streaming request asks for, from its path and query.
struct Target {
    /// `exec` a command, `attach` to the container's own streams, or `portForward`.
    kind: &'static str,
    namespace: String,
    pod: String,
    container: String,
    query: Vec<(String, String)>,
    protocol: &'static str,
}

/// Accepts one WebSocket connection and runs the session its path names.
async fn serve(kubelet: Arc<KubeletShared>, stream: TcpStream) {
    let mut target: Option<Target> = None;
    // The callback's signature is tungstenite's, so its error is the (large) HTTP response.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let parsed = parse(req).map_err(|e| *e)?;
        let mut resp = resp;
        if !parsed.protocol.is_empty() {
            resp.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(parsed.protocol),
            );
        }
        target = Some(parsed);
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    let Some(target) = target else { return };
    if target.kind == "portForward" {
        let (ns, pod) = (&target.namespace, &target.pod);
        portforward::serve(kubelet, ws, target.protocol, ns, pod, &target.query).await;
        return;
    }
    let flag = |k: &str| {
        target
            .query
            .iter()
            .any(|(key, v)| key == k && matches!(v.as_str(), "true" | "1"))
    };
    let tty = flag("tty");
    let opts = ExecOptions {
        argv: target
            .query
            .iter()
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.clone())
            .collect(),
        stdin: flag("stdin"),
        stdout: flag("stdout"),
        stderr: flag("stderr") && !tty,
        tty: tty.then_some((80, 24)),
    };
    let version = Version::of(target.protocol);
    let pid = container_pid(&kubelet.client, &target).await;
    if target.kind == "attach" {
        return super::attach::serve(ws, version, pid, opts).await;
    }
    let container = pid.and_then(|pid| kubelet.containers.context(pid).map_err(|e| e.to_string()));
    remotecommand::serve_exec(ws, version, container, opts).await;
}

/// The request's target, or the HTTP error the kubelet answers a bad one with.
fn parse(req: &Request) -> Result<Target, Box<ErrorResponse>> {
    let error = |status: StatusCode, message: String| {
        let mut resp = ErrorResponse::new(Some(message));
        *resp.status_mut() = status;
        Box::new(resp)
    };
    let segs: Vec<&str> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (kind, namespace, pod, container) = match segs.as_slice() {
        ["exec", namespace, pod, container] => ("exec", namespace, pod, *container),
        ["attach", namespace, pod, container] => ("attach", namespace, pod, *container),
        ["portForward", namespace, pod] => ("portForward", namespace, pod, ""),
        _ => {
            return Err(error(
                StatusCode::NOT_FOUND,
                format!("no streaming endpoint at {}", req.uri().path()),
            ));
        }
    };
    let offered = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|h| h.to_str().ok());
    let served: &[&'static str] = match kind {
        "portForward" => &portforward::PROTOCOLS,
        _ => &remotecommand::PROTOCOLS,
    };
    let protocol = negotiate(offered, served).ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            format!("requested protocol(s) are not supported; supports {served:?}"),
        )
    })?;
    let query = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    Ok(Target {
        kind,
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container: container.to_string(),
        query,
        protocol,
    })
}

/// The first of the client's subprotocols that is `served`; `Some("")` when it offers none
/// (the unversioned channel protocol), `None` when it offers only unknown ones.
pub(super) fn negotiate<'a>(
    offered: impl Iterator<Item = &'a str>,
    served: &[&'static str],
) -> Option<&'static str> {
    let offered: Vec<&str> = offered
        .flat_map(|h| h.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Some("");
    }
    offered
        .iter()
        .find_map(|o| served.iter().find(|p| **p == *o).copied())
}

/// The main process of the named running container, or the kubelet's error for it.
async fn container_pid(client: &Client, target: &Target) -> Result<u32, String> {
    let not_found = || format!("container not found ({:?})", target.container);
    let pod = Api::<Pod>::namespaced(client.clone(), &target.namespace)
        .get(&target.pod)
        .await
        .map_err(|_| format!("pod {:?} not found", target.pod))?;
    let status = pod.status.unwrap_or_default();
    let statuses: Vec<ContainerStatus> = status
        .container_statuses
        .into_iter()
        .flatten()
        .chain(status.ephemeral_container_statuses.into_iter().flatten())
        .collect();
    let running = statuses
        .iter()
        .find(|s| s.name == target.container)
        .filter(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
        .ok_or_else(not_found)?;
    running
        .container_id
        .as_deref()
        .and_then(|id| id.strip_prefix("hk8s://"))
        .and_then(|pid| pid.parse().ok())
        .ok_or_else(not_found)
}
