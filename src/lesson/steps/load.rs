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

/// One load run of a lesson: how many clients, how long, how patient, and its name.
pub(crate) struct Plan {
    pub concurrency: u32,
    pub seconds: u64,
    /// Per-request limit; siege's default when `None`.
    pub timeout: Option<Duration>,
    pub label: Option<String>,
}

/// Loads the frontend for `plan.seconds` (or until `until` holds, which it then must); with
/// `min_availability`, the share of successful requests is checked. A labelled run is
/// compared with the lesson's earlier labelled run.
pub(super) async fn run(
    ctx: &StepContext<'_>,
    plan: &Plan,
    until: Option<&WaitFor>,
    min_availability: Option<f64>,
) -> Result<StepOutcome, StepError> {
    let addr = frontend::address(ctx.target).await?;
    crate::lesson::present::load_starting(ctx.ui, &addr, plan.concurrency, plan.seconds);
    let stop = CancellationToken::new();
    let show_bar = until.is_none() && !ctx.ui.quiet;
    let load = generate(ctx.target, &addr, plan, show_bar, stop.clone());
    let mut summary = match until {
        None => load.await?,
        Some(cond) => {
            let watch = async {
                let reached =
                    wait::wait(ctx.target, cond, Duration::from_secs(plan.seconds), ctx.ui).await;
                stop.cancel();
                reached
            };
            let (summary, reached) = tokio::join!(load, watch);
            reached?;
            let mut summary = summary?;
            summary.text.push_str(&format!(
                "\nStopped early:\t\tyes, once {} (planned for up to {} s)\n",
                cond.describe(),
                plan.seconds
            ));
            summary
        }
    };
    summary.label = plan.label.clone();
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
    let earlier = remember(ctx, &summary);
    Ok(StepOutcome::Loaded {
        summary,
        earlier,
        availability,
    })
}

