use super::*;
use k8s_openapi::api::apps::v1::{
    DeploymentCondition, DeploymentSpec, DeploymentStrategy, ReplicaSetStatus,
    RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

fn now() -> jiff::Timestamp {
    "2025-01-01T12:00:00Z".parse().unwrap()
}

fn deployment(replicas: i32, image: &str) -> Deployment {
    let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("demo".into()),
            uid: Some("d-uid".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: DeploymentSpec {
            replicas: Some(replicas),
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
                    containers: vec![Container {
                        name: "web".into(),
                        image: Some(image.into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        status: None,
    }
}

fn rolling(mut d: Deployment, surge: i32, unavailable: i32) -> Deployment {
    d.spec.strategy = Some(DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(surge)),
            max_unavailable: Some(IntOrString::Int(unavailable)),
        }),
    });
    d
}

/// The ReplicaSet a plan creates, as the API stores it (created at `second`).
fn created(plan: &Plan, second: i64) -> ReplicaSet {
    let mut rs = plan.create.clone().expect("the plan creates a replica set");
    rs.metadata.uid = Some(format!("rs-{second}"));
    rs.metadata.creation_timestamp = Some(Time(jiff::Timestamp::from_second(second).unwrap()));
    rs
}

/// `rs` scaled to `spec`, with `pods` pods of which `available` are available.
fn at(rs: &ReplicaSet, spec: i32, pods: i32, available: i32) -> ReplicaSet {
    let mut rs = rs.clone();
    rs.spec.replicas = Some(spec);
    rs.status = Some(ReplicaSetStatus {
        replicas: pods,
        ready_replicas: Some(available),
        available_replicas: Some(available),
        ..Default::default()
    });
    rs
}

fn condition<'a>(plan: &'a Plan, type_: &str) -> &'a DeploymentCondition {
    plan.status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_.as_deref() == Some(type_))
        .unwrap()
}

fn scales(plan: &Plan) -> Vec<(String, i32, i32)> {
    plan.scale
        .iter()
        .map(|s| (s.name.clone(), s.from, s.to))
        .collect()
}

#[test]
fn surge_rounds_up_and_unavailable_down() {
    let mut d = Deployment {
        spec: DeploymentSpec::default(),
        ..Default::default()
    };
    assert_eq!(surge_and_unavailable(&d, 3), (1, 0));
    assert_eq!(surge_and_unavailable(&d, 4), (1, 1));
    d = rolling(d, 0, 0);
    assert_eq!(surge_and_unavailable(&d, 3), (0, 1));
}

#[test]
fn a_new_deployment_creates_its_first_replica_set_at_full_size() {
    let d = deployment(3, "web:1");
    let plan = plan(&d, &[], now());
    let rs = plan.create.as_ref().unwrap();
    let hash = pod_template_hash(&d.spec.template);
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert_eq!(rs.namespace().as_deref(), Some("demo"));
    assert_eq!(spec_replicas(rs), 3);
    assert_eq!(rs.annotations()[REVISION], "1");
    assert_eq!(rs.annotations()[DESIRED], "3");
    assert_eq!(rs.annotations()[MAX_REPLICAS], "4");
    assert_eq!(rs.labels()[HASH_LABEL], hash);
    let selector = &rs.spec.selector;
    assert_eq!(selector.match_labels.as_ref().unwrap()[HASH_LABEL], hash);
    assert_eq!(controller_uid(rs).as_deref(), Some("d-uid"));
    assert_eq!(
        plan.events(),
        [format!("Scaled up replica set web-{hash} from 0 to 3")]
    );
    assert!(plan.scale.is_empty());
    assert_eq!(plan.revision.as_deref(), Some("1"));
    let progressing = condition(&plan, "Progressing");
    assert_eq!(progressing.reason.as_deref(), Some("NewReplicaSetCreated"));
    assert_eq!(
        progressing.message.as_deref(),
        Some(format!("Created new replica set \"web-{hash}\"").as_str())
    );
    let available = condition(&plan, "Available");
    assert_eq!(
        (
            available.status.as_deref().unwrap_or_default(),
            available.reason.as_deref()
        ),
        ("False", Some("MinimumReplicasUnavailable"))
    );
    assert_eq!(plan.status.unavailable_replicas, Some(3));
}

#[test]
fn a_complete_rollout_reports_available_and_sets_nothing() {
    let mut d = deployment(2, "web:1");
    let rs = at(&created(&plan(&d, &[], now()), 1), 2, 2, 2);
    let done = plan(&d, std::slice::from_ref(&rs), now());
    assert!(done.create.is_none() && done.scale.is_empty() && done.events().is_empty());
    assert_eq!(
        condition(&done, "Progressing").reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );
    assert_eq!(
        condition(&done, "Available").status.as_deref(),
        Some("True")
    );
    assert_eq!(done.status.unavailable_replicas, None);
    assert_eq!(done.recheck_after, None);
    d.metadata.annotations = Some(BTreeMap::from([(REVISION.into(), "1".into())]));
    assert_eq!(
        plan(&d, &[rs], now()).revision,
        None,
        "the revision is already set"
    );
}

