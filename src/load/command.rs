//! The `hk8s load` command: a live progress bar and the report on stdout.

use super::{CancellationToken, LoadConfig, Progress, Report, run};
use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::process::ExitCode;

/// One `hk8s load` run as the command line describes it.
#[derive(Debug)]
pub(crate) struct LoadJob {
    pub config: LoadConfig,
    /// Threads driving the users (`--threads`).
    pub threads: u16,
    /// The report as JSON instead of siege's text.
    pub json: bool,
}

/// Runs `hk8s load`: validates the flags, shows progress on a terminal, and prints the
/// report (also after Ctrl-C, covering the run so far).
pub(crate) async fn run_cli(job: LoadJob) -> anyhow::Result<ExitCode> {
    let LoadJob {
        config,
        threads,
        json,
    } = job;
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
    let result = run_on_own_threads(config, threads, bar.clone(), cancel.clone()).await;
    ctrl_c.abort();
    bar.finish_and_clear();
    let report = result?;
    if report.interrupted {
        eprintln!("\nLifting the server siege...");
    }
    print_report(&report, json)?;
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
pub(crate) fn progress_bar(config: &LoadConfig) -> ProgressBar {
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

/// Moves the bar to the run's progress and shows its hits and failures.
pub(crate) fn show_progress(bar: &ProgressBar, progress: &Progress) {
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
