//! hk8s: learn Kubernetes hands-on, one lesson at a time.
//!
//! Data flow: `cli` parses the command line, `commands` holds one module per
//! subcommand, and each command reaches the cluster through kube-rs.

mod cli;
mod commands;
mod load;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
