//! Watching the cluster until a condition holds: a spinner with the live state, new events
//! printed as they arrive, and on timeout a diagnosis of what the pods are stuck on.

mod diagnose;
mod events;
mod pod_rows;

use crate::cluster::Target;
use crate::judge::{self, Verdict, pods, services, storage, workloads};
use crate::ui::Ui;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod, Service};
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// A condition to wait for.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub enum WaitFor {
    /// The tutorial namespace is Active.
    NamespaceActive,
    /// These services have a cluster IP.
    ServicesHaveIps(Vec<String>),
    /// The Deployment reports Available and its new pods are all updated and ready.
    DeploymentAvailable(String),
    /// Each of these Deployments is Available with all its new pods ready.
    DeploymentsAvailable(Vec<String>),
    /// A Deployment or StatefulSet of that name has all its replicas ready.
    WorkloadReady(String),
    /// At least one pod matches the selector and all matching pods are Ready.
    PodsReady(String),
    /// No pod matches the selector any more.
    PodsGone(String),
    /// The pods matching `selector` restarted at least `at_least` times in total.
    PodRestarts { selector: String, at_least: i32 },
    /// The Deployment has at least `count` replicas.
    ReplicasAtLeast { deployment: String, count: i32 },
    /// Every PVC in the namespace is Bound (and there is at least one).
    PvcsBound,
    /// The HPA reports a current CPU utilisation (metrics reach it).
    HpaHasMetrics(String),
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("timed out after {seconds} s waiting for {what} (last seen: {last}).\n{diagnosis}")]
    Timeout {
        what: String,
        seconds: u64,
        last: String,
        diagnosis: String,
    },
    #[error("while waiting for {what}: {message}")]
    Api { what: String, message: String },
    #[error(
        "the cluster stopped answering while waiting for {what}: {message}.\n  Is it still running? For the sandbox, `hk8s sandbox status` says, and `hk8s sandbox up --detach` starts it again"
    )]
    ClusterGone { what: String, message: String },
}

impl WaitFor {
    /// What is awaited, in words.
    pub(crate) fn describe(&self) -> String {
        match self {
            WaitFor::NamespaceActive => "the namespace to be Active".into(),
            WaitFor::ServicesHaveIps(names) => {
                format!("cluster IPs for services {}", names.join(", "))
            }
            WaitFor::DeploymentAvailable(name) => format!("deployment {name} to be Available"),
            WaitFor::DeploymentsAvailable(names) => {
                format!("deployments {} to be Available", names.join(", "))
            }
            WaitFor::WorkloadReady(name) => format!("all replicas of {name} to be ready"),
            WaitFor::PodsReady(sel) => format!("pods {sel} to be Ready"),
            WaitFor::PodsGone(sel) => format!("pods {sel} to be gone"),
            WaitFor::PodRestarts { selector, at_least } => {
                format!("pods {selector} to restart at least {at_least} time(s)")
            }
            WaitFor::ReplicasAtLeast { deployment, count } => {
                format!("deployment {deployment} to scale to at least {count} replicas")
            }
            WaitFor::PvcsBound => "the PersistentVolumeClaims to be Bound".into(),
            WaitFor::HpaHasMetrics(name) => format!("HPA {name} to read CPU metrics"),
        }
    }

    /// The kubectl command that watches the same thing.
    pub(crate) fn kubectl(&self, ns: &str) -> String {
        match self {
            WaitFor::NamespaceActive => format!("kubectl get namespace {ns}"),
            WaitFor::ServicesHaveIps(_) => format!("kubectl get services -n {ns}"),
            WaitFor::DeploymentAvailable(name) => {
                format!("kubectl rollout status deployment/{name} -n {ns}")
            }
            WaitFor::DeploymentsAvailable(names) => names
                .iter()
                .map(|n| format!("kubectl rollout status deployment/{n} -n {ns}"))
                .collect::<Vec<_>>()
                .join("\n"),
            WaitFor::WorkloadReady(_) => format!("kubectl get deployments,statefulsets -n {ns}"),
            WaitFor::PodsReady(sel) => format!("kubectl get pods -l {sel} -n {ns} -w"),
            WaitFor::PodsGone(sel) => format!("kubectl get pods -l {sel} -n {ns} -w"),
            WaitFor::PodRestarts { selector, .. } => {
                format!("kubectl get pods -l {selector} -n {ns} -w\nkubectl get events -n {ns} -w")
            }
            WaitFor::ReplicasAtLeast { .. } | WaitFor::HpaHasMetrics(_) => {
                format!("kubectl get hpa -n {ns} -w\nkubectl get events -n {ns} -w")
            }
            WaitFor::PvcsBound => format!("kubectl get pvc -n {ns} -w"),
        }
    }

