//! The ServiceAccount admission plugin, as kube-apiserver's: a new pod runs as its
//! ServiceAccount (`default` unless named), which must exist, and unless automounting is
//! off it gets the `kube-api-access-*` projected volume (a token, the cluster's CA and its
//! namespace) mounted where client libraries look for them.

use super::{Api, name_of, ns_of};
use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::by_kind;
use serde_json::{Value, json};

/// Where every container finds the token, `ca.crt` and `namespace`.
pub(crate) const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The lifetime the projected token asks for (the API server extends it).
const TOKEN_EXPIRATION: i64 = 3607;

impl Api {
    /// Sets the pod's ServiceAccount and adds its token volume. A missing `default`
    /// account is tolerated (nothing creates it when the sandbox runs without
    /// controllers); another missing account refuses the pod, as Kubernetes does.
    pub(super) fn admit_service_account(&self, pod: &mut Value) -> Result<(), ApiError> {
        let ns = ns_of(pod).to_string();
        let spec = &mut pod["spec"];
        let name = spec["serviceAccountName"]
            .as_str()
            .filter(|n| !n.is_empty())
            .or_else(|| spec["serviceAccount"].as_str().filter(|n| !n.is_empty()))
            .unwrap_or("default")
            .to_string();
        spec["serviceAccountName"] = json!(name);
        spec["serviceAccount"] = json!(name);
        let accounts = by_kind("v1", "ServiceAccount").expect("served");
        let Some(account) = self.store.get(accounts, &ns, &name) else {
            if name == "default" {
                return Ok(());
            }
            let pods = by_kind("v1", "Pod").expect("served");
            // Admission runs before a generated name is filled in: the prefix is what it names.
            let pod_name = pod["metadata"]["generateName"]
                .as_str()
                .filter(|g| !g.is_empty())
                .unwrap_or(name_of(pod))
                .to_string();
            return Err(ApiError::new(
                403,
                "Forbidden",
                format!(
                    "pods \"{pod_name}\" is forbidden: error looking up service account {ns}/{name}: serviceaccount \"{name}\" not found"
                ),
            )
            .with_details(json!({"name": pod_name, "kind": pods.plural})));
        };
        let spec = &mut pod["spec"];
        let automount = spec["automountServiceAccountToken"]
            .as_bool()
            .or_else(|| account["automountServiceAccountToken"].as_bool())
            .unwrap_or(true);
        if automount {
            mount_token(spec);
        }
        Ok(())
    }
}

fn mount_token(spec: &mut Value) {
    let volume_name = format!(
        "kube-api-access-{}",
        crate::apimachinery::names::random_suffix()
    );
    let mut mounted = false;
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array_mut().into_iter().flatten() {
            let mounts = &mut c["volumeMounts"];
            if mounts
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["mountPath"] == MOUNT_PATH)
            {
                continue;
            }
            if !mounts.is_array() {
                *mounts = json!([]);
            }
            mounts.as_array_mut().expect("array").push(json!({
                "name": volume_name,
                "mountPath": MOUNT_PATH,
                "readOnly": true,
            }));
            mounted = true;
        }
    }
    if !mounted {
        return;
    }
    if !spec["volumes"].is_array() {
        spec["volumes"] = json!([]);
    }
    spec["volumes"].as_array_mut().expect("array").push(json!({
        "name": volume_name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    }));
}
