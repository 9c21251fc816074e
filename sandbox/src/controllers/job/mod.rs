//! Job controller: runs a Job's pods to `completions` successes, `parallelism` at a time,
//! replaces failed ones after a back-off until `backoffLimit`, and records the conditions
//! (SuccessCriteriaMet then Complete, FailureTarget then Failed) that `kubectl wait` reads.
//! Finished Jobs with `ttlSecondsAfterFinished` are deleted when it runs out (the
//! ttl-after-finished controller). Indexed Jobs give each pod a completion index
//! ([`indexed`]), retried on their own with `backoffLimitPerIndex` ([`per_index`]); a
//! `podFailurePolicy` may fail the Job or an index at once, or ignore a failure ([`policy`]). [`plan`] decides; [`reconcile`] executes.

mod indexed;
mod per_index;
mod plan;
mod policy;

use super::pod_control::PodControl;
use super::util::{controller_ref, controller_uid, is_benign, replace_status};
use super::{Error, Shared, api_error};
use crate::apimachinery::events::Recorder;
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ObjectMeta, PropagationPolicy};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

struct Ctx {
    shared: Arc<Shared>,
    events: Recorder,
}

/// Reconciles Jobs on their changes and their pods'.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let controller = Controller::for_stream(informers.jobs.subscribe(), informers.jobs.store())
        .owns_stream(informers.pods.subscribe());
    let ctx = Arc::new(Ctx {
        events: Recorder::new(shared.client.clone(), "job-controller"),
        shared: shared.clone(),
    });
    workqueue::run("job", controller, reconcile, ctx, shutdown)
}

fn full_name(job: &Job) -> String {
    format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any())
}

async fn reconcile(job: Arc<Job>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let now = ctx.shared.config.clock.now();
    if let Some(finished) = plan::finished_at(&job) {
        return expire(&job, finished, now, &ctx).await;
    }
    let uid = job.uid().unwrap_or_default();
    if let Some(left) = ctx.shared.expectations.pending(&uid) {
        return Ok(Action::requeue(left));
    }
    let ns = job.namespace();
    let pods: Vec<Pod> = ctx
        .shared
        .informers
        .pods
        .store()
        .state()
        .iter()
        .filter(|p| p.namespace() == ns && controller_uid(&***p).as_deref() == Some(uid.as_str()))
        .map(|p| (**p).clone())
        .collect();
    let plan = plan::plan(&job, &pods, now);
    let managed = manage(&job, &plan, &ctx).await;
    let api: Api<Job> = Api::namespaced(ctx.shared.client.clone(), &ns.unwrap_or_default());
    replace_status(&api, &job.name_any(), job.status.as_ref(), &plan.status)
        .await
        .map_err(api_error(format!(
            "writing the status of job {}",
            full_name(&job)
        )))?;
    let reference = Recorder::reference(&*job);
    for (ty, reason, message) in &plan.events {
        ctx.events.publish(&reference, *ty, reason, message).await;
    }
    managed?;
    Ok(plan
        .requeue
        .map_or_else(Action::await_change, Action::requeue))
}

/// Deletes a finished Job (and, in the foreground, its pods) once its TTL ran out.
async fn expire(
    job: &Job,
    finished: jiff::Timestamp,
    now: jiff::Timestamp,
    ctx: &Ctx,
) -> Result<Action, Error> {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ok(Action::await_change());
    };
    let expires = finished + jiff::SignedDuration::from_secs(i64::from(ttl.max(0)));
    if let Ok(left) = Duration::try_from(expires.duration_since(now))
        && !left.is_zero()
    {
        return Ok(Action::requeue(left));
    }
    let api: Api<Job> = Api::namespaced(
        ctx.shared.client.clone(),
        &job.namespace().unwrap_or_default(),
    );
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..Default::default()
    };
    match api.delete(&job.name_any(), &params).await {
        Err(e) if !is_benign(&e) => Err(api_error(format!(
            "deleting job {} after its ttlSecondsAfterFinished",
            full_name(job)
        ))(e)),
        _ => Ok(Action::await_change()),
    }
}

/// Creates and deletes the Job's pods.
async fn manage(job: &Job, plan: &plan::Plan, ctx: &Ctx) -> Result<(), Error> {
    let create = (0..plan.create)
        .map(|i| {
            let mut pod = pod_from_template(job, plan.indexes.get(i).copied());
            if let Some(counts) = plan.failure_counts.get(i) {
                per_index::annotate(&mut pod, *counts);
            }
            pod
        })
        .collect();
    let shared = &ctx.shared;
    PodControl::new(
        job,
        shared.client.clone(),
        &shared.expectations,
        &ctx.events,
    )
    .apply(create, &plan.delete)
    .await
}

/// A pod from the Job's template, named `<job>-<random>` (`<job>-<index>-<random>` in an
/// Indexed Job) and owned by the Job.
fn pod_from_template(job: &Job, index: Option<i32>) -> Pod {
    let template = job.spec.clone().unwrap_or_default().template;
    let meta = template.metadata.unwrap_or_default();
    let mut pod = Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", job.name_any())),
            namespace: job.namespace(),
            labels: meta.labels,
            annotations: meta.annotations,
            owner_references: Some(vec![controller_ref(job)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    };
    if let Some(index) = index {
        indexed::assign(&mut pod, &job.name_any(), index);
    }
    pod
}
