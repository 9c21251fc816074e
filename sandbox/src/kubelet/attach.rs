//! `kubectl attach` (and `kubectl run -i`): a session on a running container's own streams
//! over the remote-command WebSocket protocols. Its output is followed from the moment of
//! attaching (the container writes it to its log); stdin, kept open by the kubelet for a
//! container with `stdin: true`, receives what the client sends, and is closed after the
//! first session that used it when the container has `stdinOnce: true`.

use super::exec::{ExecOptions, Terminal};
use super::remotecommand::{
    self, CLOSE, ERROR, Frames, Outcome, RESIZE, STDERR, STDIN, STDOUT, Version, write_frames,
};
use futures::StreamExt;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// What an attach session needs of a running container.
struct Attachment {
    log_path: PathBuf,
    stdin: Mutex<Option<std::fs::File>>,
    terminal: Option<Terminal>,
    stdin_once: bool,
    ended: watch::Sender<bool>,
}

impl Attachment {
    fn close_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Running containers by their program's pid (the `hk8s://<pid>` of their container ID).
fn attachments() -> &'static Mutex<HashMap<u32, Arc<Attachment>>> {
    static ATTACHMENTS: OnceLock<Mutex<HashMap<u32, Arc<Attachment>>>> = OnceLock::new();
    ATTACHMENTS.get_or_init(Mutex::default)
}

/// Makes a started container attachable.
pub(super) fn register(
    pid: u32,
    log_path: &Path,
    stdin: Option<std::fs::File>,
    terminal: Option<std::os::fd::OwnedFd>,
    stdin_once: bool,
) {
    let attachment = Attachment {
        log_path: log_path.to_path_buf(),
        stdin: Mutex::new(stdin),
        terminal: terminal.map(Terminal::new),
        stdin_once,
        ended: watch::Sender::new(false),
    };
    attachments()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(pid, Arc::new(attachment));
}

/// Ends the sessions attached to a container that ended.
pub(super) fn unregister(pid: u32) {
    let removed = attachments()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pid);
    if let Some(attachment) = removed {
        attachment.close_stdin();
        attachment.ended.send_replace(true);
    }
}

/// Runs an attach session on an accepted WebSocket until the client detaches or the
/// container ends (then with a success status on the error channel, as the kubelet does).
pub(super) async fn serve<S>(
    ws: WebSocketStream<S>,
    version: Version,
    pid: Result<u32, String>,
    opts: ExecOptions,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut incoming) = ws.split();
    let (frames, rx) = mpsc::channel::<(u8, Vec<u8>)>(64);
    let writer = tokio::spawn(write_frames(sink, rx));
    let output = match (opts.stdout, opts.stderr) {
        (true, _) => Some(STDOUT),
        (false, true) => Some(STDERR),
        _ => None,
    };
    let _ = frames.send((output.unwrap_or(ERROR), Vec::new())).await;
    let found = pid.and_then(|pid| {
        attachments()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .cloned()
            .ok_or_else(|| "container not found".to_string())
    });
    let outcome = match found {
        Ok(attachment) => {
            session(&attachment, &mut incoming, &frames, version, output, &opts).await
        }
        Err(message) => Some(Outcome::Failed(message)),
    };
    if let Some(message) = outcome.and_then(|o| remotecommand::status_message(version, &o)) {
        let _ = frames.send((ERROR, message)).await;
    }
    drop(frames);
    let _ = writer.await;
}

