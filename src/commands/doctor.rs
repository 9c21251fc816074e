//! `hk8s doctor`: whether this machine and cluster can run the lessons, and what to fix.

use crate::cluster::{self, ClusterOptions, Target};
use crate::ui::Ui;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::{ListParams, PostParams};
use std::path::PathBuf;
use std::process::ExitCode;

pub(super) async fn run(options: &ClusterOptions, ui: &Ui) -> anyhow::Result<ExitCode> {
    local_tools(ui);
    let target = match cluster::connect(options, ui).await {
        Ok(t) => t,
        Err(e) => {
            ui.fail(&crate::error_chain(&e));
            return Ok(ExitCode::FAILURE);
        }
    };
    ui.ok(&format!("context: {}", target.describe(ui)));
    match cluster::ensure_reachable(&target).await {
        Ok(v) => ui.ok(&format!("API server reachable: Kubernetes {v}")),
        Err(e) => {
            ui.fail(&crate::error_chain(&e));
            return Ok(ExitCode::FAILURE);
        }
    }
    let allowed = rbac(&target, ui).await;
    storage(&target, ui).await;
    metrics(&target, ui).await;
    load_balancers(&target, ui).await;
    if target.sandbox {
        pod_isolation(&target, ui).await;
    }
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The programs the lessons and the sandbox's pods run.
fn local_tools(ui: &Ui) {
    for (tool, why) in [
        ("kubectl", "to type the lessons' kubectl equivalents"),
        ("redis-server", "for the sandbox's redis pods"),
        ("hello-k8s-frontend", "for the sandbox's frontend pods"),
        ("hello-k8s-api", "for the sandbox's api pods"),
    ] {
        match which(tool) {
            Some(path) => ui.ok(&format!("{tool} found at {}", path.display())),
            None => ui.warn(&format!("{tool} not found on PATH or next to hk8s ({why})")),
        }
    }
}

/// Whether hk8s's user may create Deployments in the namespace; false only when the
/// cluster says no (a cluster that cannot answer is given the benefit of the doubt).
async fn rbac(target: &Target, ui: &Ui) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(target.namespace.clone()),
                verb: Some("create".into()),
                group: Some("apps".into()),
                resource: Some("deployments".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<SelfSubjectAccessReview>::all(target.client.clone())
        .create(&PostParams::default(), &review)
        .await
    {
        Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {
            ui.ok(&format!(
                "RBAC: may create deployments in namespace {}",
                target.namespace
            ));
            true
        }
        Ok(r) => {
            ui.fail(&format!(
                "RBAC: may not create deployments in namespace {} ({}); ask for edit rights there",
                target.namespace,
                r.status.and_then(|s| s.reason).unwrap_or_default()
            ));
            false
        }
        Err(kube::Error::Api(status)) => {
            ui.warn(&format!(
                "RBAC: the cluster does not answer access reviews ({} {}); assuming access",
                status.code, status.reason
            ));
            true
        }
        Err(e) => {
            ui.warn(&format!(
                "RBAC: cannot ask the API server ({e}); assuming access"
            ));
            true
        }
    }
}

/// A default StorageClass, for lesson 5's claim.
async fn storage(target: &Target, ui: &Ui) {
    let classes = Api::<StorageClass>::all(target.client.clone())
        .list(&ListParams::default())
        .await;
    let list = match classes {
        Ok(list) => list,
        Err(_) if target.sandbox => {
            return ui.ok("the sandbox provisions volumes itself (lesson 5)");
        }
        Err(e) => {
            return ui.warn(&format!(
                "cannot list StorageClasses ({e}); lesson 5 needs a default one"
            ));
        }
    };
    let default = list.items.iter().find(|sc| {
        sc.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
            .is_some_and(|v| v == "true")
    });
    match default {
        Some(sc) => ui.ok(&format!(
            "default StorageClass {} (lesson 5's volume claim uses it)",
            sc.metadata.name.clone().unwrap_or_default()
        )),
        None if target.sandbox => ui.ok("the sandbox provisions volumes itself (lesson 5)"),
        None => {
            ui.warn("no default StorageClass: lesson 5's PersistentVolumeClaim will stay Pending")
        }
    }
}

/// The metrics API, for lesson 7's autoscaler.
async fn metrics(target: &Target, ui: &Ui) {
    let metrics = kube::discovery::pinned_group(
        &target.client,
        &kube::core::GroupVersion::gv("metrics.k8s.io", "v1beta1"),
    )
    .await;
    match metrics {
        Ok(_) => ui.ok("metrics API served (lesson 7's autoscaler reads it)"),
        Err(_) if target.sandbox => ui.ok("the sandbox measures pod CPU itself (lesson 7)"),
        Err(_) => ui.warn(
            "no metrics API (metrics.k8s.io): lesson 7's HPA cannot scale; install metrics-server (minikube addons enable metrics-server)",
        ),
    }
}

/// How the sandbox isolates pods (namespaces per pod), or which features are off and why.
async fn pod_isolation(target: &Target, ui: &Ui) {
    let node = Api::<k8s_openapi::api::core::v1::Node>::all(target.client.clone())
        .get_opt(hk8s_sandbox::NODE_NAME)
        .await;
    let summary = node
        .ok()
        .flatten()
        .and_then(|n| n.metadata.annotations)
        .and_then(|mut a| a.remove(hk8s_sandbox::ISOLATION_ANNOTATION));
    match summary {
        Some(s) if s.starts_with("off") => ui.warn(&format!(
            "pod isolation {s}; run the sandbox as root (without HK8S_SANDBOX_ISOLATION=off) for it"
        )),
        Some(s) => ui.ok(&format!("pod isolation: {s}")),
        None => ui.warn("the sandbox's node does not say how pods are isolated yet"),
    }
}

/// Whether LoadBalancer services get an address, for `hk8s open` and the lessons' load.
async fn load_balancers(target: &Target, ui: &Ui) {
    let services = Api::<Service>::all(target.client.clone())
        .list(&ListParams::default())
        .await;
    let with_ip = services
        .map(|l| {
            l.items
                .iter()
                .filter(|s| crate::judge::services::load_balancer_url(s).is_some())
                .count()
        })
        .unwrap_or(0);
    if with_ip > 0 || target.sandbox {
        ui.ok("LoadBalancer services get an address");
    } else {
        ui.warn("no LoadBalancer service has an address yet: on kind/minikube the frontend may stay <pending> (`minikube tunnel`, cloud-provider-kind); `hk8s open` port-forwards instead");
    }
}

/// Finds a program on PATH or next to hk8s itself (where the sandbox kubelet also looks).
fn which(tool: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.push(dir.to_path_buf());
        dirs.extend(dir.parent().map(PathBuf::from));
    }
    dirs.into_iter()
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}
