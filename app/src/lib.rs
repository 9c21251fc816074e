//! The hello-k8s companion app: a web frontend and a JSON API that store kind messages in
//! Redis. Both binaries are thin wrappers around the modules here so tests can reuse them.

pub mod api;
pub mod config;
pub mod frontend;
pub mod message;
pub mod pod;
pub mod server;
pub mod store;
