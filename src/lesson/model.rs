//! Lessons as data: a Markdown file per lesson, YAML front matter, one `## ` section per
//! step, and an optional fenced ```step block in each section saying what the step does.

use crate::checks::CheckSpec;
use crate::wait::WaitFor;
use include_dir::{Dir, include_dir};
use serde::{Deserialize, Serialize};

static LESSON_FILES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/lessons");

/// Why a lesson file cannot be read; names the file and the step.
#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    #[error("lessons/{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("there is no lesson {0}; `hk8s lessons` lists them (0 to {1})")]
    NoSuchLesson(u32, u32),
}

/// One lesson: a chapter of the tutorial.
#[derive(Debug, Clone)]
pub struct Lesson {
    pub number: u32,
    pub slug: String,
    pub title: String,
    pub summary: String,
    /// Lessons whose state this one builds on; set up first when missing.
    pub requires: Vec<u32>,
    pub file: String,
    pub intro: String,
    pub steps: Vec<Step>,
}

/// One step: its prose, and the action the runner performs.
#[derive(Debug, Clone)]
pub struct Step {
    pub title: String,
    pub prose: String,
    pub action: Action,
    /// Overrides the kubectl equivalent derived from the action.
    pub kubectl: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    number: u32,
    slug: String,
    title: String,
    summary: String,
    #[serde(default)]
    requires: Vec<u32>,
}

