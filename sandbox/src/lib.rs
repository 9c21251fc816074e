//! hk8s-sandbox: a built-in Kubernetes API server for learners without a cluster.

pub mod network;
