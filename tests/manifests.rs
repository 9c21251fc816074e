//! Every embedded manifest parses into the typed k8s-openapi object for its kind, with no
//! field the type does not know (checked by a lossless round trip), and keeps the contract
//! the lessons and the sandbox rely on.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Container, PodSpec, Service};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const FILES: [&str; 13] = [
    "01-redis-deployment.yml",
    "02-redis-service.yml",
    "03-api-deployment.yml",
    "04-api-service.yml",
    "05-frontend-deployment.yml",
    "06-frontend-service.yml",
    "07-fake-requests-limits.yml",
    "08-limits-requests.yml",
    "09-redis-with-pv.yml",
    "10-frontend-liveness.yml",
    "11-api-liveness.yml",
    "12-api-liveness-404.yml",
    "13-frontend-hpa.yml",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("embedded-manifests")
}

/// One parsed document of a manifest file.
enum Object {
    Deployment(Box<Deployment>),
    StatefulSet(Box<StatefulSet>),
    Service(Box<Service>),
    Hpa(Box<HorizontalPodAutoscaler>),
}

/// Deserializes `doc` into `T` and checks that serializing it back gives the same document,
/// so a misspelt or misplaced field (which serde would silently drop) fails the test.
fn typed<T: DeserializeOwned + Serialize>(file: &str, doc: &Value) -> T {
    round_trip(doc).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<T, String> {
    let name = std::any::type_name::<T>();
    let obj: T =
        serde_json::from_value(doc.clone()).map_err(|e| format!("not a valid {name}: {e}"))?;
    let mut back = serde_json::to_value(&obj).expect("serialize");
    // k8s-openapi writes apiVersion/kind on the embedded PersistentVolumeClaims of a
    // StatefulSet even when the manifest leaves them out, as Kubernetes allows.
    if let Some(templates) = back
        .pointer_mut("/spec/volumeClaimTemplates")
        .and_then(Value::as_array_mut)
    {
        for (i, t) in templates.iter_mut().enumerate() {
            let orig = doc.pointer(&format!("/spec/volumeClaimTemplates/{i}"));
            for key in ["apiVersion", "kind"] {
                if orig.is_some_and(|o| o.get(key).is_none())
                    && let Some(map) = t.as_object_mut()
                {
                    map.remove(key);
                }
            }
        }
    }
    if &back != doc {
        return Err(format!(
            "fields lost in the round trip through {name} (unknown or misplaced field?)\n  \
             manifest: {doc}\n  typed:    {back}"
        ));
    }
    Ok(obj)
}

fn load(file: &str) -> Vec<Object> {
    let text = std::fs::read_to_string(dir().join(file))
        .unwrap_or_else(|e| panic!("read embedded-manifests/{file}: {e}"));
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{file}: invalid YAML: {e}"));
    assert!(!docs.is_empty(), "{file}: no documents");
    docs.iter()
        .map(|doc| {
            let api = doc["apiVersion"].as_str().unwrap_or_default();
            let kind = doc["kind"].as_str().unwrap_or_default();
            assert!(
                doc["metadata"].get("namespace").is_none(),
                "{file}: metadata.namespace must not be set (lessons choose it)"
            );
            match (api, kind) {
                ("apps/v1", "Deployment") => Object::Deployment(Box::new(typed(file, doc))),
                ("apps/v1", "StatefulSet") => Object::StatefulSet(Box::new(typed(file, doc))),
                ("v1", "Service") => Object::Service(Box::new(typed(file, doc))),
                ("autoscaling/v2", "HorizontalPodAutoscaler") => {
                    Object::Hpa(Box::new(typed(file, doc)))
                }
                other => panic!("{file}: unexpected apiVersion/kind {other:?}"),
            }
        })
        .collect()
}

fn one<T>(file: &str, pick: impl Fn(Object) -> Option<T>) -> T {
    let mut found: Vec<T> = load(file).into_iter().filter_map(pick).collect();
    assert_eq!(
        found.len(),
        1,
        "{file}: expected exactly one object of the kind"
    );
    found.remove(0)
}

fn deployment(file: &str) -> Deployment {
    one(file, |o| match o {
        Object::Deployment(d) => Some(*d),
        _ => None,
    })
}

fn service(file: &str) -> Service {
    one(file, |o| match o {
        Object::Service(s) => Some(*s),
        _ => None,
    })
}

fn pod_spec(d: &Deployment) -> &PodSpec {
    d.spec.template.spec.as_ref().expect("pod spec")
}

fn container<'a>(spec: &'a PodSpec, name: &str) -> &'a Container {
    assert_eq!(spec.containers.len(), 1);
    let c = &spec.containers[0];
    assert_eq!(c.name, name);
    c
}

fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

fn env(c: &Container, name: &str) -> Option<String> {
    c.env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value
        .clone()
}

fn quantity(c: &Container, which: &str, res: &str) -> String {
    let r = c.resources.as_ref().expect("resources");
    let map = if which == "limits" {
        &r.limits
    } else {
        &r.requests
    };
    map.as_ref()
        .and_then(|m| m.get(res))
        .map(|q| q.0.clone())
        .unwrap_or_default()
}

