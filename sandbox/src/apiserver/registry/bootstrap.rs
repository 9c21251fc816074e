//! What every cluster has from its first start: the system namespaces, the node, the
//! default StorageClass; and what a restart must repair (reapers, pods not ready).

use super::defaults;
use super::{Api, WriteOpts, name_of, ns_of};
use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::by_kind;
use crate::apiserver::storage::Write;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

impl Api {
    /// Creates the objects every cluster has: namespaces default, kube-system,
    /// kube-public and kube-node-lease, the node, the default StorageClass and the default
    /// IngressClass `hk8s` (served by the proxy's ingress controller).
    pub fn bootstrap(self: &Arc<Self>) -> Result<(), ApiError> {
        let opts = WriteOpts {
            manager: "hk8s-sandbox".into(),
            ..Default::default()
        };
        let ensure = |api_version: &str, kind: &str, ns: &str, obj: Value| {
            let r = by_kind(api_version, kind).expect("bootstrap kinds are served");
            if self.store.get(r, ns, name_of(&obj)).is_none() {
                match self.create(r, ns, obj, &opts) {
                    Ok(_) => Ok(()),
                    Err(e) if e.reason == "AlreadyExists" => Ok(()),
                    Err(e) => Err(e),
                }
            } else {
                Ok(())
            }
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            ensure("v1", "Namespace", "", json!({"metadata": {"name": ns}}))?;
        }
        ensure(
            "storage.k8s.io/v1",
            "StorageClass",
            "",
            json!({
                "metadata": {"name": "default", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "hk8s.dev/local-directory",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": false,
            }),
        )?;
        self.bootstrap_access(&opts)?;
        ensure(
            "networking.k8s.io/v1",
            "IngressClass",
            "",
            json!({
                "metadata": {"name": "hk8s", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
                "spec": {"controller": crate::proxy::ingress::CONTROLLER},
            }),
        )?;
        // Pods that were Terminating when the sandbox stopped get their reaper back.
        let pods = by_kind("v1", "Pod").expect("pods are served");
        let now = jiff::Timestamp::now();
        for pod in self.store.list(pods, None).0 {
            let Some(at) = pod["metadata"]["deletionTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            else {
                continue;
            };
            let left = (at.as_second() - now.as_second()).max(0) as u64;
            self.reap_later(
                pods,
                ns_of(&pod),
                name_of(&pod),
                pod["metadata"]["uid"].clone(),
                Duration::from_secs(left + 2),
            );
        }
        let node_r = by_kind("v1", "Node").expect("nodes are served");
        let node_name = crate::apimachinery::network::NODE_NAME;
        let node = serde_json::to_value(crate::kubelet::node::node(
            &crate::apimachinery::network::AddressPlan::load(&self.state_dir),
        ))
        .map_err(|e| ApiError::internal(format!("encoding the node: {e}")))?;
        ensure("v1", "Node", "", node.clone())?;
        // The node's status and default labels are refreshed at every start, as a kubelet
        // does when it registers again: it is Ready now.
        let _ = self.store.write(node_r, "", node_name, |cur| match cur {
            Some(c) => {
                let mut n = c.clone();
                n["status"] = node["status"].clone();
                for (k, v) in node["metadata"]["labels"].as_object().into_iter().flatten() {
                    n["metadata"]["labels"][k] = v.clone();
                }
                Ok(Write::Put(n))
            }
            None => Ok(Write::Unchanged(None)),
        });
        Ok(())
    }

    /// Marks every pod on the node not ready, as a node controller does for a node that was
    /// down: the processes died with the previous sandbox run, so until the kubelet has
    /// started them again, clients and the endpoints controller must not count them.
    pub fn mark_pods_not_ready(&self) -> Result<(), ApiError> {
        let pods = by_kind("v1", "Pod").expect("pods are served");
        let now = defaults::now();
        for pod in self.store.list(pods, None).0 {
            let on_node = pod["spec"]["nodeName"] == crate::apimachinery::network::NODE_NAME;
            let finished = matches!(
                pod["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            );
            if !on_node || finished {
                continue;
            }
            self.store.write(pods, ns_of(&pod), name_of(&pod), |cur| {
                let Some(cur) = cur else {
                    return Ok(Write::Unchanged(None));
                };
                let mut next = cur.clone();
                let status = &mut next["status"];
                if let Some(conditions) = status["conditions"].as_array_mut() {
                    for c in conditions.iter_mut().filter(|c| {
                        matches!(c["type"].as_str(), Some("Ready" | "ContainersReady"))
                            && c["status"] != "False"
                    }) {
                        c["status"] = json!("False");
                        c["reason"] = json!("NodeRestarted");
                        c["message"] = json!(
                            "the sandbox restarted; the kubelet is starting the containers again"
                        );
                        c["lastTransitionTime"] = json!(now);
                    }
                }
                for list in ["containerStatuses", "initContainerStatuses"] {
                    if let Some(containers) = status[list].as_array_mut() {
                        for c in containers {
                            c["ready"] = json!(false);
                            c["started"] = json!(false);
                            c["state"] = json!({"waiting": {"reason": "ContainerCreating"}});
                        }
                    }
                }
                Ok(if next == *cur {
                    Write::Unchanged(None)
                } else {
                    Write::Put(next)
                })
            })?;
        }
        Ok(())
    }
}
