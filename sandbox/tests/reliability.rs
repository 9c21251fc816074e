//! Faults around the sandbox's guarantees, each reproduced for real: two sandboxes on one
//! state directory, files other users could read, a full disk (a small tmpfs filled and
//! freed by the test), clients that never finish their headers, watches and exact lists at
//! versions the server does not have, objects over etcd's size limit.

use futures::{AsyncBufReadExt, TryStreamExt};
use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig, SandboxError};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, VersionMatch};
use serde_json::{Value, json};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn config(state: &Path) -> SandboxConfig {
    SandboxConfig::new(state).with_runtime(NodeRuntime::ApiOnly)
}

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": value}})).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A tmpfs of `size` mounted for the test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![7u8; 4096];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn a_second_sandbox_on_one_state_dir_is_refused_clearly_until_the_first_stops() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let first = Sandbox::start(config(&state)).await.unwrap();
    let second = Sandbox::start(config(&state)).await;
    let err = second.err().expect("the second start fails");
    assert!(
        matches!(err, SandboxError::AlreadyRunning { pid: Some(p), .. } if p == std::process::id() as i32),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("already runs") && text.contains("hk8s sandbox down"),
        "{text}"
    );
    let holder = hk8s_sandbox::instance::holder(&state).unwrap().unwrap();
    assert_eq!(holder.url.as_deref(), Some(first.url().as_str()));
    first.shutdown().await;
    assert_eq!(hk8s_sandbox::instance::holder(&state).unwrap(), None);
    let again = Sandbox::start(config(&state)).await.unwrap();
    again.shutdown().await;
}

#[tokio::test]
async fn the_state_dir_and_its_files_are_private_and_repaired_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let sandbox = Sandbox::start(config(&state)).await.unwrap();
    assert_eq!(mode(&state), 0o700);
    for file in [
        "store.redb",
        "token",
        "kubeconfig",
        "server.key",
        "sandbox.lock",
    ] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
    sandbox.shutdown().await;

    // What an older version or a loose umask left: everything readable by everyone.
    let log = state.join("logs").join("demo").join("pod").join("c.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "secret output").unwrap();
    for path in [
        &state,
        &state.join("logs"),
        &log.parent().unwrap().to_path_buf(),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for path in [state.join("store.redb"), log.clone()] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let sandbox = Sandbox::start(config(&state)).await.unwrap();
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("logs")), 0o700);
    assert_eq!(mode(log.parent().unwrap()), 0o700);
    assert_eq!(mode(&state.join("store.redb")), 0o600);
    assert_eq!(mode(&log), 0o600);
    sandbox.shutdown().await;
}

/// Creates ConfigMaps of 16 KiB until one fails; the error it failed with.
async fn write_until_failure(cms: &Api<ConfigMap>) -> kube::core::Status {
    let value = "x".repeat(16 * 1024);
    for i in 0..2000 {
        match cms
            .create(&PostParams::default(), &cm(&format!("fill-{i}"), &value))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) => return *e,
            Err(e) => panic!("a write failed without a Status: {e}"),
        }
    }
    panic!("2000 writes of 16 KiB succeeded on a full disk");
}

async fn readyz(client: &kube::Client) -> Result<String, String> {
    let request = http::Request::get("/readyz").body(Vec::new()).unwrap();
    client.request_text(request).await.map_err(|e| match e {
        kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    })
}

