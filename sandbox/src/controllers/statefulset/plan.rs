//! What the StatefulSet controller decides from the StatefulSet, its pods and the claims of
//! its namespace: pods (with their claims) to create in order, at most one pod to delete
//! (scale-down or rolling update, highest ordinal first), and the status.

use crate::controllers::util::{controller_ref, is_ready, is_terminating, pod_template_hash};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume,
};
use kube::ResourceExt;
use kube::api::ObjectMeta;
use std::collections::BTreeMap;

pub(super) const REVISION_LABEL: &str = "controller-revision-hash";

/// A pod to create, after the claims it mounts that do not exist yet.
#[derive(Debug, Clone)]
pub(super) struct Create {
    pub(super) claims: Vec<PersistentVolumeClaim>,
    pub(super) pod: Pod,
}

#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) create: Vec<Create>,
    pub(super) delete: Option<Pod>,
    pub(super) status: StatefulSetStatus,
}

fn ordinal(sts_name: &str, pod_name: &str) -> Option<i32> {
    pod_name
        .strip_prefix(sts_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

fn healthy(p: &Pod) -> bool {
    !is_terminating(p) && is_ready(p)
}

/// Plans one reconcile of `sts` from the pods it controls and the claims of its namespace.
pub(super) fn plan(sts: &StatefulSet, pods: &[Pod], claims: &[PersistentVolumeClaim]) -> Plan {
    let name = sts.name_any();
    let spec = sts.spec.clone();
    let revision = format!("{name}-{}", pod_template_hash(&spec.template));
    let pods: BTreeMap<i32, &Pod> = pods
        .iter()
        .filter_map(|p| Some((ordinal(&name, &p.name_any())?, p)))
        .collect();
    Plan {
        create: creations(sts, &spec, &pods, claims, &revision),
        delete: deletion(&spec, &pods, &revision),
        status: status(sts, &pods, revision),
    }
}

/// Missing pods in ordinal order; one at a time, each once the ones before are Ready,
/// unless podManagementPolicy is Parallel.
fn creations(
    sts: &StatefulSet,
    spec: &StatefulSetSpec,
    pods: &BTreeMap<i32, &Pod>,
    claims: &[PersistentVolumeClaim],
    revision: &str,
) -> Vec<Create> {
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let mut create = Vec::new();
    for i in 0..spec.replicas.unwrap_or(1).max(0) {
        match pods.get(&i) {
            Some(p) if !parallel && !healthy(p) => break,
            Some(_) => continue,
            None => {
                create.push(Create {
                    claims: missing_claims(sts, spec, i, claims),
                    pod: pod_for(sts, i, revision),
                });
                if !parallel {
                    break;
                }
            }
        }
    }
    create
}

fn missing_claims(
    sts: &StatefulSet,
    spec: &StatefulSetSpec,
    i: i32,
    claims: &[PersistentVolumeClaim],
) -> Vec<PersistentVolumeClaim> {
    let pod_name = format!("{}-{i}", sts.name_any());
    spec.volume_claim_templates
        .iter()
        .flatten()
        .filter_map(|template| {
            let claim = format!("{}-{pod_name}", template.name_any());
            if claims.iter().any(|c| c.name_any() == claim) {
                return None;
            }
            let mut labels = spec.selector.match_labels.clone().unwrap_or_default();
            labels.extend(template.labels().clone());
            Some(PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim),
                    namespace: sts.namespace(),
                    labels: Some(labels),
                    annotations: template.metadata.annotations.clone(),
                    ..Default::default()
                },
                spec: template.spec.clone(),
                status: None,
            })
        })
        .collect()
}

/// The pod to delete, if any: the highest ordinal beyond the replicas, else (all pods
/// healthy) the highest one from `partition` up still on an old revision.
fn deletion(spec: &StatefulSetSpec, pods: &BTreeMap<i32, &Pod>, revision: &str) -> Option<Pod> {
    if pods.values().any(|p| is_terminating(*p)) {
        return None;
    }
    let replicas = spec.replicas.unwrap_or(1).max(0);
    if let Some((_, excess)) = pods.range(replicas..).next_back() {
        return Some((*excess).clone());
    }
    let all_healthy = (0..replicas).all(|i| pods.get(&i).is_some_and(|p| healthy(p)));
    let strategy = spec.update_strategy.as_ref();
    if !all_healthy || strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
        return None;
    }
    let partition = strategy
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    pods.range(partition..)
        .rev()
        .find(|(_, p)| p.labels().get(REVISION_LABEL).map(String::as_str) != Some(revision))
        .map(|(_, p)| (*p).clone())
}

