//! `hk8s load …`: siege's flags, turned into a [`LoadConfig`].

use crate::load::{
    DEFAULT_CONCURRENCY, LoadConfig, LoadJob, parse_header, parse_siege_duration, seconds,
};
use anyhow::Context as _;
use bytes::Bytes;
use clap::Args;
use http::{HeaderMap, Method};
use std::time::Duration;

/// Generate HTTP load like siege: `hk8s load -c 25 -t 10S http://127.0.0.1:8080/`.
///
/// A run needs an end (-t or -r). Only the given URL is requested; redirects are not
/// followed. Failed transactions are connection errors, dropped connections, timeouts and
/// 408/5xx responses, as in siege.
#[derive(Debug, Args)]
pub(super) struct LoadArgs {
    /// The URL to load (plain http://).
    url: String,

    /// Simulated users, each with its own keep-alive connection (1 to 1000).
    #[arg(short = 'c', long = "concurrent", default_value_t = DEFAULT_CONCURRENCY)]
    concurrent: u32,

    /// How long to run: a number and S, M or H, e.g. 10S, 1M, 1H.
    #[arg(short = 't', long = "time", value_parser = parse_time)]
    time: Option<Duration>,

    /// Requests per simulated user.
    #[arg(short = 'r', long = "reps")]
    reps: Option<u64>,

    /// Each user waits a random 0..N seconds after every request (e.g. -d 1, -d 0.5).
    #[arg(short = 'd', long = "delay", value_name = "SECONDS")]
    delay: Option<f64>,

    /// Cap on requests started per second, over all users.
    #[arg(long)]
    rate: Option<f64>,

    /// Request method.
    #[arg(long, default_value = "GET")]
    method: String,

    /// Request body sent with every request; `@FILE` reads it from a file.
    #[arg(long)]
    body: Option<String>,

    /// Content-Type of the body (default application/x-www-form-urlencoded).
    #[arg(short = 'T', long = "content-type")]
    content_type: Option<String>,

    /// Extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    header: Vec<String>,

    /// Print the report as JSON on stdout (siege's field names plus the extras).
    #[arg(long)]
    json: bool,

    /// Seconds one request may take (connect, send, full response) before it fails.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    timeout: f64,

    /// Threads driving the users, like wrk's -t. One thread keeps up with tens of
    /// thousands of requests per second and leaves the other cores to a server on the
    /// same machine; raise it when hk8s load itself is the bottleneck.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=MAX_THREADS))]
    threads: u16,
}

/// Upper bound of `--threads`.
const MAX_THREADS: i64 = 64;

fn parse_time(text: &str) -> Result<Duration, String> {
    parse_siege_duration(text).map_err(|err| err.to_string())
}

impl LoadArgs {
    /// The load generator's configuration these flags describe.
    fn to_config(&self) -> anyhow::Result<LoadConfig> {
        let method =
            Method::from_bytes(self.method.to_ascii_uppercase().as_bytes()).with_context(|| {
                format!(
                    "invalid --method {:?}: expected e.g. GET or POST",
                    self.method
                )
            })?;
        let mut headers = HeaderMap::new();
        for header in &self.header {
            let (name, value) = parse_header(header)?;
            headers.append(name, value);
        }
        let body = match self.body.as_deref() {
            None => None,
            Some(text) => Some(match text.strip_prefix('@') {
                Some(path) => Bytes::from(
                    std::fs::read(path)
                        .with_context(|| format!("cannot read the --body file {path:?}"))?,
                ),
                None => Bytes::from(text.to_owned()),
            }),
        };
        Ok(LoadConfig {
            concurrency: self.concurrent,
            duration: self.time,
            repetitions: self.reps,
            delay: self.delay.map(|d| seconds("delay (-d)", d)).transpose()?,
            rate: self.rate,
            method,
            headers,
            body,
            content_type: self.content_type.clone(),
            timeout: seconds("--timeout", self.timeout)?,
            ..LoadConfig::new(&self.url)
        })
    }

    pub(super) fn job(self) -> anyhow::Result<LoadJob> {
        Ok(LoadJob {
            config: self.to_config()?,
            threads: self.threads,
            json: self.json,
        })
    }
}
