//! A lesson run again after a later one. A later lesson (or a later step of this one) may
//! have replaced a workload this lesson creates by another kind of the same name, as
//! lesson 5 puts a StatefulSet `redis` where lesson 3's Deployment `redis` was. Creating
//! ours beside it would put two Redis servers, with different messages, behind one Service;
//! so the lesson finds such state first and removes it, never its volume claims.

use super::model::{self, Action, Lesson, LessonError};
use crate::apply::{Applied, Applier, ApplyError};
use crate::cluster::Target;
use crate::manifests::{self, ManifestError};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use std::time::{Duration, Instant};

/// Kinds that run pods under a name of their own.
const WORKLOADS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

/// How long the removed workload's pods may take to go.
const GONE_WITHIN: Duration = Duration::from_secs(120);

/// A later manifest found in the cluster whose workload takes the name of one this
/// lesson creates.
#[derive(Debug)]
pub(crate) struct LaterState {
    /// The lesson whose steps apply the later manifest.
    pub lesson: u32,
    pub manifest: String,
    /// Kind and name of the workload this lesson creates.
    pub ours: (String, String),
    /// Kind of the later workload of the same name.
    pub theirs: String,
    /// The later manifest's objects that exist, which removing deletes.
    pub objects: Vec<DynamicObject>,
    /// Volume claims in the namespace: removal keeps them, and the data in them.
    pub claims: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LaterStateError {
    #[error(transparent)]
    Lesson(#[from] LessonError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("cannot list the {what} in namespace {namespace}: {}", crate::kube_text(.source))]
    List {
        what: &'static str,
        namespace: String,
        source: kube::Error,
    },
    #[error(
        "the pods of {kind}/{name} were still there {} s after it was deleted; `kubectl get pods -n {namespace}` shows them",
        GONE_WITHIN.as_secs()
    )]
    PodsLinger {
        kind: String,
        name: String,
        namespace: String,
    },
}

/// Every manifest the lessons apply, in the order a learner meets them.
fn applications(lessons: &[Lesson]) -> Vec<(u32, &str)> {
    let mut order = Vec::new();
    for lesson in lessons {
        for step in &lesson.steps {
            if let Action::Apply { manifests, .. } = &step.action {
                order.extend(manifests.iter().map(|m| (lesson.number, m.as_str())));
            }
        }
    }
    order
}

/// The workloads among `objects`, as (kind, name).
fn workloads(objects: &[DynamicObject]) -> Vec<(String, String)> {
    objects
        .iter()
        .filter_map(|o| {
            let kind = &o.types.as_ref()?.kind;
            WORKLOADS
                .contains(&kind.as_str())
                .then(|| (kind.clone(), o.name_any()))
        })
        .collect()
}

/// The later state in the cluster that would run beside a workload `lesson` creates.
pub(crate) async fn find(
    lesson: &Lesson,
    target: &Target,
    registry: Option<&str>,
) -> Result<Vec<LaterState>, LaterStateError> {
    let all = model::all()?;
    let order = applications(&all);
    let mut applier = Applier::new(target.client.clone(), &target.namespace);
    let mut found: Vec<LaterState> = Vec::new();
    for (pos, &(_, manifest)) in order.iter().enumerate() {
        if order[pos].0 != lesson.number {
            continue;
        }
        for (kind, name) in workloads(&manifests::objects(manifest, registry)?) {
            for &(later, other) in &order[pos + 1..] {
                if found.iter().any(|f| f.manifest == other) {
                    continue;
                }
                let objects = manifests::objects(other, registry)?;
                let Some((theirs, _)) = workloads(&objects)
                    .into_iter()
                    .find(|(k, n)| *n == name && *k != kind)
                else {
                    continue;
                };
                let mut present = Vec::new();
                for obj in objects {
                    if applier.exists(&obj).await? {
                        present.push(obj);
                    }
                }
                let replaced = present.iter().any(|o| {
                    o.name_any() == name && o.types.as_ref().is_some_and(|t| t.kind == theirs)
                });
                if replaced {
                    found.push(LaterState {
                        lesson: later,
                        manifest: other.to_string(),
                        ours: (kind.clone(), name.clone()),
                        theirs,
                        objects: present,
                        claims: claims(target).await?,
                    });
                }
            }
        }
    }
    Ok(found)
}

/// The names of the namespace's volume claims.
async fn claims(target: &Target) -> Result<Vec<String>, LaterStateError> {
    let api = Api::<PersistentVolumeClaim>::namespaced(target.client.clone(), &target.namespace);
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|source| LaterStateError::List {
            what: "volume claims",
            namespace: target.namespace.clone(),
            source,
        })?;
    Ok(list.items.iter().map(ResourceExt::name_any).collect())
}

/// Deletes the later state's objects (claims made from a template are not among them) and
/// waits until the later workload's pods are gone, so ours never runs beside them.
pub(crate) async fn remove(
    state: &LaterState,
    target: &Target,
) -> Result<Vec<Applied>, LaterStateError> {
    let mut applier = Applier::new(target.client.clone(), &target.namespace);
    let done = applier.delete(&state.objects).await?;
    let name = &state.ours.1;
    let pods = Api::<Pod>::namespaced(target.client.clone(), &target.namespace);
    let deadline = Instant::now() + GONE_WITHIN;
    loop {
        let list =
            pods.list(&ListParams::default())
                .await
                .map_err(|source| LaterStateError::List {
                    what: "pods",
                    namespace: target.namespace.clone(),
                    source,
                })?;
        let owned = list.items.iter().any(|p| {
            p.owner_references()
                .iter()
                .any(|o| o.kind == state.theirs && o.name == *name)
        });
        if !owned {
            return Ok(done);
        }
        if Instant::now() > deadline {
            return Err(LaterStateError::PodsLinger {
                kind: state.theirs.to_lowercase(),
                name: name.clone(),
                namespace: target.namespace.clone(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
