//! The remote-command WebSocket protocols (`channel.k8s.io` to `v5.channel.k8s.io`) that
//! kubectl and client libraries speak for exec and attach: each binary message starts with a
//! channel byte (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5 adds 255, close), and the
//! error channel carries the command's outcome as a `Status` (v4+) or as text (older).

use super::exec::{ContainerContext, ExecError, ExecOptions, ExecProcess, exit_code, spawn_in_pod};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

pub(super) const STDIN: u8 = 0;
pub(super) const STDOUT: u8 = 1;
pub(super) const STDERR: u8 = 2;
pub(super) const ERROR: u8 = 3;
pub(super) const RESIZE: u8 = 4;
pub(super) const CLOSE: u8 = 255;

/// The subprotocols served, newest first, as the kubelet lists them.
pub(crate) const PROTOCOLS: [&str; 5] = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// How outcomes and stdin's end are signalled in the negotiated protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Version {
    V1,
    V4,
    V5,
}

impl Version {
    /// The version a negotiated subprotocol speaks ("" is the unversioned `channel.k8s.io`).
    pub(crate) fn of(protocol: &str) -> Version {
        match protocol {
            "v5.channel.k8s.io" => Version::V5,
            "v4.channel.k8s.io" => Version::V4,
            _ => Version::V1,
        }
    }
}

/// How a command ended, as the error channel reports it.
pub(crate) enum Outcome {
    Exited { argv: Vec<String>, code: i32 },
    Failed(String),
}

/// The error channel's message for an outcome; `None` when nothing is written (success in
/// the pre-v4 protocols).
pub(crate) fn status_message(version: Version, outcome: &Outcome) -> Option<Vec<u8>> {
    let status = match outcome {
        Outcome::Exited { code: 0, .. } => json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited { argv, code } => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                argv.join(" ")
            ),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        Outcome::Failed(message) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("Internal error occurred: {message}"),
            "reason": "InternalError",
            "details": {"causes": [{"message": message}]},
            "code": 500,
        }),
    };
    if version >= Version::V4 {
        return Some(status.to_string().into_bytes());
    }
    match &status["status"] {
        Value::String(s) if s == "Success" => None,
        _ => status["message"].as_str().map(|m| m.as_bytes().to_vec()),
    }
}

pub(super) type Frames = mpsc::Sender<(u8, Vec<u8>)>;

/// Runs an exec session on an accepted WebSocket: starts the command in the container (or
/// reports why there is none), relays its streams and resizes, and ends with its outcome
/// on the error channel.
pub(crate) async fn serve_exec<S>(
    ws: WebSocketStream<S>,
    version: Version,
    container: Result<ContainerContext, String>,
    opts: ExecOptions,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut incoming) = ws.split();
    let (frames, rx) = mpsc::channel::<(u8, Vec<u8>)>(64);
    let writer = tokio::spawn(write_frames(sink, rx));
    let first = match (opts.stdout, opts.stderr) {
        (true, _) => STDOUT,
        (false, true) => STDERR,
        _ => ERROR,
    };
    let _ = frames.send((first, Vec::new())).await;
    let started = container.and_then(|ctx| spawn_in_pod(&ctx, &opts).map_err(|e| describe(&e)));
    let outcome = match started {
        Ok(process) => relay(process, &mut incoming, &frames, version, &opts.argv).await,
        Err(message) => Outcome::Failed(message),
    };
    if let Some(message) = status_message(version, &outcome) {
        let _ = frames.send((ERROR, message)).await;
    }
    drop(frames);
    let _ = writer.await;
}

fn describe(e: &ExecError) -> String {
    format!("error executing command in container: failed to exec in container: {e}")
}

/// Relays a started command's streams until it exits and its output is drained.
async fn relay<S>(
    mut process: ExecProcess,
    incoming: &mut futures::stream::SplitStream<WebSocketStream<S>>,
    frames: &Frames,
    version: Version,
    argv: &[String],
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut pumps = tokio::task::JoinSet::new();
    if let Some(out) = process.stdout.take() {
        pumps.spawn(pump(out, STDOUT, frames.clone()));
    }
    if let Some(err) = process.stderr.take() {
        pumps.spawn(pump(err, STDERR, frames.clone()));
    }
    let mut stdin = process.stdin.take();
    let terminal = process.terminal.take();
    let status = loop {
        tokio::select! {
            status = process.child.wait() => break status,
            message = incoming.next() => match message {
                Some(Ok(Message::Binary(data))) => {
                    input(&data, version, &mut stdin, terminal.as_ref()).await;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    stdin = None;
                    if terminal.is_some() {
                        hang_up(&process);
                    }
                    break process.child.wait().await;
                }
            },
        }
    };
    drop(stdin);
    let drained = async { while pumps.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drained)
        .await
        .is_err()
    {
        pumps.abort_all();
    }
    match status {
        Ok(status) => Outcome::Exited {
            argv: argv.to_vec(),
            code: exit_code(status),
        },
        Err(e) => Outcome::Failed(format!("error executing command in container: {e}")),
    }
}

