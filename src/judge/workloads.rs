//! Deployments, StatefulSets and HPAs: rolled out, ready, scaled, resourced as expected.

use super::{Verdict, condition_true, fmt_labels};
use crate::checks::{HpaSpec, ResourcesSpec};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus};

/// The Deployment is Available and its current generation's pods are all updated and ready.
pub(crate) fn deployment(name: &str, d: Option<&Deployment>) -> Verdict {
    let Some(d) = d else {
        return Verdict::fail(format!("deployment {name} not found"));
    };
    let want = d.spec.replicas.unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let available = condition_true(
        conditions.iter().map(|c| {
            (
                c.type_.as_deref().unwrap_or(""),
                c.status.as_deref().unwrap_or(""),
            )
        }),
        "Available",
    );
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let current_gen = status.observed_generation >= d.metadata.generation;
    if want == 0 {
        return Verdict::fail(format!("{name} is scaled to 0 replicas: nothing serves"));
    }
    let done = available && current_gen && ready >= want && updated >= want && total == updated;
    Verdict::new(
        done,
        format!("{name}: {ready}/{want} ready, {updated} updated"),
    )
}

/// The StatefulSet has all its replicas ready.
pub(crate) fn statefulset(name: &str, s: Option<&StatefulSet>) -> Verdict {
    let Some(s) = s else {
        return Verdict::fail(format!("{name} not found"));
    };
    let want = s.spec.replicas.unwrap_or(1);
    let ready = s
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    Verdict::new(
        ready >= want,
        format!("statefulset {name}: {ready}/{want} ready"),
    )
}

/// The Deployment's desired replicas (0 when it does not exist).
fn replicas(d: Option<&Deployment>) -> i32 {
    d.and_then(|d| d.spec.replicas).unwrap_or(0)
}

/// The Deployment wants more than `above` replicas (an HPA scaled it up).
pub(crate) fn replicas_above(name: &str, d: Option<&Deployment>, above: i32) -> Verdict {
    let replicas = replicas(d);
    Verdict::new(
        replicas > above,
        format!("{name} has {replicas} replica(s)"),
    )
}

/// The Deployment wants at least `count` replicas.
pub(crate) fn replicas_at_least(name: &str, d: Option<&Deployment>, count: i32) -> Verdict {
    let replicas = replicas(d);
    Verdict::new(
        replicas >= count,
        format!("{name} has {replicas} replica(s)"),
    )
}

/// The HPA's current average CPU utilisation (percent of request), once metrics arrived.
pub(crate) fn hpa_cpu(status: &HorizontalPodAutoscalerStatus) -> Option<i32> {
    status.current_metrics.as_ref()?.iter().find_map(|m| {
        let r = m.resource.as_ref()?;
        (r.name == "cpu")
            .then_some(r.current.average_utilization)
            .flatten()
    })
}

/// The HPA reads CPU metrics.
pub(crate) fn hpa_has_metrics(hpa: Option<&HorizontalPodAutoscaler>) -> Verdict {
    let cpu = hpa.and_then(|h| h.status.as_ref()).and_then(hpa_cpu);
    Verdict::new(
        cpu.is_some(),
        cpu.map(|c| format!("CPU at {c} %"))
            .unwrap_or_else(|| "no CPU metrics yet".into()),
    )
}

/// The HPA targets the expected Deployment within the expected bounds.
pub(crate) fn hpa(hpa: &HorizontalPodAutoscaler, spec: &HpaSpec) -> Verdict {
    let hs = hpa.spec.clone();
    let target_name = hs.scale_target_ref.name.clone();
    let min = hs.min_replicas.unwrap_or(1);
    let mut problems = Vec::new();
    if target_name != spec.deployment {
        problems.push(format!(
            "targets {target_name}, expected {}",
            spec.deployment
        ));
    }
    if min != spec.min || hs.max_replicas != spec.max {
        problems.push(format!(
            "bounds {min}..{}, expected {}..{}",
            hs.max_replicas, spec.min, spec.max
        ));
    }
    if !problems.is_empty() {
        return Verdict::fail(problems.join("; "));
    }
    let cpu = hpa
        .status
        .as_ref()
        .and_then(hpa_cpu)
        .map(|c| format!("CPU {c} %"))
        .unwrap_or_else(|| "no CPU metrics yet".into());
    Verdict::pass(format!(
        "scales {target_name} between {min} and {} replicas; {cpu}",
        hs.max_replicas
    ))
}

