//! Printers of autoscaling, discovery, coordination and storage kinds.

use super::{AGE, Batch, NAME, Printer, col, list_with_more, typed};
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, MetricSpec, MetricStatus};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{Value, json};

pub(super) static HORIZONTAL_POD_AUTOSCALER: Printer = Printer {
    group: "autoscaling",
    kind: "HorizontalPodAutoscaler",
    columns: &[
        NAME,
        col("Reference", "string", 0),
        col("Targets", "string", 0),
        col("MinPods", "string", 0),
        col("MaxPods", "string", 0),
        col("Replicas", "string", 0),
        AGE,
    ],
    cells: |o, batch| {
        let hpa: HorizontalPodAutoscaler = typed(o)?;
        let spec = hpa.spec.clone();
        let status = hpa.status.clone().unwrap_or_default();
        let target = &spec.scale_target_ref;
        let current = status.current_metrics.clone().unwrap_or_default();
        Some(vec![
            json!(hpa.metadata.name.clone().unwrap_or_default()),
            json!(format!("{}/{}", target.kind, target.name)),
            json!(format_hpa_metrics(
                spec.metrics.as_deref().unwrap_or_default(),
                &current
            )),
            json!(
                spec.min_replicas
                    .map_or_else(|| "<unset>".to_string(), |m| m.to_string())
            ),
            json!(spec.max_replicas),
            json!(status.current_replicas.unwrap_or(0)),
            json!(batch.since(hpa.metadata.creation_timestamp.as_ref())),
        ])
    },
};

/// `formatHPAMetrics`: `current/target` per metric (at most two, then `+ N more...`),
/// `<none>` without metrics.
fn format_hpa_metrics(specs: &[MetricSpec], statuses: &[MetricStatus]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let all: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| format_metric(spec, statuses.get(i)))
        .collect();
    if all.len() > 2 {
        return format!("{} + {} more...", all[..2].join(", "), all.len() - 2);
    }
    all.join(", ")
}

const UNKNOWN: &str = "<unknown>";

/// A `*resource.Quantity` as Go prints it: `<nil>` when unset.
fn quantity(q: Option<&k8s_openapi::apimachinery::pkg::api::resource::Quantity>) -> String {
    q.map(|q| q.0.clone()).unwrap_or_else(|| "<nil>".into())
}

/// One metric of an HPA as kubectl shows it.
fn format_metric(spec: &MetricSpec, status: Option<&MetricStatus>) -> String {
    match spec.type_.as_str() {
        "External" => {
            let (Some(ext), cur) = (&spec.external, status.and_then(|s| s.external.as_ref()))
            else {
                return "<unknown type>".into();
            };
            let current = cur.map(|c| &c.current);
            value_or_average(&ext.target, current)
        }
        "Pods" => {
            let Some(pods) = &spec.pods else {
                return "<unknown type>".into();
            };
            let current = status.and_then(|s| s.pods.as_ref()).map_or_else(
                || UNKNOWN.into(),
                |p| quantity(p.current.average_value.as_ref()),
            );
            format!("{current}/{}", quantity(pods.target.average_value.as_ref()))
        }
        "Object" => {
            let (Some(obj), cur) = (&spec.object, status.and_then(|s| s.object.as_ref())) else {
                return "<unknown type>".into();
            };
            value_or_average(&obj.target, cur.map(|c| &c.current))
        }
        "Resource" => {
            let Some(res) = &spec.resource else {
                return "<unknown type>".into();
            };
            let cur = status.and_then(|s| s.resource.as_ref()).map(|r| &r.current);
            resource_metric(&res.name, &res.target, cur)
        }
        "ContainerResource" => {
            let Some(res) = &spec.container_resource else {
                return "<unknown type>".into();
            };
            let cur = status
                .and_then(|s| s.container_resource.as_ref())
                .map(|r| &r.current);
            resource_metric(&res.name, &res.target, cur)
        }
        _ => "<unknown type>".into(),
    }
}

/// External and Object metrics: `current/target (avg)` for average values, else values.
fn value_or_average(
    target: &k8s_openapi::api::autoscaling::v2::MetricTarget,
    current: Option<&k8s_openapi::api::autoscaling::v2::MetricValueStatus>,
) -> String {
    match &target.average_value {
        Some(avg) => {
            let cur = current
                .and_then(|c| c.average_value.as_ref())
                .map_or_else(|| UNKNOWN.into(), |q| q.0.clone());
            format!("{cur}/{} (avg)", avg.0)
        }
        None => {
            let cur = current.map_or_else(|| UNKNOWN.into(), |c| quantity(c.value.as_ref()));
            format!("{cur}/{}", quantity(target.value.as_ref()))
        }
    }
}

