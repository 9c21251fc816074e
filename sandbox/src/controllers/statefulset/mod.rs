//! StatefulSet controller: pods `<name>-0..n-1` created in order (each once the previous is
//! Ready, unless podManagementPolicy is Parallel), a PVC per volumeClaimTemplate and ordinal
//! that outlives its pod, rolling updates from the highest ordinal down. [`plan`] decides;
//! [`apply`] executes, with expectations as the ReplicaSet controller keeps them.

mod plan;

use super::history;
use super::util::{controller_uid, is_benign, write_status};
use super::{Error, Shared, api_error};
use crate::apimachinery::events::{EventType, Recorder};
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use plan::{Create, Plan};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

struct Ctx {
    shared: Arc<Shared>,
    events: Recorder,
}

/// Reconciles StatefulSets on their changes and their pods'.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let controller = Controller::for_stream(
        informers.statefulsets.subscribe(),
        informers.statefulsets.store(),
    )
    .owns_stream(informers.pods.subscribe());
    let ctx = Arc::new(Ctx {
        events: Recorder::new(shared.client.clone(), "statefulset-controller"),
        shared: shared.clone(),
    });
    workqueue::run("statefulset", controller, reconcile, ctx, shutdown)
}

async fn reconcile(sts: Arc<StatefulSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if sts.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let uid = sts.uid().unwrap_or_default();
    let ns = sts.namespace();
    let informers = &ctx.shared.informers;
    let pods: Vec<Pod> = informers
        .pods
        .store()
        .state()
        .iter()
        .filter(|p| p.namespace() == ns && controller_uid(&***p).as_deref() == Some(uid.as_str()))
        .map(|p| (**p).clone())
        .collect();
    let claims: Vec<PersistentVolumeClaim> = informers
        .pvcs
        .store()
        .state()
        .iter()
        .filter(|c| c.namespace() == ns)
        .map(|c| (**c).clone())
        .collect();
    history::record(
        &ctx.shared.client,
        &history::Snapshot::of(
            sts.as_ref(),
            &sts.spec.template,
            sts.spec.revision_history_limit,
        ),
        &revisions_in_use(&sts, &pods),
    )
    .await
    .map_err(api_error(format!(
        "recording the revision of stateful set {}",
        full_name(&sts)
    )))?;
    let plan = plan::plan(&sts, &pods, &claims);
    let pending = ctx.shared.expectations.pending(&uid);
    let applied = match pending {
        Some(_) => Ok(()),
        None => apply(&sts, &plan, &ctx).await,
    };
    let api: Api<StatefulSet> = Api::namespaced(ctx.shared.client.clone(), &ns.unwrap_or_default());
    write_status(&api, &sts.name_any(), sts.status.as_ref(), &plan.status)
        .await
        .map_err(api_error(format!(
            "writing the status of stateful set {}",
            full_name(&sts)
        )))?;
    applied?;
    Ok(pending.map_or_else(Action::await_change, Action::requeue))
}

