//! `load`: many clients request the frontend at once, siege-style, through `hk8s load`
//! ([`crate::load::run`]) when the frontend has an address of its own; through the API
//! server's service proxy otherwise (slower, but it reaches any cluster).

use super::{StepContext, StepError, StepOutcome};
use crate::checks::CheckResult;
use crate::cluster::Target;
use crate::frontend::{self, Address};
use crate::load::{CancellationToken, LoadConfig, LoadError};
use crate::wait::{self, WaitFor};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Loads the frontend for `seconds` (or until `until` holds, which it then must); with
/// `min_availability`, the share of successful requests is checked.
pub(super) async fn run(
    ctx: &StepContext<'_>,
    concurrency: u32,
    seconds: u64,
    until: Option<&WaitFor>,
    min_availability: Option<f64>,
) -> Result<StepOutcome, StepError> {
    let addr = frontend::address(ctx.target).await?;
    crate::lesson::present::load_starting(ctx.ui, &addr, concurrency, seconds);
    let stop = CancellationToken::new();
    let load = generate(ctx.target, &addr, concurrency, seconds, stop.clone());
    let summary = match until {
        None => load.await?,
        Some(cond) => {
            let watch = async {
                let reached =
                    wait::wait(ctx.target, cond, Duration::from_secs(seconds), ctx.ui).await;
                stop.cancel();
                reached
            };
            let (summary, reached) = tokio::join!(load, watch);
            reached?;
            summary?
        }
    };
    let availability = min_availability.map(|min| CheckResult {
        lesson: ctx.lesson,
        name: "availability under load".into(),
        passed: summary.availability_percent >= min,
        skipped: false,
        detail: format!(
            "{:.2} % of {} requests succeeded (needs {min} %)",
            summary.availability_percent,
            summary.transactions + summary.failed
        ),
    });
    Ok(StepOutcome::Loaded {
        summary,
        availability,
    })
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadSummary {
    pub transactions: u64,
    pub failed: u64,
    pub availability_percent: f64,
    /// The siege-style report.
    pub text: String,
}

/// Runs `concurrency` clients against the frontend for `seconds`, or until `stop` is cancelled.
async fn generate(
    target: &Target,
    addr: &Address,
    concurrency: u32,
    seconds: u64,
    stop: CancellationToken,
) -> Result<LoadSummary, LoadError> {
    match addr {
        Address::Direct(url) => {
            let mut config = LoadConfig::new(url.clone());
            config.concurrency = concurrency.max(1);
            config.duration = Some(Duration::from_secs(seconds));
            config.delay = Some(Duration::from_secs(1));
            let report = crate::load::run(config, None, stop).await?;
            Ok(LoadSummary {
                transactions: report.transactions,
                failed: report.failed_transactions,
                availability_percent: report.availability,
                text: report.to_string(),
            })
        }
        Address::Proxy(_) => Ok(through_proxy(target, concurrency, seconds, stop).await),
    }
}

async fn through_proxy(
    target: &Target,
    concurrency: u32,
    seconds: u64,
    stop: CancellationToken,
) -> LoadSummary {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let stats = Arc::new(Mutex::new((0u64, 0u64)));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let target = target.clone();
        let stats = stats.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline && !stop.is_cancelled() {
                let remaining = deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1));
                let outcome = tokio::time::timeout(remaining, frontend::page(&target)).await;
                let mut s = stats.lock().await;
                match outcome {
                    Ok(Ok(_)) => s.0 += 1,
                    Ok(Err(_)) => s.1 += 1,
                    Err(_) => {}
                }
                drop(s);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let (ok, failed) = *stats.lock().await;
    let elapsed = started.elapsed().as_secs_f64();
    let total = ok + failed;
    let availability = if total == 0 {
        0.0
    } else {
        ok as f64 * 100.0 / total as f64
    };
    LoadSummary {
        transactions: ok,
        failed,
        availability_percent: availability,
        text: format!(
            "Transactions:\t\t{ok:>12} hits\nAvailability:\t\t{availability:>12.2} %\nElapsed time:\t\t{elapsed:>12.2} secs\nFailed transactions:\t{failed:>12}\n(through the API server's service proxy)"
        ),
    }
}
