//! The disruption controller, as kube-controller-manager's: each PodDisruptionBudget's
//! status says how many of its pods are expected, how many must stay healthy, how many are,
//! and so how many may be disrupted now, which the eviction subresource reads and lowers.

use super::util::{is_ready, is_terminating, selector_matches};
use super::{Error, Shared, api_error};
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long an eviction's entry in `disruptedPods` counts before the pod must be gone
/// (the controller's `DeletionTimeout`).
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

/// Reconciles budgets on their changes and on changes to the pods they select.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let budgets = informers.pdbs.store();
    let controller = Controller::for_stream(informers.pdbs.subscribe(), budgets.clone())
        .watches_stream(informers.pods.subscribe(), move |pod| {
            budgets
                .state()
                .iter()
                .filter(|b| b.namespace() == pod.namespace() && selects(b, &pod))
                .map(|b| ObjectRef::from_obj(&**b))
                .collect::<Vec<_>>()
        });
    workqueue::run(
        "disruption",
        controller,
        reconcile,
        shared.clone(),
        shutdown,
    )
}

/// Whether a budget covers a pod: an empty selector covers every pod of its namespace.
fn selects(budget: &PodDisruptionBudget, pod: &Pod) -> bool {
    let Some(selector) = budget.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    let everything = selector.match_labels.is_none() && selector.match_expressions.is_none();
    everything || selector_matches(selector, pod.labels())
}

async fn reconcile(budget: Arc<PodDisruptionBudget>, shared: Arc<Shared>) -> Result<Action, Error> {
    if is_terminating(&*budget) {
        return Ok(Action::await_change());
    }
    let pods: Vec<Arc<Pod>> = shared
        .informers
        .pods
        .store()
        .state()
        .into_iter()
        .filter(|p| p.namespace() == budget.namespace() && selects(&budget, p))
        .collect();
    let scales = controller_scales(&shared, &pods);
    let now = jiff::Timestamp::now();
    let status = plan(&budget, &pods, &scales, now);
    let requeue = status
        .disrupted_pods
        .as_ref()
        .is_some_and(|d| !d.is_empty())
        .then_some(Action::requeue(Duration::from_secs(10)));
    if !changed(budget.status.as_ref(), &status) {
        return Ok(requeue.unwrap_or_else(Action::await_change));
    }
    let mut next = (*budget).clone();
    next.status = Some(status);
    let ns = budget.namespace().unwrap_or_default();
    let api: Api<PodDisruptionBudget> = Api::namespaced(shared.client.clone(), &ns);
    api.replace_status(&budget.name_any(), &PostParams::default(), &next)
        .await
        .map_err(api_error(format!(
            "writing the status of poddisruptionbudget {ns}/{}",
            budget.name_any()
        )))?;
    Ok(requeue.unwrap_or_else(Action::await_change))
}

/// The replicas each pod's controller wants (by controller uid), for budgets that count
/// against the scale: ReplicaSets and StatefulSets.
fn controller_scales(shared: &Shared, pods: &[Arc<Pod>]) -> HashMap<String, i32> {
    let mut scales = HashMap::new();
    let replicasets = shared.informers.replicasets.store().state();
    let statefulsets = shared.informers.statefulsets.store().state();
    for pod in pods {
        for owner in pod
            .owner_references()
            .iter()
            .filter(|o| o.controller == Some(true))
        {
            let replicas = match owner.kind.as_str() {
                "ReplicaSet" => replicasets
                    .iter()
                    .find(|r| r.uid().as_deref() == Some(&owner.uid))
                    .map(|r| r.spec.replicas.unwrap_or(1)),
                "StatefulSet" => statefulsets
                    .iter()
                    .find(|s| s.uid().as_deref() == Some(&owner.uid))
                    .map(|s| s.spec.replicas.unwrap_or(1)),
                _ => None,
            };
            if let Some(n) = replicas {
                scales.insert(owner.uid.clone(), n);
            }
        }
    }
    scales
}

/// A count or a percentage of `of`, rounded up as the controller rounds.
fn scaled(v: &IntOrString, of: i32) -> i32 {
    match v {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            ((pct * i64::from(of) + 99) / 100) as i32
        }
    }
}