/// Relays the client's stdin and the container's output; `Some` when the container ended.
async fn session<S>(
    attachment: &Arc<Attachment>,
    incoming: &mut futures::stream::SplitStream<WebSocketStream<S>>,
    frames: &Frames,
    version: Version,
    output: Option<u8>,
    opts: &ExecOptions,
) -> Option<Outcome>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut ended = attachment.ended.subscribe();
    let ended = async move {
        loop {
            let done = *ended.borrow_and_update();
            if done || ended.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::pin!(ended);
    let follower = output.map(|channel| {
        tokio::spawn(follow(
            attachment.log_path.clone(),
            channel,
            frames.clone(),
            attachment.ended.subscribe(),
        ))
    });
    let container_ended = loop {
        tokio::select! {
            () = &mut ended => break true,
            message = incoming.next() => match message {
                Some(Ok(Message::Binary(data))) => match data.split_first() {
                    Some((&STDIN, payload)) if opts.stdin => write_stdin(attachment, payload).await,
                    Some((&RESIZE, payload)) => resize(attachment, payload),
                    Some((&CLOSE, [STDIN])) if version == Version::V5 && attachment.stdin_once => {
                        attachment.close_stdin();
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(_)) | Err(_)) | None => break false,
                Some(Ok(_)) => {}
            },
        }
    };
    if opts.stdin && attachment.stdin_once {
        attachment.close_stdin();
    }
    match follower {
        Some(task) if container_ended => {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        Some(task) => task.abort(),
        None => {}
    }
    container_ended.then_some(Outcome::Exited {
        argv: Vec::new(),
        code: 0,
    })
}

/// Applies the client's terminal size (`{"Width":…,"Height":…}`) to a container on a tty.
fn resize(attachment: &Attachment, payload: &[u8]) {
    let size: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
    let dim = |k: &str| {
        size.as_ref()
            .and_then(|s| s[k].as_u64())
            .and_then(|v| u16::try_from(v).ok())
    };
    if let (Some(t), Some(w), Some(h)) = (&attachment.terminal, dim("Width"), dim("Height")) {
        let _ = t.resize(w, h);
    }
}

/// Writes client input to the container's stdin (a pipe write may block when it is full).
async fn write_stdin(attachment: &Arc<Attachment>, payload: &[u8]) {
    let (attachment, payload) = (attachment.clone(), payload.to_vec());
    let _ = tokio::task::spawn_blocking(move || {
        let mut stdin = attachment.stdin.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pipe) = stdin.as_mut()
            && pipe.write_all(&payload).is_err()
        {
            stdin.take();
        }
    })
    .await;
}

/// Sends what the container writes to its log from now on, until it ended and all it wrote
/// was sent. The container's output goes straight into the log file, so appends are
/// noticed through inotify: output arrives as it is written and an idle session costs nothing.
async fn follow(path: PathBuf, channel: u8, frames: Frames, mut ended: watch::Receiver<bool>) {
    let Ok((mut file, appended)) = open_watched(&path) else {
        return;
    };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let finished = *ended.borrow_and_update();
        match file.read(&mut buf) {
            Ok(n) if n > 0 => {
                if frames.send((channel, buf[..n].to_vec())).await.is_err() {
                    return;
                }
                continue;
            }
            _ if finished => return,
            _ => {}
        }
        tokio::select! {
            ready = appended.readable() => match ready {
                Ok(mut guard) => {
                    // Drained, so the next append wakes this session again.
                    let _ = guard.get_inner().0.read_events();
                    guard.clear_ready();
                }
                Err(_) => return,
            },
            changed = ended.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The log opened at its end, with an inotify watch for appends set up before the end is
/// taken, so no write between the two is missed.
fn open_watched(path: &Path) -> std::io::Result<(std::fs::File, AsyncFd<Appends>)> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
    inotify.add_watch(
        path,
        AddWatchFlags::IN_MODIFY | AddWatchFlags::IN_CLOSE_WRITE,
    )?;
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::End(0))?;
    Ok((file, Appends(inotify).register()?))
}

/// An inotify instance as tokio's reactor needs it.
struct Appends(Inotify);

impl Appends {
    #[allow(unsafe_code)]
    fn register(self) -> std::io::Result<AsyncFd<Appends>> {
        // SAFETY: the descriptor is owned by the `Inotify` inside, which the `AsyncFd` owns
        // and drops with itself, so it stays open and the same for the AsyncFd's lifetime.
        unsafe { AsyncFd::register_with_interest(self, Interest::READABLE) }.map_err(Into::into)
    }
}

impl std::os::fd::AsRawFd for Appends {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.0.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn follow_sends_appends_as_they_come_and_the_rest_when_the_container_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        std::fs::write(&path, "before attaching\n").unwrap();
        let (frames, mut rx) = mpsc::channel(8);
        let (ended, ended_rx) = watch::channel(false);
        let task = tokio::spawn(follow(path.clone(), STDOUT, frames, ended_rx));
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let next = async |rx: &mut mpsc::Receiver<(u8, Vec<u8>)>| {
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("the follower wakes on an append")
        };
        // The follower may not have opened the log yet: append until it sees a line.
        let first = loop {
            log.write_all(b"one\n").unwrap();
            if let Ok(Some(frame)) =
                tokio::time::timeout(Duration::from_millis(200), rx.recv()).await
            {
                break frame;
            }
        };
        assert_eq!(first.0, STDOUT);
        assert!(String::from_utf8_lossy(&first.1).starts_with("one\n"));
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {}
        log.write_all(b"two\n").unwrap();
        assert_eq!(next(&mut rx).await.unwrap().1, b"two\n");
        log.write_all(b"last\n").unwrap();
        ended.send_replace(true);
        let mut rest = Vec::new();
        while let Some((_, data)) = next(&mut rx).await {
            rest.extend(data);
        }
        assert_eq!(rest, b"last\n");
        task.await.unwrap();
    }
}
