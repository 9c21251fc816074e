//! Objects as the API server returns them, built for the judges' unit tests.

use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use serde_json::{Value, json};

/// Any k8s-openapi object from its JSON form.
pub(crate) fn object<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a valid fixture object")
}

pub(crate) fn node(name: &str, ready: &str) -> Node {
    object(json!({
        "metadata": {"name": name},
        "status": {"conditions": [{"type": "Ready", "status": ready}]}
    }))
}

pub(crate) fn namespace(name: &str, phase: &str) -> Namespace {
    object(json!({"metadata": {"name": name}, "status": {"phase": phase}}))
}

/// An event about `object` (a pod name) with a reason and message.
pub(crate) fn event(object_name: &str, reason: &str, message: &str) -> Event {
    object(json!({
        "metadata": {"name": format!("{object_name}.1")},
        "involvedObject": {"kind": "Pod", "name": object_name},
        "reason": reason,
        "message": message
    }))
}

/// A pod, built step by step: `PodFixture::running("a").restarts(&[1]).build()`.
pub(crate) struct PodFixture {
    pod: Value,
}

impl PodFixture {
    /// A Running pod whose container is ready.
    pub(crate) fn running(name: &str) -> Self {
        Self {
            pod: json!({
                "metadata": {"name": name, "labels": {"app": "x"}},
                "status": {
                    "phase": "Running",
                    "conditions": [
                        {"type": "PodScheduled", "status": "True"},
                        {"type": "Ready", "status": "True"}
                    ],
                    "containerStatuses": [{
                        "name": "main", "image": "img:1", "imageID": "", "ready": true,
                        "restartCount": 0, "state": {"running": {}}
                    }]
                }
            }),
        }
    }

    /// A Pending pod with no container started.
    pub(crate) fn pending(name: &str) -> Self {
        let mut fixture = Self::running(name);
        fixture.pod["status"] = json!({
            "phase": "Pending",
            "containerStatuses": [{
                "name": "main", "image": "img:1", "imageID": "", "ready": false,
                "restartCount": 0, "state": {}
            }]
        });
        fixture
    }

    pub(crate) fn not_ready(mut self) -> Self {
        self.pod["status"]["conditions"][1]["status"] = json!("False");
        self
    }

    pub(crate) fn terminating(mut self) -> Self {
        self.pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        self
    }

    /// One container per count, each restarted that often.
    pub(crate) fn restarts(mut self, counts: &[i32]) -> Self {
        let statuses: Vec<Value> = counts
            .iter()
            .enumerate()
            .map(|(i, n)| {
                json!({
                    "name": format!("c{i}"), "image": "img:1", "imageID": "", "ready": true,
                    "restartCount": n, "state": {"running": {}}
                })
            })
            .collect();
        self.pod["status"]["containerStatuses"] = json!(statuses);
        self
    }

    pub(crate) fn waiting(mut self, reason: &str, message: &str) -> Self {
        self.pod["status"]["containerStatuses"][0]["state"] =
            json!({"waiting": {"reason": reason, "message": message}});
        self
    }

    pub(crate) fn unschedulable(mut self, message: &str) -> Self {
        self.pod["status"]["conditions"] = json!([
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
        ]);
        self
    }

    pub(crate) fn owned_by(mut self, kind: &str, name: &str, uid: &str) -> Self {
        self.pod["metadata"]["ownerReferences"] =
            json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid}]);
        self
    }

    pub(crate) fn build(self) -> Pod {
        object(self.pod)
    }
}
