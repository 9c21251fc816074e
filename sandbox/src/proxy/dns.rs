//! Cluster DNS (the sandbox's CoreDNS), on hickory-server: `<svc>.<ns>.svc.cluster.local`
//! answers the cluster IP, a headless Service one A record per ready endpoint, and
//! `<hostname>.<svc>.<ns>.svc.cluster.local` a StatefulSet pod. Other names are forwarded
//! to the host's resolver. Pods reach it on the bridge address through their resolv.conf,
//! whose search path turns `api` into `api.<ns>.svc.cluster.local`.

use crate::apimachinery::network::CLUSTER_DOMAIN;
use hickory_resolver::TokioResolver;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::A;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::ResourceExt;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Time to live of cluster answers: short, as Services and endpoints change.
const TTL: u32 = 5;

/// The cluster's names and their addresses, rebuilt by the proxy on every change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DnsTable {
    names: HashMap<String, Vec<Ipv4Addr>>,
}

impl DnsTable {
    /// The names of these Services and of the endpoints' hostnames.
    pub fn build(services: &[Service], endpoints: &[Endpoints]) -> Self {
        let mut names: HashMap<String, Vec<Ipv4Addr>> = HashMap::new();
        for svc in services {
            let ns = svc.namespace().unwrap_or_default();
            let fqdn = format!("{}.{ns}.svc.{CLUSTER_DOMAIN}", svc.name_any());
            let spec = svc.spec.clone().unwrap_or_default();
            let cluster_ip = spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok());
            let ep = endpoints.iter().find(|e| {
                e.namespace().as_deref() == Some(ns.as_str()) && e.name_any() == svc.name_any()
            });
            let ready = ep
                .and_then(|e| e.subsets.as_ref())
                .into_iter()
                .flatten()
                .flat_map(|s| s.addresses.iter().flatten());
            let mut endpoint_ips = Vec::new();
            for address in ready {
                let Ok(ip) = address.ip.parse::<Ipv4Addr>() else {
                    continue;
                };
                endpoint_ips.push(ip);
                if let Some(host) = &address.hostname {
                    names.entry(format!("{host}.{fqdn}")).or_default().push(ip);
                }
            }
            let answer = match cluster_ip {
                Some(ip) => vec![ip],
                None => endpoint_ips,
            };
            names.entry(fqdn).or_default().extend(answer);
        }
        DnsTable { names }
    }

    /// The addresses of a cluster name (lower case, no trailing dot); `None` when the
    /// name does not exist.
    pub fn lookup(&self, name: &str) -> Option<&[Ipv4Addr]> {
        self.names.get(name).map(Vec::as_slice)
    }
}

/// Whether a name is the cluster's to answer (never forwarded).
fn is_cluster_name(name: &str) -> bool {
    name == CLUSTER_DOMAIN || name.ends_with(&format!(".{CLUSTER_DOMAIN}"))
}

/// Answers queries from the table, forwarding other names to the host's resolver.
struct Handler {
    table: Arc<RwLock<DnsTable>>,
    upstream: Option<TokioResolver>,
}

