//! Deployment controller: one ReplicaSet per pod template (named by `pod-template-hash`),
//! rolling updates within maxSurge/maxUnavailable (or Recreate), and the status and
//! conditions `kubectl rollout status` waits on. [`plan`] decides; [`apply`] executes.

mod plan;

use super::util::{is_benign, write_status};
use super::{Error, Shared, api_error};
use crate::apimachinery::events::{EventType, Recorder};
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use plan::{Plan, REVISION, Scale};
use std::future::Future;
use std::sync::Arc;

struct Ctx {
    shared: Arc<Shared>,
    events: Recorder,
}

/// Reconciles Deployments on their changes and their ReplicaSets'.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let controller = Controller::for_stream(
        informers.deployments.subscribe(),
        informers.deployments.store(),
    )
    .owns_stream(informers.replicasets.subscribe());
    let ctx = Arc::new(Ctx {
        events: Recorder::new(shared.client.clone(), "deployment-controller"),
        shared: shared.clone(),
    });
    workqueue::run("deployment", controller, reconcile, ctx, shutdown)
}

async fn reconcile(d: Arc<Deployment>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    // Never act on ReplicaSets (or a status) older than this controller's last writes.
    if let Some(left) = ctx
        .shared
        .expectations
        .pending(&d.uid().unwrap_or_default())
    {
        return Ok(Action::requeue(left));
    }
    let ns = d.namespace();
    let replicasets: Vec<ReplicaSet> = ctx
        .shared
        .informers
        .replicasets
        .store()
        .state()
        .iter()
        .filter(|rs| rs.namespace() == ns)
        .map(|rs| (**rs).clone())
        .collect();
    let plan = plan::plan(&d, &replicasets, jiff::Timestamp::now());
    apply(&d, &plan, &ctx).await
}

/// Executes `plan`: each write is awaited in the informers before the next reconcile.
async fn apply(d: &Deployment, plan: &Plan, ctx: &Ctx) -> Result<Action, Error> {
    let ns = d.namespace().unwrap_or_default();
    let name = d.name_any();
    let key = d.uid().unwrap_or_default();
    let shared = &ctx.shared;
    let rs_api: Api<ReplicaSet> = Api::namespaced(shared.client.clone(), &ns);
    let rs_store = shared.informers.replicasets.store();
    let reference = Recorder::reference(d);
    let mut events = plan.events().into_iter();
    if let Some(rs) = &plan.create {
        let created = match rs_api.create(&PostParams::default(), rs).await {
            Ok(created) => created,
            // Already there: the informer has not shown it yet and will trigger again.
            Err(e) if is_benign(&e) => return Ok(Action::await_change()),
            Err(e) => {
                return Err(api_error(format!(
                    "creating replica set {ns}/{} for deployment {ns}/{name}",
                    rs.name_any()
                ))(e));
            }
        };
        shared.expectations.expect_write(&key, &created, &rs_store);
        publish(ctx, &reference, events.next()).await;
    }
    if let Some((rs_name, annotations)) = &plan.annotate {
        let patch = serde_json::json!({ "metadata": { "annotations": annotations } });
        let written = rs_api
            .patch(rs_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_error(format!(
                "annotating replica set {ns}/{rs_name} of deployment {ns}/{name}"
            )))?;
        shared.expectations.expect_write(&key, &written, &rs_store);
    }
    for scale in &plan.scale {
        let scaled = scale_replica_set(&rs_api, scale)
            .await
            .map_err(api_error(format!(
                "scaling replica set {ns}/{} from {} to {}",
                scale.name, scale.from, scale.to
            )))?;
        shared.expectations.expect_write(&key, &scaled, &rs_store);
        publish(ctx, &reference, events.next()).await;
    }
    let api: Api<Deployment> = Api::namespaced(shared.client.clone(), &ns);
    let store = shared.informers.deployments.store();
    if let Some(written) = write_status(&api, &name, d.status.as_ref(), &plan.status)
        .await
        .map_err(api_error(format!(
            "writing the status of deployment {ns}/{name}"
        )))?
    {
        shared.expectations.expect_write(&key, &written, &store);
    }
    if let Some(rev) = &plan.revision {
        let patch = serde_json::json!({ "metadata": { "annotations": { REVISION: rev } } });
        let written = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_error(format!(
                "setting revision {rev} on deployment {ns}/{name}"
            )))?;
        shared.expectations.expect_write(&key, &written, &store);
    }
    Ok(plan
        .recheck_after
        .map_or_else(Action::await_change, Action::requeue))
}

async fn scale_replica_set(
    api: &Api<ReplicaSet>,
    scale: &Scale,
) -> Result<ReplicaSet, kube::Error> {
    let patch = serde_json::json!({
        "metadata": { "annotations": { "deployment.kubernetes.io/desired-replicas": scale.desired.to_string() } },
        "spec": { "replicas": scale.to }
    });
    api.patch(&scale.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

async fn publish(
    ctx: &Ctx,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    message: Option<String>,
) {
    if let Some(message) = message {
        ctx.events
            .publish(reference, EventType::Normal, "ScalingReplicaSet", &message)
            .await;
    }
}
