//! `pods/exec`, `attach` and `portforward`, as kube-apiserver serves them: the pod and
//! container are checked here, then the upgraded connection is proxied to the kubelet's
//! streaming server (the node's `daemonEndpoints.kubeletEndpoint`), which runs the session.
//! Exec and attach are served over the WebSocket protocols (`v5.channel.k8s.io` and older),
//! port-forward over kubectl's SPDY-over-WebSocket tunnel, the `v4.channel.k8s.io` channel
//! protocol and (tunnelled to the kubelet) a plain SPDY/3.1 upgrade.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::network::{NODE_IP, NODE_NAME};
use crate::apimachinery::resources;
use crate::apiserver::registry::Api;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A streaming request: the pod, the subresource and what the client sent.
pub(crate) struct StreamRequest<'a> {
    pub(crate) ns: &'a str,
    pub(crate) name: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
}

/// Whether a subresource is one of the streaming ones served here.
pub(crate) fn is_streaming(sub: &str) -> bool {
    matches!(sub, "exec" | "attach" | "portforward")
}

/// Checks the pod and container, then proxies an exec, attach or port-forward to the kubelet.
pub(crate) async fn serve(
    api: &Api,
    req: &StreamRequest<'_>,
    upgrade: Option<OnUpgrade>,
) -> Result<Response, ApiError> {
    let pods = resources::by_kind("v1", "Pod").expect("served");
    let pod = api
        .store
        .get(pods, req.ns, req.name)
        .ok_or_else(|| ApiError::not_found(pods, req.name))?;
    if req.sub == "portforward" {
        return port_forward(api, req, &pod, upgrade).await;
    }
    let query = req.query.unwrap_or("");
    let container = container_of(&pod, query)?;
    if pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(format!(
            "pod {} does not have a host assigned",
            req.name
        )));
    }
    if !is_running(&pod, &container) {
        return Err(ApiError::internal(format!(
            "unable to upgrade connection: container not found ({container:?})"
        )));
    }
    let port = kubelet_port(api)?;
    if !is_websocket(req.headers) {
        return Err(ApiError::bad_request(format!(
            "the hk8s sandbox serves pods/{} over WebSocket (v5.channel.k8s.io, as kubectl 1.30 and newer use), not SPDY",
            req.sub
        )));
    }
    let path = format!("/{}/{}/{}/{container}?{query}", req.sub, req.ns, req.name);
    let upgrade =
        upgrade.ok_or_else(|| ApiError::bad_request("the connection cannot be upgraded"))?;
    proxy(port, &path, req.headers, upgrade).await
}

/// Proxies a port-forward to the kubelet, passing the asked `ports` on as the kubelet's
/// `port` parameters (as kube-apiserver's `PortForwardLocation` does).
async fn port_forward(
    api: &Api,
    req: &StreamRequest<'_>,
    pod: &Value,
    upgrade: Option<OnUpgrade>,
) -> Result<Response, ApiError> {
    if pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(format!(
            "pod {} does not have a host assigned",
            req.name
        )));
    }
    let port = kubelet_port(api)?;
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            form_urlencoded::parse(req.query.unwrap_or("").as_bytes())
                .filter(|(k, _)| k == "ports" || k == "port")
                .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
                .map(|p| ("port", p)),
        )
        .finish();
    let path = format!("/portForward/{}/{}?{query}", req.ns, req.name);
    let upgrade =
        upgrade.ok_or_else(|| ApiError::bad_request("the connection cannot be upgraded"))?;
    if is_websocket(req.headers) {
        return proxy(port, &path, req.headers, upgrade).await;
    }
    spdy_upgrade(port, &path, req.headers, upgrade).await
}

/// A plain SPDY upgrade (kubectl before 1.31, or with `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`):
/// the SPDY bytes are carried to the kubelet through its SPDY-over-WebSocket tunnel, as
/// kube-apiserver's stream tunnel does the other way round.
async fn spdy_upgrade(
    port: u16,
    path: &str,
    headers: &HeaderMap,
    client_upgrade: OnUpgrade,
) -> Result<Response, ApiError> {
    let header_has = |name: &str, wanted: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|h| h.to_str().ok())
            .flat_map(|h| h.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(wanted))
    };
    if !header_has(header::UPGRADE.as_str(), "SPDY/3.1")
        || !header_has("X-Stream-Protocol-Version", "portforward.k8s.io")
    {
        return Err(ApiError::bad_request(
            "pods/portforward needs a WebSocket or a SPDY/3.1 upgrade with X-Stream-Protocol-Version: portforward.k8s.io",
        ));
    }
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::internal(format!(
            "error dialing backend: the kubelet at {NODE_IP}:{port}: {e}"
        ))
    };
    let tcp = tokio::net::TcpStream::connect((NODE_IP, port))
        .await
        .map_err(|e| unreachable(&e))?;
    let mut request = format!("ws://{NODE_IP}:{port}{path}")
        .into_client_request()
        .map_err(|e| unreachable(&e))?;
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_static("SPDY/3.1+portforward.k8s.io"),
    );
    let (kubelet, _) = tokio_tungstenite::client_async(request, tcp)
        .await
        .map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        if let Ok(client) = client_upgrade.await {
            tunnel(TokioIo::new(client), kubelet).await;
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(header::UPGRADE, http::HeaderValue::from_static("SPDY/3.1"));
    h.insert(
        "X-Stream-Protocol-Version",
        http::HeaderValue::from_static("portforward.k8s.io"),
    );
    Ok(response)
}