/// Checks a workload's pod: container, image, pull policy, resources, hardening.
fn check_pod(file: &str, spec: &PodSpec, name: &str, image: &str) {
    let c = container(spec, name);
    assert_eq!(c.image.as_deref(), Some(image), "{file}: image");
    assert_eq!(
        c.image_pull_policy.as_deref(),
        Some("IfNotPresent"),
        "{file}"
    );
    assert!(
        !quantity(c, "requests", "cpu").is_empty(),
        "{file}: CPU request"
    );
    assert!(
        !quantity(c, "limits", "memory").is_empty(),
        "{file}: memory limit"
    );
    assert!(c.readiness_probe.is_some(), "{file}: readiness probe");
    let pod_sec = spec.security_context.as_ref().expect("pod securityContext");
    assert_eq!(pod_sec.run_as_non_root, Some(true), "{file}");
    let sec = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(sec.allow_privilege_escalation, Some(false), "{file}");
    assert_eq!(sec.read_only_root_filesystem, Some(true), "{file}");
    let drop = sec.capabilities.as_ref().and_then(|c| c.drop.clone());
    assert_eq!(drop, Some(vec!["ALL".to_owned()]), "{file}");
}

fn check_deployment(
    file: &str,
    name: &str,
    container_name: &str,
    image: &str,
    l: &[(&str, &str)],
) -> Deployment {
    let d = deployment(file);
    assert_eq!(d.metadata.name.as_deref(), Some(name), "{file}");
    let spec = &d.spec;
    assert_eq!(
        spec.selector.match_labels,
        Some(labels(l)),
        "{file}: selector"
    );
    let tmpl = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone());
    assert_eq!(tmpl, Some(labels(l)), "{file}: pod labels");
    check_pod(file, pod_spec(&d), container_name, image);
    d
}

const FE: [(&str, &str); 2] = [("app", "hello-k8s"), ("tier", "frontend")];
const API: [(&str, &str); 2] = [("app", "hello-k8s"), ("tier", "api")];
const REDIS: [(&str, &str); 2] = [("app", "redis"), ("tier", "backend")];

#[test]
fn every_manifest_is_a_valid_typed_object_without_unknown_fields() {
    let found: Vec<String> = std::fs::read_dir(dir())
        .expect("embedded-manifests/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    for f in &found {
        assert!(FILES.contains(&f.as_str()), "unexpected manifest {f}");
    }
    for f in FILES {
        assert!(!load(f).is_empty(), "{f}");
    }
}

#[test]
fn round_trip_rejects_a_misspelt_field() {
    let doc: Value = serde_saphyr::from_str(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  selectr:\n    app: x\n",
    )
    .expect("yaml");
    let err = round_trip::<Service>(&doc).expect_err("a misspelt field must fail");
    assert!(err.contains("fields lost"), "{err}");
}

#[test]
fn workloads_follow_the_contract() {
    for f in [
        "05-frontend-deployment.yml",
        "07-fake-requests-limits.yml",
        "08-limits-requests.yml",
        "10-frontend-liveness.yml",
    ] {
        let d = check_deployment(
            f,
            "hello-k8s-frontend",
            "hello-k8s-frontend",
            "hello-k8s-frontend:0.1.0",
            &FE,
        );
        let c = container(pod_spec(&d), "hello-k8s-frontend");
        assert_eq!(env(c, "GET_HOSTS_FROM").as_deref(), Some("env"), "{f}");
        assert_eq!(env(c, "API_HOST").as_deref(), Some("api"), "{f}");
        assert_eq!(env(c, "API_PORT").as_deref(), Some("5000"), "{f}");
    }
    for f in [
        "03-api-deployment.yml",
        "11-api-liveness.yml",
        "12-api-liveness-404.yml",
    ] {
        let d = check_deployment(
            f,
            "hello-k8s-api",
            "hello-k8s-api",
            "hello-k8s-api:0.1.0",
            &API,
        );
        let c = container(pod_spec(&d), "hello-k8s-api");
        assert_eq!(env(c, "GET_HOSTS_FROM").as_deref(), Some("env"), "{f}");
        assert_eq!(env(c, "REDIS_HOST").as_deref(), Some("redis"), "{f}");
    }
    let d = check_deployment(
        "01-redis-deployment.yml",
        "redis",
        "redis",
        "redis:7.2.4",
        &REDIS,
    );
    let c = container(pod_spec(&d), "redis");
    let mounts = c.volume_mounts.clone().unwrap_or_default();
    assert!(
        mounts.iter().any(|m| m.mount_path == "/data"),
        "redis writes to /data"
    );
}

