//! What a pod's status says, read the same way by every check, wait and diagnosis.

use super::{Verdict, condition_true};
use k8s_openapi::api::core::v1::{Event, Pod, PodCondition};

/// A container that is waiting: its image, the reason (e.g. `ImagePullBackOff`) and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Waiting {
    pub image: String,
    pub reason: String,
    pub message: String,
}

/// Ready: not being deleted, and its Ready condition is True.
pub(crate) fn ready(pod: &Pod) -> bool {
    !terminating(pod) && condition_true(conditions(pod), "Ready")
}

/// Being deleted (kubectl shows `Terminating`).
pub(crate) fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Restarts of all its containers.
pub(crate) fn restart_count(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

/// The pod's phase; `Pending` until the kubelet reports one.
pub(crate) fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Its containers that are waiting, in order.
pub(crate) fn waiting(pod: &Pod) -> Vec<Waiting> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    statuses
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let w = c.state.as_ref()?.waiting.as_ref()?;
            Some(Waiting {
                image: c.image.clone(),
                reason: w.reason.clone().unwrap_or_default(),
                message: w.message.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// The PodScheduled condition when it is False: the scheduler cannot place the pod.
pub(crate) fn unscheduled(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
}

/// What kubectl's STATUS column would say: Terminating, a waiting reason, or the phase.
pub(crate) fn state(pod: &Pod) -> String {
    let waiting_reason = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| {
            cs.iter()
                .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
        });
    if terminating(pod) {
        "Terminating".to_string()
    } else {
        waiting_reason.unwrap_or_else(|| phase(pod).to_string())
    }
}

/// `name State` for each pod, e.g. `redis-0 Running, api-x ImagePullBackOff`.
pub(crate) fn summary(pods: &[Pod]) -> String {
    if pods.is_empty() {
        return "no pods yet".into();
    }
    pods.iter()
        .map(|p| format!("{} {}", name(p), state(p)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The pod's name.
pub(crate) fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

fn conditions(pod: &Pod) -> impl Iterator<Item = (&str, &str)> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| (c.type_.as_str(), c.status.as_str()))
}

/// At least one pod matches and all of them are ready, leaving out pods being deleted: on a
/// real cluster a rollout completes while its old pods are still Terminating.
pub(crate) fn all_ready(pods: &[Pod]) -> Verdict {
    let ready = pods.iter().filter(|p| ready(p)).count();
    let total = pods.iter().filter(|p| !terminating(p)).count();
    Verdict::new(
        total > 0 && ready == total,
        format!("{ready}/{total} pods ready: {}", summary(pods)),
    )
}

/// No pod matches any more.
pub(crate) fn gone(pods: &[Pod]) -> Verdict {
    Verdict::new(pods.is_empty(), format!("{} pods left", pods.len()))
}

/// The pods restarted at least `at_least` times in total.
pub(crate) fn restarted(pods: &[Pod], at_least: i32) -> Verdict {
    let restarts: i32 = pods.iter().map(restart_count).sum();
    Verdict::new(
        restarts >= at_least,
        format!("{restarts} restart(s): {}", summary(pods)),
    )
}

/// The pods restarted at least `at_least` times and an event with `reason` about one of
/// them says why.
pub(crate) fn restarted_with_event(
    pods: &[Pod],
    events: &[Event],
    at_least: i32,
    reason: &str,
) -> Verdict {
    let restarts: i32 = pods.iter().map(restart_count).sum();
    let names: Vec<&str> = pods.iter().map(name).collect();
    let event = events.iter().rev().find(|e| {
        e.reason.as_deref() == Some(reason)
            && e.involved_object
                .name
                .as_deref()
                .is_some_and(|n| names.contains(&n))
    });
    match (restarts >= at_least, event) {
        (true, Some(e)) => Verdict::pass(format!(
            "{restarts} restart(s); event {reason}: {}",
            e.message.as_deref().unwrap_or_default()
        )),
        (false, _) => Verdict::fail(format!(
            "{restarts} restart(s), expected at least {at_least}"
        )),
        (true, None) => Verdict::fail(format!(
            "{restarts} restart(s) but no {reason} event explains them"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::{PodFixture, event};

    #[test]
    fn ready_needs_the_ready_condition_and_no_deletion() {
        assert!(ready(&PodFixture::running("a").build()));
        assert!(!ready(&PodFixture::running("a").not_ready().build()));
        assert!(!ready(&PodFixture::running("a").terminating().build()));
        assert!(!ready(&PodFixture::pending("a").build()));
    }

    #[test]
    fn restarts_add_up_over_containers() {
        let pod = PodFixture::running("a").restarts(&[2, 3]).build();
        assert_eq!(restart_count(&pod), 5);
        assert_eq!(restart_count(&PodFixture::pending("b").build()), 0);
    }

    #[test]
    fn state_prefers_terminating_then_a_waiting_reason_then_the_phase() {
        let crashing = PodFixture::running("c")
            .waiting("CrashLoopBackOff", "back-off 10s")
            .build();
        assert_eq!(state(&crashing), "CrashLoopBackOff");
        assert_eq!(state(&PodFixture::pending("p").build()), "Pending");
        assert_eq!(
            state(&PodFixture::running("t").terminating().build()),
            "Terminating"
        );
        let pods = [crashing, PodFixture::running("r").build()];
        assert_eq!(summary(&pods), "c CrashLoopBackOff, r Running");
        assert_eq!(summary(&[]), "no pods yet");
    }

    #[test]
    fn all_ready_fails_on_no_pods_and_on_one_unready_pod() {
        assert!(!all_ready(&[]).passed);
        let pods = [
            PodFixture::running("a").build(),
            PodFixture::running("b").not_ready().build(),
        ];
        let verdict = all_ready(&pods);
        assert!(!verdict.passed);
        assert_eq!(verdict.detail, "1/2 pods ready: a Running, b Running");
        assert!(all_ready(&pods[..1]).passed);
        let rolled = [
            PodFixture::running("old").terminating().build(),
            PodFixture::running("new").build(),
        ];
        let verdict = all_ready(&rolled);
        assert!(verdict.passed, "{}", verdict.detail);
        assert_eq!(
            verdict.detail,
            "1/1 pods ready: old Terminating, new Running"
        );
        assert!(!all_ready(&rolled[..1]).passed);
    }

    #[test]
    fn restarted_counts_against_the_threshold() {
        let pods = [PodFixture::running("api").restarts(&[1]).build()];
        assert_eq!(
            restarted(&pods, 2),
            Verdict::fail("1 restart(s): api Running")
        );
        assert!(restarted(&pods, 1).passed);
    }

    #[test]
    fn waiting_containers_carry_image_reason_and_message() {
        let pod = PodFixture::pending("x")
            .waiting("ImagePullBackOff", "no such image")
            .build();
        assert_eq!(
            waiting(&pod),
            [Waiting {
                image: "img:1".into(),
                reason: "ImagePullBackOff".into(),
                message: "no such image".into(),
            }]
        );
        assert!(unscheduled(&pod).is_none());
        let unplaced = PodFixture::pending("y").unschedulable("0/1 nodes").build();
        assert_eq!(
            unscheduled(&unplaced).and_then(|c| c.message.as_deref()),
            Some("0/1 nodes")
        );
    }

    #[test]
    fn restarts_need_an_event_about_these_pods_to_explain_them() {
        let pods = [PodFixture::running("api-1").restarts(&[2]).build()];
        let unhealthy = event("api-1", "Unhealthy", "Liveness probe failed: HTTP 404");
        let elsewhere = event("web-1", "Unhealthy", "other pod");
        assert_eq!(
            restarted_with_event(&pods, std::slice::from_ref(&unhealthy), 1, "Unhealthy"),
            Verdict::pass("2 restart(s); event Unhealthy: Liveness probe failed: HTTP 404")
        );
        assert_eq!(
            restarted_with_event(&pods, &[elsewhere], 1, "Unhealthy"),
            Verdict::fail("2 restart(s) but no Unhealthy event explains them")
        );
        assert_eq!(
            restarted_with_event(&pods, &[unhealthy], 3, "Unhealthy"),
            Verdict::fail("2 restart(s), expected at least 3")
        );
    }
}
