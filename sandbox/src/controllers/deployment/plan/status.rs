//! A Deployment's status from its ReplicaSets, and the Available and Progressing conditions
//! `kubectl rollout status` waits on, with the progress deadline.

use super::{available, spec_replicas};
use crate::controllers::replicaset::REPLICA_FAILURE;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use std::time::Duration;

/// Kubernetes' default `progressDeadlineSeconds`.
const DEFAULT_DEADLINE: i32 = 600;

/// Replica counts summed over the ReplicaSets.
struct Counts {
    replicas: i32,
    updated: i32,
    ready: i32,
    available: i32,
}

fn counts(owned: &[ReplicaSet], new_rs: Option<&ReplicaSet>) -> Counts {
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| owned.iter().map(f).sum::<i32>();
    Counts {
        replicas: sum(&|rs| rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)),
        ready: sum(&|rs| {
            rs.status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
        }),
        available: sum(&available),
        updated: new_rs
            .and_then(|rs| rs.status.as_ref())
            .map(|s| s.replicas)
            .unwrap_or(0),
    }
}

/// The status to write and, while a rollout is in progress, when its deadline passes.
pub(super) fn status(
    d: &Deployment,
    owned: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    new_created: bool,
    (replicas, max_unavailable): (i32, i32),
    now: jiff::Timestamp,
) -> (DeploymentStatus, Option<Duration>) {
    let c = counts(owned, new_rs);
    let complete = c.updated == replicas
        && c.replicas == replicas
        && c.available >= replicas
        && owned
            .iter()
            .filter(|rs| Some(*rs) != new_rs)
            .all(|rs| spec_replicas(rs) == 0);
    let previous = d.status.clone().unwrap_or_default();
    let conditions = Conditions {
        previous: previous.conditions.as_deref().unwrap_or_default(),
        now: Time(now),
    };
    let new_name = new_rs.map(|rs| rs.name_any()).unwrap_or_default();
    let progressing = if complete {
        conditions.make(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_name}\" has successfully progressed."),
        )
    } else {
        conditions.progressing(d, &previous, &c, &new_name, new_created)
    };
    let available = if c.available >= replicas - max_unavailable {
        conditions.make(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        conditions.make(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    let recheck = (!complete)
        .then(|| deadline_left(d, conditions.previous, now))
        .flatten();
    let status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(c.replicas),
        updated_replicas: Some(c.updated),
        ready_replicas: Some(c.ready),
        available_replicas: Some(c.available),
        unavailable_replicas: Some((replicas - c.available).max(0)).filter(|n| *n > 0),
        conditions: Some(
            [available, progressing]
                .into_iter()
                .chain(replica_failure(owned, new_rs))
                .collect(),
        ),
        collision_count: previous.collision_count,
        ..Default::default()
    };
    (status, recheck)
}

/// The new ReplicaSet's `ReplicaFailure` condition, else an old one's, as the Deployment's
/// own (Kubernetes' `getReplicaFailures`): why its pods cannot be created shows on it.
fn replica_failure(
    owned: &[ReplicaSet],
    new_rs: Option<&ReplicaSet>,
) -> Option<DeploymentCondition> {
    let failure = |rs: &ReplicaSet| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_.as_deref() == Some(REPLICA_FAILURE))
            .cloned()
    };
    let c = new_rs
        .and_then(failure)
        .or_else(|| owned.iter().find_map(failure))?;
    Some(DeploymentCondition {
        type_: c.type_,
        status: c.status,
        reason: c.reason,
        message: c.message,
        last_update_time: c.last_transition_time.clone(),
        last_transition_time: c.last_transition_time,
    })
}

fn deadline_seconds(d: &Deployment) -> i64 {
    i64::from(d.spec.progress_deadline_seconds.unwrap_or(DEFAULT_DEADLINE))
}

/// How long until the recorded Progressing condition times out, if it still can.
fn deadline_left(
    d: &Deployment,
    previous: &[DeploymentCondition],
    now: jiff::Timestamp,
) -> Option<Duration> {
    let progressing = previous
        .iter()
        .find(|c| c.type_.as_deref() == Some("Progressing"))?;
    if matches!(
        progressing.reason.as_deref(),
        Some("ProgressDeadlineExceeded" | "NewReplicaSetAvailable")
    ) {
        return None;
    }
    let updated = progressing.last_update_time.as_ref()?.0.as_second();
    let due = updated + deadline_seconds(d) + 1;
    Some(Duration::from_secs(
        u64::try_from(due - now.as_second()).unwrap_or(0),
    ))
}

/// Builds conditions that keep their transition and update times while unchanged.
struct Conditions<'a> {
    previous: &'a [DeploymentCondition],
    now: Time,
}

impl Conditions<'_> {
    fn make(
        &self,
        type_: &str,
        status: &str,
        reason: &str,
        message: String,
    ) -> DeploymentCondition {
        let old = self
            .previous
            .iter()
            .find(|c| c.type_.as_deref() == Some(type_));
        let same_status = old.is_some_and(|c| c.status.as_deref() == Some(status));
        let same_reason = old.is_some_and(|c| {
            c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(&message)
        });
        DeploymentCondition {
            type_: Some(type_.into()),
            status: Some(status.into()),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: if same_status {
                old.and_then(|c| c.last_transition_time.clone())
            } else {
                Some(self.now.clone())
            },
            last_update_time: if same_reason {
                old.and_then(|c| c.last_update_time.clone())
            } else {
                Some(self.now.clone())
            },
        }
    }

    /// Progressing while the rollout is not complete: a new ReplicaSet, progress as
    /// upstream counts it (more pods updated, ready or available, or fewer old ones), or
    /// no progress for longer than the deadline.
    fn progressing(
        &self,
        d: &Deployment,
        previous: &DeploymentStatus,
        c: &Counts,
        new_name: &str,
        new_created: bool,
    ) -> DeploymentCondition {
        let progressed = c.updated > previous.updated_replicas.unwrap_or(0)
            || c.ready > previous.ready_replicas.unwrap_or(0)
            || c.available > previous.available_replicas.unwrap_or(0)
            || c.replicas - c.updated
                < previous.replicas.unwrap_or(0) - previous.updated_replicas.unwrap_or(0);
        let progressing_before = self
            .previous
            .iter()
            .find(|c| c.type_.as_deref() == Some("Progressing"));
        let timed_out = progressing_before.is_some_and(|c| match c.reason.as_deref() {
            Some("ProgressDeadlineExceeded") => true,
            Some("NewReplicaSetAvailable") => false,
            _ => c
                .last_update_time
                .as_ref()
                .is_some_and(|t| self.now.0.as_second() - t.0.as_second() > deadline_seconds(d)),
        });
        let updating = || {
            self.make(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{new_name}\" is progressing."),
            )
        };
        if new_created {
            self.make(
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                format!("Created new replica set \"{new_name}\""),
            )
        } else if progressed {
            DeploymentCondition {
                last_update_time: Some(self.now.clone()),
                ..updating()
            }
        } else if timed_out {
            self.make(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{new_name}\" has timed out progressing."),
            )
        } else {
            // No progress and no deadline passed: the condition stays as it was (a rollout
            // whose pods cannot be created keeps "NewReplicaSetCreated", as on a cluster).
            progressing_before.cloned().unwrap_or_else(updating)
        }
    }
}
