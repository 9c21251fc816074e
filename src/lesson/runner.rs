//! Runs a lesson: for each step, the prose, the kubectl equivalent, a prompt (interactive
//! only), then the action. Progress is saved after every step; Ctrl-C stops between two
//! consistent states and says how to resume.

use super::load_step;
use super::model::{Action, Lesson, Step};
use crate::apply::{Applier, ensure_namespace};
use crate::checks::CheckResult;
use crate::cluster::{ClusterError, Target};
use crate::frontend;
use crate::manifests;
use crate::progress::Progress;
use crate::ui::{Answer, Ui};
use crate::wait;
use std::sync::Mutex;
use std::time::Duration;

/// How the lesson runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A learner runs it: prose, prompts (when interactive), progress saved.
    Learn,
    /// `verify --apply`: every action and check, no prompts, no progress.
    VerifyApply,
    /// `verify`: only the checks, on the cluster as it is.
    VerifyOnly,
}

/// Shared settings of a run.
pub struct Runner<'a> {
    pub target: &'a Target,
    pub ui: &'a Ui,
    pub registry: Option<String>,
    pub mode: Mode,
    run_id: String,
}

/// What a lesson run ended with.
#[derive(Debug, Default)]
pub struct Outcome {
    pub checks: Vec<CheckResult>,
    /// Every step ran (or was skipped by choice).
    pub finished: bool,
    /// A step failed; the lesson stopped there.
    pub failed_step: Option<(usize, String)>,
}

/// Which lesson and step is running, for the Ctrl-C message.
static CURRENT: Mutex<Option<(u32, usize)>> = Mutex::new(None);

/// Installs the Ctrl-C handler: says where the learner stopped and how to resume, then exits.
pub fn install_interrupt_handler(ui: Ui) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let at = CURRENT.lock().ok().and_then(|c| *c);
            eprintln!();
            match at {
                Some((lesson, step)) => eprintln!(
                    "{} Interrupted in lesson {lesson}, step {step}. The steps before it are saved.\n  Resume with `hk8s lesson {lesson}` (or `hk8s lesson {lesson} --step {step}`); running a step again is safe.",
                    ui.yellow("■")
                ),
                None => eprintln!("{} Interrupted; nothing was in progress.", ui.yellow("■")),
            }
            std::process::exit(130);
        }
    });
}

impl<'a> Runner<'a> {
    pub fn new(target: &'a Target, ui: &'a Ui, registry: Option<String>, mode: Mode) -> Self {
        Self {
            target,
            ui,
            registry,
            mode,
            run_id: jiff::Timestamp::now().as_millisecond().to_string(),
        }
    }

    /// Runs the lesson from `start` (1-based step number).
    pub async fn run(
        &self,
        lesson: &Lesson,
        start: usize,
        progress: Option<&mut Progress>,
    ) -> anyhow::Result<Outcome> {
        let ui = self.ui;
        let total = lesson.steps.len();
        let mut outcome = Outcome::default();
        let mut progress = progress;
        if self.mode == Mode::Learn {
            ui.heading(&format!("Lesson {}: {}", lesson.number, lesson.title));
            ui.line(&ui.dim(&lesson.summary));
            if !lesson.intro.is_empty() {
                ui.line("");
                ui.line(&render_prose(&lesson.intro, ui));
            }
            if start > 1 {
                ui.line(&ui.dim(&format!("(resuming at step {start} of {total})")));
            }
        }
        for (index, step) in lesson
            .steps
            .iter()
            .enumerate()
            .skip(start.saturating_sub(1))
        {
            let number = index + 1;
            if let Ok(mut c) = CURRENT.lock() {
                *c = Some((lesson.number, number));
            }
            let result = self.step(lesson, number, total, step, &mut outcome).await;
            match result {
                Ok(StepEnd::Done) => {}
                Ok(StepEnd::Quit) => {
                    ui.line(&format!(
                        "\nStopped before step {number}. Resume with `hk8s lesson {}`.",
                        lesson.number
                    ));
                    return Ok(outcome);
                }
                Err(message) => {
                    outcome.failed_step = Some((number, message.clone()));
                    if self.mode == Mode::Learn {
                        ui.fail(&format!("Step {number} failed: {message}"));
                        ui.line(&format!(
                            "Fix it and rerun this step with `hk8s lesson {} --step {number}`.",
                            lesson.number
                        ));
                    }
                    outcome.checks.push(CheckResult {
                        lesson: lesson.number,
                        name: format!("step {number}: {}", step.title),
                        passed: false,
                        skipped: false,
                        detail: message,
                    });
                    return Ok(outcome);
                }
            }
            if let (Mode::Learn, Some(p)) = (self.mode, progress.as_deref_mut()) {
                p.record(&self.target.progress_key(), lesson.number, number, total)?;
            }
        }
        if let Ok(mut c) = CURRENT.lock() {
            *c = None;
        }
        outcome.finished = true;
        if self.mode == Mode::Learn {
            let failed = outcome.checks.iter().filter(|c| !c.passed).count();
            if failed == 0 {
                ui.heading(&format!("Lesson {} complete.", lesson.number));
            } else {
                ui.heading(&format!(
                    "Lesson {} done, but {failed} check(s) failed (see above).",
                    lesson.number
                ));
            }
            match super::model::get(lesson.number + 1) {
                Ok(next) => ui.line(&format!(
                    "Next: `hk8s lesson {}` — {}",
                    next.number, next.title
                )),
                Err(_) => ui
                    .line("That was the last lesson. `hk8s verify --all` checks everything again."),
            }
        }
        Ok(outcome)
    }

