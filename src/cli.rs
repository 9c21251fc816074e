//! The command line: global options and one subcommand per job.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Learn Kubernetes hands-on: lessons that apply, watch and check real manifests.
#[derive(Debug, Parser)]
#[command(name = "hk8s", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options shared by every subcommand.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true, env = "HK8S_CONTEXT")]
    pub context: Option<String>,

    /// Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true, env = "HK8S_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Namespace the tutorial runs in.
    #[arg(
        short = 'n',
        long,
        global = true,
        default_value = "demo",
        env = "HK8S_NAMESPACE"
    )]
    pub namespace: String,

    /// Use the built-in sandbox cluster, starting it when needed.
    #[arg(long, global = true)]
    pub sandbox: bool,

    /// Answer yes to every prompt (nothing prompts without a terminal anyway).
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the built-in sandbox cluster.
    Sandbox(crate::commands::sandbox::SandboxArgs),
    /// Generate HTTP load, siege-style.
    Load(crate::load::LoadArgs),
}