#[test]
fn a_rolling_update_surges_then_scales_old_pods_down_as_new_ones_become_available() {
    let v1 = rolling(deployment(3, "web:1"), 1, 0);
    let old = at(&created(&plan(&v1, &[], now()), 1), 3, 3, 3);
    let v2 = rolling(deployment(3, "web:2"), 1, 0);

    let step = plan(&v2, std::slice::from_ref(&old), now());
    let new = created(&step, 2);
    assert_eq!(spec_replicas(&new), 1, "one surge pod");
    assert_eq!(new.annotations()[REVISION], "2");
    assert_eq!(step.revision.as_deref(), Some("2"));
    assert!(step.scale.is_empty(), "nothing scales in the creating pass");

    let waiting = plan(&v2, &[old.clone(), at(&new, 1, 1, 0)], now());
    assert!(
        waiting.scale.is_empty(),
        "maxUnavailable 0: no old pod goes before a new one is available"
    );
    assert_eq!(
        condition(&waiting, "Progressing").reason.as_deref(),
        Some("ReplicaSetUpdated")
    );

    let step = plan(&v2, &[old.clone(), at(&new, 1, 1, 1)], now());
    assert_eq!(scales(&step), [(old.name_any(), 3, 2)]);
    assert_eq!(
        step.events(),
        [format!(
            "Scaled down replica set {} from 3 to 2",
            old.name_any()
        )]
    );

    let step = plan(&v2, &[at(&old, 2, 2, 2), at(&new, 1, 1, 1)], now());
    assert_eq!(scales(&step), [(new.name_any(), 1, 2)]);
    assert_eq!(step.scale[0].desired, 3);
    assert_eq!(
        step.events(),
        [format!(
            "Scaled up replica set {} from 1 to 2",
            new.name_any()
        )]
    );
}

#[test]
fn without_surge_old_pods_go_first_within_max_unavailable() {
    let v1 = rolling(deployment(3, "web:1"), 0, 1);
    let old = at(&created(&plan(&v1, &[], now()), 1), 3, 3, 3);
    let v2 = rolling(deployment(3, "web:2"), 0, 1);
    let step = plan(&v2, std::slice::from_ref(&old), now());
    let new = created(&step, 2);
    assert_eq!(spec_replicas(&new), 0, "no room above 3 pods");

    let step = plan(&v2, &[old.clone(), at(&new, 0, 0, 0)], now());
    assert_eq!(
        scales(&step),
        [(old.name_any(), 3, 2)],
        "one may be unavailable"
    );

    // The old ReplicaSet's status still counts 3 pods: the one going away is not counted.
    let step = plan(&v2, &[at(&old, 2, 3, 3), at(&new, 0, 0, 0)], now());
    assert_eq!(scales(&step), [(new.name_any(), 0, 1)]);

    let step = plan(&v2, &[at(&old, 2, 2, 2), at(&new, 1, 1, 1)], now());
    assert_eq!(scales(&step), [(old.name_any(), 2, 1)]);
}

#[test]
fn unavailable_old_pods_are_scaled_down_first() {
    let v1 = rolling(deployment(4, "web:1"), 1, 1);
    let old = created(&plan(&v1, &[], now()), 1);
    let v2 = rolling(deployment(4, "web:2"), 1, 1);
    let new = created(&plan(&v2, &[at(&old, 4, 4, 4)], now()), 2);
    // Two old pods crashed: they go regardless of availability.
    let step = plan(&v2, &[at(&old, 4, 4, 2), at(&new, 1, 1, 0)], now());
    assert_eq!(
        scales(&step),
        [(old.name_any(), 4, 3)],
        "one of the two crashed pods; one unavailable pod allowed"
    );
}

#[test]
fn recreate_scales_every_old_replica_set_to_zero_before_the_new_one_up() {
    let mut v1 = deployment(3, "web:1");
    v1.spec.strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    let old = at(&created(&plan(&v1, &[], now()), 1), 3, 3, 3);
    let mut v2 = v1.clone();
    v2.spec.template.spec.as_mut().unwrap().containers[0].image = Some("web:2".into());

    let step = plan(&v2, std::slice::from_ref(&old), now());
    let new = created(&step, 2);
    assert_eq!(spec_replicas(&new), 0);
    assert_eq!(
        step.events(),
        [format!(
            "Scaled up replica set {} from 0 to 0",
            new.name_any()
        )]
    );

    let step = plan(&v2, &[old.clone(), at(&new, 0, 0, 0)], now());
    assert_eq!(scales(&step), [(old.name_any(), 3, 0)]);

    let terminating = plan(&v2, &[at(&old, 0, 2, 0), at(&new, 0, 0, 0)], now());
    assert!(terminating.scale.is_empty(), "old pods are still running");

    let step = plan(&v2, &[at(&old, 0, 0, 0), at(&new, 0, 0, 0)], now());
    assert_eq!(scales(&step), [(new.name_any(), 0, 3)]);
}

