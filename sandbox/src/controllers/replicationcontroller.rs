//! ReplicationController controller: a ReplicaSet with a plain-map selector, reconciled by
//! the ReplicaSet logic (as kube-controller-manager does, through an adapter) with the
//! pods owned by the ReplicationController.

use super::replicaset::{Ctx, manage, owned_active_pods, plan};
use super::util::write_status;
use super::{Error, Shared, api_error};
use crate::apimachinery::events::Recorder;
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{ReplicationController, ReplicationControllerStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use std::future::Future;
use std::sync::Arc;

/// Reconciles ReplicationControllers on their changes and their pods'.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let controller = Controller::for_stream(
        informers.replication_controllers.subscribe(),
        informers.replication_controllers.store(),
    )
    .owns_stream(informers.pods.subscribe());
    let ctx = Arc::new(Ctx {
        events: Recorder::new(shared.client.clone(), "replication-controller"),
        shared: shared.clone(),
    });
    workqueue::run(
        "replicationcontroller",
        controller,
        reconcile,
        ctx,
        shutdown,
    )
}

/// The ReplicaSet the ReplicaSet logic sees for `rc`.
fn as_replica_set(rc: &ReplicationController) -> ReplicaSet {
    let spec = rc.spec.clone().unwrap_or_default();
    ReplicaSet {
        metadata: rc.metadata.clone(),
        spec: ReplicaSetSpec {
            replicas: spec.replicas,
            min_ready_seconds: spec.min_ready_seconds,
            selector: LabelSelector {
                match_labels: spec.selector,
                match_expressions: None,
            },
            template: spec.template,
        },
        status: None,
    }
}

async fn reconcile(rc: Arc<ReplicationController>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if rc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let uid = rc.uid().unwrap_or_default();
    let ns = rc.namespace();
    let pods = owned_active_pods(&ctx.shared, ns.clone(), &uid);
    let rs = as_replica_set(&rc);
    let plan = plan(&rs, pods);
    let pending = ctx.shared.expectations.pending(&uid);
    let template = rs.spec.template.clone();
    let managed = match pending {
        Some(_) => Ok(()),
        None => manage(&*rc, template, &plan, &ctx).await,
    };
    let status = ReplicationControllerStatus {
        replicas: plan.status.replicas,
        fully_labeled_replicas: plan.status.fully_labeled_replicas,
        ready_replicas: plan.status.ready_replicas,
        available_replicas: plan.status.available_replicas,
        observed_generation: plan.status.observed_generation,
        conditions: None,
    };
    let api: Api<ReplicationController> =
        Api::namespaced(ctx.shared.client.clone(), &ns.unwrap_or_default());
    write_status(&api, &rc.name_any(), rc.status.as_ref(), &status)
        .await
        .map_err(api_error(format!(
            "writing the status of replication controller {}",
            rc.name_any()
        )))?;
    managed?;
    Ok(pending.map_or_else(Action::await_change, Action::requeue))
}