    /// Whether pods decide the condition (so a watch shows them).
    fn about_pods(&self) -> bool {
        !matches!(
            self,
            WaitFor::NamespaceActive
                | WaitFor::ServicesHaveIps(_)
                | WaitFor::PvcsBound
                | WaitFor::HpaHasMetrics(_)
        )
    }

    /// The label selector of the pods the condition is about, if it is about pods.
    fn selector(&self) -> Option<String> {
        match self {
            WaitFor::PodsReady(s) | WaitFor::PodsGone(s) => Some(s.clone()),
            WaitFor::PodRestarts { selector, .. } => Some(selector.clone()),
            _ => None,
        }
    }

    /// Whether the condition holds now, and a short description of the current state.
    pub(crate) async fn holds(&self, target: &Target) -> Result<Verdict, kube::Error> {
        let client = target.client.clone();
        let ns = target.namespace.as_str();
        Ok(match self {
            WaitFor::NamespaceActive => {
                let namespace = Api::<Namespace>::all(client).get_opt(ns).await?;
                judge::namespace_active(ns, namespace.as_ref())
            }
            WaitFor::ServicesHaveIps(names) => {
                let api: Api<Service> = Api::namespaced(client, ns);
                let mut found = Vec::new();
                for name in names {
                    found.push((name.as_str(), api.get_opt(name).await?));
                }
                services::cluster_ips(found.iter().map(|(n, s)| (*n, s.as_ref())))
            }
            WaitFor::DeploymentAvailable(name) => {
                let d = Api::<Deployment>::namespaced(client, ns)
                    .get_opt(name)
                    .await?;
                workloads::deployment(name, d.as_ref())
            }
            WaitFor::DeploymentsAvailable(names) => {
                let api = Api::<Deployment>::namespaced(client, ns);
                let mut verdicts = Vec::new();
                for name in names {
                    verdicts.push(workloads::deployment(
                        name,
                        api.get_opt(name).await?.as_ref(),
                    ));
                }
                Verdict::new(
                    verdicts.iter().all(|v| v.passed),
                    verdicts
                        .iter()
                        .map(|v| v.detail.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            }
            WaitFor::WorkloadReady(name) => workload_ready(target, name).await?,
            WaitFor::PodsReady(sel) => pods::all_ready(&list_pods(target, sel).await?),
            WaitFor::PodsGone(sel) => pods::gone(&list_pods(target, sel).await?),
            WaitFor::PodRestarts { selector, at_least } => {
                pods::restarted(&list_pods(target, selector).await?, *at_least)
            }
            WaitFor::ReplicasAtLeast { deployment, count } => {
                let d = Api::<Deployment>::namespaced(client, ns)
                    .get_opt(deployment)
                    .await?;
                workloads::replicas_at_least(deployment, d.as_ref(), *count)
            }
            WaitFor::PvcsBound => {
                let pvcs = Api::<PersistentVolumeClaim>::namespaced(client, ns)
                    .list(&ListParams::default())
                    .await?;
                storage::pvcs_bound_count(&pvcs.items)
            }
            WaitFor::HpaHasMetrics(name) => {
                let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client, ns)
                    .get_opt(name)
                    .await?;
                workloads::hpa_has_metrics(hpa.as_ref())
            }
        })
    }
}

/// A Deployment of that name is rolled out, else a StatefulSet of that name is ready.
pub(crate) async fn workload_ready(target: &Target, name: &str) -> Result<Verdict, kube::Error> {
    let ns = target.namespace.as_str();
    if let Some(d) = Api::<Deployment>::namespaced(target.client.clone(), ns)
        .get_opt(name)
        .await?
    {
        return Ok(workloads::deployment(name, Some(&d)));
    }
    let s = Api::<StatefulSet>::namespaced(target.client.clone(), ns)
        .get_opt(name)
        .await?;
    Ok(workloads::statefulset(name, s.as_ref()))
}

/// The pods in the target namespace that match a label selector.
pub(crate) async fn list_pods(target: &Target, selector: &str) -> Result<Vec<Pod>, kube::Error> {
    Ok(
        Api::<Pod>::namespaced(target.client.clone(), &target.namespace)
            .list(&ListParams::default().labels(selector))
            .await?
            .items,
    )
}

/// Waits for `cond` with a spinner and live events; on timeout explains what is stuck.
pub async fn wait(
    target: &Target,
    cond: &WaitFor,
    timeout: Duration,
    ui: &Ui,
) -> Result<(), WaitError> {
    watch(target, cond, timeout, ui, None).await
}

/// Waits for `cond` as [`wait`] does, showing the events since `since` first (what happened
/// before the learner looked) and the pods it is about as `kubectl get pods -w` would. A
/// cluster that stops answering (two polls in a row without an answer) ends the wait at once.
pub(crate) async fn watch(
    target: &Target,
    cond: &WaitFor,
    timeout: Duration,
    ui: &Ui,
    since: Option<Timestamp>,
) -> Result<(), WaitError> {
    let what = cond.describe();
    let bar = ui.spinner(&format!("waiting for {what}"));
    let event_task = events::show_new(target, &bar, ui, since);
    let mut pod_task = cond
        .about_pods()
        .then(|| pod_rows::show_changes(target, cond.selector(), &bar, ui));
    let start = Instant::now();
    let mut last = String::from("nothing yet");
    let mut unanswered = 0;
    let result = loop {
        match cond.holds(target).await {
            Ok(Verdict {
                passed: true,
                detail,
            }) => {
                if let Some((_, listed)) = &mut pod_task {
                    let shown = listed.wait_for(|done| *done);
                    let _ = tokio::time::timeout(Duration::from_secs(3), shown).await;
                }
                bar.finish_and_clear();
                ui.ok(&format!("waited for {what}: {detail}"));
                break Ok(());
            }
            Ok(Verdict { detail, .. }) => {
                unanswered = 0;
                bar.set_message(format!("waiting for {what}: {detail}"));
                last = detail;
            }
            Err(err) => {
                if let Some(stop) = failed_poll(&err, &mut unanswered, &what, start, timeout) {
                    bar.finish_and_clear();
                    break Err(stop);
                }
            }
        }
        if start.elapsed() > timeout {
            bar.finish_and_clear();
            break Err(WaitError::Timeout {
                what: what.clone(),
                seconds: timeout.as_secs(),
                last: last.clone(),
                diagnosis: diagnose::why_not(target, cond).await,
            });
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    };
    event_task.abort();
    if let Some((task, _)) = pod_task {
        task.abort();
    }
    result
}

/// Whether a failed poll ends the wait: a cluster that did not answer twice in a row is
/// gone; an error answer counts only once the time is up.
fn failed_poll(
    err: &kube::Error,
    unanswered: &mut u32,
    what: &str,
    start: Instant,
    timeout: Duration,
) -> Option<WaitError> {
    let message = crate::error_chain(err);
    if !matches!(err, kube::Error::Api(_)) {
        *unanswered += 1;
        if *unanswered >= 2 {
            return Some(WaitError::ClusterGone {
                what: what.to_string(),
                message,
            });
        }
    }
    (start.elapsed() > timeout).then(|| WaitError::Api {
        what: what.to_string(),
        message,
    })
}
