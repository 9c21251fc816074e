//! One module per subcommand, each working from plain settings ([`Options`]) and its
//! [`Job`]; the command line that produces them lives in `cli`.

mod doctor;
mod home;
pub(crate) mod images;
mod junit;
mod lesson;
mod lessons;
pub(crate) mod manifests;
mod open;
mod reset;
pub(crate) mod sandbox;
pub(crate) mod verify;

use crate::cluster::ClusterOptions;
use crate::load::LoadJob;
use crate::ui::Ui;
use std::path::PathBuf;
use std::process::ExitCode;

/// Settings every command shares.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub cluster: ClusterOptions,
    /// Registry prefix for the app's images (`--registry`).
    pub registry: Option<String>,
    /// Answer yes to every prompt (`--yes`).
    pub yes: bool,
}

/// What to do.
#[derive(Debug)]
pub(crate) enum Job {
    /// Progress over the lessons and what to do next (`hk8s` alone).
    Home,
    Lessons,
    Lesson {
        number: u32,
        step: Option<usize>,
    },
    Verify(verify::Request),
    Reset,
    Manifests(manifests::Job),
    Open {
        port: u16,
        print: bool,
    },
    Doctor,
    /// Print a text made while parsing (a completion script).
    Print(String),
    Sandbox {
        state_dir: Option<PathBuf>,
        action: sandbox::Action,
    },
    Load(Box<LoadJob>),
    Images(images::Job),
}

/// Runs one job; the exit code is its verdict.
impl Job {
    /// Whether this job serves the sandbox in this process (`hk8s sandbox up` in the
    /// foreground, which `up --detach` also starts): it must enter its namespaces before
    /// the runtime's threads exist.
    pub(crate) fn serves_the_sandbox(&self) -> bool {
        matches!(
            self,
            Job::Sandbox {
                action: sandbox::Action::Up { detach: false, .. },
                ..
            }
        )
    }
}

pub(crate) async fn run(job: Job, options: &Options, ui: Ui) -> anyhow::Result<ExitCode> {
    match job {
        Job::Home => home::run(&options.cluster, &ui),
        Job::Lessons => lessons::run(&ui),
        Job::Lesson { number, step } => lesson::run(number, step, options, &ui).await,
        Job::Verify(request) => verify::run(request, options, ui).await,
        Job::Reset => reset::run(options, &ui).await,
        Job::Manifests(job) => manifests::run(job, options.registry.as_deref(), &ui),
        Job::Open { port, print } => open::run(port, print, &options.cluster, &ui).await,
        Job::Doctor => doctor::run(&options.cluster, &ui).await,
        Job::Print(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Job::Sandbox { state_dir, action } => sandbox::run(state_dir, action).await,
        Job::Load(job) => crate::load::run_cli(*job).await,
        Job::Images(job) => images::run(job, options.cluster.context.as_deref(), &ui).await,
    }
}