/// Keeps a labelled run for later comparisons; returns the earlier labelled run, if any.
fn remember(ctx: &StepContext<'_>, summary: &LoadSummary) -> Option<LoadSummary> {
    summary.label.as_ref()?;
    let mut loads = ctx.loads.lock().ok()?;
    let earlier = loads.last().cloned();
    loads.push(summary.clone());
    earlier
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadSummary {
    /// The run's name in comparisons, e.g. `starved (07)`.
    pub label: Option<String>,
    pub transactions: u64,
    pub failed: u64,
    pub availability_percent: f64,
    /// Transactions per second.
    pub rate: f64,
    /// Median and 99th percentile response times in seconds (unknown through the proxy).
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    /// The siege-style report.
    pub text: String,
}

/// Runs the plan's clients against the frontend, or until `stop` is cancelled; a progress
/// bar shows the run when `show_bar` (and stderr is a terminal).
async fn generate(
    target: &Target,
    addr: &Address,
    plan: &Plan,
    show_bar: bool,
    stop: CancellationToken,
) -> Result<LoadSummary, LoadError> {
    match addr {
        Address::Direct(url) => {
            let mut config = LoadConfig::new(url.clone());
            config.concurrency = plan.concurrency.max(1);
            config.duration = Some(Duration::from_secs(plan.seconds));
            config.delay = Some(Duration::from_secs(1));
            if let Some(timeout) = plan.timeout {
                config.timeout = timeout;
            }
            let bar = if show_bar {
                crate::load::progress_bar(&config)
            } else {
                indicatif::ProgressBar::hidden()
            };
            let update =
                |progress: &crate::load::Progress| crate::load::show_progress(&bar, progress);
            let report = crate::load::run(config, Some(&update), stop).await;
            bar.finish_and_clear();
            let mut report = report?;
            // In a lesson only the step's own condition stops a run early (Ctrl-C ends the
            // lesson): the report must not claim an interruption nobody made.
            report.interrupted = false;
            Ok(LoadSummary {
                label: None,
                transactions: report.transactions,
                failed: report.failed_transactions,
                availability_percent: report.availability,
                rate: report.transaction_rate,
                p50: (report.transactions > 0).then_some(report.response_time_p50),
                p99: (report.transactions > 0).then_some(report.response_time_p99),
                text: report.to_string(),
            })
        }
        Address::Proxy(_) => Ok(through_proxy(target, plan.concurrency, plan.seconds, stop).await),
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
        label: None,
        transactions: ok,
        failed,
        availability_percent: availability,
        rate: ok as f64 / elapsed.max(0.001),
        p50: None,
        p99: None,
        text: format!(
            "Transactions:\t\t{ok:>12} hits\nAvailability:\t\t{availability:>12.2} %\nElapsed time:\t\t{elapsed:>12.2} secs\nFailed transactions:\t{failed:>12}\n(through the API server's service proxy)"
        ),
    }
}

/// Two runs side by side (transactions, rate, availability, failures, p50, p99), then
/// what the difference means, in the runs' own numbers.
pub(crate) fn comparison(earlier: &LoadSummary, now: &LoadSummary) -> String {
    let name = |s: &LoadSummary| s.label.clone().unwrap_or_else(|| "run".into());
    let (a, b) = (name(earlier), name(now));
    let mut out = format!("{:<18} {a:>16} {b:>16}\n", "");
    let mut row = |what: &str, x: String, y: String| {
        out.push_str(&format!("{what:<18} {x:>16} {y:>16}\n"));
    };
    row(
        "Transactions",
        earlier.transactions.to_string(),
        now.transactions.to_string(),
    );
    row(
        "Transactions/s",
        format!("{:.1}", earlier.rate),
        format!("{:.1}", now.rate),
    );
    row(
        "Availability",
        format!("{:.2} %", earlier.availability_percent),
        format!("{:.2} %", now.availability_percent),
    );
    row("Failed", earlier.failed.to_string(), now.failed.to_string());
    row("Response p50", time(earlier.p50), time(now.p50));
    row("Response p99", time(earlier.p99), time(now.p99));
    out.push('\n');
    out.push_str(&meaning(earlier, now, &a, &b));
    out
}

fn time(seconds: Option<f64>) -> String {
    match seconds {
        None => "—".into(),
        Some(s) if s < 1.0 => format!("{:.0} ms", s * 1000.0),
        Some(s) => format!("{s:.2} s"),
    }
}

/// What the difference between two runs means, sentence by sentence.
fn meaning(earlier: &LoadSummary, now: &LoadSummary, a: &str, b: &str) -> String {
    let mut said = Vec::new();
    if earlier.transactions > 0 && now.transactions >= earlier.transactions * 2 {
        said.push(format!(
            "The same clients got {:.0}× the answers from {b} ({} against {}): the starved container spends most of each second throttled, waiting for its CPU share.",
            now.transactions as f64 / earlier.transactions as f64,
            now.transactions,
            earlier.transactions
        ));
    } else if now.transactions <= earlier.transactions {
        said.push(format!(
            "{b} did not answer more requests than {a} ({} against {}): the limits made no difference under this load on this machine.",
            now.transactions, earlier.transactions
        ));
    }
    if let (Some(x), Some(y)) = (earlier.p50, now.p50)
        && x > y * 2.0
    {
        said.push(format!(
            "The median answer took {} with {a} and {} with {b}: requests queue behind the throttled CPU.",
            time(Some(x)),
            time(Some(y))
        ));
    }
    let lost = now.availability_percent - earlier.availability_percent;
    if lost >= 1.0 {
        said.push(format!(
            "Availability fell to {:.2} % with {a} ({} requests failed): clients gave up waiting or got errors.",
            earlier.availability_percent, earlier.failed
        ));
    } else {
        said.push(format!(
            "Availability hardly differs ({:.2} % and {:.2} %): starved, the frontend was slow rather than failing, and clients that waited long enough got their page.",
            earlier.availability_percent, now.availability_percent
        ));
    }
    said.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(label: &str, transactions: u64, failed: u64, p50: f64) -> LoadSummary {
        let total = (transactions + failed) as f64;
        LoadSummary {
            label: Some(label.into()),
            transactions,
            failed,
            availability_percent: transactions as f64 * 100.0 / total,
            rate: transactions as f64 / 10.0,
            p50: Some(p50),
            p99: Some(p50 * 2.0),
            text: String::new(),
        }
    }

    #[test]
    fn a_comparison_says_what_differs_in_the_runs_own_numbers() {
        let text = comparison(&run("starved", 120, 40, 4.0), &run("sane", 1800, 0, 0.015));
        assert!(text.contains("starved") && text.contains("sane"), "{text}");
        assert!(text.contains("15× the answers"), "{text}");
        assert!(text.contains("median answer took 4.00 s"), "{text}");
        assert!(text.contains("15 ms"), "{text}");
        assert!(text.contains("Availability fell to 75.00 %"), "{text}");
        let same = comparison(&run("a", 100, 0, 0.01), &run("b", 100, 0, 0.01));
        assert!(same.contains("made no difference"), "{same}");
        assert!(same.contains("hardly differs"), "{same}");
    }
}
