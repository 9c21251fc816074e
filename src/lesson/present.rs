//! What the learner sees of a lesson run: headings, prose, the kubectl equivalent, what each
//! step did, failures and what to do next. The runner and the step executors call these;
//! they do no work of their own.

use super::model::{Action, Lesson, Step};
use super::runner::Mode;
use super::steps::{StepError, StepOutcome};
use crate::checks::CheckResult;
use crate::cluster::Target;
use crate::frontend::Address;
use crate::manifests;
use crate::ui::Ui;

/// The lesson's title, summary and introduction; where a resumed run starts.
pub(super) fn lesson_intro(ui: &Ui, lesson: &Lesson, start: usize) {
    ui.heading(&format!("Lesson {}: {}", lesson.number, lesson.title));
    ui.line(&crate::ui::wrap(&ui.dim(&lesson.summary), 0, ui.width()));
    if !lesson.intro.is_empty() {
        ui.line("");
        ui.line(&render_prose(&lesson.intro, ui));
    }
    if start > 1 {
        ui.line(&ui.dim(&format!(
            "(resuming at step {start} of {})",
            lesson.steps.len()
        )));
    }
}

/// A step's heading, prose and kubectl equivalent, before its prompt.
pub(super) fn step_intro(ui: &Ui, number: usize, total: usize, step: &Step, kubectl: Option<&str>) {
    ui.heading(&format!("Step {number}/{total}: {}", step.title));
    if !step.prose.is_empty() {
        ui.line(&render_prose(&step.prose, ui));
    }
    if let Some(k) = kubectl {
        ui.line("");
        ui.kubectl(k);
    }
}

/// The question asked before a step runs.
pub(super) fn prompt(action: &Action) -> String {
    match action {
        Action::Explain => "Continue?".to_string(),
        Action::Check { .. } => "Run the checks?".to_string(),
        Action::ShowManifest { manifest, .. } => format!("Show {manifest}?"),
        _ => "Run this step?".to_string(),
    }
}

pub(super) fn skipped(ui: &Ui) {
    ui.line(&ui.dim("  skipped"));
}

pub(super) fn stopped(ui: &Ui, lesson: u32, number: usize) {
    ui.line(&format!(
        "\nStopped before step {number}. Resume with `hk8s lesson {lesson}`."
    ));
}

/// A failed step, and the step to run again from: the failed one, or the earlier step whose
/// result it found missing.
pub(super) fn step_failed(ui: &Ui, lesson: u32, number: usize, from: usize, err: &StepError) {
    ui.fail(&format!("Step {number} failed: {err}"));
    if from == number {
        ui.line(&format!(
            "Fix it and rerun this step with `hk8s lesson {lesson} --step {number}`."
        ));
    } else {
        ui.line(&format!(
            "Step {number} reads what step {from} made: `hk8s lesson {lesson} --step {from}` redoes step {from} and goes on from there."
        ));
    }
}

/// A step found the result of an earlier one missing.
pub(super) fn result_missing(ui: &Ui, number: usize, earlier: usize, title: &str, err: &StepError) {
    ui.warn(&format!(
        "Step {number} needs what step {earlier} ({title}) made, and it is missing: {err}."
    ));
    ui.line(
        "Either it was never made in this run (it started after that step), or something removed it since (a Redis without a volume forgets its messages when its pod restarts).",
    );
}

/// Before an earlier step runs again.
pub(super) fn redoing(ui: &Ui, number: usize, title: &str) {
    ui.line(&ui.bold(&format!("Redoing step {number}: {title}")));
}

/// Before the step that found a result missing runs again.
pub(super) fn retrying(ui: &Ui, number: usize, title: &str) {
    ui.line(&ui.bold(&format!("Step {number} again: {title}")));
}

/// The lesson's end: complete or not (a skipped step that does something leaves it
/// unfinished), and the next lesson.
pub(super) fn lesson_done(
    ui: &Ui,
    lesson: &Lesson,
    failed: usize,
    skipped: Option<usize>,
    next: Option<&Lesson>,
) {
    if let Some(step) = skipped {
        ui.heading(&format!(
            "Lesson {} is not complete: you skipped step {step}, so it is not saved as done.",
            lesson.number
        ));
        ui.line(&format!(
            "`hk8s lesson {}` resumes at step {step}.",
            lesson.number
        ));
        return;
    }
    if failed == 0 {
        ui.heading(&format!("Lesson {} complete.", lesson.number));
    } else {
        ui.heading(&format!(
            "Lesson {} done, but {failed} check(s) failed (see above).",
            lesson.number
        ));
    }
    match next {
        Some(next) => ui.line(&format!(
            "Next: `hk8s lesson {}` — {}",
            next.number, next.title
        )),
        None => ui.line("That was the last lesson. `hk8s verify --all` checks everything again."),
    }
}

