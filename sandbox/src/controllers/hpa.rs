//! HorizontalPodAutoscaler controller (autoscaling/v2, CPU utilization): scales a
//! Deployment or StatefulSet from the kubelet's live pod CPU usage against requests, with the
//! default 10 % tolerance and a scale-down stabilization window.

use super::util::{is_ready, selector_matches, write_status};
use super::{Ctx, Snapshot, in_namespace};
use crate::apimachinery::events::{EventType, Recorder};
use crate::scheduler::pod_requests;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
    MetricStatus, MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often HPAs are evaluated (Kubernetes uses 15 s).
pub const SYNC_PERIOD: Duration = Duration::from_secs(5);
const TOLERANCE: f64 = 0.1;

/// Recent recommendations per HPA, for the scale-down stabilization window.
#[derive(Debug, Default)]
pub struct HpaState {
    recommendations: HashMap<String, Vec<(Instant, i32)>>,
}

pub async fn reconcile(ctx: &Ctx, snap: &Snapshot) -> Result<(), kube::Error> {
    for hpa in &snap.hpas {
        reconcile_one(ctx, snap, hpa).await?;
    }
    Ok(())
}

async fn reconcile_one(
    ctx: &Ctx,
    snap: &Snapshot,
    hpa: &HorizontalPodAutoscaler,
) -> Result<(), kube::Error> {
    let ns = hpa.namespace().unwrap_or_default();
    let Some(spec) = &hpa.spec else { return Ok(()) };
    let target = &spec.scale_target_ref;
    let (current, selector): (i32, Option<LabelSelector>) = match target.kind.as_str() {
        "Deployment" => {
            match in_namespace(&snap.deployments, &ns).find(|d| d.name_any() == target.name) {
                Some(d) => (
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    d.spec.as_ref().map(|s| s.selector.clone()),
                ),
                None => (0, None),
            }
        }
        "StatefulSet" => {
            match in_namespace(&snap.statefulsets, &ns).find(|s| s.name_any() == target.name) {
                Some(s) => (
                    s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    s.spec.as_ref().map(|s| s.selector.clone()),
                ),
                None => (0, None),
            }
        }
        _ => (0, None),
    };
    let min = spec.min_replicas.unwrap_or(1);
    let max = spec.max_replicas;
    let target_util = spec
        .metrics
        .iter()
        .flatten()
        .filter_map(|m| m.resource.as_ref())
        .find(|r| r.name == "cpu")
        .and_then(|r| r.target.average_utilization)
        .unwrap_or(80);
    let now = Time(jiff::Timestamp::now());
    let previous = hpa.status.clone().unwrap_or_default();
    let condition = |type_: &str, status: &str, reason: &str, message: String| {
        let old = previous
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == type_);
        HorizontalPodAutoscalerCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: match old {
                Some(c) if c.status == status => c.last_transition_time.clone(),
                _ => Some(now.clone()),
            },
        }
    };
    let Some(selector) = selector else {
        let status = HorizontalPodAutoscalerStatus {
            current_replicas: Some(0),
            desired_replicas: 0,
            conditions: Some(vec![condition(
                "AbleToScale",
                "False",
                "FailedGetScale",
                format!(
                    "the HPA controller was unable to get the target's current scale: {} \"{}\" not found",
                    target.kind.to_lowercase(),
                    target.name
                ),
            )]),
            ..previous.clone()
        };
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
        write_status(&api, &hpa.name_any(), hpa.status.as_ref(), &status).await?;
        return Ok(());
    };
    let pods: Vec<_> = in_namespace(&snap.pods, &ns)
        .filter(|p| selector_matches(&selector, p.labels()) && super::util::is_active(p))
        .collect();
    let mut usage_total = 0u64;
    let mut request_total = 0u64;
    let mut counted = 0i32;
    let mut missing_request = false;
    let mut unmeasured_requests = 0u64;
    let metrics = ctx.config.metrics.as_ref();
    for pod in &pods {
        let (req, _) = pod_requests(pod.spec.as_ref().expect("pods have a spec"));
        if req == 0 {
            missing_request = true;
        }
        let usage = metrics.and_then(|m| m.pod_usage(&ns, &pod.name_any()));
        if let Some(usage) = usage.filter(|_| is_ready(pod)) {
            usage_total += usage.iter().map(|c| c.cpu_millis).sum::<u64>();
            request_total += req;
            counted += 1;
        } else {
            unmeasured_requests += req;
        }
    }
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
    if missing_request || counted == 0 || request_total == 0 {
        let message = if missing_request {
            format!(
                "failed to get cpu utilization: missing request for cpu in containers of {}",
                target.name
            )
        } else {
            "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API".to_string()
        };
        let status = HorizontalPodAutoscalerStatus {
            current_replicas: Some(current),
            desired_replicas: current,
            observed_generation: hpa.metadata.generation,
            conditions: Some(vec![
                condition(
                    "AbleToScale",
                    "True",
                    "SucceededGetScale",
                    "the HPA controller was able to get the target's current scale".into(),
                ),
                condition("ScalingActive", "False", "FailedGetResourceMetric", message),
            ]),
            ..previous.clone()
        };
        write_status(&api, &hpa.name_any(), hpa.status.as_ref(), &status).await?;
        return Ok(());
    }
    let utilization = (usage_total * 100 / request_total) as i32;
    let ratio = f64::from(utilization) / f64::from(target_util.max(1));
    // As Kubernetes does: pods without metrics yet (starting, not ready) count as using
    // nothing when scaling up and their full request when scaling down, and the scale is
    // skipped if that makes the change fall within the tolerance.
    let adjusted_requests = request_total + unmeasured_requests;
    let adjusted_usage = if ratio > 1.0 {
        usage_total
    } else {
        usage_total + unmeasured_requests
    };
    let adjusted_ratio = (adjusted_usage as f64 * 100.0 / adjusted_requests.max(1) as f64)
        / f64::from(target_util.max(1));
    let pods_total = pods.len() as i32;
    let mut desired = if (ratio - 1.0).abs() <= TOLERANCE
        || (adjusted_ratio - 1.0).abs() <= TOLERANCE
        || (ratio > 1.0) != (adjusted_ratio > 1.0)
    {
        current
    } else {
        (adjusted_ratio * f64::from(pods_total)).ceil() as i32
    };
    desired = desired.min((current * 2).max(4));
    let key = format!("{ns}/{}", hpa.name_any());
    let window = spec
        .behavior
        .as_ref()
        .and_then(|b| b.scale_down.as_ref())
        .and_then(|s| s.stabilization_window_seconds)
        .unwrap_or(300)
        .max(0) as u64;
    {
        let mut state = ctx.hpa_state.lock().unwrap_or_else(|e| e.into_inner());
        let recs = state.recommendations.entry(key).or_default();
        recs.retain(|(t, _)| t.elapsed() < Duration::from_secs(window));
        recs.push((Instant::now(), desired));
        if desired < current {
            desired = recs
                .iter()
                .map(|(_, r)| *r)
                .max()
                .unwrap_or(desired)
                .min(current);
        }
    }
    let limited = desired.clamp(min, max);
    let mut status = HorizontalPodAutoscalerStatus {
        current_replicas: Some(current),
        desired_replicas: limited,
        observed_generation: hpa.metadata.generation,
        last_scale_time: previous.last_scale_time.clone(),
        current_metrics: Some(vec![MetricStatus {
            type_: "Resource".into(),
            resource: Some(ResourceMetricStatus {
                name: "cpu".into(),
                current: MetricValueStatus {
                    average_utilization: Some(utilization),
                    average_value: Some(Quantity(format!("{}m", usage_total / counted.max(1) as u64))),
                    value: None,
                },
            }),
            ..Default::default()
        }]),
        conditions: Some(vec![
            condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size".into()),
            condition(
                "ScalingActive",
                "True",
                "ValidMetricFound",
                "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)".into(),
            ),
            if limited != desired {
                condition("ScalingLimited", "True", if desired > max { "TooManyReplicas" } else { "TooFewReplicas" }, format!("the desired replica count is {} the {} replica count", if desired > max { "more than" } else { "less than" }, if desired > max { "maximum" } else { "minimum" }))
            } else {
                condition("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the acceptable range".into())
            },
        ]),
    };
    if limited != current {
        let patch = serde_json::json!({ "spec": { "replicas": limited } });
        let pp = PatchParams::default();
        match target.kind.as_str() {
            "Deployment" => {
                Api::<Deployment>::namespaced(ctx.client.clone(), &ns)
                    .patch(&target.name, &pp, &Patch::Merge(&patch))
                    .await?;
            }
            _ => {
                Api::<StatefulSet>::namespaced(ctx.client.clone(), &ns)
                    .patch(&target.name, &pp, &Patch::Merge(&patch))
                    .await?;
            }
        }
        let direction = if limited > current { "above" } else { "below" };
        ctx.hpa
            .publish(
                &Recorder::reference(hpa),
                EventType::Normal,
                "SuccessfulRescale",
                &format!("New size: {limited}; reason: cpu resource utilization (percentage of request) {direction} target"),
            )
            .await;
        status.last_scale_time = Some(now.clone());
    }
    write_status(&api, &hpa.name_any(), hpa.status.as_ref(), &status).await?;
    Ok(())
}
