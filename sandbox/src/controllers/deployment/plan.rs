//! What the Deployment controller decides, as a pure function of the Deployment and its
//! ReplicaSets: the ReplicaSet to create, the ones to scale (rolling within maxSurge and
//! maxUnavailable, or Recreate), the status and conditions, the events, the revision.

use crate::controllers::util::{controller_ref, controller_uid, pod_template_hash};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::ObjectMeta;
use std::collections::BTreeMap;
use std::time::Duration;

mod status;

pub(crate) const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const HASH_LABEL: &str = "pod-template-hash";
/// The earlier revisions of a ReplicaSet whose template came back (by `rollout undo`).
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// Deployment annotations that are not copied to its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX_REPLICAS,
];

/// One ReplicaSet's new replica count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scale {
    pub(crate) name: String,
    pub(crate) from: i32,
    pub(crate) to: i32,
    /// The Deployment's replicas, recorded on the ReplicaSet as desired-replicas.
    pub(crate) desired: i32,
}

impl Scale {
    /// The `ScalingReplicaSet` event message.
    pub(crate) fn event(&self) -> String {
        let verb = if self.to > self.from { "up" } else { "down" };
        format!(
            "Scaled {verb} replica set {} from {} to {}",
            self.name, self.from, self.to
        )
    }
}

/// What one reconcile of a Deployment does, in order: create, scale, write the status,
/// set the revision.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The ReplicaSet of the current template, when none exists yet.
    pub(crate) create: Option<ReplicaSet>,
    pub(crate) scale: Vec<Scale>,
    pub(crate) status: DeploymentStatus,
    /// The `deployment.kubernetes.io/revision` the Deployment should carry, if it differs.
    pub(crate) revision: Option<String>,
    /// Annotations the current ReplicaSet must gain: the Deployment's own (such as
    /// `kubernetes.io/change-cause`) and, when an older template came back, the next
    /// revision number.
    pub(crate) annotate: Option<(String, BTreeMap<String, String>)>,
    /// When the progress deadline passes if nothing changes before.
    pub(crate) recheck_after: Option<Duration>,
}

impl Plan {
    /// The `ScalingReplicaSet` messages, in the order of the actions.
    pub(crate) fn events(&self) -> Vec<String> {
        let created = self.create.as_ref().map(|rs| {
            format!(
                "Scaled up replica set {} from 0 to {}",
                rs.name_any(),
                spec_replicas(rs)
            )
        });
        created
            .into_iter()
            .chain(self.scale.iter().map(Scale::event))
            .collect()
    }
}

