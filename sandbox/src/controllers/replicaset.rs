//! ReplicaSet controller: keeps `spec.replicas` pods from the template, reports how many
//! are ready and available. A ReplicaSet that created or deleted pods computes no new diff
//! until the pod informer observed them (expectations), so a stale store never makes it
//! create or delete twice.

use super::pod_control::PodControl;
use super::util::{controller_ref, controller_uid, is_active, is_ready, replace_status};
use super::{Error, Shared, api_error};
use crate::apimachinery::events::Recorder;
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use std::future::Future;
use std::sync::Arc;

/// The condition a ReplicaSet carries while it cannot create or delete its pods.
pub(crate) const REPLICA_FAILURE: &str = "ReplicaFailure";

pub(super) struct Ctx {
    pub(super) shared: Arc<Shared>,
    pub(super) events: Recorder,
}

/// Reconciles ReplicaSets on their changes and their pods'.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let controller = Controller::for_stream(
        informers.replicasets.subscribe(),
        informers.replicasets.store(),
    )
    .owns_stream(informers.pods.subscribe());
    let ctx = Arc::new(Ctx {
        events: Recorder::new(shared.client.clone(), "replicaset-controller"),
        shared: shared.clone(),
    });
    workqueue::run("replicaset", controller, reconcile, ctx, shutdown)
}

/// Pods to create and delete, and the status.
pub(super) struct Plan {
    pub(super) create: usize,
    pub(super) delete: Vec<Pod>,
    pub(super) status: ReplicaSetStatus,
}

/// Compares the active pods `rs` controls with its replicas.
pub(super) fn plan(rs: &ReplicaSet, mut pods: Vec<Pod>) -> Plan {
    let desired = rs.spec.replicas.unwrap_or(1).max(0) as usize;
    let ready = pods.iter().filter(|p| is_ready(p)).count() as i32;
    let status = ReplicaSetStatus {
        replicas: pods.len() as i32,
        fully_labeled_replicas: Some(pods.len() as i32),
        ready_replicas: Some(ready),
        available_replicas: Some(ready),
        observed_generation: rs.metadata.generation,
        ..Default::default()
    };
    let create = desired.saturating_sub(pods.len());
    // Delete the least useful first: unscheduled, not running, not ready, newest.
    pods.sort_by_key(|p| {
        let scheduled = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
        let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        let created = p
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_nanosecond())
            .unwrap_or(0);
        (scheduled, running, is_ready(p), std::cmp::Reverse(created))
    });
    pods.truncate(pods.len().saturating_sub(desired));
    Plan {
        create,
        delete: pods,
        status,
    }
}

/// The active pods in `ns` whose controller is the object with `uid`, from the informer.
pub(super) fn owned_active_pods(shared: &Shared, ns: Option<String>, uid: &str) -> Vec<Pod> {
    shared
        .informers
        .pods
        .store()
        .state()
        .iter()
        .filter(|p| {
            p.namespace() == ns && controller_uid(&***p).as_deref() == Some(uid) && is_active(p)
        })
        .map(|p| (**p).clone())
        .collect()
}

async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if rs.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let uid = rs.uid().unwrap_or_default();
    let ns = rs.namespace();
    let pods = owned_active_pods(&ctx.shared, ns.clone(), &uid);
    let plan = plan(&rs, pods);
    let pending = ctx.shared.expectations.pending(&uid);
    let managed = match pending {
        Some(_) => Ok(()),
        None => manage(&*rs, rs.spec.template.clone(), &plan, &ctx).await,
    };
    let current = rs.status.as_ref();
    let status = ReplicaSetStatus {
        conditions: replica_failure(
            current.and_then(|s| s.conditions.as_deref()),
            &managed,
            plan.create > 0,
        ),
        ..plan.status
    };
    let api: Api<ReplicaSet> = Api::namespaced(ctx.shared.client.clone(), &ns.unwrap_or_default());
    replace_status(&api, &rs.name_any(), current, &status)
        .await
        .map_err(api_error(format!(
            "writing the status of {}",
            full_name(&*rs)
        )))?;
    managed?;
    Ok(pending.map_or_else(Action::await_change, Action::requeue))
}