    async fn step(
        &self,
        lesson: &Lesson,
        number: usize,
        total: usize,
        step: &Step,
        outcome: &mut Outcome,
    ) -> Result<StepEnd, String> {
        let ui = self.ui;
        let ns = &self.target.namespace;
        let verify_only = self.mode == Mode::VerifyOnly;
        if verify_only && !matches!(step.action, Action::Check { .. }) {
            return Ok(StepEnd::Done);
        }
        if self.mode == Mode::VerifyApply
            && !step.action.changes_cluster()
            && !matches!(step.action, Action::Check { .. })
        {
            return Ok(StepEnd::Done);
        }
        if self.mode == Mode::Learn {
            ui.heading(&format!("Step {number}/{total}: {}", step.title));
            if !step.prose.is_empty() {
                ui.line(&render_prose(&step.prose, ui));
            }
        }
        let kubectl = step
            .kubectl
            .clone()
            .or_else(|| self.kubectl_for(&step.action));
        if self.mode == Mode::Learn {
            if let Some(k) = &kubectl {
                ui.line("");
                ui.kubectl(k);
            }
            let label = match &step.action {
                Action::Explain => "Continue?".to_string(),
                Action::Check { .. } => "Run the checks?".to_string(),
                Action::ShowManifest { manifest, .. } => format!("Show {manifest}?"),
                _ => "Run this step?".to_string(),
            };
            let ui_copy = ui.clone();
            let answer = tokio::task::spawn_blocking(move || ui_copy.ask_step(&label))
                .await
                .unwrap_or(Answer::Quit);
            match answer {
                Answer::Run => {}
                Answer::Skip => {
                    ui.line(&ui.dim("  skipped"));
                    return Ok(StepEnd::Done);
                }
                Answer::Quit => return Ok(StepEnd::Quit),
            }
        }
        match &step.action {
            Action::Explain => {}
            Action::ShowCluster => {
                ui.line(&format!("hk8s uses {}", self.target.describe(ui)));
                match crate::cluster::ensure_reachable(self.target).await {
                    Ok(version) => ui.ok(&format!("the API server answers: Kubernetes {version}")),
                    Err(e) => return Err(e.to_string()),
                }
                if self.target.sandbox {
                    ui.line(&format!(
                        "To use kubectl on it: {}",
                        ui.cyan("export KUBECONFIG=$(hk8s sandbox kubeconfig)")
                    ));
                }
            }
            Action::ShowManifest {
                manifest,
                highlight,
            } => {
                let text = manifests::text(manifest, self.registry.as_deref())
                    .map_err(|e| e.to_string())?;
                ui.line(&ui.dim(&format!("--- {manifest}")));
                ui.line(manifests::highlighted(&text, highlight, ui).trim_end());
            }
            Action::CreateNamespace => {
                let created = ensure_namespace(&self.target.client, ns)
                    .await
                    .map_err(|e| ClusterError::from_kube(&e, self.target).to_string())?;
                if created {
                    ui.ok(&format!(
                        "namespace/{ns} created (labelled app.kubernetes.io/managed-by=hk8s)"
                    ));
                } else {
                    ui.ok(&format!("namespace/{ns} already exists"));
                }
            }
            Action::Apply {
                manifests: names,
                inline,
                expect_error,
            } => {
                self.ensure_namespace_quietly().await?;
                let mut objects = Vec::new();
                for name in names {
                    objects.extend(
                        manifests::objects(name, self.registry.as_deref())
                            .map_err(|e| e.to_string())?,
                    );
                }
                if let Some(text) = inline {
                    objects.extend(
                        manifests::parse("inline manifest", text).map_err(|e| e.to_string())?,
                    );
                }
                let mut applier = Applier::new(self.target.client.clone(), ns);
                match applier.apply(&objects).await {
                    Ok(done) => {
                        if *expect_error {
                            return Err(
                                "the cluster accepted a manifest this step expected it to reject"
                                    .into(),
                            );
                        }
                        for a in done {
                            ui.ok(&format!(
                                "{}/{} {}",
                                a.kind.to_lowercase(),
                                a.name,
                                a.outcome
                            ));
                        }
                    }
                    Err(err) if *expect_error => {
                        ui.warn(&format!("As expected, the cluster refused it:\n  {err}"));
                    }
                    Err(err) => {
                        return Err(match err.kube_error() {
                            Some(k) if matches!(k, kube::Error::Api(s) if s.code == 401 || s.code == 403) => {
                                ClusterError::from_kube(k, self.target).to_string()
                            }
                            _ => err.to_string(),
                        });
                    }
                }
            }
            Action::Delete { manifests: names } => {
                let mut objects = Vec::new();
                for name in names {
                    objects.extend(
                        manifests::objects(name, self.registry.as_deref())
                            .map_err(|e| e.to_string())?,
                    );
                }
                let mut applier = Applier::new(self.target.client.clone(), ns);
                let done = applier.delete(&objects).await.map_err(|e| e.to_string())?;
                for a in done {
                    ui.ok(&format!(
                        "{}/{} {}",
                        a.kind.to_lowercase(),
                        a.name,
                        a.outcome
                    ));
                }
            }
            Action::DeletePods { selector } => {
                let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
                    kube::Api::namespaced(self.target.client.clone(), ns);
                let list = pods
                    .list(&kube::api::ListParams::default().labels(selector))
                    .await
                    .map_err(|e| ClusterError::from_kube(&e, self.target).to_string())?;
                for pod in list.items {
                    let name = pod.metadata.name.unwrap_or_default();
                    pods.delete(&name, &Default::default())
                        .await
                        .map_err(|e| ClusterError::from_kube(&e, self.target).to_string())?;
                    ui.ok(&format!("pod/{name} deleted"));
                }
            }
            Action::Load {
                concurrency,
                seconds,
                until,
                min_availability,
            } => {
                let addr = frontend::address(self.target)
                    .await
                    .map_err(|e| e.to_string())?;
                ui.line(&format!(
                    "Loading {} with {concurrency} clients for up to {seconds} s…",
                    addr.describe()
                ));
                let stop = crate::load::CancellationToken::new();
                let load = load_step::run(self.target, &addr, *concurrency, *seconds, stop.clone());
                let summary = match until {
                    None => load.await?,
                    Some(cond) => {
                        let watch = async {
                            let r =
                                wait::wait(self.target, cond, Duration::from_secs(*seconds), ui)
                                    .await;
                            stop.cancel();
                            r
                        };
                        let (summary, reached) = tokio::join!(load, watch);
                        reached.map_err(|e| e.to_string())?;
                        summary?
                    }
                };
                ui.line(summary.text.trim_end());
                if let Some(min) = min_availability {
                    let passed = summary.availability_percent >= *min;
                    let result = CheckResult {
                        lesson: lesson.number,
                        name: "availability under load".into(),
                        passed,
                        skipped: false,
                        detail: format!(
                            "{:.2} % of {} requests succeeded (needs {min} %)",
                            summary.availability_percent,
                            summary.transactions + summary.failed
                        ),
                    };
                    if passed {
                        ui.ok(&result.detail);
                    } else {
                        ui.fail(&result.detail);
                    }
                    outcome.checks.push(result);
                }
            }
            Action::PostMessage { text } => {
                let text = text.replace("{run}", &self.run_id);
                let addr =
                    frontend::post_message_retrying(self.target, &text, Duration::from_secs(60))
                        .await
                        .map_err(|e| e.to_string())?;
                ui.ok(&format!("posted {text:?} through {}", addr.describe()));
            }
            Action::ReadMessages {
                expect,
                expect_absent,
            } => {
                let want = expect.as_ref().map(|t| t.replace("{run}", &self.run_id));
                let gone = expect_absent
                    .as_ref()
                    .map(|t| t.replace("{run}", &self.run_id));
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                let (addr, page) = loop {
                    let attempt = frontend::page(self.target).await;
                    let met = match &attempt {
                        Ok((_, page)) => {
                            want.as_ref().is_none_or(|w| page.contains(w.as_str()))
                                && gone.as_ref().is_none_or(|g| !page.contains(g.as_str()))
                        }
                        Err(_) => false,
                    };
                    if met || std::time::Instant::now() > deadline {
                        break attempt.map_err(|e| e.to_string())?;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                };
                let messages = extract_messages(&page);
                ui.line(&format!(
                    "The frontend at {} shows {} message(s):",
                    addr.describe(),
                    messages.len()
                ));
                for m in messages.iter().take(10) {
                    ui.line(&format!("  • {m}"));
                }
                if let Some(want) = want {
                    if !page.contains(&want) {
                        return Err(format!("the page does not show the message {want:?}"));
                    }
                    ui.ok(&format!("{want:?} is there"));
                }
                if let Some(gone) = gone {
                    if page.contains(&gone) {
                        return Err(format!("the page still shows {gone:?}"));
                    }
                    ui.ok(&format!("{gone:?} is gone"));
                }
            }
            Action::Wait {
                until,
                timeout_seconds,
            } => {
                wait::wait(
                    self.target,
                    until,
                    Duration::from_secs(*timeout_seconds),
                    ui,
                )
                .await
                .map_err(|e| e.to_string())?;
            }
            Action::Check {
                checks,
                during_lesson_only,
            } => {
                for check in checks {
                    let result = if verify_only && *during_lesson_only {
                        CheckResult {
                            lesson: lesson.number,
                            name: check.name(),
                            passed: true,
                            skipped: true,
                            detail:
                                "only holds in the middle of the lesson; `verify --apply` runs it"
                                    .into(),
                        }
                    } else {
                        check.run(self.target, lesson.number).await
                    };
                    if self.mode == Mode::Learn {
                        if result.passed {
                            ui.ok(&format!("{}: {}", result.name, result.detail));
                        } else {
                            ui.fail(&format!("{}: {}", result.name, result.detail));
                        }
                    }
                    outcome.checks.push(result);
                }
            }
        }
        Ok(StepEnd::Done)
    }

    async fn ensure_namespace_quietly(&self) -> Result<(), String> {
        let created = ensure_namespace(&self.target.client, &self.target.namespace)
            .await
            .map_err(|e| ClusterError::from_kube(&e, self.target).to_string())?;
        if created {
            self.ui.ok(&format!(
                "namespace/{} created first (labelled app.kubernetes.io/managed-by=hk8s)",
                self.target.namespace
            ));
        }
        Ok(())
    }

    /// The kubectl command that does what the action does.
    pub fn kubectl_for(&self, action: &Action) -> Option<String> {
        let ns = &self.target.namespace;
        Some(match action {
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
                    text.replace("{run}", &self.run_id)
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
}

enum StepEnd {
    Done,
    Quit,
}

/// Light Markdown rendering for the terminal: `code` in cyan, **bold** in bold.
pub fn render_prose(text: &str, ui: &Ui) -> String {
    let mut out = String::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            out.push_str(&format!("    {}\n", ui.cyan(line)));
            continue;
        }
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
        out.push_str(&rendered);
        out.push('\n');
    }
    out.trim_end().to_string()
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

/// The messages listed on the frontend's page (its `<li>` items), for display.
pub fn extract_messages(page: &str) -> Vec<String> {
    page.split("<li")
        .skip(1)
        .filter_map(|chunk| {
            let body = chunk.split_once('>')?.1;
            let item = body.split("</li>").next()?;
            let (text, time) = item.split_once("</p>").unwrap_or((item, ""));
            let (text, time) = (plain_text(text), plain_text(time));
            match (text.is_empty(), time.is_empty()) {
                (true, _) => None,
                (false, true) => Some(text),
                (false, false) => Some(format!("{text} ({time})")),
            }
        })
        .collect()
}

/// Markup-free, entity-decoded text with its whitespace collapsed, as a reader sees it.
fn plain_text(html: &str) -> String {
    let text = strip_tags(html);
    let words: Vec<&str> = text.split_whitespace().collect();
    html_escape::decode_html_entities(&words.join(" ")).into_owned()
}

fn strip_tags(text: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod message_tests {
    use super::extract_messages;

    #[test]
    fn messages_read_off_the_page_keep_text_and_time_apart_and_unescaped() {
        let page = "<ol class=\"messages\"><li><p>a &lt;b&gt; &amp; c</p><time datetime=\"x\">\
                    2026-11-25 15:54:07 UTC</time></li><li><p>  two\n words </p></li></ol>";
        assert_eq!(
            extract_messages(page),
            ["a <b> & c (2026-11-25 15:54:07 UTC)", "two words"]
        );
    }
}