/// Resolves maxSurge/maxUnavailable like Kubernetes (percentages round up for surge, down
/// for unavailability; both zero means one may be unavailable).
pub(crate) fn surge_and_unavailable(d: &Deployment, replicas: i32) -> (i32, i32) {
    let rolling = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let resolve = |v: Option<&IntOrString>, round_up: bool| -> i32 {
        match v.cloned().unwrap_or(IntOrString::String("25%".into())) {
            IntOrString::Int(n) => n.max(0),
            IntOrString::String(s) => {
                let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(25.0);
                let v = pct * f64::from(replicas) / 100.0;
                (if round_up { v.ceil() } else { v.floor() }) as i32
            }
        }
    };
    let surge = resolve(rolling.and_then(|r| r.max_surge.as_ref()), true);
    let unavailable = resolve(rolling.and_then(|r| r.max_unavailable.as_ref()), false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

pub(crate) fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The Deployment's numbers, resolved once.
struct Target {
    replicas: i32,
    surge: i32,
    max_unavailable: i32,
    recreate: bool,
}

/// Plans one reconcile of `d`, given every ReplicaSet of its namespace as the informer
/// holds them, at time `now`.
pub(crate) fn plan(d: &Deployment, replicasets: &[ReplicaSet], now: jiff::Timestamp) -> Plan {
    let spec = d.spec.clone();
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let (surge, max_unavailable) = surge_and_unavailable(d, replicas);
    let target = Target {
        replicas,
        surge,
        max_unavailable,
        recreate: spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate"),
    };
    let hash = pod_template_hash(&spec.template);
    let mut owned = owned(d, replicasets);
    let mut new_index = owned
        .iter()
        .position(|rs| rs.labels().get(HASH_LABEL) == Some(&hash));
    let paused = spec.paused == Some(true);
    let mut create = None;
    let mut scale = Vec::new();
    match new_index {
        None if !paused => {
            let rs = new_replica_set(d, &hash, &owned, &target);
            owned.push(rs.clone());
            new_index = Some(owned.len() - 1);
            create = Some(rs);
        }
        Some(i) if !paused => {
            let olds: Vec<&ReplicaSet> = owned
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, rs)| rs)
                .collect();
            scale = if target.recreate {
                recreate(&owned[i], &olds, &target)
            } else {
                rolling(&owned[i], &olds, &target)
            };
        }
        _ => {}
    }
    let new_rs = new_index.map(|i| &owned[i]);
    let (status, recheck_after) = status::status(
        d,
        &owned,
        new_rs,
        create.is_some(),
        (replicas, max_unavailable),
        now,
    );
    let annotate = new_rs
        .filter(|_| create.is_none())
        .and_then(|rs| new_rs_annotations(d, rs, &owned).map(|a| (rs.name_any(), a)));
    let revision = new_rs
        .map(|rs| {
            annotate
                .as_ref()
                .and_then(|(_, a)| a.get(REVISION).cloned())
                .unwrap_or_else(|| revision(rs).to_string())
        })
        .filter(|rev| d.annotations().get(REVISION) != Some(rev));
    Plan {
        create,
        scale,
        status,
        revision,
        annotate,
        recheck_after,
    }
}

/// The Deployment's annotations its ReplicaSets carry too.
fn copied_annotations(d: &Deployment) -> BTreeMap<String, String> {
    let mut all = d.annotations().clone();
    all.retain(|k, _| !NOT_COPIED.contains(&k.as_str()));
    all
}

/// What the current ReplicaSet lacks: the Deployment's annotations, and when it is not the
/// newest revision (an undo brought its template back), the next revision, its old number
/// kept in `revision-history`, as the Deployment controller renumbers it.
fn new_rs_annotations(
    d: &Deployment,
    rs: &ReplicaSet,
    owned: &[ReplicaSet],
) -> Option<BTreeMap<String, String>> {
    let mut want = copied_annotations(d);
    let newest = owned.iter().map(revision).max().unwrap_or(0);
    let current = revision(rs);
    if current < newest {
        want.insert(REVISION.into(), (newest + 1).to_string());
        let history = match rs.annotations().get(REVISION_HISTORY) {
            Some(h) if !h.is_empty() => format!("{h},{current}"),
            _ => current.to_string(),
        };
        want.insert(REVISION_HISTORY.into(), history);
    }
    want.retain(|k, v| rs.annotations().get(k) != Some(v));
    (!want.is_empty()).then_some(want)
}

/// The ReplicaSets `d` controls and that are not being deleted, oldest first.
fn owned(d: &Deployment, replicasets: &[ReplicaSet]) -> Vec<ReplicaSet> {
    let uid = d.uid().unwrap_or_default();
    let mut owned: Vec<ReplicaSet> = replicasets
        .iter()
        .filter(|rs| {
            rs.namespace() == d.namespace()
                && controller_uid(*rs).as_deref() == Some(uid.as_str())
                && rs.metadata.deletion_timestamp.is_none()
        })
        .cloned()
        .collect();
    owned.sort_by_key(|rs| {
        rs.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_nanosecond())
            .unwrap_or(0)
    });
    owned
}

