//! Wire fidelity: what the sandbox answers byte for byte where clients look — create answers
//! with a status, `Status` errors in the API server's member order, field selectors a kind
//! does not support, size and name limits, and uid/resourceVersion preconditions. Checked
//! with raw HTTP, kubectl (the machine's and `HK8S_TEST_KUBECTL_NEW`) and, when
//! `HK8S_TEST_PYTHON` names a Python with the official client, that client.

mod common;

use common::kubectl::{Kubectl, Out, programs};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A request's status and body exactly as sent.
async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn run(program: &str, kubeconfig: &Path, args: &[&str], input: Option<&str>) -> Out {
    Kubectl::with_program(program, kubeconfig, TIMEOUT)
        .run_with_input(args, input)
        .await
}

fn deployment(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "c", "image": "redis"}]}}}})
}

#[tokio::test]
async fn create_answers_carry_the_zeroed_status() {
    let (sandbox, client, _dir) = common::start_standin().await;
    let (code, body) = raw(
        &client,
        "POST",
        "/apis/apps/v1/namespaces/default/deployments",
        Some(deployment("web")),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["status"], json!({}), "{body}");

    let mut sts = deployment("db");
    sts["kind"] = json!("StatefulSet");
    sts["spec"]["serviceName"] = json!("db");
    sts["status"] = json!({"replicas": 7});
    let (code, body) = raw(
        &client,
        "POST",
        "/apis/apps/v1/namespaces/default/statefulsets",
        Some(sts),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let created: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        created["status"],
        json!({"replicas": 0, "availableReplicas": 0}),
        "a client's status is reset on create: {body}"
    );

    for kubectl in programs() {
        let out = run(
            &kubectl,
            sandbox.kubeconfig_path(),
            &[
                "create",
                "deployment",
                "made-by-kubectl",
                "--image=redis",
                "--dry-run=server",
                "-o",
                "json",
            ],
            None,
        )
        .await;
        assert!(out.ok, "{kubectl}: {}", out.stderr);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(v["status"], json!({}), "{kubectl}: {}", out.stdout);
    }

    if let Ok(python) = std::env::var("HK8S_TEST_PYTHON") {
        let script = r#"
import sys
from kubernetes import client, config
config.load_kube_config(config_file=sys.argv[1])
apps = client.AppsV1Api()
body = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="py"),
    spec=client.V1DeploymentSpec(
        selector=client.V1LabelSelector(match_labels={"app": "py"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "py"}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="redis")]))))
