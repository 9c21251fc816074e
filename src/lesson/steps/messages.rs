//! `post-message` and `read-messages`: through the frontend, as a visitor.

use super::{StepContext, StepError, StepOutcome};
use crate::frontend;
use std::time::{Duration, Instant};

/// How long the frontend may take to answer (or to show what is expected).
const PATIENCE: Duration = Duration::from_secs(60);

/// How long a page that answers may go on without an expected message before it counts as
/// missing: a stored message shows on the next read, so waiting longer only delays the news.
const ANSWERED_PATIENCE: Duration = Duration::from_secs(10);

/// Posts `text` (with `{run}` replaced) through the frontend's form.
pub(super) async fn post(ctx: &StepContext<'_>, text: &str) -> Result<StepOutcome, StepError> {
    let text = text.replace("{run}", ctx.run_id);
    let address = frontend::post_message_retrying(ctx.target, &text, PATIENCE).await?;
    Ok(StepOutcome::Posted { text, address })
}

/// Reads the frontend's page until `present` shows and `absent` does not (or
/// [`PATIENCE`] runs out, which fails the step).
pub(super) async fn read(
    ctx: &StepContext<'_>,
    present: Option<&str>,
    absent: Option<&str>,
) -> Result<StepOutcome, StepError> {
    let present = present.map(|t| t.replace("{run}", ctx.run_id));
    let absent = absent.map(|t| t.replace("{run}", ctx.run_id));
    let met = |page: &str| {
        present.as_deref().is_none_or(|w| page.contains(w))
            && absent.as_deref().is_none_or(|g| !page.contains(g))
    };
    let deadline = Instant::now() + PATIENCE;
    let mut answered: Option<Instant> = None;
    let spinner = ctx.ui.spinner("reading the frontend's page");
    let (address, page) = loop {
        let attempt = frontend::page(ctx.target).await;
        let done = attempt.as_ref().is_ok_and(|(_, page)| met(page));
        let lacking = attempt.as_ref().is_ok_and(|(_, page)| {
            present.as_deref().is_some_and(|w| !page.contains(w))
                && absent.as_deref().is_none_or(|g| !page.contains(g))
        });
        answered = lacking.then(|| answered.unwrap_or_else(Instant::now));
        let given_up = answered.is_some_and(|since| since.elapsed() > ANSWERED_PATIENCE);
        if done || given_up || Instant::now() > deadline {
            spinner.finish_and_clear();
            break attempt?;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    crate::lesson::present::messages_shown(ctx.ui, &address, &crate::html::list_items(&page));
    if let Some(want) = &present
        && !page.contains(want.as_str())
    {
        return Err(StepError::MessageMissing(want.clone()));
    }
    if let Some(gone) = &absent
        && page.contains(gone.as_str())
    {
        return Err(StepError::MessageStillShown(gone.clone()));
    }
    Ok(StepOutcome::Messages { present, absent })
}
