//! Printers of the other workload kinds: Job, CronJob, DaemonSet, ReplicationController,
//! with the columns of Kubernetes 1.37's printers.go.

use super::{
    AGE, Batch, NAME, Printer, col, container_cells, format_label_selector, format_labels,
    human_duration, typed,
};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::batch::v1::{CronJob, Job, JobCondition};
use k8s_openapi::api::core::v1::ReplicationController;
use serde_json::{Value, json};

const CONTAINERS: super::Column = col("Containers", "string", 1);
const IMAGES: super::Column = col("Images", "string", 1);
const SELECTOR: super::Column = col("Selector", "string", 1);

fn has_condition(conditions: &[JobCondition], ty: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == ty && c.status == "True")
}

/// The Status column: the first of these conditions the Job has, else Running.
fn job_status(job: &Job) -> &'static str {
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let has = |t| has_condition(&conditions, t);
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if job.metadata.deletion_timestamp.is_some() {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

fn job_cells(o: &Value, batch: &Batch<'_>) -> Option<Vec<Value>> {
    let job: Job = typed(o)?;
    let spec = job.spec.clone().unwrap_or_default();
    let status = job.status.clone().unwrap_or_default();
    let succeeded = status.succeeded.unwrap_or(0);
    let completions = match (spec.completions, spec.parallelism.unwrap_or(0)) {
        (Some(c), _) => format!("{succeeded}/{c}"),
        (None, p) if p > 1 => format!("{succeeded}/1 of {p}"),
        (None, _) => format!("{succeeded}/1"),
    };
    let duration = match (&status.start_time, &status.completion_time) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(batch.now.duration_since(start.0)),
        (Some(start), Some(end)) => human_duration(end.0.duration_since(start.0)),
    };
    let (names, images) = container_cells(spec.template.spec.as_ref());
    Some(vec![
        json!(job.metadata.name.clone().unwrap_or_default()),
        json!(job_status(&job)),
        json!(completions),
        json!(duration),
        json!(batch.since(job.metadata.creation_timestamp.as_ref())),
        json!(names),
        json!(images),
        json!(format_label_selector(spec.selector.as_ref())),
    ])
}

pub(super) static JOB: Printer = Printer {
    group: "batch",
    kind: "Job",
    columns: &[
        NAME,
        col("Status", "string", 0),
        col("Completions", "string", 0),
        col("Duration", "string", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    cells: job_cells,
};

fn cron_job_cells(o: &Value, batch: &Batch<'_>) -> Option<Vec<Value>> {
    let cj: CronJob = typed(o)?;
    let status = cj.status.clone().unwrap_or_default();
    let last = match &status.last_schedule_time {
        Some(t) => batch.since(Some(t)),
        None => "<none>".into(),
    };
    let template = cj.spec.job_template.spec.clone().unwrap_or_default();
    let (names, images) = container_cells(template.template.spec.as_ref());
    Some(vec![
        json!(cj.metadata.name.clone().unwrap_or_default()),
        json!(cj.spec.schedule),
        json!(cj.spec.time_zone.clone().unwrap_or_else(|| "<none>".into())),
        json!(
            cj.spec
                .suspend
                .map_or("<unset>", |s| if s { "True" } else { "False" })
        ),
        json!(status.active.map_or(0, |a| a.len())),
        json!(last),
        json!(batch.since(cj.metadata.creation_timestamp.as_ref())),
        json!(names),
        json!(images),
        json!(format_label_selector(template.selector.as_ref())),
    ])
}

pub(super) static CRON_JOB: Printer = Printer {
    group: "batch",
    kind: "CronJob",
    columns: &[
        NAME,
        col("Schedule", "string", 0),
        col("Timezone", "string", 0),
        col("Suspend", "boolean", 0),
        col("Active", "integer", 0),
        col("Last Schedule", "string", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    cells: cron_job_cells,
};

pub(super) static DAEMON_SET: Printer = Printer {
    group: "apps",
    kind: "DaemonSet",
    columns: &[
        NAME,
        col("Desired", "integer", 0),
        col("Current", "integer", 0),
        col("Ready", "integer", 0),
        col("Up-to-date", "integer", 0),
        col("Available", "integer", 0),
        col("Node Selector", "string", 0),
        AGE,
        CONTAINERS,
        IMAGES,
        SELECTOR,
    ],
    cells: |o, batch| {
        let ds: DaemonSet = typed(o)?;
        let status = ds.status.clone().unwrap_or_default();
        let pod = ds.spec.template.spec.as_ref();
        let (names, images) = container_cells(pod);
        Some(vec![
            json!(ds.metadata.name.clone().unwrap_or_default()),
            json!(status.desired_number_scheduled),
            json!(status.current_number_scheduled),
            json!(status.number_ready),
            json!(status.updated_number_scheduled.unwrap_or(0)),
            json!(status.number_available.unwrap_or(0)),
            json!(format_labels(pod.and_then(|p| p.node_selector.as_ref()))),
            json!(batch.since(ds.metadata.creation_timestamp.as_ref())),
            json!(names),
            json!(images),
            json!(format_label_selector(Some(&ds.spec.selector))),
        ])
    },
};

pub(super) static REPLICATION_CONTROLLER: Printer = Printer {
    group: "",
    kind: "ReplicationController",
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
        let rc: ReplicationController = typed(o)?;
        let spec = rc.spec.clone().unwrap_or_default();
        let status = rc.status.clone().unwrap_or_default();
        let pod = spec.template.as_ref().and_then(|t| t.spec.as_ref());
        let (names, images) = container_cells(pod);
        Some(vec![
            json!(rc.metadata.name.clone().unwrap_or_default()),
            json!(spec.replicas.unwrap_or(0)),
            json!(status.replicas),
            json!(status.ready_replicas.unwrap_or(0)),
            json!(batch.since(rc.metadata.creation_timestamp.as_ref())),
            json!(names),
            json!(images),
            json!(format_labels(spec.selector.as_ref())),
        ])
    },
};
