//! Printers of the apps group: Deployment, ReplicaSet and StatefulSet.

use super::{
    AGE, NAME, Printer, col, container_cells, format_label_selector, selector_string, typed,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use serde_json::json;

const CONTAINERS: super::Column = col("Containers", "string", 1);
const IMAGES: super::Column = col("Images", "string", 1);
const SELECTOR: super::Column = col("Selector", "string", 1);

pub(super) static DEPLOYMENT: Printer = Printer {
    group: "apps",
    kind: "Deployment",
    columns: &[
        NAME,
        col("Ready", "string", 0),
        col("Up-to-date", "string", 0),
        col("Available", "string", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    cells: |o, batch| {
        let d: Deployment = typed(o)?;
        let spec = d.spec.clone();
        let status = d.status.clone().unwrap_or_default();
        let (names, images) = container_cells(spec.template.spec.as_ref());
        Some(vec![
            json!(d.metadata.name.clone().unwrap_or_default()),
            json!(format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                spec.replicas.unwrap_or(1)
            )),
            json!(status.updated_replicas.unwrap_or(0)),
            json!(status.available_replicas.unwrap_or(0)),
            json!(batch.since(d.metadata.creation_timestamp.as_ref())),
            json!(names),
            json!(images),
            json!(selector_string(Some(&spec.selector))),
        ])
    },
};

pub(super) static REPLICA_SET: Printer = Printer {
    group: "apps",
    kind: "ReplicaSet",
    columns: &[
        NAME,
        col("Desired", "integer", 0),
        col("Current", "integer", 0),
        col("Ready", "integer", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    cells: |o, batch| {
        let rs: ReplicaSet = typed(o)?;
        let spec = rs.spec.clone();
        let status = rs.status.clone().unwrap_or_default();
        let template = spec.template.as_ref().and_then(|t| t.spec.as_ref());
        let (names, images) = container_cells(template);
        Some(vec![
            json!(rs.metadata.name.clone().unwrap_or_default()),
            json!(spec.replicas.unwrap_or(1)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
            json!(batch.since(rs.metadata.creation_timestamp.as_ref())),
            json!(names),
            json!(images),
            json!(format_label_selector(Some(&spec.selector))),
        ])
    },
};

pub(super) static STATEFUL_SET: Printer = Printer {
    group: "apps",
    kind: "StatefulSet",
    columns: &[NAME, col("Ready", "string", 0), AGE, CONTAINERS, IMAGES],
    cells: |o, batch| {
        let sts: StatefulSet = typed(o)?;
        let spec = sts.spec.clone();
        let status = sts.status.clone().unwrap_or_default();
        let (names, images) = container_cells(spec.template.spec.as_ref());
        Some(vec![
            json!(sts.metadata.name.clone().unwrap_or_default()),
            json!(format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                spec.replicas.unwrap_or(1)
            )),
            json!(batch.since(sts.metadata.creation_timestamp.as_ref())),
            json!(names),
            json!(images),
        ])
    },
};
