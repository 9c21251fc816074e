//! StatefulSet controller: pods `<name>-0..n-1` created in order (each once the previous is
//! Ready, unless podManagementPolicy is Parallel), a PVC per volumeClaimTemplate and ordinal
//! that outlives its pod, rolling updates from the highest ordinal down.

use super::util::{
    controller_ref, controller_uid, is_ready, is_terminating, pod_template_hash, write_status,
};
use super::{Ctx, Snapshot, in_namespace};
use crate::apimachinery::events::{EventType, Recorder};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume,
};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use std::collections::BTreeMap;

const REVISION_LABEL: &str = "controller-revision-hash";

pub async fn reconcile(ctx: &Ctx, snap: &Snapshot) -> Result<(), kube::Error> {
    for sts in &snap.statefulsets {
        if sts.metadata.deletion_timestamp.is_none() {
            reconcile_one(ctx, snap, sts).await?;
        }
    }
    Ok(())
}

fn ordinal(sts_name: &str, pod_name: &str) -> Option<i32> {
    pod_name
        .strip_prefix(sts_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

async fn reconcile_one(ctx: &Ctx, snap: &Snapshot, sts: &StatefulSet) -> Result<(), kube::Error> {
    let ns = sts.namespace().unwrap_or_default();
    let name = sts.name_any();
    let uid = sts.uid().unwrap_or_default();
    let spec = sts.spec.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let update_revision = format!("{name}-{}", pod_template_hash(&spec.template));
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let sts_ref = Recorder::reference(sts);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pvc_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let mut pods: BTreeMap<i32, &Pod> = BTreeMap::new();
    for pod in in_namespace(&snap.pods, &ns) {
        if controller_uid(pod).as_deref() == Some(uid.as_str())
            && let Some(i) = ordinal(&name, &pod.name_any())
        {
            pods.insert(i, pod);
        }
    }
    let any_terminating = pods.values().any(|p| is_terminating(*p));
    let healthy = |p: &Pod| !is_terminating(p) && is_ready(p);

    // Create missing pods (and their claims) in order.
    for i in 0..replicas {
        match pods.get(&i) {
            Some(p) if !parallel && !healthy(p) => break,
            Some(_) => continue,
            None => {
                let pod_name = format!("{name}-{i}");
                for template in spec.volume_claim_templates.iter().flatten() {
                    let claim = format!("{}-{pod_name}", template.name_any());
                    if in_namespace(&snap.pvcs, &ns).any(|c| c.name_any() == claim) {
                        continue;
                    }
                    let mut labels = spec.selector.match_labels.clone().unwrap_or_default();
                    labels.extend(template.labels().clone());
                    let pvc = PersistentVolumeClaim {
                        metadata: ObjectMeta {
                            name: Some(claim.clone()),
                            namespace: Some(ns.clone()),
                            labels: Some(labels),
                            annotations: template.metadata.annotations.clone(),
                            ..Default::default()
                        },
                        spec: template.spec.clone(),
                        status: None,
                    };
                    match pvc_api.create(&PostParams::default(), &pvc).await {
                        Ok(_) => {
                            ctx.statefulsets
                                .publish(
                                    &sts_ref,
                                    EventType::Normal,
                                    "SuccessfulCreate",
                                    &format!("create Claim {claim} Pod {pod_name} in StatefulSet {name} success"),
                                )
                                .await
                        }
                        Err(e) if super::util::is_benign(&e) => {}
                        Err(e) => return Err(e),
                    }
                }
                let pod = pod_for(sts, i, &update_revision);
                match pods_api.create(&PostParams::default(), &pod).await {
                    Ok(_) => {
                        ctx.statefulsets
                            .publish(
                                &sts_ref,
                                EventType::Normal,
                                "SuccessfulCreate",
                                &format!("create Pod {pod_name} in StatefulSet {name} successful"),
                            )
                            .await
                    }
                    Err(e) if super::util::is_benign(&e) => {}
                    Err(e) => return Err(e),
                }
                if !parallel {
                    break;
                }
            }
        }
    }

    // Scale down from the highest ordinal, one at a time.
    let excess: Vec<(&i32, &&Pod)> = pods.iter().filter(|(i, _)| **i >= replicas).collect();
    if let Some((_, pod)) = excess.last()
        && !any_terminating
    {
        delete_pod(ctx, &pods_api, &sts_ref, &name, pod).await?;
    }

    // Rolling update: replace the highest pod still on an old revision once all are healthy.
    let all_healthy = (0..replicas).all(|i| pods.get(&i).is_some_and(|p| healthy(p)));
    if all_healthy && !any_terminating && excess.is_empty() {
        let partition = spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .unwrap_or(0);
        let on_delete = spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref())
            == Some("OnDelete");
        let stale = pods.iter().rev().find(|(i, p)| {
            **i >= partition && p.labels().get(REVISION_LABEL) != Some(&update_revision)
        });
        if let Some((_, pod)) = stale
            && !on_delete
        {
            delete_pod(ctx, &pods_api, &sts_ref, &name, pod).await?;
        }
    }

    let active: Vec<&&Pod> = pods.values().filter(|p| !is_terminating(**p)).collect();
    let updated = active
        .iter()
        .filter(|p| p.labels().get(REVISION_LABEL) == Some(&update_revision))
        .count() as i32;
    let ready = active.iter().filter(|p| is_ready(p)).count() as i32;
    let previous = sts.status.clone().unwrap_or_default();
    let current_revision = if updated == replicas && active.len() as i32 == replicas {
        update_revision.clone()
    } else {
        previous
            .current_revision
            .clone()
            .unwrap_or_else(|| update_revision.clone())
    };
    let current = active
        .iter()
        .filter(|p| p.labels().get(REVISION_LABEL) == Some(&current_revision))
        .count() as i32;
    let status = StatefulSetStatus {
        observed_generation: sts.metadata.generation,
        replicas: active.len() as i32,
        ready_replicas: Some(ready),
        available_replicas: Some(ready),
        current_replicas: Some(current),
        updated_replicas: Some(updated),
        current_revision: Some(current_revision),
        update_revision: Some(update_revision),
        collision_count: Some(previous.collision_count.unwrap_or(0)),
        conditions: previous.conditions,
    };
    let api: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    write_status(&api, &name, sts.status.as_ref(), &status).await?;
    Ok(())
}

async fn delete_pod(
    ctx: &Ctx,
    api: &Api<Pod>,
    sts_ref: &k8s_openapi::api::core::v1::ObjectReference,
    sts_name: &str,
    pod: &Pod,
) -> Result<(), kube::Error> {
    match api.delete(&pod.name_any(), &DeleteParams::default()).await {
        Ok(_) => {
            ctx.statefulsets
                .publish(
                    sts_ref,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!(
                        "delete Pod {} in StatefulSet {sts_name} successful",
                        pod.name_any()
                    ),
                )
                .await;
            Ok(())
        }
        Err(e) if super::util::is_benign(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

fn pod_for(sts: &StatefulSet, i: i32, revision: &str) -> Pod {
    let spec = sts.spec.clone().unwrap_or_default();
    let name = format!("{}-{i}", sts.name_any());
    let meta = spec.template.metadata.clone().unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    labels.insert(REVISION_LABEL.into(), revision.into());
    labels.insert("statefulset.kubernetes.io/pod-name".into(), name.clone());
    labels.insert("apps.kubernetes.io/pod-index".into(), i.to_string());
    let mut pod_spec = spec.template.spec.clone().unwrap_or_default();
    pod_spec.hostname = Some(name.clone());
    if !spec.service_name.clone().unwrap_or_default().is_empty() {
        pod_spec.subdomain = spec.service_name.clone();
    }
    let volumes = pod_spec.volumes.get_or_insert_with(Vec::new);
    for template in spec.volume_claim_templates.iter().flatten() {
        let vname = template.name_any();
        volumes.retain(|v| v.name != vname);
        volumes.push(Volume {
            name: vname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{vname}-{name}"),
                read_only: None,
            }),
            ..Default::default()
        });
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: sts.namespace(),
            labels: Some(labels),
            annotations: meta.annotations,
            owner_references: Some(vec![controller_ref(sts)]),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}
