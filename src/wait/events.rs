//! New events in the namespace, printed above the spinner while a wait runs.

use crate::cluster::Target;
use crate::ui::Ui;
use futures::StreamExt;
use indicatif::ProgressBar;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::runtime::watcher;
use std::collections::HashSet;
use tokio::task::JoinHandle;

/// Watches the namespace's events and prints those that arrive after the initial list
/// (unless `ui` is quiet); abort the task to stop.
pub(super) fn show_new(target: &Target, bar: &ProgressBar, ui: &Ui) -> JoinHandle<()> {
    let events = Api::<Event>::namespaced(target.client.clone(), &target.namespace);
    let show = !ui.quiet;
    let bar = bar.clone();
    let ui = ui.clone();
    tokio::spawn(async move {
        let mut seen: HashSet<(String, i32)> = HashSet::new();
        let mut ready = false;
        let mut stream = watcher(events, watcher::Config::default()).boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(watcher::Event::InitApply(e)) => {
                    seen.insert(key(&e));
                }
                Ok(watcher::Event::InitDone) => ready = true,
                Ok(watcher::Event::Apply(e)) if ready && seen.insert(key(&e)) && show => {
                    bar.println(format(&e, &ui));
                }
                _ => {}
            }
        }
    })
}

/// An event is new when its object or its count is.
fn key(e: &Event) -> (String, i32) {
    (
        e.metadata.uid.clone().unwrap_or_default(),
        e.count.unwrap_or(1),
    )
}

/// `  Warning Unhealthy pod/api-x: Liveness probe failed: …`
fn format(e: &Event, ui: &Ui) -> String {
    let kind = e.type_.clone().unwrap_or_else(|| "Normal".into());
    let kind = if kind == "Warning" {
        ui.yellow(&kind)
    } else {
        ui.dim(&kind)
    };
    format!(
        "  {kind} {} {}/{}: {}",
        e.reason.clone().unwrap_or_default(),
        e.involved_object
            .kind
            .clone()
            .unwrap_or_default()
            .to_lowercase(),
        e.involved_object.name.clone().unwrap_or_default(),
        e.message.clone().unwrap_or_default().trim()
    )
}
