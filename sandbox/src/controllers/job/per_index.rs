//! `backoffLimitPerIndex` of Indexed Jobs: each index is retried on its own, up to the
//! limit, counting its failures in the pods' `job-index-failure-count` annotation; an index
//! past its limit (or hit by a FailIndex rule) is recorded in `status.failedIndexes` while
//! the other indexes go on, and the Job fails once all indexes finished with some failed,
//! or at once when more than `maxFailedIndexes` failed (Kubernetes' indexed_job_utils.go).

use super::indexed;
use super::plan::{backoff_left, last_failure};
use super::policy::{self, Verdict};
use crate::controllers::util::is_active;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How many times the pod's index failed before it (failures the policy ignored apart).
pub(super) const FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
pub(super) const IGNORED_FAILURE_COUNT: &str =
    "batch.kubernetes.io/job-index-ignored-failure-count";

/// The (failure, ignored failure) counts a new pod of an index carries.
pub(super) type FailureCounts = (i32, i32);

/// The per-index state of a Job with `backoffLimitPerIndex`.
#[derive(Debug, Default)]
pub(super) struct PerIndex {
    pub(super) failed: BTreeSet<i32>,
    /// For each index waiting for a new pod, the failed pod it replaces.
    replaced: BTreeMap<i32, Pod>,
}

fn limit(job: &Job) -> Option<i32> {
    let spec = job.spec.as_ref()?;
    spec.backoff_limit_per_index
        .filter(|_| indexed::is_indexed(job))
}

fn annotation(pod: &Pod, key: &str) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse().ok())
        .filter(|n: &i32| *n >= 0)
        .unwrap_or(0)
}

fn is_failed(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
}

/// Failures of the pod's index, ignored ones included: the back-off grows with these.
fn absolute_failures(pod: &Pod) -> i32 {
    annotation(pod, FAILURE_COUNT) + annotation(pod, IGNORED_FAILURE_COUNT)
}

/// Whether a failed pod fails its index: a FailIndex rule, or a counted failure at the limit.
fn fails_index(job: &Job, pod: &Pod, limit: i32) -> bool {
    match policy::judge(job, pod) {
        Verdict::FailIndex => true,
        Verdict::Ignore => false,
        _ => annotation(pod, FAILURE_COUNT) >= limit,
    }
}

/// The failed indexes (those already in the status too) and the pods to replace, or
/// None when the Job has no `backoffLimitPerIndex`.
pub(super) fn evaluate(job: &Job, pods: &[Pod], succeeded: &BTreeSet<i32>) -> Option<PerIndex> {
    let limit = limit(job)?;
    let completions = job.spec.as_ref().and_then(|s| s.completions).unwrap_or(0);
    let old = job
        .status
        .as_ref()
        .and_then(|s| s.failed_indexes.as_deref());
    let mut failed = indexed::parse(old.unwrap_or(""), completions);
    let failures: Vec<(i32, &Pod)> = pods
        .iter()
        .filter(|p| is_failed(p))
        .filter_map(|p| Some((indexed::index_of(p, completions)?, p)))
        .collect();
    failed.extend(
        failures
            .iter()
            .filter(|(_, p)| fails_index(job, p, limit))
            .map(|(i, _)| *i),
    );
    let active: BTreeSet<i32> = pods
        .iter()
        .filter(|p| is_active(p))
        .filter_map(|p| indexed::index_of(p, completions))
        .collect();
    let mut replaced: BTreeMap<i32, Pod> = BTreeMap::new();
    for (i, pod) in failures {
        if succeeded.contains(&i) || failed.contains(&i) || active.contains(&i) {
            continue;
        }
        let later = |last: &Pod| {
            (
                absolute_failures(last),
                last_failure(std::slice::from_ref(last)),
            ) <= (
                absolute_failures(pod),
                last_failure(std::slice::from_ref(pod)),
            )
        };
        if replaced.get(&i).is_none_or(later) {
            replaced.insert(i, pod.clone());
        }
    }
    failed.retain(|i| !succeeded.contains(i));
    Some(PerIndex { failed, replaced })
}

