//! Which cluster hk8s talks to: the sandbox (`--sandbox`), else the kubeconfig's current
//! context or `--context`; with none, the sandbox is offered (and started under --yes).

use crate::cli::GlobalArgs;
use crate::ui::Ui;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The context name the sandbox writes into its kubeconfig.
pub const SANDBOX_CONTEXT: &str = hk8s_sandbox::CONTEXT;

/// The cluster and namespace a command works on.
#[derive(Clone)]
pub struct Target {
    pub client: Client,
    /// The kubeconfig context name (`hk8s-sandbox` for the sandbox).
    pub context: String,
    /// The API server URL.
    pub server: String,
    pub namespace: String,
    pub sandbox: bool,
    /// The kubeconfig file that reaches this cluster, for the kubectl equivalents.
    pub kubeconfig: Option<PathBuf>,
}

impl Target {
    /// The key progress is saved under: one per cluster and namespace.
    pub fn progress_key(&self) -> String {
        progress_key(self.sandbox, &self.context, &self.server, &self.namespace)
    }

    /// A one-line description printed before anything changes.
    pub fn describe(&self, ui: &Ui) -> String {
        let kind = if self.sandbox { " (hk8s sandbox)" } else { "" };
        format!(
            "cluster {}{kind} at {}, namespace {}",
            ui.bold(&self.context),
            self.server,
            ui.bold(&self.namespace)
        )
    }
}

pub fn progress_key(sandbox: bool, context: &str, server: &str, namespace: &str) -> String {
    if sandbox {
        format!("sandbox/{namespace}")
    } else {
        format!("{context}@{server}/{namespace}")
    }
}

/// Why no cluster could be used; each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no Kubernetes cluster is configured ({0}).\n  To use the built-in sandbox: `hk8s --sandbox …` (or answer yes when asked).\n  To use your own: create one (kind create cluster, minikube start, k3d cluster create, or gcloud container clusters get-credentials …) and check `kubectl config current-context`."
    )]
    NoCluster(String),
    #[error("the kubeconfig has no context named {0:?}; `kubectl config get-contexts` lists them")]
    NoContext(String),
    #[error("cannot read the kubeconfig {path}: {message}")]
    BadKubeconfig { path: String, message: String },
    #[error(
        "the cluster {context} at {server} does not answer: {message}.\n  Is it running? (`kubectl cluster-info`; for the sandbox `hk8s sandbox status`, or pass --sandbox to start it)"
    )]
    Unreachable {
        context: String,
        server: String,
        message: String,
    },
    #[error(
        "the cluster {context} rejected hk8s's credentials (401 Unauthorized): they may have expired.\n  Log in again with your provider (e.g. `gcloud container clusters get-credentials <name>`), then retry"
    )]
    Unauthorized { context: String },
    #[error("the built-in sandbox did not start: {0}.\n  Try `hk8s sandbox up` to see its output")]
    SandboxStart(String),
}

/// Turns a kube error into what happened and what to do, for the common cases.
pub fn explain_kube_error(err: &kube::Error, target: &Target) -> String {
    match err {
        kube::Error::Api(status) if status.code == 401 => ClusterError::Unauthorized {
            context: target.context.clone(),
        }
        .to_string(),
        kube::Error::Api(status) if status.code == 403 => format!(
            "forbidden: {}.\n  Your user on {} may not do this in namespace {}; ask the cluster admin for a Role with edit rights there (`kubectl auth can-i --list -n {}`)",
            status.message, target.context, target.namespace, target.namespace
        ),
        kube::Error::Api(status) => format!(
            "the API server answered {}: {}",
            status.code, status.message
        ),
        other => ClusterError::Unreachable {
            context: target.context.clone(),
            server: target.server.clone(),
            message: other.to_string(),
        }
        .to_string(),
    }
}

/// Chooses the cluster and builds a client; does not contact it yet.
pub async fn connect(global: &GlobalArgs, ui: &Ui) -> anyhow::Result<Target> {
    if global.sandbox {
        return sandbox_target(global, ui).await;
    }
    match kubeconfig_target(global).await {
        Ok(target) => Ok(target),
        Err(ClusterError::NoCluster(why)) => {
            let question = format!(
                "No Kubernetes cluster is configured ({why}). Start hk8s's built-in sandbox?"
            );
            if ui.confirm(&question, global.yes) {
                sandbox_target(global, ui).await
            } else {
                Err(ClusterError::NoCluster(why).into())
            }
        }
        Err(other) => Err(other.into()),
    }
}

/// Reads the current context and server without contacting the cluster.
pub fn identify(global: &GlobalArgs) -> Option<(bool, String, String)> {
    if global.sandbox {
        return Some((true, SANDBOX_CONTEXT.into(), String::new()));
    }
    let (config, _) = load_kubeconfig(global).ok()?;
    let context = global.context.clone().or(config.current_context.clone())?;
    let cluster = config
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .cluster
        .clone();
    let server = config
        .clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .server
        .clone()
        .unwrap_or_default();
    Some((context == SANDBOX_CONTEXT, context, server))
}