/// The Deployment's container has exactly the expected requests and limits.
pub(crate) fn container_resources(d: &Deployment, spec: &ResourcesSpec) -> Verdict {
    let template = d.spec.template.spec.clone().unwrap_or_default();
    let Some(container) = template
        .containers
        .iter()
        .find(|c| c.name == spec.container)
    else {
        return Verdict::fail(format!(
            "no container {} in deployment {}",
            spec.container, spec.deployment
        ));
    };
    let res = container.resources.clone().unwrap_or_default();
    let mut problems = Vec::new();
    for (what, want, have) in [
        ("requests", &spec.requests, res.requests.unwrap_or_default()),
        ("limits", &spec.limits, res.limits.unwrap_or_default()),
    ] {
        for (key, value) in want {
            let got = have.get(key).map(|q| q.0.clone());
            if got.as_deref() != Some(value.as_str()) {
                problems.push(format!(
                    "{what}.{key} is {}, expected {value}",
                    got.unwrap_or_else(|| "unset".into())
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Verdict::fail(problems.join("; "));
    }
    Verdict::pass(format!(
        "{} requests {} and is limited to {}",
        spec.container,
        fmt_labels(&spec.requests),
        fmt_labels(&spec.limits)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::object;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn deploy(replicas: i32, ready: i32, updated: i32, available: &str) -> Deployment {
        object(json!({
            "metadata": {"name": "api", "generation": 2},
            "spec": {
                "replicas": replicas,
                "selector": {},
                "template": {"spec": {"containers": [{
                    "name": "api",
                    "resources": {"requests": {"cpu": "50m"}, "limits": {"cpu": "500m"}}
                }]}}
            },
            "status": {
                "observedGeneration": 2, "replicas": updated, "readyReplicas": ready,
                "updatedReplicas": updated,
                "conditions": [{"type": "Available", "status": available}]
            }
        }))
    }

    #[test]
    fn a_deployment_is_done_when_available_updated_and_ready() {
        assert_eq!(
            deployment("api", Some(&deploy(2, 2, 2, "True"))),
            Verdict::pass("api: 2/2 ready, 2 updated")
        );
        assert!(!deployment("api", Some(&deploy(2, 1, 2, "True"))).passed);
        assert!(!deployment("api", Some(&deploy(2, 2, 2, "False"))).passed);
        assert_eq!(
            deployment("api", Some(&deploy(0, 0, 0, "True"))),
            Verdict::fail("api is scaled to 0 replicas: nothing serves")
        );
        assert_eq!(
            deployment("api", None),
            Verdict::fail("deployment api not found")
        );
    }

    #[test]
    fn replicas_are_compared_strictly_above_or_at_least() {
        let d = deploy(2, 2, 2, "True");
        assert_eq!(
            replicas_above("api", Some(&d), 2),
            Verdict::fail("api has 2 replica(s)")
        );
        assert!(replicas_above("api", Some(&d), 1).passed);
        assert!(replicas_at_least("api", Some(&d), 2).passed);
        assert_eq!(
            replicas_at_least("api", None, 1),
            Verdict::fail("api has 0 replica(s)")
        );
    }

    #[test]
    fn an_old_generation_is_not_done_yet() {
        let mut d = deploy(1, 1, 1, "True");
        d.metadata.generation = Some(3);
        assert!(!deployment("api", Some(&d)).passed);
    }

    #[test]
    fn a_statefulset_is_ready_with_all_replicas() {
        let s: StatefulSet = object(json!({
            "metadata": {"name": "redis"},
            "spec": {"replicas": 1, "selector": {}, "serviceName": "redis", "template": {}},
            "status": {"replicas": 1, "readyReplicas": 0}
        }));
        assert_eq!(
            statefulset("redis", Some(&s)),
            Verdict::fail("statefulset redis: 0/1 ready")
        );
        assert_eq!(statefulset("redis", None), Verdict::fail("redis not found"));
    }

    #[test]
    fn resources_must_match_exactly() {
        let d = deploy(1, 1, 1, "True");
        let spec = |cpu: &str| ResourcesSpec {
            deployment: "api".into(),
            container: "api".into(),
            requests: BTreeMap::from([("cpu".into(), cpu.into())]),
            limits: BTreeMap::from([("memory".into(), "64Mi".into())]),
        };
        let verdict = container_resources(&d, &spec("1m"));
        assert_eq!(
            verdict,
            Verdict::fail(
                "requests.cpu is 50m, expected 1m; limits.memory is unset, expected 64Mi"
            )
        );
        let mut ok = spec("50m");
        ok.limits = BTreeMap::from([("cpu".into(), "500m".into())]);
        assert_eq!(
            container_resources(&d, &ok),
            Verdict::pass("api requests cpu=50m and is limited to cpu=500m")
        );
        let mut other = ok.clone();
        other.container = "sidecar".into();
        assert_eq!(
            container_resources(&d, &other),
            Verdict::fail("no container sidecar in deployment api")
        );
    }

    #[test]
    fn an_hpa_is_judged_on_target_and_bounds() {
        let hpa_object: HorizontalPodAutoscaler = object(json!({
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 10
            },
            "status": {"desiredReplicas": 1, "currentMetrics": [{
                "type": "Resource",
                "resource": {"name": "cpu", "current": {"averageUtilization": 42}}
            }]}
        }));
        let spec = HpaSpec {
            name: "web".into(),
            deployment: "web".into(),
            min: 1,
            max: 10,
        };
        assert_eq!(
            hpa(&hpa_object, &spec),
            Verdict::pass("scales web between 1 and 10 replicas; CPU 42 %")
        );
        assert_eq!(
            hpa_has_metrics(Some(&hpa_object)),
            Verdict::pass("CPU at 42 %")
        );
        assert!(!hpa_has_metrics(None).passed);
        let wrong = HpaSpec {
            deployment: "api".into(),
            max: 5,
            ..spec
        };
        assert_eq!(
            hpa(&hpa_object, &wrong),
            Verdict::fail("targets web, expected api; bounds 1..10, expected 1..5")
        );
    }
}