/// The ReplicaSet for the current template, starting as large as the strategy allows.
fn new_replica_set(d: &Deployment, hash: &str, owned: &[ReplicaSet], t: &Target) -> ReplicaSet {
    let spec = d.spec.clone();
    let old_total: i32 = owned.iter().map(spec_replicas).sum();
    let initial = if t.recreate && old_total > 0 {
        0
    } else if t.recreate || old_total == 0 {
        t.replicas
    } else {
        (t.replicas + t.surge - old_total).clamp(0, t.replicas)
    };
    let next_revision = owned.iter().map(revision).max().unwrap_or(0) + 1;
    let mut annotations = copied_annotations(d);
    annotations.extend([
        (REVISION.to_string(), next_revision.to_string()),
        (DESIRED.to_string(), t.replicas.to_string()),
        (MAX_REPLICAS.to_string(), (t.replicas + t.surge).to_string()),
    ]);
    let mut template = spec.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.into());
    let labels = meta.labels.clone().unwrap_or_default();
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.into(), hash.into());
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(format!("{}-{hash}", d.name_any())),
            namespace: d.namespace(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(d)]),
            ..Default::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(initial),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        },
        status: None,
    }
}

fn scale_to(rs: &ReplicaSet, to: i32, t: &Target) -> Option<Scale> {
    let from = spec_replicas(rs);
    (from != to).then(|| Scale {
        name: rs.name_any(),
        from,
        to,
        desired: t.replicas,
    })
}

/// Recreate: every old ReplicaSet to zero first; the new one up once no old pod is left.
fn recreate(new_rs: &ReplicaSet, olds: &[&ReplicaSet], t: &Target) -> Vec<Scale> {
    let old_total: i32 = olds.iter().map(|rs| spec_replicas(rs)).sum();
    if old_total > 0 {
        return olds.iter().filter_map(|rs| scale_to(rs, 0, t)).collect();
    }
    let old_pods_left = olds
        .iter()
        .any(|o| o.status.as_ref().is_some_and(|s| s.replicas > 0));
    if old_pods_left {
        return Vec::new();
    }
    scale_to(new_rs, t.replicas, t).into_iter().collect()
}

/// RollingUpdate: the new ReplicaSet up within maxSurge, then old ones down within
/// maxUnavailable, unavailable old pods first (upstream's `reconcileOldReplicaSets`).
fn rolling(new_rs: &ReplicaSet, olds: &[&ReplicaSet], t: &Target) -> Vec<Scale> {
    let mut plan = Vec::new();
    let old_total: i32 = olds.iter().map(|rs| spec_replicas(rs)).sum();
    let mut new_spec = spec_replicas(new_rs);
    let all_total = old_total + new_spec;
    if new_spec > t.replicas || old_total == 0 {
        plan.extend(scale_to(new_rs, t.replicas, t));
        new_spec = t.replicas;
    } else if new_spec < t.replicas && all_total < t.replicas + t.surge {
        let to = (new_spec + t.replicas + t.surge - all_total).min(t.replicas);
        plan.extend(scale_to(new_rs, to, t));
        new_spec = to;
    }
    let min_available = t.replicas - t.max_unavailable;
    let new_unavailable = (new_spec - available(new_rs)).max(0);
    let max_scaled_down = old_total + new_spec - min_available - new_unavailable;
    if old_total == 0 || max_scaled_down <= 0 {
        return plan;
    }
    let mut counts: Vec<i32> = olds.iter().map(|rs| spec_replicas(rs)).collect();
    // Old pods that are not available anyway go first.
    let mut cleanup = max_scaled_down;
    for (old, count) in olds.iter().zip(counts.iter_mut()) {
        let unhealthy = (*count - available(old)).max(0).min(cleanup);
        *count -= unhealthy;
        cleanup -= unhealthy;
    }
    // A status not updated yet after a scale-down must not count the pods going away.
    let available_total: i32 = olds
        .iter()
        .zip(&counts)
        .map(|(rs, count)| available(rs).min(*count))
        .sum::<i32>()
        + available(new_rs).min(new_spec);
    let mut scale_down = (available_total - min_available).max(0);
    for (old, count) in olds.iter().zip(counts.iter_mut()) {
        let cut = scale_down.min(*count);
        *count -= cut;
        scale_down -= cut;
        plan.extend(scale_to(old, *count, t));
    }
    plan
}

#[cfg(test)]
mod tests;
