//! hk8s: learn Kubernetes hands-on, one lesson at a time.
//!
//! Data flow: `cli` parses the command line, `commands` holds one module per subcommand;
//! `cluster` picks the cluster, `lesson` reads the lessons and runs their steps through
//! `apply`, `wait`, `checks` and `frontend`; `progress` remembers where the learner is.

pub mod apply;
pub mod checks;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod frontend;
pub mod lesson;
pub mod load;
pub mod manifests;
pub mod progress;
pub mod ui;
pub mod wait;

use clap::Parser;
use std::process::ExitCode;

/// The whole program: parse, run, report an error once, return the exit code.
pub fn main_entry() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
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
