//! `hk8s lesson N`: run one lesson, resuming where the learner stopped.

use crate::cluster::{self, Target};
use crate::commands::Options;
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
    prepare(&lesson, &target, options, ui).await?;
    let mut progress = Progress::load()?;
    let saved = progress.lesson(&target.progress_key(), lesson.number);
    let start = match step {
        Some(step) => step,
        None if !saved.completed && saved.steps_done > 0 => saved.steps_done + 1,
        None => 1,
    };
    let runner = Runner::new(&target, ui, options.registry.clone(), Mode::Learn);
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
