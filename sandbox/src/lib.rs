//! hk8s-sandbox: a built-in Kubernetes API server for learners without a cluster.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hk8s_sandbox::SandboxError> {
//! use hk8s_sandbox::{Sandbox, SandboxConfig};
//! let sandbox = Sandbox::start(SandboxConfig::new("/tmp/hk8s-state")).await?;
//! let client = sandbox.client()?; // a kube::Client over HTTPS with the sandbox's token
//! println!("KUBECONFIG={}", sandbox.kubeconfig_path().display());
//! sandbox.shutdown().await;
//! # drop(client); Ok(()) }
//! ```
//!
//! # What the API server does, and what it leaves to controllers and the kubelet
//!
//! Controllers and the kubelet are kube-rs clients of this server like any other:
//!
//! - **Garbage collection**: deleting an object deletes its dependents (objects whose
//!   `metadata.ownerReferences` name its uid) synchronously, recursively, for
//!   `propagationPolicy` Background (the default) and Foreground; Orphan removes the owner
//!   reference instead. No GC controller is needed.
//! - **Namespaces**: deleting one marks it `Terminating` (creates in it get 403), deletes
//!   everything in it, then removes it.
//! - **Pod deletion**: with `SandboxConfig::graceful_pod_deletion` (default), deleting a
//!   pod that has `spec.nodeName` and is not finished sets `deletionTimestamp` (now + grace)
//!   and `deletionGracePeriodSeconds`; the kubelet stops the processes and then deletes the
//!   pod with `gracePeriodSeconds=0`. If nobody does within grace + 2 s the server removes it.
//! - **Allocation**: Services get `spec.clusterIP` from `network::SERVICE_CIDR` and node
//!   ports from `network::NODE_PORT_RANGE` at create time. LoadBalancer ingress IPs
//!   (`status.loadBalancer`) are left to the service proxy (write them via `services/status`).
//! - **Scheduling**: pods are created Pending without a node. The stand-in kubelet
//!   ([`SandboxConfig::standin_kubelet`], on by default) binds them and marks them Running;
//!   with it off, the scheduler patches `spec.nodeName` and the kubelet writes `pods/status`.
//! - **Logs**: `pods/log` serves the files at [`logs::log_path`]
//!   (`<state-dir>/logs/<ns>/<pod>/<container>.log`) and, for `--previous`,
//!   [`logs::previous_log_path`].
//! - **Status**: `*/status` subresources change only `status`; the main resource keeps the
//!   stored status. `deployments|replicasets|statefulsets/scale` read and set `spec.replicas`.
//! - **Metrics**: `metrics.k8s.io/v1beta1` PodMetrics/NodeMetrics are plain stored objects:
//!   whoever measures creates or updates them, and `kubectl top` reads them.

pub mod apimachinery;
pub mod apiserver;
pub mod controllers;
pub mod error;
pub mod kubelet;
pub mod paths;
pub mod proxy;
pub mod runtime;
mod sandbox;
pub mod scheduler;
mod shutdown;

pub use apimachinery::errors::ApiError;
pub use apimachinery::network::NODE_NAME;
pub use error::SandboxError;
pub use kubelet::LIMITS_ANNOTATION;
pub use sandbox::{CONTEXT, NodeRuntime, Sandbox, SandboxConfig};