#[tokio::test]
async fn a_full_disk_answers_507_and_writes_resume_once_space_is_freed() {
    let disk = SmallDisk::mount("16m");
    let state = disk.path().join("state");
    let sandbox = Sandbox::start(config(&state)).await.unwrap();
    let client = sandbox.client().unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(&PostParams::default(), &cm("before", "kept"))
        .await
        .unwrap();
    assert_eq!(readyz(&client).await.as_deref(), Ok("ok"));

    let filler = disk.fill();
    let err = write_until_failure(&cms).await;
    assert_eq!(err.code, 507, "{err:?}");
    assert!(err.message.contains("no space left"), "{}", err.message);
    assert!(
        err.message.contains(&state.display().to_string()),
        "{}",
        err.message
    );
    // Larger than any free pages the aborted write left inside the store file.
    let big = "x".repeat(900 * 1024);
    let again = cms
        .create(&PostParams::default(), &cm("during", &big))
        .await;
    assert!(
        matches!(&again, Err(kube::Error::Api(e)) if e.code == 507),
        "{again:?}"
    );
    let unready = readyz(&client).await.expect_err("not ready on a full disk");
    assert!(unready.contains("no space left"), "{unready}");
    assert_eq!(
        cms.get("before").await.unwrap().data.unwrap()["k"],
        "kept",
        "reads go on"
    );

    std::fs::remove_file(filler).unwrap();
    assert_eq!(readyz(&client).await.as_deref(), Ok("ok"));
    cms.create(&PostParams::default(), &cm("after", "written"))
        .await
        .unwrap();
    sandbox.shutdown().await;
    let sandbox = Sandbox::start(config(&state)).await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(sandbox.client().unwrap());
    assert_eq!(
        cms.get("after").await.unwrap().data.unwrap()["k"],
        "written"
    );
    assert!(
        cms.get("during").await.is_err(),
        "a refused write is not stored"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn start_up_on_a_full_disk_refuses_without_calling_the_store_corrupt() {
    let disk = SmallDisk::mount("16m");
    let state = disk.path().join("state");
    let sandbox = Sandbox::start(config(&state)).await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(sandbox.client().unwrap());
    cms.create(&PostParams::default(), &cm("kept", "yes"))
        .await
        .unwrap();
    sandbox.shutdown().await;

    let filler = disk.fill();
    let err = Sandbox::start(config(&state))
        .await
        .err()
        .expect("start-up refuses");
    let text = err.to_string();
    assert!(!text.contains("corrupt"), "{text}");
    assert!(
        text.contains("no space left") || text.contains("No space left"),
        "{text}"
    );
    assert_eq!(hk8s_sandbox::instance::holder(&state).unwrap(), None);

    std::fs::remove_file(filler).unwrap();
    let sandbox = Sandbox::start(config(&state)).await.unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(sandbox.client().unwrap());
    assert_eq!(cms.get("kept").await.unwrap().data.unwrap()["k"], "yes");
    sandbox.shutdown().await;
}

/// A TLS client for the sandbox, trusting its CA.
fn tls_connector(sandbox: &Sandbox) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(sandbox.ca_pem().as_bytes()).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&dir.path().join("state"));
    config.header_read_timeout = Duration::from_secs(2);
    let sandbox = Sandbox::start(config).await.unwrap();
    let connector = tls_connector(&sandbox);
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conns = Vec::new();
    for _ in 0..50 {
        let tcp = tokio::net::TcpStream::connect(sandbox.addr())
            .await
            .unwrap();
        let mut tls = connector.connect(name.clone(), tcp).await.unwrap();
        tls.write_all(b"GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .await
            .unwrap();
        tls.flush().await.unwrap();
        conns.push(tls);
    }
    let started = Instant::now();
    for mut tls in conns {
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await;
        let closed = match read {
            Ok(Ok(n)) => n == 0 || String::from_utf8_lossy(&buf[..n]).contains("408"),
            Ok(Err(_)) => true,
            Err(_) => false,
        };
        assert!(
            closed,
            "a half-sent request still held after {:?}",
            started.elapsed()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // The server still serves everyone else.
    let client = sandbox.client().unwrap();
    assert!(client.apiserver_version().await.is_ok());
    sandbox.shutdown().await;
}

/// The first line of a raw watch, as JSON.
async fn first_watch_line(client: &kube::Client, path: &str) -> Value {
    let request = http::Request::get(path).body(Vec::new()).unwrap();
    let mut lines = client.request_stream(request).await.unwrap().lines();
    let line = tokio::time::timeout(Duration::from_secs(15), lines.try_next())
        .await
        .expect("the watch answers")
        .unwrap()
        .expect("a line");
    serde_json::from_str(&line).unwrap()
}

#[tokio::test]
async fn a_watch_from_a_future_version_waits_for_it_then_answers_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(config(&dir.path().join("state")))
        .await
        .unwrap();
    let client = sandbox.client().unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let rv: u64 = cms
        .create(&PostParams::default(), &cm("a", "1"))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
        .parse()
        .unwrap();

    let started = Instant::now();
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={}",
        rv + 1000
    );
    let event = first_watch_line(&client, &path).await;
    let waited = started.elapsed();
    assert_eq!(event["type"], "ERROR", "{event}");
    let status = &event["object"];
    assert_eq!(status["code"], 504, "{status}");
    assert_eq!(status["reason"], "Timeout");
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "ResourceVersionTooLarge"
    );
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("Too large resource version"),
        "{status}"
    );
    assert!(
        waited >= Duration::from_millis(2900),
        "answered after {waited:?}"
    );

    // A version written while the watch waits is streamed from.
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={}",
        rv + 1
    );
    let writer = {
        let cms = cms.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            cms.create(&PostParams::default(), &cm("b", "2"))
                .await
                .unwrap();
            cms.create(&PostParams::default(), &cm("c", "3"))
                .await
                .unwrap();
        })
    };
    let event = first_watch_line(&client, &path).await;
    writer.await.unwrap();
    assert_eq!(event["type"], "ADDED", "{event}");
    assert_eq!(
        event["object"]["metadata"]["name"], "c",
        "changes after the version only"
    );
    sandbox.shutdown().await;
}

