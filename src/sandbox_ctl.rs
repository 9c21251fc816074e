//! The built-in sandbox's life on this machine, for `hk8s sandbox …` and `--sandbox` alike:
//! its state directory, whether a sandbox runs from it, its kubeconfig, starting it (in this
//! process, or as a background daemon), stopping it, and its status.
//!
//! Whether one runs is decided in one place, [`StateDir::holder`], from the lock the serving
//! process holds on its state directory ([`hk8s_sandbox::instance`]): a stale pid never
//! blocks a start, and no process but the sandbox is ever signalled.

use hk8s_sandbox::instance::{self, Holder};
use hk8s_sandbox::{Sandbox, SandboxConfig, SandboxError, paths};
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::unix::fs::OpenOptionsExt;
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
    #[error(
        "the sandbox in {} (pid {pid}) is still starting after {} s; see {}",
        dir.display(),
        READY_WITHIN.as_secs(),
        log.display()
    )]
    StillStarting {
        dir: PathBuf,
        pid: i32,
        log: PathBuf,
    },
    #[error("reading the sandbox lock in {}", dir.display())]
    Lock {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
        /// Why the API server is not ready (its store cannot be written: a full disk).
        unready: Option<String>,
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

    /// The pid of the sandbox serving (or starting) from this directory, if one does.
    pub(crate) fn running(&self) -> Option<i32> {
        self.holder().ok().flatten().map(|h| h.pid)
    }

    /// The process holding this directory's sandbox lock, if any.
    fn holder(&self) -> Result<Option<Holder>, LifecycleError> {
        instance::holder(&self.path).map_err(|source| LifecycleError::Lock {
            dir: self.path.clone(),
            source,
        })
    }

    /// Waits until the sandbox that holds the lock serves (or is gone).
    async fn serving(&self, started: Holder) -> Result<Option<Holder>, LifecycleError> {
        let deadline = Instant::now() + READY_WITHIN;
        let mut holder = Some(started);
        while let Some(h) = &holder {
            if h.url.is_some() {
                break;
            }
            if Instant::now() > deadline {
                return Err(LifecycleError::StillStarting {
                    dir: self.path.clone(),
                    pid: h.pid,
                    log: self.log(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            holder = self.holder()?;
        }
        Ok(holder)
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
        let mut config = SandboxConfig::new(&self.path);
        config.port = port;
        let sandbox = Sandbox::start(config)
            .await
            .map_err(|source| match source {
                SandboxError::AlreadyRunning {
                    dir,
                    pid: Some(pid),
                } => LifecycleError::AlreadyRunning { dir, pid },
                source => LifecycleError::Start {
                    dir: self.path.clone(),
                    source,
                },
            })?;
        // For people and scripts only (the lock decides), so a full disk does not stop it.
        let pid_file = self.pid_file();
        if let Err(e) = std::fs::write(&pid_file, std::process::id().to_string()) {
            tracing::warn!(path = %pid_file.display(), error = %e, "could not write the pid file");
        }
        Ok(Serving { sandbox, pid_file })
    }

    /// Starts a background sandbox (`hk8s sandbox up` in a process group of its own,
    /// logging to `sandbox.log`) unless one runs, and waits until it serves.
    pub(crate) async fn start_detached(&self, port: u16) -> Result<Detached, LifecycleError> {
        if let Some(holder) = self.holder()?
            && let Some(holder) = self.serving(holder).await?
        {
            return Ok(Detached::AlreadyRunning { pid: holder.pid });
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
        let log_path = self.log();
        // Appended to, so a `up` that loses a race cannot truncate the winner's log; this
        // run's lines start at `from`.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(io("opening", &log_path))?;
        let from = log.metadata().map(|m| m.len()).unwrap_or(0);
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
                return Err(self.lost_or_failed(status, &log_path, from));
            }
            let pid = child.id() as i32;
            if let Some(Holder {
                pid: p,
                url: Some(_),
            }) = self.holder()?
                && p == pid
            {
                return Ok(Detached::Started { pid });
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(LifecycleError::NotReady { log: log_path });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Why a background sandbox exited before it served: another `up` won the directory,
    /// or what it logged.
    fn lost_or_failed(&self, status: ExitStatus, log_path: &Path, from: u64) -> LifecycleError {
        if let Ok(Some(holder)) = self.holder() {
            return LifecycleError::AlreadyRunning {
                dir: self.path.clone(),
                pid: holder.pid,
            };
        }
        let log = std::fs::read(log_path).unwrap_or_default();
        let log = String::from_utf8_lossy(log.get(from as usize..).unwrap_or_default())
            .trim()
            .to_string();
        if log.is_empty()
            && let Err(e) = self.probe_write()
        {
            return LifecycleError::Io {
                action: "the background sandbox exited before it was ready and could not log why: writing to",
                path: self.path.clone(),
                source: e,
            };
        }
        LifecycleError::ExitedEarly { status, log }
    }

    /// Whether the state directory takes a write (a full disk swallows the daemon's log).
    fn probe_write(&self) -> std::io::Result<()> {
        let probe = self.path.join(".hk8s-write-probe");
        let result = std::fs::write(&probe, vec![0u8; 1 << 20]);
        let _ = std::fs::remove_file(&probe);
        result
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
    /// Only the process holding the directory's lock is signalled, and SIGKILL only while it
    /// still holds it.
    pub(crate) async fn stop(&self) -> Result<Option<i32>, LifecycleError> {
        let Some(Holder { pid, .. }) = self.holder()? else {
            let _ = std::fs::remove_file(self.pid_file());
            return Ok(None);
        };
        let target = Pid::from_raw(pid);
        kill(target, Signal::SIGTERM).map_err(|source| LifecycleError::Signal { pid, source })?;
        let deadline = Instant::now() + STOP_WITHIN;
        while self.running() == Some(pid) {
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
        let Some(holder) = self.holder()? else {
            return Ok(Status::Stopped);
        };
        let Some(Holder { pid, .. }) = self.serving(holder).await? else {
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
        let unready = readiness(&client).await.err();
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
            unready,
        })
    }
}

/// `/readyz`: why the sandbox is not ready, if it is not.
async fn readiness(client: &kube::Client) -> Result<(), String> {
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    match client.request_text(request).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) => Err(status
            .message
            .lines()
            .find_map(|l| l.strip_prefix("[-]"))
            .unwrap_or(&status.message)
            .to_string()),
        Err(e) => Err(e.to_string()),
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