d = apps.create_namespaced_deployment("default", body)
print("available", d.status.available_replicas)
"#;
        let kubeconfig = sandbox.kubeconfig_path().to_str().unwrap();
        let out = run(&python, Path::new(""), &["-c", script, kubeconfig], None).await;
        assert!(out.ok, "python: {}\n{}", out.stdout, out.stderr);
        assert_eq!(out.stdout.trim(), "available None");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn status_errors_have_the_api_server_member_order() {
    let (sandbox, client, _dir) = common::start_standin().await;
    let (code, body) = raw(
        &client,
        "GET",
        "/api/v1/namespaces/default/configmaps/nope",
        None,
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"configmaps"},"code":404}"#
    );
    let (code, body) = raw(
        &client,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/nope",
        None,
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"nope\" not found","reason":"NotFound","details":{"name":"nope","group":"apps","kind":"deployments"},"code":404}"#
    );
    let (code, body) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some(json!({"metadata": {"name": "Bad_Name"}})),
    )
    .await;
    assert_eq!(code, 422);
    assert!(
        body.starts_with(r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"#),
        "{body}"
    );
    assert!(
        body.ends_with(r#"","reason":"Invalid","details":{"name":"Bad_Name","kind":"ConfigMap","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')","field":"metadata.name"}]},"code":422}"#),
        "{body}"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn unsupported_field_selectors_are_bad_requests() {
    let (sandbox, client, _dir) = common::start_standin().await;
    let (code, body) = raw(
        &client,
        "GET",
        "/api/v1/namespaces/default/pods?fieldSelector=spec.foo%3Dx",
        None,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["message"], "field label not supported: spec.foo");
    assert_eq!(status["reason"], "BadRequest");
    let (code, _) = raw(
        &client,
        "GET",
        "/api/v1/namespaces/default/pods?fieldSelector=status.phase%3DRunning,spec.host%3Dx",
        None,
    )
    .await;
    assert_eq!(code, 200, "pods are selectable by phase and node");
    let (code, body) = raw(
        &client,
        "GET",
        "/apis/apps/v1/deployments?watch=true&fieldSelector=spec.replicas%3D1",
        None,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["message"],
        r#""spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace""#
    );
    for kubectl in programs() {
        let out = run(
            &kubectl,
            sandbox.kubeconfig_path(),
            &["get", "services", "--field-selector", "spec.selector=x"],
            None,
        )
        .await;
        assert!(!out.ok);
        assert!(
            out.stderr.contains("(BadRequest)")
                && out
                    .stderr
                    .contains("field label not supported: spec.selector"),
            "{kubectl}: {}",
            out.stderr
        );
        let out = run(
            &kubectl,
            sandbox.kubeconfig_path(),
            &[
                "get",
                "services",
                "-A",
                "--field-selector",
                "spec.type=ClusterIP,metadata.namespace!=x",
            ],
            None,
        )
        .await;
        assert!(out.ok, "{kubectl}: {}", out.stderr);
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn names_and_sizes_follow_each_kinds_limits() {
    let (sandbox, _client, dir) = common::start_standin().await;
    let kc = sandbox.kubeconfig_path();
    let long64 = "a".repeat(64);
    let long253 = format!("{}.{}", "b".repeat(200), "c".repeat(52));
    let long254 = "d".repeat(254);
    for kubectl in programs() {
        let ok = |out: &Out| assert!(out.ok, "{kubectl}: {}", out.stderr);
        ok(&run(
            &kubectl,
            kc,
            &["create", "configmap", &long64, "--dry-run=server"],
            None,
        )
        .await);
        ok(&run(
            &kubectl,
            kc,
            &["create", "secret", "generic", &long253, "--dry-run=server"],
            None,
        )
        .await);
        let mut d = deployment("x");
        d["metadata"]["name"] = json!(long64);
        ok(&run(
            &kubectl,
            kc,
            &["create", "--dry-run=server", "-f", "-"],
            Some(&d.to_string()),
        )
        .await);
        let out = run(
            &kubectl,
            kc,
            &[
                "create",
                "deployment",
                &long64,
                "--image=redis",
                "--dry-run=server",
            ],
            None,
        )
        .await;
        assert!(
            out.stderr.contains(&format!(
                "metadata.labels: Invalid value: \"{long64}\": must be no more than 63 characters"
            )),
            "{kubectl}: kubectl labels the deployment with its name: {}",
            out.stderr
        );
        let out = run(
            &kubectl,
            kc,
            &["create", "configmap", &long254, "--dry-run=server"],
            None,
        )
        .await;
        assert!(
            out.stderr.contains(&format!(
                "ConfigMap \"{long254}\" is invalid: metadata.name: Invalid value: \"{long254}\": must be no more than 253 characters"
            )),
            "{kubectl}: {}",
            out.stderr
        );
        let out = run(
            &kubectl,
            kc,
            &[
                "create",
                "service",
                "clusterip",
                &long64,
                "--tcp=80",
                "--dry-run=server",
            ],
            None,
        )
        .await;
        assert!(
            out.stderr.contains("must be no more than 63 characters"),
            "{kubectl}: {}",
            out.stderr
        );
        let out = run(
            &kubectl,
            kc,
            &["create", "namespace", &long64, "--dry-run=server"],
            None,
        )
        .await;
        assert!(
            out.stderr.contains("must be no more than 63 characters"),
            "{kubectl}: {}",
            out.stderr
        );
    }

    let big = dir.path().join("big.txt");
    std::fs::write(&big, "x".repeat(1024 * 1024 + 1)).unwrap();
    let exact = dir.path().join("exact.txt");
    std::fs::write(&exact, "x".repeat(1024 * 1024)).unwrap();
    let from = |p: &Path| format!("--from-file=data={}", p.display());
    let out = run(
        "kubectl",
        kc,
        &["create", "configmap", "big", &from(&big)],
        None,
    )
    .await;
    assert!(
        out.stderr.contains(
            "ConfigMap \"big\" is invalid: []: Too long: may not be more than 1048576 bytes"
        ),
        "{}",
        out.stderr
    );
    let out = run(
        "kubectl",
        kc,
        &["create", "secret", "generic", "big", &from(&big)],
        None,
    )
    .await;
    assert!(
        out.stderr.contains(
            "Secret \"big\" is invalid: data: Too long: may not be more than 1048576 bytes"
        ),
        "{}",
        out.stderr
    );
    let out = run(
        "kubectl",
        kc,
        &["create", "configmap", "exact", &from(&exact)],
        None,
    )
    .await;
    assert!(out.ok, "1 MiB exactly is allowed: {}", out.stderr);

    let annotated = |size: usize| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": format!("annotated-{size}"), "annotations": {"a": "x".repeat(size)}}})
        .to_string()
    };
    let out = run(
        "kubectl",
        kc,
        &["create", "-f", "-"],
        Some(&annotated(256 * 1024)),
    )
    .await;
    assert!(
        out.stderr
            .contains("metadata.annotations: Too long: may not be more than 262144 bytes"),
        "{}",
        out.stderr
    );
    let out = run(
        "kubectl",
        kc,
        &["create", "-f", "-"],
        Some(&annotated(256 * 1024 - 1)),
    )
    .await;
    assert!(
        out.ok,
        "256 KiB of annotations, key included, is allowed: {}",
        out.stderr
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn uid_and_resource_version_preconditions_are_enforced() {
    let (sandbox, client, _dir) = common::start_standin().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"k": "v"}}))
            .unwrap();
    let cm = cms.create(&PostParams::default(), &cm).await.unwrap();
    let uid = cm.metadata.uid.clone().unwrap();
    let rv = cm.metadata.resource_version.clone().unwrap();

    let wrong = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    let kube::Error::Api(s) = cms.delete("settings", &wrong).await.unwrap_err() else {
        panic!("an API error");
    };
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        format!(
            "Operation cannot be fulfilled on configmaps \"settings\": StorageError: invalid object, Code: 4, Key: /registry/configmaps/default/settings, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}"
        )
    );

    let mut replaced = cm.clone();
    replaced.metadata.uid = Some("not-the-uid".into());
    let kube::Error::Api(s) = cms
        .replace("settings", &PostParams::default(), &replaced)
        .await
        .unwrap_err()
    else {
        panic!("an API error");
    };
    assert_eq!(s.code, 409, "a PUT's uid is a precondition: {}", s.message);
    assert!(
        s.message
            .contains("Precondition failed: UID in precondition: not-the-uid")
    );

    let patch = Patch::Merge(json!({"metadata": {"uid": "not-the-uid"}}));
    let kube::Error::Api(s) = cms
        .patch("settings", &PatchParams::default(), &patch)
        .await
        .unwrap_err()
    else {
        panic!("an API error");
    };
    assert_eq!(s.code, 422);
    assert_eq!(
        s.message,
        "ConfigMap \"settings\" is invalid: metadata.uid: Invalid value: \"not-the-uid\": field is immutable"
    );

    cms.patch(
        "settings",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    let stale = Patch::Merge(json!({"metadata": {"resourceVersion": rv}, "data": {"k": "z"}}));
    let kube::Error::Api(s) = cms
        .patch("settings", &PatchParams::default(), &stale)
        .await
        .unwrap_err()
    else {
        panic!("an API error");
    };
    assert_eq!(s.code, 409);
    assert!(
        s.message.contains("the object has been modified"),
        "{}",
        s.message
    );

    let stale_delete = DeleteParams {
        preconditions: Some(Preconditions {
            uid: None,
            resource_version: Some(rv.clone()),
        }),
        ..Default::default()
    };
    let kube::Error::Api(s) = cms.delete("settings", &stale_delete).await.unwrap_err() else {
        panic!("an API error");
    };
    assert_eq!(s.code, 409);
    assert!(
        s.message
            .contains(&format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta:")),
        "{}",
        s.message
    );

    for kubectl in programs() {
        let out = run(
            &kubectl,
            sandbox.kubeconfig_path(),
            &[
                "patch",
                "configmap",
                "settings",
                "-p",
                r#"{"metadata":{"uid":"not-the-uid"}}"#,
            ],
            None,
        )
        .await;
        assert!(
            out.stderr.contains(
                "The ConfigMap \"settings\" is invalid: metadata.uid: Invalid value: \"not-the-uid\": field is immutable"
            ),
            "{kubectl}: {}",
            out.stderr
        );
    }
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..Default::default()
    };
    cms.delete("settings", &right).await.unwrap();
    sandbox.shutdown().await;
}