fn names(list: &kube::core::ObjectList<ConfigMap>) -> Vec<(String, String)> {
    list.items
        .iter()
        .map(|c| {
            let name = c.metadata.name.clone().unwrap();
            let value = c.data.as_ref().unwrap()["k"].clone();
            (name, value)
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn exact_lists_answer_the_state_at_that_version_until_it_leaves_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut small_history = config(&dir.path().join("state"));
    small_history.history_bytes = 1024 * 1024;
    let sandbox = Sandbox::start(small_history).await.unwrap();
    // kube-rs retries 504 on its own; this test wants to see the 504.
    let mut config = sandbox.kube_config().unwrap();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let rv_of = |c: ConfigMap| c.metadata.resource_version.unwrap();
    let v1 = rv_of(
        cms.create(&PostParams::default(), &cm("a", "1"))
            .await
            .unwrap(),
    );
    let patch = Patch::Merge(json!({"data": {"k": "2"}}));
    let v2 = rv_of(
        cms.patch("a", &PatchParams::default(), &patch)
            .await
            .unwrap(),
    );
    cms.create(&PostParams::default(), &cm("b", "1"))
        .await
        .unwrap();
    cms.delete("a", &Default::default()).await.unwrap();

    let exact = |rv: &str| ListParams::default().at(rv).matching(VersionMatch::Exact);
    let at_v1 = cms.list(&exact(&v1)).await.unwrap();
    assert_eq!(names(&at_v1), pairs(&[("a", "1")]));
    assert_eq!(
        at_v1.metadata.resource_version.as_deref(),
        Some(v1.as_str())
    );
    assert_eq!(
        at_v1.items[0].metadata.resource_version.as_deref(),
        Some(v1.as_str())
    );
    let at_v2 = cms.list(&exact(&v2)).await.unwrap();
    assert_eq!(names(&at_v2), pairs(&[("a", "2")]));
    let now = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&now), pairs(&[("b", "1")]));

    let future = (v2.parse::<u64>().unwrap() + 100).to_string();
    let err = cms.list(&exact(&future)).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 504),
        "{err:?}"
    );
    let started = Instant::now();
    let not_older = ListParams::default()
        .at(&future)
        .matching(VersionMatch::NotOlderThan);
    let err = cms.list(&not_older).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 504),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(2900));
    let request =
        http::Request::get("/api/v1/namespaces/default/configmaps?resourceVersionMatch=Exact")
            .body(Vec::new())
            .unwrap();
    let err = client.request_text(request).await;
    assert!(
        matches!(&err, Err(kube::Error::Api(e)) if e.code == 422 && e.message.contains("forbidden unless resourceVersion")),
        "{err:?}"
    );
    // kube-rs refuses to build this request, so it goes raw.
    let request = http::Request::get(
        "/api/v1/namespaces/default/configmaps?resourceVersion=0&resourceVersionMatch=Exact",
    )
    .body(Vec::new())
    .unwrap();
    let err = client.request_text(request).await;
    assert!(
        matches!(&err, Err(kube::Error::Api(e)) if e.code == 422),
        "{err:?}"
    );

    // 12 objects of 100 KiB are more than this sandbox's 1 MiB history keeps.
    let revisions: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::default_namespaced(client.clone());
    let blob = "y".repeat(100 * 1024);
    for i in 0..12 {
        let revision = json!({"metadata": {"name": format!("big-{i}")}, "revision": 1, "data": {"blob": blob}});
        let revision = serde_json::from_value(revision).unwrap();
        revisions
            .create(&PostParams::default(), &revision)
            .await
            .unwrap();
    }
    let err = cms.list(&exact(&v1)).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 410),
        "{err:?}"
    );
    let watch = format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={v1}");
    let event = first_watch_line(&client, &watch).await;
    assert_eq!(event["object"]["code"], 410, "{event}");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_object_over_etcds_limit_is_refused_and_a_body_over_3_mib_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(config(&dir.path().join("state")))
        .await
        .unwrap();
    let client = sandbox.client().unwrap();
    let revisions: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::default_namespaced(client.clone());
    let revision = |size: usize| {
        serde_json::from_value(json!({
            "metadata": {"name": format!("r{size}")},
            "revision": 1,
            "data": {"blob": "z".repeat(size)},
        }))
        .unwrap()
    };
    revisions
        .create(&PostParams::default(), &revision(1024 * 1024))
        .await
        .unwrap();
    let err = revisions
        .create(&PostParams::default(), &revision(2 * 1024 * 1024))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 500 && e.message.contains("request is too large")),
        "{err:?}"
    );
    let err = revisions
        .create(&PostParams::default(), &revision(4 * 1024 * 1024))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(e) if e.code == 413),
        "{err:?}"
    );
    sandbox.shutdown().await;
}
