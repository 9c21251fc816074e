//! Defaults and validation of the workload kinds beyond Deployments, ReplicaSets and
//! StatefulSets, as Kubernetes' pkg/apis/{batch,apps,core} defaults and validation and the
//! Job registry strategy give them: Jobs, CronJobs, DaemonSets, ReplicationControllers.

use super::defaults::pod_spec;
use super::validate::{check_labels, check_pod_spec, check_workload, go_map};
use crate::apimachinery::errors::Cause;
use crate::apimachinery::selectors::LabelSelector;
use serde_json::{Value, json};
use std::str::FromStr;

mod job_policy;

/// The label that ties a Job's pods to it, put in its selector by the server.
pub(crate) const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
pub(crate) const JOB_NAME: &str = "batch.kubernetes.io/job-name";
/// The labels of before 1.27, still set beside the prefixed ones.
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const LEGACY_JOB_NAME: &str = "job-name";
/// CronJob names leave room for the 11-character suffix of their Jobs' names.
const CRON_JOB_NAME_MAX: usize = 52;

fn set_default(obj: &mut Value, key: &str, v: Value) {
    if let Some(m) = obj.as_object_mut() {
        m.entry(key.to_string()).or_insert(v);
    }
}

/// A Job spec's defaults (SetDefaults_Job), also used for CronJob job templates.
fn job_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    if spec["completions"].is_null() && spec["parallelism"].is_null() {
        spec["completions"] = json!(1);
    }
    set_default(spec, "parallelism", json!(1));
    let backoff = if spec["backoffLimitPerIndex"].is_null() {
        6
    } else {
        i64::from(i32::MAX)
    };
    set_default(spec, "backoffLimit", json!(backoff));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    let replacement = if spec["podFailurePolicy"].is_null() {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    set_default(spec, "podReplacementPolicy", json!(replacement));
    set_default(spec, "manualSelector", json!(false));
    let rules = spec
        .get_mut("podFailurePolicy")
        .and_then(|p| p.get_mut("rules"))
        .and_then(Value::as_array_mut);
    for rule in rules.into_iter().flatten() {
        let patterns = rule
            .get_mut("onPodConditions")
            .and_then(Value::as_array_mut);
        for pattern in patterns.into_iter().flatten() {
            set_default(pattern, "status", json!("True"));
        }
    }
    pod_spec(&mut spec["template"]["spec"]);
}

/// Job defaults, and the selector the Job strategy generates: its pods are labelled with
/// the Job's name and uid (`metadata.uid` is set before defaults run).
pub(crate) fn job(obj: &mut Value, old: Option<&Value>) {
    job_spec(&mut obj["spec"]);
    if old.is_none() && obj["spec"]["manualSelector"] != true {
        let name = obj["metadata"]["name"].clone();
        let uid = obj["metadata"]["uid"].clone();
        let template = &mut obj["spec"]["template"];
        if !template["metadata"]["labels"].is_object() {
            template["metadata"]["labels"] = json!({});
        }
        let labels = &mut template["metadata"]["labels"];
        for (k, v) in [
            (LEGACY_JOB_NAME, &name),
            (JOB_NAME, &name),
            (LEGACY_CONTROLLER_UID, &uid),
            (CONTROLLER_UID, &uid),
        ] {
            set_default(labels, k, v.clone());
        }
        if !obj["spec"]["selector"]["matchLabels"].is_object() {
            obj["spec"]["selector"]["matchLabels"] = json!({});
        }
        set_default(
            &mut obj["spec"]["selector"]["matchLabels"],
            CONTROLLER_UID,
            uid,
        );
    }
    if obj["metadata"]["labels"]
        .as_object()
        .is_none_or(|l| l.is_empty())
        && obj["spec"]["template"]["metadata"]["labels"].is_object()
    {
        obj["metadata"]["labels"] = obj["spec"]["template"]["metadata"]["labels"].clone();
    }
    if old.is_none() {
        obj["status"] = json!({});
    }
}

pub(crate) fn cron_job(obj: &mut Value, old: Option<&Value>) {
    let spec = &mut obj["spec"];
    if spec.is_object() {
        set_default(spec, "concurrencyPolicy", json!("Allow"));
        set_default(spec, "suspend", json!(false));
        set_default(spec, "successfulJobsHistoryLimit", json!(3));
        set_default(spec, "failedJobsHistoryLimit", json!(1));
        job_spec(&mut spec["jobTemplate"]["spec"]);
    }
    if old.is_none() {
        obj["status"] = json!({});
    }
}

pub(crate) fn daemon_set(obj: &mut Value, old: Option<&Value>) {
    let spec = &mut obj["spec"];
    if spec.is_object() {
        set_default(spec, "revisionHistoryLimit", json!(10));
        set_default(
            spec,
            "updateStrategy",
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
        );
        pod_spec(&mut spec["template"]["spec"]);
    }
    if old.is_none() {
        obj["status"] = json!({"currentNumberScheduled": 0, "numberMisscheduled": 0,
                               "desiredNumberScheduled": 0, "numberReady": 0});
    }
}

