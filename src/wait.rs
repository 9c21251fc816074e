//! Watching the cluster until a condition holds: a spinner with the live state, new events
//! printed as they arrive, and on timeout a diagnosis of what the pods are stuck on.

use crate::cluster::Target;
use crate::ui::Ui;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Namespace, PersistentVolumeClaim, Pod, Service};
use kube::api::{Api, ListParams};
use kube::runtime::watcher;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// A condition to wait for.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
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
}

impl WaitFor {
    /// What is awaited, in words.
    pub fn describe(&self) -> String {
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
    pub fn kubectl(&self, ns: &str) -> String {
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
            WaitFor::WorkloadReady(name) => {
                format!("kubectl get deploy,statefulset {name} -n {ns} -w")
            }
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

    fn selector(&self) -> Option<String> {
        match self {
            WaitFor::PodsReady(s) | WaitFor::PodsGone(s) => Some(s.clone()),
            WaitFor::PodRestarts { selector, .. } => Some(selector.clone()),
            _ => None,
        }
    }

    /// Whether the condition holds now, and a short description of the current state.
    pub async fn holds(&self, target: &Target) -> Result<(bool, String), kube::Error> {
        let client = target.client.clone();
        let ns = target.namespace.as_str();
        match self {
            WaitFor::NamespaceActive => {
                let ns_obj = Api::<Namespace>::all(client).get_opt(ns).await?;
                let phase = ns_obj
                    .and_then(|n| n.status)
                    .and_then(|s| s.phase)
                    .unwrap_or_else(|| "missing".into());
                Ok((phase == "Active", format!("namespace {ns} {phase}")))
            }
            WaitFor::ServicesHaveIps(names) => {
                let api: Api<Service> = Api::namespaced(client, ns);
                let mut missing = Vec::new();
                for name in names {
                    let ip = api
                        .get_opt(name)
                        .await?
                        .and_then(|s| s.spec)
                        .and_then(|s| s.cluster_ip)
                        .filter(|ip| !ip.is_empty());
                    if ip.is_none() {
                        missing.push(name.clone());
                    }
                }
                Ok((
                    missing.is_empty(),
                    format!("without an IP: {}", missing.join(", ")),
                ))
            }
            WaitFor::DeploymentAvailable(name) => {
                let d = Api::<Deployment>::namespaced(client, ns)
                    .get_opt(name)
                    .await?;
                Ok(deployment_state(name, d.as_ref()))
            }
            WaitFor::DeploymentsAvailable(names) => {
                let api = Api::<Deployment>::namespaced(client, ns);
                let mut all = true;
                let mut states = Vec::new();
                for name in names {
                    let (ok, state) = deployment_state(name, api.get_opt(name).await?.as_ref());
                    all &= ok;
                    states.push(state);
                }
                Ok((all, states.join("; ")))
            }
            WaitFor::WorkloadReady(name) => {
                if let Some(d) = Api::<Deployment>::namespaced(client.clone(), ns)
                    .get_opt(name)
                    .await?
                {
                    return Ok(deployment_state(name, Some(&d)));
                }
                let s = Api::<StatefulSet>::namespaced(client, ns)
                    .get_opt(name)
                    .await?;
                Ok(statefulset_state(name, s.as_ref()))
            }
            WaitFor::PodsReady(sel) => {
                let pods = Api::<Pod>::namespaced(client, ns)
                    .list(&ListParams::default().labels(sel))
                    .await?;
                let ready = pods.items.iter().filter(|p| pod_ready(p)).count();
                let total = pods.items.len();
                Ok((
                    total > 0 && ready == total,
                    format!("{ready}/{total} pods ready: {}", pod_summary(&pods.items)),
                ))
            }
            WaitFor::PodsGone(sel) => {
                let pods = Api::<Pod>::namespaced(client, ns)
                    .list(&ListParams::default().labels(sel))
                    .await?;
                Ok((
                    pods.items.is_empty(),
                    format!("{} pods left", pods.items.len()),
                ))
            }
            WaitFor::PodRestarts { selector, at_least } => {
                let pods = Api::<Pod>::namespaced(client, ns)
                    .list(&ListParams::default().labels(selector))
                    .await?;
                let restarts: i32 = pods.items.iter().map(restart_count).sum();
                Ok((
                    restarts >= *at_least,
                    format!("{restarts} restart(s): {}", pod_summary(&pods.items)),
                ))
            }
            WaitFor::ReplicasAtLeast { deployment, count } => {
                let d = Api::<Deployment>::namespaced(client, ns)
                    .get_opt(deployment)
                    .await?;
                let replicas = d.and_then(|d| d.spec).and_then(|s| s.replicas).unwrap_or(0);
                Ok((
                    replicas >= *count,
                    format!("{deployment} has {replicas} replica(s)"),
                ))
            }
            WaitFor::PvcsBound => {
                let pvcs = Api::<PersistentVolumeClaim>::namespaced(client, ns)
                    .list(&ListParams::default())
                    .await?;
                let bound = pvcs
                    .items
                    .iter()
                    .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"))
                    .count();
                Ok((
                    !pvcs.items.is_empty() && bound == pvcs.items.len(),
                    format!("{bound}/{} PVCs Bound", pvcs.items.len()),
                ))
            }
            WaitFor::HpaHasMetrics(name) => {
                let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client, ns)
                    .get_opt(name)
                    .await?;
                let cpu = hpa.and_then(|h| h.status).as_ref().and_then(hpa_cpu);
                Ok((
                    cpu.is_some(),
                    cpu.map(|c| format!("CPU at {c} %"))
                        .unwrap_or_else(|| "no CPU metrics yet".into()),
                ))
            }
        }
    }
}

/// The HPA's current average CPU utilisation (percent of request), once metrics arrived.
pub fn hpa_cpu(
    status: &k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerStatus,
) -> Option<i32> {
    status.current_metrics.as_ref()?.iter().find_map(|m| {
        let r = m.resource.as_ref()?;
        (r.name == "cpu")
            .then_some(r.current.average_utilization)
            .flatten()
    })
}

fn deployment_state(name: &str, d: Option<&Deployment>) -> (bool, String) {
    let Some(d) = d else {
        return (false, format!("deployment {name} not found"));
    };
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let available = status
        .conditions
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "True");
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let current_gen = status.observed_generation >= d.metadata.generation;
    if want == 0 {
        return (
            false,
            format!("{name} is scaled to 0 replicas: nothing serves"),
        );
    }
    let done = available && current_gen && ready >= want && updated >= want && total == updated;
    (
        done,
        format!("{name}: {ready}/{want} ready, {updated} updated"),
    )
}

