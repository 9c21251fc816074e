//! Lessons as data (lessons/README.md describes the format): a Markdown file per lesson,
//! YAML front matter, one `## ` section per step, and fenced ` ```step ` blocks saying what
//! the steps do.

pub use super::action::Action;
use include_dir::{Dir, include_dir};
use serde::Deserialize;

static LESSON_FILES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/lessons");

/// The lesson file format this hk8s reads (`format:` in the front matter).
pub const FORMAT: u32 = 1;

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

impl Lesson {
    /// The earlier step whose result step `index` (0-based) reads, e.g. the `post-message`
    /// step that wrote the text a `read-messages` step expects: when that result is gone,
    /// redoing that step (not this one) is what brings it back.
    pub(crate) fn producer(&self, index: usize) -> Option<usize> {
        let Action::ReadMessages {
            expect: Some(text), ..
        } = &self.steps.get(index)?.action
        else {
            return None;
        };
        self.steps[..index]
            .iter()
            .rposition(|s| matches!(&s.action, Action::PostMessage { text: t } if t == text))
    }
}

/// The front matter's version, read before the rest so that a newer format gets a clear
/// error instead of a list of unknown fields.
#[derive(Debug, Deserialize)]
struct Version {
    format: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    /// Checked through [`Version`] first.
    #[serde(rename = "format")]
    _format: u32,
    number: u32,
    slug: String,
    title: String,
    summary: String,
    #[serde(default)]
    requires: Vec<u32>,
}

/// A step as found in the file: title (empty for a later block in a section), prose, and
/// the block's YAML (none for a section that only explains).
struct RawStep {
    title: String,
    prose: String,
    block: Option<String>,
}

/// Every lesson, in order: the embedded `NN-slug.md` files, numbered 0 to N.
pub fn all() -> Result<Vec<Lesson>, LessonError> {
    let mut files: Vec<_> = LESSON_FILES
        .files()
        .filter(|f| is_lesson_file(&f.path().display().to_string()))
        .collect();
    files.sort_by_key(|f| f.path().to_path_buf());
    let mut lessons = Vec::new();
    for file in files {
        let name = file.path().display().to_string();
        let text = file.contents_utf8().ok_or_else(|| LessonError::Invalid {
            file: name.clone(),
            message: "not UTF-8".into(),
        })?;
        let lesson = parse(&name, text)?;
        check_file_name(&lesson)?;
        lessons.push(lesson);
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

/// Whether a file in lessons/ is a lesson (`NN-slug.md`) rather than, say, its README.
fn is_lesson_file(name: &str) -> bool {
    name.ends_with(".md")
        && name.len() > 3
        && name.as_bytes()[..2].iter().all(u8::is_ascii_digit)
        && name.as_bytes()[2] == b'-'
}

/// The file name is the number in two digits, then the slug.
fn check_file_name(lesson: &Lesson) -> Result<(), LessonError> {
    let expected = format!("{:02}-{}.md", lesson.number, lesson.slug);
    if lesson.file == expected {
        return Ok(());
    }
    Err(LessonError::Invalid {
        file: lesson.file.clone(),
        message: format!(
            "number {} and slug {:?} call for the file name {expected}",
            lesson.number, lesson.slug
        ),
    })
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
    let (front, body) = split_front_matter(text).map_err(|m| invalid(m.into()))?;
    let front = front_matter(front).map_err(invalid)?;
    let (intro, raw_steps) = sections(body).map_err(|m| invalid(m.into()))?;
    let steps = raw_steps
        .into_iter()
        .map(step)
        .collect::<Result<Vec<_>, String>>()
        .map_err(invalid)?;
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

/// The front matter's YAML and the Markdown after it.
fn split_front_matter(text: &str) -> Result<(&str, &str), &'static str> {
    let rest = text
        .strip_prefix("---\n")
        .ok_or("must start with a `---` front matter block")?;
    rest.split_once("\n---\n")
        .ok_or("front matter is not closed by `---`")
}

/// Reads the front matter: a known format first, then the fields, then `requires`.
fn front_matter(yaml: &str) -> Result<FrontMatter, String> {
    let version: Version =
        serde_saphyr::from_str(yaml).map_err(|e| format!("front matter: {e}"))?;
    match version.format {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(format!(
                "front matter: format {other} is not one this hk8s reads (it reads format {FORMAT}); update hk8s, or see lessons/README.md"
            ));
        }
        None => {
            return Err(format!(
                "front matter: `format: {FORMAT}` is missing (lessons/README.md describes the format)"
            ));
        }
    }
    let front: FrontMatter =
        serde_saphyr::from_str(yaml).map_err(|e| format!("front matter: {e}"))?;
    if let Some(later) = front.requires.iter().find(|r| **r >= front.number) {
        return Err(format!(
            "front matter: requires lesson {later}, but a lesson can only build on earlier ones (this is lesson {})",
            front.number
        ));
    }
    Ok(front)
}

/// Splits the Markdown into the introduction and the raw steps: each ` ```step ` block
/// with the prose before it; a section without blocks, or prose after a section's last
/// block, is a step that only explains.
fn sections(body: &str) -> Result<(String, Vec<RawStep>), &'static str> {
    let mut intro = String::new();
    // (section title, prose since the last block, blocks seen in this section)
    let mut section: Option<(String, String, usize)> = None;
    let mut steps = Vec::new();
    let mut block: Option<String> = None;
    let mut in_fence = false;
    for line in body.lines() {
        if let Some(yaml) = block.as_mut() {
            if line.trim_end() != "```" {
                yaml.push_str(line);
                yaml.push('\n');
                continue;
            }
            let (title, prose, blocks) = section
                .as_mut()
                .ok_or("a ```step block must be inside a `## ` section")?;
            steps.push(RawStep {
                title: if *blocks == 0 {
                    title.clone()
                } else {
                    String::new()
                },
                prose: std::mem::take(prose),
                block: block.take(),
            });
            *blocks += 1;
            continue;
        }
        if line.trim_end() == "```step" {
            block = Some(String::new());
            continue;
        }
        if line.starts_with("```") {
            in_fence = !in_fence;
        }
        if !in_fence && let Some(title) = line.strip_prefix("## ") {
            close_section(section.take(), &mut steps);
            section = Some((title.trim().to_string(), String::new(), 0));
            continue;
        }
        let prose = section.as_mut().map_or(&mut intro, |(_, prose, _)| prose);
        prose.push_str(line);
        prose.push('\n');
    }
    if block.is_some() {
        return Err("a ```step block is not closed");
    }
    close_section(section, &mut steps);
    Ok((intro, steps))
}

