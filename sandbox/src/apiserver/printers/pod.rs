//! The Pod printer: READY, STATUS and RESTARTS computed as `printPod` does, including init
//! and sidecar containers.

use super::{AGE, Batch, NAME, Printer, col, typed};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

pub(super) static POD: Printer = Printer {
    group: "",
    kind: "Pod",
    columns: &[
        NAME,
        col("Ready", "string", 0),
        col("Status", "string", 0),
        col("Restarts", "string", 0),
        AGE,
        col("IP", "string", 1),
        col("Node", "string", 1),
        col("Nominated Node", "string", 1),
        col("Readiness Gates", "string", 1),
    ],
    cells: pod_cells,
};

fn pod_cells(o: &Value, batch: &Batch<'_>) -> Option<Vec<Value>> {
    let pod: Pod = typed(o)?;
    let summary = summarize(&pod);
    let restarts = match &summary.last_restart {
        Some(t) if summary.restarts != 0 => {
            format!("{} ({} ago)", summary.restarts, batch.since(Some(t)))
        }
        _ => summary.restarts.to_string(),
    };
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let pod_ip = status
        .pod_ips
        .as_ref()
        .and_then(|ips| ips.first())
        .map(|ip| ip.ip.clone())
        .filter(|ip| !ip.is_empty());
    Some(vec![
        json!(pod.metadata.name.clone().unwrap_or_default()),
        json!(format!("{}/{}", summary.ready, summary.total)),
        json!(summary.reason),
        json!(restarts),
        json!(batch.since(pod.metadata.creation_timestamp.as_ref())),
        json!(pod_ip.unwrap_or_else(|| "<none>".into())),
        json!(non_empty(spec.node_name)),
        json!(non_empty(status.nominated_node_name.clone())),
        json!(readiness_gates(&pod)),
    ])
}

fn non_empty(s: Option<String>) -> String {
    s.filter(|s| !s.is_empty())
        .unwrap_or_else(|| "<none>".into())
}

/// `Completed` row conditions for Succeeded and Failed pods.
pub(super) fn row_conditions(o: &Value) -> Option<Value> {
    let (reason, message) = match o["status"]["phase"].as_str()? {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// What the READY, STATUS and RESTARTS columns say.
#[derive(Debug, Default)]
struct Summary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i32,
    last_restart: Option<Time>,
    /// The sidecars' share of the restarts, which still counts once the pod runs.
    sidecar_restarts: i32,
    sidecar_last_restart: Option<Time>,
}

impl Summary {
    fn count_restarts(&mut self, c: &ContainerStatus) {
        count(&mut self.restarts, &mut self.last_restart, c);
    }
}

fn count(restarts: &mut i32, last: &mut Option<Time>, c: &ContainerStatus) {
    *restarts += c.restart_count;
    if let Some(t) = last_termination(c)
        && last.as_ref().is_none_or(|l| l.0 < t.0)
    {
        *last = Some(t.clone());
    }
}

fn last_termination(c: &ContainerStatus) -> Option<&Time> {
    c.last_state
        .as_ref()?
        .terminated
        .as_ref()?
        .finished_at
        .as_ref()
}

/// Kubectl's pod STATUS (the most telling container reason, else the phase), READY and
/// RESTARTS, as `printPod` computes them.
fn summarize(pod: &Pod) -> Summary {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let init = spec.init_containers.clone().unwrap_or_default();
    let mut s = Summary {
        total: spec.containers.len() + init.iter().filter(|c| is_sidecar(c)).count(),
        reason: status
            .reason
            .clone()
            .filter(|r| !r.is_empty())
            .or(status.phase.clone())
            .unwrap_or_default(),
        ..Default::default()
    };
    let gated = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"));
    if gated {
        s.reason = "SchedulingGated".into();
    }
    let initializing = init_status(&mut s, &init, &status);
    if !initializing || condition_true(&status, "Initialized") {
        container_status(&mut s, &status);
    }
    let terminal = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
    if pod.metadata.deletion_timestamp.is_some() {
        if status.reason.as_deref() == Some("NodeLost") {
            s.reason = "Unknown".into();
        } else if !terminal {
            s.reason = "Terminating".into();
        }
    }
    s
}

/// A sidecar: an init container that keeps running (`restartPolicy: Always`).
fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn condition_true(status: &PodStatus, ty: &str) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == ty && c.status == "True")
}

/// The init containers' part: restarts, and `Init:...` while one has not finished.
/// Returns whether the pod is still initializing.
fn init_status(s: &mut Summary, init: &[Container], status: &PodStatus) -> bool {
    let sidecar = |name: &str| init.iter().any(|c| c.name == name && is_sidecar(c));
    for (i, c) in status.init_container_statuses.iter().flatten().enumerate() {
        s.count_restarts(c);
        if sidecar(&c.name) {
            count(&mut s.sidecar_restarts, &mut s.sidecar_last_restart, c);
        }
        let state = c.state.clone().unwrap_or_default();
        let terminated = state.terminated.as_ref();
        if terminated.is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if sidecar(&c.name) && c.started == Some(true) {
            if c.ready {
                s.ready += 1;
            }
            continue;
        }
        let waiting = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing");
        s.reason = match (terminated, waiting) {
            (Some(t), _) => format!("Init:{}", terminated_reason(t)),
            (None, Some(w)) => format!("Init:{w}"),
            (None, None) => format!("Init:{i}/{}", init.len()),
        };
        return true;
    }
    false
}

fn terminated_reason(t: &k8s_openapi::api::core::v1::ContainerStateTerminated) -> String {
    match t.reason.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => r.to_string(),
        None if t.signal.unwrap_or(0) != 0 => format!("Signal:{}", t.signal.unwrap_or(0)),
        None => format!("ExitCode:{}", t.exit_code),
    }
}

/// The app containers' part, last to first as kubectl reads them: restarts (counted
/// afresh, keeping only the sidecars' from the init pass), readiness and the reason.
fn container_status(s: &mut Summary, status: &PodStatus) {
    s.restarts = s.sidecar_restarts;
    s.last_restart = s.sidecar_last_restart.clone();
    let mut has_running = false;
    let mut error_reason = None;
    for c in status.container_statuses.iter().flatten().rev() {
        s.count_restarts(c);
        let state = c.state.clone().unwrap_or_default();
        let waiting = state.waiting.as_ref().and_then(|w| w.reason.clone());
        if let Some(w) = waiting.filter(|w| !w.is_empty()) {
            s.reason = w;
        } else if let Some(t) = &state.terminated {
            s.reason = terminated_reason(t);
            if t.exit_code != 0 {
                error_reason = Some(s.reason.clone());
            }
        } else if c.ready && state.running.is_some() {
            has_running = true;
            s.ready += 1;
        }
    }
    if s.reason == "Completed" {
        if has_running && condition_true(status, "Ready") {
            s.reason = "Running".into();
        } else if let Some(e) = error_reason {
            s.reason = e;
        } else if has_running {
            s.reason = "NotReady".into();
        }
    }
}

/// READINESS GATES: how many of the pod's gates are True, `<none>` without gates.
fn readiness_gates(pod: &Pod) -> String {
    let gates = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.clone())
        .unwrap_or_default();
    if gates.is_empty() {
        return "<none>".into();
    }
    let conditions = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let true_gates = gates
        .iter()
        .filter(|g| {
            conditions
                .iter()
                .find(|c| c.type_ == g.condition_type)
                .is_some_and(|c| c.status == "True")
        })
        .count();
    format!("{true_gates}/{}", gates.len())
}
