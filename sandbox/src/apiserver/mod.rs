//! The API server, as kube-apiserver: HTTPS and routing ([`server`]), TLS, codecs
//! ([`protobuf`]), discovery and OpenAPI, printers (Table columns), watch, storage (redb),
//! the write path ([`registry`]), access reviews and the `pods/log` subresource.

mod auth;
pub mod discovery;
pub mod logs;
pub mod printers;
pub mod protobuf;
pub mod registry;
mod request;
pub mod reviews;
pub mod server;
pub mod storage;
pub(crate) mod tls;
pub(crate) mod watch;
