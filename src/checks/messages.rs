//! The checks that go through the frontend as a visitor: a message posted is read back,
//! also after the pods behind it were recreated.

use super::CheckError;
use crate::cluster::Target;
use crate::frontend;
use crate::judge::Verdict;
use crate::wait::{self, WaitFor};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use std::time::Duration;

/// How long the frontend may answer 5xx or not at all before a post fails.
const POST_PATIENCE: Duration = Duration::from_secs(60);

/// A message text no earlier run used, marked on the page as hk8s's own.
fn unique_message(kind: &str) -> String {
    let now = jiff::Timestamp::now();
    format!(
        "hk8s check: {kind} test message {}, safe to ignore",
        now.as_millisecond()
    )
}

/// Posts a message through the frontend and reads the page back.
pub(super) async fn round_trip(target: &Target) -> Result<Verdict, CheckError> {
    let text = unique_message("round-trip");
    let addr = frontend::post_message_retrying(target, &text, POST_PATIENCE).await?;
    let (_, page) = frontend::page(target).await?;
    Ok(if page.contains(&text) {
        Verdict::pass(format!(
            "posted {text:?} to {} and read it back",
            addr.describe()
        ))
    } else {
        Verdict::fail(format!(
            "posted {text:?} to {} but the page does not show it",
            addr.describe()
        ))
    })
}

/// Posts a message, deletes the pods matching `selector`, waits for their replacements and
/// reads the page until the message shows (or 30 tries have passed).
pub(super) async fn survives_pod_deletion(
    target: &Target,
    selector: &str,
) -> Result<Verdict, CheckError> {
    let text = unique_message("persistence");
    frontend::post_message_retrying(target, &text, POST_PATIENCE).await?;
    eprintln!(
        "Deleting the pods {selector} in namespace {} to check that a message survives; their controller recreates them.",
        target.namespace
    );
    Api::<Pod>::namespaced(target.client.clone(), &target.namespace)
        .delete_collection(&Default::default(), &ListParams::default().labels(selector))
        .await?;
    let quiet = crate::ui::Ui {
        color: false,
        interactive: false,
        quiet: true,
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait::wait(
        target,
        &WaitFor::PodsReady(selector.to_string()),
        Duration::from_secs(120),
        &quiet,
    )
    .await?;
    let mut last = String::new();
    for _ in 0..30 {
        match frontend::page(target).await {
            Ok((_, page)) if page.contains(&text) => {
                return Ok(Verdict::pass(format!(
                    "{text:?} was still there after the pods {selector} were recreated"
                )));
            }
            Ok(_) => last = "the page does not show it".into(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Verdict::fail(format!(
        "{text:?} was lost when the pods {selector} were recreated: {last}"
    )))
}
