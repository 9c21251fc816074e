//! What the HPA controller decides, as pure functions: the CPU utilization of the target's
//! pods against their requests, the replica count it recommends (with the default 10 %
//! tolerance and Kubernetes' handling of pods without metrics), the scale-down
//! stabilization window, and the status and conditions.

use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus,
    MetricStatus, MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TOLERANCE: f64 = 0.1;

/// One pod of the target: its CPU request (millicores) and, when it is ready and measured,
/// its usage.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sample {
    pub(super) request: u64,
    pub(super) usage: Option<u64>,
}

/// A replica count computed from measured utilization.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Recommendation {
    /// Average utilization of the measured pods, in percent of their requests.
    pub(super) utilization: i32,
    /// Average usage of the measured pods, in millicores.
    pub(super) average_millis: u64,
    pub(super) desired: i32,
}

/// Why no replica count could be computed: the `FailedGetResourceMetric` message.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Unmeasurable(pub(super) String);

/// Recommends a replica count for `current` replicas whose pods are `samples`, against
/// `target` percent utilization. As Kubernetes does, pods without metrics yet count as
/// using nothing when scaling up and their full request when scaling down, and the scale
/// is skipped if that makes the change fall within the tolerance.
pub(super) fn recommend(
    samples: &[Sample],
    current: i32,
    target: i32,
    target_name: &str,
) -> Result<Recommendation, Unmeasurable> {
    let measured: Vec<(u64, u64)> = samples
        .iter()
        .filter_map(|s| Some((s.request, s.usage?)))
        .collect();
    let usage: u64 = measured.iter().map(|(_, u)| u).sum();
    let requests: u64 = measured.iter().map(|(r, _)| r).sum();
    if samples.iter().any(|s| s.request == 0) {
        return Err(Unmeasurable(format!(
            "failed to get cpu utilization: missing request for cpu in containers of {target_name}"
        )));
    }
    if measured.is_empty() || requests == 0 {
        return Err(Unmeasurable("failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API".into()));
    }
    let unmeasured: u64 = samples
        .iter()
        .filter(|s| s.usage.is_none())
        .map(|s| s.request)
        .sum();
    let utilization = (usage * 100 / requests) as i32;
    let ratio = f64::from(utilization) / f64::from(target.max(1));
    let adjusted_usage = if ratio > 1.0 {
        usage
    } else {
        usage + unmeasured
    };
    let adjusted_ratio = (adjusted_usage as f64 * 100.0 / (requests + unmeasured).max(1) as f64)
        / f64::from(target.max(1));
    let desired = if (ratio - 1.0).abs() <= TOLERANCE
        || (adjusted_ratio - 1.0).abs() <= TOLERANCE
        || (ratio > 1.0) != (adjusted_ratio > 1.0)
    {
        current
    } else {
        (adjusted_ratio * samples.len() as f64).ceil() as i32
    };
    Ok(Recommendation {
        utilization,
        average_millis: usage / measured.len() as u64,
        desired: desired.min((current * 2).max(4)),
    })
}

/// Recent recommendations per HPA, for the scale-down stabilization window.
#[derive(Debug, Default)]
pub(super) struct Recommendations {
    by_hpa: HashMap<String, Vec<(Instant, i32)>>,
}

impl Recommendations {
    /// Records `desired` for `key` at `now`; a scale down goes no lower than the highest
    /// recommendation within `window`.
    pub(super) fn stabilize(
        &mut self,
        key: &str,
        desired: i32,
        current: i32,
        window: Duration,
        now: Instant,
    ) -> i32 {
        let recs = self.by_hpa.entry(key.to_string()).or_default();
        recs.retain(|(t, _)| now.duration_since(*t) < window);
        recs.push((now, desired));
        if desired >= current {
            return desired;
        }
        recs.iter()
            .map(|(_, r)| *r)
            .max()
            .unwrap_or(desired)
            .min(current)
    }

    pub(super) fn forget(&mut self, key: &str) {
        self.by_hpa.remove(key);
    }
}

/// Builds conditions that keep their transition time while their status is unchanged.
pub(super) struct Conditions<'a> {
    previous: &'a [HorizontalPodAutoscalerCondition],
    now: Time,
}

impl<'a> Conditions<'a> {
    pub(super) fn new(hpa: &'a HorizontalPodAutoscaler, now: jiff::Timestamp) -> Self {
        let previous = hpa
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or_default();
        Self {
            previous,
            now: Time(now),
        }
    }

