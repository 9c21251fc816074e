//! The lessons' checks: each fetches what it looks at, lets a [`judge`](crate::judge)
//! function decide, and says pass or fail, and why.

mod messages;

use crate::cluster::{ClusterError, Target};
use crate::frontend::FrontendError;
use crate::judge::{self, Verdict, pods, services, storage, workloads};
use crate::wait::{WaitError, WaitFor, list_pods, workload_ready};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Event, Node, PersistentVolumeClaim, Service};
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// A check as written in a lesson file (kebab-case, `name: argument`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
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
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub port: i32,
    pub target_port: i32,
    pub selector: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ResourcesSpec {
    pub deployment: String,
    pub container: String,
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
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
    pub(crate) fn name(&self) -> String {
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
    pub(crate) fn kubectl(&self, ns: &str) -> String {
        match self {
            CheckSpec::ApiReachable => "kubectl cluster-info".into(),
            CheckSpec::NodeReady => "kubectl get nodes".into(),
            CheckSpec::NamespaceActive => format!("kubectl get namespace {ns}"),
            CheckSpec::Service(s) => format!("kubectl get service {} -n {ns} -o wide", s.name),
            CheckSpec::DeploymentAvailable(n) => format!("kubectl get deployment {n} -n {ns}"),
            CheckSpec::WorkloadReady(_) => format!("kubectl get deployments,statefulsets -n {ns}"),
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
        let verdict = match self.evaluate(target).await {
            Ok(verdict) => verdict,
            Err(CheckError::Kube(err)) => {
                Verdict::fail(ClusterError::from_kube(&err, target).to_string())
            }
            Err(other) => Verdict::fail(other.to_string()),
        };
        CheckResult {
            lesson,
            name: self.name(),
            passed: verdict.passed,
            skipped: false,
            detail: verdict.detail,
        }
    }

    async fn evaluate(&self, target: &Target) -> Result<Verdict, CheckError> {
        match self {
            CheckSpec::ApiReachable => api_reachable(target).await,
            CheckSpec::NodeReady => {
                let nodes = Api::<Node>::all(target.client.clone())
                    .list(&ListParams::default())
                    .await?;
                Ok(judge::nodes_ready(&nodes.items))
            }
            CheckSpec::NamespaceActive => {
                let mut verdict = WaitFor::NamespaceActive.holds(target).await?;
                if !verdict.passed {
                    verdict.detail.push_str(" — run `hk8s lesson 1`");
                }
                Ok(verdict)
            }
            CheckSpec::Service(spec) => {
                let svc = services_api(target).get_opt(&spec.name).await?;
                Ok(services::service(svc.as_ref(), spec))
            }
            CheckSpec::DeploymentAvailable(name) => {
                let d = deployments_api(target).get_opt(name).await?;
                Ok(workloads::deployment(name, d.as_ref()))
            }
            CheckSpec::WorkloadReady(name) => Ok(workload_ready(target, name).await?),
            CheckSpec::ServiceHasEndpoints(name) => service_has_endpoints(target, name).await,
            CheckSpec::MessageRoundTrip => messages::round_trip(target).await,
            CheckSpec::ContainerResources(spec) => {
                let d = deployments_api(target)
                    .get_opt(&spec.deployment)
                    .await?
                    .ok_or_else(|| CheckError::not_found("deployment", &spec.deployment))?;
                Ok(workloads::container_resources(&d, spec))
            }
            CheckSpec::PvcsBound => {
                let pvcs = Api::<PersistentVolumeClaim>::namespaced(
                    target.client.clone(),
                    &target.namespace,
                )
                .list(&ListParams::default())
                .await?;
                Ok(storage::pvcs_bound(&pvcs.items))
            }
            CheckSpec::MessageSurvivesPodDeletion { selector } => {
                messages::survives_pod_deletion(target, selector).await
            }
            CheckSpec::Restarted {
                selector,
                at_least,
                event_reason,
            } => {
                let pods = list_pods(target, selector).await?;
                let events = Api::<Event>::namespaced(target.client.clone(), &target.namespace)
                    .list(&ListParams::default())
                    .await?;
                Ok(pods::restarted_with_event(
                    &pods,
                    &events.items,
                    *at_least,
                    event_reason,
                ))
            }
            CheckSpec::PodsReady(sel) => Ok(WaitFor::PodsReady(sel.clone()).holds(target).await?),
            CheckSpec::Hpa(spec) => {
                let hpa = Api::<HorizontalPodAutoscaler>::namespaced(
                    target.client.clone(),
                    &target.namespace,
                )
                .get_opt(&spec.name)
                .await?
                .ok_or_else(|| CheckError::not_found("HPA", &spec.name))?;
                Ok(workloads::hpa(&hpa, spec))
            }
            CheckSpec::ReplicasAbove { deployment, above } => {
                let d = deployments_api(target).get_opt(deployment).await?;
                Ok(workloads::replicas_above(deployment, d.as_ref(), *above))
            }
        }
    }
}

/// Why a check could not look at the cluster (a failed check is a [`Verdict`], not this).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckError {
    #[error("{}", crate::kube_text(.0))]
    Kube(#[from] kube::Error),
    #[error("{kind} {name} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{server} gave no answer within 10 s")]
    Silent { server: String },
    #[error(transparent)]
    Frontend(#[from] FrontendError),
    #[error(transparent)]
    Wait(#[from] WaitError),
}

impl CheckError {
    fn not_found(kind: &'static str, name: &str) -> Self {
        CheckError::NotFound {
            kind,
            name: name.to_string(),
        }
    }
}

fn services_api(target: &Target) -> Api<Service> {
    Api::namespaced(target.client.clone(), &target.namespace)
}

fn deployments_api(target: &Target) -> Api<Deployment> {
    Api::namespaced(target.client.clone(), &target.namespace)
}

async fn api_reachable(target: &Target) -> Result<Verdict, CheckError> {
    let version = tokio::time::timeout(Duration::from_secs(10), target.client.apiserver_version())
        .await
        .map_err(|_| CheckError::Silent {
            server: target.server.clone(),
        })??;
    Ok(Verdict::pass(format!(
        "{} answers, Kubernetes {}",
        target.server, version.git_version
    )))
}

async fn service_has_endpoints(target: &Target, name: &str) -> Result<Verdict, CheckError> {
    let svc = services_api(target)
        .get_opt(name)
        .await?
        .ok_or_else(|| CheckError::not_found("service", name))?;
    let selector = services::selector(&svc);
    let pods = list_pods(target, &selector).await?;
    Ok(services::has_endpoints(&selector, &pods))
}
