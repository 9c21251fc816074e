//! The scheduler: binds a pending pod to the sandbox's node when its requests fit what the
//! node has left, else marks it Unschedulable with the message a real scheduler gives.
//!
//! A kube-runtime `Controller` over pods, one pod at a time (as kube-scheduler's queue),
//! triggered by a pod's own changes and retried when the node changes or a pod on it
//! leaves. Like kube-scheduler's cache, a pod it bound counts as *assumed* on the node
//! until the pod informer shows the binding, so a store older than the last bind never
//! overcommits the node.

mod fit;

pub(crate) use fit::pod_requests;

use crate::apimachinery::errors::is_benign;
use crate::apimachinery::events::{EventType, Recorder};
use crate::apimachinery::informers::Informers;
use crate::apimachinery::network::NODE_NAME;
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use fit::Resources;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often an unschedulable pod is tried again if nothing on the node changes.
const RETRY_UNSCHEDULABLE: Duration = Duration::from_secs(5);

/// Why scheduling one pod failed; it is retried with back-off.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub(crate) struct Error {
    what: String,
    #[source]
    source: kube::Error,
}

fn api_error(what: String) -> impl FnOnce(kube::Error) -> Error {
    move |source| Error { what, source }
}

struct Ctx {
    client: Client,
    pods: Store<Pod>,
    nodes: Store<Node>,
    events: Recorder,
    /// Pods bound whose binding the store may not show yet, with their requests.
    assumed: Mutex<HashMap<ObjectRef<Pod>, (String, Resources)>>,
    /// The last FailedScheduling message written per pod (and its UID), which the store may
    /// not show yet.
    reported: Mutex<HashMap<ObjectRef<Pod>, (String, String)>>,
}

/// Schedules pods until `shutdown`.
pub(crate) fn run(
    client: Client,
    informers: &Informers,
    shutdown: Shutdown,
) -> impl Future<Output = ()> + use<> {
    let pods = informers.pods.store();
    let (on_node, on_pod) = (pods.clone(), pods.clone());
    let controller = Controller::for_stream(informers.pods.subscribe(), pods.clone())
        .watches_stream(informers.nodes.subscribe(), move |_: Node| {
            pending(&on_node)
        })
        .watches_stream(informers.pods.subscribe(), move |pod: Pod| {
            if frees_room(&on_pod, &pod) {
                pending(&on_pod)
            } else {
                Vec::new()
            }
        })
        .with_config(Config::default().concurrency(1));
    let ctx = Arc::new(Ctx {
        events: Recorder::new(client.clone(), "default-scheduler"),
        client,
        pods,
        nodes: informers.nodes.store(),
        assumed: Mutex::default(),
        reported: Mutex::default(),
    });
    workqueue::run("scheduler", controller, reconcile, ctx, shutdown)
}

fn is_pending(pod: &Pod) -> bool {
    pod.spec.as_ref().is_some_and(|s| {
        s.node_name.as_deref().unwrap_or_default().is_empty()
            && s.scheduler_name
                .as_deref()
                .is_none_or(|n| n == "default-scheduler")
    }) && pod.metadata.deletion_timestamp.is_none()
}

fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn on_the_node(pod: &Pod) -> bool {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(NODE_NAME)
}

/// Pending pods, oldest first.
fn pending(pods: &Store<Pod>) -> Vec<ObjectRef<Pod>> {
    let mut pending = pods.state();
    pending.retain(|p| is_pending(p));
    pending.sort_by_key(|p| {
        p.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_nanosecond())
            .unwrap_or(0)
    });
    pending.iter().map(|p| ObjectRef::from_obj(&**p)).collect()
}

/// Whether a change to `pod` gave room back on the node: it finished or is gone.
fn frees_room(pods: &Store<Pod>, pod: &Pod) -> bool {
    on_the_node(pod) && (is_finished(pod) || pods.get(&ObjectRef::from_obj(pod)).is_none())
}

