//! `hk8s sandbox …`: its flags.

use crate::commands::{Job, sandbox};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(super) struct SandboxArgs {
    #[command(subcommand)]
    action: SandboxAction,

    /// State directory (store, certificates, kubeconfig, logs).
    #[arg(long, global = true, env = "HK8S_SANDBOX_DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum SandboxAction {
    /// Start the sandbox (in the foreground unless --detach).
    Up {
        /// Run in the background; `hk8s sandbox down` stops it.
        #[arg(long)]
        detach: bool,
        /// Port on 127.0.0.1 (default: the previous run's, else a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Stop a sandbox started with `up --detach` (or in another terminal).
    Down,
    /// Say whether the sandbox runs, where, and what it holds.
    Status,
    /// Print the path of the sandbox's kubeconfig: `KUBECONFIG=$(hk8s sandbox kubeconfig) kubectl get ns`.
    Kubeconfig,
}

impl SandboxArgs {
    pub(super) fn job(self) -> Job {
        let action = match self.action {
            SandboxAction::Up { detach, port } => sandbox::Action::Up { detach, port },
            SandboxAction::Down => sandbox::Action::Down,
            SandboxAction::Status => sandbox::Action::Status,
            SandboxAction::Kubeconfig => sandbox::Action::Kubeconfig,
        };
        Job::Sandbox {
            state_dir: self.state_dir,
            action,
        }
    }
}
