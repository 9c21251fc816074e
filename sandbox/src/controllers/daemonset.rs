//! DaemonSet controller: one pod per node its template fits (node selector, taints), each
//! pinned to its node by node affinity as Kubernetes does; a changed template replaces
//! pods node by node, at most `maxUnavailable` at a time (RollingUpdate) or only when they
//! are deleted (OnDelete); the status counts what `kubectl get ds` and `kubectl rollout
//! status` read. Each template is kept as a ControllerRevision ([`history`]), which `kubectl
//! rollout history` and `undo` use.

use super::pod_control::PodControl;
use super::util::{
    controller_ref, controller_uid, is_active, is_ready, pod_template_hash, write_status,
};
use super::{Error, Shared, api_error};
use crate::apimachinery::events::Recorder;
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use serde_json::json;
use std::future::Future;
use std::sync::Arc;

use super::history::{self, REVISION_HASH};

struct Ctx {
    shared: Arc<Shared>,
    events: Recorder,
}

/// Reconciles DaemonSets on their changes, their pods' and the nodes'.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let sets = informers.daemon_sets.store();
    let controller = Controller::for_stream(informers.daemon_sets.subscribe(), sets.clone())
        .owns_stream(informers.pods.subscribe())
        .watches_stream(informers.nodes.subscribe(), move |_: Node| {
            sets.state()
                .iter()
                .map(|ds| kube::runtime::reflector::ObjectRef::from_obj(&**ds))
                .collect::<Vec<_>>()
        });
    let ctx = Arc::new(Ctx {
        events: Recorder::new(shared.client.clone(), "daemonset-controller"),
        shared: shared.clone(),
    });
    workqueue::run("daemonset", controller, reconcile, ctx, shutdown)
}

/// Whether `tolerations` tolerate `key`/`effect` (a taint's value is not compared when the
/// toleration says Exists).
fn tolerates(tolerations: &[Toleration], key: &str, value: &str, effect: &str) -> bool {
    tolerations.iter().any(|t| {
        let key_ok = t.key.as_deref().is_none_or(|k| k.is_empty() || k == key);
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == effect);
        let value_ok =
            t.operator.as_deref() == Some("Exists") || t.value.as_deref().unwrap_or("") == value;
        key_ok && effect_ok && value_ok
    })
}

/// The tolerations a daemon pod gets besides its template's, as Kubernetes adds them.
fn daemon_tolerations(template: &[Toleration]) -> Vec<Toleration> {
    let mut all = template.to_vec();
    for (key, effect) in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ] {
        if !tolerates(&all, key, "", effect) {
            all.push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some(effect.into()),
                ..Default::default()
            });
        }
    }
    all
}

/// Whether the DaemonSet's pods belong on `node`: its node selector matches and every
/// NoSchedule/NoExecute taint is tolerated.
fn fits(ds: &DaemonSet, node: &Node) -> bool {
    let pod = ds.spec.template.spec.clone().unwrap_or_default();
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selected = pod
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let tolerations = daemon_tolerations(&pod.tolerations.unwrap_or_default());
    let tolerated = node
        .spec
        .iter()
        .flat_map(|s| s.taints.iter().flatten())
        .filter(|t| t.effect != "PreferNoSchedule")
        .all(|t| {
            tolerates(
                &tolerations,
                &t.key,
                t.value.as_deref().unwrap_or(""),
                &t.effect,
            )
        });
    selected && tolerated
}

fn node_of(pod: &Pod) -> Option<String> {
    if let Some(n) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        return Some(n);
    }
    let v = serde_json::to_value(pod.spec.as_ref()?.affinity.as_ref()?).ok()?;
    v["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        ["matchFields"][0]["values"][0]
        .as_str()
        .map(String::from)
}

/// Nodes to give a pod, pods to delete, and the status.
struct Plan {
    create: Vec<String>,
    delete: Vec<Pod>,
    status: DaemonSetStatus,
}

fn plan(ds: &DaemonSet, nodes: &[Node], pods: &[Pod]) -> Plan {
    let hash = pod_template_hash(&ds.spec.template);
    let fitting: Vec<String> = nodes
        .iter()
        .filter(|n| fits(ds, n))
        .map(|n| n.name_any())
        .collect();
    let mut plan = Plan {
        create: Vec::new(),
        delete: Vec::new(),
        status: DaemonSetStatus::default(),
    };
    let updated = |p: &Pod| p.labels().get(REVISION_HASH) == Some(&hash);
    let rolling = ds
        .spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        != Some("OnDelete");
    let mut unavailable_budget = max_unavailable(ds, fitting.len());
    let (mut scheduled, mut ready, mut up_to_date, mut misscheduled) = (0, 0, 0, 0);
    for node in &fitting {
        let mine: Vec<&Pod> = pods
            .iter()
            .filter(|p| node_of(p).as_deref() == Some(node))
            .collect();
        let Some(first) = mine.first() else {
            plan.create.push(node.clone());
            continue;
        };
        scheduled += 1;
        ready += i32::from(is_ready(first));
        up_to_date += i32::from(updated(first));
        plan.delete
            .extend(mine.iter().skip(1).map(|p| (*p).clone()));
        if rolling && !updated(first) && (unavailable_budget > 0 || !is_ready(first)) {
            unavailable_budget -= i32::from(is_ready(first));
            plan.delete.push((*first).clone());
        }
    }
    for pod in pods {
        if node_of(pod).is_none_or(|n| !fitting.contains(&n)) {
            misscheduled += 1;
            plan.delete.push(pod.clone());
        }
    }
    let desired = fitting.len() as i32;
    plan.status = DaemonSetStatus {
        desired_number_scheduled: desired,
        current_number_scheduled: scheduled,
        number_misscheduled: misscheduled,
        number_ready: ready,
        number_available: (ready > 0).then_some(ready),
        number_unavailable: (desired > ready).then_some(desired - ready),
        updated_number_scheduled: (up_to_date > 0).then_some(up_to_date),
        observed_generation: ds.metadata.generation,
        ..Default::default()
    };
    plan
}