/// What a step does.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
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
    pub fn changes_cluster(&self) -> bool {
        !matches!(
            self,
            Action::Explain
                | Action::ShowCluster
                | Action::ShowManifest { .. }
                | Action::Check { .. }
        )
    }

    /// A title for a step that follows another in the same section.
    pub fn default_title(&self) -> String {
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
            Action::CreateNamespace => format!("kubectl create namespace {ns}"),
            Action::Apply {
                manifests, inline, ..
            } => {
                if manifests.is_empty() && inline.is_some() {
                    format!("kubectl apply -n {ns} -f old-manifest.yml")
                } else {
                    let files: Vec<String> =
                        manifests.iter().map(|m| format!("-f k8s/{m}")).collect();
                    format!(
                        "kubectl apply --server-side --field-manager=hk8s -n {ns} {}",
                        files.join(" ")
                    )
                }
            }
            Action::Delete { manifests } => {
                let files: Vec<String> = manifests.iter().map(|m| format!("-f k8s/{m}")).collect();
                format!("kubectl delete -n {ns} {}", files.join(" "))
            }
            Action::DeletePods { selector } => format!("kubectl delete pod -l {selector} -n {ns}"),
            Action::Load {
                concurrency,
                seconds,
                ..
            } => {
                format!("siege -d1S -c{concurrency} -t{seconds}S http://<frontend address>/")
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
            Action::ShowManifest { manifest, .. } => vec![manifest.as_str()],
            Action::Apply { manifests, .. } | Action::Delete { manifests } => {
                manifests.iter().map(String::as_str).collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Every lesson, in order.
pub fn all() -> Result<Vec<Lesson>, LessonError> {
    let mut files: Vec<_> = LESSON_FILES
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort_by_key(|f| f.path().to_path_buf());
    let mut lessons = Vec::new();
    for file in files {
        let name = file.path().display().to_string();
        let text = file.contents_utf8().ok_or_else(|| LessonError::Invalid {
            file: name.clone(),
            message: "not UTF-8".into(),
        })?;
        lessons.push(parse(&name, text)?);
    }
    for (i, lesson) in lessons.iter().enumerate() {
        if lesson.number as usize != i {
            return Err(LessonError::Invalid {
                file: lesson.file.clone(),
                message: format!("number {} but it is lesson {i} in order", lesson.number),
            });
        }
    }
    Ok(lessons)
}

/// One lesson by number.
pub fn get(number: u32) -> Result<Lesson, LessonError> {
    let lessons = all()?;
    let last = lessons.len().saturating_sub(1) as u32;
    lessons
        .into_iter()
        .find(|l| l.number == number)
        .ok_or(LessonError::NoSuchLesson(number, last))
}

/// Parses one lesson file.
pub fn parse(file: &str, text: &str) -> Result<Lesson, LessonError> {
    let invalid = |message: String| LessonError::Invalid {
        file: file.to_string(),
        message,
    };
    let rest = text
        .strip_prefix("---\n")
        .ok_or_else(|| invalid("must start with a `---` front matter block".into()))?;
    let (front, body) = rest
        .split_once("\n---\n")
        .ok_or_else(|| invalid("front matter is not closed by `---`".into()))?;
    let front: FrontMatter =
        serde_saphyr::from_str(front).map_err(|e| invalid(format!("front matter: {e}")))?;

    let mut intro = String::new();
    // (section title, prose since the last block, blocks emitted in this section)
    let mut section: Option<(String, String, usize)> = None;
    let mut raw_steps: Vec<(String, String, Option<String>)> = Vec::new();
    let mut in_block: Option<String> = None;
    let mut in_fence = false;
    let close_section = |section: Option<(String, String, usize)>,
                         raw: &mut Vec<(String, String, Option<String>)>| {
        if let Some((title, prose, blocks)) = section
            && (blocks == 0 || !prose.trim().is_empty())
        {
            raw.push((title, prose, None));
        }
    };
    for line in body.lines() {
        if let Some(block) = in_block.as_mut() {
            if line.trim_end() == "```" {
                let data = in_block.take().unwrap_or_default();
                let (title, prose, blocks) = section.as_mut().ok_or_else(|| {
                    invalid("a ```step block must be inside a `## ` section".into())
                })?;
                let step_title = if *blocks == 0 {
                    title.clone()
                } else {
                    String::new()
                };
                raw_steps.push((step_title, std::mem::take(prose), Some(data)));
                *blocks += 1;
            } else {
                block.push_str(line);
                block.push('\n');
            }
            continue;
        }
        if line.trim_end() == "```step" {
            in_block = Some(String::new());
            continue;
        }
        if line.starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence && let Some(title) = line.strip_prefix("## ") {
            close_section(section.take(), &mut raw_steps);
            section = Some((title.trim().to_string(), String::new(), 0));
            continue;
        }
        match section.as_mut() {
            Some((_, prose, _)) => {
                prose.push_str(line);
                prose.push('\n');
            }
            None => {
                intro.push_str(line);
                intro.push('\n');
            }
        }
    }
    if in_block.is_some() {
        return Err(invalid("a ```step block is not closed".into()));
    }
    close_section(section.take(), &mut raw_steps);

    let steps = raw_steps
        .into_iter()
        .map(|(title, prose, data)| {
            let (action, kubectl) = match data {
                None => (Action::Explain, None),
                Some(data) => {
                    let mut value: serde_json::Value = serde_saphyr::from_str(&data)
                        .map_err(|e| invalid(format!("step {title:?}: {e}")))?;
                    let kubectl = value
                        .as_object_mut()
                        .and_then(|map| map.remove("kubectl"))
                        .and_then(|v| v.as_str().map(str::to_string));
                    let action: Action = serde_json::from_value(value)
                        .map_err(|e| invalid(format!("step {title:?}: {e}")))?;
                    (action, kubectl)
                }
            };
            let title = if title.is_empty() {
                action.default_title()
            } else {
                title
            };
            Ok(Step {
                title,
                prose: prose.trim().to_string(),
                action,
                kubectl,
            })
        })
        .collect::<Result<Vec<_>, LessonError>>()?;

    Ok(Lesson {
        number: front.number,
        slug: front.slug,
        title: front.title,
        summary: front.summary,
        requires: front.requires,
        file: file.to_string(),
        intro: intro.trim().to_string(),
        steps,
    })
}