/// Copies a raw byte stream into binary WebSocket messages and back, until either side ends.
async fn tunnel<C, K>(client: C, kubelet: tokio_tungstenite::WebSocketStream<K>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    K: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let (mut to_kubelet, mut from_kubelet) = kubelet.split();
    let up = async {
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = from_client.read(&mut buf).await {
            let message = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
            if n == 0 || to_kubelet.send(message).await.is_err() {
                break;
            }
        }
        let _ = to_kubelet.close().await;
    };
    let down = async {
        while let Some(Ok(message)) = from_kubelet.next().await {
            match message {
                Message::Binary(data) if to_client.write_all(&data).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_client.shutdown().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// The container a request names; without one, the pod's only container (as the API
/// server's `streamLocation` decides).
fn container_of(pod: &Value, query: &str) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names = |key: &str| -> Vec<String> {
        pod["spec"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect()
    };
    let asked = form_urlencoded::parse(query.as_bytes())
        .find(|(k, v)| k == "container" && !v.is_empty())
        .map(|(_, v)| v.into_owned());
    let containers = names("containers");
    let Some(asked) = asked else {
        return match containers.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            many => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                many.join(" ")
            ))),
        };
    };
    let known = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .any(|key| names(key).contains(&asked));
    if !known {
        return Err(ApiError::bad_request(format!(
            "container {asked} is not valid for pod {name}"
        )));
    }
    Ok(asked)
}

fn is_running(pod: &Value, container: &str) -> bool {
    ["containerStatuses", "ephemeralContainerStatuses"]
        .iter()
        .flat_map(|key| pod["status"][key].as_array().into_iter().flatten())
        .any(|s| s["name"] == container && s["state"]["running"].is_object())
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case("websocket"))
}

/// The kubelet's streaming port, from the node's status.
fn kubelet_port(api: &Api) -> Result<u16, ApiError> {
    let nodes = resources::by_kind("v1", "Node").expect("served");
    api.store
        .get(nodes, "", NODE_NAME)
        .and_then(|n| n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .ok_or_else(|| {
            ApiError::internal(format!(
                "no kubelet serves node {NODE_NAME}'s streaming endpoints (is the sandbox running pods?)"
            ))
        })
}

/// Forwards the WebSocket handshake to the kubelet and, once both sides switched
/// protocols, copies bytes between the client and the kubelet.
async fn proxy(
    port: u16,
    path: &str,
    headers: &HeaderMap,
    client_upgrade: OnUpgrade,
) -> Result<Response, ApiError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::internal(format!(
            "error dialing backend: the kubelet at {NODE_IP}:{port}: {e}"
        ))
    };
    let tcp = tokio::net::TcpStream::connect((NODE_IP, port))
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| unreachable(&e))?;
    tokio::spawn(conn.with_upgrades());
    let mut request = http::Request::get(path).header(header::HOST, format!("{NODE_IP}:{port}"));
    for name in [
        header::CONNECTION,
        header::UPGRADE,
        header::SEC_WEBSOCKET_KEY,
        header::SEC_WEBSOCKET_VERSION,
    ]
    .iter()
    .chain(std::iter::once(&header::SEC_WEBSOCKET_PROTOCOL))
    {
        for value in headers.get_all(name) {
            request = request.header(name, value);
        }
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut answer = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(&e))?;
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = answer.status();
        let body = answer.into_body().collect().await.map(|b| b.to_bytes());
        let text = body.map(|b| String::from_utf8_lossy(&b).into_owned());
        return Err(ApiError::bad_request(format!(
            "unable to upgrade connection: {} ({status})",
            text.unwrap_or_default().trim()
        )));
    }
    let kubelet_upgrade = hyper::upgrade::on(&mut answer);
    tokio::spawn(async move {
        let (Ok(client), Ok(kubelet)) = tokio::join!(client_upgrade, kubelet_upgrade) else {
            return;
        };
        let _ =
            tokio::io::copy_bidirectional(&mut TokioIo::new(client), &mut TokioIo::new(kubelet))
                .await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    for (name, value) in answer.headers() {
        response.headers_mut().append(name, value.clone());
    }
    Ok(response)
}
