//! `podFailurePolicy`: the first rule a failed pod matches (by a container's non-zero exit
//! code, or by a pod condition such as DisruptionTarget) decides whether the failure fails
//! the Job at once, fails its index, is ignored, or counts toward `backoffLimit` as without
//! a policy.

use k8s_openapi::api::batch::v1::{
    Job, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
};
use k8s_openapi::api::core::v1::Pod;

/// What a failed pod means for its Job.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    /// Fail the Job, with the condition message the real controller writes.
    FailJob(String),
    /// Neither count the failure nor wait a back-off for the replacement.
    Ignore,
    /// Fail the pod's index at once (with `backoffLimitPerIndex`); the failure counts.
    FailIndex,
    /// Count it toward `backoffLimit` (no rule matched, or a Count rule).
    Count,
}

/// Judges a failed pod by the Job's policy.
pub(super) fn judge(job: &Job, pod: &Pod) -> Verdict {
    let Some(policy) = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref())
    else {
        return Verdict::Count;
    };
    let pod_name = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched = match (&rule.on_exit_codes, &rule.on_pod_conditions) {
            (Some(codes), _) => exit_code_match(pod, codes).map(|(container, code)| {
                format!(
                    "Container {container} for pod {pod_name} failed with exit code {code} matching {} rule at index {index}",
                    rule.action
                )
            }),
            (None, Some(patterns)) => condition_match(pod, patterns).map(|ty| {
                format!(
                    "Pod {pod_name} has condition {ty} matching {} rule at index {index}",
                    rule.action
                )
            }),
            (None, None) => None,
        };
        let Some(message) = matched else { continue };
        return match rule.action.as_str() {
            "FailJob" => Verdict::FailJob(message),
            "Ignore" => Verdict::Ignore,
            "FailIndex" => Verdict::FailIndex,
            _ => Verdict::Count,
        };
    }
    Verdict::Count
}

/// The first terminated container (init containers too) whose non-zero exit code the
/// requirement matches.
fn exit_code_match(
    pod: &Pod,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<(String, i32)> {
    let status = pod.status.as_ref()?;
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .filter(|c| req.container_name.as_ref().is_none_or(|n| *n == c.name))
        .find_map(|c| {
            let code = c.state.as_ref()?.terminated.as_ref()?.exit_code;
            let listed = req.values.contains(&code);
            let hit = match req.operator.as_str() {
                "In" => listed,
                "NotIn" => !listed,
                _ => false,
            };
            (code != 0 && hit).then(|| (c.name.clone(), code))
        })
}

/// The type of the first pod condition a pattern matches (status defaults to True).
fn condition_match(
    pod: &Pod,
    patterns: &[PodFailurePolicyOnPodConditionsPattern],
) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    patterns.iter().find_map(|pattern| {
        let want = pattern.status.as_deref().unwrap_or("True");
        conditions
            .iter()
            .any(|c| c.type_ == pattern.type_ && c.status == want)
            .then(|| pattern.type_.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job() -> Job {
        serde_json::from_value(json!({"metadata": {"name": "j"}, "spec": {
            "template": {"spec": {"containers": []}},
            "podFailurePolicy": {"rules": [
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
                {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1]}}]}}}))
        .unwrap()
    }

    fn failed(container: &str, code: i32, conditions: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "demo"},
            "status": {"phase": "Failed", "conditions": conditions, "containerStatuses": [
                {"name": container, "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"terminated": {"exitCode": code}}}]}}))
        .unwrap()
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let j = job();
        assert_eq!(
            judge(&j, &failed("main", 42, json!([]))),
            Verdict::FailJob(
                "Container main for pod demo/p failed with exit code 42 matching FailJob rule at index 1".into()
            )
        );
        assert_eq!(judge(&j, &failed("side", 42, json!([]))), Verdict::Count);
        assert_eq!(judge(&j, &failed("side", 2, json!([]))), Verdict::Count);
        assert!(
            matches!(judge(&j, &failed("side", 1, json!([]))), Verdict::FailJob(m) if m.ends_with("at index 3"))
        );
        let disrupted = json!([{"type": "DisruptionTarget", "status": "True"}]);
        assert_eq!(judge(&j, &failed("main", 42, disrupted)), Verdict::Ignore);
    }
}
