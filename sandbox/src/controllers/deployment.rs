//! Deployment controller: one ReplicaSet per pod template (named by `pod-template-hash`),
//! rolling updates within maxSurge/maxUnavailable (or Recreate), and the status and
//! conditions `kubectl rollout status` waits on.

use super::util::{controller_ref, controller_uid, pod_template_hash, write_status};
use super::{Ctx, Snapshot, in_namespace};
use crate::apimachinery::events::{EventType, Recorder};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use std::collections::BTreeMap;

const REVISION: &str = "deployment.kubernetes.io/revision";

/// Resolves maxSurge/maxUnavailable like Kubernetes (percentages round up for surge, down
/// for unavailability; both zero means one may be unavailable).
pub fn surge_and_unavailable(d: &Deployment, replicas: i32) -> (i32, i32) {
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let resolve = |v: Option<&IntOrString>, default: &str, round_up: bool| -> i32 {
        match v.cloned().unwrap_or(IntOrString::String(default.into())) {
            IntOrString::Int(n) => n.max(0),
            IntOrString::String(s) => {
                let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(25.0);
                let v = pct * f64::from(replicas) / 100.0;
                (if round_up { v.ceil() } else { v.floor() }) as i32
            }
        }
    };
    let surge = resolve(rolling.and_then(|r| r.max_surge.as_ref()), "25%", true);
    let unavailable = resolve(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        "25%",
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub async fn reconcile(ctx: &Ctx, snap: &Snapshot) -> Result<(), kube::Error> {
    for d in &snap.deployments {
        if d.metadata.deletion_timestamp.is_some() {
            continue;
        }
        reconcile_one(ctx, snap, d).await?;
    }
    Ok(())
}

async fn reconcile_one(ctx: &Ctx, snap: &Snapshot, d: &Deployment) -> Result<(), kube::Error> {
    let ns = d.namespace().unwrap_or_default();
    let name = d.name_any();
    let uid = d.uid().unwrap_or_default();
    let spec = d.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let hash = pod_template_hash(&spec.template);
    let rs_api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let d_ref = Recorder::reference(d);
    let mut owned: Vec<ReplicaSet> = in_namespace(&snap.replicasets, &ns)
        .filter(|rs| {
            controller_uid(*rs).as_deref() == Some(uid.as_str())
                && rs.metadata.deletion_timestamp.is_none()
        })
        .cloned()
        .collect();
    owned.sort_by_key(|rs| {
        rs.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_nanosecond())
            .unwrap_or(0)
    });
    let new_index = owned
        .iter()
        .position(|rs| rs.labels().get("pod-template-hash") == Some(&hash));
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let (surge, max_unavailable) = surge_and_unavailable(d, replicas);
    let paused = spec.paused == Some(true);
    let mut new_created = false;

    let new_index = match new_index {
        Some(i) => i,
        None if paused => usize::MAX,
        None => {
            let old_total: i32 = owned.iter().map(spec_replicas).sum();
            let initial = if recreate || old_total == 0 {
                if recreate && old_total > 0 {
                    0
                } else {
                    replicas
                }
            } else {
                (replicas + surge - old_total).clamp(0, replicas)
            };
            let next_revision = owned.iter().map(revision).max().unwrap_or(0) + 1;
            let mut template = spec.template.clone();
            let meta = template.metadata.get_or_insert_with(Default::default);
            meta.labels
                .get_or_insert_with(BTreeMap::new)
                .insert("pod-template-hash".into(), hash.clone());
            let mut selector = spec.selector.clone();
            selector
                .match_labels
                .get_or_insert_with(BTreeMap::new)
                .insert("pod-template-hash".into(), hash.clone());
            let mut labels = meta.labels.clone().unwrap_or_default();
            labels.insert("pod-template-hash".into(), hash.clone());
            let rs = ReplicaSet {
                metadata: ObjectMeta {
                    name: Some(format!("{name}-{hash}")),
                    namespace: Some(ns.clone()),
                    labels: Some(labels),
                    annotations: Some(BTreeMap::from([
                        (REVISION.to_string(), next_revision.to_string()),
                        (
                            "deployment.kubernetes.io/desired-replicas".to_string(),
                            replicas.to_string(),
                        ),
                        (
                            "deployment.kubernetes.io/max-replicas".to_string(),
                            (replicas + surge).to_string(),
                        ),
                    ])),
                    owner_references: Some(vec![controller_ref(d)]),
                    ..Default::default()
                },
                spec: Some(ReplicaSetSpec {
                    replicas: Some(initial),
                    min_ready_seconds: spec.min_ready_seconds,
                    selector,
                    template: Some(template),
                }),
                status: None,
            };
            let created = match rs_api.create(&PostParams::default(), &rs).await {
                Ok(rs) => rs,
                Err(e) if super::util::is_benign(&e) => return Ok(()),
                Err(e) => return Err(e),
            };
            ctx.deployments
                .publish(
                    &d_ref,
                    EventType::Normal,
                    "ScalingReplicaSet",
                    &format!(
                        "Scaled up replica set {} from 0 to {initial}",
                        created.name_any()
                    ),
                )
                .await;
            new_created = true;
            owned.push(created);
            owned.len() - 1
        }
    };

    let scale = |rs: &ReplicaSet, to: i32| {
        let rs_api = rs_api.clone();
        let rs = rs.clone();
        let d_ref = d_ref.clone();
        async move {
            let from = spec_replicas(&rs);
            if from == to {
                return Ok::<_, kube::Error>(());
            }
            let patch = serde_json::json!({
                "metadata": { "annotations": { "deployment.kubernetes.io/desired-replicas": replicas.to_string() } },
                "spec": { "replicas": to }
            });
            rs_api
                .patch(
                    &rs.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            let verb = if to > from { "up" } else { "down" };
            ctx.deployments
                .publish(
                    &d_ref,
                    EventType::Normal,
                    "ScalingReplicaSet",
                    &format!(
                        "Scaled {verb} replica set {} from {from} to {to}",
                        rs.name_any()
                    ),
                )
                .await;
            Ok(())
        }
    };

    if !paused && new_index != usize::MAX && !new_created {
        let new_rs = owned[new_index].clone();
        let olds: Vec<ReplicaSet> = owned
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != new_index)
            .map(|(_, r)| r.clone())
            .collect();
        let old_total: i32 = olds.iter().map(spec_replicas).sum();
        if recreate {
            if old_total > 0 {
                for old in &olds {
                    scale(old, 0).await?;
                }
            } else {
                let old_pods_left = olds
                    .iter()
                    .any(|o| o.status.as_ref().is_some_and(|s| s.replicas > 0));
                if !old_pods_left {
                    scale(&new_rs, replicas).await?;
                }
            }
        } else {
            let mut new_spec = spec_replicas(&new_rs);
            let all_total = old_total + new_spec;
            if new_spec > replicas || old_total == 0 {
                scale(&new_rs, replicas).await?;
                new_spec = replicas;
            } else if new_spec < replicas && all_total < replicas + surge {
                let to = (new_spec + replicas + surge - all_total).min(replicas);
                scale(&new_rs, to).await?;
                new_spec = to;
            }
            if old_total > 0 {
                let min_available = replicas - max_unavailable;
                let new_unavailable = (new_spec - available(&new_rs)).max(0);
                let mut all_total = old_total + new_spec;
                // Old pods that are not available anyway go first.
                let mut cleanup = (all_total - min_available - new_unavailable).max(0);
                let mut remaining: Vec<(ReplicaSet, i32)> =
                    olds.iter().map(|o| (o.clone(), spec_replicas(o))).collect();
                for (old, count) in remaining.iter_mut() {
                    let unhealthy = (*count - available(old)).max(0).min(cleanup);
                    if unhealthy > 0 {
                        *count -= unhealthy;
                        cleanup -= unhealthy;
                        all_total -= unhealthy;
                    }
                }
                let available_total: i32 =
                    olds.iter().map(available).sum::<i32>() + available(&new_rs);
                let mut scale_down = (available_total - min_available)
                    .max(0)
                    .min((all_total - replicas).max(0));
                for (old, count) in remaining.iter_mut() {
                    let cut = scale_down.min(*count);
                    *count -= cut;
                    scale_down -= cut;
                    if *count != spec_replicas(old) {
                        scale(old, *count).await?;
                    }
                }
            }
        }
    }

    let fresh: Vec<&ReplicaSet> = owned.iter().collect();
    let new_rs = (new_index != usize::MAX).then(|| fresh[new_index]);
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| fresh.iter().map(|rs| f(rs)).sum::<i32>();
    let status_replicas = sum(&|rs| rs.status.as_ref().map(|s| s.replicas).unwrap_or(0));
    let ready = sum(&|rs| {
        rs.status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0)
    });
    let available_total = sum(&|rs| available(rs));
    let updated = new_rs
        .and_then(|rs| rs.status.as_ref())
        .map(|s| s.replicas)
        .unwrap_or(0);
    let new_name = new_rs.map(|rs| rs.name_any()).unwrap_or_default();
    let complete = updated == replicas
        && status_replicas == replicas
        && available_total >= replicas
        && fresh
            .iter()
            .filter(|rs| Some(**rs) != new_rs)
            .all(|rs| spec_replicas(rs) == 0);
    let previous = d.status.clone().unwrap_or_default();
    let now = Time(jiff::Timestamp::now());
    let progressing_before = previous
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing");
    // Progress as upstream counts it: more pods updated, ready or available, or fewer old ones.
    let progressed = updated > previous.updated_replicas.unwrap_or(0)
        || ready > previous.ready_replicas.unwrap_or(0)
        || available_total > previous.available_replicas.unwrap_or(0)
        || status_replicas - updated
            < previous.replicas.unwrap_or(0) - previous.updated_replicas.unwrap_or(0);
    let deadline = d
        .spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .unwrap_or(600);
    let timed_out = progressing_before.is_some_and(|c| match c.reason.as_deref() {
        Some("ProgressDeadlineExceeded") => true,
        Some("NewReplicaSetAvailable") => false,
        _ => c.last_update_time.as_ref().is_some_and(|t| {
            jiff::Timestamp::now().as_second() - t.0.as_second() > i64::from(deadline)
        }),
    });
    let condition = |type_: &str, status: &str, reason: &str, message: String| {
        let old = previous
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_);
        let same_status = old.is_some_and(|c| c.status == status);
        let same_reason = old.is_some_and(|c| {
            c.reason.as_deref() == Some(reason) && c.message.as_deref() == Some(&message)
        });
        DeploymentCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: if same_status {
                old.and_then(|c| c.last_transition_time.clone())
            } else {
                Some(now.clone())
            },
            last_update_time: if same_reason {
                old.and_then(|c| c.last_update_time.clone())
            } else {
                Some(now.clone())
            },
        }
    };
    let available_ok = available_total >= replicas - max_unavailable;
    let conditions = vec![
        if available_ok {
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            )
        } else {
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            )
        },
        if complete {
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{new_name}\" has successfully progressed."),
            )
        } else if new_created {
            condition(
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                format!("Created new replica set \"{new_name}\""),
            )
        } else if progressed {
            DeploymentCondition {
                last_update_time: Some(now.clone()),
                ..condition(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    format!("ReplicaSet \"{new_name}\" is progressing."),
                )
            }
        } else if timed_out {
            condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{new_name}\" has timed out progressing."),
            )
        } else {
            condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{new_name}\" is progressing."),
            )
        },
    ];
    let status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(status_replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready),
        available_replicas: Some(available_total),
        unavailable_replicas: Some((replicas - available_total).max(0)).filter(|n| *n > 0),
        conditions: Some(conditions),
        collision_count: previous.collision_count,
        ..Default::default()
    };
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    write_status(&api, &name, d.status.as_ref(), &status).await?;
    if let Some(rs) = new_rs {
        let rev = revision(rs).to_string();
        if d.annotations().get(REVISION) != Some(&rev) {
            let patch = serde_json::json!({ "metadata": { "annotations": { REVISION: rev } } });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};

    #[test]
    fn surge_rounds_up_and_unavailable_down() {
        let mut d = Deployment {
            spec: Some(DeploymentSpec::default()),
            ..Default::default()
        };
        assert_eq!(surge_and_unavailable(&d, 3), (1, 0));
        assert_eq!(surge_and_unavailable(&d, 4), (1, 1));
        d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(IntOrString::Int(0)),
                max_unavailable: Some(IntOrString::Int(0)),
            }),
        });
        assert_eq!(surge_and_unavailable(&d, 3), (0, 1));
    }
}
