//! ReplicaSet controller: keeps `spec.replicas` pods from the template, reports how many
//! are ready and available.

use super::util::{controller_ref, controller_uid, is_active, is_ready, write_status};
use super::{Ctx, Snapshot, in_namespace};
use crate::apimachinery::events::{EventType, Recorder};
use crate::apimachinery::names::random_suffix;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

pub async fn reconcile(ctx: &Ctx, snap: &Snapshot) -> Result<(), kube::Error> {
    for rs in &snap.replicasets {
        if rs.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let ns = rs.namespace().unwrap_or_default();
        let uid = rs.uid().unwrap_or_default();
        let desired = rs
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1)
            .max(0) as usize;
        let mut pods: Vec<&Pod> = in_namespace(&snap.pods, &ns)
            .filter(|p| controller_uid(*p).as_deref() == Some(uid.as_str()) && is_active(p))
            .collect();
        let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        let rs_ref = Recorder::reference(rs);
        if pods.len() < desired {
            for _ in pods.len()..desired {
                let pod = pod_from_template(rs);
                let created = pods_api.create(&PostParams::default(), &pod).await?;
                ctx.replicasets
                    .publish(
                        &rs_ref,
                        EventType::Normal,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", created.name_any()),
                    )
                    .await;
            }
        } else if pods.len() > desired {
            // Delete the least useful first: unscheduled, not running, not ready, newest.
            pods.sort_by_key(|p| {
                let scheduled = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
                let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                let created = p
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.as_nanosecond())
                    .unwrap_or(0);
                (scheduled, running, is_ready(p), std::cmp::Reverse(created))
            });
            for pod in pods.iter().take(pods.len() - desired) {
                match pods_api
                    .delete(&pod.name_any(), &DeleteParams::default())
                    .await
                {
                    Ok(_) => {
                        ctx.replicasets
                            .publish(
                                &rs_ref,
                                EventType::Normal,
                                "SuccessfulDelete",
                                &format!("Deleted pod: {}", pod.name_any()),
                            )
                            .await
                    }
                    Err(e) if super::util::is_benign(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let ready = pods.iter().filter(|p| is_ready(p)).count() as i32;
        let status = ReplicaSetStatus {
            replicas: pods.len() as i32,
            fully_labeled_replicas: Some(pods.len() as i32),
            ready_replicas: Some(ready),
            available_replicas: Some(ready),
            observed_generation: rs.metadata.generation,
            ..Default::default()
        };
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
        write_status(&api, &rs.name_any(), rs.status.as_ref(), &status).await?;
    }
    Ok(())
}

fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{}-{}", rs.name_any(), random_suffix())),
            namespace: rs.namespace(),
            labels: meta.labels,
            annotations: meta.annotations,
            owner_references: Some(vec![controller_ref(rs)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}
