//! The write path of the API, independent of HTTP, one file a step: decode, default and
//! validate ([`defaults`], [`validate`]), [`create`], [`update`], [`patch`], server-side
//! [`apply`] with field managers ([`fields`]), [`delete`] with owner garbage collection,
//! [`namespace`] termination, and the [`bootstrap`] of a new cluster.

mod access;
mod apiserver_service;
mod apply;
mod bootstrap;
mod clusterroles;
mod create;
pub(crate) mod defaults;
mod delete;
mod ephemeral;
mod fields;
mod namespace;
mod networking;
pub(crate) mod patch;
mod podupdate;
mod serviceaccount;
mod update;
pub(crate) mod validate;
pub(crate) mod workloads;

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::Resource;
use crate::apiserver::storage::Store;
use defaults::Taken;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;
use validate::FieldValidation;

/// Shared state of a running API server.
pub struct Api {
    pub store: Store,
    pub state_dir: PathBuf,
    /// Pods on a node are marked Terminating on delete and removed by the kubelet
    /// (or after their grace period plus 2 s if nothing does it).
    pub graceful_pods: bool,
    /// Signs and verifies ServiceAccount tokens.
    pub(crate) issuer: crate::apiserver::tokens::Issuer,
    tasks: Mutex<Option<JoinSet<()>>>,
}

/// Options common to writes.
#[derive(Debug, Clone)]
pub struct WriteOpts {
    pub manager: String,
    pub validation: FieldValidation,
    pub dry_run: bool,
    pub force: bool,
}

impl Default for WriteOpts {
    fn default() -> Self {
        WriteOpts {
            manager: "hk8s-sandbox".into(),
            validation: FieldValidation::Strict,
            dry_run: false,
            force: false,
        }
    }
}

/// How a patch body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

/// A patch as sent: how to read it, and what it says.
#[derive(Debug, Clone)]
pub struct PatchBody {
    pub kind: PatchKind,
    pub body: Value,
}

/// The result of a write.
#[derive(Debug)]
pub struct Outcome {
    pub object: Arc<Value>,
    pub warnings: Vec<String>,
    pub created: bool,
}

/// What DELETE asks for.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub grace_period: Option<i64>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

fn ns_of(v: &Value) -> &str {
    v["metadata"]["namespace"].as_str().unwrap_or_default()
}

impl Api {
    /// The API over an opened store.
    pub(crate) fn new(
        store: Store,
        state_dir: PathBuf,
        graceful_pods: bool,
        issuer: crate::apiserver::tokens::Issuer,
    ) -> Arc<Api> {
        Arc::new(Api {
            store,
            state_dir,
            graceful_pods,
            issuer,
            tasks: Mutex::new(Some(JoinSet::new())),
        })
    }

    /// Runs a background task that is cancelled when the sandbox shuts down.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        if let Some(set) = self.tasks.lock().expect("task lock").as_mut() {
            // Finished tasks stay in the set until joined; drop them as new ones come.
            while set.try_join_next().is_some() {}
            set.spawn(fut);
        }
    }

    /// Cancels every background task (watches, reapers, the stand-in kubelet).
    pub async fn stop_tasks(&self) {
        let set = self.tasks.lock().expect("task lock").take();
        if let Some(mut set) = set {
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
    }

    fn taken(&self, r: &Resource) -> Taken {
        let mut t = Taken::default();
        if r.kind == "Ingress"
            && let Some(classes) =
                crate::apimachinery::resources::by_kind("networking.k8s.io/v1", "IngressClass")
        {
            t.default_ingress_class = networking::default_class(&self.store.list(classes, None).0);
        }
        if r.kind == "Service" {
            t.plan = crate::apimachinery::network::AddressPlan::load(&self.state_dir);
            let (svcs, _) = self.store.list(r, None);
            for s in svcs {
                if let Some(ip) = s["spec"]["clusterIP"].as_str() {
                    t.cluster_ips.insert(ip.to_string());
                }
                for p in s["spec"]["ports"].as_array().into_iter().flatten() {
                    if let Some(np) = p["nodePort"].as_i64() {
                        t.node_ports.insert(np);
                    }
                }
            }
        }
        t
    }

    /// Checks apiVersion/kind against the URL's resource, filling them when absent.
    fn check_type(r: &Resource, obj: &mut Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        let want = r.api_version();
        match obj["apiVersion"].as_str() {
            None | Some("") => obj["apiVersion"] = json!(want),
            Some(v) if v != want => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({want})"
                )));
            }
            _ => {}
        }
        match obj["kind"].as_str() {
            None | Some("") => obj["kind"] = json!(r.kind),
            Some(k) if k != r.kind => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    r.kind
                )));
            }
            _ => {}
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        Ok(())
    }

    fn check_namespace(r: &Resource, url_ns: &str, obj: &mut Value) -> Result<(), ApiError> {
        if r.namespaced {
            match obj["metadata"]["namespace"].as_str() {
                Some(n) if !n.is_empty() && n != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => obj["metadata"]["namespace"] = json!(url_ns),
            }
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        Ok(())
    }
}
