//! Events in the namespace, printed above the spinner while a wait runs: first a replay of
//! those since the step's lesson run began (what happened before the learner looked), then
//! new ones as they arrive.

use crate::cluster::Target;
use crate::ui::Ui;
use futures::StreamExt;
use indicatif::ProgressBar;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Event;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::HashSet;
use tokio::task::JoinHandle;

/// Watches the namespace's events and prints those newer than `since` from the initial
/// list (in time order), then every new one (unless `ui` is quiet); abort the task to stop.
pub(super) fn show_new(
    target: &Target,
    bar: &ProgressBar,
    ui: &Ui,
    since: Option<Timestamp>,
) -> JoinHandle<()> {
    let events = Api::<Event>::namespaced(target.client.clone(), &target.namespace);
    let show = !ui.quiet;
    let bar = bar.clone();
    let ui = ui.clone();
    tokio::spawn(async move {
        let mut seen: HashSet<(String, i32)> = HashSet::new();
        let mut replay: Vec<Event> = Vec::new();
        let mut ready = false;
        let mut stream = watcher(events, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(watcher::Event::InitApply(e)) => {
                    seen.insert(key(&e));
                    if since.is_some_and(|since| time(&e).is_some_and(|t| t >= since)) {
                        replay.push(e);
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    ready = true;
                    if show {
                        print_replay(&bar, &ui, std::mem::take(&mut replay), since);
                    }
                }
                Ok(watcher::Event::Apply(e)) if ready && seen.insert(key(&e)) && show => {
                    bar.println(format(&e, &ui, since));
                }
                _ => {}
            }
        }
    })
}

/// The events that happened before the wait began, oldest first, under a heading.
fn print_replay(bar: &ProgressBar, ui: &Ui, mut replay: Vec<Event>, since: Option<Timestamp>) {
    if replay.is_empty() {
        return;
    }
    replay.sort_by_key(time);
    bar.println(ui.dim("  What already happened (events since this lesson run began):"));
    for e in &replay {
        bar.println(format(e, ui, since));
    }
}

/// When the event last happened, as far as it says.
fn time(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// An event is new when its object or its count is.
fn key(e: &Event) -> (String, i32) {
    (
        e.metadata.uid.clone().unwrap_or_default(),
        e.count.unwrap_or(1),
    )
}

/// `  +1.2s Warning Unhealthy pod/api-x: Liveness probe failed: …` (the offset from `since`).
fn format(e: &Event, ui: &Ui, since: Option<Timestamp>) -> String {
    let kind = e.type_.clone().unwrap_or_else(|| "Normal".into());
    let kind = if kind == "Warning" {
        ui.yellow(&kind)
    } else {
        ui.dim(&kind)
    };
    let offset = match (since, time(e)) {
        (Some(since), Some(at)) => {
            let millis = at.as_millisecond() - since.as_millisecond();
            ui.dim(&format!("+{:.1}s ", millis.max(0) as f64 / 1000.0))
        }
        _ => String::new(),
    };
    format!(
        "  {offset}{kind} {} {}/{}: {}",
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