/// Where Ctrl-C stopped a lesson, and how to resume (`at` is lesson and step).
pub(super) fn interrupted(ui: &Ui, at: Option<(u32, usize)>) {
    eprintln!();
    match at {
        Some((lesson, step)) => eprintln!(
            "{} Interrupted in lesson {lesson}, step {step}. The steps before it are saved.\n  Resume with `hk8s lesson {lesson}` (or `hk8s lesson {lesson} --step {step}`); running a step again is safe.",
            ui.yellow("■")
        ),
        None => eprintln!("{} Interrupted; nothing was in progress.", ui.yellow("■")),
    }
}

/// Before `show-cluster` contacts the cluster.
pub(super) fn using_cluster(ui: &Ui, target: &Target) {
    ui.line(&format!("hk8s uses {}", target.describe(ui)));
}

/// An `apply` created the namespace it needs first.
pub(super) fn namespace_created_first(ui: &Ui, namespace: &str) {
    ui.ok(&format!(
        "namespace/{namespace} created first (labelled app.kubernetes.io/managed-by=hk8s)"
    ));
}

/// Before a `load` step starts its clients.
pub(super) fn load_starting(ui: &Ui, address: &Address, concurrency: u32, seconds: u64) {
    ui.line(&format!(
        "Loading {} with {concurrency} clients for up to {seconds} s…",
        address.describe()
    ));
}

/// The messages a `read-messages` step found on the page (the first ten).
pub(super) fn messages_shown(ui: &Ui, address: &Address, messages: &[String]) {
    ui.line(&format!(
        "The frontend at {} shows {} message(s):",
        address.describe(),
        messages.len()
    ));
    for m in messages.iter().take(10) {
        ui.line(&format!("  • {m}"));
    }
}

/// What a step did.
pub(super) fn outcome(ui: &Ui, mode: Mode, outcome: &StepOutcome) {
    match outcome {
        StepOutcome::Nothing => {}
        StepOutcome::Cluster { version, sandbox } => {
            ui.ok(&format!("the API server answers: Kubernetes {version}"));
            if *sandbox {
                ui.line(&format!(
                    "To use kubectl on it: {}",
                    ui.cyan("export KUBECONFIG=$(hk8s sandbox kubeconfig)")
                ));
            }
        }
        StepOutcome::Manifest {
            name,
            text,
            highlight,
        } => {
            ui.line(&ui.dim(&format!("--- {name}")));
            ui.line(manifests::highlighted(text, highlight, ui).trim_end());
        }
        StepOutcome::ManifestChanges {
            name,
            base,
            changes,
        } => {
            ui.line(&ui.dim(&format!(
                "--- {name}: the {} field(s) that differ from {base} (`hk8s manifests show {name}` prints it all)",
                changes.len()
            )));
            let width = changes.iter().map(|c| c.path.len()).max().unwrap_or(0);
            for c in changes {
                ui.line(&format!(
                    "  {:<width$}  {} → {}",
                    c.path,
                    ui.dim(&c.before),
                    ui.highlight(&c.after)
                ));
            }
        }
        StepOutcome::Namespace {
            name,
            created: true,
        } => ui.ok(&format!(
            "namespace/{name} created (labelled app.kubernetes.io/managed-by=hk8s)"
        )),
        StepOutcome::Namespace {
            name,
            created: false,
        } => ui.ok(&format!("namespace/{name} already exists")),
        StepOutcome::Applied(objects) | StepOutcome::Deleted(objects) => {
            for a in objects {
                ui.ok(&format!(
                    "{}/{} {}",
                    a.kind.to_lowercase(),
                    a.name,
                    a.outcome
                ));
            }
        }
        StepOutcome::Refused(err) => {
            ui.warn(&format!("As expected, the cluster refused it:\n  {err}"));
        }
        StepOutcome::PodsDeleted(names) => {
            for name in names {
                ui.ok(&format!("pod/{name} deleted"));
            }
        }
        StepOutcome::Loaded {
            summary,
            earlier,
            availability,
        } => {
            ui.line(summary.text.trim_end());
            if let Some(earlier) = earlier {
                ui.line("");
                ui.line(&ui.bold("The two runs side by side:"));
                ui.line(super::steps::load_comparison(earlier, summary).trim_end());
            }
            if let Some(check) = availability {
                verdict(ui, &check.detail, check.passed);
            }
        }
        StepOutcome::Posted { text, address } => {
            ui.ok(&format!("posted {text:?} through {}", address.describe()));
        }
        StepOutcome::Messages { present, absent } => {
            if let Some(want) = present {
                ui.ok(&format!("{want:?} is there"));
            }
            if let Some(gone) = absent {
                ui.ok(&format!("{gone:?} is gone"));
            }
        }
        StepOutcome::Checked(results) if mode == Mode::Learn => checks(ui, results),
        StepOutcome::Checked(_) => {}
    }
}

