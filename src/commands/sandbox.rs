//! `hk8s sandbox`: start, stop and inspect the built-in cluster.

use crate::cli::GlobalArgs;
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use hk8s_sandbox::{Sandbox, SandboxConfig};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub action: SandboxAction,

    /// State directory (store, certificates, kubeconfig, logs).
    #[arg(long, global = true, env = "HK8S_SANDBOX_DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SandboxAction {
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

fn state_dir(args: &SandboxArgs) -> PathBuf {
    args.state_dir
        .clone()
        .unwrap_or_else(SandboxConfig::default_state_dir)
}

fn pid_path(dir: &Path) -> PathBuf {
    hk8s_sandbox::paths::sandbox_pid_path(dir)
}

/// The pid recorded by a running `sandbox up`, if that process is alive.
fn running_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_path(dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    alive.then_some(pid)
}

pub async fn run(args: SandboxArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let dir = state_dir(&args);
    match args.action {
        SandboxAction::Up { detach: true, port } => up_detached(&dir, port).await,
        SandboxAction::Up {
            detach: false,
            port,
        } => up(&dir, port).await,
        SandboxAction::Down => down(&dir).await,
        SandboxAction::Status => status(&dir).await,
        SandboxAction::Kubeconfig => {
            let path = dir.join("kubeconfig");
            if !path.exists() {
                bail!(
                    "the sandbox in {} has not been started yet: run `hk8s sandbox up --detach`",
                    dir.display()
                );
            }
            println!("{}", path.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn up(dir: &Path, port: u16) -> anyhow::Result<ExitCode> {
    if let Some(pid) = running_pid(dir) {
        bail!(
            "a sandbox already runs from {} (pid {pid}); stop it with `hk8s sandbox down`",
            dir.display()
        );
    }
    let started = Instant::now();
    let mut config = SandboxConfig::new(dir);
    config.port = port;
    let sandbox = Sandbox::start(config)
        .await
        .with_context(|| format!("starting the sandbox in {}", dir.display()))?;
    let pid_file = pid_path(dir);
    std::fs::write(&pid_file, std::process::id().to_string())
        .with_context(|| format!("writing {}", pid_file.display()))?;
    println!(
        "hk8s sandbox ready at {} in {} ms\n  export KUBECONFIG={}\n  kubectl get nodes",
        sandbox.url(),
        started.elapsed().as_millis(),
        sandbox.kubeconfig_path().display()
    );
    wait_for_stop_signal().await;
    sandbox.shutdown().await;
    let _ = std::fs::remove_file(&pid_file);
    println!("hk8s sandbox stopped");
    Ok(ExitCode::SUCCESS)
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

async fn up_detached(dir: &Path, port: u16) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    if let Some(pid) = running_pid(dir) {
        println!(
            "the sandbox already runs (pid {pid})\n  export KUBECONFIG={}",
            dir.join("kubeconfig").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = std::fs::remove_file(pid_path(dir));
    let log_path = hk8s_sandbox::paths::sandbox_log_path(dir);
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let exe = std::env::current_exe().context("finding the hk8s executable")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("sandbox")
        .arg("up")
        .arg("--state-dir")
        .arg(dir)
        .arg("--port")
        .arg(port.to_string());
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("starting the background sandbox")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(exit) = child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!(
                "the background sandbox exited ({exit}) before it was ready:\n{}",
                log.trim()
            );
        }
        if running_pid(dir) == Some(child.id() as i32) {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "the background sandbox did not get ready within 20 s; see {}",
                log_path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "hk8s sandbox running in the background (pid {}); stop it with `hk8s sandbox down`\n  export KUBECONFIG={}",
        child.id(),
        dir.join("kubeconfig").display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn down(dir: &Path) -> anyhow::Result<ExitCode> {
    use nix::sys::signal::{Signal, kill};
    let Some(pid) = running_pid(dir) else {
        println!("no sandbox runs from {}", dir.display());
        let _ = std::fs::remove_file(pid_path(dir));
        return Ok(ExitCode::SUCCESS);
    };
    let target = nix::unistd::Pid::from_raw(pid);
    kill(target, Signal::SIGTERM).with_context(|| format!("stopping the sandbox (pid {pid})"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while kill(target, None).is_ok() {
        if Instant::now() > deadline {
            let _ = kill(target, Signal::SIGKILL);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_file(pid_path(dir));
    println!("hk8s sandbox stopped (pid {pid})");
    Ok(ExitCode::SUCCESS)
}

async fn status(dir: &Path) -> anyhow::Result<ExitCode> {
    let Some(pid) = running_pid(dir) else {
        println!(
            "not running (state in {}); start it with `hk8s sandbox up --detach`",
            dir.display()
        );
        return Ok(ExitCode::from(3));
    };
    let kubeconfig = dir.join("kubeconfig");
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .context("loading the sandbox kubeconfig")?;
    let url = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).context("building a client")?;
    let version = tokio::time::timeout(Duration::from_secs(5), client.apiserver_version())
        .await
        .context("the sandbox did not answer within 5 s")?
        .context("asking the sandbox for its version")?;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    let count = namespaces.list(&Default::default()).await?.items.len();
    println!(
        "running (pid {pid}) at {url}, Kubernetes {}, {count} namespaces\n  export KUBECONFIG={}",
        version.git_version,
        kubeconfig.display()
    );
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
    if let Ok(Some(node)) = nodes.get_opt(hk8s_sandbox::NODE_NAME).await
        && let Some(limits) = node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(hk8s_sandbox::LIMITS_ANNOTATION))
    {
        println!("  CPU and memory limits: {limits}");
    }
    Ok(ExitCode::SUCCESS)
}