/// The reason and message of the Job's failure by its indexes, if it fails.
pub(super) fn failure(
    job: &Job,
    per: &PerIndex,
    succeeded: usize,
) -> Option<(&'static str, &'static str)> {
    let spec = job.spec.as_ref()?;
    let failed = per.failed.len();
    if spec
        .max_failed_indexes
        .is_some_and(|m| failed > m.max(0) as usize)
    {
        return Some((
            "MaxFailedIndexesExceeded",
            "Job has exceeded the specified maximal number of failed indexes",
        ));
    }
    let completions = spec.completions.unwrap_or(0).max(0) as usize;
    (failed > 0 && failed + succeeded >= completions)
        .then_some(("FailedIndexes", "Job has failed indexes"))
}

/// Of the pending indexes, those whose back-off ran out, with the failure counts their new
/// pods carry; else when to look again.
pub(super) fn ready(
    per: &PerIndex,
    job: &Job,
    pending: Vec<i32>,
    now: Timestamp,
) -> (Vec<(i32, FailureCounts)>, Option<Duration>) {
    let mut ready = Vec::new();
    let mut wait: Option<Duration> = None;
    for i in pending {
        let Some(last) = per.replaced.get(&i) else {
            ready.push((i, (0, 0)));
            continue;
        };
        let failures = absolute_failures(last) + 1;
        match backoff_left(failures, last_failure(std::slice::from_ref(last)), now) {
            Some(left) => wait = Some(wait.map_or(left, |w| w.min(left))),
            None => ready.push((i, counts_after(job, last))),
        }
    }
    (ready, wait)
}

/// The (failure, ignored failure) counts of the pod replacing `last`.
fn counts_after(job: &Job, last: &Pod) -> FailureCounts {
    let (failures, ignored) = (
        annotation(last, FAILURE_COUNT),
        annotation(last, IGNORED_FAILURE_COUNT),
    );
    match policy::judge(job, last) {
        Verdict::Ignore => (failures, ignored + 1),
        _ => (failures + 1, ignored),
    }
}

/// Writes the counts on a new pod of the index.
pub(super) fn annotate(pod: &mut Pod, (failures, ignored): FailureCounts) {
    let annotations = pod
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.insert(FAILURE_COUNT.into(), failures.to_string());
    if ignored > 0 {
        annotations.insert(IGNORED_FAILURE_COUNT.into(), ignored.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(max_failed: Option<i32>) -> Job {
        serde_json::from_value(json!({"metadata": {"name": "j"}, "spec": {
            "completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": 1,
            "maxFailedIndexes": max_failed,
            "template": {"spec": {"containers": []}}}}))
        .unwrap()
    }

    fn pod(index: i32, failures: i32, phase: &str) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": format!("p{index}-{failures}"),
            "annotations": {indexed::INDEX_KEY: index.to_string(), FAILURE_COUNT: failures.to_string()}},
            "status": {"phase": phase, "containerStatuses": [{"name": "c", "image": "x", "imageID": "",
                "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "finishedAt": "2026-01-01T00:00:00Z"}}}]}}))
        .unwrap()
    }

    #[test]
    fn an_index_fails_past_its_own_limit_and_the_others_are_retried() {
        let pods = [
            pod(0, 0, "Succeeded"),
            pod(1, 0, "Failed"),
            pod(2, 0, "Failed"),
            pod(2, 1, "Failed"),
        ];
        let succeeded = BTreeSet::from([0]);
        let per = evaluate(&job(None), &pods, &succeeded).unwrap();
        assert_eq!(per.failed, BTreeSet::from([2]));
        let now: Timestamp = "2026-01-01T00:00:05Z".parse().unwrap();
        let (ready_now, wait) = ready(&per, &job(None), vec![1], now);
        assert_eq!((ready_now, wait), (vec![], Some(Duration::from_secs(5))));
        let later: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        assert_eq!(ready(&per, &job(None), vec![1], later).0, [(1, (1, 0))]);
        assert_eq!(failure(&job(None), &per, 1), None);
        assert_eq!(
            failure(&job(None), &per, 2),
            Some(("FailedIndexes", "Job has failed indexes"))
        );
        assert_eq!(
            failure(&job(Some(0)), &per, 1).map(|f| f.0),
            Some("MaxFailedIndexesExceeded")
        );
    }
}
