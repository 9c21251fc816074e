//! `hk8s sandbox`: start, stop and inspect the built-in cluster.

use crate::cli::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SandboxArgs {}

pub async fn run(_args: SandboxArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the sandbox is not built yet")
}
