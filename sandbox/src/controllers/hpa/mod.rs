//! HorizontalPodAutoscaler controller (autoscaling/v2, CPU utilization): scales a
//! Deployment or StatefulSet from the kubelet's live pod CPU usage against requests. Each
//! HPA is evaluated at most once per sync period (requeued at that period), as upstream's
//! rate-limited queue does. [`plan`] computes; [`reconcile`] gathers and writes.

mod plan;

use super::util::{is_active, is_ready, selector_matches, write_status};
use super::{Error, Shared, api_error};
use crate::apimachinery::events::{EventType, Recorder};
use crate::apimachinery::workqueue;
use crate::scheduler::pod_requests;
use crate::shutdown::Shutdown;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use plan::{Conditions, Recommendations, Sample};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often an HPA is evaluated (Kubernetes uses 15 s).
const SYNC_PERIOD: Duration = Duration::from_secs(5);

struct Ctx {
    shared: Arc<Shared>,
    events: Recorder,
    recommendations: Mutex<Recommendations>,
    /// When each HPA (by UID) was last evaluated.
    evaluated: Mutex<HashMap<String, Instant>>,
}

/// Reconciles HPAs on their changes and every sync period.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let controller = Controller::for_stream(informers.hpas.subscribe(), informers.hpas.store());
    let ctx = Arc::new(Ctx {
        events: Recorder::new(shared.client.clone(), "horizontal-pod-autoscaler"),
        shared: shared.clone(),
        recommendations: Mutex::default(),
        evaluated: Mutex::default(),
    });
    workqueue::run("hpa", controller, reconcile, ctx, shutdown)
}

/// The target's replicas and selector, if it exists.
fn target(hpa: &HorizontalPodAutoscaler, shared: &Shared) -> Option<(i32, LabelSelector)> {
    let target = &hpa.spec.scale_target_ref;
    let ns = hpa.namespace().unwrap_or_default();
    let informers = &shared.informers;
    match target.kind.as_str() {
        "Deployment" => {
            let d = informers
                .deployments
                .store()
                .get(&ObjectRef::<Deployment>::new(&target.name).within(&ns))?;
            let spec = &d.spec;
            Some((spec.replicas.unwrap_or(1), spec.selector.clone()))
        }
        "StatefulSet" => {
            let s = informers
                .statefulsets
                .store()
                .get(&ObjectRef::<StatefulSet>::new(&target.name).within(&ns))?;
            let spec = &s.spec;
            Some((spec.replicas.unwrap_or(1), spec.selector.clone()))
        }
        _ => None,
    }
}

/// The CPU request and (if ready and measured) usage of each active pod `selector` picks.
fn samples(
    hpa: &HorizontalPodAutoscaler,
    selector: &LabelSelector,
    shared: &Shared,
) -> Vec<Sample> {
    let ns = hpa.namespace();
    let metrics = shared.config.metrics.as_ref();
    shared
        .informers
        .pods
        .store()
        .state()
        .iter()
        .filter(|p| p.namespace() == ns && selector_matches(selector, p.labels()) && is_active(p))
        .map(|pod| Sample {
            request: pod.spec.as_ref().map(|s| pod_requests(s).0).unwrap_or(0),
            usage: metrics
                .and_then(|m| m.pod_usage(ns.as_deref().unwrap_or_default(), &pod.name_any()))
                .filter(|_| is_ready(pod))
                .map(|usage| usage.iter().map(|c| c.cpu_millis).sum()),
        })
        .collect()
}

