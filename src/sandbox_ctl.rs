//! The built-in sandbox's life on this machine, for `hk8s sandbox …` and `--sandbox` alike:
//! its state directory, whether a sandbox runs from it, its kubeconfig, starting it (in this
//! process, or as a background daemon), stopping it, and its status.
//!
//! Whether one runs is decided in one place, [`StateDir::running`], from the pid file the
//! serving process writes ([`StateDir::serve`]) and removes when it stops.

use hk8s_sandbox::{Sandbox, SandboxConfig, SandboxError, paths};
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long a background sandbox may take to get ready.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// How long `down` waits for SIGTERM before it sends SIGKILL.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// Why a lifecycle operation failed; each names the directory or process and what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LifecycleError {
    #[error(
        "a sandbox already runs from {} (pid {pid}); stop it with `hk8s sandbox down`",
        dir.display()
    )]
    AlreadyRunning { dir: PathBuf, pid: i32 },
    #[error(
        "the sandbox in {} has not been started yet: run `hk8s sandbox up --detach`",
        dir.display()
    )]
    NeverStarted { dir: PathBuf },
    #[error("starting the sandbox in {}", dir.display())]
    Start {
        dir: PathBuf,
        #[source]
        source: SandboxError,
    },
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("finding the hk8s executable")]
    Executable(#[source] std::io::Error),
    #[error("starting the background sandbox")]
    Spawn(#[source] std::io::Error),
    #[error("the background sandbox exited ({status}) before it was ready:\n{log}")]
    ExitedEarly { status: ExitStatus, log: String },
    #[error(
        "the background sandbox did not get ready within {} s; see {}",
        READY_WITHIN.as_secs(),
        log.display()
    )]
    NotReady { log: PathBuf },
    #[error("stopping the sandbox (pid {pid})")]
    Signal {
        pid: i32,
        #[source]
        source: nix::Error,
    },
    #[error("reading {}", path.display())]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: KubeconfigError,
    },
    #[error("loading the sandbox kubeconfig")]
    Config(#[source] KubeconfigError),
    #[error("building a client")]
    Client(#[source] kube::Error),
    #[error("the sandbox did not answer within 5 s")]
    Silent(#[source] tokio::time::error::Elapsed),
    #[error("asking the sandbox for its version")]
    Version(#[source] kube::Error),
    #[error("{}", crate::kube_text(.0))]
    Api(#[from] kube::Error),
}

/// A sandbox state directory: store, certificates, kubeconfig, logs, pid file.
#[derive(Debug, Clone)]
pub(crate) struct StateDir {
    path: PathBuf,
}

/// A sandbox served by this process, until [`Serving::shutdown`].
pub(crate) struct Serving {
    sandbox: Sandbox,
    pid_file: PathBuf,
}

/// What `start_detached` found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detached {
    /// A sandbox already ran from the directory.
    AlreadyRunning { pid: i32 },
    /// A background sandbox was started and is ready.
    Started { pid: i32 },
}

/// What `hk8s sandbox status` reports.
#[derive(Debug, Clone)]
pub(crate) enum Status {
    Stopped,
    Running {
        pid: i32,
        url: String,
        version: String,
        namespaces: usize,
        /// How the kubelet enforces CPU and memory limits, from the node's annotation.
        limits: Option<String>,
        /// How pods are isolated (namespaces, or which features are off and why).
        isolation: Option<String>,
    },
}

impl StateDir {
    /// The given directory, else the default one (`$HK8S_SANDBOX_DIR`, else the user's
    /// data directory).
    pub(crate) fn new(path: Option<PathBuf>) -> Self {
        Self {
            path: path.unwrap_or_else(SandboxConfig::default_state_dir),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Where a started sandbox keeps its kubeconfig (context `hk8s-sandbox`).
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        paths::kubeconfig_path(&self.path)
    }

    fn log(&self) -> PathBuf {
        paths::sandbox_log_path(&self.path)
    }

    fn pid_file(&self) -> PathBuf {
        paths::sandbox_pid_path(&self.path)
    }

    /// The pid of the sandbox serving from this directory, if one does.
    pub(crate) fn running(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let alive = kill(Pid::from_raw(pid), None).is_ok();
        alive.then_some(pid)
    }

    /// The kubeconfig of a sandbox that has been started at least once.
    pub(crate) fn started_kubeconfig(&self) -> Result<PathBuf, LifecycleError> {
        let path = self.kubeconfig();
        if path.exists() {
            Ok(path)
        } else {
            Err(LifecycleError::NeverStarted {
                dir: self.path.clone(),
            })
        }
    }

    /// Starts the sandbox in this process (with the process runtime) and records that it
    /// runs; it serves until [`Serving::shutdown`].
    pub(crate) async fn serve(&self, port: u16) -> Result<Serving, LifecycleError> {
        if let Some(pid) = self.running() {
            return Err(LifecycleError::AlreadyRunning {
                dir: self.path.clone(),
                pid,
            });
        }
        let mut config = SandboxConfig::new(&self.path);
        config.port = port;
        let sandbox = Sandbox::start(config)
            .await
            .map_err(|source| LifecycleError::Start {
                dir: self.path.clone(),
                source,
            })?;
        let pid_file = self.pid_file();
        std::fs::write(&pid_file, std::process::id().to_string()).map_err(|source| {
            LifecycleError::Io {
                action: "writing",
                path: pid_file.clone(),
                source,
            }
        })?;
        Ok(Serving { sandbox, pid_file })
    }

    /// Starts a background sandbox (`hk8s sandbox up` in a process group of its own,
    /// logging to `sandbox.log`) unless one runs, and waits until it serves.
    pub(crate) async fn start_detached(&self, port: u16) -> Result<Detached, LifecycleError> {
        if let Some(pid) = self.running() {
            return Ok(Detached::AlreadyRunning { pid });
        }
        let io = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| LifecycleError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&self.path).map_err(io("creating", &self.path))?;
        let _ = std::fs::remove_file(self.pid_file());
        let log_path = self.log();
        let log = std::fs::File::create(&log_path).map_err(io("creating", &log_path))?;
        let log_copy = log.try_clone().map_err(io("opening", &log_path))?;
        let mut command = self.daemon_command(port)?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(log_copy)
            .stderr(log)
            .spawn()
            .map_err(LifecycleError::Spawn)?;
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = child.try_wait().map_err(LifecycleError::Spawn)? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(LifecycleError::ExitedEarly {
                    status,
                    log: log.trim().to_string(),
                });
            }
            if self.running() == Some(child.id() as i32) {
                return Ok(Detached::Started {
                    pid: child.id() as i32,
                });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(LifecycleError::NotReady { log: log_path });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The daemon: this executable's `sandbox up`, detached from the terminal's process group.
    fn daemon_command(&self, port: u16) -> Result<std::process::Command, LifecycleError> {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().map_err(LifecycleError::Executable)?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("sandbox")
            .arg("up")
            .arg("--state-dir")
            .arg(&self.path)
            .arg("--port")
            .arg(port.to_string())
            .process_group(0);
        Ok(cmd)
    }

    /// Stops the sandbox serving from this directory (SIGTERM, then SIGKILL after
    /// [`STOP_WITHIN`]); returns its pid, or `None` when none ran.
    pub(crate) async fn stop(&self) -> Result<Option<i32>, LifecycleError> {
        let Some(pid) = self.running() else {
            let _ = std::fs::remove_file(self.pid_file());
            return Ok(None);
        };
        let target = Pid::from_raw(pid);
        kill(target, Signal::SIGTERM).map_err(|source| LifecycleError::Signal { pid, source })?;
        let deadline = Instant::now() + STOP_WITHIN;
        while kill(target, None).is_ok() {
            if Instant::now() > deadline {
                let _ = kill(target, Signal::SIGKILL);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = std::fs::remove_file(self.pid_file());
        Ok(Some(pid))
    }

    /// Whether a sandbox runs from here and, when it does, what its API server says.
    pub(crate) async fn status(&self) -> Result<Status, LifecycleError> {
        let Some(pid) = self.running() else {
            return Ok(Status::Stopped);
        };
        let path = self.kubeconfig();
        let kubeconfig = Kubeconfig::read_from(&path)
            .map_err(|source| LifecycleError::Kubeconfig { path, source })?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(LifecycleError::Config)?;
        let url = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(LifecycleError::Client)?;
        let version = tokio::time::timeout(Duration::from_secs(5), client.apiserver_version())
            .await
            .map_err(LifecycleError::Silent)?
            .map_err(LifecycleError::Version)?;
        let namespaces = kube::Api::<Namespace>::all(client.clone())
            .list(&Default::default())
            .await?
            .items
            .len();
        let node = kube::Api::<Node>::all(client)
            .get_opt(hk8s_sandbox::NODE_NAME)
            .await;
        let mut annotations = node
            .ok()
            .flatten()
            .and_then(|node| node.metadata.annotations)
            .unwrap_or_default();
        let limits = annotations.remove(hk8s_sandbox::LIMITS_ANNOTATION);
        let isolation = annotations.remove(hk8s_sandbox::ISOLATION_ANNOTATION);
        Ok(Status::Running {
            pid,
            url,
            version: version.git_version,
            namespaces,
            limits,
            isolation,
        })
    }
}

impl Serving {
    pub(crate) fn url(&self) -> String {
        self.sandbox.url()
    }

    pub(crate) fn kubeconfig(&self) -> &Path {
        self.sandbox.kubeconfig_path()
    }

    /// Stops serving and records that no sandbox runs any more.
    pub(crate) async fn shutdown(self) {
        self.sandbox.shutdown().await;
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

impl Detached {
    /// What to tell the learner, with the line that points kubectl at it.
    pub(crate) fn describe(&self, dir: &StateDir) -> String {
        let export = format!("export KUBECONFIG={}", dir.kubeconfig().display());
        match self {
            Detached::AlreadyRunning { pid } => {
                format!("the sandbox already runs (pid {pid})\n  {export}")
            }
            Detached::Started { pid } => format!(
                "hk8s sandbox running in the background (pid {pid}); stop it with `hk8s sandbox down`\n  {export}"
            ),
        }
    }
}
