//! `hk8s lesson N`: run one lesson, resuming where the learner stopped.

use crate::cluster::{self, Target};
use crate::commands::Options;
use crate::lesson::later;
use crate::lesson::model::{self, Lesson};
use crate::lesson::runner::{Mode, Runner, install_interrupt_handler};
use crate::progress::Progress;
use crate::ui::Ui;
use std::process::ExitCode;

pub(super) async fn run(
    number: u32,
    step: Option<usize>,
    options: &Options,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    let lesson = model::get(number)?;
    if let Some(step) = step
        && (step == 0 || step > lesson.steps.len())
    {
        anyhow::bail!(
            "lesson {} has steps 1 to {}; --step {step} is outside",
            lesson.number,
            lesson.steps.len()
        );
    }
    let target = cluster::connect(&options.cluster, ui).await?;
    println!("Using {}", target.describe(ui));
    install_interrupt_handler(ui.clone());
    undo_later_state(&lesson, &target, options, ui).await?;
    prepare(&lesson, &target, options, ui).await?;
    let mut progress = Progress::load()?;
    let saved = progress.lesson(&target.progress_key(), lesson.number);
    let start = match step {
        Some(step) => step,
        None if !saved.completed && saved.steps_done > 0 => saved.steps_done + 1,
        None => 1,
    };
    let resumed = (start > 1).then(|| saved.run.clone()).flatten();
    let runner = Runner::new(&target, ui, options.registry.clone(), Mode::Learn).resuming(resumed);
    let outcome = runner.run(&lesson, start, Some(&mut progress)).await?;
    let failed = outcome.failed_step.is_some() || outcome.checks.iter().any(|c| !c.passed);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Sets up the state of the lessons this one builds on when their checks fail
/// (e.g. `hk8s lesson 3` on a fresh cluster first creates lesson 2's services).
async fn prepare(
    lesson: &Lesson,
    target: &Target,
    options: &Options,
    ui: &Ui,
) -> anyhow::Result<()> {
    let mut quiet = ui.clone();
    quiet.quiet = true;
    for number in &lesson.requires {
        let required = model::get(*number)?;
        let runner = Runner::new(target, &quiet, options.registry.clone(), Mode::VerifyOnly);
        let checks = runner.run(&required, 1, None).await?.checks;
        let Some(missing) = checks.iter().find(|c| !c.passed) else {
            continue;
        };
        ui.warn(&format!(
            "Lesson {} builds on lesson {} ({}), which is not in place: {}: {}",
            lesson.number, required.number, required.title, missing.name, missing.detail
        ));
        let question = format!(
            "Run lesson {}'s steps now, without the explanations?",
            required.number
        );
        if !ui.confirm(&question, options.yes || !ui.interactive) {
            anyhow::bail!(
                "lesson {} needs lesson {} first: run `hk8s lesson {}`",
                lesson.number,
                required.number,
                required.number
            );
        }
        let spinner = ui.spinner(&format!(
            "setting up lesson {}: {}",
            required.number, required.title
        ));
        let runner = Runner::new(target, &quiet, options.registry.clone(), Mode::VerifyApply);
        let outcome = runner.run(&required, 1, None).await?;
        spinner.finish_and_clear();
        if let Some(failed) = outcome.checks.iter().find(|c| !c.passed) {
            anyhow::bail!(
                "setting up lesson {} failed at {}: {}\n  Run `hk8s lesson {}` to see each step",
                required.number,
                failed.name,
                failed.detail,
                required.number
            );
        }
        ui.ok(&format!("lesson {} set up", required.number));
    }
    Ok(())
}

/// A later lesson's workload where this lesson creates one of the same name (lesson 5's
/// StatefulSet `redis` for lesson 3's Deployment): says what it is and what removing it
/// keeps, then removes it when the learner agrees (yes under --yes or without a terminal),
/// so the lesson never runs two of them behind one Service.
pub(super) async fn undo_later_state(
    lesson: &Lesson,
    target: &Target,
    options: &Options,
    ui: &Ui,
) -> anyhow::Result<()> {
    for state in later::find(lesson, target, options.registry.as_deref()).await? {
        let (kind, name) = (state.ours.0.to_lowercase(), &state.ours.1);
        let theirs = format!("{}/{name}", state.theirs.to_lowercase());
        let objects: Vec<String> = state
            .objects
            .iter()
            .map(|o| {
                let kind = o.types.as_ref().map_or("", |t| t.kind.as_str());
                format!(
                    "{}/{}",
                    kind.to_lowercase(),
                    o.metadata.name.as_deref().unwrap_or("")
                )
            })
            .collect();
        ui.warn(&format!(
            "Lesson {later} replaced {kind}/{name} by {theirs} ({manifest}). Lesson {this} creates {kind}/{name}; beside {theirs}, a Service selecting their pods would send each request to one of two different servers.",
            later = state.lesson,
            manifest = state.manifest,
            this = lesson.number,
        ));
        let kept = match state.claims.as_slice() {
            [] => String::new(),
            claims => format!(
                " The volume claims stay, with the data in them ({}): when lesson {} creates {theirs} again, it picks them up.",
                claims.join(", "),
                state.lesson
            ),
        };
        ui.line(&format!(
            "  So this run first deletes {}.{kept} Until then the new {kind}/{name} starts empty.",
            objects.join(", ")
        ));
        let question = format!("Delete {} and go on?", objects.join(", "));
        if !ui.confirm(&question, options.yes || !ui.interactive) {
            anyhow::bail!(
                "lesson {} stops before changing anything: its {kind}/{name} would run beside {theirs}. `hk8s lesson {}` goes on from lesson {}'s state; `hk8s reset` starts over",
                lesson.number,
                lesson.number + 1,
                state.lesson
            );
        }
        for done in later::remove(&state, target).await? {
            ui.ok(&format!(
                "{}/{} {}",
                done.kind.to_lowercase(),
                done.name,
                done.outcome
            ));
        }
        let reopened = Progress::load()?.reopen(&target.progress_key(), state.lesson)?;
        if reopened && state.lesson != lesson.number {
            ui.line(&format!(
                "  Lesson {0} is no longer marked done: `hk8s lesson {0}` brings {theirs} back.",
                state.lesson
            ));
        }
    }
    Ok(())
}
