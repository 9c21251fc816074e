//! Bad input gets a clear Kubernetes error and changes nothing: malformed, truncated and
//! oversized bodies, wrong content types, missing or wrong tokens, non-loopback binds,
//! corrupt and foreign state directories.

use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig, SandboxError};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

const CMS: &str = "/api/v1/namespaces/default/configmaps";

async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(body))
        .unwrap();
    let resp = client.send(req).await.expect("the server answers");
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (code, json)
}

async fn start() -> (Sandbox, kube::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(
        SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::Standin),
    )
    .await
    .unwrap();
    let client = sandbox.client().unwrap();
    (sandbox, client, dir)
}

#[tokio::test]
async fn malformed_truncated_and_oversized_bodies_are_refused() {
    let (sandbox, client, _dir) = start().await;
    let good =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ok"},"data":{"a":"b"}}"#;

    let (code, status) = send(&client, "POST", CMS, "application/json", b"{]".to_vec()).await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    let truncated = good[..good.len() / 2].to_vec();
    let (code, status) = send(&client, "POST", CMS, "application/json", truncated).await;
    assert_eq!(code, 400);
    assert!(
        status["message"].as_str().unwrap().contains("EOF"),
        "{status}"
    );

    let (code, status) = send(
        &client,
        "POST",
        CMS,
        "application/yaml",
        b"metadata: [unclosed\n".to_vec(),
    )
    .await;
    assert_eq!(code, 400);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("not valid YAML")
    );

    let mut huge =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"huge"},"data":{"a":""#
            .to_vec();
    huge.extend(std::iter::repeat_n(b'x', 4 * 1024 * 1024));
    huge.extend(br#""}}"#);
    let (code, status) = send(&client, "POST", CMS, "application/json", huge).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (413, Some("RequestEntityTooLarge"))
    );

    let (code, status) = send(&client, "POST", CMS, "text/plain", good.to_vec()).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );
    let (code, _) = send(
        &client,
        "PATCH",
        &format!("{CMS}/ok"),
        "application/json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(code, 415, "a PATCH must name its patch type");

    let (code, _) = send(
        &client,
        "POST",
        "/api/v1/namespaces/default/widgets",
        "application/json",
        good.to_vec(),
    )
    .await;
    assert_eq!(code, 404);

    // Nothing above was stored; a good body in YAML is.
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    assert!(
        cms.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let (code, created) = send(
        &client,
        "POST",
        CMS,
        "application/yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n".to_vec(),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(cms.get("from-yaml").await.unwrap().data.unwrap()["a"], "b");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn requests_without_the_token_are_unauthorized() {
    let (sandbox, _client, _dir) = start().await;
    let ca = CertificateDer::from_pem_slice(sandbox.ca_pem().as_bytes()).unwrap();
    for token in [None, Some("wrong-token")] {
        let mut cfg = kube::Config::new(sandbox.url().parse().unwrap());
        cfg.root_cert = Some(vec![ca.to_vec()]);
        if let Some(t) = token {
            cfg.headers.push((
                http::header::AUTHORIZATION,
                format!("Bearer {t}").parse().unwrap(),
            ));
        }
        let anonymous = kube::Client::try_from(cfg).unwrap();
        let (code, status) = send(&anonymous, "GET", CMS, "application/json", Vec::new()).await;
        assert_eq!(
            (code, status["reason"].as_str()),
            (401, Some("Unauthorized"))
        );
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn non_loopback_binds_need_explicit_consent() {
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::Standin);
    config.bind = "0.0.0.0".parse().unwrap();
    let err = Sandbox::start(config.clone()).await.err().expect("refused");
    assert!(matches!(err, SandboxError::NonLoopback { .. }), "{err}");
    assert!(err.to_string().contains("allow_non_loopback"));

    config.allow_non_loopback = true;
    let sandbox = Sandbox::start(config).await.expect("allowed explicitly");
    assert!(sandbox.addr().ip().is_unspecified());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn corrupt_and_foreign_state_dirs_are_left_alone_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let sandbox = Sandbox::start(SandboxConfig::new(&state).with_runtime(NodeRuntime::Standin))
        .await
        .unwrap();
    sandbox.shutdown().await;
    let store = state.join("store.redb");
    std::fs::write(&store, b"this is not a database").unwrap();
    let err = Sandbox::start(SandboxConfig::new(&state).with_runtime(NodeRuntime::Standin))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, SandboxError::CorruptStore { .. }), "{err}");
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert_eq!(
        std::fs::read(&store).unwrap(),
        b"this is not a database",
        "no silent wipe"
    );

    let foreign = dir.path().join("photos");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("holiday.jpg"), b"jpeg").unwrap();
    let err = Sandbox::start(SandboxConfig::new(&foreign).with_runtime(NodeRuntime::Standin))
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, SandboxError::ForeignStateDir { .. }), "{err}");
    assert_eq!(
        std::fs::read_dir(&foreign).unwrap().count(),
        1,
        "nothing written"
    );
}

#[tokio::test]
async fn a_second_sandbox_on_the_same_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = Sandbox::start(SandboxConfig::new(&state).with_runtime(NodeRuntime::Standin))
        .await
        .unwrap();
    let err = Sandbox::start(SandboxConfig::new(&state).with_runtime(NodeRuntime::Standin))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, SandboxError::AlreadyRunning { pid: Some(p), .. } if p == std::process::id() as i32),
        "{err}"
    );
    first.shutdown().await;
}
