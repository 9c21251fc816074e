//! hk8s: learn Kubernetes hands-on, one lesson at a time.
//!
//! Data flow: `cli` parses the command line into plain settings and a job, `commands`
//! holds one module per subcommand; `cluster` picks the cluster (`sandbox_ctl` starts the
//! built-in one), `lesson` reads the lessons and runs their steps through `apply`, `wait`,
//! `checks` and `frontend`, whose verdicts come from the pure functions in `judge`;
//! `progress` remembers where the learner is, `state` that they chose the sandbox. The modules the integration tests drive
//! (`apply`, `checks`, `cluster`, `lesson`, `load`, `manifests`, `ui`, `wait`) are public.

pub mod apply;
pub mod checks;
mod cli;
pub mod cluster;
mod commands;
mod frontend;
mod html;
mod images;
mod judge;
pub mod lesson;
pub mod load;
pub mod manifests;
mod progress;
mod sandbox_ctl;
mod state;
pub mod ui;
pub mod wait;

use std::process::ExitCode;

/// The whole program: parse, run, report an error once, return the exit code.
pub fn main_entry() -> ExitCode {
    exit_quietly_on_closed_stdout();
    let invocation = match cli::parse() {
        Ok(invocation) => invocation,
        Err(err) => {
            eprintln!("error: {}", error_chain(err.as_ref()));
            return ExitCode::FAILURE;
        }
    };
    init_tracing(invocation.verbose);
    if invocation.job.serves_the_sandbox() {
        hk8s_sandbox::rootless::enter();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let ui = ui::Ui::new(invocation.no_color, invocation.options.yes);
    let code = match runtime.block_on(commands::run(invocation.job, &invocation.options, ui)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    };
    // The command is over: a background task still retrying a cluster that went away must
    // not hold the exit (dropping the runtime would wait for it).
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}

/// `hk8s lesson 3 | head -1`: once the reader closed the pipe, printing fails, and Rust's
/// print macros panic on that. A reader that has read enough is not an error: exit quietly,
/// as programs killed by SIGPIPE do, instead of a panic message.
fn exit_quietly_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// An error and its causes, e.g. `client error (Connect): tcp connect error: Connection refused`.
/// An API answer among them ends the chain as [`kube_text`] words it.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(cause) = next {
        let api = cause
            .downcast_ref::<kube::Error>()
            .filter(|e| matches!(e, kube::Error::Api(_)));
        let text = api.map_or_else(|| cause.to_string(), kube_text);
        if parts.last() != Some(&text) && !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        if api.is_some() {
            break;
        }
        next = cause.source();
    }
    parts.join(": ")
}

/// A kube error as a learner reads it: the API's message, reason and code, without the
/// `Status { … }` structure kube's own Display appends.
pub(crate) fn kube_text(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) if status.reason.is_empty() => {
            format!("{} (HTTP {})", status.message, status.code)
        }
        kube::Error::Api(status) => format!(
            "{} ({}, HTTP {})",
            status.message, status.reason, status.code
        ),
        other => error_chain(other),
    }
}

fn init_tracing(verbose: u8) {
    let filter = match verbose {
        0 => return,
        1 => "hk8s=debug",
        _ => "hk8s=trace,kube=debug",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}
