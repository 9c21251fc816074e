//! Real processes for the end-to-end tests: redis-server and the app binaries on free ports,
//! killed on drop, plus a small HTTP helper.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Upper bound for any wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// Polls `f` every 50 ms until it returns true or [`WAIT`] passes.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < WAIT,
            "timed out after {WAIT:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Async version of [`wait_until`].
pub async fn wait_until_async<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < WAIT,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A throwaway redis-server without persistence.
pub struct Redis {
    child: Child,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one on a free port.
    pub fn start() -> Redis {
        Redis::start_on(free_port())
    }

    /// Starts one on `port` and waits until it answers PING.
    pub fn start_on(port: u16) -> Redis {
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (Debian package redis-server)");
        let r = Redis { child, port, dir };
        wait_until(&format!("redis-server on port {port}"), || r.pings());
        r
    }

    fn pings(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// Kills it (SIGKILL), losing its data.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// A synchronous client, to look at what the API stored.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|c| c.get_connection())
            .expect("connect to the test redis")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A running app binary with its stdout lines captured.
pub struct App {
    child: Child,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl App {
    /// Starts the API against Redis on `redis_port`, on a free port.
    pub fn api(redis_port: u16, env: &[(&str, &str)]) -> App {
        App::api_on(free_port(), redis_port, env)
    }

    /// Starts the API on `port`.
    pub fn api_on(port: u16, redis_port: u16, env: &[(&str, &str)]) -> App {
        let mut all = vec![
            ("HKA_HOST", "127.0.0.1".to_owned()),
            ("HKA_PORT", port.to_string()),
            ("REDIS_HOST", "127.0.0.1".to_owned()),
            ("REDIS_PORT", redis_port.to_string()),
            ("HOSTNAME", "api-pod-1".to_owned()),
        ];
        all.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
        App::spawn(env!("CARGO_BIN_EXE_hello-k8s-api"), port, &all)
    }

    /// Starts the frontend against the API on `api_port`, on a free port.
    pub fn frontend(api_port: u16, env: &[(&str, &str)]) -> App {
        let port = free_port();
        let mut all = vec![
            ("HKF_HOST", "127.0.0.1".to_owned()),
            ("HKF_PORT", port.to_string()),
            ("API_HOST", "127.0.0.1".to_owned()),
            ("API_PORT", api_port.to_string()),
            ("HOSTNAME", "frontend-pod-1".to_owned()),
        ];
        all.extend(env.iter().map(|(k, v)| (*k, (*v).to_owned())));
        App::spawn(env!("CARGO_BIN_EXE_hello-k8s-frontend"), port, &all)
    }

    fn spawn(bin: &str, port: u16, env: &[(&str, String)]) -> App {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("log lock").push(line);
            }
        });
        let mut app = App {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            lines,
        };
        wait_until(&format!("{bin} /healthz on port {port}"), || {
            if let Ok(Some(status)) = app.child.try_wait() {
                panic!("{bin} exited early with {status}");
            }
            raw_get_status(port, "/healthz") == Some(200)
        });
        app
    }

    /// The stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("log lock").clone()
    }

    /// Waits until a stdout line contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        wait_until(&format!("log line containing {needle:?}"), || {
            self.lines().iter().any(|l| l.contains(needle))
        });
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM {} failed", self.child.id());
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                start.elapsed() < WAIT,
                "process {} did not exit",
                self.child.id()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Status of a one-off `GET path` on 127.0.0.1:port, or None when nothing answers.
pub fn raw_get_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// Body, lossily decoded.
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// A pooled HTTP client for the tests.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A new pooled client.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one request and reads the whole answer (bounded by [`WAIT`]).
pub async fn send(
    c: &HttpClient,
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> Answer {
    let mut req = http::Request::builder().method(method).uri(url);
    if let Some(ct) = content_type {
        req = req.header(http::header::CONTENT_TYPE, ct);
    }
    let req = req.body(Full::new(body.into())).expect("request");
    let fut = async {
        let res = c
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res
            .into_body()
            .collect()
            .await
            .expect("read body")
            .to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    };
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{method} {url} did not answer within {WAIT:?}"))
}

/// GET with a fresh connection.
pub async fn get(url: &str) -> Answer {
    send(&client(), "GET", url, None, Bytes::new()).await
}

/// POST a form field `msg` to the frontend.
pub async fn post_form(url: &str, msg: &[u8]) -> Answer {
    let body = format!(
        "msg={}",
        percent_encoding::percent_encode(msg, percent_encoding::NON_ALPHANUMERIC)
    );
    send(
        &client(),
        "POST",
        url,
        Some("application/x-www-form-urlencoded"),
        body,
    )
    .await
}

/// Number of messages in the API's Redis list.
pub fn stored(redis: &Redis) -> usize {
    redis::cmd("LLEN")
        .arg(hello_k8s::store::LIST_KEY)
        .query(&mut redis.client())
        .expect("LLEN")
}
