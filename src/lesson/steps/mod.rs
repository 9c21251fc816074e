//! One executor per step action. Each does the step's work and returns a typed
//! [`StepOutcome`] or [`StepError`]; showing them to the learner is `present`'s job.

mod check;
mod cluster;
mod load;
mod manifests;
mod messages;

use super::model::Action;
use super::runner::Mode;
use crate::apply::{Applied, ApplyError};
use crate::checks::CheckResult;
use crate::cluster::{ClusterError, Target};
use crate::frontend::{Address, FrontendError};
use crate::load::LoadError;
use crate::manifests::ManifestError;
use crate::ui::Ui;
use crate::wait::{self, WaitError};
use std::time::Duration;

pub(crate) use load::{LoadSummary, comparison as load_comparison};

/// What every executor works with.
pub(crate) struct StepContext<'a> {
    pub target: &'a Target,
    /// For live feedback only: spinners, events, the notes in `present`.
    pub ui: &'a Ui,
    pub registry: Option<&'a str>,
    pub mode: Mode,
    /// Replaces `{run}` in message texts, so each run's messages are its own.
    pub run_id: &'a str,
    /// When the lesson run began: a wait replays the events since then.
    pub started: jiff::Timestamp,
    /// The labelled load runs of this lesson run so far, for comparisons.
    pub loads: &'a std::sync::Mutex<Vec<LoadSummary>>,
    pub lesson: u32,
}

/// What a step did.
#[derive(Debug)]
pub(crate) enum StepOutcome {
    /// Prose only, or a wait (whose spinner already said it is over).
    Nothing,
    Cluster {
        version: String,
        sandbox: bool,
    },
    Manifest {
        name: String,
        text: String,
        highlight: Vec<String>,
    },
    /// The fields where manifest `name` differs from `base`.
    ManifestChanges {
        name: String,
        base: String,
        changes: Vec<crate::manifests::Change>,
    },
    Namespace {
        name: String,
        created: bool,
    },
    Applied(Vec<Applied>),
    /// An apply the lesson expected the cluster to refuse, refused.
    Refused(ApplyError),
    Deleted(Vec<Applied>),
    PodsDeleted(Vec<String>),
    Loaded {
        summary: LoadSummary,
        /// The lesson's earlier labelled run, to compare with side by side.
        earlier: Option<LoadSummary>,
        availability: Option<CheckResult>,
    },
    Posted {
        text: String,
        address: Address,
    },
    /// The page (already listed) shows `present` and not `absent`.
    Messages {
        present: Option<String>,
        absent: Option<String>,
    },
    Checked(Vec<CheckResult>),
}

impl StepOutcome {
    /// The check results the step produced, for the lesson's verdict.
    pub(crate) fn checks(&self) -> &[CheckResult] {
        match self {
            StepOutcome::Checked(checks) => checks,
            StepOutcome::Loaded {
                availability: Some(check),
                ..
            } => std::slice::from_ref(check),
            _ => &[],
        }
    }
}

/// Why a step failed; the lesson stops there.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StepError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("the cluster accepted a manifest this step expected it to reject")]
    AcceptedUnexpectedly,
    #[error(transparent)]
    Frontend(#[from] FrontendError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error("the page does not show the message {0:?}")]
    MessageMissing(String),
    #[error("the page still shows {0:?}")]
    MessageStillShown(String),
}

/// Runs one action.
pub(crate) async fn execute(
    ctx: &StepContext<'_>,
    action: &Action,
) -> Result<StepOutcome, StepError> {
    match action {
        Action::Explain => Ok(StepOutcome::Nothing),
        Action::ShowCluster => cluster::show(ctx).await,
        Action::ShowManifest {
            manifest,
            highlight,
            changes_from: None,
        } => manifests::show(ctx, manifest, highlight),
        Action::ShowManifest {
            manifest,
            changes_from: Some(base),
            ..
        } => manifests::show_changes(ctx, manifest, base),
        Action::CreateNamespace => cluster::create_namespace(ctx).await,
        Action::Apply {
            manifests: names,
            inline,
            expect_error,
        } => manifests::apply(ctx, names, inline.as_deref(), *expect_error).await,
        Action::Delete { manifests: names } => manifests::delete(ctx, names).await,
        Action::DeletePods { selector } => cluster::delete_pods(ctx, selector).await,
        Action::Load {
            concurrency,
            seconds,
            until,
            min_availability,
            timeout_seconds,
            label,
        } => {
            let plan = load::Plan {
                concurrency: *concurrency,
                seconds: *seconds,
                timeout: timeout_seconds.map(Duration::from_secs),
                label: label.clone(),
            };
            load::run(ctx, &plan, until.as_ref(), *min_availability).await
        }
        Action::PostMessage { text } => messages::post(ctx, text).await,
        Action::ReadMessages {
            expect,
            expect_absent,
        } => messages::read(ctx, expect.as_deref(), expect_absent.as_deref()).await,
        Action::Wait {
            until,
            timeout_seconds,
        } => {
            wait::watch(
                ctx.target,
                until,
                Duration::from_secs(*timeout_seconds),
                ctx.ui,
                (ctx.mode == Mode::Learn).then_some(ctx.started),
            )
            .await?;
            Ok(StepOutcome::Nothing)
        }
        Action::Check {
            checks,
            during_lesson_only,
        } => Ok(check::run(ctx, checks, *during_lesson_only).await),
    }
}