fn statefulset_state(name: &str, s: Option<&StatefulSet>) -> (bool, String) {
    let Some(s) = s else {
        return (false, format!("{name} not found"));
    };
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let ready = s
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    (
        ready >= want,
        format!("statefulset {name}: {ready}/{want} ready"),
    )
}

pub fn pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn restart_count(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

/// `name Phase/Reason` for each pod, e.g. `redis-0 Running, api-x ImagePullBackOff`.
pub fn pod_summary(pods: &[Pod]) -> String {
    if pods.is_empty() {
        return "no pods yet".into();
    }
    pods.iter()
        .map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let waiting = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| {
                    cs.iter()
                        .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
                });
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "Pending".into());
            let state = if p.metadata.deletion_timestamp.is_some() {
                "Terminating".to_string()
            } else {
                waiting.unwrap_or(phase)
            };
            format!("{name} {state}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits for `cond` with a spinner and live events; on timeout explains what is stuck.
pub async fn wait(
    target: &Target,
    cond: &WaitFor,
    timeout: Duration,
    ui: &Ui,
) -> Result<(), WaitError> {
    let what = cond.describe();
    let bar = ui.spinner(&format!("waiting for {what}"));
    let events = Api::<Event>::namespaced(target.client.clone(), &target.namespace);
    let show_events = !ui.quiet;
    let event_bar = bar.clone();
    let event_ui = ui.clone();
    let event_task = tokio::spawn(async move {
        let mut seen: HashSet<(String, i32)> = HashSet::new();
        let mut ready = false;
        let mut stream = watcher(events, watcher::Config::default()).boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(watcher::Event::InitApply(e)) => {
                    seen.insert(event_key(&e));
                }
                Ok(watcher::Event::InitDone) => ready = true,
                Ok(watcher::Event::Apply(e))
                    if ready && seen.insert(event_key(&e)) && show_events =>
                {
                    event_bar.println(format_event(&e, &event_ui));
                }
                _ => {}
            }
        }
    });
    let start = Instant::now();
    let mut last = String::from("nothing yet");
    let result = loop {
        match cond.holds(target).await {
            Ok((true, state)) => {
                bar.finish_and_clear();
                ui.ok(&format!("{what}: {state}"));
                break Ok(());
            }
            Ok((false, state)) => {
                bar.set_message(format!("waiting for {what}: {state}"));
                last = state;
            }
            Err(err) if start.elapsed() > timeout => {
                break Err(WaitError::Api {
                    what: what.clone(),
                    message: err.to_string(),
                });
            }
            Err(_) => {}
        }
        if start.elapsed() > timeout {
            bar.finish_and_clear();
            let diagnosis = match cond {
                WaitFor::PodsGone(selector) => diagnose_leftovers(target, selector).await,
                _ => diagnose(target, cond.selector().as_deref()).await,
            };
            break Err(WaitError::Timeout {
                what: what.clone(),
                seconds: timeout.as_secs(),
                last: last.clone(),
                diagnosis,
            });
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    };
    event_task.abort();
    result
}

fn event_key(e: &Event) -> (String, i32) {
    (
        e.metadata.uid.clone().unwrap_or_default(),
        e.count.unwrap_or(1),
    )
}

