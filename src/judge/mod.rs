//! Pure verdicts on objects already fetched from the cluster: whether a check passes or a
//! wait is over, and the one line that says why. The checks and waits fetch; these judge,
//! so each rule is unit-tested on fixture objects without a cluster.

pub(crate) mod diagnosis;
pub(crate) mod pods;
pub(crate) mod services;
pub(crate) mod storage;
pub(crate) mod workloads;

#[cfg(test)]
mod fixtures;

use k8s_openapi::api::core::v1::{Namespace, Node};
use std::collections::BTreeMap;

/// Whether a condition holds, and what the cluster shows, in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub passed: bool,
    pub detail: String,
}

impl Verdict {
    pub(crate) fn new(passed: bool, detail: impl Into<String>) -> Self {
        Self {
            passed,
            detail: detail.into(),
        }
    }

    pub(crate) fn pass(detail: impl Into<String>) -> Self {
        Self::new(true, detail)
    }

    pub(crate) fn fail(detail: impl Into<String>) -> Self {
        Self::new(false, detail)
    }
}

/// Whether a list of Kubernetes conditions has `type_` with status `"True"`.
pub(crate) fn condition_true<'a>(
    conditions: impl IntoIterator<Item = (&'a str, &'a str)>,
    type_: &str,
) -> bool {
    conditions
        .into_iter()
        .any(|(t, status)| t == type_ && status == "True")
}

/// At least one node is Ready.
pub(crate) fn nodes_ready(nodes: &[Node]) -> Verdict {
    let ready: Vec<String> = nodes
        .iter()
        .filter(|n| {
            let conditions = n.status.as_ref().and_then(|s| s.conditions.as_ref());
            condition_true(
                conditions
                    .into_iter()
                    .flatten()
                    .map(|c| (c.type_.as_str(), c.status.as_str())),
                "Ready",
            )
        })
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    if ready.is_empty() {
        Verdict::fail(format!(
            "{} node(s), none Ready: pods cannot start",
            nodes.len()
        ))
    } else {
        Verdict::pass(format!(
            "{} of {} node(s) Ready: {}",
            ready.len(),
            nodes.len(),
            ready.join(", ")
        ))
    }
}

/// The namespace exists and is Active.
pub(crate) fn namespace_active(name: &str, namespace: Option<&Namespace>) -> Verdict {
    let phase = namespace
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("missing");
    Verdict::new(phase == "Active", format!("namespace {name} {phase}"))
}

/// `k=v,k2=v2` (or `{}` when empty), as selectors are written.
pub(crate) fn fmt_labels(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "{}".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::fixtures::{namespace, node};
    use super::*;

    #[test]
    fn a_node_counts_only_when_its_ready_condition_is_true() {
        let verdict = nodes_ready(&[node("a", "False"), node("b", "True")]);
        assert_eq!(verdict, Verdict::pass("1 of 2 node(s) Ready: b"));
        let verdict = nodes_ready(&[node("a", "Unknown")]);
        assert_eq!(
            verdict,
            Verdict::fail("1 node(s), none Ready: pods cannot start")
        );
        assert!(!nodes_ready(&[]).passed);
    }

    #[test]
    fn a_namespace_is_active_only_in_phase_active() {
        assert_eq!(
            namespace_active("demo", Some(&namespace("demo", "Active"))),
            Verdict::pass("namespace demo Active")
        );
        assert_eq!(
            namespace_active("demo", Some(&namespace("demo", "Terminating"))),
            Verdict::fail("namespace demo Terminating")
        );
        assert_eq!(
            namespace_active("demo", None),
            Verdict::fail("namespace demo missing")
        );
    }
}
