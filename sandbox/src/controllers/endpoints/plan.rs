//! What the endpoints controller writes for one Service, from its pods and the current
//! Endpoints and EndpointSlice: the IPs and target ports of the pods it selects, ready ones
//! as addresses and the rest as not ready.

use crate::apimachinery::network::NODE_NAME;
use crate::controllers::util::{is_ready, map_selector_matches};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::ObjectMeta;
use std::collections::BTreeMap;

pub(super) const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A pod's resolved (name, port, protocol) for each service port.
type ResolvedPorts = Vec<(Option<String>, i32, String)>;

/// How an object is written, if it differs from what is stored.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Write<K> {
    Create(K),
    Replace(K),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plan {
    pub(super) endpoints: Option<Write<Endpoints>>,
    pub(super) slice: Option<Write<EndpointSlice>>,
}

/// The container port a service port targets on `pod`, or `None` if a named port is missing.
fn target_port(port: &ServicePort, pod: &Pod) -> Option<i32> {
    match port
        .target_port
        .clone()
        .unwrap_or(IntOrString::Int(port.port))
    {
        IntOrString::Int(n) => Some(n),
        IntOrString::String(name) => pod
            .spec
            .as_ref()?
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port),
    }
}

fn owner(svc: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: svc.name_any(),
        uid: svc.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Pods a Service's selector picks in its namespace: with an IP, not finished.
pub(super) fn selected<'a>(svc: &Service, pods: &'a [Pod]) -> Vec<&'a Pod> {
    let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return Vec::new();
    };
    pods.iter()
        .filter(|p| p.namespace() == svc.namespace() && map_selector_matches(selector, p.labels()))
        .filter(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some())
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .collect()
}

/// Plans the writes for `svc` (which has a selector) given its namespace's pods and the
/// Endpoints and EndpointSlice stored for it.
pub(super) fn plan(
    svc: &Service,
    pods: &[Pod],
    endpoints: Option<&Endpoints>,
    slice: Option<&EndpointSlice>,
) -> Plan {
    let pods = selected(svc, pods);
    let (subsets, slice_endpoints) = resolve(svc, &pods);
    Plan {
        endpoints: endpoints_write(svc, endpoints, subsets),
        slice: slice_write(svc, slice, slice_endpoints, slice_ports(svc, &pods)),
    }
}

type Subsets = BTreeMap<ResolvedPorts, (Vec<EndpointAddress>, Vec<EndpointAddress>)>;

/// Each pod's address, grouped into subsets by the ports it resolves to, and its
/// EndpointSlice entry.
fn resolve(svc: &Service, pods: &[&Pod]) -> (Vec<EndpointSubset>, Vec<Endpoint>) {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
    let ports = spec.ports.unwrap_or_default();
    let mut subsets = Subsets::new();
    let mut slice_endpoints = Vec::new();
    for pod in pods {
        let resolved: Option<ResolvedPorts> = ports
            .iter()
            .map(|p| {
                Some((
                    p.name.clone(),
                    target_port(p, pod)?,
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ))
            })
            .collect();
        let Some(resolved) = resolved else { continue };
        let address = address(svc, pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let serving = is_ready(pod) || publish_not_ready;
        let ready = serving && !terminating;
        slice_endpoints.push(Endpoint {
            addresses: vec![address.ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: address.hostname.clone(),
            node_name: address.node_name.clone(),
            target_ref: address.target_ref.clone(),
            ..Default::default()
        });
        let entry = subsets.entry(resolved).or_default();
        if ready {
            entry.0.push(address);
        } else {
            entry.1.push(address);
        }
    }
    slice_endpoints.sort_by(|a, b| a.addresses.cmp(&b.addresses));
    (into_subsets(subsets), slice_endpoints)
}

fn address(svc: &Service, pod: &Pod) -> EndpointAddress {
    EndpointAddress {
        ip: pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default(),
        hostname: pod
            .spec
            .as_ref()
            .filter(|s| s.subdomain.as_deref() == Some(svc.name_any().as_str()))
            .and_then(|s| s.hostname.clone()),
        node_name: Some(NODE_NAME.into()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: Some(pod.name_any()),
            namespace: pod.namespace(),
            uid: pod.uid(),
            ..Default::default()
        }),
    }
}

fn into_subsets(subsets: Subsets) -> Vec<EndpointSubset> {
    subsets
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: Some(
                    ports
                        .into_iter()
                        .map(|(name, port, protocol)| EndpointPort {
                            name,
                            port,
                            protocol: Some(protocol),
                            app_protocol: None,
                        })
                        .collect(),
                ),
            }
        })
        .collect()
}

fn endpoints_write(
    svc: &Service,
    existing: Option<&Endpoints>,
    subsets: Vec<EndpointSubset>,
) -> Option<Write<Endpoints>> {
    let subsets = (!subsets.is_empty()).then_some(subsets);
    match existing {
        None => {
            let mut labels = svc.labels().clone();
            labels.insert(
                "endpoints.kubernetes.io/managed-by".into(),
                "endpoint-controller".into(),
            );
            Some(Write::Create(Endpoints {
                metadata: ObjectMeta {
                    name: Some(svc.name_any()),
                    namespace: svc.namespace(),
                    labels: Some(labels),
                    owner_references: Some(vec![owner(svc)]),
                    ..Default::default()
                },
                subsets,
            }))
        }
        Some(current) if current.subsets != subsets => Some(Write::Replace(Endpoints {
            subsets,
            ..current.clone()
        })),
        Some(_) => None,
    }
}

