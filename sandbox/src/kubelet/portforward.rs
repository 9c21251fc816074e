//! Port-forwarding, as the kubelet serves `/portForward/<namespace>/<pod>`: each forwarded
//! connection is a TCP connection to the port on the pod's own loopback, made inside its
//! network namespace (in process mode, to the pod's address). Two WebSocket protocols:
//! - `SPDY/3.1+portforward.k8s.io`, which kubectl 1.31+ speaks: SPDY tunnelled through
//!   WebSocket messages, an error and a data stream per connection, paired by `requestID`;
//! - `v4.channel.k8s.io` (and no subprotocol), which client libraries speak: channels 2n
//!   (data) and 2n+1 (error) for the n-th `port` asked, each opened with the port number.

use super::namespaces::PodNamespaces;
use super::remotecommand::write_frames;
use super::shared::KubeletShared;
use super::spdy::{self, Frame, FrameReader, FrameWriter};
use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// kubectl's SPDY-over-WebSocket tunnel.
pub(crate) const SPDY_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
const CHANNELS_V4: &str = "v4.channel.k8s.io";
/// The subprotocols served, in the kubelet's order of preference.
pub(crate) const PROTOCOLS: [&str; 2] = [SPDY_TUNNEL, CHANNELS_V4];

const CHUNK: usize = 32 * 1024;

/// Where a pod's ports are reached, or why they cannot be.
struct Target {
    namespace: String,
    name: String,
    uid: String,
    ip: Option<IpAddr>,
    netns: Option<PathBuf>,
}

impl Target {
    async fn resolve(kubelet: &KubeletShared, namespace: &str, name: &str) -> Result<Self, String> {
        let pod = Api::<Pod>::namespaced(kubelet.client.clone(), namespace)
            .get(name)
            .await
            .map_err(|_| format!("pod {name:?} not found"))?;
        let uid = pod.metadata.uid.unwrap_or_default();
        let status = pod.status.unwrap_or_default();
        if status.phase.as_deref() != Some("Running") {
            return Err(format!("pod {namespace}/{name} is not running"));
        }
        Ok(Target {
            namespace: namespace.to_string(),
            name: name.to_string(),
            netns: PodNamespaces::load(&kubelet.state_dir, &uid).map(|ns| ns.ns_path("net")),
            ip: status.pod_ip.and_then(|ip| ip.parse().ok()),
            uid,
        })
    }

    /// Connects to `port` on the pod's loopback inside its network namespace, as the
    /// container runtime does; in process mode to the pod's own address.
    async fn dial(&self, port: u16) -> Result<TcpStream, String> {
        let failed = |to: String, e: std::io::Error| {
            let why = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
                _ => e.to_string(),
            };
            format!(
                "error forwarding port {port} to pod {}, uid {}: failed to connect to {to}: dial tcp4 {why}",
                self.name, self.uid
            )
        };
        match (&self.netns, self.ip) {
            (Some(netns), _) => {
                let to = format!(
                    "localhost:{port} inside the network namespace of pod {}/{}",
                    self.namespace, self.name
                );
                connect_in(netns.clone(), port)
                    .await
                    .map_err(|e| failed(to, e))
            }
            (None, Some(ip)) => TcpStream::connect((ip, port))
                .await
                .map_err(|e| failed(format!("{ip}:{port}"), e)),
            (None, None) => Err(format!(
                "error forwarding port {port} to pod {}, uid {}: the pod has no IP yet",
                self.name, self.uid
            )),
        }
    }
}

/// A TCP connection to `127.0.0.1:port` made from inside a network namespace: a socket
/// belongs to the namespace it was created in, so a short-lived thread enters it, connects
/// and hands the socket back.
async fn connect_in(netns: PathBuf, port: u16) -> std::io::Result<TcpStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let connect = || -> std::io::Result<std::net::TcpStream> {
            let ns = std::fs::File::open(&netns)?;
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
            let to = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let stream = std::net::TcpStream::connect_timeout(&to, Duration::from_secs(10))?;
            stream.set_nonblocking(true)?;
            Ok(stream)
        };
        let _ = tx.send(connect());
    });
    let stream = rx
        .await
        .map_err(|_| std::io::Error::other("the connecting thread ended"))??;
    TcpStream::from_std(stream)
}

