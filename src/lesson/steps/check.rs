//! `check`: the lesson's checks against the cluster as it is.

use super::{StepContext, StepOutcome};
use crate::checks::{CheckResult, CheckSpec};
use crate::lesson::runner::Mode;

/// Runs each check; under plain `verify`, checks that only hold mid-lesson are skipped.
pub(super) async fn run(
    ctx: &StepContext<'_>,
    checks: &[CheckSpec],
    during_lesson_only: bool,
) -> StepOutcome {
    let mut results = Vec::new();
    for check in checks {
        let result = if ctx.mode == Mode::VerifyOnly && during_lesson_only {
            CheckResult {
                lesson: ctx.lesson,
                name: check.name(),
                passed: true,
                skipped: true,
                detail: "only holds in the middle of the lesson; `verify --apply` runs it".into(),
            }
        } else {
            check.run(ctx.target, ctx.lesson).await
        };
        results.push(result);
    }
    StepOutcome::Checked(results)
}
