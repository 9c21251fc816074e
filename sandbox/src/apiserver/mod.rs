//! The API server, as kube-apiserver: HTTPS and routing ([`server`]) to one handler per
//! action (`handlers`, `scale`, `logs`, `watch`, `streaming`), TLS, codecs (`codec`,
//! `protobuf`), discovery and OpenAPI, printers (Table columns), storage (redb), the write
//! path ([`registry`]) and access reviews.
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
//! - **Scheduling**: pods are created Pending without a node. With
//!   `NodeRuntime::Processes` the scheduler patches `spec.nodeName` and the kubelet writes
//!   `pods/status`; the test-only `NodeRuntime::Standin` binds them and marks them Running.
//! - **Logs**: `pods/log` serves the files at [`crate::paths::container_log_path`]
//!   (`<state-dir>/logs/<ns>/<pod>/<container>.log`) and, for `--previous`,
//!   [`crate::paths::previous_container_log_path`].
//! - **Status**: `*/status` subresources change only `status`; the main resource keeps the
//!   stored status. `deployments|replicasets|statefulsets/scale` read and set `spec.replicas`.
//! - **Metrics**: `metrics.k8s.io/v1beta1` PodMetrics/NodeMetrics are plain stored objects:
//!   whoever measures creates or updates them, and `kubectl top` reads them.

mod auth;
mod binding;
mod codec;
pub(crate) mod conversion;
mod discovery;
mod eviction;
mod handlers;
mod list_options;
mod logs;
mod openapi;
mod printers;
mod protobuf;
mod rbac;
pub(crate) mod registry;
mod request;
mod reviews;
mod scale;
pub(crate) mod server;
pub(crate) mod storage;
mod streaming;
pub(crate) mod tls;
pub(crate) mod tokens;
mod watch;
