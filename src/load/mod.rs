//! `hk8s load`: a siege-compatible HTTP load generator.

use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct LoadArgs {}

pub async fn run_cli(_args: LoadArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the load generator is not built yet")
}
