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
//! # Components
//!
//! The folders are laid out as Kubernetes' own components; each is a client of the API
//! server (through kube-rs) except where noted.
//!
//! | folder | Kubernetes component | holds |
//! |---|---|---|
//! | `apimachinery/` | k8s.io/apimachinery | what all share: the table of served kinds, selectors, quantities, names, the `Status` error, cluster addressing, the event recorder, shared informers and the controllers' workqueue |
//! | `apiserver/` | kube-apiserver | HTTPS, authentication, routing, codecs, discovery and OpenAPI, printers (Table columns), watch, storage (redb), `pods/log`, access reviews |
//! | `apiserver/registry/` | the apiserver's registry | the write path: create, update, patch, server-side apply, delete with owner garbage collection, namespace purge, defaults, validation, bootstrap |
//! | `controllers/` | kube-controller-manager | deployments, replica sets, replication controllers, stateful sets, daemon sets, jobs, cron jobs, endpoints, load balancers, volumes, autoscaling, garbage collection; one kube-runtime `Controller` each |
//! | `scheduler/` | kube-scheduler | binds pending pods to the node when their requests fit |
//! | `kubelet/` | kubelet | the Node object, pods as local processes, probes, images, cgroups, metrics; `standin` (tests only) fakes Running pods in process |
//! | `proxy/` | kube-proxy | Service addresses forwarded to ready endpoints |
//! | `node_agent.rs` | a node joining a real control plane | the kubelet, proxy, load-balancer and volume controllers against an API server the sandbox does not run ([`NodeAgent`], test tooling) |
//! | `sandbox.rs`, `runtime.rs` | an all-in-one cluster | state directory, TLS, token, kubeconfig, listener; the node and control plane started together ([`NodeRuntime`]) |
//! | `paths.rs`, `shutdown.rs`, `error.rs` | | the state-directory layout (every log path), stopping background tasks, [`SandboxError`] |

mod apimachinery;
mod apiserver;
mod controllers;
mod error;
pub mod instance;
mod kubelet;
mod node_agent;
mod node_agent_metrics;
pub mod paths;
mod proxy;
pub mod rootless;
mod runtime;
mod sandbox;
mod scheduler;
mod shutdown;

pub use apimachinery::clock::Clock;
pub use apimachinery::network::NODE_NAME;
pub use error::SandboxError;
pub use kubelet::namespaces::PodNamespaces;
pub use kubelet::{ISOLATION_ANNOTATION, LIMITS_ANNOTATION};
pub use node_agent::{NodeAgent, NodeAgentConfig, NodeAgentError, NodeNetwork};
pub use proxy::ServiceProxy;
pub use sandbox::{CONTEXT, NodeRuntime, Sandbox, SandboxConfig};
