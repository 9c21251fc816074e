//! `hk8s manifests list|show|export`: the embedded manifests.

use crate::cli::{GlobalArgs, ManifestsCommand};
use crate::lesson::model;
use crate::manifests;
use crate::ui::Ui;
use std::process::ExitCode;

pub fn run(cmd: ManifestsCommand, global: &GlobalArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let registry = global.registry.as_deref();
    match cmd {
        ManifestsCommand::List => {
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
        ManifestsCommand::Show { name } => print!("{}", manifests::text(&name, registry)?),
        ManifestsCommand::Export { dir, force } => {
            let written = manifests::export(&dir, registry, force)?;
            println!("wrote {} manifests to {}", written.len(), dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
