//! What the API server keeps about itself, as kube-apiserver does: the default ClusterRoles
//! and bindings, and the `default/kubernetes` Service (the first address of the service
//! range, port 443) with Endpoints and an EndpointSlice naming the API server.

use super::{Api, WriteOpts, clusterroles, name_of};
use crate::apimachinery::errors::ApiError;
use crate::apimachinery::network::{AddressPlan, NODE_IP};
use crate::apimachinery::resources::by_kind;
use crate::apiserver::storage::Write;
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::sync::Arc;

const LABELS: &str = r#"{"component": "apiserver", "provider": "kubernetes"}"#;

impl Api {
    /// Creates what is missing of the default ClusterRoles and ClusterRoleBindings and the
    /// `kubernetes` Service.
    pub(super) fn bootstrap_access(self: &Arc<Self>, opts: &WriteOpts) -> Result<(), ApiError> {
        let rbac = "rbac.authorization.k8s.io/v1";
        for (kind, obj) in clusterroles::defaults() {
            self.create_missing(rbac, kind, "", obj, opts)?;
        }
        let (range, _) = AddressPlan::load(&self.state_dir).service_cidr();
        let first = Ipv4Addr::from(u32::from(range) + 1).to_string();
        let labels: Value = serde_json::from_str(LABELS).expect("literal JSON");
        let service = json!({
            "metadata": {"name": "kubernetes", "labels": labels},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": first,
                "clusterIPs": [first],
                "sessionAffinity": "None",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 443}],
            },
        });
        self.create_missing("v1", "Service", "default", service, opts)?;
        self.move_into_service_range(&first)
    }

    /// A state directory first served in another address plan (process mode, or another
    /// bridge slot) keeps a `kubernetes` Service its pods cannot reach: it moves to the
    /// first address of the range now served.
    fn move_into_service_range(&self, first: &str) -> Result<(), ApiError> {
        let services = by_kind("v1", "Service").expect("served");
        self.store.write(services, "default", "kubernetes", |cur| {
            Ok(match cur {
                Some(c) if c["spec"]["clusterIP"] != first => {
                    let mut next = c.clone();
                    next["spec"]["clusterIP"] = json!(first);
                    next["spec"]["clusterIPs"] = json!([first]);
                    Write::Put(next)
                }
                _ => Write::Unchanged(None),
            })
        })?;
        Ok(())
    }

    fn create_missing(
        self: &Arc<Self>,
        api_version: &str,
        kind: &str,
        ns: &str,
        obj: Value,
        opts: &WriteOpts,
    ) -> Result<(), ApiError> {
        let r = by_kind(api_version, kind).expect("bootstrap kinds are served");
        if self.store.get(r, ns, name_of(&obj)).is_some() {
            return Ok(());
        }
        match self.create(r, ns, obj, opts) {
            Err(e) if e.reason != "AlreadyExists" => Err(e),
            _ => Ok(()),
        }
    }

    /// Points the `kubernetes` Service at the API server's port: its target port, its
    /// Endpoints and its EndpointSlice (as the API server's endpoint reconciler).
    pub(crate) fn publish_apiserver(&self, port: u16) -> Result<(), ApiError> {
        let services = by_kind("v1", "Service").expect("served");
        self.store.write(services, "default", "kubernetes", |cur| {
            Ok(match cur {
                Some(c) if c["spec"]["ports"][0]["targetPort"] != port => {
                    let mut next = c.clone();
                    next["spec"]["ports"][0]["targetPort"] = json!(port);
                    Write::Put(next)
                }
                _ => Write::Unchanged(None),
            })
        })?;
        let labels: Value = serde_json::from_str(LABELS).expect("literal JSON");
        let port_entry = json!({"name": "https", "port": port, "protocol": "TCP"});
        let endpoints = json!({
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": NODE_IP.to_string()}], "ports": [port_entry]}],
        });
        let mut slice_labels = labels;
        slice_labels["kubernetes.io/service-name"] = json!("kubernetes");
        let slice = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": slice_labels},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [NODE_IP.to_string()], "conditions": {"ready": true}}],
            "ports": [port_entry],
        });
        self.put_system(by_kind("v1", "Endpoints").expect("served"), endpoints)?;
        self.put_system(
            by_kind("discovery.k8s.io/v1", "EndpointSlice").expect("served"),
            slice,
        )
    }

    /// Writes a system object's content (keeping its identity when it exists).
    fn put_system(
        &self,
        r: &'static crate::apimachinery::resources::Resource,
        mut obj: Value,
    ) -> Result<(), ApiError> {
        let name = name_of(&obj).to_string();
        self.store.write(r, "default", &name, |cur| {
            let now = super::defaults::now();
            match cur {
                Some(c) => {
                    let mut next = c.clone();
                    for (k, v) in obj.as_object().into_iter().flatten() {
                        if k != "metadata" {
                            next[k] = v.clone();
                        }
                    }
                    Ok(if next == *c {
                        Write::Unchanged(None)
                    } else {
                        Write::Put(next)
                    })
                }
                None => {
                    obj["metadata"]["uid"] = json!(super::defaults::new_uid());
                    obj["metadata"]["creationTimestamp"] = json!(now);
                    obj["metadata"]["generation"] = json!(1);
                    Ok(Write::Put(obj.clone()))
                }
            }
        })?;
        Ok(())
    }
}