/// Runs a port-forward session on an accepted WebSocket.
pub(crate) async fn serve<S>(
    kubelet: Arc<KubeletShared>,
    ws: WebSocketStream<S>,
    protocol: &str,
    namespace: &str,
    pod: &str,
    query: &[(String, String)],
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let target = Target::resolve(&kubelet, namespace, pod)
        .await
        .map(Arc::new);
    if protocol == SPDY_TUNNEL {
        serve_spdy(ws, target).await;
    } else {
        serve_channels(ws, target, ports(query)).await;
    }
}

/// The ports a channel-protocol request names (`port`, as the API server passes them on,
/// or `ports` as clients send them), comma-separated or repeated.
fn ports(query: &[(String, String)]) -> Vec<u16> {
    query
        .iter()
        .filter(|(k, _)| k == "port" || k == "ports")
        .flat_map(|(_, v)| v.split(','))
        .filter_map(|p| p.trim().parse().ok())
        .filter(|p| *p > 0)
        .collect()
}

type Resolved = Result<Arc<Target>, String>;

/// One forwarded connection's streams as they arrive: the error and the data stream.
#[derive(Default)]
struct Pair {
    error: Option<u32>,
    data: Option<u32>,
    port: u16,
}

/// The SPDY side of a session: streams being paired, and the running forwards.
struct SpdySession {
    target: Resolved,
    out: mpsc::Sender<Frame>,
    pairs: HashMap<String, Pair>,
    /// Client data for a forward, by data stream.
    inbound: HashMap<u32, mpsc::Sender<Bytes>>,
    /// Each forward's cancellation, by its error and data stream.
    resets: HashMap<u32, CancellationToken>,
    all: CancellationToken,
}

async fn serve_spdy<S>(ws: WebSocketStream<S>, target: Resolved)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut incoming) = ws.split();
    let (out, rx) = mpsc::channel::<Frame>(256);
    let writer = tokio::spawn(write_spdy(sink, rx));
    let mut session = SpdySession {
        target,
        out,
        pairs: HashMap::new(),
        inbound: HashMap::new(),
        resets: HashMap::new(),
        all: CancellationToken::new(),
    };
    let mut reader = FrameReader::new();
    let mut buf = BytesMut::new();
    'session: while let Some(message) = incoming.next().await {
        match message {
            Ok(Message::Binary(data)) => buf.extend_from_slice(&data),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        }
        loop {
            match reader.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if !session.on_frame(frame).await {
                        break 'session;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "port-forward: unreadable SPDY stream");
                    let _ = session
                        .out
                        .send(Frame::GoAway {
                            last_stream: 0,
                            status: 1,
                        })
                        .await;
                    break 'session;
                }
            }
        }
    }
    session.all.cancel();
    drop(session);
    let _ = writer.await;
}

impl SpdySession {
    /// Handles one frame from the client; `false` ends the session.
    async fn on_frame(&mut self, frame: Frame) -> bool {
        match frame {
            Frame::SynStream {
                stream, headers, ..
            } => return self.open(stream, &headers).await,
            Frame::Data { stream, fin, data } => {
                if let Some(tx) = self.inbound.get(&stream) {
                    if !data.is_empty() && tx.send(data).await.is_err() {
                        self.inbound.remove(&stream);
                    }
                    if fin {
                        self.inbound.remove(&stream);
                    }
                }
            }
            Frame::RstStream { stream, .. } => {
                self.inbound.remove(&stream);
                if let Some(token) = self.resets.remove(&stream) {
                    token.cancel();
                }
            }
            Frame::Ping(id) => {
                let _ = self.out.send(Frame::Ping(id)).await;
            }
            Frame::GoAway { .. } => return false,
            _ => {}
        }
        true
    }

