//! A local HTTP/1.1 server with known behaviour for the `hk8s load` tests: by request
//! number it answers 200 after a fixed latency, answers 500 at once, closes the
//! connection without answering, or redirects elsewhere.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the server does with the n-th request it reads (n counts from 1, over all
/// connections).
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Wait before every 200 answer.
    pub latency: Duration,
    /// Body of every 200 answer.
    pub body: Vec<u8>,
    /// Requests with `n % 10` in this list get an immediate 500 with body `error`.
    pub fail_500: Vec<u64>,
    /// Requests with `n % 10` in this list get their connection closed without an answer.
    pub drop: Vec<u64>,
    /// Answer every request with `302 Found` to this location instead.
    pub redirect_to: Option<String>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            body: b"hello".to_vec(),
            fail_500: Vec::new(),
            drop: Vec::new(),
            redirect_to: None,
        }
    }
}

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub head: String,
    pub body: Vec<u8>,
}

pub struct TestServer {
    pub url: String,
    pub requests: Arc<AtomicU64>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    accept: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a free port");
        let url = format!("http://{}/test", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(behaviour);
        let accept = {
            let requests = Arc::clone(&requests);
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serve(
                        stream,
                        Arc::clone(&behaviour),
                        Arc::clone(&requests),
                        Arc::clone(&seen),
                    ));
                }
            })
        };
        Self {
            url,
            requests,
            seen,
            accept,
        }
    }

    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    behaviour: Arc<Behaviour>,
    requests: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut buffer = Vec::new();
    loop {
        let Some((head, body)) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
        {
            let mut seen = seen.lock().unwrap();
            if seen.len() < 100 {
                seen.push(Seen { head, body });
            }
        }
        let response = if behaviour.drop.contains(&(n % 10)) {
            return;
        } else if behaviour.fail_500.contains(&(n % 10)) {
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\nerror".to_vec()
        } else if let Some(location) = &behaviour.redirect_to {
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
                .into_bytes()
        } else {
            tokio::time::sleep(behaviour.latency).await;
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                behaviour.body.len()
            )
            .into_bytes();
            response.extend_from_slice(&behaviour.body);
            response
        };
        if stream.write_all(&response).await.is_err() {
            return;
        }
    }
}

/// Reads one request (head and Content-Length body) from a keep-alive connection.
async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            let body = buffer[end + 4..end + 4 + length].to_vec();
            buffer.drain(..end + 4 + length);
            return Some((head, body));
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

/// An address on which nothing listens: bound, then released.
pub async fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/")
}
