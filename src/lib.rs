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
    let invocation = match cli::parse() {
        Ok(invocation) => invocation,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    init_tracing(invocation.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let ui = ui::Ui::new(invocation.no_color, invocation.options.yes);
    match runtime.block_on(commands::run(invocation.job, &invocation.options, ui)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, e.g. `client error (Connect): tcp connect error: Connection refused`.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
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