/// A client that went away hangs up its terminal, as closing a terminal window does.
fn hang_up(process: &ExecProcess) {
    if let Some(pid) = process.child.id() {
        super::process::signal_group(pid, nix::sys::signal::Signal::SIGHUP);
    }
}

/// Applies one client frame: stdin data, a resize, or (v5) the end of stdin.
async fn input(
    data: &[u8],
    version: Version,
    stdin: &mut Option<Box<dyn AsyncWrite + Send + Unpin>>,
    terminal: Option<&super::exec::Terminal>,
) {
    let Some((&channel, payload)) = data.split_first() else {
        return;
    };
    match channel {
        STDIN => {
            let written = match stdin.as_mut() {
                Some(w) => w.write_all(payload).await.and(w.flush().await),
                None => Ok(()),
            };
            if written.is_err() {
                *stdin = None;
            }
        }
        RESIZE => {
            let size: Option<Value> = serde_json::from_slice(payload).ok();
            let dim = |k: &str| {
                size.as_ref()
                    .and_then(|s| s[k].as_u64())
                    .and_then(|v| u16::try_from(v).ok())
            };
            if let (Some(t), Some(w), Some(h)) = (terminal, dim("Width"), dim("Height")) {
                let _ = t.resize(w, h);
            }
        }
        CLOSE if version == Version::V5 && payload.first() == Some(&STDIN) => {
            if let Some(mut w) = stdin.take() {
                let _ = w.shutdown().await;
            }
        }
        _ => {}
    }
}

/// Copies a stream to a channel until it ends (a terminal's EIO after its last user
/// leaves counts as the end).
async fn pump(mut from: Box<dyn AsyncRead + Send + Unpin>, channel: u8, frames: Frames) {
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || frames.send((channel, buf[..n].to_vec())).await.is_err() {
            break;
        }
    }
}

/// Sends queued frames, then closes the WebSocket normally.
pub(crate) async fn write_frames<S>(
    mut sink: futures::stream::SplitSink<WebSocketStream<S>, Message>,
    mut rx: mpsc::Receiver<(u8, Vec<u8>)>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some((channel, data)) = rx.recv().await {
        let mut frame = Vec::with_capacity(data.len() + 1);
        frame.push(channel);
        frame.extend_from_slice(&data);
        if sink.send(Message::Binary(frame.into())).await.is_err() {
            return;
        }
    }
    let normal = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = sink.send(Message::Close(Some(normal))).await;
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::server::negotiate;

    #[test]
    fn the_newest_offered_protocol_is_chosen_and_unknown_ones_refused() {
        let offered = ["v5.channel.k8s.io, v4.channel.k8s.io"];
        assert_eq!(
            negotiate(offered.into_iter(), &PROTOCOLS),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(
            negotiate(["v4.channel.k8s.io"].into_iter(), &PROTOCOLS),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(negotiate(std::iter::empty(), &PROTOCOLS), Some(""));
        assert_eq!(
            negotiate(["SPDY/3.1+portforward.k8s.io"].into_iter(), &PROTOCOLS),
            None
        );
    }

    #[test]
    fn exit_codes_are_reported_as_the_kubelet_does() {
        let exited = Outcome::Exited {
            argv: vec!["sh".into(), "-c".into(), "exit 3".into()],
            code: 3,
        };
        let v5: Value =
            serde_json::from_slice(&status_message(Version::V5, &exited).unwrap()).unwrap();
        assert_eq!(v5["reason"], "NonZeroExitCode");
        assert_eq!(v5["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v5["details"]["causes"][0]["message"], "3");
        assert_eq!(
            v5["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        let ok = Outcome::Exited {
            argv: vec![],
            code: 0,
        };
        assert_eq!(
            status_message(Version::V4, &ok).unwrap(),
            br#"{"metadata":{},"status":"Success"}"#
        );
        assert!(status_message(Version::V1, &ok).is_none());
        let v1 = status_message(Version::V1, &exited).unwrap();
        assert!(
            String::from_utf8(v1)
                .unwrap()
                .starts_with("command terminated")
        );
    }
}
