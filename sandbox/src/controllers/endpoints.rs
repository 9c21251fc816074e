//! Endpoints and EndpointSlice controller: for every Service with a selector, the IPs and
//! target ports of its pods, ready ones as addresses and the rest as not ready.

use super::util::{is_ready, map_selector_matches};
use super::{Ctx, Snapshot, in_namespace};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, PostParams};
use std::collections::BTreeMap;

/// A pod's resolved (name, port, protocol) for each service port.
type ResolvedPorts = Vec<(Option<String>, i32, String)>;

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The container port a service port targets on `pod`, or `None` if a named port is missing.
fn target_port(port: &k8s_openapi::api::core::v1::ServicePort, pod: &Pod) -> Option<i32> {
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

pub async fn reconcile(ctx: &Ctx, snap: &Snapshot) -> Result<(), kube::Error> {
    for svc in &snap.services {
        let Some(spec) = &svc.spec else { continue };
        let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
            continue;
        };
        if svc.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let ns = svc.namespace().unwrap_or_default();
        let publish_not_ready = spec.publish_not_ready_addresses == Some(true);
        let ports = spec.ports.clone().unwrap_or_default();
        let pods: Vec<&Pod> = in_namespace(&snap.pods, &ns)
            .filter(|p| map_selector_matches(selector, p.labels()))
            .filter(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some())
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .collect();
        // Pods grouped by the ports they resolve to, as one subset each.
        let mut subsets: BTreeMap<ResolvedPorts, (Vec<EndpointAddress>, Vec<EndpointAddress>)> =
            BTreeMap::new();
        let mut slice_endpoints = Vec::new();
        for pod in &pods {
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
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_default();
            let hostname = pod
                .spec
                .as_ref()
                .filter(|s| s.subdomain.as_deref() == Some(svc.name_any().as_str()))
                .and_then(|s| s.hostname.clone());
            let target = ObjectReference {
                kind: Some("Pod".into()),
                name: Some(pod.name_any()),
                namespace: Some(ns.clone()),
                uid: pod.uid(),
                ..Default::default()
            };
            let terminating = pod.metadata.deletion_timestamp.is_some();
            let ready = (is_ready(pod) || publish_not_ready) && !terminating;
            let address = EndpointAddress {
                ip: ip.clone(),
                hostname: hostname.clone(),
                node_name: Some(crate::apimachinery::network::NODE_NAME.into()),
                target_ref: Some(target.clone()),
            };
            let entry = subsets.entry(resolved).or_default();
            if ready {
                entry.0.push(address);
            } else {
                entry.1.push(address);
            }
            slice_endpoints.push(Endpoint {
                addresses: vec![ip],
                conditions: Some(EndpointConditions {
                    ready: Some(ready),
                    serving: Some(is_ready(pod) || publish_not_ready),
                    terminating: Some(terminating),
                }),
                hostname,
                node_name: Some(crate::apimachinery::network::NODE_NAME.into()),
                target_ref: Some(target),
                ..Default::default()
            });
        }
        let subsets: Vec<EndpointSubset> = subsets
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
            .collect();
        let subsets = (!subsets.is_empty()).then_some(subsets);
        let existing = in_namespace(&snap.endpoints, &ns).find(|e| e.name_any() == svc.name_any());
        let ep_api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), &ns);
        let mut labels = svc.labels().clone();
        labels.insert(
            "endpoints.kubernetes.io/managed-by".into(),
            "endpoint-controller".into(),
        );
        match existing {
            None => {
                let ep = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(svc.name_any()),
                        namespace: Some(ns.clone()),
                        labels: Some(labels),
                        owner_references: Some(vec![owner(svc)]),
                        ..Default::default()
                    },
                    subsets,
                };
                if let Err(e) = ep_api.create(&PostParams::default(), &ep).await
                    && !super::util::is_benign(&e)
                {
                    return Err(e);
                }
            }
            Some(current) if current.subsets != subsets => {
                let mut ep = current.clone();
                ep.subsets = subsets;
                if let Err(e) = ep_api
                    .replace(&ep.name_any(), &PostParams::default(), &ep)
                    .await
                    && !super::util::is_benign(&e)
                {
                    return Err(e);
                }
            }
            Some(_) => {}
        }

        slice_endpoints.sort_by(|a, b| a.addresses.cmp(&b.addresses));
        let slice_ports: Vec<SlicePort> = ports
            .iter()
            .map(|p| SlicePort {
                name: p.name.clone().or(Some(String::new())),
                port: match &p.target_port {
                    Some(IntOrString::Int(n)) => Some(*n),
                    None => Some(p.port),
                    Some(IntOrString::String(_)) => {
                        pods.first().and_then(|pod| target_port(p, pod))
                    }
                },
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: None,
            })
            .collect();
        let slice_api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), &ns);
        let existing = in_namespace(&snap.endpoint_slices, &ns)
            .find(|s| s.labels().get(SERVICE_NAME_LABEL) == Some(&svc.name_any()));
        match existing {
            None => {
                let mut labels = svc.labels().clone();
                labels.insert(SERVICE_NAME_LABEL.into(), svc.name_any());
                labels.insert(
                    "endpointslice.kubernetes.io/managed-by".into(),
                    "endpointslice-controller.k8s.io".into(),
                );
                let slice = EndpointSlice {
                    metadata: ObjectMeta {
                        name: Some(format!(
                            "{}-{}",
                            svc.name_any(),
                            crate::apimachinery::names::random_suffix()
                        )),
                        namespace: Some(ns.clone()),
                        labels: Some(labels),
                        owner_references: Some(vec![owner(svc)]),
                        ..Default::default()
                    },
                    address_type: "IPv4".into(),
                    endpoints: slice_endpoints,
                    ports: Some(slice_ports),
                };
                if let Err(e) = slice_api.create(&PostParams::default(), &slice).await
                    && !super::util::is_benign(&e)
                {
                    return Err(e);
                }
            }
            Some(current)
                if current.endpoints != slice_endpoints
                    || current.ports.as_ref() != Some(&slice_ports) =>
            {
                let mut slice = current.clone();
                slice.endpoints = slice_endpoints;
                slice.ports = Some(slice_ports);
                if let Err(e) = slice_api
                    .replace(&slice.name_any(), &PostParams::default(), &slice)
                    .await
                    && !super::util::is_benign(&e)
                {
                    return Err(e);
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}
