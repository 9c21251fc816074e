//! PersistentVolume provisioning, as the persistentvolume-controller's two loops: every
//! pending claim gets a PersistentVolume backed by a directory under the sandbox's state
//! directory and is bound to it; a volume whose claim is gone is deleted (with its data) or
//! released, as its reclaim policy says.

use super::util::is_benign;
use super::{Error, Shared, api_error};
use crate::apimachinery::events::{EventType, Recorder};
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

/// The provisioner name shown on volumes and in events.
pub(crate) const PROVISIONER: &str = "hk8s.dev/hostpath";

struct Ctx {
    shared: Arc<Shared>,
    events: Recorder,
}

/// Provisions and binds claims on their changes.
pub(super) fn run_claims(
    shared: &Arc<Shared>,
    shutdown: Shutdown,
) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let controller = Controller::for_stream(informers.pvcs.subscribe(), informers.pvcs.store());
    let ctx = Arc::new(Ctx {
        events: Recorder::new(shared.client.clone(), "persistentvolume-controller"),
        shared: shared.clone(),
    });
    workqueue::run("volume-claims", controller, reconcile_claim, ctx, shutdown)
}

/// Reclaims volumes on their changes and their claims'.
pub(super) fn run_volumes(
    shared: &Arc<Shared>,
    shutdown: Shutdown,
) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let volumes = informers.pvs.store();
    let controller = Controller::for_stream(informers.pvs.subscribe(), volumes.clone())
        .watches_stream(informers.pvcs.subscribe(), move |claim| {
            claimed_by(&volumes, &claim)
        });
    workqueue::run(
        "volumes",
        controller,
        reconcile_volume,
        shared.clone(),
        shutdown,
    )
}

fn claim_uid(pv: &PersistentVolume) -> Option<&str> {
    pv.spec.as_ref()?.claim_ref.as_ref()?.uid.as_deref()
}

/// The volumes bound to `claim`.
fn claimed_by(
    volumes: &Store<PersistentVolume>,
    claim: &PersistentVolumeClaim,
) -> Vec<ObjectRef<PersistentVolume>> {
    let uid = claim.uid();
    volumes
        .state()
        .iter()
        .filter(|pv| claim_uid(pv).is_some() && claim_uid(pv) == uid.as_deref())
        .map(|pv| ObjectRef::from_obj(&**pv))
        .collect()
}

async fn reconcile_claim(pvc: Arc<PersistentVolumeClaim>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    if bound || pvc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let pv = volume_for(&pvc, &ctx.shared.config.state_dir);
    let pv_name = pv.name_any();
    let exists = ctx
        .shared
        .informers
        .pvs
        .store()
        .get(&ObjectRef::new(&pv_name))
        .is_some();
    if !exists {
        create_volume(&pvc, &pv, &ctx).await?;
    }
    bind(&pvc, &pv, &ctx.shared.client).await?;
    Ok(Action::await_change())
}

/// The volume for `pvc`: the one it names, else `pvc-<uid>`, of the size it requests.
fn volume_for(pvc: &PersistentVolumeClaim, state_dir: &Path) -> PersistentVolume {
    let uid = pvc.uid().unwrap_or_default();
    let spec = pvc.spec.clone().unwrap_or_default();
    let pv_name = spec
        .volume_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("pvc-{uid}"));
    let dir = crate::paths::volume_dir(state_dir, &pv_name);
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(pv_name),
            annotations: Some(BTreeMap::from([(
                "pv.kubernetes.io/provisioned-by".to_string(),
                PROVISIONER.to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: Some(BTreeMap::from([("storage".to_string(), size(pvc))])),
            access_modes: Some(access_modes(pvc)),
            host_path: Some(HostPathVolumeSource {
                path: dir.display().to_string(),
                type_: Some("DirectoryOrCreate".into()),
            }),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                name: pvc.metadata.name.clone(),
                namespace: pvc.namespace(),
                uid: Some(uid),
                resource_version: pvc.resource_version(),
                field_path: None,
            }),
            persistent_volume_reclaim_policy: Some("Delete".into()),
            storage_class_name: spec.storage_class_name.clone(),
            volume_mode: Some("Filesystem".into()),
            ..Default::default()
        }),
        status: None,
    }
}

fn size(pvc: &PersistentVolumeClaim) -> Quantity {
    pvc.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage").cloned())
        .unwrap_or_else(|| Quantity("1Gi".into()))
}