/// A section's trailing prose (or a section without blocks) becomes an explain step.
fn close_section(section: Option<(String, String, usize)>, steps: &mut Vec<RawStep>) {
    if let Some((title, prose, blocks)) = section
        && (blocks == 0 || !prose.trim().is_empty())
    {
        steps.push(RawStep {
            title,
            prose,
            block: None,
        });
    }
}

/// A raw step's action (from its block's YAML) and title.
fn step(raw: RawStep) -> Result<Step, String> {
    let RawStep {
        title,
        prose,
        block,
    } = raw;
    let (action, kubectl) = match block {
        None => (Action::Explain, None),
        Some(yaml) => {
            let mut value: serde_json::Value =
                serde_saphyr::from_str(&yaml).map_err(|e| format!("step {title:?}: {e}"))?;
            let kubectl = value
                .as_object_mut()
                .and_then(|map| map.remove("kubectl"))
                .and_then(|v| v.as_str().map(str::to_string));
            if let Some(map) = value.as_object()
                && map.len() != 1
            {
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                return Err(format!(
                    "step {title:?}: a step block names one action, as `apply:` with its fields below it, but it has the keys {}; lessons/README.md lists the actions",
                    keys.join(", ")
                ));
            }
            let action: Action =
                serde_json::from_value(value).map_err(|e| format!("step {title:?}: {e}"))?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRONT: &str = "---\nformat: 1\nnumber: 2\nslug: s\ntitle: T\nsummary: s\n";

    fn lesson(front: &str, body: &str) -> Result<Lesson, LessonError> {
        parse("02-s.md", &format!("{front}---\n{body}"))
    }

    #[test]
    fn an_unknown_or_missing_format_is_refused_by_name() {
        let err = lesson(&FRONT.replace("format: 1", "format: 2"), "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("format 2 is not one this hk8s reads"), "{err}");
        let err = lesson(&FRONT.replace("format: 1\n", ""), "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`format: 1` is missing"), "{err}");
        assert!(lesson(FRONT, "").is_ok());
    }

    #[test]
    fn requires_names_only_earlier_lessons() {
        let err = lesson(&format!("{FRONT}requires: [1, 2]\n"), "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("requires lesson 2"), "{err}");
        assert_eq!(
            lesson(&format!("{FRONT}requires: [0, 1]\n"), "")
                .unwrap()
                .requires,
            [0, 1]
        );
    }

    #[test]
    fn the_file_name_must_match_number_and_slug() {
        let mut ok = lesson(FRONT, "").unwrap();
        check_file_name(&ok).unwrap();
        ok.file = "2-s.md".into();
        let err = check_file_name(&ok).unwrap_err().to_string();
        assert!(err.contains("call for the file name 02-s.md"), "{err}");
        assert!(is_lesson_file("07-autoscaling.md"));
        assert!(!is_lesson_file("README.md"));
    }

    #[test]
    fn a_step_names_one_action_in_kebab_case() {
        let old_style = "## Apply\n```step\naction: apply\nmanifests: [a.yml]\n```\n";
        let err = lesson(FRONT, old_style).unwrap_err().to_string();
        assert!(err.contains("names one action"), "{err}");
        assert!(err.contains("action, manifests"), "{err}");
        let snake = "## W\n```step\nwait:\n  for: pvcs-bound\n  timeout_seconds: 5\n```\n";
        let err = lesson(FRONT, snake).unwrap_err().to_string();
        assert!(err.contains("timeout_seconds"), "{err}");
        let kebab = "## W\n```step\nwait:\n  for: pvcs-bound\n  timeout-seconds: 5\n```\n```step\ncreate-namespace\n```\n```step\nshow-cluster:\nkubectl: kubectl get nodes\n```\n";
        let steps = lesson(FRONT, kebab).unwrap().steps;
        assert!(matches!(
            steps[0].action,
            Action::Wait {
                timeout_seconds: 5,
                ..
            }
        ));
        assert_eq!(steps[1].action, Action::CreateNamespace);
        assert_eq!(steps[2].action, Action::ShowCluster);
        assert_eq!(steps[2].kubectl.as_deref(), Some("kubectl get nodes"));
    }
}
