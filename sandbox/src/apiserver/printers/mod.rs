//! `meta.k8s.io/v1` Table answers: the columns `kubectl get` prints. As in Kubernetes'
//! `pkg/printers/internalversion`, each kind has one printer: its column definitions and a
//! function from one typed object to its cells (always the wide set, as the API server
//! sends them). Kinds without a printer get the default Name and Created At columns.

mod access;
mod apps;
mod core;
mod networking;
mod other;
mod pod;
mod workloads;

use crate::apimachinery::resources::Resource;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One column definition, as in `metav1.TableColumnDefinition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    /// The OpenAPI type of the cells: `string`, `integer`, `boolean` or `date`.
    pub(crate) ty: &'static str,
    /// 0 for the columns `kubectl get` shows, 1 for those only `-o wide` shows.
    pub(crate) priority: u8,
}

const fn col(name: &'static str, ty: &'static str, priority: u8) -> Column {
    Column { name, ty, priority }
}

const NAME: Column = col("Name", "string", 0);
const AGE: Column = col("Age", "string", 0);

/// What one row is printed with: the other objects printed with it and the time it is
/// printed at (ages are relative to it).
pub(crate) struct Batch<'a> {
    pub(crate) items: &'a [Arc<Value>],
    pub(crate) now: Timestamp,
}

impl Batch<'_> {
    /// `translateTimestampSince`: the AGE of a timestamp, `<unknown>` when unset.
    fn since(&self, t: Option<&Time>) -> String {
        match t {
            Some(t) => human_duration(self.now.duration_since(t.0)),
            None => "<unknown>".into(),
        }
    }
}

/// A kind's printer: its columns and the cells of one object.
pub(crate) struct Printer {
    pub(crate) group: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) columns: &'static [Column],
    pub(crate) cells: fn(&Value, &Batch<'_>) -> Option<Vec<Value>>,
}

/// Every kind with a printer of its own.
static PRINTERS: &[&Printer] = &[
    &pod::POD,
    &core::SERVICE,
    &core::NAMESPACE,
    &core::NODE,
    &core::EVENT,
    &core::ENDPOINTS,
    &core::PERSISTENT_VOLUME,
    &core::PERSISTENT_VOLUME_CLAIM,
    &core::CONFIG_MAP,
    &core::SECRET,
    &core::SERVICE_ACCOUNT,
    &apps::DEPLOYMENT,
    &apps::REPLICA_SET,
    &apps::STATEFUL_SET,
    &other::HORIZONTAL_POD_AUTOSCALER,
    &other::ENDPOINT_SLICE,
    &other::LEASE,
    &other::STORAGE_CLASS,
    &workloads::JOB,
    &workloads::CRON_JOB,
    &workloads::DAEMON_SET,
    &workloads::REPLICATION_CONTROLLER,
    &access::ROLE,
    &access::CLUSTER_ROLE,
    &access::ROLE_BINDING,
    &access::CLUSTER_ROLE_BINDING,
    &access::POD_DISRUPTION_BUDGET,
    &networking::INGRESS,
    &networking::INGRESS_CLASS,
    &networking::NETWORK_POLICY,
];

/// The default Table of kinds without a printer, as the API server's default convertor.
static DEFAULT: Printer = Printer {
    group: "",
    kind: "",
    columns: &[NAME, col("Created At", "date", 0)],
    cells: |o, _| {
        let m = &o["metadata"];
        Some(vec![
            json!(text(&m["name"])),
            json!(text(&m["creationTimestamp"])),
        ])
    },
};

fn printer_for(r: &Resource) -> &'static Printer {
    PRINTERS
        .iter()
        .find(|p| p.group == r.group && p.kind == r.kind)
        .copied()
        .unwrap_or(&DEFAULT)
}

/// The cells of one object. An object its printer cannot read (it does not decode as its
/// kind) still gets a row: its name and age, the other cells empty.
fn row_cells(printer: &Printer, o: &Value, batch: &Batch<'_>) -> Vec<Value> {
    if let Some(cells) = (printer.cells)(o, batch) {
        return cells;
    }
    let meta = typed::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(&o["metadata"])
        .unwrap_or_default();
    printer
        .columns
        .iter()
        .map(|c| match c.name {
            "Name" => json!(meta.name.clone().unwrap_or_default()),
            "Age" => json!(batch.since(meta.creation_timestamp.as_ref())),
            _ => json!(""),
        })
        .collect()
}

/// Row conditions (`Completed` for finished pods), which kubectl reads to tell them apart.
fn row_conditions(r: &Resource, o: &Value) -> Option<Value> {
    if r.group.is_empty() && r.kind == "Pod" {
        return pod::row_conditions(o);
    }
    None
}

/// A partial-object row object, as `includeObject=Metadata` (the default) returns.
pub(crate) fn partial_metadata(o: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]})
}

fn column_definitions(printer: &Printer) -> Vec<Value> {
    printer
        .columns
        .iter()
        .map(|c| {
            let format = if c.name == "Name" { "name" } else { "" };
            json!({"name": c.name, "type": c.ty, "format": format, "description": c.name, "priority": c.priority})
        })
        .collect()
}

/// Renders objects as a Table. `include_object` is the query parameter (`None`,
/// `Metadata` or `Object`); watches send the column definitions with their first row only.
pub(crate) fn table(
    r: &Resource,
    items: &[Arc<Value>],
    include_object: &str,
    resource_version: u64,
    with_columns: bool,
) -> Value {
    table_at(
        r,
        &Batch {
            items,
            now: Timestamp::now(),
        },
        include_object,
        resource_version,
        with_columns,
    )
}

fn table_at(
    r: &Resource,
    batch: &Batch<'_>,
    include_object: &str,
    resource_version: u64,
    with_columns: bool,
) -> Value {
    let printer = printer_for(r);
    // Printers read the storage version, as the API server prints its internal objects.
    let stored = crate::apiserver::conversion::storage_of(r);
    let rows: Vec<Value> = batch
        .items
        .iter()
        .map(|o| {
            let object = match include_object {
                "None" => Value::Null,
                "Object" => (**o).clone(),
                _ => partial_metadata(o),
            };
            let converted =
                (stored != r).then(|| crate::apiserver::conversion::to_version(o, stored));
            let cells = row_cells(printer, converted.as_ref().unwrap_or(o), batch);
            let mut row = json!({"cells": cells, "object": object});
            if let Some(conditions) = row_conditions(r, o) {
                row["conditions"] = conditions;
            }
            row
        })
        .collect();
    let columns = if with_columns {
        column_definitions(printer)
    } else {
        Vec::new()
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version.to_string()},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

// ---- helpers shared by the printers, as in printers.go ----

/// Decodes a stored object as its typed kind.
fn typed<T: DeserializeOwned>(o: &Value) -> Option<T> {
    T::deserialize(o).ok()
}

/// A JSON scalar as text (strings unquoted, null empty).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// Kubernetes' `duration.HumanDuration`, as in the AGE column.
pub(crate) fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_remainder(minutes, "m", seconds % 60, "s");
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return with_remainder(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return with_remainder(hours / 24, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return with_remainder(hours / 24 / 365, "y", (hours / 24) % 365, "d");
    }
    format!("{}y", hours / 24 / 365)
}

/// `3m` or `3m10s`: the remainder is left out when zero.
fn with_remainder(whole: i64, unit: &str, rest: i64, rest_unit: &str) -> String {
    if rest == 0 {
        format!("{whole}{unit}")
    } else {
        format!("{whole}{unit}{rest}{rest_unit}")
    }
}

/// `metav1.FormatLabelSelector`: requirements sorted by key, `<none>` when empty.
fn format_label_selector(sel: Option<&LabelSelector>) -> String {
    or_none(selector_string(sel))
}

/// `metav1.LabelSelectorAsSelector(..).String()`: requirements sorted by key, set values
/// sorted, empty for an empty or missing selector.
fn selector_string(sel: Option<&LabelSelector>) -> String {
    let Some(sel) = sel else {
        return String::new();
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        reqs.push((k.clone(), format!("{k}={v}")));
    }
    for e in sel.match_expressions.iter().flatten() {
        let mut values = e.values.clone().unwrap_or_default();
        values.sort();
        let k = &e.key;
        let s = match e.operator.as_str() {
            "In" => format!("{k} in ({})", values.join(",")),
            "NotIn" => format!("{k} notin ({})", values.join(",")),
            "Exists" => k.clone(),
            "DoesNotExist" => format!("!{k}"),
            _ => return "<error>".into(),
        };
        reqs.push((k.clone(), s));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, s)| s)
        .collect::<Vec<_>>()
        .join(",")
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, `<none>` when empty.
fn format_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    or_none(
        labels
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// `layoutContainerCells`: the names and the images of a pod template's containers.
fn container_cells(spec: Option<&k8s_openapi::api::core::v1::PodSpec>) -> (String, String) {
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c.image.as_deref().unwrap_or_default())
        .collect();
    (names.join(","), images.join(","))
}

/// `listWithMoreString`: at most `max` items, then `+ N more...`; `<unset>` when empty.
fn list_with_more(all: Vec<String>, max: usize) -> String {
    if all.len() > max {
        return format!("{} + {} more...", all[..max].join(","), all.len() - max);
    }
    if all.is_empty() {
        return "<unset>".into();
    }
    all.join(",")
}

#[cfg(test)]
mod tests;
