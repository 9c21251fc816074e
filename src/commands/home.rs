//! `hk8s` alone: progress over the lessons and what to do next.

use crate::cluster::{ClusterOptions, identify};
use crate::lesson::model;
use crate::progress::Progress;
use crate::ui::Ui;
use std::process::ExitCode;

pub(super) fn run(cluster: &ClusterOptions, ui: &Ui) -> anyhow::Result<ExitCode> {
    let lessons = model::all()?;
    println!("{}", ui.bold("hk8s — learn Kubernetes hands-on"));
    let Some(identity) = identify(cluster) else {
        println!(
            "No cluster configured. Start with `hk8s lesson 0`, or use the built-in one: `hk8s lesson 0 --sandbox`."
        );
        return Ok(ExitCode::SUCCESS);
    };
    let key = identity.progress_key(&cluster.namespace);
    let progress = Progress::load()?;
    let completed = progress.completed(&key);
    println!(
        "cluster {}, namespace {}",
        ui.bold(&identity.context),
        ui.bold(&cluster.namespace)
    );
    println!("progress {}", ui.bar(completed.len(), lessons.len()));
    for l in &lessons {
        let p = progress.lesson(&key, l.number);
        let mark = if p.completed {
            ui.green("✔")
        } else if p.steps_done > 0 {
            ui.yellow("…")
        } else {
            ui.dim("·")
        };
        let detail = if !p.completed && p.steps_done > 0 {
            ui.dim(&format!(" ({}/{} steps)", p.steps_done, l.steps.len()))
        } else {
            String::new()
        };
        println!("  {mark} {} {}{detail}", l.number, l.title);
    }
    let next = lessons
        .iter()
        .find(|l| !progress.lesson(&key, l.number).completed);
    let flags = if identity.sandbox { " --sandbox" } else { "" };
    match next {
        Some(l) => {
            let p = progress.lesson(&key, l.number);
            if p.steps_done > 0 {
                println!(
                    "Next: `hk8s lesson {}{flags}` resumes {} at step {}",
                    l.number,
                    l.title,
                    p.steps_done + 1
                );
            } else {
                println!("Next: `hk8s lesson {}{flags}` — {}", l.number, l.title);
            }
        }
        None => println!("All lessons done. `hk8s verify --all{flags}` checks them again."),
    }
    Ok(ExitCode::SUCCESS)
}
