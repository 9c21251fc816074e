//! Printers of networking.k8s.io kinds: Ingress, IngressClass and NetworkPolicy, with
//! the columns of Kubernetes' `printIngress`, `printIngressClass` and `printNetworkPolicy`.

use super::{AGE, NAME, Printer, col, format_label_selector, typed};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use kube::ResourceExt;
use serde_json::json;

pub(super) static INGRESS: Printer = Printer {
    group: "networking.k8s.io",
    kind: "Ingress",
    columns: &[
        NAME,
        col("Class", "string", 0),
        col("Hosts", "string", 0),
        col("Address", "string", 0),
        col("Ports", "string", 0),
        AGE,
    ],
    cells: |o, batch| {
        let ing: Ingress = typed(o)?;
        let spec = ing.spec.clone().unwrap_or_default();
        let class = spec
            .ingress_class_name
            .clone()
            .or_else(|| {
                ing.annotations()
                    .get("kubernetes.io/ingress.class")
                    .cloned()
            })
            .unwrap_or_else(|| "<none>".into());
        let rules = spec.rules.clone().unwrap_or_default();
        let named: Vec<&str> = rules
            .iter()
            .filter_map(|r| r.host.as_deref().filter(|h| !h.is_empty()))
            .collect();
        let hosts = match (named.len(), rules.len()) {
            (0, _) => "*".to_string(),
            (_, n) if n > 3 => format!(
                "{} + {} more...",
                named[..named.len().min(3)].join(","),
                n - 3
            ),
            _ => named.join(","),
        };
        let address: Vec<String> = ing
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
            .collect();
        let ports = if spec.tls.as_ref().is_some_and(|t| !t.is_empty()) {
            "80, 443"
        } else {
            "80"
        };
        Some(vec![
            json!(ing.metadata.name.clone().unwrap_or_default()),
            json!(class),
            json!(hosts),
            json!(address.join(",")),
            json!(ports),
            json!(batch.since(ing.metadata.creation_timestamp.as_ref())),
        ])
    },
};

pub(super) static INGRESS_CLASS: Printer = Printer {
    group: "networking.k8s.io",
    kind: "IngressClass",
    columns: &[
        NAME,
        col("Controller", "string", 0),
        col("Parameters", "string", 0),
        AGE,
    ],
    cells: |o, batch| {
        let ic: IngressClass = typed(o)?;
        let spec = ic.spec.clone().unwrap_or_default();
        let parameters = spec.parameters.as_ref().map_or("<none>".to_string(), |p| {
            match p.api_group.as_deref().filter(|g| !g.is_empty()) {
                Some(g) => format!("{}.{g}/{}", p.kind, p.name),
                None => format!("{}/{}", p.kind, p.name),
            }
        });
        Some(vec![
            json!(ic.metadata.name.clone().unwrap_or_default()),
            json!(spec.controller.unwrap_or_default()),
            json!(parameters),
            json!(batch.since(ic.metadata.creation_timestamp.as_ref())),
        ])
    },
};

pub(super) static NETWORK_POLICY: Printer = Printer {
    group: "networking.k8s.io",
    kind: "NetworkPolicy",
    columns: &[NAME, col("Pod-Selector", "string", 0), AGE],
    cells: |o, batch| {
        let np: NetworkPolicy = typed(o)?;
        let selector = np.spec.as_ref().and_then(|s| s.pod_selector.as_ref());
        Some(vec![
            json!(np.metadata.name.clone().unwrap_or_default()),
            json!(format_label_selector(selector)),
            json!(batch.since(np.metadata.creation_timestamp.as_ref())),
        ])
    },
};
