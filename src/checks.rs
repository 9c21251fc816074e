//! The lessons' checks: each looks at the cluster and says pass or fail, and why.

use crate::cluster::{ClusterError, Target};
use crate::frontend;
use crate::wait::{WaitFor, pod_ready, restart_count};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, PersistentVolumeClaim, Pod, Service};
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A check as written in a lesson file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum CheckSpec {
    /// The API server answers.
    ApiReachable,
    /// At least one node is Ready.
    NodeReady,
    /// The tutorial namespace exists and is Active.
    NamespaceActive,
    /// A service with this type, port, target port and selector, and a cluster IP.
    Service(ServiceSpec),
    /// The Deployment is Available with all replicas ready.
    DeploymentAvailable(String),
    /// A Deployment or StatefulSet of this name has all replicas ready.
    WorkloadReady(String),
    /// Pods of the service's selector back it: the service has ready endpoints.
    ServiceHasEndpoints(String),
    /// A message posted through the frontend is read back.
    MessageRoundTrip,
    /// The deployment's container has these CPU/memory requests and limits, and so do its pods.
    ContainerResources(ResourcesSpec),
    /// Every PVC in the namespace is Bound (at least one).
    PvcsBound,
    /// A message written before the pods matching `selector` are deleted is read after.
    MessageSurvivesPodDeletion { selector: String },
    /// Pods matching `selector` restarted at least `at_least` times and an event says why.
    Restarted {
        selector: String,
        at_least: i32,
        event_reason: String,
    },
    /// Pods matching the selector are all ready.
    PodsReady(String),
    /// The HPA targets the deployment within these bounds.
    Hpa(HpaSpec),
    /// The deployment has more than `above` replicas (e.g. scaled by the HPA).
    ReplicasAbove { deployment: String, above: i32 },
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub port: i32,
    pub target_port: i32,
    pub selector: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResourcesSpec {
    pub deployment: String,
    pub container: String,
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HpaSpec {
    pub name: String,
    pub deployment: String,
    pub min: i32,
    pub max: i32,
}

/// The verdict of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub lesson: u32,
    pub name: String,
    pub passed: bool,
    /// Skipped checks count as passed but say why they did not run.
    pub skipped: bool,
    pub detail: String,
}

impl CheckSpec {
    /// A short stable name, e.g. `service frontend`.
    pub fn name(&self) -> String {
        match self {
            CheckSpec::ApiReachable => "API server reachable".into(),
            CheckSpec::NodeReady => "a node is Ready".into(),
            CheckSpec::NamespaceActive => "namespace Active".into(),
            CheckSpec::Service(s) => format!("service {}", s.name),
            CheckSpec::DeploymentAvailable(n) => format!("deployment {n} Available"),
            CheckSpec::WorkloadReady(n) => format!("{n} ready"),
            CheckSpec::ServiceHasEndpoints(n) => format!("service {n} has ready endpoints"),
            CheckSpec::MessageRoundTrip => {
                "message posted through the frontend is read back".into()
            }
            CheckSpec::ContainerResources(r) => format!("requests and limits of {}", r.deployment),
            CheckSpec::PvcsBound => "PersistentVolumeClaims Bound".into(),
            CheckSpec::MessageSurvivesPodDeletion { selector } => {
                format!("a message survives deleting pods {selector}")
            }
            CheckSpec::Restarted { selector, .. } => {
                format!("pods {selector} restarted by the kubelet")
            }
            CheckSpec::PodsReady(s) => format!("pods {s} Ready"),
            CheckSpec::Hpa(h) => format!("HPA {}", h.name),
            CheckSpec::ReplicasAbove { deployment, above } => {
                format!("{deployment} has more than {above} replica(s)")
            }
        }
    }

    /// The kubectl command that shows the same state.
    pub fn kubectl(&self, ns: &str) -> String {
        match self {
            CheckSpec::ApiReachable => "kubectl cluster-info".into(),
            CheckSpec::NodeReady => "kubectl get nodes".into(),
            CheckSpec::NamespaceActive => format!("kubectl get namespace {ns}"),
            CheckSpec::Service(s) => format!("kubectl get service {} -n {ns} -o wide", s.name),
            CheckSpec::DeploymentAvailable(n) => format!("kubectl get deployment {n} -n {ns}"),
            CheckSpec::WorkloadReady(n) => format!("kubectl get deploy,statefulset {n} -n {ns}"),
            CheckSpec::ServiceHasEndpoints(n) => format!("kubectl get endpoints {n} -n {ns}"),
            CheckSpec::MessageRoundTrip | CheckSpec::MessageSurvivesPodDeletion { .. } => {
                "hk8s open   # then leave a message in the browser".into()
            }
            CheckSpec::ContainerResources(r) => format!(
                "kubectl get deployment {} -n {ns} -o jsonpath='{{.spec.template.spec.containers[*].resources}}'",
                r.deployment
            ),
            CheckSpec::PvcsBound => format!("kubectl get pvc -n {ns}"),
            CheckSpec::Restarted { selector, .. } => {
                format!("kubectl get pods -l {selector} -n {ns}\nkubectl get events -n {ns}")
            }
            CheckSpec::PodsReady(s) => format!("kubectl get pods -l {s} -n {ns}"),
            CheckSpec::Hpa(h) => format!("kubectl get hpa {} -n {ns}", h.name),
            CheckSpec::ReplicasAbove { deployment, .. } => {
                format!("kubectl get deployment {deployment} -n {ns}")
            }
        }
    }

    /// Runs the check against the cluster.
    pub async fn run(&self, target: &Target, lesson: u32) -> CheckResult {
        let outcome = self.evaluate(target).await;
        let (passed, detail) = match outcome {
            Ok(verdict) => verdict,
            Err(CheckError::Kube(err)) => {
                (false, ClusterError::from_kube(&err, target).to_string())
            }
            Err(CheckError::Other(msg)) => (false, msg),
        };
        CheckResult {
            lesson,
            name: self.name(),
            passed,
            skipped: false,
            detail,
        }
    }

    async fn evaluate(&self, target: &Target) -> Result<(bool, String), CheckError> {
        let client = target.client.clone();
        let ns = target.namespace.as_str();
        match self {
            CheckSpec::ApiReachable => {
                let version =
                    tokio::time::timeout(Duration::from_secs(10), client.apiserver_version())
                        .await
                        .map_err(|_| {
                            CheckError::Other(format!(
                                "{} gave no answer within 10 s",
                                target.server
                            ))
                        })??;
                Ok((
                    true,
                    format!(
                        "{} answers, Kubernetes {}",
                        target.server, version.git_version
                    ),
                ))
            }
            CheckSpec::NodeReady => {
                let nodes = Api::<Node>::all(client)
                    .list(&ListParams::default())
                    .await?;
                let ready: Vec<String> = nodes
                    .items
                    .iter()
                    .filter(|n| {
                        n.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .is_some_and(|cs| {
                                cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                            })
                    })
                    .filter_map(|n| n.metadata.name.clone())
                    .collect();
                if ready.is_empty() {
                    Ok((
                        false,
                        format!(
                            "{} node(s), none Ready: pods cannot start",
                            nodes.items.len()
                        ),
                    ))
                } else {
                    Ok((
                        true,
                        format!(
                            "{} of {} node(s) Ready: {}",
                            ready.len(),
                            nodes.items.len(),
                            ready.join(", ")
                        ),
                    ))
                }
            }
            CheckSpec::NamespaceActive => {
                let (ok, state) = WaitFor::NamespaceActive.holds(target).await?;
                let hint = if ok {
                    String::new()
                } else {
                    " — run `hk8s lesson 1`".into()
                };
                Ok((ok, format!("{state}{hint}")))
            }
            CheckSpec::Service(spec) => check_service(target, spec).await,
            CheckSpec::DeploymentAvailable(name) => {
                let (ok, state) = WaitFor::DeploymentAvailable(name.clone())
                    .holds(target)
                    .await?;
                Ok((ok, state))
            }
            CheckSpec::WorkloadReady(name) => {
                Ok(WaitFor::WorkloadReady(name.clone()).holds(target).await?)
            }
            CheckSpec::ServiceHasEndpoints(name) => {
                let svc = Api::<Service>::namespaced(client.clone(), ns)
                    .get_opt(name)
                    .await?
                    .ok_or_else(|| CheckError::Other(format!("service {name} not found")))?;
                let selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
                let sel = selector
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let pods = Api::<Pod>::namespaced(client, ns)
                    .list(&ListParams::default().labels(&sel))
                    .await?;
                let ready = pods.items.iter().filter(|p| pod_ready(p)).count();
                Ok((
                    ready > 0,
                    format!(
                        "selector {sel} matches {ready} ready pod(s) of {}",
                        pods.items.len()
                    ),
                ))
            }
            CheckSpec::MessageRoundTrip => {
                let text = unique_message("roundtrip");
                let addr = frontend::post_message_retrying(target, &text, Duration::from_secs(60))
                    .await
                    .map_err(|e| CheckError::Other(e.to_string()))?;
                let (_, page) = frontend::page(target)
                    .await
                    .map_err(|e| CheckError::Other(e.to_string()))?;
                if page.contains(&text) {
                    Ok((
                        true,
                        format!("posted {text:?} to {} and read it back", addr.describe()),
                    ))
                } else {
                    Ok((
                        false,
                        format!(
                            "posted {text:?} to {} but the page does not show it",
                            addr.describe()
                        ),
                    ))
                }
            }
            CheckSpec::ContainerResources(spec) => check_resources(target, spec).await,
            CheckSpec::PvcsBound => {
                let pvcs = Api::<PersistentVolumeClaim>::namespaced(client, ns)
                    .list(&ListParams::default())
                    .await?;
                let states: Vec<String> = pvcs
                    .items
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {}",
                            p.metadata.name.clone().unwrap_or_default(),
                            p.status
                                .as_ref()
                                .and_then(|s| s.phase.clone())
                                .unwrap_or_else(|| "Pending".into())
                        )
                    })
                    .collect();
                let ok = !states.is_empty() && states.iter().all(|s| s.ends_with(" Bound"));
                let detail = if states.is_empty() {
                    "no PVC in the namespace".into()
                } else {
                    states.join(", ")
                };
                Ok((ok, detail))
            }
            CheckSpec::MessageSurvivesPodDeletion { selector } => {
                let text = unique_message("persist");
                frontend::post_message_retrying(target, &text, Duration::from_secs(60))
                    .await
                    .map_err(|e| CheckError::Other(e.to_string()))?;
                let pods: Api<Pod> = Api::namespaced(client, ns);
                pods.delete_collection(
                    &Default::default(),
                    &ListParams::default().labels(selector),
                )
                .await?;
                let quiet = crate::ui::Ui {
                    color: false,
                    interactive: false,
                    verbose: 0,
                    quiet: true,
                };
                tokio::time::sleep(Duration::from_millis(500)).await;
                crate::wait::wait(
                    target,
                    &WaitFor::PodsReady(selector.clone()),
                    Duration::from_secs(120),
                    &quiet,
                )
                .await
                .map_err(|e| CheckError::Other(e.to_string()))?;
                let mut last = String::new();
                for _ in 0..30 {
                    match frontend::page(target).await {
                        Ok((_, page)) if page.contains(&text) => {
                            return Ok((
                                true,
                                format!(
                                    "{text:?} was still there after the pods {selector} were recreated"
                                ),
                            ));
                        }
                        Ok(_) => last = "the page does not show it".into(),
                        Err(e) => last = e.to_string(),
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok((
                    false,
                    format!("{text:?} was lost when the pods {selector} were recreated: {last}"),
                ))
            }
            CheckSpec::Restarted {
                selector,
                at_least,
                event_reason,
            } => {
                let pods = Api::<Pod>::namespaced(client.clone(), ns)
                    .list(&ListParams::default().labels(selector))
                    .await?;
                let restarts: i32 = pods.items.iter().map(restart_count).sum();
                let names: Vec<String> = pods
                    .items
                    .iter()
                    .filter_map(|p| p.metadata.name.clone())
                    .collect();
                let events = Api::<Event>::namespaced(client, ns)
                    .list(&ListParams::default())
                    .await?;
                let event = events.items.iter().rev().find(|e| {
                    e.reason.as_deref() == Some(event_reason.as_str())
                        && e.involved_object
                            .name
                            .as_ref()
                            .is_some_and(|n| names.contains(n))
                });
                match (restarts >= *at_least, event) {
                    (true, Some(e)) => Ok((
                        true,
                        format!(
                            "{restarts} restart(s); event {event_reason}: {}",
                            e.message.clone().unwrap_or_default()
                        ),
                    )),
                    (false, _) => Ok((
                        false,
                        format!("{restarts} restart(s), expected at least {at_least}"),
                    )),
                    (true, None) => Ok((
                        false,
                        format!("{restarts} restart(s) but no {event_reason} event explains them"),
                    )),
                }
            }
            CheckSpec::PodsReady(sel) => Ok(WaitFor::PodsReady(sel.clone()).holds(target).await?),
            CheckSpec::Hpa(spec) => {
                let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client, ns)
                    .get_opt(&spec.name)
                    .await?
                    .ok_or_else(|| CheckError::Other(format!("HPA {} not found", spec.name)))?;
                let hs = hpa.spec.unwrap_or_default();
                let target_name = hs.scale_target_ref.name.clone();
                let min = hs.min_replicas.unwrap_or(1);
                let mut problems = Vec::new();
                if target_name != spec.deployment {
                    problems.push(format!(
                        "targets {target_name}, expected {}",
                        spec.deployment
                    ));
                }
                if min != spec.min || hs.max_replicas != spec.max {
                    problems.push(format!(
                        "bounds {min}..{}, expected {}..{}",
                        hs.max_replicas, spec.min, spec.max
                    ));
                }
                let current = hpa.status.as_ref().and_then(crate::wait::hpa_cpu);
                let cpu = current
                    .map(|c| format!("CPU {c} %"))
                    .unwrap_or_else(|| "no CPU metrics yet".into());
                if problems.is_empty() {
                    Ok((
                        true,
                        format!(
                            "scales {target_name} between {min} and {} replicas; {cpu}",
                            hs.max_replicas
                        ),
                    ))
                } else {
                    Ok((false, problems.join("; ")))
                }
            }
            CheckSpec::ReplicasAbove { deployment, above } => {
                let d = Api::<Deployment>::namespaced(client, ns)
                    .get_opt(deployment)
                    .await?;
                let replicas = d.and_then(|d| d.spec).and_then(|s| s.replicas).unwrap_or(0);
                Ok((
                    replicas > *above,
                    format!("{deployment} has {replicas} replica(s)"),
                ))
            }
        }
    }
}

