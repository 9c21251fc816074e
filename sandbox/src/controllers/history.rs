//! ControllerRevisions, as Kubernetes' pkg/controller/history keeps them for DaemonSets and
//! StatefulSets: one revision per pod template, named `<owner>-<hash>`, numbered in the
//! order templates were applied, so `kubectl rollout history` lists them and `kubectl
//! rollout undo` patches the owner with a revision's `data`. Going back to an earlier
//! template renumbers its revision as the newest, as the real controllers do.

use crate::apimachinery::errors::is_benign;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// The label naming the revision (template hash) of a revision and of the owner's pods.
pub(crate) const REVISION_HASH: &str = "controller-revision-hash";

/// The revision an owner's current template should have.
pub(crate) struct Snapshot {
    pub(crate) owner: OwnerReference,
    pub(crate) namespace: String,
    pub(crate) hash: String,
    /// The patch that restores the template (`{"spec":{"template":{…,"$patch":"replace"}}}`).
    pub(crate) data: serde_json::Value,
    /// The template's labels; the revision gets these and its hash.
    pub(crate) labels: BTreeMap<String, String>,
    /// The owner's annotations (`kubernetes.io/change-cause` among them).
    pub(crate) annotations: Option<BTreeMap<String, String>>,
    /// How many revisions besides the current one to keep (`revisionHistoryLimit`).
    pub(crate) limit: usize,
}

impl Snapshot {
    /// The revision of `owner` (a DaemonSet or StatefulSet) for its pod `template`.
    pub(crate) fn of<K: kube::Resource<DynamicType = ()>>(
        owner: &K,
        template: &PodTemplateSpec,
        revision_history_limit: Option<i32>,
    ) -> Self {
        let labels = template.metadata.as_ref().and_then(|m| m.labels.clone());
        Snapshot {
            owner: super::util::controller_ref(owner),
            namespace: owner.meta().namespace.clone().unwrap_or_default(),
            hash: super::util::pod_template_hash(template),
            data: template_patch(template),
            labels: labels.unwrap_or_default(),
            annotations: owner.meta().annotations.clone(),
            limit: revision_history_limit.unwrap_or(10).max(0) as usize,
        }
    }
}

/// What each owner's revisions were last made to match (its template hash and the hashes
/// its pods run), so a reconcile that changes neither costs no request.
static RECORDED: Mutex<BTreeMap<String, (String, BTreeSet<String>)>> = Mutex::new(BTreeMap::new());

/// The patch a DaemonSet or StatefulSet revision holds: its pod template, replacing.
pub(crate) fn template_patch(template: &impl serde::Serialize) -> serde_json::Value {
    let mut template = serde_json::to_value(template).unwrap_or_default();
    template["$patch"] = "replace".into();
    serde_json::json!({ "spec": { "template": template } })
}

/// Makes the snapshot the owner's newest revision (creating it, or renumbering the one with
/// the same hash), then deletes the oldest beyond the limit that no pod in `in_use` runs.
pub(crate) async fn record(
    client: &Client,
    snap: &Snapshot,
    in_use: &BTreeSet<String>,
) -> Result<(), kube::Error> {
    let done = (snap.hash.clone(), in_use.clone());
    let recorded = |r: &BTreeMap<_, _>| r.get(&snap.owner.uid) == Some(&done);
    if recorded(&RECORDED.lock().unwrap_or_else(|e| e.into_inner())) {
        return Ok(());
    }
    sync(client, snap, in_use).await?;
    RECORDED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(snap.owner.uid.clone(), done);
    Ok(())
}

async fn sync(
    client: &Client,
    snap: &Snapshot,
    in_use: &BTreeSet<String>,
) -> Result<(), kube::Error> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), &snap.namespace);
    let mut owned: Vec<ControllerRevision> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|r| r.owner_references().iter().any(|o| o.uid == snap.owner.uid))
        .collect();
    owned.sort_by_key(|r| r.revision.unwrap_or(0));
    let newest = owned.last().map_or(0, |r| r.revision.unwrap_or(0));
    let name = format!("{}-{}", snap.owner.name, snap.hash);
    match owned.iter().find(|r| r.name_any() == name) {
        Some(current) if current.revision.unwrap_or(0) == newest => {}
        Some(_) => {
            let patch = serde_json::json!({ "revision": newest + 1 });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        None => create(&api, snap, &name, newest + 1).await?,
    }
    let old: Vec<&ControllerRevision> = owned
        .iter()
        .filter(|r| r.name_any() != name)
        .filter(|r| {
            r.labels()
                .get(REVISION_HASH)
                .is_none_or(|h| !in_use.contains(h))
        })
        .collect();
    for r in old.iter().take(old.len().saturating_sub(snap.limit)) {
        match api.delete(&r.name_any(), &DeleteParams::default()).await {
            Err(e) if !is_benign(&e) => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

async fn create(
    api: &Api<ControllerRevision>,
    snap: &Snapshot,
    name: &str,
    revision: i64,
) -> Result<(), kube::Error> {
    let mut labels = snap.labels.clone();
    labels.insert(REVISION_HASH.into(), snap.hash.clone());
    let revision = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(snap.namespace.clone()),
            labels: Some(labels),
            annotations: snap.annotations.clone(),
            owner_references: Some(vec![snap.owner.clone()]),
            ..Default::default()
        },
        data: RawExtension(snap.data.clone()),
        revision: Some(revision),
    };
    match api.create(&PostParams::default(), &revision).await {
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        other => other.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_replaces_the_whole_template() {
        let patch = template_patch(&serde_json::json!({"metadata": {"labels": {"app": "a"}}}));
        assert_eq!(
            patch,
            serde_json::json!({"spec": {"template": {"metadata": {"labels": {"app": "a"}}, "$patch": "replace"}}})
        );
    }
}