#[test]
fn services_select_their_tiers() {
    for (f, name, port, target, l, typ) in [
        ("02-redis-service.yml", "redis", 6379, 6379, &REDIS, None),
        ("04-api-service.yml", "api", 5000, 5000, &API, None),
        (
            "06-frontend-service.yml",
            "frontend",
            80,
            8080,
            &FE,
            Some("LoadBalancer"),
        ),
    ] {
        let s = service(f);
        assert_eq!(s.metadata.name.as_deref(), Some(name), "{f}");
        let spec = s.spec.expect("spec");
        assert_eq!(spec.selector, Some(labels(l)), "{f}");
        assert_eq!(spec.type_.as_deref(), typ, "{f}");
        let p = &spec.ports.expect("ports")[0];
        assert_eq!(p.port, port, "{f}");
        assert_eq!(
            p.target_port,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(target)),
            "{f}"
        );
    }
}

#[test]
fn lesson_teaching_points_are_kept() {
    // 07 starves the frontend: a CPU limit of at most 10m, far below 08's.
    let starved = deployment("07-fake-requests-limits.yml");
    let sane = deployment("08-limits-requests.yml");
    let cpu = |d: &Deployment| {
        quantity(
            container(pod_spec(d), "hello-k8s-frontend"),
            "limits",
            "cpu",
        )
    };
    assert_eq!(cpu(&starved), "10m");
    assert!(
        cpu(&sane)
            .trim_end_matches('m')
            .parse::<u32>()
            .expect("millicores")
            >= 200
    );

    // 12 points liveness at a path the API does not serve; 11 at /healthz.
    let probe_path = |f: &str| {
        let d = deployment(f);
        let c = container(pod_spec(&d), "hello-k8s-api").clone();
        c.liveness_probe
            .and_then(|p| p.http_get)
            .map(|h| h.path.unwrap_or_default())
    };
    assert_eq!(
        probe_path("12-api-liveness-404.yml").as_deref(),
        Some("/health")
    );
    assert_eq!(
        probe_path("11-api-liveness.yml").as_deref(),
        Some("/healthz")
    );
    assert!(
        deployment("10-frontend-liveness.yml")
            .spec
            .template
            .spec
            .and_then(|s| s.containers[0].liveness_probe.clone())
            .is_some()
    );

    // 09: a StatefulSet with a claim template mounted at /data, governed by a headless service.
    let objs = load("09-redis-with-pv.yml");
    let headless = objs.iter().find_map(|o| match o {
        Object::Service(s) => Some(s.clone()),
        _ => None,
    });
    let headless = headless.expect("09 has a service");
    let sts = objs.into_iter().find_map(|o| match o {
        Object::StatefulSet(s) => Some(*s),
        _ => None,
    });
    let sts = sts.expect("09 has a StatefulSet");
    assert_eq!(sts.metadata.name.as_deref(), Some("redis"));
    let spec = sts.spec;
    assert_eq!(
        spec.service_name.as_deref(),
        headless.metadata.name.as_deref()
    );
    assert_eq!(
        headless.spec.and_then(|s| s.cluster_ip).as_deref(),
        Some("None")
    );
    let claim = spec.volume_claim_templates.expect("volumeClaimTemplates")[0]
        .metadata
        .name
        .clone()
        .expect("claim name");
    let pod = spec.template.spec.expect("pod spec");
    check_pod("09-redis-with-pv.yml", &pod, "redis", "redis:7.2.4");
    let mounts = pod.containers[0].volume_mounts.clone().unwrap_or_default();
    assert!(
        mounts
            .iter()
            .any(|m| m.name == claim && m.mount_path == "/data"),
        "claim mounted at /data"
    );

    // 13 scales the frontend Deployment on CPU.
    let hpa = one("13-frontend-hpa.yml", |o| match o {
        Object::Hpa(h) => Some(*h),
        _ => None,
    });
    let spec = hpa.spec;
    assert_eq!(spec.scale_target_ref.kind, "Deployment");
    assert_eq!(spec.scale_target_ref.name, "hello-k8s-frontend");
    assert!(spec.max_replicas > spec.min_replicas.unwrap_or(1));
    let metric = &spec.metrics.expect("metrics")[0];
    assert_eq!(
        metric.resource.as_ref().map(|r| r.name.as_str()),
        Some("cpu")
    );
}

#[test]
fn lesson_4_changes_four_fields_of_the_frontend() {
    let starved = hk8s::manifests::changes(
        "05-frontend-deployment.yml",
        "07-fake-requests-limits.yml",
        None,
    )
    .unwrap();
    let shown: Vec<(&str, &str, &str)> = starved
        .iter()
        .map(|c| (c.path.as_str(), c.before.as_str(), c.after.as_str()))
        .collect();
    let resources = "spec.template.spec.containers[0].resources";
    assert_eq!(
        shown,
        [
            (&*format!("{resources}.limits.cpu"), "500m", "10m"),
            (&*format!("{resources}.limits.memory"), "128Mi", "100Mi"),
            (&*format!("{resources}.requests.cpu"), "50m", "1m"),
            (&*format!("{resources}.requests.memory"), "32Mi", "10Mi"),
        ]
    );
    let sane = hk8s::manifests::changes(
        "07-fake-requests-limits.yml",
        "08-limits-requests.yml",
        None,
    )
    .unwrap();
    assert_eq!(sane.len(), 4, "{sane:?}");
}
