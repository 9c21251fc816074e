//! One module per subcommand.

pub mod doctor;
pub mod home;
pub mod lesson;
pub mod lessons;
pub mod manifests;
pub mod open;
pub mod reset;
pub mod sandbox;
pub mod verify;

use crate::cli::{Cli, Command};
use crate::ui::Ui;
use clap::CommandFactory;
use std::process::ExitCode;

/// Runs the parsed command line; the exit code is the command's verdict.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ui = Ui::new(cli.global.no_color, cli.global.yes, cli.global.verbose);
    let global = &cli.global;
    match cli.command {
        None => home::run(global, &ui).await,
        Some(Command::Lessons) => lessons::run(&ui),
        Some(Command::Lesson(args)) => lesson::run(args, global, &ui).await,
        Some(Command::Verify(args)) => verify::run(args, global, ui).await,
        Some(Command::Reset) => reset::run(global, &ui).await,
        Some(Command::Manifests(cmd)) => manifests::run(cmd, global, &ui),
        Some(Command::Open(args)) => open::run(args, global, &ui).await,
        Some(Command::Doctor) => doctor::run(global, &ui).await,
        Some(Command::Completions(args)) => {
            let mut cmd = Cli::command();
            clap_complete::generate(args.shell, &mut cmd, "hk8s", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Sandbox(args)) => sandbox::run(args, global).await,
        Some(Command::Load(args)) => crate::load::run_cli(args).await,
    }
}