/// The conditions with `ReplicaFailure` kept as Kubernetes' ReplicaSet controller keeps it:
/// added with the API server's message when creating (`FailedCreate`) or deleting
/// (`FailedDelete`) pods failed, unchanged while failures go on, removed once a sync works.
fn replica_failure(
    current: Option<&[ReplicaSetCondition]>,
    managed: &Result<(), Error>,
    creating: bool,
) -> Option<Vec<ReplicaSetCondition>> {
    let mut conditions = current.unwrap_or_default().to_vec();
    let existing = conditions
        .iter()
        .position(|c| c.type_.as_deref() == Some(REPLICA_FAILURE));
    match (managed, existing) {
        (Err(e), None) => conditions.push(ReplicaSetCondition {
            type_: Some(REPLICA_FAILURE.into()),
            status: Some("True".into()),
            reason: Some(
                if creating {
                    "FailedCreate"
                } else {
                    "FailedDelete"
                }
                .into(),
            ),
            message: Some(e.api_message()),
            last_transition_time: Some(Time(jiff::Timestamp::now())),
        }),
        (Ok(()), Some(i)) => {
            conditions.remove(i);
        }
        _ => {}
    }
    (!conditions.is_empty()).then_some(conditions)
}

fn full_name<K: Resource<DynamicType = ()>>(rs: &K) -> String {
    format!(
        "{} {}/{}",
        K::kind(&()),
        rs.namespace().unwrap_or_default(),
        rs.name_any()
    )
}

/// Creates and deletes pods of `rs` (a ReplicaSet or a ReplicationController).
pub(super) async fn manage<K: Resource<DynamicType = ()>>(
    rs: &K,
    template: Option<PodTemplateSpec>,
    plan: &Plan,
    ctx: &Ctx,
) -> Result<(), Error> {
    let create = (0..plan.create)
        .map(|_| pod_from_template(rs, template.clone()))
        .collect();
    let shared = &ctx.shared;
    PodControl::new(rs, shared.client.clone(), &shared.expectations, &ctx.events)
        .apply(create, &plan.delete)
        .await
}

fn pod_from_template<K: Resource<DynamicType = ()>>(
    rs: &K,
    template: Option<PodTemplateSpec>,
) -> Pod {
    let template = template.unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", rs.name_any())),
            namespace: rs.namespace(),
            labels: meta.labels,
            annotations: meta.annotations,
            owner_references: Some(vec![controller_ref(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};

    fn refused(message: &str) -> Result<(), Error> {
        let status = kube::core::Status::failure(message, "Forbidden").with_code(403);
        Err(api_error("creating a pod")(kube::Error::Api(Box::new(
            status,
        ))))
    }

    #[test]
    fn replica_failure_keeps_its_first_message_while_failing_and_goes_on_success() {
        let first = replica_failure(None, &refused("quota"), true).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].reason.as_deref(), Some("FailedCreate"));
        assert_eq!(first[0].message.as_deref(), Some("quota"));
        let again = replica_failure(Some(&first), &refused("other"), true).unwrap();
        assert_eq!(again, first, "unchanged while failures go on");
        let deleting = replica_failure(None, &refused("no"), false).unwrap();
        assert_eq!(deleting[0].reason.as_deref(), Some("FailedDelete"));
        assert_eq!(replica_failure(Some(&first), &Ok(()), true), None);
        assert_eq!(replica_failure(None, &Ok(()), true), None);
    }

    fn replica_set(replicas: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some("web-abc".into()),
                generation: Some(2),
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(replicas),
                ..Default::default()
            },
            status: None,
        }
    }

    fn pod(name: &str, created: i64, node: bool, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(jiff::Timestamp::from_second(created).unwrap())),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.then(|| "node".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(if node { "Running" } else { "Pending" }.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn missing_pods_are_created_and_the_least_useful_extra_ones_deleted() {
        let up = plan(&replica_set(3), vec![pod("a", 1, true, true)]);
        assert_eq!((up.create, up.delete.len()), (2, 0));
        assert_eq!(up.status.replicas, 1);
        assert_eq!(up.status.ready_replicas, Some(1));
        assert_eq!(up.status.observed_generation, Some(2));

        let pods = vec![
            pod("old-ready", 1, true, true),
            pod("new-ready", 3, true, true),
            pod("not-ready", 2, true, false),
            pod("unscheduled", 4, false, false),
        ];
        let down = plan(&replica_set(1), pods);
        let names: Vec<String> = down.delete.iter().map(|p| p.name_any()).collect();
        assert_eq!(down.create, 0);
        assert_eq!(names, ["unscheduled", "not-ready", "new-ready"]);
        assert_eq!(
            down.status.replicas, 4,
            "the status counts what is there now"
        );
        assert_eq!(down.status.available_replicas, Some(2));
    }
}