enum CheckError {
    Kube(kube::Error),
    Other(String),
}

impl From<kube::Error> for CheckError {
    fn from(e: kube::Error) -> Self {
        CheckError::Kube(e)
    }
}

fn unique_message(kind: &str) -> String {
    let now = jiff::Timestamp::now();
    format!("hk8s-{kind}-{}", now.as_millisecond())
}

async fn check_service(target: &Target, spec: &ServiceSpec) -> Result<(bool, String), CheckError> {
    let svc = Api::<Service>::namespaced(target.client.clone(), &target.namespace)
        .get_opt(&spec.name)
        .await?;
    let Some(svc) = svc else {
        return Ok((
            false,
            format!(
                "service {} does not exist — apply it (`hk8s lesson 2`)",
                spec.name
            ),
        ));
    };
    let s = svc.spec.clone().unwrap_or_default();
    let mut problems = Vec::new();
    let type_ = s.type_.clone().unwrap_or_else(|| "ClusterIP".into());
    if type_ != spec.type_ {
        problems.push(format!("type is {type_}, expected {}", spec.type_));
    }
    let ports = s.ports.clone().unwrap_or_default();
    match ports.iter().find(|p| p.port == spec.port) {
        None => problems.push(format!(
            "no port {}: it exposes {:?}",
            spec.port,
            ports.iter().map(|p| p.port).collect::<Vec<_>>()
        )),
        Some(p) => {
            let target_port = match &p.target_port {
                None => p.port.to_string(),
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i)) => {
                    i.to_string()
                }
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s)) => {
                    s.clone()
                }
            };
            if target_port != spec.target_port.to_string() {
                problems.push(format!(
                    "port {} forwards to targetPort {target_port}, but the pods listen on {}",
                    spec.port, spec.target_port
                ));
            }
        }
    }
    let selector = s.selector.clone().unwrap_or_default();
    if selector != spec.selector {
        problems.push(format!(
            "selector is {}, expected {}: it would pick the wrong pods (or none)",
            fmt_labels(&selector),
            fmt_labels(&spec.selector)
        ));
    }
    let ip = s.cluster_ip.clone().unwrap_or_default();
    if ip.is_empty() {
        problems.push("no cluster IP assigned yet".into());
    }
    if !problems.is_empty() {
        return Ok((false, problems.join("; ")));
    }
    let external = if spec.type_ == "LoadBalancer" {
        match frontend::load_balancer_url(&svc) {
            Some(url) => format!(", external {url}"),
            None => ", external address <pending> (hk8s open will port-forward)".into(),
        }
    } else {
        String::new()
    };
    Ok((
        true,
        format!(
            "{type_} {ip}:{} -> {} selecting {}{external}",
            spec.port,
            spec.target_port,
            fmt_labels(&selector)
        ),
    ))
}