/// Resource and ContainerResource metrics: `cpu: 30%/50%`, or average values.
fn resource_metric(
    name: &str,
    target: &k8s_openapi::api::autoscaling::v2::MetricTarget,
    current: Option<&k8s_openapi::api::autoscaling::v2::MetricValueStatus>,
) -> String {
    if let Some(avg) = &target.average_value {
        let cur = current.map_or_else(|| UNKNOWN.into(), |c| quantity(c.average_value.as_ref()));
        return format!("{name}: {cur}/{}", avg.0);
    }
    let cur = current
        .and_then(|c| c.average_utilization)
        .map_or_else(|| UNKNOWN.into(), |u| format!("{u}%"));
    let want = target
        .average_utilization
        .map_or_else(|| "<auto>".into(), |u| format!("{u}%"));
    format!("{name}: {cur}/{want}")
}

pub(super) static ENDPOINT_SLICE: Printer = Printer {
    group: "discovery.k8s.io",
    kind: "EndpointSlice",
    columns: &[
        NAME,
        col("AddressType", "string", 0),
        col("Ports", "string", 0),
        col("Endpoints", "string", 0),
        AGE,
    ],
    cells: |o, batch| {
        let slice: EndpointSlice = typed(o)?;
        let ports: Vec<String> = slice
            .ports
            .iter()
            .flatten()
            .map(|p| match (p.port, &p.name) {
                (Some(port), _) => port.to_string(),
                (None, Some(name)) => name.clone(),
                (None, None) => "*".into(),
            })
            .collect();
        let addresses: Vec<String> = slice
            .endpoints
            .iter()
            .flatten()
            .flat_map(|e| e.addresses.iter().cloned())
            .collect();
        Some(vec![
            json!(slice.metadata.name.clone().unwrap_or_default()),
            json!(slice.address_type),
            json!(list_with_more(ports, 3)),
            json!(list_with_more(addresses, 3)),
            json!(batch.since(slice.metadata.creation_timestamp.as_ref())),
        ])
    },
};

pub(super) static LEASE: Printer = Printer {
    group: "coordination.k8s.io",
    kind: "Lease",
    columns: &[NAME, col("Holder", "string", 0), AGE],
    cells: |o, batch| {
        let lease: Lease = typed(o)?;
        let holder = lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default();
        Some(vec![
            json!(lease.metadata.name.unwrap_or_default()),
            json!(holder),
            json!(batch.since(lease.metadata.creation_timestamp.as_ref())),
        ])
    },
};

const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";

pub(super) static STORAGE_CLASS: Printer = Printer {
    group: "storage.k8s.io",
    kind: "StorageClass",
    columns: &[
        NAME,
        col("Provisioner", "string", 0),
        col("ReclaimPolicy", "string", 0),
        col("VolumeBindingMode", "string", 0),
        col("AllowVolumeExpansion", "string", 0),
        AGE,
    ],
    cells: storage_class_cells,
};

fn storage_class_cells(o: &Value, batch: &Batch<'_>) -> Option<Vec<Value>> {
    let sc: StorageClass = typed(o)?;
    let name = sc.metadata.name.clone().unwrap_or_default();
    let shown = if effective_default(batch).as_deref() == Some(name.as_str()) {
        format!("{name} (default)")
    } else {
        name
    };
    Some(vec![
        json!(shown),
        json!(sc.provisioner),
        json!(sc.reclaim_policy.unwrap_or_else(|| "Delete".into())),
        json!(sc.volume_binding_mode.unwrap_or_else(|| "Immediate".into())),
        json!(sc.allow_volume_expansion.unwrap_or(false)),
        json!(batch.since(sc.metadata.creation_timestamp.as_ref())),
    ])
}

/// `getEffectiveDefaultStorageClass`: of the classes printed together that are marked
/// default, the newest (then the first by name).
fn effective_default(batch: &Batch<'_>) -> Option<String> {
    batch
        .items
        .iter()
        .filter_map(|o| typed::<StorageClass>(o))
        .filter(|sc| {
            let a = sc.metadata.annotations.clone().unwrap_or_default();
            [DEFAULT_CLASS, BETA_DEFAULT_CLASS]
                .iter()
                .any(|k| a.get(*k).map(String::as_str) == Some("true"))
        })
        .map(|sc| {
            let created = sc.metadata.creation_timestamp.map(|t| t.0);
            (created, sc.metadata.name.unwrap_or_default())
        })
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, name)| name)
}