    fn make(
        &self,
        type_: &str,
        status: &str,
        reason: &str,
        message: String,
    ) -> HorizontalPodAutoscalerCondition {
        let old = self.previous.iter().find(|c| c.type_ == type_);
        HorizontalPodAutoscalerCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message),
            last_transition_time: match old {
                Some(c) if c.status == status => c.last_transition_time.clone(),
                _ => Some(self.now.clone()),
            },
            observed_generation: None,
        }
    }

    /// The status of an HPA whose target (`kind` `name`) does not exist.
    pub(super) fn no_target(
        &self,
        hpa: &HorizontalPodAutoscaler,
        kind: &str,
        name: &str,
    ) -> HorizontalPodAutoscalerStatus {
        HorizontalPodAutoscalerStatus {
            current_replicas: Some(0),
            desired_replicas: 0,
            conditions: Some(vec![self.make(
                "AbleToScale",
                "False",
                "FailedGetScale",
                format!(
                    "the HPA controller was unable to get the target's current scale: {} \"{name}\" not found",
                    kind.to_lowercase()
                ),
            )]),
            ..hpa.status.clone().unwrap_or_default()
        }
    }

    /// The status of an HPA whose target's utilization cannot be measured.
    pub(super) fn unmeasurable(
        &self,
        hpa: &HorizontalPodAutoscaler,
        current: i32,
        why: Unmeasurable,
    ) -> HorizontalPodAutoscalerStatus {
        HorizontalPodAutoscalerStatus {
            current_replicas: Some(current),
            desired_replicas: current,
            observed_generation: hpa.metadata.generation,
            conditions: Some(vec![
                self.able_to_scale(
                    "SucceededGetScale",
                    "the HPA controller was able to get the target's current scale",
                ),
                self.make("ScalingActive", "False", "FailedGetResourceMetric", why.0),
            ]),
            ..hpa.status.clone().unwrap_or_default()
        }
    }

    fn able_to_scale(&self, reason: &str, message: &str) -> HorizontalPodAutoscalerCondition {
        self.make("AbleToScale", "True", reason, message.into())
    }

    /// The status after recommending `desired`, limited to `limited` by min/maxReplicas.
    pub(super) fn scaled(
        &self,
        hpa: &HorizontalPodAutoscaler,
        current: i32,
        rec: &Recommendation,
        desired: i32,
        limited: i32,
    ) -> HorizontalPodAutoscalerStatus {
        let max = hpa.spec.max_replicas;
        let (reason, comparison, bound) = if desired > max {
            ("TooManyReplicas", "more than", "maximum")
        } else {
            ("TooFewReplicas", "less than", "minimum")
        };
        let limit = if limited != desired {
            self.make(
                "ScalingLimited",
                "True",
                reason,
                format!("the desired replica count is {comparison} the {bound} replica count"),
            )
        } else {
            self.make(
                "ScalingLimited",
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range".into(),
            )
        };
        HorizontalPodAutoscalerStatus {
            current_replicas: Some(current),
            desired_replicas: limited,
            observed_generation: hpa.metadata.generation,
            last_scale_time: hpa.status.as_ref().and_then(|s| s.last_scale_time.clone()),
            current_metrics: Some(vec![MetricStatus {
                type_: "Resource".into(),
                resource: Some(ResourceMetricStatus {
                    name: "cpu".into(),
                    current: MetricValueStatus {
                        average_utilization: Some(rec.utilization),
                        average_value: Some(Quantity(format!("{}m", rec.average_millis))),
                        value: None,
                    },
                }),
                ..Default::default()
            }]),
            conditions: Some(vec![
                self.able_to_scale("ReadyForNewScale", "recommended size matches current size"),
                self.make(
                    "ScalingActive",
                    "True",
                    "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)".into(),
                ),
                limit,
            ]),
        }
    }

    pub(super) fn now(&self) -> Time {
        self.now.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busy(request: u64, usage: u64) -> Sample {
        Sample {
            request,
            usage: Some(usage),
        }
    }

    #[test]
    fn utilization_above_target_scales_up_in_proportion_and_at_most_doubles() {
        let rec = recommend(&[busy(100, 160), busy(100, 160)], 2, 80, "web").unwrap();
        assert_eq!(rec.utilization, 160);
        assert_eq!(rec.average_millis, 160);
        assert_eq!(rec.desired, 4);
        let rec = recommend(&[busy(100, 900)], 1, 50, "web").unwrap();
        assert_eq!(rec.desired, 4, "at most double, or four");
    }

    #[test]
    fn changes_within_the_tolerance_or_hidden_by_unmeasured_pods_keep_the_count() {
        let within = recommend(&[busy(100, 85), busy(100, 85)], 2, 80, "web").unwrap();
        assert_eq!(within.desired, 2);
        // One busy pod and one starting: counted as idle, the two average out.
        let starting = Sample {
            request: 100,
            usage: None,
        };
        let hidden = recommend(&[busy(100, 170), starting], 2, 80, "web").unwrap();
        assert_eq!(hidden.desired, 2);
        let idle = recommend(&[busy(100, 10), busy(100, 10), busy(100, 10)], 3, 80, "web").unwrap();
        assert_eq!(idle.desired, 1);
    }

    #[test]
    fn pods_without_requests_or_metrics_cannot_be_measured() {
        let no_request = recommend(&[busy(0, 10)], 1, 80, "web").unwrap_err();
        assert!(
            no_request
                .0
                .contains("missing request for cpu in containers of web")
        );
        let no_metrics = Sample {
            request: 100,
            usage: None,
        };
        let unmeasured = recommend(&[no_metrics], 1, 80, "web").unwrap_err();
        assert!(unmeasured.0.contains("no metrics returned"));
    }

    #[test]
    fn scale_down_waits_for_the_stabilization_window() {
        let mut recs = Recommendations::default();
        let t0 = Instant::now();
        let window = Duration::from_secs(300);
        assert_eq!(recs.stabilize("demo/web", 4, 2, window, t0), 4);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            recs.stabilize("demo/web", 1, 4, window, later),
            4,
            "a higher recommendation within the window holds"
        );
        let after = t0 + Duration::from_secs(301);
        assert_eq!(recs.stabilize("demo/web", 1, 4, window, after), 1);
    }
}
