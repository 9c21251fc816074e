//! On a timeout: fetch the pods and events the condition is about, and let
//! [`judge::diagnosis`](crate::judge::diagnosis) say what is stuck.

use super::WaitFor;
use crate::cluster::Target;
use crate::judge::diagnosis;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams};
use std::collections::HashSet;

/// Why `cond` does not hold, for the timeout message.
pub(super) async fn why_not(target: &Target, cond: &WaitFor) -> String {
    match cond {
        WaitFor::PodsGone(selector) => leftovers(target, selector).await,
        _ => not_ready(target, cond.selector().as_deref()).await,
    }
}

/// Why pods are not ready: image pulls, scheduling, crashes, waiting reasons.
async fn not_ready(target: &Target, selector: Option<&str>) -> String {
    let params = match selector {
        Some(sel) => ListParams::default().labels(sel),
        None => ListParams::default(),
    };
    let pods = Api::<Pod>::namespaced(target.client.clone(), &target.namespace)
        .list(&params)
        .await;
    let Ok(pods) = pods else {
        return "  (could not list pods to diagnose)".into();
    };
    let events = Api::<Event>::namespaced(target.client.clone(), &target.namespace)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    diagnosis::not_ready(&pods.items, &events, &target.namespace)
}

/// Which pods remain, and whether the ReplicaSets that own them still exist.
async fn leftovers(target: &Target, selector: &str) -> String {
    let pods = super::list_pods(target, selector).await.unwrap_or_default();
    let replicasets = Api::<ReplicaSet>::namespaced(target.client.clone(), &target.namespace);
    let mut existing = HashSet::new();
    for owner in pods
        .iter()
        .filter_map(|p| p.metadata.owner_references.as_ref()?.first())
        .filter(|o| o.kind == "ReplicaSet")
    {
        let found = replicasets.get_opt(&owner.name).await.ok().flatten();
        if found.is_some_and(|rs| rs.metadata.uid.as_deref() == Some(owner.uid.as_str())) {
            existing.insert(owner.uid.clone());
        }
    }
    diagnosis::leftovers(
        &pods,
        |o| o.kind != "ReplicaSet" || existing.contains(&o.uid),
        &target.namespace,
    )
}