async fn reconcile(hpa: Arc<HorizontalPodAutoscaler>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let uid = hpa.uid().unwrap_or_default();
    let key = format!("{}/{}", hpa.namespace().unwrap_or_default(), hpa.name_any());
    {
        let mut evaluated = ctx.evaluated.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = evaluated.get(&uid).map(Instant::elapsed)
            && since < SYNC_PERIOD
        {
            return Ok(Action::requeue(SYNC_PERIOD - since));
        }
        evaluated.insert(uid, Instant::now());
    }
    let spec = &hpa.spec;
    let conditions = Conditions::new(&hpa, jiff::Timestamp::now());
    let status = match target(&hpa, &ctx.shared) {
        None => {
            let target = &spec.scale_target_ref;
            ctx.recommendations
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(&key);
            conditions.no_target(&hpa, &target.kind, &target.name)
        }
        Some((current, selector)) => {
            let samples = samples(&hpa, &selector, &ctx.shared);
            evaluate(&hpa, &key, current, &samples, &conditions, &ctx).await?
        }
    };
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(
        ctx.shared.client.clone(),
        &hpa.namespace().unwrap_or_default(),
    );
    write_status(&api, &hpa.name_any(), hpa.status.as_ref(), &status)
        .await
        .map_err(api_error(format!("writing the status of autoscaler {key}")))?;
    Ok(Action::requeue(SYNC_PERIOD))
}

/// Recommends, stabilizes and limits a replica count, scales the target to it, and says
/// the status to write.
async fn evaluate(
    hpa: &HorizontalPodAutoscaler,
    key: &str,
    current: i32,
    samples: &[Sample],
    conditions: &Conditions<'_>,
    ctx: &Ctx,
) -> Result<HorizontalPodAutoscalerStatus, Error> {
    let spec = hpa.spec.clone();
    let target = &spec.scale_target_ref;
    let utilization = spec
        .metrics
        .iter()
        .flatten()
        .filter_map(|m| m.resource.as_ref())
        .find(|r| r.name == "cpu")
        .and_then(|r| r.target.average_utilization)
        .unwrap_or(80);
    let rec = match plan::recommend(samples, current, utilization, &target.name) {
        Ok(rec) => rec,
        Err(why) => return Ok(conditions.unmeasurable(hpa, current, why)),
    };
    let window = spec
        .behavior
        .as_ref()
        .and_then(|b| b.scale_down.as_ref())
        .and_then(|s| s.stabilization_window_seconds)
        .unwrap_or(300)
        .max(0) as u64;
    let desired = ctx
        .recommendations
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .stabilize(
            key,
            rec.desired,
            current,
            Duration::from_secs(window),
            Instant::now(),
        );
    let limited = desired.clamp(spec.min_replicas.unwrap_or(1), spec.max_replicas);
    let mut status = conditions.scaled(hpa, current, &rec, desired, limited);
    if limited != current {
        scale(hpa, limited, ctx).await?;
        let direction = if limited > current { "above" } else { "below" };
        ctx.events
            .publish(
                &Recorder::reference(hpa),
                EventType::Normal,
                "SuccessfulRescale",
                &format!("New size: {limited}; reason: cpu resource utilization (percentage of request) {direction} target"),
            )
            .await;
        status.last_scale_time = Some(conditions.now());
    }
    Ok(status)
}

/// Sets the target's replicas.
async fn scale(hpa: &HorizontalPodAutoscaler, replicas: i32, ctx: &Ctx) -> Result<(), Error> {
    let ns = hpa.namespace().unwrap_or_default();
    let target = hpa.spec.clone().scale_target_ref;
    let patch = Patch::Merge(serde_json::json!({ "spec": { "replicas": replicas } }));
    let pp = PatchParams::default();
    let client = ctx.shared.client.clone();
    let result = match target.kind.as_str() {
        "Deployment" => Api::<Deployment>::namespaced(client, &ns)
            .patch(&target.name, &pp, &patch)
            .await
            .map(drop),
        _ => Api::<StatefulSet>::namespaced(client, &ns)
            .patch(&target.name, &pp, &patch)
            .await
            .map(drop),
    };
    result.map_err(api_error(format!(
        "scaling {} {ns}/{} to {replicas}",
        target.kind.to_lowercase(),
        target.name
    )))
}