fn access_modes(pvc: &PersistentVolumeClaim) -> Vec<String> {
    pvc.spec
        .as_ref()
        .and_then(|s| s.access_modes.clone())
        .unwrap_or_else(|| vec!["ReadWriteOnce".into()])
}

async fn create_volume(
    pvc: &PersistentVolumeClaim,
    pv: &PersistentVolume,
    ctx: &Ctx,
) -> Result<(), Error> {
    let pv_name = pv.name_any();
    let dir = crate::paths::volume_dir(&ctx.shared.config.state_dir, &pv_name);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        what: format!(
            "creating the directory {} of volume {pv_name}",
            dir.display()
        ),
        source,
    })?;
    let api: Api<PersistentVolume> = Api::all(ctx.shared.client.clone());
    match api.create(&PostParams::default(), pv).await {
        Ok(_) => {
            let message = format!("Successfully provisioned volume {pv_name} using {PROVISIONER}");
            ctx.events
                .publish(
                    &Recorder::reference(pvc),
                    EventType::Normal,
                    "ProvisioningSucceeded",
                    &message,
                )
                .await;
            Ok(())
        }
        Err(e) if is_benign(&e) => Ok(()),
        Err(e) => Err(api_error(format!("creating volume {pv_name}"))(e)),
    }
}

/// Marks the volume and the claim Bound, and records the volume on the claim.
async fn bind(
    pvc: &PersistentVolumeClaim,
    pv: &PersistentVolume,
    client: &kube::Client,
) -> Result<(), Error> {
    let pv_name = pv.name_any();
    let ns = pvc.namespace().unwrap_or_default();
    let claim = format!("claim {ns}/{}", pvc.name_any());
    let pp = PatchParams::default();
    let bound = serde_json::json!({ "status": { "phase": "Bound" } });
    Api::<PersistentVolume>::all(client.clone())
        .patch_status(&pv_name, &pp, &Patch::Merge(&bound))
        .await
        .map_err(api_error(format!("binding volume {pv_name} to {claim}")))?;
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    let named = pvc.spec.as_ref().and_then(|s| s.volume_name.as_deref());
    if named != Some(pv_name.as_str()) {
        let patch = serde_json::json!({
            "metadata": { "annotations": {
                "pv.kubernetes.io/bind-completed": "yes",
                "pv.kubernetes.io/bound-by-controller": "yes",
                "volume.kubernetes.io/storage-provisioner": PROVISIONER,
                "volume.beta.kubernetes.io/storage-provisioner": PROVISIONER,
            } },
            "spec": { "volumeName": pv_name },
        });
        api.patch(&pvc.name_any(), &pp, &Patch::Merge(&patch))
            .await
            .map_err(api_error(format!("recording volume {pv_name} on {claim}")))?;
    }
    let status = serde_json::json!({ "status": {
        "phase": "Bound",
        "accessModes": access_modes(pvc),
        "capacity": { "storage": size(pvc) },
    } });
    api.patch_status(&pvc.name_any(), &pp, &Patch::Merge(&status))
        .await
        .map_err(api_error(format!("marking {claim} Bound")))?;
    Ok(())
}

/// Deletes (with its directory) or releases a volume whose claim is gone.
async fn reconcile_volume(pv: Arc<PersistentVolume>, shared: Arc<Shared>) -> Result<Action, Error> {
    let Some(claim) = claim_uid(&pv) else {
        return Ok(Action::await_change());
    };
    let claims = shared.informers.pvcs.store();
    if claims.find(|c| c.uid().as_deref() == Some(claim)).is_some()
        || pv.metadata.deletion_timestamp.is_some()
    {
        return Ok(Action::await_change());
    }
    let name = pv.name_any();
    let api: Api<PersistentVolume> = Api::all(shared.client.clone());
    let policy = pv
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
    if policy == Some("Delete") {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                let _ = std::fs::remove_dir_all(crate::paths::volume_dir(
                    &shared.config.state_dir,
                    &name,
                ));
            }
            Err(e) if is_benign(&e) => {}
            Err(e) => return Err(api_error(format!("deleting released volume {name}"))(e)),
        }
    } else if pv.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Released") {
        let patch = serde_json::json!({ "status": { "phase": "Released" } });
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api_error(format!("releasing volume {name}")))?;
    }
    Ok(Action::await_change())
}
