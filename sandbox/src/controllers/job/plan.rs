//! What the Job controller decides for one Job, from its pods and the time: pods to create
//! and delete, the status (counts, start and completion times, conditions) and when to look
//! again. Pure, as Kubernetes' syncJob minus the API calls.

use super::indexed;
use super::per_index::{self, PerIndex};
use super::policy::{self, Verdict};
use crate::apimachinery::events::EventType;
use crate::controllers::util::{is_active, is_ready};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::BTreeSet;
use std::time::Duration;

/// The first retry after a failed pod waits this long; each further failure doubles it.
const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);
pub(super) const BACKOFF_MESSAGE: &str = "Job has reached the specified backoff limit";
const DEADLINE_MESSAGE: &str = "Job was active longer than specified deadline";
const COMPLETIONS_MESSAGE: &str = "Reached expected number of succeeded pods";

/// One reconcile's decisions.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) create: usize,
    /// For an Indexed Job, the completion index of each pod to create.
    pub(super) indexes: Vec<i32>,
    /// With `backoffLimitPerIndex`, the (failure, ignored failure) counts of each new pod.
    pub(super) failure_counts: Vec<per_index::FailureCounts>,
    pub(super) delete: Vec<Pod>,
    pub(super) status: JobStatus,
    pub(super) events: Vec<(EventType, &'static str, String)>,
    /// Look again after this long (a back-off or a deadline), even without a change.
    pub(super) requeue: Option<Duration>,
}

/// The condition of `ty` that is True, if any.
pub(super) fn condition<'a>(status: &'a JobStatus, ty: &str) -> Option<&'a JobCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == ty && c.status == "True")
}

/// Whether the Job is Complete or Failed, and since when.
pub(super) fn finished_at(job: &Job) -> Option<Timestamp> {
    let status = job.status.as_ref()?;
    ["Complete", "Failed"]
        .iter()
        .find_map(|t| condition(status, t))
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
        })
}

fn new_condition(ty: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: ty.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// When the last failed pod finished: pod creation waits the back-off from then.
pub(super) fn last_failure(pods: &[Pod]) -> Option<Timestamp> {
    pods.iter()
        .filter(|p| phase(p) == "Failed")
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
                .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.clone())
                .map(|t| t.0)
                .collect::<Vec<_>>()
        })
        .max()
}

/// For `restartPolicy: OnFailure` the restarts of active pods count as failures.
fn restarts(job: &Job, active: &[&Pod]) -> i32 {
    let policy = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.restart_policy.as_deref());
    if policy != Some("OnFailure") {
        return 0;
    }
    active
        .iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum()
}

/// Why the Job must stop, as the interim condition (FailureTarget or SuccessCriteriaMet)
/// a real Job controller records before the final one.
fn finishing(
    job: &Job,
    fatal: Option<&str>,
    failed: i32,
    active: &[&Pod],
    by_index: Option<(&str, &str)>,
    now: Timestamp,
) -> Option<JobCondition> {
    let status = job.status.clone().unwrap_or_default();
    for ty in ["SuccessCriteriaMet", "FailureTarget"] {
        if let Some(c) = condition(&status, ty) {
            return Some(c.clone());
        }
    }
    if let Some(message) = fatal {
        return Some(new_condition(
            "FailureTarget",
            "PodFailurePolicy",
            message,
            now,
        ));
    }
    let spec = job.spec.clone().unwrap_or_default();
    let limit = spec.backoff_limit.unwrap_or(6);
    if failed > limit || (restarts(job, active) > 0 && failed + restarts(job, active) > limit) {
        return Some(new_condition(
            "FailureTarget",
            "BackoffLimitExceeded",
            BACKOFF_MESSAGE,
            now,
        ));
    }
    let deadline = spec.active_deadline_seconds.zip(status.start_time);
    if let Some((secs, start)) = deadline
        && now.duration_since(start.0) >= SignedDuration::from_secs(secs)
    {
        return Some(new_condition(
            "FailureTarget",
            "DeadlineExceeded",
            DEADLINE_MESSAGE,
            now,
        ));
    }
    by_index.map(|(reason, message)| new_condition("FailureTarget", reason, message, now))
}

