//! `show-cluster`, `create-namespace` and `delete-pods`.

use super::{StepContext, StepError, StepOutcome};
use crate::apply::ensure_namespace;
use crate::cluster::{self, ClusterError};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

/// Which cluster hk8s talks to, and that its API server answers.
pub(super) async fn show(ctx: &StepContext<'_>) -> Result<StepOutcome, StepError> {
    crate::lesson::present::using_cluster(ctx.ui, ctx.target);
    let version = cluster::ensure_reachable(ctx.target).await?;
    Ok(StepOutcome::Cluster {
        version,
        sandbox: ctx.target.sandbox,
    })
}

/// Creates the tutorial namespace, labelled as hk8s's own, unless it exists.
pub(super) async fn create_namespace(ctx: &StepContext<'_>) -> Result<StepOutcome, StepError> {
    let name = ctx.target.namespace.clone();
    let created = ensure_namespace(&ctx.target.client, &name)
        .await
        .map_err(|e| ClusterError::from_kube(&e, ctx.target))?;
    Ok(StepOutcome::Namespace { name, created })
}

/// Deletes the pods matching `selector`, one by one.
pub(super) async fn delete_pods(
    ctx: &StepContext<'_>,
    selector: &str,
) -> Result<StepOutcome, StepError> {
    let explain = |e: kube::Error| ClusterError::from_kube(&e, ctx.target);
    let pods: Api<Pod> = Api::namespaced(ctx.target.client.clone(), &ctx.target.namespace);
    let list = pods
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(explain)?;
    let mut deleted = Vec::new();
    for pod in list.items {
        let name = pod.metadata.name.unwrap_or_default();
        pods.delete(&name, &Default::default())
            .await
            .map_err(explain)?;
        deleted.push(name);
    }
    Ok(StepOutcome::PodsDeleted(deleted))
}