/// The slice's ports: a named target port resolves on the first pod.
fn slice_ports(svc: &Service, pods: &[&Pod]) -> Vec<SlicePort> {
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    ports
        .iter()
        .map(|p| SlicePort {
            name: p.name.clone().or(Some(String::new())),
            port: match &p.target_port {
                Some(IntOrString::Int(n)) => Some(*n),
                None => Some(p.port),
                Some(IntOrString::String(_)) => pods.first().and_then(|pod| target_port(p, pod)),
            },
            protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
            app_protocol: None,
        })
        .collect()
}

fn slice_write(
    svc: &Service,
    existing: Option<&EndpointSlice>,
    endpoints: Vec<Endpoint>,
    ports: Vec<SlicePort>,
) -> Option<Write<EndpointSlice>> {
    match existing {
        None => {
            let mut labels = svc.labels().clone();
            labels.insert(SERVICE_NAME_LABEL.into(), svc.name_any());
            labels.insert(
                "endpointslice.kubernetes.io/managed-by".into(),
                "endpointslice-controller.k8s.io".into(),
            );
            Some(Write::Create(EndpointSlice {
                metadata: ObjectMeta {
                    name: Some(format!(
                        "{}-{}",
                        svc.name_any(),
                        crate::apimachinery::names::random_suffix()
                    )),
                    namespace: svc.namespace(),
                    labels: Some(labels),
                    owner_references: Some(vec![owner(svc)]),
                    ..Default::default()
                },
                address_type: "IPv4".into(),
                endpoints: Some(endpoints),
                ports: Some(ports),
            }))
        }
        Some(current)
            if current.endpoints.as_deref().unwrap_or_default() != endpoints
                || current.ports.as_ref() != Some(&ports) =>
        {
            Some(Write::Replace(EndpointSlice {
                endpoints: Some(endpoints),
                ports: Some(ports),
                ..current.clone()
            }))
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServiceSpec,
    };

    fn service(target: IntOrString) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("demo".into()),
                uid: Some("svc".into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([("app".into(), "web".into())])),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: Some(target),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn pod(name: &str, ip: &str, ready: bool, app: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("demo".into()),
                labels: Some(BTreeMap::from([("app".into(), app.into())])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    ports: Some(vec![ContainerPort {
                        name: Some("web".into()),
                        container_port: 8080,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                pod_ip: Some(ip.into()),
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    fn created<K: Clone>(w: Option<Write<K>>) -> K {
        match w {
            Some(Write::Create(k)) => k,
            other => panic!("expected a create, got {}", other.is_some()),
        }
    }

    #[test]
    fn ready_pods_are_addresses_and_the_rest_not_ready_on_the_named_target_port() {
        let svc = service(IntOrString::String("web".into()));
        let pods = [
            pod("b", "10.0.0.2", true, "web"),
            pod("a", "10.0.0.1", true, "web"),
            pod("c", "10.0.0.3", false, "web"),
            pod("other", "10.0.0.9", true, "db"),
        ];
        let plan = plan(&svc, &pods, None, None);
        let endpoints = created(plan.endpoints);
        assert_eq!(endpoints.name_any(), "web");
        assert_eq!(
            endpoints.metadata.owner_references.as_ref().unwrap()[0].uid,
            "svc"
        );
        let subsets = endpoints.subsets.unwrap();
        assert_eq!(subsets.len(), 1);
        let ips = |a: &Option<Vec<EndpointAddress>>| -> Vec<String> {
            a.iter().flatten().map(|a| a.ip.clone()).collect()
        };
        assert_eq!(ips(&subsets[0].addresses), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.0.0.3"]);
        assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8080);

        let slice = created(plan.slice);
        assert_eq!(slice.labels()[SERVICE_NAME_LABEL], "web");
        assert_eq!(slice.endpoints.as_ref().unwrap().len(), 3);
        assert_eq!(slice.ports.as_ref().unwrap()[0].port, Some(8080));
        assert_eq!(
            slice.endpoints.as_ref().unwrap()[2]
                .conditions
                .as_ref()
                .unwrap()
                .ready,
            Some(false)
        );
    }

    #[test]
    fn stored_objects_are_replaced_only_when_they_differ() {
        let svc = service(IntOrString::Int(8080));
        let pods = [pod("a", "10.0.0.1", true, "web")];
        let first = plan(&svc, &pods, None, None);
        let (endpoints, slice) = (created(first.endpoints), created(first.slice));
        let same = plan(&svc, &pods, Some(&endpoints), Some(&slice));
        assert_eq!((same.endpoints, same.slice), (None, None));

        let gone = plan(&svc, &[], Some(&endpoints), Some(&slice));
        match gone.endpoints {
            Some(Write::Replace(e)) => assert_eq!(e.subsets, None),
            other => panic!("expected a replace: {other:?}"),
        }
        match gone.slice {
            Some(Write::Replace(s)) => {
                assert_eq!(s.endpoints, Some(vec![]));
                assert_eq!(s.name_any(), slice.name_any(), "the same slice");
            }
            other => panic!("expected a replace: {other:?}"),
        }
    }
}