/// Pods the Job controls, by what they are doing.
struct Counts<'a> {
    active: Vec<&'a Pod>,
    succeeded: i32,
    failed: i32,
    ready: i32,
    terminating: i32,
    /// For an Indexed Job, the indexes that succeeded (`succeeded` counts these).
    indexes: Option<BTreeSet<i32>>,
}

fn count<'a>(job: &Job, pods: &'a [Pod]) -> Counts<'a> {
    let active: Vec<&Pod> = pods.iter().filter(|p| is_active(p)).collect();
    let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded");
    let indexes = indexed::is_indexed(job).then(|| {
        let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
        succeeded
            .clone()
            .filter_map(|p| indexed::index_of(p, completions))
            .collect::<BTreeSet<i32>>()
    });
    Counts {
        ready: active.iter().filter(|p| is_ready(p)).count() as i32,
        succeeded: indexes
            .as_ref()
            .map_or_else(|| succeeded.count(), BTreeSet::len) as i32,
        indexes,
        failed: pods.iter().filter(|p| phase(p) == "Failed").count() as i32,
        terminating: pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some() && !is_active(p))
            .filter(|p| !matches!(phase(p), "Succeeded" | "Failed"))
            .count() as i32,
        active,
    }
}

/// Decides what to do for `job`, given the pods it controls (finished ones too).
pub(super) fn plan(job: &Job, all: &[Pod], now: Timestamp) -> Plan {
    let old = job.status.clone().unwrap_or_default();
    let (pods, fatal) = &judged(job, all);
    let c = count(job, pods);
    let per = per_index::evaluate(job, all, c.indexes.as_ref().unwrap_or(&BTreeSet::new()));
    let by_index = per
        .as_ref()
        .and_then(|per| per_index::failure(job, per, c.succeeded as usize));
    let mut plan = Plan {
        status: JobStatus {
            start_time: old.start_time.clone(),
            conditions: old.conditions.clone(),
            succeeded: (c.succeeded > 0).then_some(c.succeeded),
            failed: (c.failed > 0).then_some(c.failed),
            ready: Some(c.ready),
            terminating: Some(c.terminating),
            uncounted_terminated_pods: Some(UncountedTerminatedPods::default()),
            completed_indexes: c
                .indexes
                .as_ref()
                .filter(|i| !i.is_empty())
                .map(indexed::format),
            failed_indexes: per.as_ref().map(|p| indexed::format(&p.failed)),
            ..Default::default()
        },
        ..Default::default()
    };
    let spec = job.spec.clone().unwrap_or_default();
    let suspended = spec.suspend == Some(true);
    if plan.status.start_time.is_none() && !suspended {
        plan.status.start_time = Some(Time(now));
    }
    let interim = finishing(job, fatal.as_deref(), c.failed, &c.active, by_index, now);
    match interim {
        Some(interim) => finish(&mut plan, interim, &c, now),
        None => manage(&mut plan, job, pods, &c, per.as_ref(), now),
    }
    plan
}

/// The pods whose failures count (all but those the pod failure policy ignores), and the
/// message of the first failure the policy says fails the Job.
fn judged(job: &Job, pods: &[Pod]) -> (Vec<Pod>, Option<String>) {
    let mut fatal = None;
    let counted = pods
        .iter()
        .filter(|p| {
            if phase(p) != "Failed" {
                return true;
            }
            match policy::judge(job, p) {
                Verdict::FailJob(message) => {
                    fatal.get_or_insert(message);
                    true
                }
                Verdict::Ignore => false,
                Verdict::FailIndex | Verdict::Count => true,
            }
        })
        .cloned()
        .collect();
    (counted, fatal)
}