fn status(
    sts: &StatefulSet,
    pods: &BTreeMap<i32, &Pod>,
    update_revision: String,
) -> StatefulSetStatus {
    let replicas = sts.spec.replicas.unwrap_or(1).max(0);
    let active: Vec<&Pod> = pods
        .values()
        .copied()
        .filter(|p| !is_terminating(*p))
        .collect();
    let on = |revision: &str| {
        active
            .iter()
            .filter(|p| p.labels().get(REVISION_LABEL).map(String::as_str) == Some(revision))
            .count() as i32
    };
    let updated = on(&update_revision);
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
    StatefulSetStatus {
        observed_generation: sts.metadata.generation,
        replicas: active.len() as i32,
        ready_replicas: Some(ready),
        available_replicas: Some(ready),
        current_replicas: Some(on(&current_revision)),
        updated_replicas: Some(updated),
        current_revision: Some(current_revision),
        update_revision: Some(update_revision),
        collision_count: Some(previous.collision_count.unwrap_or(0)),
        conditions: previous.conditions,
    }
}

/// Pod `i` of `sts`: stable name and hostname, its claims mounted, labelled with its
/// revision and ordinal.
fn pod_for(sts: &StatefulSet, i: i32, revision: &str) -> Pod {
    let spec = sts.spec.clone();
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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{RollingUpdateStatefulSetStrategy, StatefulSetUpdateStrategy};
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn stateful_set(replicas: i32, image: &str) -> StatefulSet {
        let labels = BTreeMap::from([("app".to_string(), "db".to_string())]);
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("db".into()),
                namespace: Some("demo".into()),
                uid: Some("sts".into()),
                ..Default::default()
            },
            spec: StatefulSetSpec {
                replicas: Some(replicas),
                service_name: Some("db".into()),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![k8s_openapi::api::core::v1::Container {
                            name: "db".into(),
                            image: Some(image.into()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                }]),
                ..Default::default()
            },
            status: None,
        }
    }

    /// Pod `i` as `sts` would create it, Ready or not.
    fn running(sts: &StatefulSet, i: i32, ready: bool) -> Pod {
        let revision = plan(sts, &[], &[]).status.update_revision.unwrap();
        let mut pod = pod_for(sts, i, &revision);
        pod.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        pod
    }

    fn names(pods: impl IntoIterator<Item = Pod>) -> Vec<String> {
        pods.into_iter().map(|p| p.name_any()).collect()
    }

    #[test]
    fn pods_are_created_in_order_each_once_the_previous_is_ready() {
        let sts = stateful_set(3, "db:1");
        let first = plan(&sts, &[], &[]);
        assert_eq!(names(first.create.iter().map(|c| c.pod.clone())), ["db-0"]);
        let claims = &first.create[0].claims;
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].name_any(), "data-db-0");
        assert_eq!(claims[0].labels()["app"], "db");
        let pod = &first.create[0].pod;
        assert_eq!(pod.spec.as_ref().unwrap().hostname.as_deref(), Some("db-0"));
        assert_eq!(pod.spec.as_ref().unwrap().subdomain.as_deref(), Some("db"));
        assert_eq!(pod.labels()["apps.kubernetes.io/pod-index"], "0");

        let waiting = plan(&sts, &[running(&sts, 0, false)], &[]);
        assert!(waiting.create.is_empty(), "db-0 is not Ready yet");

        let claim = first.create[0].claims[0].clone();
        let next = plan(&sts, &[running(&sts, 0, true)], &[claim]);
        assert_eq!(names(next.create.iter().map(|c| c.pod.clone())), ["db-1"]);
        assert_eq!(next.create[0].claims[0].name_any(), "data-db-1");
        assert_eq!(next.status.replicas, 1);
        assert_eq!(next.status.ready_replicas, Some(1));

        let mut parallel = sts.clone();
        parallel.spec.pod_management_policy = Some("Parallel".into());
        let all = plan(&parallel, &[], &[]);
        assert_eq!(
            names(all.create.iter().map(|c| c.pod.clone())),
            ["db-0", "db-1", "db-2"]
        );
    }

    #[test]
    fn scale_down_and_updates_replace_the_highest_ordinal_first() {
        let sts = stateful_set(3, "db:1");
        let pods: Vec<Pod> = (0..3).map(|i| running(&sts, i, true)).collect();
        let down = plan(&stateful_set(1, "db:1"), &pods, &[]);
        assert_eq!(names(down.delete), ["db-2"]);

        let v2 = stateful_set(3, "db:2");
        let update = plan(&v2, &pods, &[]);
        assert!(update.create.is_empty());
        assert_eq!(names(update.delete), ["db-2"]);
        assert_eq!(update.status.updated_replicas, Some(0));

        let mut partitioned = v2.clone();
        partitioned.spec.update_strategy = Some(StatefulSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateStatefulSetStrategy {
                partition: Some(3),
                max_unavailable: None,
            }),
        });
        assert!(plan(&partitioned, &pods, &[]).delete.is_none());

        let mut terminating = pods.clone();
        terminating[2].metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now()),
        );
        assert!(
            plan(&v2, &terminating, &[]).delete.is_none(),
            "one pod at a time"
        );
    }
}