fn checks(ui: &Ui, results: &[CheckResult]) {
    for result in results {
        verdict(
            ui,
            &format!("{}: {}", result.name, result.detail),
            result.passed,
        );
    }
}

fn verdict(ui: &Ui, text: &str, passed: bool) {
    if passed {
        ui.ok(text);
    } else {
        ui.fail(text);
    }
}

/// Light Markdown rendering for the terminal: `code` in cyan, **bold** in bold; on a
/// terminal, paragraphs and list items reflowed to its width.
pub(crate) fn render_prose(text: &str, ui: &Ui) -> String {
    render_prose_to(text, ui, ui.width())
}

/// [`render_prose`] for a given width; `None` keeps the file's own line breaks.
fn render_prose_to(text: &str, ui: &Ui, width: Option<usize>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut in_fence = false;
    // The paragraph or list item being joined, and the indent of its later lines.
    let mut open: Option<(String, usize)> = None;
    let flush = |open: &mut Option<(String, usize)>, out: &mut Vec<String>| {
        if let Some((text, indent)) = open.take() {
            out.push(crate::ui::wrap(&style_line(&text, ui), indent, width));
        }
    };
    for line in text.lines() {
        if line.starts_with("```") {
            flush(&mut open, &mut out);
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            out.push(format!("    {}", ui.cyan(line)));
            continue;
        }
        let trimmed = line.trim_start();
        let lead = line.len() - trimmed.len();
        let item = list_marker(trimmed);
        match (&mut open, width) {
            _ if trimmed.is_empty() => {
                flush(&mut open, &mut out);
                out.push(String::new());
            }
            (Some((text, _)), Some(_)) if item == 0 => {
                text.push(' ');
                text.push_str(trimmed);
            }
            _ => {
                flush(&mut open, &mut out);
                open = Some((line.to_string(), lead + item));
            }
        }
    }
    flush(&mut open, &mut out);
    out.join("\n").trim_end().to_string()
}

/// The width of the list marker a line starts with (`- `, `* `, `1. `), 0 for none.
fn list_marker(line: &str) -> usize {
    if line.starts_with("- ") || line.starts_with("* ") {
        return 2;
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && line[digits..].starts_with(". ") {
        digits + 2
    } else {
        0
    }
}

/// One line of Markdown, styled.
fn style_line(line: &str, ui: &Ui) -> String {
    let mut rendered = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 1 {
            rendered.push_str(&ui.cyan(part));
        } else {
            for (j, bit) in part.split("**").enumerate() {
                if j % 2 == 1 {
                    rendered.push_str(&ui.bold(bit));
                } else {
                    rendered.push_str(&italics(bit, ui));
                }
            }
        }
    }
    rendered
}

/// `*word*` in italics (a lone `*`, as in `2 * 3`, stays).
fn italics(text: &str, ui: &Ui) -> String {
    let parts: Vec<&str> = text.split('*').collect();
    if parts.len() < 3 {
        return text.to_string();
    }
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        } else if i + 1 == parts.len() {
            out.push('*');
            out.push_str(part);
        } else if !part.is_empty() && !part.starts_with(' ') && !part.ends_with(' ') {
            out.push_str(&ui.italic(part));
        } else {
            out.push('*');
            out.push_str(part);
            out.push('*');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{render_prose, render_prose_to};
    use crate::ui::Ui;

    #[test]
    fn prose_loses_its_markup_marks_and_indents_fenced_blocks() {
        let ui = Ui {
            color: false,
            interactive: false,
            quiet: true,
        };
        let prose = "Run `kubectl get pods`: **ready** pods are *counted*, 2 * 3 is not.\n```\nkubectl get nodes\n```\nDone.";
        assert_eq!(
            render_prose(prose, &ui),
            "Run kubectl get pods: ready pods are counted, 2 * 3 is not.\n    kubectl get nodes\nDone."
        );
    }

    #[test]
    fn prose_is_reflowed_to_the_width_and_list_items_keep_their_indent() {
        let ui = Ui {
            color: false,
            interactive: false,
            quiet: true,
        };
        let prose = "A paragraph that the file\nbroke early.\n\n- an item whose text goes\n  on for a while longer\n- a second item\n1. a numbered item that wraps";
        assert_eq!(
            render_prose_to(prose, &ui, Some(24)),
            "A paragraph that the\nfile broke early.\n\n- an item whose text\n  goes on for a while\n  longer\n- a second item\n1. a numbered item that\n   wraps"
        );
        assert_eq!(render_prose_to(prose, &ui, None), prose);
    }
}