#[test]
fn scaling_down_shrinks_the_replica_set_at_once() {
    let d = deployment(3, "web:1");
    let rs = at(&created(&plan(&d, &[], now()), 1), 3, 3, 3);
    let step = plan(&deployment(1, "web:1"), std::slice::from_ref(&rs), now());
    assert_eq!(scales(&step), [(rs.name_any(), 3, 1)]);
    assert_eq!(
        step.events(),
        [format!(
            "Scaled down replica set {} from 3 to 1",
            rs.name_any()
        )]
    );
}

#[test]
fn a_paused_deployment_neither_creates_nor_scales() {
    let mut d = deployment(3, "web:2");
    d.spec.paused = Some(true);
    let old = at(
        &created(&plan(&deployment(3, "web:1"), &[], now()), 1),
        3,
        3,
        3,
    );
    let step = plan(&d, &[old], now());
    assert!(step.create.is_none() && step.scale.is_empty());
    assert_eq!(step.revision, None);
}

#[test]
fn revisions_count_up_and_the_deployment_carries_its_current_one() {
    let v1 = deployment(1, "web:1");
    let r1 = at(&created(&plan(&v1, &[], now()), 1), 1, 1, 1);
    let v2 = deployment(1, "web:2");
    let step = plan(&v2, std::slice::from_ref(&r1), now());
    let r2 = at(&created(&step, 2), 0, 0, 0);
    let v3 = deployment(1, "web:3");
    let step = plan(&v3, &[r1.clone(), r2.clone()], now());
    assert_eq!(step.create.as_ref().unwrap().annotations()[REVISION], "3");
    assert_eq!(step.revision.as_deref(), Some("3"));
    // Back to the first template: its ReplicaSet is the new one again, renumbered after
    // the newest (as `rollout undo` shows: 1, 2 become 2, 3), its old number in the history.
    let back = plan(&v1, &[r1.clone(), r2], now());
    assert!(back.create.is_none());
    assert_eq!(back.revision.as_deref(), Some("3"));
    let (name, annotations) = back.annotate.expect("the old ReplicaSet is renumbered");
    assert_eq!(name, r1.name_any());
    assert_eq!(annotations[REVISION], "3");
    assert_eq!(annotations[REVISION_HISTORY], "1");
}

#[test]
fn a_rollout_without_progress_exceeds_its_deadline() {
    let mut d = deployment(1, "web:2");
    d.spec.progress_deadline_seconds = Some(10);
    let old = at(
        &created(&plan(&deployment(1, "web:1"), &[], now()), 1),
        1,
        1,
        1,
    );
    let step = plan(&d, std::slice::from_ref(&old), now());
    let new = at(&created(&step, 2), 1, 1, 0);
    let updated = |seconds_ago: i64| {
        let mut d = d.clone();
        let time = Time(now() - jiff::SignedDuration::from_secs(seconds_ago));
        d.status = Some(DeploymentStatus {
            replicas: Some(2),
            updated_replicas: Some(1),
            ready_replicas: Some(1),
            available_replicas: Some(1),
            conditions: Some(vec![DeploymentCondition {
                type_: Some("Progressing".into()),
                status: Some("True".into()),
                reason: Some("ReplicaSetUpdated".into()),
                message: Some(format!("ReplicaSet \"{}\" is progressing.", new.name_any())),
                last_update_time: Some(time.clone()),
                last_transition_time: Some(time),
            }]),
            ..Default::default()
        });
        d
    };
    let stuck = plan(&updated(4), &[old.clone(), new.clone()], now());
    assert_eq!(
        condition(&stuck, "Progressing").reason.as_deref(),
        Some("ReplicaSetUpdated")
    );
    assert_eq!(
        stuck.recheck_after,
        Some(Duration::from_secs(7)),
        "looks again once the deadline passed"
    );

    let late = plan(&updated(11), &[old, new.clone()], now());
    let progressing = condition(&late, "Progressing");
    assert_eq!(
        (
            progressing.status.as_deref().unwrap_or_default(),
            progressing.reason.as_deref()
        ),
        ("False", Some("ProgressDeadlineExceeded"))
    );
    assert_eq!(
        progressing.message.as_deref(),
        Some(
            format!(
                "ReplicaSet \"{}\" has timed out progressing.",
                new.name_any()
            )
            .as_str()
        )
    );
}