/// Stops what still runs; once nothing does, the interim condition becomes Complete or Failed.
fn finish(plan: &mut Plan, interim: JobCondition, c: &Counts<'_>, now: Timestamp) {
    let conditions = plan.status.conditions.get_or_insert_with(Vec::new);
    if !conditions.iter().any(|x| x.type_ == interim.type_) {
        conditions.push(interim.clone());
    }
    plan.delete = c.active.iter().map(|p| (*p).clone()).collect();
    plan.status.active = None;
    plan.status.terminating = Some(c.terminating + plan.delete.len() as i32);
    if !plan.delete.is_empty() || c.terminating > 0 {
        return;
    }
    let success = interim.type_ == "SuccessCriteriaMet";
    let reason = interim.reason.clone().unwrap_or_default();
    let message = interim.message.clone().unwrap_or_default();
    let ty = if success { "Complete" } else { "Failed" };
    conditions.push(new_condition(ty, &reason, &message, now));
    if success {
        plan.status.completion_time = Some(Time(now));
        plan.events
            .push((EventType::Normal, "Completed", "Job completed".into()));
    } else {
        let reason = match reason.as_str() {
            "DeadlineExceeded" => "DeadlineExceeded",
            "PodFailurePolicy" => "PodFailurePolicy",
            "FailedIndexes" => "FailedIndexes",
            "MaxFailedIndexesExceeded" => "MaxFailedIndexesExceeded",
            _ => "BackoffLimitExceeded",
        };
        plan.events.push((EventType::Warning, reason, message));
    }
}

/// Keeps `parallelism` pods running until `completions` succeeded (or, without
/// completions, until one did); a failed pod's replacement waits the back-off.
fn manage(
    plan: &mut Plan,
    job: &Job,
    pods: &[Pod],
    c: &Counts<'_>,
    per: Option<&PerIndex>,
    now: Timestamp,
) {
    let spec = job.spec.clone().unwrap_or_default();
    let active = c.active.len() as i32;
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let want = match (spec.suspend == Some(true), spec.completions) {
        (true, _) => 0,
        (false, Some(completions)) => (completions - c.succeeded).clamp(0, parallelism),
        (false, None) if c.succeeded > 0 => 0,
        (false, None) => parallelism,
    };
    let mut active_after = active;
    if want > active {
        create(plan, job, pods, c, per, (want - active) as usize, now);
        active_after = active + plan.create as i32;
    } else if want < active && (spec.suspend == Some(true) || spec.completions.is_some()) {
        let mut extra: Vec<&Pod> = c.active.clone();
        extra.sort_by_key(|p| (is_ready(p), std::cmp::Reverse(created(p))));
        plan.delete = extra
            .into_iter()
            .take((active - want) as usize)
            .cloned()
            .collect();
        active_after = want;
    }
    plan.status.active = (active_after > 0).then_some(active_after);
    suspension(plan, spec.suspend == Some(true), now);
    let complete = match spec.completions {
        Some(n) => c.succeeded >= n && active_after == 0,
        None => c.succeeded > 0 && active_after == 0,
    };
    if complete {
        let interim = new_condition(
            "SuccessCriteriaMet",
            "CompletionsReached",
            COMPLETIONS_MESSAGE,
            now,
        );
        finish(plan, interim, c, now);
    }
    if let Some(secs) = spec.active_deadline_seconds
        && !complete
    {
        let left = Duration::from_secs(secs.max(0) as u64);
        plan.requeue = Some(plan.requeue.map_or(left, |r| r.min(left)));
    }
}

/// Up to `n` new pods, once the back-off (global, or per index) allows; for an Indexed Job
/// the lowest indexes that neither succeeded, failed, nor run.
fn create(
    plan: &mut Plan,
    job: &Job,
    pods: &[Pod],
    c: &Counts<'_>,
    per: Option<&PerIndex>,
    n: usize,
    now: Timestamp,
) {
    if per.is_none()
        && let Some(wait) = backoff_left(c.failed, last_failure(pods), now)
    {
        plan.requeue = Some(wait);
        return;
    }
    plan.create = n;
    let Some(done) = &c.indexes else { return };
    let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
    let Some(per) = per else {
        plan.indexes = indexed::to_create(completions, done, &c.active, n);
        plan.create = plan.indexes.len();
        return;
    };
    let finished: BTreeSet<i32> = done.union(&per.failed).copied().collect();
    let pending = indexed::to_create(completions, &finished, &c.active, n);
    let (ready, wait) = per_index::ready(per, job, pending, now);
    plan.requeue = wait;
    (plan.indexes, plan.failure_counts) = ready.into_iter().unzip();
    plan.create = plan.indexes.len();
}

fn created(p: &Pod) -> i128 {
    p.metadata
        .creation_timestamp
        .as_ref()
        .map_or(0, |t| t.0.as_nanosecond())
}