impl Handler {
    /// The records answering `name`/`kind`, or the response code saying why there are none.
    async fn answer(&self, name: &Name, kind: RecordType) -> Result<Vec<Record>, ResponseCode> {
        let key = name.to_lowercase().to_utf8();
        let key = key.trim_end_matches('.');
        if is_cluster_name(key) {
            let table = self.table.read().unwrap_or_else(|e| e.into_inner());
            let ips = table.lookup(key).ok_or(ResponseCode::NXDomain)?;
            if kind != RecordType::A {
                return Ok(Vec::new());
            }
            return Ok(ips
                .iter()
                .map(|ip| Record::from_rdata(name.clone(), TTL, RData::A(A(*ip))))
                .collect());
        }
        let upstream = self.upstream.as_ref().ok_or(ResponseCode::ServFail)?;
        match upstream.lookup(name.clone(), kind).await {
            Ok(lookup) => Ok(lookup.answers().to_vec()),
            Err(e) if e.is_no_records_found() => Err(ResponseCode::NXDomain),
            Err(_) => Err(ResponseCode::ServFail),
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        let builder = MessageResponseBuilder::from_message_request(request);
        let Some(query) = request.queries.queries().first() else {
            let response = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return send(&mut response_handle, response, metadata).await;
        };
        let name = Name::from(query.name().clone());
        match self.answer(&name, query.query_type()).await {
            Ok(records) => {
                metadata.authoritative = is_cluster_name(&name.to_lowercase().to_utf8());
                let response = builder.build(metadata, records.iter(), [], [], []);
                match response_handle.send_response(response).await {
                    Ok(info) => info,
                    Err(_) => failed(metadata),
                }
            }
            Err(code) => {
                let response = builder.error_msg(&request.metadata, code);
                send(&mut response_handle, response, metadata).await
            }
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    metadata: Metadata,
) -> ResponseInfo {
    handle
        .send_response(response)
        .await
        .unwrap_or_else(|_| failed(metadata))
}

fn failed(mut metadata: Metadata) -> ResponseInfo {
    metadata.response_code = ResponseCode::ServFail;
    hickory_server::proto::op::Header {
        metadata,
        counts: Default::default(),
    }
    .into()
}

/// A running cluster DNS server.
pub struct ClusterDns {
    server: Server<Handler>,
}

impl ClusterDns {
    /// Serves `table` on UDP and TCP `addr` (the bridge address, port 53).
    pub async fn start(addr: SocketAddr, table: Arc<RwLock<DnsTable>>) -> std::io::Result<Self> {
        let upstream = TokioResolver::builder_tokio()
            .and_then(|b| b.build())
            .map_err(
                |e| tracing::warn!(error = %e, "cluster DNS forwards no names: no host resolver"),
            )
            .ok();
        let mut server = Server::new(Handler { table, upstream });
        server.register_socket(tokio::net::UdpSocket::bind(addr).await?);
        server.register_listener(
            tokio::net::TcpListener::bind(addr).await?,
            Duration::from_secs(5),
            4096,
        );
        Ok(Self { server })
    }

    pub async fn shutdown(mut self) {
        let _ = self.server.shutdown_gracefully().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_headless_services_and_statefulset_pods_have_names() {
        let svc = |name: &str, ip: &str| -> Service {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "demo"},
                "spec": {"clusterIP": ip, "ports": [{"port": 6379}]}
            }))
            .unwrap()
        };
        let ep: Endpoints = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "redis-headless", "namespace": "demo"},
            "subsets": [{"addresses": [{"ip": "198.18.3.7", "hostname": "redis-0"},
                                       {"ip": "198.18.3.8", "hostname": "redis-1"}],
                         "notReadyAddresses": [{"ip": "198.18.3.9", "hostname": "redis-2"}],
                         "ports": [{"port": 6379}]}]
        }))
        .unwrap();
        let table = DnsTable::build(
            &[svc("api", "198.19.3.10"), svc("redis-headless", "None")],
            &[ep],
        );
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            table.lookup("api.demo.svc.cluster.local"),
            Some(&[ip("198.19.3.10")][..])
        );
        assert_eq!(
            table.lookup("redis-headless.demo.svc.cluster.local"),
            Some(&[ip("198.18.3.7"), ip("198.18.3.8")][..])
        );
        assert_eq!(
            table.lookup("redis-0.redis-headless.demo.svc.cluster.local"),
            Some(&[ip("198.18.3.7")][..])
        );
        assert_eq!(
            table.lookup("redis-2.redis-headless.demo.svc.cluster.local"),
            None
        );
        assert!(is_cluster_name("nope.demo.svc.cluster.local"));
        assert!(!is_cluster_name("example.com"));
    }
}
