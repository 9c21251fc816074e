//! The `hk8s load` command line: siege's flags, a live progress bar, the report on stdout.

use super::config::{DEFAULT_CONCURRENCY, LoadConfig, parse_header, seconds};
use super::{CancellationToken, Progress, Report, parse_siege_duration, run};
use anyhow::Context as _;
use bytes::Bytes;
use clap::Args;
use http::{HeaderMap, Method};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

/// Generate HTTP load like siege: `hk8s load -c 25 -t 10S http://127.0.0.1:8080/`.
///
/// A run needs an end (-t or -r). Only the given URL is requested; redirects are not
/// followed. Failed transactions are connection errors, dropped connections, timeouts and
/// 408/5xx responses, as in siege.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The URL to load (plain http://).
    pub url: String,

    /// Simulated users, each with its own keep-alive connection (1 to 1000).
    #[arg(short = 'c', long = "concurrent", default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrent: u32,

    /// How long to run: a number and S, M or H, e.g. 10S, 1M, 1H.
    #[arg(short = 't', long = "time", value_parser = parse_time)]
    pub time: Option<Duration>,

    /// Requests per simulated user.
    #[arg(short = 'r', long = "reps")]
    pub reps: Option<u64>,

    /// Each user waits a random 0..N seconds after every request (e.g. -d 1, -d 0.5).
    #[arg(short = 'd', long = "delay", value_name = "SECONDS")]
    pub delay: Option<f64>,

    /// Cap on requests started per second, over all users.
    #[arg(long)]
    pub rate: Option<f64>,

    /// Request method.
    #[arg(long, default_value = "GET")]
    pub method: String,

    /// Request body sent with every request; `@FILE` reads it from a file.
    #[arg(long)]
    pub body: Option<String>,

    /// Content-Type of the body (default application/x-www-form-urlencoded).
    #[arg(short = 'T', long = "content-type")]
    pub content_type: Option<String>,

    /// Extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub header: Vec<String>,

    /// Print the report as JSON on stdout (siege's field names plus the extras).
    #[arg(long)]
    pub json: bool,

    /// Seconds one request may take (connect, send, full response) before it fails.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub timeout: f64,

    /// Threads driving the users, like wrk's -t. One thread keeps up with tens of
    /// thousands of requests per second and leaves the other cores to a server on the
    /// same machine; raise it when hk8s load itself is the bottleneck.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=MAX_THREADS))]
    pub threads: u16,
}

/// Upper bound of `--threads`.
const MAX_THREADS: i64 = 64;

fn parse_time(text: &str) -> Result<Duration, String> {
    parse_siege_duration(text).map_err(|err| err.to_string())
}

impl LoadArgs {
    /// The library configuration these flags describe.
    pub fn to_config(&self) -> anyhow::Result<LoadConfig> {
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
}

/// Runs `hk8s load`: validates the flags, shows progress on a terminal, and prints the
/// report (also after Ctrl-C, covering the run so far).
pub async fn run_cli(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let config = args.to_config()?;
    config.validate()?;

    eprintln!("** hk8s load {}", env!("CARGO_PKG_VERSION"));
    eprintln!(
        "** Preparing {} concurrent users for battle.",
        config.concurrency
    );
    eprintln!("The server is now under siege...");

    let cancel = CancellationToken::new();
    let ctrl_c = cancel_on_ctrl_c(cancel.clone())?;

    let bar = progress_bar(&config);
    let result = run_on_own_threads(config, args.threads, bar.clone(), cancel.clone()).await;
    ctrl_c.abort();
    bar.finish_and_clear();
    let report = result?;
    if report.interrupted {
        eprintln!("\nLifting the server siege...");
    }
    print_report(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs the users on a runtime of their own, so `--threads` alone decides how many cores
/// the load generator takes.
async fn run_on_own_threads(
    config: LoadConfig,
    threads: u16,
    bar: ProgressBar,
    cancel: CancellationToken,
) -> anyhow::Result<Report> {
    let runtime = match threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(n))
            .enable_all()
            .build(),
    }
    .context("cannot start the load generator's threads")?;
    let joined = tokio::task::spawn_blocking(move || {
        let update = |progress: &Progress| show_progress(&bar, progress);
        runtime.block_on(run(config, Some(&update), cancel))
    })
    .await
    .context("the load generator stopped unexpectedly")?;
    Ok(joined?)
}

/// Cancels `cancel` on the first Ctrl-C. The handler is installed before this returns, so
/// an early Ctrl-C still gets the report instead of killing the process.
fn cancel_on_ctrl_c(cancel: CancellationToken) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt =
            signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C (SIGINT)")?;
        Ok(tokio::spawn(async move {
            if interrupt.recv().await.is_some() {
                cancel.cancel();
            }
        }))
    }
    #[cfg(not(unix))]
    {
        Ok(tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        }))
    }
}

fn print_report(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).context("cannot encode the report as JSON")?
        );
    } else {
        println!();
        print!("{report}");
    }
    Ok(())
}

/// A bar over the planned time or requests, drawn on stderr only when it is a terminal.
fn progress_bar(config: &LoadConfig) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let (length, template) = match config.duration {
        Some(duration) => (
            duration.as_millis() as u64,
            "{bar:40} {elapsed_precise} {msg}",
        ),
        None => (
            config
                .repetitions
                .unwrap_or(0)
                .saturating_mul(u64::from(config.concurrency)),
            "{bar:40} {pos}/{len} requests {msg}",
        ),
    };
    let bar = ProgressBar::with_draw_target(Some(length), target);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

fn show_progress(bar: &ProgressBar, progress: &Progress) {
    let position = match progress.planned_duration {
        Some(_) => progress.elapsed.as_millis() as u64,
        None => progress.transactions + progress.failures,
    };
    bar.set_position(position.min(bar.length().unwrap_or(u64::MAX)));
    bar.set_message(format!(
        "{} hits, {} failed",
        progress.transactions, progress.failures
    ));
}