/// A ReplicationController's selector and labels default to its template's labels.
pub(crate) fn replication_controller(obj: &mut Value, old: Option<&Value>) {
    let labels = obj["spec"]["template"]["metadata"]["labels"].clone();
    let spec = &mut obj["spec"];
    if spec.is_object() {
        set_default(spec, "replicas", json!(1));
        set_default(spec, "minReadySeconds", json!(0));
        if labels.is_object() {
            set_default(spec, "selector", labels.clone());
        }
        pod_spec(&mut spec["template"]["spec"]);
    }
    if labels.is_object()
        && obj["metadata"]["labels"]
            .as_object()
            .is_none_or(|l| l.is_empty())
    {
        obj["metadata"]["labels"] = labels;
    }
    if old.is_none() {
        obj["status"] = json!({"replicas": 0});
    }
}

/// Fields the typed decoding requires, so that their absence is a 422 with a path.
pub(super) fn fill_required(kind: &str, obj: &mut Value, fill_pod_spec: fn(&mut Value)) {
    let ensure = |v: &mut Value, k: &str| {
        if v.is_object() && v[k].is_null() {
            v[k] = json!({});
        }
    };
    ensure(obj, "spec");
    let template = match kind {
        "CronJob" => {
            if obj["spec"]["schedule"].is_null() {
                obj["spec"]["schedule"] = json!("");
            }
            ensure(&mut obj["spec"], "jobTemplate");
            ensure(&mut obj["spec"]["jobTemplate"], "spec");
            &mut obj["spec"]["jobTemplate"]["spec"]
        }
        _ => &mut obj["spec"],
    };
    fill_failure_policy(template);
    ensure(template, "template");
    ensure(&mut template["template"], "spec");
    fill_pod_spec(&mut template["template"]["spec"]);
}

/// The strings a pod failure policy's rules require, so a missing one is a 422 "Required value".
fn fill_failure_policy(spec: &mut Value) {
    fn fill(v: Option<&mut Value>, k: &str, empty: Value) {
        if let Some(m) = v.and_then(Value::as_object_mut) {
            m.entry(k).or_insert(empty);
        }
    }
    let rules = spec
        .get_mut("podFailurePolicy")
        .and_then(|p| p.get_mut("rules"))
        .and_then(Value::as_array_mut);
    for rule in rules.into_iter().flatten() {
        fill(Some(&mut *rule), "action", json!(""));
        fill(rule.get_mut("onExitCodes"), "operator", json!(""));
        fill(rule.get_mut("onExitCodes"), "values", json!([]));
        let patterns = rule
            .get_mut("onPodConditions")
            .and_then(Value::as_array_mut);
        for pattern in patterns.into_iter().flatten() {
            fill(Some(pattern), "type", json!(""));
        }
    }
}

