//! `hk8s doctor`: whether this machine and cluster can run the lessons, and what to fix.

use crate::cluster::{self, ClusterOptions};
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
    let mut failures = 0;
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
    let target = match cluster::connect(options, ui).await {
        Ok(t) => t,
        Err(e) => {
            ui.fail(&format!("{e:#}"));
            return Ok(ExitCode::FAILURE);
        }
    };
    ui.ok(&format!("context: {}", target.describe(ui)));
    match cluster::ensure_reachable(&target).await {
        Ok(v) => ui.ok(&format!("API server reachable: Kubernetes {v}")),
        Err(e) => {
            ui.fail(&format!("{e:#}"));
            return Ok(ExitCode::FAILURE);
        }
    }
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
        Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => ui.ok(&format!(
            "RBAC: may create deployments in namespace {}",
            target.namespace
        )),
        Ok(r) => {
            failures += 1;
            ui.fail(&format!(
                "RBAC: may not create deployments in namespace {} ({}); ask for edit rights there",
                target.namespace,
                r.status.and_then(|s| s.reason).unwrap_or_default()
            ))
        }
        Err(kube::Error::Api(status)) => ui.warn(&format!(
            "RBAC: the cluster does not answer access reviews ({} {}); assuming access",
            status.code, status.reason
        )),
        Err(e) => ui.warn(&format!(
            "RBAC: cannot ask the API server ({e}); assuming access"
        )),
    }
    match Api::<StorageClass>::all(target.client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(list) => {
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
                None => ui.warn(
                    "no default StorageClass: lesson 5's PersistentVolumeClaim will stay Pending",
                ),
            }
        }
        Err(_) if target.sandbox => ui.ok("the sandbox provisions volumes itself (lesson 5)"),
        Err(e) => ui.warn(&format!(
            "cannot list StorageClasses ({e}); lesson 5 needs a default one"
        )),
    }
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
    let lbs = Api::<Service>::all(target.client.clone())
        .list(&ListParams::default())
        .await;
    let with_ip = lbs
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
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
