//! `hk8s lessons`: the list of lessons.

use crate::lesson::model;
use crate::ui::Ui;
use std::process::ExitCode;

pub(super) fn run(ui: &Ui) -> anyhow::Result<ExitCode> {
    let lessons = model::all()?;
    println!("{}", ui.bold("Lessons (run one with `hk8s lesson N`):"));
    for l in &lessons {
        let manifests: Vec<&str> = {
            let mut m: Vec<&str> = l.steps.iter().flat_map(|s| s.action.manifests()).collect();
            m.sort_unstable();
            m.dedup();
            m.iter().map(|n| n.split('-').next().unwrap_or(n)).collect()
        };
        let used = if manifests.is_empty() {
            String::new()
        } else {
            format!(" [{}]", manifests.join(","))
        };
        println!(
            "  {:>2}  {} {}{}",
            l.number,
            ui.cyan(&format!("{:<13}", l.slug)),
            l.title,
            ui.dim(&used)
        );
        let summary = format!("      {}", ui.dim(&l.summary));
        println!("{}", crate::ui::wrap(&summary, 6, ui.width()));
    }
    Ok(ExitCode::SUCCESS)
}
