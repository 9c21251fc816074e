//! Validation of a Job's failure handling as pkg/apis/batch/validation gives it: the pod
//! failure policy's rules, and the per-index backoff of Indexed Jobs.

use crate::apimachinery::errors::Cause;
use crate::apimachinery::names::qualified_name_errors;
use serde_json::Value;
use std::collections::HashSet;

const MAX_RULES: usize = 20;
const MAX_EXIT_CODES: usize = 255;
const MAX_CONDITION_PATTERNS: usize = 20;
const MAX_FAILED_INDEXES: i64 = 100_000;
const COMPLETIONS_SOFT_LIMIT: i64 = 100_000;
const HIGH_COMPLETIONS_LIMIT: i64 = 10_000;
const ACTIONS: [&str; 4] = ["Count", "FailIndex", "FailJob", "Ignore"];
const OPERATORS: [&str; 2] = ["In", "NotIn"];
const STATUSES: [&str; 3] = ["False", "True", "Unknown"];

fn too_many(field: String, actual: usize, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooMany",
        field,
        message: format!("Too many: {actual}: must have at most {max} items"),
    }
}

fn duplicate(field: String, value: i64) -> Cause {
    Cause {
        reason: "FieldValueDuplicate",
        field,
        message: format!("Duplicate value: {value}"),
    }
}

/// A Required error whose detail lists the valid values the way Go's `%q` prints a list.
fn required_one_of(field: String, valid: &[&str]) -> Cause {
    let quoted: Vec<String> = valid.iter().map(|v| format!("\"{v}\"")).collect();
    Cause {
        message: format!("Required value: valid values: [{}]", quoted.join(" ")),
        ..Cause::required(field)
    }
}

/// `spec.podFailurePolicy` (validatePodFailurePolicy): at most 20 rules, each matching on
/// exactly one of exit codes or pod conditions.
pub(super) fn check_failure_policy(spec: &Value, field: &str, causes: &mut Vec<Cause>) {
    let Some(policy) = spec["podFailurePolicy"].as_object() else {
        return;
    };
    let rules_path = format!("{field}.podFailurePolicy.rules");
    let rules = policy
        .get("rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if rules.len() > MAX_RULES {
        causes.push(too_many(rules_path.clone(), rules.len(), MAX_RULES));
    }
    let pod = &spec["template"]["spec"];
    let containers: HashSet<&str> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod[*k].as_array())
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for (i, rule) in rules.iter().enumerate() {
        check_rule(
            spec,
            rule,
            &format!("{rules_path}[{i}]"),
            &containers,
            causes,
        );
    }
}

fn check_rule(
    spec: &Value,
    rule: &Value,
    path: &str,
    containers: &HashSet<&str>,
    causes: &mut Vec<Cause>,
) {
    let action_path = format!("{path}.action");
    match rule["action"].as_str().unwrap_or("") {
        "" => causes.push(required_one_of(action_path, &ACTIONS)),
        "FailIndex" if spec["backoffLimitPerIndex"].is_null() => causes.push(Cause::invalid(
            action_path,
            "\"FailIndex\"",
            "requires the backoffLimitPerIndex to be set",
        )),
        a if ACTIONS.contains(&a) => {}
        other => causes.push(Cause::unsupported(action_path, other, &ACTIONS)),
    }
    let exit_codes = rule["onExitCodes"].is_object();
    let conditions = rule["onPodConditions"]
        .as_array()
        .is_some_and(|c| !c.is_empty());
    if exit_codes {
        check_exit_codes(
            &rule["onExitCodes"],
            &format!("{path}.onExitCodes"),
            containers,
            causes,
        );
    }
    if conditions {
        check_conditions(
            &rule["onPodConditions"],
            &format!("{path}.onPodConditions"),
            causes,
        );
    }
    let why = match (exit_codes, conditions) {
        (true, true) => "specifying both OnExitCodes and OnPodConditions is not supported",
        (false, false) => "specifying one of OnExitCodes and OnPodConditions is required",
        _ => return,
    };
    causes.push(Cause {
        reason: "FieldValueInvalid",
        field: path.to_string(),
        message: format!("Invalid value: {why}"),
    });
}

