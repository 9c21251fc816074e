//! Printers of the core group's kinds besides Pod, after `printers.go`.

use super::{AGE, Batch, NAME, Printer, col, format_labels, or_none, typed};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Secret,
    Service, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub(super) static SERVICE: Printer = Printer {
    group: "",
    kind: "Service",
    columns: &[
        NAME,
        col("Type", "string", 0),
        col("Cluster-IP", "string", 0),
        col("External-IP", "string", 0),
        col("Port(s)", "string", 0),
        AGE,
        col("Selector", "string", 1),
    ],
    cells: |o, batch| {
        let svc: Service = typed(o)?;
        let spec = svc.spec.clone().unwrap_or_default();
        let ports: Vec<String> = spec
            .ports
            .iter()
            .flatten()
            .map(|p| {
                let proto = p.protocol.as_deref().unwrap_or_default();
                match p.node_port.filter(|np| *np > 0) {
                    Some(np) => format!("{}:{np}/{proto}", p.port),
                    None => format!("{}/{proto}", p.port),
                }
            })
            .collect();
        let cluster_ip = spec.cluster_ips.as_ref().and_then(|ips| ips.first());
        Some(vec![
            json!(svc.metadata.name.clone().unwrap_or_default()),
            json!(spec.type_.clone().unwrap_or_default()),
            json!(cluster_ip.cloned().unwrap_or_else(|| "<none>".into())),
            json!(external_ip(&svc)),
            json!(or_none(ports.join(","))),
            json!(batch.since(svc.metadata.creation_timestamp.as_ref())),
            json!(format_labels(spec.selector.as_ref())),
        ])
    },
};

/// `getServiceExternalIP` (wide): external IPs, a LoadBalancer's ingress or `<pending>`,
/// an ExternalName's name.
fn external_ip(svc: &Service) -> String {
    let spec = svc.spec.clone().unwrap_or_default();
    let external = spec.external_ips.clone().unwrap_or_default();
    match spec.type_.as_deref().unwrap_or_default() {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".into(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let ingress: BTreeSet<String> = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| {
                    i.ip.clone()
                        .filter(|ip| !ip.is_empty())
                        .or(i.hostname.clone().filter(|h| !h.is_empty()))
                })
                .collect();
            let mut all: Vec<String> = ingress.into_iter().collect();
            all.extend(external);
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => spec.external_name.clone().unwrap_or_default(),
        _ => "<unknown>".into(),
    }
}

pub(super) static NAMESPACE: Printer = Printer {
    group: "",
    kind: "Namespace",
    columns: &[NAME, col("Status", "string", 0), AGE],
    cells: |o, batch| {
        let ns: Namespace = typed(o)?;
        let phase = ns.status.and_then(|s| s.phase).unwrap_or_default();
        Some(vec![
            json!(ns.metadata.name.unwrap_or_default()),
            json!(phase),
            json!(batch.since(ns.metadata.creation_timestamp.as_ref())),
        ])
    },
};

pub(super) static NODE: Printer = Printer {
    group: "",
    kind: "Node",
    columns: &[
        NAME,
        col("Status", "string", 0),
        col("Roles", "string", 0),
        AGE,
        col("Version", "string", 0),
        col("Internal-IP", "string", 1),
        col("External-IP", "string", 1),
        col("OS-Image", "string", 1),
        col("Kernel-Version", "string", 1),
        col("Container-Runtime", "string", 1),
    ],
    cells: node_cells,
};

fn node_cells(o: &Value, batch: &Batch<'_>) -> Option<Vec<Value>> {
    let node: Node = typed(o)?;
    let status = node.status.clone().unwrap_or_default();
    let info = status.node_info.clone().unwrap_or_default();
    let mut state: Vec<&str> = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.type_ == "Ready")
        .map(|c| {
            if c.status == "True" {
                "Ready"
            } else {
                "NotReady"
            }
        })
        .take(1)
        .collect();
    if state.is_empty() {
        state.push("Unknown");
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        state.push("SchedulingDisabled");
    }
    let address = |ty: &str| {
        status
            .addresses
            .iter()
            .flatten()
            .find(|a| a.type_ == ty)
            .map(|a| a.address.clone())
            .unwrap_or_else(|| "<none>".into())
    };
    let unknown = |s: &str| {
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s.to_string()
        }
    };
    let mut kernel = unknown(&info.kernel_version);
    if !info.architecture.is_empty() {
        kernel = format!("{kernel} ({})", info.architecture);
    }
    Some(vec![
        json!(node.metadata.name.clone().unwrap_or_default()),
        json!(state.join(",")),
        json!(or_none(node_roles(&node).join(","))),
        json!(batch.since(node.metadata.creation_timestamp.as_ref())),
        json!(info.kubelet_version),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown(&info.os_image)),
        json!(kernel),
        json!(unknown(&info.container_runtime_version)),
    ])
}