async fn check_resources(
    target: &Target,
    spec: &ResourcesSpec,
) -> Result<(bool, String), CheckError> {
    let d = Api::<Deployment>::namespaced(target.client.clone(), &target.namespace)
        .get_opt(&spec.deployment)
        .await?
        .ok_or_else(|| CheckError::Other(format!("deployment {} not found", spec.deployment)))?;
    let tmpl = d.spec.and_then(|s| s.template.spec).unwrap_or_default();
    let Some(container) = tmpl.containers.iter().find(|c| c.name == spec.container) else {
        return Ok((
            false,
            format!(
                "no container {} in deployment {}",
                spec.container, spec.deployment
            ),
        ));
    };
    let res = container.resources.clone().unwrap_or_default();
    let mut problems = Vec::new();
    for (what, want, have) in [
        ("requests", &spec.requests, res.requests.unwrap_or_default()),
        ("limits", &spec.limits, res.limits.unwrap_or_default()),
    ] {
        for (key, value) in want {
            let got = have.get(key).map(|q| q.0.clone());
            if got.as_deref() != Some(value.as_str()) {
                problems.push(format!(
                    "{what}.{key} is {}, expected {value}",
                    got.unwrap_or_else(|| "unset".into())
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Ok((false, problems.join("; ")));
    }
    Ok((
        true,
        format!(
            "{} requests {} and is limited to {}",
            spec.container,
            fmt_labels(&spec.requests),
            fmt_labels(&spec.limits)
        ),
    ))
}

fn fmt_labels(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "{}".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether a workload exists as Deployment or StatefulSet (for messages).
pub async fn workload_kind(target: &Target, name: &str) -> Option<&'static str> {
    let ns = target.namespace.as_str();
    if Api::<Deployment>::namespaced(target.client.clone(), ns)
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .is_some()
    {
        return Some("deployment");
    }
    if Api::<StatefulSet>::namespaced(target.client.clone(), ns)
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .is_some()
    {
        return Some("statefulset");
    }
    None
}

/// Whether the namespace exists.
pub async fn namespace_exists(target: &Target) -> Result<bool, kube::Error> {
    Ok(Api::<Namespace>::all(target.client.clone())
        .get_opt(&target.namespace)
        .await?
        .is_some())
}
