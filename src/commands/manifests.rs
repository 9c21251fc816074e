//! `hk8s manifests list|show|export`: the embedded manifests.

use crate::lesson::model;
use crate::manifests;
use crate::ui::Ui;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `hk8s manifests` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Job {
    /// List them with the lessons that use them.
    List,
    /// Print one (images rewritten under --registry).
    Show { name: String },
    /// Write all of them into `dir`, overwriting only with `force`.
    Export { dir: PathBuf, force: bool },
}

pub(super) fn run(job: Job, registry: Option<&str>, ui: &Ui) -> anyhow::Result<ExitCode> {
    match job {
        Job::List => {
            let lessons = model::all()?;
            for name in manifests::names() {
                let used: Vec<String> = lessons
                    .iter()
                    .filter(|l| l.steps.iter().any(|s| s.action.manifests().contains(&name)))
                    .map(|l| l.number.to_string())
                    .collect();
                println!(
                    "{name:<32} {}",
                    ui.dim(&format!("lesson {}", used.join(", ")))
                );
            }
        }
        Job::Show { name } => print!("{}", manifests::text(&name, registry)?),
        Job::Export { dir, force } => {
            let written = manifests::export(&dir, registry, force)?;
            println!("wrote {} manifests to {}", written.len(), dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