/// `findNodeRoles`: `node-role.kubernetes.io/<role>` labels and `kubernetes.io/role`, sorted.
fn node_roles(node: &Node) -> Vec<String> {
    let roles: BTreeSet<String> = node
        .metadata
        .labels
        .iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role.to_string()),
            Some(_) => None,
            None if k == "kubernetes.io/role" && !v.is_empty() => Some(v.clone()),
            None => None,
        })
        .collect();
    roles.into_iter().collect()
}

pub(super) static EVENT: Printer = Printer {
    group: "",
    kind: "Event",
    columns: &[
        col("Last Seen", "string", 0),
        col("Type", "string", 0),
        col("Reason", "string", 0),
        col("Object", "string", 0),
        col("Subobject", "string", 1),
        col("Source", "string", 1),
        col("Message", "string", 0),
        col("First Seen", "string", 1),
        col("Count", "string", 1),
        col("Name", "string", 1),
    ],
    cells: event_cells,
};

fn event_cells(o: &Value, batch: &Batch<'_>) -> Option<Vec<Value>> {
    let ev: Event = typed(o)?;
    let micro = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime>| {
        batch.since(
            t.map(|m| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(m.0))
                .as_ref(),
        )
    };
    let first = match &ev.first_timestamp {
        Some(t) => batch.since(Some(t)),
        None => micro(ev.event_time.as_ref()),
    };
    let mut last = match &ev.last_timestamp {
        Some(t) => batch.since(Some(t)),
        None => first.clone(),
    };
    let mut count = ev.count.unwrap_or(0);
    if let Some(series) = &ev.series {
        last = micro(series.last_observed_time.as_ref());
        count = series.count.unwrap_or(0);
    } else if count == 0 {
        count = 1;
    }
    let io = &ev.involved_object;
    let kind = io.kind.clone().unwrap_or_default().to_lowercase();
    let target = match io.name.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => format!("{kind}/{name}"),
        None => kind,
    };
    let source = ev.source.clone().unwrap_or_default();
    let component = first_non_empty(source.component, ev.reporting_component.clone());
    let instance = first_non_empty(source.host, ev.reporting_instance.clone());
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    Some(vec![
        json!(last),
        json!(ev.type_.clone().unwrap_or_default()),
        json!(ev.reason.clone().unwrap_or_default()),
        json!(target),
        json!(io.field_path.clone().unwrap_or_default()),
        json!(source),
        json!(ev.message.clone().unwrap_or_default().trim()),
        json!(first),
        json!(count),
        json!(ev.metadata.name.clone().unwrap_or_default()),
    ])
}

fn first_non_empty(a: Option<String>, b: Option<String>) -> String {
    a.filter(|s| !s.is_empty()).or(b).unwrap_or_default()
}

pub(super) static ENDPOINTS: Printer = Printer {
    group: "",
    kind: "Endpoints",
    columns: &[NAME, col("Endpoints", "string", 0), AGE],
    cells: |o, batch| {
        let ep: Endpoints = typed(o)?;
        Some(vec![
            json!(ep.metadata.name.clone().unwrap_or_default()),
            json!(format_endpoints(&ep)),
            json!(batch.since(ep.metadata.creation_timestamp.as_ref())),
        ])
    },
};

/// `formatEndpoints`: the first three ready `ip:port` pairs (bare IPs for subsets without
/// ports) and how many more; `<none>` without subsets.
fn format_endpoints(ep: &Endpoints) -> String {
    let Some(subsets) = ep.subsets.as_ref().filter(|s| !s.is_empty()) else {
        return "<none>".into();
    };
    let mut all = Vec::new();
    for ss in subsets {
        let addresses = ss.addresses.clone().unwrap_or_default();
        match ss.ports.as_ref().filter(|p| !p.is_empty()) {
            None => all.extend(addresses.iter().map(|a| a.ip.clone())),
            Some(ports) => {
                for port in ports {
                    all.extend(addresses.iter().map(|a| join_host_port(&a.ip, port.port)));
                }
            }
        }
    }
    if all.len() > 3 {
        return format!("{} + {} more...", all[..3].join(","), all.len() - 3);
    }
    all.join(",")
}