/// How long pod creation must still wait after `failed` failures, the last at `last`.
pub(super) fn backoff_left(
    failed: i32,
    last: Option<Timestamp>,
    now: Timestamp,
) -> Option<Duration> {
    let last = last?;
    if failed == 0 {
        return None;
    }
    let delay = POD_FAILURE_BACKOFF
        .saturating_mul(1u32 << (failed - 1).clamp(0, 16))
        .min(MAX_POD_FAILURE_BACKOFF);
    let elapsed = Duration::try_from(now.duration_since(last)).unwrap_or_default();
    delay.checked_sub(elapsed).filter(|d| !d.is_zero())
}

/// The Suspended condition: True while suspended, False once resumed.
fn suspension(plan: &mut Plan, suspended: bool, now: Timestamp) {
    let conditions = plan.status.conditions.get_or_insert_with(Vec::new);
    let existing = conditions.iter_mut().find(|c| c.type_ == "Suspended");
    let (status, reason, message) = if suspended {
        ("True", "JobSuspended", "Job suspended")
    } else {
        ("False", "JobResumed", "Job resumed")
    };
    match existing {
        Some(c) if c.status != status => {
            *c = new_condition("Suspended", reason, message, now);
            c.status = status.into();
            plan.events.push((
                EventType::Normal,
                if suspended { "Suspended" } else { "Resumed" },
                message.into(),
            ));
        }
        None if suspended => {
            conditions.push(new_condition("Suspended", reason, message, now));
            plan.events
                .push((EventType::Normal, "Suspended", message.into()));
        }
        _ => {}
    }
    if conditions.is_empty() {
        plan.status.conditions = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(spec: serde_json::Value) -> Job {
        let mut spec_full = json!({"template": {"spec": {"containers": [{"name": "c", "image": "x"}],
                                                         "restartPolicy": "Never"}}});
        for (k, v) in spec.as_object().unwrap() {
            spec_full[k] = v.clone();
        }
        serde_json::from_value(json!({"metadata": {"name": "pi", "uid": "u1"}, "spec": spec_full}))
            .unwrap()
    }

    fn pod(name: &str, phase: &str, finished: i64) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"phase": phase, "containerStatuses": [{"name": "c", "image": "x", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "finishedAt":
                    Timestamp::from_second(finished).unwrap().to_string()}}}]}}))
        .unwrap()
    }

    fn types(plan: &Plan) -> Vec<String> {
        plan.status
            .conditions
            .iter()
            .flatten()
            .map(|c| format!("{}={}", c.type_, c.status))
            .collect()
    }

    #[test]
    fn parallel_pods_start_and_the_job_completes_with_both_conditions() {
        let now = Timestamp::from_second(1000).unwrap();
        let j = job(json!({"completions": 3, "parallelism": 2, "backoffLimit": 6}));
        let start = plan(&j, &[], now);
        assert_eq!(start.create, 2);
        assert_eq!(start.status.active, Some(2));
        let pods = [
            pod("a", "Succeeded", 900),
            pod("b", "Succeeded", 900),
            pod("c", "Running", 0),
        ];
        let almost = plan(&j, &pods, now);
        assert_eq!((almost.create, almost.status.succeeded), (0, Some(2)));
        let pods = [pods[0].clone(), pods[1].clone(), pod("c", "Succeeded", 950)];
        let done = plan(&j, &pods, now);
        assert_eq!(types(&done), ["SuccessCriteriaMet=True", "Complete=True"]);
        assert!(done.status.completion_time.is_some());
    }

    #[test]
    fn failures_wait_the_back_off_and_past_the_limit_fail_the_job() {
        let now = Timestamp::from_second(1000).unwrap();
        let j = job(json!({"backoffLimit": 1}));
        let retry = plan(&j, &[pod("a", "Failed", 995)], now);
        assert_eq!(retry.create, 0);
        assert_eq!(retry.requeue, Some(Duration::from_secs(5)));
        let later = plan(&j, &[pod("a", "Failed", 980)], now);
        assert_eq!(later.create, 1);
        let failed = plan(&j, &[pod("a", "Failed", 900), pod("b", "Failed", 990)], now);
        assert_eq!(types(&failed), ["FailureTarget=True", "Failed=True"]);
        assert_eq!(failed.status.failed, Some(2));
        assert_eq!(
            failed.status.conditions.unwrap()[1].reason.as_deref(),
            Some("BackoffLimitExceeded")
        );
    }
}
