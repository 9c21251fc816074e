//! Runs a lesson: for each step, the prose, the kubectl equivalent, a prompt (interactive
//! only), then the step's executor. Progress is saved after every step; Ctrl-C stops between
//! two consistent states and says how to resume.

use super::model::{self, Action, Lesson, Step};
use super::present;
use super::steps::{self, StepContext, StepError};
use crate::checks::CheckResult;
use crate::cluster::Target;
use crate::progress::{Progress, ProgressError};
use crate::ui::{Answer, Ui};
use std::sync::{Mutex, Once};

/// How the lesson runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A learner runs it: prose, prompts (when interactive), progress saved.
    Learn,
    /// `verify --apply`: every action and check, no prompts, no progress.
    VerifyApply,
    /// `verify`: only the checks, on the cluster as it is.
    VerifyOnly,
}

impl Mode {
    /// Whether a step with this action runs in this mode.
    fn runs(self, action: &Action) -> bool {
        let check = matches!(action, Action::Check { .. });
        match self {
            Mode::Learn => true,
            Mode::VerifyApply => check || action.changes_cluster(),
            Mode::VerifyOnly => check,
        }
    }
}

/// Shared settings of a run.
pub(crate) struct Runner<'a> {
    target: &'a Target,
    ui: &'a Ui,
    registry: Option<String>,
    mode: Mode,
    run_id: String,
    /// When the run began (whole seconds, as event times are kept), for replaying events.
    started: jiff::Timestamp,
    /// Labelled load runs so far, which a later load run is compared with.
    loads: Mutex<Vec<steps::LoadSummary>>,
}

/// What a lesson run ended with.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub checks: Vec<CheckResult>,
    /// A step failed; the lesson stopped there.
    pub failed_step: Option<(usize, StepError)>,
}

/// Why a run could not go on (a failed step is an [`Outcome`], not this).
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error(transparent)]
    Progress(#[from] ProgressError),
}

/// How a step ended, when it did not fail.
enum StepEnd {
    Done,
    /// The learner answered "skip".
    Skipped,
    Quit,
}

/// Which lesson and step is running, for the Ctrl-C message.
static CURRENT: Mutex<Option<(u32, usize)>> = Mutex::new(None);

fn set_current(at: Option<(u32, usize)>) {
    if let Ok(mut current) = CURRENT.lock() {
        *current = at;
    }
}

/// Installs the Ctrl-C handler: says where the learner stopped and how to resume, then exits.
pub(crate) fn install_interrupt_handler(ui: Ui) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            exit_interrupted(&ui);
        }
    });
}

/// Says where Ctrl-C stopped the lesson and exits with 130. The signal handler and a prompt
/// may both see the same Ctrl-C: the first caller speaks, a second waits for the exit.
fn exit_interrupted(ui: &Ui) -> ! {
    static EXIT: Once = Once::new();
    EXIT.call_once(|| {
        let at = CURRENT.lock().ok().and_then(|c| *c);
        present::interrupted(ui, at);
        std::process::exit(130);
    });
    loop {
        std::thread::park();
    }
}

impl<'a> Runner<'a> {
    pub(crate) fn new(
        target: &'a Target,
        ui: &'a Ui,
        registry: Option<String>,
        mode: Mode,
    ) -> Self {
        Self {
            target,
            ui,
            registry,
            mode,
            run_id: jiff::Timestamp::now().as_millisecond().to_string(),
            started: jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
                .unwrap_or_else(|_| jiff::Timestamp::now()),
            loads: Mutex::new(Vec::new()),
        }
    }

    /// Continues the run that did a lesson's saved steps (its id, when saved), so that
    /// `{run}` names the messages those steps wrote.
    pub(crate) fn resuming(mut self, run_id: Option<String>) -> Self {
        if let Some(id) = run_id {
            self.run_id = id;
        }
        self
    }