    /// Accepts a stream the client opened (or refuses one without a valid port and
    /// stream type) and starts the forward once both streams of a request are there.
    async fn open(&mut self, stream: u32, headers: &spdy::Headers) -> bool {
        let port = spdy::header(headers, "port").and_then(|p| p.parse::<u16>().ok());
        let kind = spdy::header(headers, "streamtype");
        let (Some(port), Some(kind @ ("error" | "data"))) = (port.filter(|p| *p > 0), kind) else {
            let refused = Frame::RstStream {
                stream,
                status: spdy::REFUSED_STREAM,
            };
            return self.out.send(refused).await.is_ok();
        };
        // Clients before request IDs sent error and data streams as consecutive odd ids.
        let request = spdy::header(headers, "requestid").map_or_else(
            || match kind {
                "error" => stream.to_string(),
                _ => stream.saturating_sub(2).to_string(),
            },
            String::from,
        );
        let reply = Frame::SynReply {
            stream,
            fin: false,
            headers: Vec::new(),
        };
        if self.out.send(reply).await.is_err() {
            return false;
        }
        let pair = self.pairs.entry(request.clone()).or_default();
        pair.port = port;
        if kind == "error" {
            pair.error = Some(stream);
        } else {
            pair.data = Some(stream);
        }
        if let (Some(error), Some(data)) = (pair.error, pair.data) {
            let port = pair.port;
            self.pairs.remove(&request);
            self.start(port, error, data);
        }
        true
    }

    fn start(&mut self, port: u16, error: u32, data: u32) {
        let (tx, rx) = mpsc::channel(64);
        self.inbound.insert(data, tx);
        let cancel = self.all.child_token();
        self.resets.insert(error, cancel.clone());
        self.resets.insert(data, cancel.clone());
        let forward = SpdyForward {
            out: self.out.clone(),
            error,
            data,
        };
        tokio::spawn(forward.run(self.target.clone(), port, rx, cancel));
    }
}

/// One forwarded connection over SPDY: its streams and the way back to the client.
struct SpdyForward {
    out: mpsc::Sender<Frame>,
    error: u32,
    data: u32,
}

impl SpdyForward {
    /// Dials the pod and copies both ways until both sides are done or the client resets
    /// the streams; then writes the error (if any) and closes both streams, as the kubelet
    /// does.
    async fn run(
        self,
        target: Resolved,
        port: u16,
        inbound: mpsc::Receiver<Bytes>,
        cancel: CancellationToken,
    ) {
        let dialled = match &target {
            Ok(target) => tokio::select! {
                dialled = target.dial(port) => dialled,
                () = cancel.cancelled() => return,
            },
            Err(e) => Err(format!("error forwarding port {port}: {e}")),
        };
        let mut data_closed = false;
        match dialled {
            Ok(tcp) => {
                tokio::select! {
                    () = self.copy(tcp, inbound) => data_closed = true,
                    () = cancel.cancelled() => {}
                }
            }
            Err(message) => {
                let _ = self.send(self.error, Bytes::from(message), false).await;
            }
        }
        let _ = self.send(self.error, Bytes::new(), true).await;
        if !data_closed {
            let _ = self.send(self.data, Bytes::new(), true).await;
        }
    }

