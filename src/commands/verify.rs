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
pub struct Report {
    pub cluster: String,
    pub namespace: String,
    pub applied: bool,
    pub passed: bool,
    pub summary: Summary,
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
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
    let checks = verify(
        &target,
        &chosen,
        args.apply,
        options.registry.clone(),
        &ui,
        text,
    )
    .await?;
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
        Format::Junit => println!("{}", junit(&report, &chosen)),
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the chosen lessons' checks (after their steps with `apply`).
pub async fn verify(
    target: &Target,
    lessons: &[Lesson],
    apply: bool,
    registry: Option<String>,
    ui: &Ui,
    print: bool,
) -> anyhow::Result<Vec<CheckResult>> {
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

/// JUnit XML: one testsuite per lesson, one testcase per check.
pub fn junit(report: &Report, lessons: &[Lesson]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"hk8s verify\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
        report.checks.len(),
        report.summary.failed,
        report.summary.skipped
    ));
    for lesson in lessons {
        let cases: Vec<&CheckResult> = report
            .checks
            .iter()
            .filter(|c| c.lesson == lesson.number)
            .collect();
        out.push_str(&format!(
            "  <testsuite name=\"lesson {}: {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\">\n",
            lesson.number,
            xml_escape(&lesson.title),
            cases.len(),
            cases.iter().filter(|c| !c.passed).count(),
            cases.iter().filter(|c| c.skipped).count()
        ));
        for c in cases {
            let open = format!(
                "    <testcase classname=\"hk8s.lesson{}\" name=\"{}\"",
                lesson.number,
                xml_escape(&c.name)
            );
            if c.skipped {
                out.push_str(&format!(
                    "{open}><skipped message=\"{}\"/></testcase>\n",
                    xml_escape(&c.detail)
                ));
            } else if c.passed {
                out.push_str(&format!(
                    "{open}><system-out>{}</system-out></testcase>\n",
                    xml_escape(&c.detail)
                ));
            } else {
                out.push_str(&format!(
                    "{open}><failure message=\"{}\">{}</failure></testcase>\n",
                    xml_escape(&first_line(&c.detail)),
                    xml_escape(&c.detail)
                ));
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>");
    out
}

fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}
