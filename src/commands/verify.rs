//! `hk8s verify`: the lessons' checks, one line each; JSON and JUnit for CI; exit 0/1.

use crate::checks::CheckResult;
use crate::cluster::{self, Target};
use crate::commands::Options;
use crate::lesson::model::{self, Lesson};
use crate::lesson::runner::{Mode, Runner, install_interrupt_handler};
use crate::progress::Progress;
use crate::ui::Ui;
use serde::Serialize;
use std::process::ExitCode;

/// The whole verdict, as JSON.
#[derive(Debug, Serialize)]
pub(super) struct Report {
    pub cluster: String,
    pub namespace: String,
    pub applied: bool,
    pub passed: bool,
    pub summary: Summary,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Serialize)]
pub(super) struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// What `hk8s verify` checks, and how it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// Lessons to verify; none means those completed so far (or all with `all`).
    pub lessons: Vec<u32>,
    pub all: bool,
    /// Run each lesson's steps before its checks.
    pub apply: bool,
    pub format: Format,
}

/// The report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// One line a check, for people.
    Text,
    Json,
    Junit,
}

pub(super) async fn run(args: Request, options: &Options, mut ui: Ui) -> anyhow::Result<ExitCode> {
    let all = model::all()?;
    for n in &args.lessons {
        model::get(*n)?;
    }
    ui.interactive = false;
    let target = cluster::connect(&options.cluster, &ui).await?;
    let chosen: Vec<Lesson> = if args.all {
        all.clone()
    } else if !args.lessons.is_empty() {
        all.iter()
            .filter(|l| args.lessons.contains(&l.number))
            .cloned()
            .collect()
    } else {
        let done = Progress::load()?.completed(&target.progress_key());
        if done.is_empty() {
            all.iter().filter(|l| l.number <= 1).cloned().collect()
        } else {
            all.iter()
                .filter(|l| done.contains(&l.number))
                .cloned()
                .collect()
        }
    };
    let text = args.format == Format::Text;
    let header = format!(
        "Verifying lesson(s) {} on {}{}",
        chosen
            .iter()
            .map(|l| l.number.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        target.describe(&ui),
        if args.apply {
            " (running their steps first)"
        } else {
            ""
        }
    );
    if text {
        println!("{header}");
    } else {
        eprintln!("{header}");
    }
    install_interrupt_handler(ui.clone());
    let checks = verify(&target, &chosen, args.apply, options, &ui, text).await?;
    let summary = Summary {
        passed: checks.iter().filter(|c| c.passed && !c.skipped).count(),
        failed: checks.iter().filter(|c| !c.passed).count(),
        skipped: checks.iter().filter(|c| c.skipped).count(),
    };
    let report = Report {
        cluster: target.context.clone(),
        namespace: target.namespace.clone(),
        applied: args.apply,
        passed: summary.failed == 0,
        summary,
        checks,
    };
    match args.format {
        Format::Text => {
            println!(
                "{} passed, {} failed, {} skipped",
                report.summary.passed, report.summary.failed, report.summary.skipped
            );
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Junit => println!("{}", super::junit::document(&report, &chosen)),
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the chosen lessons' checks (after their steps with `apply`).
async fn verify(
    target: &Target,
    lessons: &[Lesson],
    apply: bool,
    options: &Options,
    ui: &Ui,
    print: bool,
) -> anyhow::Result<Vec<CheckResult>> {
    let registry = options.registry.clone();
    let mut quiet = ui.clone();
    quiet.quiet = true;
    let reachable = cluster::ensure_reachable(target).await;
    let mut results = Vec::new();
    let mode = if apply {
        Mode::VerifyApply
    } else {
        Mode::VerifyOnly
    };
    for lesson in lessons {
        let checks = match &reachable {
            Err(err) => {
                let mut checks = vec![CheckResult {
                    lesson: lesson.number,
                    name: "API server reachable".into(),
                    passed: false,
                    skipped: false,
                    detail: first_line(&err.to_string()),
                }];
                if lesson.number == 0 {
                    checks[0].detail = err.to_string().replace('\n', " ");
                }
                checks
            }
            Ok(_) => {
                if apply {
                    let speaking = if print { ui } else { &quiet };
                    super::lesson::undo_later_state(lesson, target, options, speaking).await?;
                }
                let runner = Runner::new(target, &quiet, registry.clone(), mode);
                runner.run(lesson, 1, None).await?.checks
            }
        };
        for c in &checks {
            if print {
                let line = format!("lesson {} · {}: {}", c.lesson, c.name, c.detail);
                if c.skipped {
                    println!("{} {line}", ui.dim("-"));
                } else if c.passed {
                    println!("{} {line}", ui.green("PASS"));
                } else {
                    println!("{} {line}", ui.red("FAIL"));
                }
            }
        }
        results.extend(checks);
    }
    Ok(results)
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}
