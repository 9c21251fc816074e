//! Address plan of the sandbox: every pod, service and load balancer gets its own
//! loopback address, so programs bind real IPs and the same port can be used many times.
//!
//! On Linux the whole of 127.0.0.0/8 routes to `lo`, so no setup is needed.

use std::net::Ipv4Addr;

/// Cluster IPs of Services (`spec.clusterIP`), like a real cluster's 10.96.0.0/12.
pub const SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 96, 0, 0), 16);

/// Pod IPs (`status.podIP`), like a real cluster's 10.244.0.0/16.
pub const POD_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 244, 0, 0), 16);

/// External IPs handed to `type: LoadBalancer` Services (`status.loadBalancer.ingress[].ip`).
pub const LOAD_BALANCER_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 240, 0, 0), 16);

/// The node's own address (`status.addresses` InternalIP); NodePorts listen here.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// The NodePort range, as on a real cluster.
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

/// The name of the sandbox's single node.
pub const NODE_NAME: &str = "hk8s-sandbox";