/// The budget's status for these pods and controller scales.
fn plan(
    budget: &PodDisruptionBudget,
    pods: &[Arc<Pod>],
    scales: &HashMap<String, i32>,
    now: jiff::Timestamp,
) -> PodDisruptionBudgetStatus {
    let spec = budget.spec.clone().unwrap_or_default();
    let uncontrolled = pods
        .iter()
        .filter(|p| {
            !p.owner_references()
                .iter()
                .any(|o| scales.contains_key(&o.uid))
        })
        .count() as i32;
    let scale: i32 = scales.values().sum::<i32>() + uncontrolled;
    let (expected, desired) = match (&spec.max_unavailable, &spec.min_available) {
        (Some(max), _) => (scale, (scale - scaled(max, scale)).max(0)),
        (None, Some(IntOrString::Int(min))) => (pods.len() as i32, *min),
        (None, Some(min)) => (scale, scaled(min, scale)),
        (None, None) => (0, 0),
    };
    let old = budget.status.clone().unwrap_or_default();
    let disrupted: BTreeMap<String, Time> = old
        .disrupted_pods
        .unwrap_or_default()
        .into_iter()
        .filter(|(name, at)| {
            let pending = pods
                .iter()
                .any(|p| p.name_any() == *name && !is_terminating(&**p));
            let fresh = now.duration_since(at.0).unsigned_abs() < DELETION_TIMEOUT;
            pending && fresh
        })
        .collect();
    let healthy = pods
        .iter()
        .filter(|p| is_ready(p) && !is_terminating(&***p) && !disrupted.contains_key(&p.name_any()))
        .count() as i32;
    let allowed = (healthy - desired).max(0);
    let generation = budget.metadata.generation;
    let (status, reason) = if allowed > 0 {
        ("True", "SufficientPods")
    } else {
        ("False", "InsufficientPods")
    };
    let transition = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionAllowed" && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PodDisruptionBudgetStatus {
        current_healthy: Some(healthy),
        desired_healthy: Some(desired),
        disruptions_allowed: Some(allowed),
        expected_pods: Some(expected),
        observed_generation: generation,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        conditions: Some(vec![Condition {
            type_: "DisruptionAllowed".into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: transition,
            observed_generation: generation,
        }]),
    }
}

fn changed(old: Option<&PodDisruptionBudgetStatus>, new: &PodDisruptionBudgetStatus) -> bool {
    old != Some(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
    use kube::api::ObjectMeta;

    fn pod(name: &str, ready: bool) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("demo".into()),
                owner_references: Some(vec![OwnerReference {
                    kind: "ReplicaSet".into(),
                    uid: "rs".into(),
                    controller: Some(true),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn budget(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: ObjectMeta {
                generation: Some(2),
                ..Default::default()
            },
            spec: Some(PodDisruptionBudgetSpec {
                min_available: min,
                max_unavailable: max,
                selector: Some(LabelSelector::default()),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn budgets_count_healthy_pods_against_min_available_or_max_unavailable() {
        let pods = [pod("a", true), pod("b", true), pod("c", false)];
        let scales = HashMap::from([("rs".to_string(), 3)]);
        let now = jiff::Timestamp::now();
        let s = plan(
            &budget(Some(IntOrString::Int(2)), None),
            &pods,
            &scales,
            now,
        );
        assert_eq!(
            (
                s.expected_pods,
                s.desired_healthy,
                s.current_healthy,
                s.disruptions_allowed
            ),
            (Some(3), Some(2), Some(2), Some(0))
        );
        assert_eq!(s.observed_generation, Some(2));
        let s = plan(
            &budget(None, Some(IntOrString::Int(1))),
            &pods,
            &scales,
            now,
        );
        assert_eq!(
            (s.desired_healthy, s.disruptions_allowed),
            (Some(2), Some(0))
        );
        let s = plan(
            &budget(Some(IntOrString::String("50%".into())), None),
            &pods,
            &scales,
            now,
        );
        assert_eq!(
            (s.desired_healthy, s.disruptions_allowed),
            (Some(2), Some(0))
        );
        let s = plan(
            &budget(Some(IntOrString::Int(1)), None),
            &pods,
            &scales,
            now,
        );
        assert_eq!(s.disruptions_allowed, Some(1));
        assert_eq!(s.conditions.unwrap()[0].reason, "SufficientPods");
    }
}