/// The template hashes the pods run: a StatefulSet's pods carry the revision's name
/// (`<sts>-<hash>`) in their label, where the revision itself carries the hash.
fn revisions_in_use(sts: &StatefulSet, pods: &[Pod]) -> BTreeSet<String> {
    let prefix = format!("{}-", sts.name_any());
    pods.iter()
        .filter_map(|p| p.labels().get(history::REVISION_HASH))
        .filter_map(|r| r.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

fn full_name(sts: &StatefulSet) -> String {
    format!("{}/{}", sts.namespace().unwrap_or_default(), sts.name_any())
}

/// Creates the planned claims and pods in order, then deletes the planned pod.
async fn apply(sts: &StatefulSet, plan: &Plan, ctx: &Ctx) -> Result<(), Error> {
    let key = sts.uid().unwrap_or_default();
    let expectations = &ctx.shared.expectations;
    let reference = Recorder::reference(sts);
    expectations.expect_creations(&key, plan.create.len());
    for (i, create) in plan.create.iter().enumerate() {
        if let Err(e) = create_pod(sts, create, ctx, &reference).await {
            for _ in i..plan.create.len() {
                expectations.creation_observed(&key);
            }
            return Err(e);
        }
    }
    let Some(pod) = &plan.delete else {
        return Ok(());
    };
    let pod_uid = pod.uid().unwrap_or_default();
    expectations.expect_deletions(&key, [pod_uid.clone()]);
    let api: Api<Pod> = Api::namespaced(
        ctx.shared.client.clone(),
        &sts.namespace().unwrap_or_default(),
    );
    match api.delete(&pod.name_any(), &DeleteParams::default()).await {
        Ok(_) => {
            let message = format!(
                "Delete Pod {} in StatefulSet {} successful",
                pod.name_any(),
                sts.name_any()
            );
            event(
                ctx,
                &reference,
                EventType::Normal,
                "SuccessfulDelete",
                &message,
            )
            .await;
            Ok(())
        }
        Err(e) => {
            expectations.deletion_observed(&key, &pod_uid);
            if is_benign(&e) {
                return Ok(());
            }
            let error = api_error(format!(
                "deleting pod {} of stateful set {}",
                pod.name_any(),
                full_name(sts)
            ))(e);
            let message = format!(
                "Delete Pod {} in StatefulSet {} failed error: {}",
                pod.name_any(),
                sts.name_any(),
                error.api_message()
            );
            event(
                ctx,
                &reference,
                EventType::Warning,
                "FailedDelete",
                &message,
            )
            .await;
            Err(error)
        }
    }
}

/// Creates one pod after its missing claims; a pod or claim that already exists is fine.
async fn create_pod(
    sts: &StatefulSet,
    create: &Create,
    ctx: &Ctx,
    reference: &ObjectReference,
) -> Result<(), Error> {
    let ns = sts.namespace().unwrap_or_default();
    let name = sts.name_any();
    let pod_name = create.pod.name_any();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.shared.client.clone(), &ns);
    for claim in &create.claims {
        match claims.create(&PostParams::default(), claim).await {
            Ok(_) => {
                let message = format!(
                    "Create Claim {} Pod {pod_name} in StatefulSet {name} success",
                    claim.name_any()
                );
                event(
                    ctx,
                    reference,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &message,
                )
                .await;
            }
            Err(e) if is_benign(&e) => {}
            Err(e) => {
                let error = api_error(format!(
                    "creating claim {ns}/{} for pod {pod_name}",
                    claim.name_any()
                ))(e);
                let cause = error.api_message();
                let claim = claim.name_any();
                let message = format!(
                    "Create Claim {claim} for Pod {pod_name} in StatefulSet {name} failed error: {cause}"
                );
                event(ctx, reference, EventType::Warning, "FailedCreate", &message).await;
                let message = format!(
                    "Create Pod {pod_name} in StatefulSet {name} failed error: failed to create PVC {claim}: {cause}"
                );
                event(ctx, reference, EventType::Warning, "FailedCreate", &message).await;
                return Err(error);
            }
        }
    }
    let pods: Api<Pod> = Api::namespaced(ctx.shared.client.clone(), &ns);
    match pods.create(&PostParams::default(), &create.pod).await {
        Ok(_) => {
            let message = format!("Create Pod {pod_name} in StatefulSet {name} successful");
            event(
                ctx,
                reference,
                EventType::Normal,
                "SuccessfulCreate",
                &message,
            )
            .await;
            Ok(())
        }
        Err(e) if is_benign(&e) => {
            ctx.shared
                .expectations
                .creation_observed(&sts.uid().unwrap_or_default());
            Ok(())
        }
        Err(e) => {
            let error = api_error(format!(
                "creating pod {ns}/{pod_name} of stateful set {ns}/{name}"
            ))(e);
            let message = format!(
                "Create Pod {pod_name} in StatefulSet {name} failed error: {}",
                error.api_message()
            );
            event(ctx, reference, EventType::Warning, "FailedCreate", &message).await;
            Err(error)
        }
    }
}

/// An event on the set for a pod or claim call, as Kubernetes' StatefulPodControl records
/// it (a warning when the call failed).
async fn event(
    ctx: &Ctx,
    reference: &ObjectReference,
    kind: EventType,
    reason: &str,
    message: &str,
) {
    ctx.events.publish(reference, kind, reason, message).await;
}
