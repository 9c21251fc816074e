//! hk8s: learn Kubernetes hands-on, one lesson at a time.
//!
//! Data flow: `cli` parses the command line, `commands` holds one module per
//! subcommand, and each command reaches the cluster through kube-rs.

pub mod cli;
pub mod commands;
pub mod load;

use clap::Parser;
use std::process::ExitCode;

/// The whole program: parse, run, report an error once, return the exit code.
pub fn main_entry() -> ExitCode {
    let cli = cli::Cli::parse();
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
