//! `hk8s sandbox`: start, stop and inspect the built-in cluster, through `sandbox_ctl`.

use crate::sandbox_ctl::{StateDir, Status};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// What `hk8s sandbox` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Start it, in the foreground unless `detach`; port 0 reuses the previous one.
    Up {
        detach: bool,
        port: u16,
    },
    Down,
    Status,
    /// Print the kubeconfig's path.
    Kubeconfig,
}

/// `hk8s sandbox status` exits with this when no sandbox runs (as `systemctl status` does).
const NOT_RUNNING: u8 = 3;

pub(crate) async fn run(state_dir: Option<PathBuf>, action: Action) -> anyhow::Result<ExitCode> {
    let dir = StateDir::new(state_dir);
    match action {
        Action::Up { detach: true, port } => {
            let detached = dir.start_detached(port).await?;
            println!("{}", detached.describe(&dir));
        }
        Action::Up {
            detach: false,
            port,
        } => up(&dir, port).await?,
        Action::Down => match dir.stop().await? {
            Some(pid) => println!("hk8s sandbox stopped (pid {pid})"),
            None => println!("no sandbox runs from {}", dir.path().display()),
        },
        Action::Status => return status(&dir).await,
        Action::Kubeconfig => println!("{}", dir.started_kubeconfig()?.display()),
    }
    Ok(ExitCode::SUCCESS)
}

/// Serves in the foreground until Ctrl-C or SIGTERM.
async fn up(dir: &StateDir, port: u16) -> anyhow::Result<()> {
    let started = Instant::now();
    let serving = dir.serve(port).await?;
    println!(
        "hk8s sandbox ready at {} in {} ms\n  export KUBECONFIG={}\n  kubectl get nodes",
        serving.url(),
        started.elapsed().as_millis(),
        serving.kubeconfig().display()
    );
    wait_for_stop_signal().await;
    serving.shutdown().await;
    println!("hk8s sandbox stopped");
    Ok(())
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn status(dir: &StateDir) -> anyhow::Result<ExitCode> {
    match dir.status().await? {
        Status::Stopped => {
            println!(
                "not running (state in {}); start it with `hk8s sandbox up --detach`",
                dir.path().display()
            );
            Ok(ExitCode::from(NOT_RUNNING))
        }
        Status::Running {
            pid,
            url,
            version,
            namespaces,
            limits,
            isolation,
            unready,
        } => {
            println!(
                "running (pid {pid}) at {url}, Kubernetes {version}, {namespaces} namespaces\n  export KUBECONFIG={}",
                dir.kubeconfig().display()
            );
            if let Some(limits) = limits {
                println!("  CPU and memory limits: {limits}");
            }
            if let Some(isolation) = isolation {
                println!("  pod isolation: {isolation}");
            }
            if let Some(why) = unready {
                println!("  NOT READY: {why}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
