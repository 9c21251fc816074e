//! Starting the simulated users, reporting progress, and merging their statistics.

use super::LoadError;
use super::config::LoadConfig;
use super::report::{Report, UserStats};
use super::user::{Shared, simulate};
use std::future::pending;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// How often the progress callback is called.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// A live snapshot of a run, passed to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Time since the run started.
    pub elapsed: Duration,
    /// Transactions so far (see [`Report::transactions`]).
    pub transactions: u64,
    /// Failed transactions so far.
    pub failures: u64,
    /// The run's planned length, when it has one (`-t`).
    pub planned_duration: Option<Duration>,
    /// Planned requests (`concurrency * repetitions`), when `-r` was given.
    pub planned_requests: Option<u64>,
}

/// Callback receiving a [`Progress`] every [`PROGRESS_INTERVAL`] and once at the end.
pub type ProgressFn<'a> = &'a (dyn Fn(&Progress) + Sync);

/// Runs a load test and returns its report.
///
/// Ends at the configured duration or repetitions; cancelling `cancel` (e.g. on Ctrl-C)
/// stops every user at once and returns the report of what happened until then, with
/// [`Report::interrupted`] set. Requests in flight when the run ends are not counted.
/// Needs a Tokio runtime; a multi-thread one spreads the users over the cores.
pub async fn run(
    config: LoadConfig,
    progress: Option<ProgressFn<'_>>,
    cancel: CancellationToken,
) -> Result<Report, LoadError> {
    let plan = config.plan()?;
    let addr = resolve(&plan.target.host, plan.target.port, plan.timeout).await?;
    let concurrency = plan.concurrency;
    let planned_duration = plan.duration;
    let planned_requests = plan
        .repetitions
        .map(|reps| reps.saturating_mul(u64::from(concurrency)));
    let shared = Arc::new(Shared {
        plan,
        addr,
        transactions: AtomicU64::new(0),
        failures: AtomicU64::new(0),
    });

    let start = Instant::now();
    let deadline = planned_duration.map(|d| start + d);
    let stop = cancel.child_token();
    let mut users = JoinSet::new();
    for user in 0..concurrency {
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        users.spawn(async move {
            let mut stats = UserStats::new();
            tokio::select! {
                () = simulate(user, &shared, &mut stats) => {}
                () = stop.cancelled() => {}
                () = until(deadline) => {}
            }
            stats
        });
    }

    let snapshot = || Progress {
        elapsed: start.elapsed(),
        transactions: shared.transactions.load(Ordering::Relaxed),
        failures: shared.failures.load(Ordering::Relaxed),
        planned_duration,
        planned_requests,
    };
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut finished = Vec::with_capacity(concurrency as usize);
    loop {
        tokio::select! {
            joined = users.join_next() => match joined {
                Some(Ok(stats)) => finished.push(stats),
                Some(Err(err)) => return Err(LoadError::Worker(err.to_string())),
                None => break,
            },
            _ = ticker.tick(), if progress.is_some() => {
                if let Some(report_progress) = progress {
                    report_progress(&snapshot());
                }
            }
        }
    }
    let elapsed = start.elapsed();
    if let Some(report_progress) = progress {
        report_progress(&snapshot());
    }
    Ok(Report::merge(
        finished,
        concurrency,
        elapsed,
        cancel.is_cancelled(),
    ))
}

/// The address every user connects to: the first one resolved that accepts a connection
/// (so `localhost` works whichever of ::1 and 127.0.0.1 the server listens on), or the first
/// one when none does (the run then counts connection failures).
async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<SocketAddr, LoadError> {
    let failed = |reason: String| LoadError::Resolve {
        host: host.to_owned(),
        reason,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|err| failed(err.to_string()))?
        .collect();
    let first = *addrs
        .first()
        .ok_or_else(|| failed("no address found".to_owned()))?;
    if addrs.len() > 1 {
        for addr in &addrs {
            let probe = tokio::time::timeout(timeout.min(PROBE_TIMEOUT), TcpStream::connect(addr));
            if let Ok(Ok(_connection)) = probe.await {
                return Ok(*addr);
            }
        }
    }
    Ok(first)
}

/// Longest wait for one address of a multi-address host to accept a connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => pending().await,
    }
}