fn load_kubeconfig(global: &GlobalArgs) -> Result<(Kubeconfig, Option<PathBuf>), ClusterError> {
    let path = global.kubeconfig.clone().or_else(|| {
        std::env::var_os("KUBECONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let path = match path {
        Some(p) => Some(p),
        None => home_dir()
            .map(|h| h.join(".kube/config"))
            .filter(|p| p.exists()),
    };
    let Some(path) = path else {
        return Err(ClusterError::NoCluster(
            "no ~/.kube/config and KUBECONFIG is unset".into(),
        ));
    };
    if global.kubeconfig.is_some() && !path.exists() {
        return Err(ClusterError::BadKubeconfig {
            path: path.display().to_string(),
            message: "no such file".into(),
        });
    }
    let config = if std::env::var_os("KUBECONFIG").is_some() && global.kubeconfig.is_none() {
        Kubeconfig::read()
    } else {
        Kubeconfig::read_from(&path)
    }
    .map_err(|e| ClusterError::BadKubeconfig {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok((config, Some(path)))
}

async fn kubeconfig_target(global: &GlobalArgs) -> Result<Target, ClusterError> {
    let (config, path) = load_kubeconfig(global)?;
    let context = match global.context.clone().or(config.current_context.clone()) {
        Some(c) => c,
        None => {
            return Err(ClusterError::NoCluster(
                "the kubeconfig has no current context".into(),
            ));
        }
    };
    if !config.contexts.iter().any(|c| c.name == context) {
        return Err(ClusterError::NoContext(context));
    }
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        ..Default::default()
    };
    let kube_config = Config::from_custom_kubeconfig(config, &options)
        .await
        .map_err(|e| match e {
            KubeconfigError::LoadContext(name) => ClusterError::NoContext(name),
            other => ClusterError::BadKubeconfig {
                path: path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                message: other.to_string(),
            },
        })?;
    let server = kube_config.cluster_url.to_string();
    let client = Client::try_from(kube_config).map_err(|e| ClusterError::BadKubeconfig {
        path: path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        message: e.to_string(),
    })?;
    let sandbox = context == SANDBOX_CONTEXT;
    Ok(Target {
        client,
        context,
        server: server.trim_end_matches('/').to_string(),
        namespace: global.namespace.clone(),
        sandbox,
        kubeconfig: global.kubeconfig.clone().or(path),
    })
}

/// Uses the running sandbox, starting it detached (`hk8s sandbox up --detach`) when needed.
async fn sandbox_target(global: &GlobalArgs, ui: &Ui) -> anyhow::Result<Target> {
    let path = match sandbox_kubeconfig().await {
        Some(path) => path,
        None => {
            eprintln!(
                "Starting the built-in sandbox ({})…",
                ui.dim("hk8s sandbox up --detach")
            );
            start_sandbox().await?;
            sandbox_kubeconfig().await.ok_or_else(|| {
                ClusterError::SandboxStart(
                    "it started but `hk8s sandbox kubeconfig` gives no file".into(),
                )
            })?
        }
    };
    let mut sandbox_global = global.clone();
    sandbox_global.kubeconfig = Some(path);
    sandbox_global.context = None;
    sandbox_global.sandbox = false;
    let mut target = kubeconfig_target(&sandbox_global).await?;
    target.sandbox = true;
    Ok(target)
}

/// The running sandbox's kubeconfig path, from `hk8s sandbox kubeconfig`.
async fn sandbox_kubeconfig() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let status = tokio::process::Command::new(&exe)
        .args(["sandbox", "status"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .ok()?;
    if !status.success() {
        return None;
    }
    let out = tokio::process::Command::new(&exe)
        .args(["sandbox", "kubeconfig"])
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = PathBuf::from(text.lines().last()?.trim());
    (out.status.success() && Path::new(&path).is_file()).then_some(path)
}

async fn start_sandbox() -> Result<(), ClusterError> {
    let exe = std::env::current_exe().map_err(|e| ClusterError::SandboxStart(e.to_string()))?;
    let mut child = tokio::process::Command::new(exe)
        .args(["sandbox", "up", "--detach"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .spawn()
        .map_err(|e| ClusterError::SandboxStart(e.to_string()))?;
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .map_err(|_| {
            ClusterError::SandboxStart("`hk8s sandbox up --detach` took over 60 s".into())
        })?
        .map_err(|e| ClusterError::SandboxStart(e.to_string()))?;
    if !status.success() {
        return Err(ClusterError::SandboxStart(format!(
            "`hk8s sandbox up --detach` exited with {status}"
        )));
    }
    Ok(())
}

/// Contacts the cluster once, to fail early with a clear message.
pub async fn ensure_reachable(target: &Target) -> anyhow::Result<String> {
    match tokio::time::timeout(Duration::from_secs(15), target.client.apiserver_version()).await {
        Ok(Ok(info)) => Ok(info.git_version),
        Ok(Err(err)) => Err(anyhow::anyhow!(explain_kube_error(&err, target))),
        Err(_) => Err(ClusterError::Unreachable {
            context: target.context.clone(),
            server: target.server.clone(),
            message: "no answer within 15 s".into(),
        }
        .into()),
    }
}

/// The user's home directory, from $HOME.
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}
