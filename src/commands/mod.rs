//! One module per subcommand.

pub mod sandbox;

use crate::cli::{Cli, Command};
use std::process::ExitCode;

/// Runs the parsed command line; the exit code is the command's verdict.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Some(Command::Sandbox(args)) => sandbox::run(args, &cli.global).await,
        Some(Command::Load(args)) => crate::load::run_cli(args).await,
        None => {
            println!("hk8s: see `hk8s --help`");
            Ok(ExitCode::SUCCESS)
        }
    }
}