fn non_negative(spec: &Value, field: &str, keys: &[&str], causes: &mut Vec<Cause>) {
    for k in keys {
        if let Some(n) = spec[*k].as_i64()
            && n < 0
        {
            causes.push(Cause::invalid(
                format!("{field}.{k}"),
                n,
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// A Job spec (of a Job, or of a CronJob's template at `field`).
fn check_job_spec(spec: &Value, field: &str, causes: &mut Vec<Cause>) {
    non_negative(
        spec,
        field,
        &[
            "parallelism",
            "completions",
            "activeDeadlineSeconds",
            "backoffLimit",
            "ttlSecondsAfterFinished",
            "backoffLimitPerIndex",
            "maxFailedIndexes",
        ],
        causes,
    );
    if let Some(0) = spec["activeDeadlineSeconds"].as_i64() {
        causes.push(Cause::invalid(
            format!("{field}.activeDeadlineSeconds"),
            0,
            "must be greater than 0",
        ));
    }
    job_policy::check_per_index(spec, field, causes);
    check_completion_mode(spec, field, causes);
    let template_field = format!("{field}.template");
    let pod = &spec["template"]["spec"];
    check_labels(
        &spec["template"]["metadata"]["labels"],
        &format!("{template_field}.metadata.labels"),
        causes,
    );
    check_pod_spec(pod, &format!("{template_field}.spec"), causes, false, &[]);
    let policy = pod["restartPolicy"].as_str().unwrap_or("");
    if !matches!(policy, "OnFailure" | "Never") {
        causes.push(Cause::unsupported(
            format!("{template_field}.spec.restartPolicy"),
            policy,
            &["OnFailure", "Never"],
        ));
    } else if !spec["podFailurePolicy"].is_null() && policy != "Never" {
        causes.push(Cause::invalid(
            format!("{template_field}.spec.restartPolicy"),
            format!("\"{policy}\""),
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    job_policy::check_failure_policy(spec, field, causes);
    job_policy::check_replacement(spec, field, causes);
}

/// Indexed Jobs need `completions` and at most 100000 parallel pods (validateJobSpec).
fn check_completion_mode(spec: &Value, field: &str, causes: &mut Vec<Cause>) {
    match spec["completionMode"].as_str() {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if spec["completions"].is_null() {
                causes.push(Cause {
                    message: "Required value: when completion mode is Indexed".into(),
                    ..Cause::required(format!("{field}.completions"))
                });
            }
            if let Some(n) = spec["parallelism"].as_i64()
                && n > 100_000
            {
                causes.push(Cause::invalid(
                    format!("{field}.parallelism"),
                    n,
                    "must be less than or equal to 100000 when completion mode is Indexed",
                ));
            }
        }
        Some(other) => causes.push(Cause::unsupported(
            format!("{field}.completionMode"),
            other,
            &["NonIndexed", "Indexed"],
        )),
    }
}

pub(super) fn check_job(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    check_job_spec(spec, "spec", causes);
    let selector = &spec["selector"];
    if selector.is_null() {
        causes.push(Cause::required("spec.selector"));
    } else {
        let labels = &spec["template"]["metadata"]["labels"];
        if !LabelSelector::from_object(selector).matches(labels) {
            causes.push(Cause::invalid(
                "spec.template.metadata.labels",
                go_map(labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    if let Some(old) = old {
        if old["spec"]["selector"] != spec["selector"] {
            causes.push(Cause::invalid(
                "spec.selector",
                spec["selector"].to_string(),
                "field is immutable",
            ));
        }
        for key in [
            "completions",
            "completionMode",
            "podFailurePolicy",
            "backoffLimitPerIndex",
        ] {
            if old["spec"][key] != spec[key] {
                causes.push(Cause::invalid(
                    format!("spec.{key}"),
                    spec[key].to_string(),
                    "field is immutable",
                ));
            }
        }
        if old["spec"]["template"] != spec["template"] && spec["suspend"] != true {
            causes.push(Cause::invalid(
                "spec.template",
                "core.PodTemplateSpec{...}",
                "field is immutable",
            ));
        }
    }
}

/// Parses a CronJob schedule as Kubernetes reads it: five fields or a `@` descriptor.
pub(crate) fn parse_schedule(schedule: &str) -> Result<croner::Cron, String> {
    let expanded = match schedule.trim() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => other,
    };
    if expanded.split_whitespace().count() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {schedule}",
            expanded.split_whitespace().count()
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .build()
        .parse(expanded)
        .map_err(|e| e.to_string())
        .or_else(|e| croner::Cron::from_str(expanded).map_err(|_| e))
}

pub(super) fn check_cron_job(obj: &Value, causes: &mut Vec<Cause>) {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if name.len() > CRON_JOB_NAME_MAX {
        causes.push(Cause::invalid(
            "metadata.name",
            format!("\"{name}\""),
            "must be no more than 52 characters",
        ));
    }
    let spec = &obj["spec"];
    let schedule = spec["schedule"].as_str().unwrap_or("");
    if schedule.is_empty() {
        causes.push(Cause::required("spec.schedule"));
    } else if schedule.contains("TZ") {
        causes.push(Cause::invalid(
            "spec.schedule",
            schedule,
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    } else if let Err(e) = parse_schedule(schedule) {
        causes.push(Cause::invalid("spec.schedule", schedule, &e));
    }
    if let Some(tz) = spec["timeZone"].as_str()
        && jiff::tz::TimeZone::get(tz).is_err()
    {
        causes.push(Cause::invalid("spec.timeZone", tz, "unknown time zone"));
    }
    let policy = spec["concurrencyPolicy"].as_str().unwrap_or("Allow");
    if !matches!(policy, "Allow" | "Forbid" | "Replace") {
        causes.push(Cause::unsupported(
            "spec.concurrencyPolicy",
            policy,
            &["Allow", "Forbid", "Replace"],
        ));
    }
    non_negative(
        spec,
        "spec",
        &[
            "startingDeadlineSeconds",
            "successfulJobsHistoryLimit",
            "failedJobsHistoryLimit",
        ],
        causes,
    );
    check_job_spec(
        &spec["jobTemplate"]["spec"],
        "spec.jobTemplate.spec",
        causes,
    );
}

pub(super) fn check_immutable_selector(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    if let Some(old) = old
        && old["spec"]["selector"] != obj["spec"]["selector"]
    {
        causes.push(Cause::invalid(
            "spec.selector",
            obj["spec"]["selector"].to_string(),
            "field is immutable",
        ));
    }
}

/// A ReplicationController's selector is a plain map and must select its template.
pub(super) fn check_rc(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let selector = &spec["selector"];
    let labels = &spec["template"]["metadata"]["labels"];
    if selector.as_object().is_none_or(|s| s.is_empty()) {
        causes.push(Cause::required("spec.selector"));
    } else if !selector
        .as_object()
        .is_some_and(|s| s.iter().all(|(k, v)| &labels[k] == v))
    {
        causes.push(Cause::invalid(
            "spec.template.metadata.labels",
            go_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    // Reuse the workload checks for replicas and the pod template.
    let mut as_workload = obj.clone();
    as_workload["spec"]["selector"] = json!({"matchLabels": selector});
    let mut more = Vec::new();
    check_workload(&as_workload, &mut more);
    causes.extend(
        more.into_iter()
            .filter(|c| c.field != "spec.selector" && c.field != "spec.template.metadata.labels"),
    );
}
