//! The OpenAPI v3 the sandbox serves is Kubernetes' own: `kubectl explain` prints the field
//! documentation, and client-side `kubectl apply` merges lists by their patch merge keys
//! (so containers and env vars that someone else added survive a re-apply). Checked with
//! the machine's kubectl and, when given, `HK8S_TEST_KUBECTL_NEW`. `/openapi/v2` answers
//! JSON with the same definitions as Swagger 2.0 (validated with openapi-spec-validator
//! through the official Python client when `HK8S_TEST_PYTHON` is given), protobuf to kubectl.

mod common;

use common::kubectl::{Kubectl, programs};
use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs kubectl with `home` as its HOME (a fresh discovery and OpenAPI cache) and
/// returns its stdout, failing the test when it fails.
async fn kubectl(
    program: &str,
    kubeconfig: &Path,
    home: &Path,
    args: &[&str],
    input: Option<&str>,
) -> String {
    Kubectl::with_program(program, kubeconfig, TIMEOUT)
        .env("HOME", home)
        .ok_with_input(args, input)
        .await
}

#[tokio::test]
async fn kubectl_explain_prints_the_kubernetes_field_documentation() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(
        SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::Standin),
    )
    .await
    .unwrap();
    let kc = sandbox.kubeconfig_path();
    for (i, program) in programs().iter().enumerate() {
        let home = dir.path().join(format!("home-{i}"));
        std::fs::create_dir_all(&home).unwrap();
        let out = kubectl(
            program,
            kc,
            &home,
            &["explain", "deployment.spec.strategy"],
            None,
        )
        .await;
        assert!(
            out.contains("KIND:       Deployment") || out.contains("KIND:     Deployment"),
            "{program}: {out}"
        );
        assert!(
            out.contains("FIELD: strategy <DeploymentStrategy>"),
            "{program}: {out}"
        );
        assert!(
            out.contains("The deployment strategy to use to replace existing pods with new ones."),
            "{program}: {out}"
        );
        assert!(
            out.contains("rollingUpdate\t<RollingUpdateDeployment>"),
            "{program}: {out}"
        );
        let out = kubectl(
            program,
            kc,
            &home,
            &["explain", "pods.spec.containers.livenessProbe.httpGet"],
            None,
        )
        .await;
        assert!(
            out.contains("HTTPGet specifies an HTTP GET request to perform."),
            "{program}: {out}"
        );
        let out = kubectl(program, kc, &home, &["explain", "service.spec.type"], None).await;
        assert!(out.contains("ExternalName"), "{program}: {out}");
        let out = kubectl(
            program,
            kc,
            &home,
            &["explain", "hpa.spec", "--recursive"],
            None,
        )
        .await;
        assert!(
            out.contains("scaleTargetRef\t<CrossVersionObjectReference> -required-"),
            "{program}: {out}"
        );
    }
    sandbox.shutdown().await;
}

const MANIFEST: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: hello-k8s-frontend:IMAGE
        env:
        - {name: MODE, value: fast}
"#;

#[tokio::test]
async fn client_side_apply_merges_lists_by_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(
        SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::Standin),
    )
    .await
    .unwrap();
    let kc = sandbox.kubeconfig_path();
    for (i, program) in programs().iter().enumerate() {
        let home = dir.path().join(format!("home-{i}"));
        std::fs::create_dir_all(&home).unwrap();
        let ns = format!("apply-{i}");
        let n = ["-n", ns.as_str()];
        kubectl(program, kc, &home, &["create", "namespace", &ns], None).await;
        let run = |args: Vec<&'static str>, input: Option<String>| {
            let (program, home) = (program.clone(), home.clone());
            let args: Vec<String> = args.into_iter().chain(n).map(String::from).collect();
            async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                kubectl(&program, kc, &home, &args, input.as_deref()).await
            }
        };
        run(
            vec!["apply", "-f", "-"],
            Some(MANIFEST.replace("IMAGE", "0.1.0")),
        )
        .await;
        run(
            vec!["set", "env", "deployment/web", "ADDED=by-someone-else"],
            None,
        )
        .await;
        let sidecar = r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"redis:7"}]}}}}"#;
        run(vec!["patch", "deployment", "web", "-p", sidecar], None).await;
        run(
            vec!["apply", "-f", "-"],
            Some(MANIFEST.replace("IMAGE", "0.2.0")),
        )
        .await;
        let json = run(vec!["get", "deployment", "web", "-o", "json"], None).await;
        let d: Value = serde_json::from_str(&json).unwrap();
        let containers = d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        let web = containers.iter().find(|c| c["name"] == "web").unwrap();
        assert!(
            containers.iter().any(|c| c["name"] == "sidecar") && containers.len() == 2,
            "{program}: containers merge by name: {json}"
        );
        assert_eq!(web["image"], "hello-k8s-frontend:0.2.0", "{program}");
        let env: Vec<&str> = web["env"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            env,
            ["MODE", "ADDED"],
            "{program}: env merges by name: {json}"
        );
    }
    sandbox.shutdown().await;
}

/// Validates `/openapi/v2`, fetched through the official Python client's transport, as a
/// Swagger 2.0 document with openapi-spec-validator; prints the Deployment definition's
/// kind extension.
const PYTHON_V2_CHECK: &str = r#"
import json, sys
from kubernetes import client, config
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV2SpecValidator
config.load_kube_config(config_file=sys.argv[1])
api = client.ApiClient()
request = api.param_serialize("GET", "/openapi/v2", header_params={"Accept": "application/json"},
                              auth_settings=["BearerToken"])
resp = api.call_api(*request)
resp.read()
doc = json.loads(resp.data)
validate(doc, cls=OpenAPIV2SpecValidator)
print(json.dumps(doc["definitions"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"]))
"#;

#[tokio::test]
async fn openapi_v2_serves_swagger_json_with_the_v3_definitions() {
    use http_body_util::BodyExt;
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(
        SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::Standin),
    )
    .await
    .unwrap();
    let client = sandbox.client().unwrap();
    let get = |accept: &'static str| {
        let client = client.clone();
        async move {
            let req = http::Request::get("/openapi/v2")
                .header("accept", accept)
                .body(Vec::new())
                .unwrap();
            let resp = client
                .send(req.map(kube::client::Body::from))
                .await
                .unwrap();
            let ty = resp.headers()["content-type"].to_str().unwrap().to_string();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (ty, body)
        }
    };
    let (ty, body) = get("application/json").await;
    assert_eq!(ty, "application/json");
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["swagger"], "2.0");
    let definitions = &doc["definitions"];
    let containers = &definitions["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(
        containers["x-kubernetes-patch-merge-key"], "name",
        "{containers:#}"
    );
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(
        containers["items"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.Container"
    );
    let strategy = &definitions["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
    assert_eq!(
        strategy["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentStrategy"
    );
    assert!(!body.windows(21).any(|w| w == b"#/components/schemas/"));
    assert_eq!(
        definitions["io.k8s.api.batch.v1.Job"]["x-kubernetes-group-version-kind"][0]["kind"],
        "Job"
    );

    let (ty, proto) = get("application/com.github.proto-openapi.spec.v2@v1.0+protobuf").await;
    assert_eq!(
        ty,
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    assert!(proto.starts_with(b"\x0a\x032.0"), "{proto:?}");

    if let Ok(python) = std::env::var("HK8S_TEST_PYTHON") {
        let out = tokio::process::Command::new(&python)
            .args(["-c", PYTHON_V2_CHECK])
            .arg(sandbox.kubeconfig_path())
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let gvk: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(gvk[0]["kind"], "Deployment");
    }
}