/// `net.JoinHostPort`: IPv6 addresses in brackets.
fn join_host_port(ip: &str, port: i32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order, each once.
fn access_modes(modes: Option<&Vec<String>>) -> String {
    let modes = modes.cloned().unwrap_or_default();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.iter().any(|m| m == mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

fn unset(s: Option<String>) -> String {
    s.unwrap_or_else(|| "<unset>".into())
}

/// A volume's or claim's phase; Terminating once it is being deleted.
fn volume_phase(meta: &ObjectMeta, phase: Option<String>) -> String {
    match meta.deletion_timestamp {
        Some(_) => "Terminating".into(),
        None => phase.unwrap_or_default(),
    }
}

/// `GetPersistentVolume(Claim)Class`: the beta annotation first, then the spec's class.
fn storage_class(meta: &ObjectMeta, class: Option<String>) -> String {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(BETA_STORAGE_CLASS).cloned())
        .or(class)
        .unwrap_or_default()
}

/// A `resource.Quantity` value's string; "0" when unset, as Go prints the zero Quantity.
fn storage(capacity: Option<&BTreeMap<String, Quantity>>) -> String {
    capacity
        .and_then(|c| c.get("storage"))
        .map_or_else(|| "0".into(), |q| q.0.clone())
}

pub(super) static PERSISTENT_VOLUME: Printer = Printer {
    group: "",
    kind: "PersistentVolume",
    columns: &[
        NAME,
        col("Capacity", "string", 0),
        col("Access Modes", "string", 0),
        col("Reclaim Policy", "string", 0),
        col("Status", "string", 0),
        col("Claim", "string", 0),
        col("StorageClass", "string", 0),
        col("VolumeAttributesClass", "string", 0),
        col("Reason", "string", 0),
        AGE,
        col("VolumeMode", "string", 1),
    ],
    cells: |o, batch| {
        let pv: PersistentVolume = typed(o)?;
        let spec = pv.spec.clone().unwrap_or_default();
        let status = pv.status.clone().unwrap_or_default();
        let claim = spec
            .claim_ref
            .as_ref()
            .map(|c| {
                let ns = c.namespace.clone().unwrap_or_default();
                format!("{ns}/{}", c.name.clone().unwrap_or_default())
            })
            .unwrap_or_default();
        let meta = &pv.metadata;
        Some(vec![
            json!(meta.name.clone().unwrap_or_default()),
            json!(storage(spec.capacity.as_ref())),
            json!(access_modes(spec.access_modes.as_ref())),
            json!(spec.persistent_volume_reclaim_policy.unwrap_or_default()),
            json!(volume_phase(meta, status.phase.clone())),
            json!(claim),
            json!(storage_class(meta, spec.storage_class_name.clone())),
            json!(unset(spec.volume_attributes_class_name)),
            json!(status.reason.unwrap_or_default()),
            json!(batch.since(meta.creation_timestamp.as_ref())),
            json!(unset(spec.volume_mode)),
        ])
    },
};

pub(super) static PERSISTENT_VOLUME_CLAIM: Printer = Printer {
    group: "",
    kind: "PersistentVolumeClaim",
    columns: &[
        NAME,
        col("Status", "string", 0),
        col("Volume", "string", 0),
        col("Capacity", "string", 0),
        col("Access Modes", "string", 0),
        col("StorageClass", "string", 0),
        col("VolumeAttributesClass", "string", 0),
        AGE,
        col("VolumeMode", "string", 1),
    ],
    cells: |o, batch| {
        let pvc: PersistentVolumeClaim = typed(o)?;
        let spec = pvc.spec.clone().unwrap_or_default();
        let status = pvc.status.clone().unwrap_or_default();
        let meta = &pvc.metadata;
        let volume = spec.volume_name.clone().unwrap_or_default();
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            let modes = access_modes(status.access_modes.as_ref());
            (storage(status.capacity.as_ref()), modes)
        };
        Some(vec![
            json!(meta.name.clone().unwrap_or_default()),
            json!(volume_phase(meta, status.phase.clone())),
            json!(volume),
            json!(capacity),
            json!(modes),
            json!(storage_class(meta, spec.storage_class_name.clone())),
            json!(unset(spec.volume_attributes_class_name)),
            json!(batch.since(meta.creation_timestamp.as_ref())),
            json!(unset(spec.volume_mode)),
        ])
    },
};

pub(super) static CONFIG_MAP: Printer = Printer {
    group: "",
    kind: "ConfigMap",
    columns: &[NAME, col("Data", "string", 0), AGE],
    cells: |o, batch| {
        let cm: ConfigMap = typed(o)?;
        let n = cm.data.map_or(0, |d| d.len()) + cm.binary_data.map_or(0, |d| d.len());
        Some(vec![
            json!(cm.metadata.name.unwrap_or_default()),
            json!(n),
            json!(batch.since(cm.metadata.creation_timestamp.as_ref())),
        ])
    },
};

pub(super) static SECRET: Printer = Printer {
    group: "",
    kind: "Secret",
    columns: &[
        NAME,
        col("Type", "string", 0),
        col("Data", "string", 0),
        AGE,
    ],
    cells: |o, batch| {
        let secret: Secret = typed(o)?;
        Some(vec![
            json!(secret.metadata.name.unwrap_or_default()),
            json!(secret.type_.unwrap_or_default()),
            json!(secret.data.map_or(0, |d| d.len())),
            json!(batch.since(secret.metadata.creation_timestamp.as_ref())),
        ])
    },
};

pub(super) static SERVICE_ACCOUNT: Printer = Printer {
    group: "",
    kind: "ServiceAccount",
    columns: &[NAME, AGE],
    cells: |o, batch| {
        let sa: ServiceAccount = typed(o)?;
        Some(vec![
            json!(sa.metadata.name.unwrap_or_default()),
            json!(batch.since(sa.metadata.creation_timestamp.as_ref())),
        ])
    },
};