    /// Runs the lesson from `start` (1-based step number).
    pub(crate) async fn run(
        &self,
        lesson: &Lesson,
        start: usize,
        mut progress: Option<&mut Progress>,
    ) -> Result<Outcome, RunError> {
        let learn = self.mode == Mode::Learn;
        let total = lesson.steps.len();
        let mut outcome = Outcome::default();
        // The first skipped step that does something: progress is not saved past it.
        let mut skipped: Option<usize> = None;
        if learn {
            present::lesson_intro(self.ui, lesson, start);
        }
        for (index, step) in lesson
            .steps
            .iter()
            .enumerate()
            .skip(start.saturating_sub(1))
        {
            let number = index + 1;
            set_current(Some((lesson.number, number)));
            let result = match self.step(lesson, number, step, &mut outcome).await {
                Err(err) if learn => self.offer_redo(lesson, index, err, &mut outcome).await,
                other => other,
            };
            match result {
                Ok(StepEnd::Done) => {}
                Ok(StepEnd::Skipped) => {
                    if step.action.changes_cluster() || matches!(step.action, Action::Check { .. })
                    {
                        skipped.get_or_insert(number);
                    }
                }
                Ok(StepEnd::Quit) => {
                    present::stopped(self.ui, lesson.number, number);
                    return Ok(outcome);
                }
                Err(err) => {
                    if learn {
                        let from = lesson.producer(index).map_or(number, |p| p + 1);
                        present::step_failed(self.ui, lesson.number, number, from, &err);
                    }
                    outcome.checks.push(CheckResult {
                        lesson: lesson.number,
                        name: format!("step {number}: {}", step.title),
                        passed: false,
                        skipped: false,
                        detail: err.to_string(),
                    });
                    outcome.failed_step = Some((number, err));
                    return Ok(outcome);
                }
            }
            if let (true, Some(p), None) = (learn, progress.as_deref_mut(), skipped) {
                p.record(
                    &self.target.progress_key(),
                    lesson.number,
                    number,
                    total,
                    &self.run_id,
                )?;
            }
        }
        set_current(None);
        if learn {
            let failed = outcome.checks.iter().filter(|c| !c.passed).count();
            let next = model::get(lesson.number + 1).ok();
            present::lesson_done(self.ui, lesson, failed, skipped, next.as_ref());
        }
        Ok(outcome)
    }

    /// One step: presented and asked about when learning, then executed.
    async fn step(
        &self,
        lesson: &Lesson,
        number: usize,
        step: &Step,
        outcome: &mut Outcome,
    ) -> Result<StepEnd, StepError> {
        if !self.mode.runs(&step.action) {
            return Ok(StepEnd::Done);
        }
        if self.mode == Mode::Learn {
            let kubectl = step
                .kubectl
                .clone()
                .or_else(|| step.action.kubectl(&self.target.namespace, &self.run_id));
            present::step_intro(
                self.ui,
                number,
                lesson.steps.len(),
                step,
                kubectl.as_deref(),
            );
            match self.ask(present::prompt(&step.action)).await {
                Answer::Run => {}
                Answer::Skip => {
                    present::skipped(self.ui);
                    return Ok(StepEnd::Skipped);
                }
                Answer::Quit => return Ok(StepEnd::Quit),
                Answer::Interrupted => exit_interrupted(self.ui),
            }
        }
        self.execute(lesson, step, outcome).await?;
        Ok(StepEnd::Done)
    }

    /// Runs a step's action and shows what it did.
    async fn execute(
        &self,
        lesson: &Lesson,
        step: &Step,
        outcome: &mut Outcome,
    ) -> Result<(), StepError> {
        let ctx = StepContext {
            target: self.target,
            ui: self.ui,
            registry: self.registry.as_deref(),
            mode: self.mode,
            run_id: &self.run_id,
            started: self.started,
            loads: &self.loads,
            lesson: lesson.number,
        };
        let done = steps::execute(&ctx, &step.action).await?;
        present::outcome(self.ui, self.mode, &done);
        outcome.checks.extend_from_slice(done.checks());
        Ok(())
    }

    /// Step `index` found an earlier step's result missing (a message it wrote is not on
    /// the page): says so and offers to redo that step, then runs this one again. Yes
    /// without a terminal or with --yes, as every step runs then.
    async fn offer_redo(
        &self,
        lesson: &Lesson,
        index: usize,
        err: StepError,
        outcome: &mut Outcome,
    ) -> Result<StepEnd, StepError> {
        let producer = match lesson.producer(index) {
            Some(p) if matches!(err, StepError::MessageMissing(_)) => p,
            _ => return Err(err),
        };
        let earlier = &lesson.steps[producer];
        present::result_missing(self.ui, index + 1, producer + 1, &earlier.title, &err);
        let question = format!(
            "Redo step {} ({}) now, then step {} again?",
            producer + 1,
            earlier.title,
            index + 1
        );
        let ui = self.ui.clone();
        let yes = !self.ui.interactive;
        let redo = tokio::task::spawn_blocking(move || ui.confirm(&question, yes))
            .await
            .unwrap_or(false);
        if !redo {
            return Err(err);
        }
        present::redoing(self.ui, producer + 1, &earlier.title);
        self.execute(lesson, earlier, outcome).await?;
        present::retrying(self.ui, index + 1, &lesson.steps[index].title);
        self.execute(lesson, &lesson.steps[index], outcome).await?;
        Ok(StepEnd::Done)
    }

    /// The step prompt, read off the async runtime's threads.
    async fn ask(&self, label: String) -> Answer {
        let ui = self.ui.clone();
        tokio::task::spawn_blocking(move || ui.ask_step(&label))
            .await
            .unwrap_or(Answer::Quit)
    }
}
