//! Why a wait timed out, said from the pods and events it fetched: image pulls,
//! scheduling, crashes, waiting reasons, and pods their owners no longer want.

use super::pods::{self, Waiting};
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// One line per pod that is not ready, saying what it is stuck on and what to do.
pub(crate) fn not_ready(pods: &[Pod], events: &[Event], ns: &str) -> String {
    let out: Vec<String> = pods
        .iter()
        .filter(|p| !pods::ready(p))
        .map(|pod| stuck(pod, events, ns))
        .collect();
    if !out.is_empty() {
        return out.join("\n");
    }
    if pods.is_empty() {
        format!("  No pods exist yet. `kubectl get events -n {ns}` shows what the controllers did.")
    } else {
        format!("  All pods are ready; `kubectl get all -n {ns}` shows the rest.")
    }
}

fn stuck(pod: &Pod, events: &[Event], ns: &str) -> String {
    let name = pods::name(pod);
    let waiting = pods::waiting(pod);
    let pulling = |w: &&Waiting| {
        matches!(
            w.reason.as_str(),
            "ImagePullBackOff" | "ErrImagePull" | "ErrImageNeverPull"
        )
    };
    if let Some(w) = waiting.iter().find(pulling) {
        return image_hint(name, &w.image);
    }
    if let Some(cond) = pods::unscheduled(pod) {
        let reason = events
            .iter()
            .rev()
            .find(|e| {
                e.reason.as_deref() == Some("FailedScheduling")
                    && e.involved_object.name.as_deref() == Some(name)
            })
            .and_then(|e| e.message.clone())
            .or(cond.message.clone())
            .unwrap_or_else(|| "no reason given".into());
        return format!(
            "  pod {name} is Pending: the scheduler cannot place it: {reason}\n  Lower the pod's resources.requests or add capacity; `kubectl describe pod {name} -n {ns}` shows the same."
        );
    }
    if let Some(w) = waiting.iter().find(|w| w.reason == "CrashLoopBackOff") {
        let message = if w.message.is_empty() {
            String::new()
        } else {
            format!(": {}", w.message)
        };
        return format!(
            "  pod {name} keeps crashing ({}{message}). See why: `kubectl logs {name} -n {ns} --previous`",
            w.reason
        );
    }
    if let Some(w) = waiting.first() {
        return format!("  pod {name} is waiting: {} {}", w.reason, w.message);
    }
    format!(
        "  pod {name} is {} but not Ready: `kubectl describe pod {name} -n {ns}` shows its probes and events",
        pods::phase(pod)
    )
}

/// One line per pod that should be gone: who still owns it, or that its owner is gone and
/// the garbage collector should have removed it. `owner_exists` answers for an owner.
pub(crate) fn leftovers(
    pods: &[Pod],
    owner_exists: impl Fn(&OwnerReference) -> bool,
    ns: &str,
) -> String {
    let lines: Vec<String> = pods
        .iter()
        .map(|pod| {
            let name = pods::name(pod);
            let owner = pod
                .metadata
                .owner_references
                .as_ref()
                .and_then(|o| o.first());
            match owner {
                None => format!(
                    "  pod {name} has no owner: delete it yourself (`kubectl delete pod {name} -n {ns}`)"
                ),
                Some(o) if owner_exists(o) => format!(
                    "  pod {name} is still owned by {} {}, which keeps it",
                    o.kind, o.name
                ),
                Some(o) => format!(
                    "  pod {name} remains although its owner {} {} is gone: the garbage collector should remove it; `kubectl delete pod {name} -n {ns}` does it by hand",
                    o.kind, o.name
                ),
            }
        })
        .collect();
    lines.join("\n")
}

/// What to do when the cluster cannot pull one of our images.
pub(crate) fn image_hint(pod: &str, image: &str) -> String {
    format!(
        "  pod {pod} cannot pull image {image}: the cluster has no copy and no registry serves it.\n  \
Build it from this repository (`docker build -t {image} -f app/Dockerfile.<frontend|api> .`) and load it:\n    \
kind:     kind load docker-image {image}\n    \
minikube: minikube image load {image}\n    \
k3d:      k3d image import {image}\n  \
or push it to a registry and rerun with --registry <registry>, e.g. --registry ghcr.io/you."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::{PodFixture, event};

    #[test]
    fn each_stuck_pod_gets_the_reason_that_explains_it() {
        let pods = [
            PodFixture::pending("pull")
                .waiting("ErrImagePull", "not found")
                .build(),
            PodFixture::pending("big")
                .unschedulable("from the condition")
                .build(),
            PodFixture::running("crash")
                .not_ready()
                .waiting("CrashLoopBackOff", "back-off")
                .build(),
            PodFixture::pending("wait")
                .waiting("ContainerCreating", "")
                .build(),
            PodFixture::running("probe").not_ready().build(),
            PodFixture::running("fine").build(),
        ];
        let events = [event(
            "big",
            "FailedScheduling",
            "0/1 nodes: Insufficient cpu",
        )];
        let text = not_ready(&pods, &events, "demo");
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("  pod ")).collect();
        assert!(
            lines[0].contains("pod pull cannot pull image img:1"),
            "{text}"
        );
        assert!(text.contains("kind load docker-image img:1"), "{text}");
        assert!(
            text.contains(
                "pod big is Pending: the scheduler cannot place it: 0/1 nodes: Insufficient cpu"
            ),
            "{text}"
        );
        assert!(
            text.contains("pod crash keeps crashing (CrashLoopBackOff: back-off)"),
            "{text}"
        );
        assert!(
            text.contains("pod wait is waiting: ContainerCreating"),
            "{text}"
        );
        assert!(
            text.contains("pod probe is Running but not Ready"),
            "{text}"
        );
        assert!(!text.contains("pod fine"), "{text}");
    }

    #[test]
    fn without_stuck_pods_it_says_whether_any_exist() {
        assert!(not_ready(&[], &[], "demo").contains("No pods exist yet"));
        let ready = [PodFixture::running("a").build()];
        assert!(not_ready(&ready, &[], "demo").contains("All pods are ready"));
    }

    #[test]
    fn leftovers_name_their_owner_or_its_absence() {
        let pods = [
            PodFixture::running("kept")
                .owned_by("ReplicaSet", "rs-1", "u1")
                .build(),
            PodFixture::running("orphan")
                .owned_by("ReplicaSet", "rs-0", "u0")
                .build(),
            PodFixture::running("bare").build(),
        ];
        let text = leftovers(&pods, |o| o.uid == "u1", "demo");
        assert!(
            text.contains("pod kept is still owned by ReplicaSet rs-1"),
            "{text}"
        );
        assert!(
            text.contains("pod orphan remains although its owner ReplicaSet rs-0 is gone"),
            "{text}"
        );
        assert!(text.contains("pod bare has no owner"), "{text}");
    }
}