    async fn copy(&self, tcp: TcpStream, mut inbound: mpsc::Receiver<Bytes>) {
        let (mut from_pod, mut to_pod) = tcp.into_split();
        let up = async move {
            while let Some(chunk) = inbound.recv().await {
                if to_pod.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = to_pod.shutdown().await;
        };
        let down = async {
            let mut buf = vec![0u8; CHUNK];
            while let Ok(n) = from_pod.read(&mut buf).await {
                if n == 0
                    || !self
                        .send(self.data, Bytes::copy_from_slice(&buf[..n]), false)
                        .await
                {
                    break;
                }
            }
            self.send(self.data, Bytes::new(), true).await;
        };
        tokio::join!(up, down);
    }

    async fn send(&self, stream: u32, data: Bytes, fin: bool) -> bool {
        self.out
            .send(Frame::Data { stream, fin, data })
            .await
            .is_ok()
    }
}

/// Encodes queued frames into binary WebSocket messages, then closes the WebSocket.
async fn write_spdy<S>(
    mut sink: futures::stream::SplitSink<WebSocketStream<S>, Message>,
    mut rx: mpsc::Receiver<Frame>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut writer = FrameWriter::new();
    while let Some(frame) = rx.recv().await {
        let bytes = writer.encode(&frame);
        if sink.send(Message::Binary(bytes.into())).await.is_err() {
            return;
        }
    }
    let _ = sink.close().await;
}

/// The channel protocol: every asked port is dialled at once; the session ends when all
/// its forwards have.
async fn serve_channels<S>(ws: WebSocketStream<S>, target: Resolved, ports: Vec<u16>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut incoming) = ws.split();
    let (frames, rx) = mpsc::channel::<(u8, Vec<u8>)>(64);
    let writer = tokio::spawn(write_frames(sink, rx));
    let mut inbound = HashMap::new();
    let mut forwards = tokio::task::JoinSet::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let Ok(data) = u8::try_from(2 * i) else { break };
        let error = data + 1;
        let _ = frames.send((data, port.to_le_bytes().to_vec())).await;
        let _ = frames.send((error, port.to_le_bytes().to_vec())).await;
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        inbound.insert(data, tx);
        forwards.spawn(forward_channel(
            target.clone(),
            port,
            (data, error),
            rx,
            frames.clone(),
        ));
    }
    loop {
        tokio::select! {
            message = incoming.next() => match message {
                Some(Ok(Message::Binary(msg))) => {
                    let Some((&channel, payload)) = msg.split_first() else { continue };
                    if let Some(tx) = inbound.get(&channel)
                        && tx.send(Bytes::copy_from_slice(payload)).await.is_err()
                    {
                        inbound.remove(&channel);
                    }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            done = forwards.join_next() => if done.is_none() { break },
        }
    }
    forwards.abort_all();
    drop(frames);
    let _ = writer.await;
}

/// One port of the channel protocol: the pod's bytes go out on `data`, a failure on
/// `error`.
async fn forward_channel(
    target: Resolved,
    port: u16,
    (data, error): (u8, u8),
    mut inbound: mpsc::Receiver<Bytes>,
    frames: mpsc::Sender<(u8, Vec<u8>)>,
) {
    let dialled = match &target {
        Ok(target) => target.dial(port).await,
        Err(e) => Err(format!("error forwarding port {port}: {e}")),
    };
    let tcp = match dialled {
        Ok(tcp) => tcp,
        Err(message) => {
            let _ = frames.send((error, message.into_bytes())).await;
            return;
        }
    };
    let (mut from_pod, mut to_pod) = tcp.into_split();
    let up = async move {
        while let Some(chunk) = inbound.recv().await {
            if to_pod.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to_pod.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; CHUNK];
        while let Ok(n) = from_pod.read(&mut buf).await {
            if n == 0 || frames.send((data, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = down => {}
        () = up => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::server::negotiate;

    #[test]
    fn the_spdy_tunnel_is_preferred_and_channels_are_the_default() {
        let kubectl = ["SPDY/3.1+portforward.k8s.io"];
        assert_eq!(
            negotiate(kubectl.into_iter(), &PROTOCOLS),
            Some(SPDY_TUNNEL)
        );
        let python = ["v5.channel.k8s.io,v4.channel.k8s.io"];
        assert_eq!(negotiate(python.into_iter(), &PROTOCOLS), Some(CHANNELS_V4));
        assert_eq!(negotiate(std::iter::empty(), &PROTOCOLS), Some(""));
        assert_eq!(
            negotiate(["v5.channel.k8s.io"].into_iter(), &PROTOCOLS),
            None
        );
    }

    #[test]
    fn ports_come_from_port_or_ports_repeated_or_comma_separated() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(ports(&q(&[("port", "80"), ("port", "443")])), vec![80, 443]);
        assert_eq!(ports(&q(&[("ports", "8080,9090")])), vec![8080, 9090]);
        assert_eq!(
            ports(&q(&[("ports", "0,x"), ("tty", "1")])),
            Vec::<u16>::new()
        );
    }
}