fn format_event(e: &Event, ui: &Ui) -> String {
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

/// Explains why pods are not ready: image pulls, scheduling, crashes, waiting reasons.
pub async fn diagnose(target: &Target, selector: Option<&str>) -> String {
    let pods_api = Api::<Pod>::namespaced(target.client.clone(), &target.namespace);
    let params = match selector {
        Some(sel) => ListParams::default().labels(sel),
        None => ListParams::default(),
    };
    let Ok(pods) = pods_api.list(&params).await else {
        return "  (could not list pods to diagnose)".into();
    };
    let events = Api::<Event>::namespaced(target.client.clone(), &target.namespace)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let ns = &target.namespace;
    let mut out = Vec::new();
    for pod in pods.items.iter().filter(|p| !pod_ready(p)) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let waiting: Vec<_> = status
            .container_statuses
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| {
                let w = c.state?.waiting?;
                Some((
                    c.image,
                    w.reason.unwrap_or_default(),
                    w.message.unwrap_or_default(),
                ))
            })
            .collect();
        let unscheduled = status
            .conditions
            .clone()
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "PodScheduled" && c.status == "False");
        if let Some((image, _, _)) = waiting.iter().find(|(_, r, _)| {
            matches!(
                r.as_str(),
                "ImagePullBackOff" | "ErrImagePull" | "ErrImageNeverPull"
            )
        }) {
            out.push(image_hint(&name, image));
        } else if let Some(cond) = unscheduled {
            let reason = events
                .iter()
                .rev()
                .find(|e| {
                    e.reason.as_deref() == Some("FailedScheduling")
                        && e.involved_object.name.as_deref() == Some(name.as_str())
                })
                .and_then(|e| e.message.clone())
                .or(cond.message)
                .unwrap_or_else(|| "no reason given".into());
            out.push(format!(
                "  pod {name} is Pending: the scheduler cannot place it: {reason}\n  Lower the pod's resources.requests or add capacity; `kubectl describe pod {name} -n {ns}` shows the same."
            ));
        } else if let Some((_, reason, message)) =
            waiting.iter().find(|(_, r, _)| r == "CrashLoopBackOff")
        {
            out.push(format!(
                "  pod {name} keeps crashing ({reason}{}). See why: `kubectl logs {name} -n {ns} --previous`",
                if message.is_empty() { String::new() } else { format!(": {message}") }
            ));
        } else if let Some((_, reason, message)) = waiting.first() {
            out.push(format!("  pod {name} is waiting: {reason} {message}"));
        } else {
            out.push(format!(
                "  pod {name} is {} but not Ready: `kubectl describe pod {name} -n {ns}` shows its probes and events",
                status.phase.unwrap_or_else(|| "Pending".into())
            ));
        }
    }
    if out.is_empty() {
        if pods.items.is_empty() {
            return format!(
                "  No pods exist yet. `kubectl get events -n {ns}` shows what the controllers did."
            );
        }
        return format!("  All pods are ready; `kubectl get all -n {ns}` shows the rest.");
    }
    out.join("\n")
}

/// Says which pods remain and whether their owner still exists (a pod whose owner is gone
/// should be removed by the garbage collector).
async fn diagnose_leftovers(target: &Target, selector: &str) -> String {
    let ns = &target.namespace;
    let pods = Api::<Pod>::namespaced(target.client.clone(), ns)
        .list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut out = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let owner = pod
            .metadata
            .owner_references
            .clone()
            .unwrap_or_default()
            .into_iter()
            .next();
        let line = match owner {
            None => format!(
                "  pod {name} has no owner: delete it yourself (`kubectl delete pod {name} -n {ns}`)"
            ),
            Some(o) => {
                let owner_exists = if o.kind == "ReplicaSet" {
                    Api::<k8s_openapi::api::apps::v1::ReplicaSet>::namespaced(
                        target.client.clone(),
                        ns,
                    )
                    .get_opt(&o.name)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|rs| rs.metadata.uid.as_deref() == Some(o.uid.as_str()))
                } else {
                    true
                };
                if owner_exists {
                    format!(
                        "  pod {name} is still owned by {} {}, which keeps it",
                        o.kind, o.name
                    )
                } else {
                    format!(
                        "  pod {name} remains although its owner {} {} is gone: the garbage collector should remove it; `kubectl delete pod {name} -n {ns}` does it by hand",
                        o.kind, o.name
                    )
                }
            }
        };
        out.push(line);
    }
    out.join("\n")
}

/// What to do when the cluster cannot pull one of our images.
pub fn image_hint(pod: &str, image: &str) -> String {
    format!(
        "  pod {pod} cannot pull image {image}: the cluster has no copy and no registry serves it.\n  \
Build it from this repository (`docker build -t {image} -f app/Dockerfile.<frontend|api> .`) and load it:\n    \
kind:     kind load docker-image {image}\n    \
minikube: minikube image load {image}\n    \
k3d:      k3d image import {image}\n  \
or push it to a registry and rerun with --registry <registry>, e.g. --registry ghcr.io/you."
    )
}
