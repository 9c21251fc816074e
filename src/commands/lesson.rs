//! `hk8s lesson N`: run one lesson, resuming where the learner stopped.

use crate::cli::{GlobalArgs, LessonArgs};
use crate::cluster;
use crate::lesson::model;
use crate::lesson::runner::{Mode, Runner, install_interrupt_handler};
use crate::progress::Progress;
use crate::ui::Ui;
use std::process::ExitCode;

pub async fn run(args: LessonArgs, global: &GlobalArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let lesson = model::get(args.number)?;
    if let Some(step) = args.step
        && (step == 0 || step > lesson.steps.len())
    {
        anyhow::bail!(
            "lesson {} has steps 1 to {}; --step {step} is outside",
            lesson.number,
            lesson.steps.len()
        );
    }
    let target = cluster::connect(global, ui).await?;
    println!("Using {}", target.describe(ui));
    install_interrupt_handler(ui.clone());
    let mut progress = Progress::load()?;
    let saved = progress.lesson(&target.progress_key(), lesson.number);
    let start = match args.step {
        Some(step) => step,
        None if !saved.completed && saved.steps_done > 0 => saved.steps_done + 1,
        None => 1,
    };
    let runner = Runner::new(&target, ui, global.registry.clone(), Mode::Learn);
    let outcome = runner.run(&lesson, start, Some(&mut progress)).await?;
    let failed = outcome.failed_step.is_some() || outcome.checks.iter().any(|c| !c.passed);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
