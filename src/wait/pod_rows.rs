//! The pods a wait is about, printed as `kubectl get pods -w` prints them: a line whenever a
//! pod's status, readiness or restarts change, so a learner sees Pending, ContainerCreating,
//! Running and READY 1/1 happen.

use crate::cluster::Target;
use crate::judge::pods;
use crate::ui::Ui;
use futures::StreamExt;
use indicatif::ProgressBar;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::HashMap;
use tokio::task::JoinHandle;

/// What one line shows of a pod: READY, STATUS, RESTARTS.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    ready: String,
    status: String,
    restarts: i32,
}

impl Row {
    fn of(pod: &Pod) -> Self {
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_deref())
            .unwrap_or_default();
        let total = pod.spec.as_ref().map_or(0, |s| s.containers.len());
        let ready = statuses.iter().filter(|c| c.ready).count();
        let status = pods::state(pod);
        Self {
            ready: format!("{ready}/{total}"),
            status,
            restarts: pods::restart_count(pod),
        }
    }
}

/// Watches the pods matching `selector` (all in the namespace when `None`) and prints a
/// line per change above the spinner (unless `ui` is quiet); abort the task to stop. The
/// receiver turns true once the pods as they were at the start are shown, so a wait that
/// is over at once still shows them before it ends.
pub(super) fn show_changes(
    target: &Target,
    selector: Option<String>,
    bar: &ProgressBar,
    ui: &Ui,
) -> (JoinHandle<()>, tokio::sync::watch::Receiver<bool>) {
    let api = Api::<Pod>::namespaced(target.client.clone(), &target.namespace);
    let bar = bar.clone();
    let ui = ui.clone();
    let (listed, shown_at_start) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        if ui.quiet {
            return;
        }
        let mut config = watcher::Config::default();
        if let Some(selector) = selector {
            config = config.labels(&selector);
        }
        let mut shown: HashMap<String, Row> = HashMap::new();
        let mut header = false;
        let mut stream = watcher(api, config).default_backoff().boxed();
        while let Some(item) = stream.next().await {
            let pod = match item {
                Ok(watcher::Event::InitApply(pod) | watcher::Event::Apply(pod)) => pod,
                Ok(watcher::Event::Delete(pod)) => {
                    let name = pods::name(&pod).to_string();
                    if shown.remove(&name).is_some() {
                        bar.println(format!("  {}", ui.dim(&format!("{name} deleted"))));
                    }
                    continue;
                }
                Ok(watcher::Event::InitDone) => {
                    let _ = listed.send(true);
                    continue;
                }
                _ => continue,
            };
            let row = Row::of(&pod);
            let name = pods::name(&pod).to_string();
            if shown.get(&name) == Some(&row) {
                continue;
            }
            if !header {
                header = true;
                bar.println(ui.dim(&line("NAME", "READY", "STATUS", "RESTARTS")));
            }
            bar.println(line(
                &name,
                &row.ready,
                &row.status,
                &row.restarts.to_string(),
            ));
            shown.insert(name, row);
        }
    });
    (task, shown_at_start)
}

fn line(name: &str, ready: &str, status: &str, restarts: &str) -> String {
    format!("  {name:<40} {ready:<6} {status:<18} {restarts}")
}
