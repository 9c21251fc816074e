//! The service proxy: cluster IPs, NodePorts and load-balancer addresses forwarding to ready
//! endpoints.

pub mod table;
