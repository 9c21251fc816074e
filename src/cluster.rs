//! Which cluster hk8s talks to: the sandbox (`--sandbox`), else the kubeconfig's current
//! context or `--context`; with none, the sandbox is offered (and started under --yes).

use crate::sandbox_ctl::{LifecycleError, StateDir};
use crate::state::AppState;
use crate::ui::Ui;
use hk8s_sandbox::CONTEXT;
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};
use std::path::PathBuf;
use std::time::Duration;

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
    pub(crate) fn progress_key(&self) -> String {
        progress_key(self.sandbox, &self.context, &self.server, &self.namespace)
    }

    /// A one-line description printed before anything changes.
    pub(crate) fn describe(&self, ui: &Ui) -> String {
        let kind = if self.sandbox { " (hk8s sandbox)" } else { "" };
        format!(
            "cluster {}{kind} at {}, namespace {}",
            ui.bold(&self.context),
            self.server,
            ui.bold(&self.namespace)
        )
    }
}

fn progress_key(sandbox: bool, context: &str, server: &str, namespace: &str) -> String {
    if sandbox {
        format!("sandbox/{namespace}")
    } else {
        format!("{context}@{server}/{namespace}")
    }
}

/// Why no cluster could be used; each says what to do next.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
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
    #[error(
        "the built-in sandbox did not start: {}.\n  Try `hk8s sandbox up` to see its output",
        crate::error_chain(.0)
    )]
    SandboxStart(LifecycleError),
    #[error(
        "forbidden: {message}.\n  Your user on {context} may not do this in namespace {namespace}; ask the cluster admin for a Role with edit rights there (`kubectl auth can-i --list -n {namespace}`)"
    )]
    Forbidden {
        message: String,
        context: String,
        namespace: String,
    },
    #[error("the API server answered {code}: {message}")]
    Api { code: u16, message: String },
}

impl ClusterError {
    /// What a kube error means for the learner, and what to do, for the common cases.
    pub(crate) fn from_kube(err: &kube::Error, target: &Target) -> Self {
        match err {
            kube::Error::Api(status) if status.code == 401 => ClusterError::Unauthorized {
                context: target.context.clone(),
            },
            kube::Error::Api(status) if status.code == 403 => ClusterError::Forbidden {
                message: status.message.clone(),
                context: target.context.clone(),
                namespace: target.namespace.clone(),
            },
            kube::Error::Api(status) => ClusterError::Api {
                code: status.code,
                message: status.message.clone(),
            },
            other => ClusterError::Unreachable {
                context: target.context.clone(),
                server: target.server.clone(),
                message: other.to_string(),
            },
        }
    }
}

/// How to choose the cluster: the global options, in the program's terms.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClusterOptions {
    /// A kubeconfig context instead of the current one.
    pub context: Option<String>,
    /// A kubeconfig file instead of `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// The namespace the tutorial runs in.
    pub namespace: String,
    /// Use the built-in sandbox, starting it when needed.
    pub sandbox: bool,
    /// Start the sandbox without asking when no cluster is configured.
    pub yes: bool,
}

/// Which cluster the options point at, read from the kubeconfig without contacting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub sandbox: bool,
    pub context: String,
    pub server: String,
}

/// Chooses the cluster and builds a client; does not contact it yet. A learner who once
/// chose the sandbox gets it again unless they name a context or kubeconfig.
pub(crate) async fn connect(options: &ClusterOptions, ui: &Ui) -> Result<Target, ClusterError> {
    if options.sandbox {
        remember_sandbox(ui);
        return sandbox_target(options, ui).await;
    }
    if remembered_sandbox(options) {
        eprintln!(
            "{}",
            ui.dim("Using the built-in sandbox, as you chose before (pass --context or --kubeconfig for another cluster).")
        );
        return sandbox_target(options, ui).await;
    }
    match kubeconfig_target(options).await {
        Ok(target) => Ok(target),
        Err(ClusterError::NoCluster(why)) => {
            let question = format!(
                "No Kubernetes cluster is configured ({why}). Start hk8s's built-in sandbox?"
            );
            if ui.confirm(&question, options.yes) {
                remember_sandbox(ui);
                sandbox_target(options, ui).await
            } else {
                Err(ClusterError::NoCluster(why))
            }
        }
        Err(other) => Err(other),
    }
}

/// Whether the learner chose the sandbox before and names no other cluster now.
fn remembered_sandbox(options: &ClusterOptions) -> bool {
    options.context.is_none() && options.kubeconfig.is_none() && AppState::load().sandbox_chosen
}

/// Remembers the choice of the sandbox; failing to is only worth a warning.
fn remember_sandbox(ui: &Ui) {
    if let Err(err) = AppState::remember_sandbox() {
        ui.warn(&format!(
            "could not remember that you chose the sandbox ({err}); pass --sandbox next time"
        ));
    }
}

/// Reads the current context and server without contacting the cluster.
pub(crate) fn identify(options: &ClusterOptions) -> Option<Identity> {
    if options.sandbox || remembered_sandbox(options) {
        return Some(Identity {
            sandbox: true,
            context: CONTEXT.into(),
            server: String::new(),
        });
    }
    let (config, _) = load_kubeconfig(options).ok()?;
    let context = options.context.clone().or(config.current_context.clone())?;
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
    Some(Identity {
        sandbox: context == CONTEXT,
        context,
        server,
    })
}

