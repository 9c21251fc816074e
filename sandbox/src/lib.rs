//! hk8s-sandbox: a built-in Kubernetes API server for learners without a cluster.

pub mod cgroups;
pub mod controllers;
pub mod images;
pub mod kubelet;
pub mod network;
pub mod paths;
pub mod proxy;
pub mod runtime;
