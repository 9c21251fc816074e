//! What a lesson step does: the step vocabulary of lessons/README.md, as written in a
//! ` ```step ` block (`apply: {manifests: [...]}`), and what each action means for titles,
//! kubectl equivalents and `verify`.

use crate::checks::CheckSpec;
use crate::wait::WaitFor;
use serde::{Deserialize, Serialize};

/// What a step does.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub enum Action {
    /// Prose only.
    Explain,
    /// Print the cluster and context hk8s talks to.
    ShowCluster,
    /// Print a manifest with its key fields highlighted.
    ShowManifest {
        manifest: String,
        #[serde(default)]
        highlight: Vec<String>,
        /// Show only the fields where `manifest` differs from this one (what the learner
        /// applied before), instead of the whole file.
        #[serde(default)]
        changes_from: Option<String>,
    },
    /// Create the tutorial namespace, labelled as created by hk8s.
    CreateNamespace,
    /// Server-side apply of embedded manifests, or of an inline manifest that may be
    /// expected to fail (a teaching moment).
    Apply {
        #[serde(default)]
        manifests: Vec<String>,
        #[serde(default)]
        inline: Option<String>,
        #[serde(default)]
        expect_error: bool,
    },
    /// Delete the objects of embedded manifests.
    Delete { manifests: Vec<String> },
    /// Delete the pods that match a label selector.
    DeletePods { selector: String },
    /// Load the frontend: `concurrency` clients for `seconds`; with `until`, the load stops
    /// as soon as the condition holds and the step fails if it never does.
    Load {
        concurrency: u32,
        seconds: u64,
        #[serde(default)]
        until: Option<WaitFor>,
        /// The step fails when fewer requests succeed (percent).
        #[serde(default)]
        min_availability: Option<f64>,
        /// Seconds a client waits for one response before it gives up (a failure);
        /// siege's 30 s when not given.
        #[serde(default)]
        timeout_seconds: Option<u64>,
        /// What this run is, e.g. `starved (07)`: a later run in the lesson is compared
        /// with it side by side under these names.
        #[serde(default)]
        label: Option<String>,
    },
    /// Post a message through the frontend.
    PostMessage { text: String },
    /// Read the messages the frontend shows; `expect` (when given) must be among them,
    /// `expect_absent` must not.
    ReadMessages {
        #[serde(default)]
        expect: Option<String>,
        #[serde(default)]
        expect_absent: Option<String>,
    },
    /// Watch pods and events until a condition holds.
    Wait {
        #[serde(rename = "for")]
        until: WaitFor,
        #[serde(default = "default_timeout")]
        timeout_seconds: u64,
    },
    /// Check that the cluster reached the expected state.
    Check {
        checks: Vec<CheckSpec>,
        /// The state only exists in the middle of the lesson: `verify` without --apply skips it.
        #[serde(default)]
        during_lesson_only: bool,
    },
}

fn default_timeout() -> u64 {
    120
}

impl Action {
    /// Whether `verify --apply` performs this step (everything but prose and displays).
    pub(crate) fn changes_cluster(&self) -> bool {
        !matches!(
            self,
            Action::Explain
                | Action::ShowCluster
                | Action::ShowManifest { .. }
                | Action::Check { .. }
        )
    }

    /// A title for a step that follows another in the same section.
    pub(crate) fn default_title(&self) -> String {
        match self {
            Action::Explain => "More".into(),
            Action::ShowCluster => "The cluster".into(),
            Action::ShowManifest { manifest, .. } => format!("Look at {manifest}"),
            Action::CreateNamespace => "Create the namespace".into(),
            Action::Apply { manifests, .. } if !manifests.is_empty() => {
                format!("Apply {}", manifests.join(", "))
            }
            Action::Apply { .. } => "Apply".into(),
            Action::Delete { manifests } => format!("Delete {}", manifests.join(", ")),
            Action::DeletePods { selector } => format!("Delete the pods {selector}"),
            Action::Load { .. } => "Load the frontend".into(),
            Action::PostMessage { .. } => "Post a message".into(),
            Action::ReadMessages { .. } => "Read the messages".into(),
            Action::Wait { until, .. } => format!("Wait for {}", until.describe()),
            Action::Check { .. } => "Check".into(),
        }
    }

    /// The kubectl command that does by hand what the action does (`run_id` fills `{run}`).
    pub fn kubectl(&self, ns: &str, run_id: &str) -> Option<String> {
        Some(match self {
            Action::Explain => return None,
            Action::ShowCluster => "kubectl config current-context\nkubectl cluster-info".into(),
            Action::ShowManifest { manifest, .. } => {
                format!(
                    "hk8s manifests show {manifest}   # or: hk8s manifests export k8s && cat k8s/{manifest}"
                )
            }
            Action::CreateNamespace => format!(
                "kubectl create namespace {ns}\nkubectl label namespace {ns} app.kubernetes.io/managed-by=hk8s   # what `hk8s reset` looks for"
            ),
            Action::Apply {
                manifests, inline, ..
            } => match inline {
                Some(inline) if manifests.is_empty() => {
                    format!("kubectl apply -n {ns} -f - <<'EOF'\n{}\nEOF", inline.trim_end())
                }
                _ => manifests
                    .iter()
                    .map(|m| {
                        format!(
                            "hk8s manifests show {m} | kubectl apply --server-side --field-manager=hk8s -n {ns} -f -"
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            },
            Action::Delete { manifests } => manifests
                .iter()
                .map(|m| format!("hk8s manifests show {m} | kubectl delete -n {ns} -f -"))
                .collect::<Vec<_>>()
                .join("\n"),
            Action::DeletePods { selector } => format!("kubectl delete pod -l {selector} -n {ns}"),
            Action::Load {
                concurrency,
                seconds,
                timeout_seconds,
                ..
            } => {
                let timeout = timeout_seconds.map_or(String::new(), |t| format!(" --timeout {t}"));
                format!(
                    "hk8s load -d1 -c{concurrency} -t{seconds}S{timeout} http://<frontend address>/   # siege -d1S -c{concurrency} -t{seconds}S does the same"
                )
            }
            Action::PostMessage { text } => {
                format!(
                    "curl -d 'msg={}' http://<frontend address>/",
                    text.replace("{run}", run_id)
                )
            }
            Action::ReadMessages { .. } => "curl http://<frontend address>/".into(),
            Action::Wait { until, .. } => until.kubectl(ns),
            Action::Check { checks, .. } => {
                let mut lines: Vec<String> = Vec::new();
                for c in checks {
                    for l in c.kubectl(ns).lines() {
                        if !lines.iter().any(|x| x == l) {
                            lines.push(l.to_string());
                        }
                    }
                }
                lines.join("\n")
            }
        })
    }

    /// Every embedded manifest the step names.
    pub fn manifests(&self) -> Vec<&str> {
        match self {
            Action::ShowManifest {
                manifest,
                changes_from,
                ..
            } => std::iter::once(manifest)
                .chain(changes_from)
                .map(String::as_str)
                .collect(),
            Action::Apply { manifests, .. } | Action::Delete { manifests } => {
                manifests.iter().map(String::as_str).collect()
            }
            _ => Vec::new(),
        }
    }
}