impl Identity {
    /// The key progress is saved under for this cluster and `namespace`.
    pub(crate) fn progress_key(&self, namespace: &str) -> String {
        progress_key(self.sandbox, &self.context, &self.server, namespace)
    }
}

fn load_kubeconfig(
    options: &ClusterOptions,
) -> Result<(Kubeconfig, Option<PathBuf>), ClusterError> {
    let read = |path: &PathBuf| {
        Kubeconfig::read_from(path).map_err(|e| ClusterError::BadKubeconfig {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    };
    if let Some(path) = &options.kubeconfig {
        if !path.exists() {
            return Err(ClusterError::BadKubeconfig {
                path: path.display().to_string(),
                message: "no such file".into(),
            });
        }
        return Ok((read(path)?, Some(path.clone())));
    }
    let paths = match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(value) => kubeconfig_env_paths(&value)?,
        None => match home_dir().map(|h| h.join(".kube/config")) {
            Some(path) if path.exists() => vec![path],
            _ => {
                return Err(ClusterError::NoCluster(
                    "no ~/.kube/config and KUBECONFIG is unset".into(),
                ));
            }
        },
    };
    let mut merged = Kubeconfig::default();
    for path in &paths {
        merged = merged
            .merge(read(path)?)
            .map_err(|e| ClusterError::BadKubeconfig {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
    }
    Ok((merged, paths.into_iter().next()))
}

/// The files `KUBECONFIG` names that exist; as for kubectl, missing ones are skipped, and
/// none at all means no cluster is configured.
fn kubeconfig_env_paths(value: &std::ffi::OsStr) -> Result<Vec<PathBuf>, ClusterError> {
    let named: Vec<PathBuf> = std::env::split_paths(value)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    let existing: Vec<PathBuf> = named.iter().filter(|p| p.exists()).cloned().collect();
    if existing.is_empty() {
        let names: Vec<String> = named.iter().map(|p| p.display().to_string()).collect();
        return Err(ClusterError::NoCluster(format!(
            "KUBECONFIG names {}, which does not exist",
            names.join(", ")
        )));
    }
    Ok(existing)
}

async fn kubeconfig_target(options: &ClusterOptions) -> Result<Target, ClusterError> {
    let (config, path) = load_kubeconfig(options)?;
    let bad_kubeconfig = |message: String| ClusterError::BadKubeconfig {
        path: path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        message,
    };
    let Some(context) = options.context.clone().or(config.current_context.clone()) else {
        return Err(ClusterError::NoCluster(
            "the kubeconfig has no current context".into(),
        ));
    };
    if !config.contexts.iter().any(|c| c.name == context) {
        return Err(ClusterError::NoContext(context));
    }
    let kube_options = KubeConfigOptions {
        context: Some(context.clone()),
        ..Default::default()
    };
    let kube_config = Config::from_custom_kubeconfig(config, &kube_options)
        .await
        .map_err(|e| match e {
            KubeconfigError::LoadContext(name) => ClusterError::NoContext(name),
            other => bad_kubeconfig(other.to_string()),
        })?;
    let server = kube_config.cluster_url.to_string();
    let client = Client::try_from(kube_config).map_err(|e| bad_kubeconfig(e.to_string()))?;
    let sandbox = context == CONTEXT;
    Ok(Target {
        client,
        context,
        server: server.trim_end_matches('/').to_string(),
        namespace: options.namespace.clone(),
        sandbox,
        kubeconfig: options.kubeconfig.clone().or(path),
    })
}

/// Uses the running sandbox, starting it in the background when needed.
async fn sandbox_target(options: &ClusterOptions, ui: &Ui) -> Result<Target, ClusterError> {
    let dir = StateDir::new(None);
    if dir.running().is_none() {
        eprintln!(
            "Starting the built-in sandbox ({})…",
            ui.dim("hk8s sandbox up --detach")
        );
        let detached = dir
            .start_detached(0)
            .await
            .map_err(ClusterError::SandboxStart)?;
        eprintln!("{}", detached.describe(&dir));
    }
    let sandbox_options = ClusterOptions {
        kubeconfig: Some(dir.kubeconfig()),
        context: None,
        sandbox: false,
        ..options.clone()
    };
    let mut target = kubeconfig_target(&sandbox_options).await?;
    target.sandbox = true;
    Ok(target)
}

/// Contacts the cluster once, to fail early with a clear message; returns its version.
pub(crate) async fn ensure_reachable(target: &Target) -> Result<String, ClusterError> {
    match tokio::time::timeout(Duration::from_secs(15), target.client.apiserver_version()).await {
        Ok(Ok(info)) => Ok(info.git_version),
        Ok(Err(err)) => Err(ClusterError::from_kube(&err, target)),
        Err(_) => Err(ClusterError::Unreachable {
            context: target.context.clone(),
            server: target.server.clone(),
            message: "no answer within 15 s".into(),
        }),
    }
}

/// The user's home directory, from $HOME.
pub(crate) fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}
