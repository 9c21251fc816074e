//! Printers of the access kinds, as Kubernetes' own: RBAC roles and bindings, and
//! PodDisruptionBudgets.

use super::{AGE, Batch, NAME, Printer, col, text};
use serde_json::{Value, json};

const CREATED_AT: super::Column = col("Created At", "date", 0);

fn role_cells(o: &Value, _: &Batch<'_>) -> Option<Vec<Value>> {
    let m = &o["metadata"];
    Some(vec![
        json!(text(&m["name"])),
        json!(text(&m["creationTimestamp"])),
    ])
}

pub(super) static ROLE: Printer = Printer {
    group: "rbac.authorization.k8s.io",
    kind: "Role",
    columns: &[NAME, CREATED_AT],
    cells: role_cells,
};

pub(super) static CLUSTER_ROLE: Printer = Printer {
    group: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    columns: &[NAME, CREATED_AT],
    cells: role_cells,
};

const BINDING_COLUMNS: &[super::Column] = &[
    NAME,
    col("Role", "string", 0),
    AGE,
    col("Users", "string", 1),
    col("Groups", "string", 1),
    col("ServiceAccounts", "string", 1),
];

/// Users, groups and ServiceAccounts (`ns/name`) of a binding's subjects, as
/// `rbac.SubjectsStrings`.
fn binding_cells(o: &Value, batch: &Batch<'_>) -> Option<Vec<Value>> {
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = super::typed(o)?;
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut accounts = Vec::new();
    for s in binding.subjects.iter().flatten() {
        match s.kind.as_str() {
            "User" => users.push(s.name.clone()),
            "Group" => groups.push(s.name.clone()),
            "ServiceAccount" => accounts.push(match s.namespace.as_deref() {
                Some(ns) if !ns.is_empty() => format!("{ns}/{}", s.name),
                _ => s.name.clone(),
            }),
            _ => {}
        }
    }
    Some(vec![
        json!(binding.metadata.name.unwrap_or_default()),
        json!(format!(
            "{}/{}",
            binding.role_ref.kind, binding.role_ref.name
        )),
        json!(batch.since(binding.metadata.creation_timestamp.as_ref())),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(accounts.join(", ")),
    ])
}

pub(super) static ROLE_BINDING: Printer = Printer {
    group: "rbac.authorization.k8s.io",
    kind: "RoleBinding",
    columns: BINDING_COLUMNS,
    cells: binding_cells,
};

pub(super) static CLUSTER_ROLE_BINDING: Printer = Printer {
    group: "rbac.authorization.k8s.io",
    kind: "ClusterRoleBinding",
    columns: BINDING_COLUMNS,
    cells: binding_cells,
};

pub(super) static POD_DISRUPTION_BUDGET: Printer = Printer {
    group: "policy",
    kind: "PodDisruptionBudget",
    columns: &[
        NAME,
        col("Min Available", "string", 0),
        col("Max Unavailable", "string", 0),
        col("Allowed Disruptions", "integer", 0),
        AGE,
    ],
    cells: |o, batch| {
        let pdb: k8s_openapi::api::policy::v1::PodDisruptionBudget = super::typed(o)?;
        let spec = pdb.spec.unwrap_or_default();
        let show = |v: Option<k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>| match v {
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n)) => {
                n.to_string()
            }
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => s,
            None => "N/A".into(),
        };
        Some(vec![
            json!(pdb.metadata.name.unwrap_or_default()),
            json!(show(spec.min_available)),
            json!(show(spec.max_unavailable)),
            json!(pdb.status.and_then(|s| s.disruptions_allowed).unwrap_or(0)),
            json!(batch.since(pdb.metadata.creation_timestamp.as_ref())),
        ])
    },
};