/// `rollingUpdate.maxUnavailable` as a number of pods (at least 1), percentages rounded up.
fn max_unavailable(ds: &DaemonSet, nodes: usize) -> i32 {
    let value = ds
        .spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone());
    let n = match value {
        Some(IntOrString::Int(n)) => n,
        Some(IntOrString::String(p)) => {
            let pct: i32 = p.trim_end_matches('%').parse().unwrap_or(0);
            (pct * nodes as i32 + 99) / 100
        }
        None => 1,
    };
    n.max(1)
}

async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let uid = ds.uid().unwrap_or_default();
    if let Some(left) = ctx.shared.expectations.pending(&uid) {
        return Ok(Action::requeue(left));
    }
    let ns = ds.namespace();
    let informers = &ctx.shared.informers;
    let nodes: Vec<Node> = informers
        .nodes
        .store()
        .state()
        .iter()
        .map(|n| (**n).clone())
        .collect();
    let pods: Vec<Pod> = informers
        .pods
        .store()
        .state()
        .iter()
        .filter(|p| p.namespace() == ns && controller_uid(&***p).as_deref() == Some(uid.as_str()))
        .filter(|p| is_active(p))
        .map(|p| (**p).clone())
        .collect();
    let in_use = pods
        .iter()
        .filter_map(|p| p.labels().get(REVISION_HASH).cloned())
        .collect();
    history::record(
        &ctx.shared.client,
        &history::Snapshot::of(
            ds.as_ref(),
            &ds.spec.template,
            ds.spec.revision_history_limit,
        ),
        &in_use,
    )
    .await
    .map_err(api_error(format!(
        "recording the revision of daemon set {}/{}",
        ds.namespace().unwrap_or_default(),
        ds.name_any()
    )))?;
    let plan = plan(&ds, &nodes, &pods);
    let managed = manage(&ds, &plan, &ctx).await;
    let api: Api<DaemonSet> = Api::namespaced(ctx.shared.client.clone(), &ns.unwrap_or_default());
    write_status(&api, &ds.name_any(), ds.status.as_ref(), &plan.status)
        .await
        .map_err(api_error(format!(
            "writing the status of daemon set {}/{}",
            ds.namespace().unwrap_or_default(),
            ds.name_any()
        )))?;
    managed?;
    Ok(Action::await_change())
}

/// Creates the pods the plan puts on nodes and deletes the ones it takes off.
async fn manage(ds: &DaemonSet, plan: &Plan, ctx: &Ctx) -> Result<(), Error> {
    let create = plan.create.iter().map(|node| pod_for(ds, node)).collect();
    let shared = &ctx.shared;
    PodControl::new(ds, shared.client.clone(), &shared.expectations, &ctx.events)
        .apply(create, &plan.delete)
        .await
}

/// A pod from the template for `node`, held there by required node affinity.
fn pod_for(ds: &DaemonSet, node: &str) -> Pod {
    let template = ds.spec.template.clone();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    labels.insert(REVISION_HASH.into(), pod_template_hash(&ds.spec.template));
    labels.insert(
        "pod-template-generation".into(),
        ds.metadata.generation.unwrap_or(1).to_string(),
    );
    let mut spec = template.spec.unwrap_or_default();
    spec.tolerations = Some(daemon_tolerations(&spec.tolerations.unwrap_or_default()));
    spec.affinity = serde_json::from_value(json!({"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}}))
    .ok();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.name_any())),
            namespace: ds.namespace(),
            labels: Some(labels),
            annotations: meta.annotations,
            owner_references: Some(vec![controller_ref(ds)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon_set(selector: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({"metadata": {"name": "agent", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"nodeSelector": selector, "containers": [{"name": "a", "image": "x"}]}}}}))
        .unwrap()
    }

    fn node(name: &str, taint: Option<&str>) -> Node {
        let taints = taint.map(|k| json!([{"key": k, "effect": "NoSchedule"}]));
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": {"disk": "ssd"}},
                                      "spec": {"taints": taints}}),
        )
        .unwrap()
    }

    #[test]
    fn one_pod_goes_to_each_fitting_node_and_old_ones_are_replaced() {
        let nodes = [
            node("a", None),
            node("b", Some("dedicated")),
            node("c", Some("node.kubernetes.io/unschedulable")),
        ];
        let ds = daemon_set(json!({"disk": "ssd"}));
        let first = plan(&ds, &nodes, &[]);
        assert_eq!(
            first.create,
            ["a", "c"],
            "tainted b is not tolerated, cordoned c is"
        );
        assert_eq!(first.status.desired_number_scheduled, 2);
        let mut old = pod_for(&ds, "a");
        old.metadata.name = Some("agent-x".into());
        old.labels_mut().insert(REVISION_HASH.into(), "old".into());
        let update = plan(&ds, &nodes, &[old]);
        assert_eq!(update.delete.len(), 1, "the pod of the old template goes");
        assert_eq!(update.status.current_number_scheduled, 1);
        let none = plan(&daemon_set(json!({"disk": "hdd"})), &nodes, &[]);
        assert!(none.create.is_empty());
    }
}
