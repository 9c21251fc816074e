//! PersistentVolume provisioning: every pending claim gets a PersistentVolume backed by a
//! directory under the sandbox's state directory, and is bound to it; volumes whose claim
//! is gone are deleted (with their data) or released, as their reclaim policy says.

use super::Ctx;
use super::Snapshot;
use crate::apimachinery::events::{EventType, Recorder};
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use std::collections::{BTreeMap, HashSet};

/// The provisioner name shown on volumes and in events.
pub const PROVISIONER: &str = "hk8s.dev/hostpath";

pub async fn reconcile(ctx: &Ctx, snap: &Snapshot) -> Result<(), kube::Error> {
    let pv_api: Api<PersistentVolume> = Api::all(ctx.client.clone());
    for pvc in &snap.pvcs {
        if pvc.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        if bound {
            continue;
        }
        provision(ctx, snap, &pv_api, pvc).await?;
    }
    let claims: HashSet<String> = snap.pvcs.iter().filter_map(|c| c.uid()).collect();
    for pv in &snap.pvs {
        let Some(claim) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
            continue;
        };
        let Some(claim_uid) = &claim.uid else {
            continue;
        };
        if claims.contains(claim_uid) || pv.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let policy = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.clone());
        if policy.as_deref() == Some("Delete") {
            match pv_api
                .delete(&pv.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {
                    let _ = std::fs::remove_dir_all(crate::paths::volume_dir(
                        &ctx.config.state_dir,
                        &pv.name_any(),
                    ));
                }
                Err(e) if super::util::is_benign(&e) => {}
                Err(e) => return Err(e),
            }
        } else if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Released") {
            let patch = serde_json::json!({ "status": { "phase": "Released" } });
            pv_api
                .patch_status(
                    &pv.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
    }
    Ok(())
}

async fn provision(
    ctx: &Ctx,
    snap: &Snapshot,
    pv_api: &Api<PersistentVolume>,
    pvc: &PersistentVolumeClaim,
) -> Result<(), kube::Error> {
    let ns = pvc.namespace().unwrap_or_default();
    let uid = pvc.uid().unwrap_or_default();
    let spec = pvc.spec.clone().unwrap_or_default();
    let pv_name = spec
        .volume_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("pvc-{uid}"));
    let size = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage").cloned())
        .unwrap_or_else(|| Quantity("1Gi".into()));
    let existing = snap.pvs.iter().find(|pv| pv.name_any() == pv_name);
    if existing.is_none() {
        let dir = crate::paths::volume_dir(&ctx.config.state_dir, &pv_name);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(volume = %pv_name, error = %e, "cannot create the volume directory");
            return Ok(());
        }
        let pv = PersistentVolume {
            metadata: ObjectMeta {
                name: Some(pv_name.clone()),
                annotations: Some(BTreeMap::from([(
                    "pv.kubernetes.io/provisioned-by".to_string(),
                    PROVISIONER.to_string(),
                )])),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: Some(BTreeMap::from([("storage".to_string(), size.clone())])),
                access_modes: spec
                    .access_modes
                    .clone()
                    .or_else(|| Some(vec!["ReadWriteOnce".into()])),
                host_path: Some(HostPathVolumeSource {
                    path: dir.display().to_string(),
                    type_: Some("DirectoryOrCreate".into()),
                }),
                claim_ref: Some(ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("PersistentVolumeClaim".into()),
                    name: pvc.metadata.name.clone(),
                    namespace: Some(ns.clone()),
                    uid: Some(uid.clone()),
                    resource_version: pvc.resource_version(),
                    field_path: None,
                }),
                persistent_volume_reclaim_policy: Some("Delete".into()),
                storage_class_name: spec.storage_class_name.clone(),
                volume_mode: Some("Filesystem".into()),
                ..Default::default()
            }),
            status: None,
        };
        match pv_api.create(&PostParams::default(), &pv).await {
            Ok(_) => {}
            Err(e) if super::util::is_benign(&e) => {}
            Err(e) => return Err(e),
        }
        ctx.volumes
            .publish(
                &Recorder::reference(pvc),
                EventType::Normal,
                "ProvisioningSucceeded",
                &format!("Successfully provisioned volume {pv_name} using {PROVISIONER}"),
            )
            .await;
    }
    let bound = serde_json::json!({ "status": { "phase": "Bound" } });
    pv_api
        .patch_status(&pv_name, &PatchParams::default(), &Patch::Merge(&bound))
        .await?;
    let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    if spec.volume_name.as_deref() != Some(pv_name.as_str()) {
        let patch = serde_json::json!({
            "metadata": { "annotations": {
                "pv.kubernetes.io/bind-completed": "yes",
                "pv.kubernetes.io/bound-by-controller": "yes",
                "volume.kubernetes.io/storage-provisioner": PROVISIONER,
                "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER,
            } },
            "spec": { "volumeName": pv_name },
        });
        pvc_api
            .patch(
                &pvc.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
    }
    let status = serde_json::json!({ "status": {
        "phase": "Bound",
        "accessModes": spec.access_modes.clone().unwrap_or_else(|| vec!["ReadWriteOnce".into()]),
        "capacity": { "storage": size },
    } });
    pvc_api
        .patch_status(
            &pvc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await?;
    Ok(())
}