/// `onExitCodes` (validatePodFailurePolicyRuleOnExitCodes).
fn check_exit_codes(req: &Value, path: &str, containers: &HashSet<&str>, causes: &mut Vec<Cause>) {
    let operator = req["operator"].as_str().unwrap_or("");
    let operator_path = format!("{path}.operator");
    if operator.is_empty() {
        causes.push(required_one_of(operator_path, &OPERATORS));
    } else if !OPERATORS.contains(&operator) {
        causes.push(Cause::unsupported(operator_path, operator, &OPERATORS));
    }
    if let Some(name) = req["containerName"].as_str()
        && !containers.contains(name)
    {
        causes.push(Cause::invalid(
            format!("{path}.containerName"),
            format!("\"{name}\""),
            "must be one of the container or initContainer names in the pod template",
        ));
    }
    let values_path = format!("{path}.values");
    let values: Vec<i64> = req["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_i64)
        .collect();
    if values.is_empty() {
        causes.push(Cause::invalid(
            values_path.clone(),
            &req["values"],
            "at least one value is required",
        ));
    } else if values.len() > MAX_EXIT_CODES {
        causes.push(too_many(values_path.clone(), values.len(), MAX_EXIT_CODES));
    }
    let mut seen = HashSet::new();
    for (j, &v) in values.iter().enumerate() {
        let value_path = format!("{values_path}[{j}]");
        if operator == "In" && v == 0 {
            causes.push(Cause::invalid(
                value_path.clone(),
                0,
                "must not be 0 for the In operator",
            ));
        }
        if !seen.insert(v) {
            causes.push(duplicate(value_path, v));
        }
    }
    if values.windows(2).any(|w| w[0] > w[1]) {
        causes.push(Cause::invalid(
            values_path,
            &req["values"],
            "must be ordered",
        ));
    }
}

/// `onPodConditions` (validatePodFailurePolicyRuleOnPodConditions).
fn check_conditions(patterns: &Value, path: &str, causes: &mut Vec<Cause>) {
    let patterns = patterns.as_array().cloned().unwrap_or_default();
    if patterns.len() > MAX_CONDITION_PATTERNS {
        causes.push(too_many(
            path.to_string(),
            patterns.len(),
            MAX_CONDITION_PATTERNS,
        ));
    }
    for (j, pattern) in patterns.iter().enumerate() {
        let type_ = pattern["type"].as_str().unwrap_or("");
        for message in qualified_name_errors(type_) {
            causes.push(Cause::invalid(
                format!("{path}[{j}].type"),
                format!("\"{type_}\""),
                &message,
            ));
        }
        let status_path = format!("{path}[{j}].status");
        match pattern["status"].as_str().unwrap_or("") {
            "" => causes.push(required_one_of(status_path, &STATUSES)),
            s if STATUSES.contains(&s) => {}
            other => causes.push(Cause::unsupported(status_path, other, &STATUSES)),
        }
    }
}

/// `backoffLimitPerIndex` and `maxFailedIndexes`: only for Indexed Jobs, and bounded so that
/// `status.failedIndexes` stays short.
pub(super) fn check_per_index(spec: &Value, field: &str, causes: &mut Vec<Cause>) {
    let per_index = spec["backoffLimitPerIndex"].as_i64();
    let max_failed = spec["maxFailedIndexes"].as_i64();
    let invalid = |key: &str, v: i64, why: &str| Cause::invalid(format!("{field}.{key}"), v, why);
    if max_failed.is_some() && per_index.is_none() {
        causes.push(Cause {
            message: "Required value: when maxFailedIndexes is specified".into(),
            ..Cause::required(format!("{field}.backoffLimitPerIndex"))
        });
    }
    if spec["completionMode"].as_str().unwrap_or("NonIndexed") != "Indexed" {
        for (key, v) in [
            ("backoffLimitPerIndex", per_index),
            ("maxFailedIndexes", max_failed),
        ] {
            if let Some(v) = v {
                causes.push(invalid(key, v, "requires indexed completion mode"));
            }
        }
        return;
    }
    let completions = spec["completions"].as_i64();
    if let (Some(c), Some(m)) = (completions, max_failed)
        && m > c
    {
        causes.push(invalid(
            "maxFailedIndexes",
            m,
            "must be less than or equal to completions",
        ));
    }
    if let Some(m) = max_failed.filter(|m| *m > MAX_FAILED_INDEXES) {
        let why = format!("must be less than or equal to {MAX_FAILED_INDEXES}");
        causes.push(invalid("maxFailedIndexes", m, &why));
    }
    if per_index.is_none() || completions.is_none_or(|c| c <= COMPLETIONS_SOFT_LIMIT) {
        return;
    }
    if max_failed.is_none() {
        causes.push(Cause {
            message: format!(
                "Required value: must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}"
            ),
            ..Cause::required(format!("{field}.maxFailedIndexes"))
        });
    }
    let why = format!(
        "must be less than or equal to {HIGH_COMPLETIONS_LIMIT} when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"
    );
    for (key, v) in [
        ("parallelism", spec["parallelism"].as_i64()),
        ("maxFailedIndexes", max_failed),
    ] {
        if let Some(v) = v.filter(|v| *v > HIGH_COMPLETIONS_LIMIT) {
            causes.push(invalid(key, v, &why));
        }
    }
}

/// `podReplacementPolicy`: only `Failed` under a pod failure policy.
pub(super) fn check_replacement(spec: &Value, field: &str, causes: &mut Vec<Cause>) {
    let Some(policy) = spec["podReplacementPolicy"].as_str() else {
        return;
    };
    let allowed: &[&str] = if spec["podFailurePolicy"].is_null() {
        &["Failed", "TerminatingOrFailed"]
    } else {
        &["Failed"]
    };
    if !allowed.contains(&policy) {
        causes.push(Cause::unsupported(
            format!("{field}.podReplacementPolicy"),
            policy,
            allowed,
        ));
    }
}