/// What the node's pods ask for: bound ones the store shows, and assumed ones it does not
/// show bound yet (the others leave the assumed set).
fn used(ctx: &Ctx) -> Resources {
    let mut used = Resources::default();
    for pod in ctx.pods.state() {
        if on_the_node(&pod) && !is_finished(&pod) {
            used.add(Resources::of(
                pod.spec.as_ref().expect("bound pods have a spec"),
            ));
        }
    }
    let mut assumed = ctx.assumed.lock().unwrap_or_else(|e| e.into_inner());
    assumed.retain(|key, (uid, _)| {
        ctx.pods
            .get(key)
            .is_some_and(|p| p.uid().as_deref() == Some(uid.as_str()) && !on_the_node(&p))
    });
    for (_, requests) in assumed.values() {
        used.add(*requests);
    }
    ctx.reported
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|key, _| ctx.pods.get(key).is_some_and(|p| is_pending(&p)));
    used
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let key = ObjectRef::from_obj(&*pod);
    let uid = pod.uid().unwrap_or_default();
    let already_bound = ctx
        .assumed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .is_some_and(|(bound, _)| *bound == uid);
    if !is_pending(&pod) || already_bound {
        return Ok(Action::await_change());
    }
    let Some(node) = ctx.nodes.get(&ObjectRef::new(NODE_NAME)) else {
        return Ok(Action::await_change());
    };
    let spec = pod.spec.as_ref().expect("pending pods have a spec");
    match fit::fit(spec, &node, used(&ctx)) {
        Ok(()) => {
            bind(&ctx, &pod).await?;
            let requests = Resources::of(spec);
            ctx.assumed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, (uid, requests));
            let message = format!(
                "Successfully assigned {}/{} to {NODE_NAME}",
                pod.namespace().unwrap_or_default(),
                pod.name_any()
            );
            ctx.events
                .publish(
                    &Recorder::reference(&*pod),
                    EventType::Normal,
                    "Scheduled",
                    &message,
                )
                .await;
            Ok(Action::await_change())
        }
        Err(message) => {
            unschedulable(&ctx, &pod, message).await?;
            Ok(Action::requeue(RETRY_UNSCHEDULABLE))
        }
    }
}

fn scheduled_condition(pod: &Pod) -> Option<(String, Option<String>)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")
        .map(|c| (c.status.clone(), c.message.clone()))
}

/// Marks `pod` Unschedulable and records FailedScheduling, unless that message was
/// already given.
async fn unschedulable(ctx: &Ctx, pod: &Pod, message: String) -> Result<(), Error> {
    let key = ObjectRef::from_obj(pod);
    let uid = pod.uid().unwrap_or_default();
    let shown = scheduled_condition(pod) == Some(("False".into(), Some(message.clone())));
    let reported = ctx
        .reported
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .is_some_and(|(to, said)| *to == uid && *said == message);
    if shown || reported {
        return Ok(());
    }
    // The event first, as kube-scheduler records it: whoever sees the condition finds it.
    ctx.events
        .publish(
            &Recorder::reference(pod),
            EventType::Warning,
            "FailedScheduling",
            &message,
        )
        .await;
    let patch = serde_json::json!({ "status": { "conditions": [ {
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": message, "lastTransitionTime": Time(jiff::Timestamp::now()),
    } ] } });
    let ns = pod.namespace().unwrap_or_default();
    Api::<Pod>::namespaced(ctx.client.clone(), &ns)
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(api_error(format!(
            "marking pod {ns}/{} Unschedulable",
            pod.name_any()
        )))?;
    ctx.reported
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, (uid, message));
    Ok(())
}

/// Binds through the `binding` subresource like kube-scheduler (the API server sets
/// PodScheduled with the node); falls back to setting `spec.nodeName` and the condition on
/// an API server without it.
async fn bind(ctx: &Ctx, pod: &Pod) -> Result<(), Error> {
    let name = pod.name_any();
    let ns = pod.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let what = || format!("binding pod {ns}/{name} to {NODE_NAME}");
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: pod.namespace(),
            ..Default::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(NODE_NAME.into()),
            api_version: Some("v1".into()),
            ..Default::default()
        },
    };
    let bound = api
        .create_subresource::<Binding, serde_json::Value>(
            "binding",
            &name,
            &PostParams::default(),
            &binding,
        )
        .await;
    match bound {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 405 => {
            // Either the pod is gone or binding is unsupported: try the plain field.
            let patch = serde_json::json!({ "spec": { "nodeName": NODE_NAME } });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(e) if is_benign(&e) => return Ok(()),
                Err(e) => return Err(api_error(what())(e)),
            }
            let patch = serde_json::json!({ "status": { "conditions": [ {
                "type": "PodScheduled", "status": "True",
                "lastTransitionTime": Time(jiff::Timestamp::now()),
            } ] } });
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map(drop)
                .map_err(api_error(format!("marking pod {ns}/{name} scheduled")))
        }
        Err(e) if is_benign(&e) => Ok(()),
        Err(e) => Err(api_error(what())(e)),
    }
}
