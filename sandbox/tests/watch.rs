//! Watch semantics through kube-rs: resuming from a resourceVersion, 410 Gone for a
//! version older than the server remembers, streaming-list bookmarks, timeoutSeconds.

use futures::{StreamExt, TryStreamExt};
use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": name}})).unwrap()
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(WAIT, stream.try_next())
        .await
        .expect("an event arrives in time")
        .expect("the watch works")
        .expect("the watch is still open")
}

#[tokio::test]
async fn watch_resumes_after_a_version_and_expires_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let sandbox = Sandbox::start(SandboxConfig::new(&state).with_runtime(NodeRuntime::Standin))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(sandbox.client().unwrap());
    let a = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    cms.create(&PostParams::default(), &cm("b")).await.unwrap();
    let after_a = a.metadata.resource_version.unwrap();

    let mut stream = cms
        .watch(&WatchParams::default(), &after_a)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("expected b Added, got {other:?}"),
    }
    cms.create(&PostParams::default(), &cm("c")).await.unwrap();
    match next_event(&mut stream).await {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("c")),
        other => panic!("expected c Added, got {other:?}"),
    }
    drop(stream);
    sandbox.shutdown().await;

    // After a restart the server remembers no history: older versions are Gone.
    let sandbox = Sandbox::start(SandboxConfig::new(&state).with_runtime(NodeRuntime::Standin))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(sandbox.client().unwrap());
    let mut stream = cms
        .watch(&WatchParams::default(), &after_a)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message.contains("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn streaming_lists_end_with_a_bookmark_and_timeouts_close_the_watch() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(
        SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::Standin),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::default_namespaced(sandbox.client().unwrap());
    for name in ["x", "y"] {
        cms.create(&PostParams::default(), &cm(name)).await.unwrap();
    }
    let mut stream = cms
        .watch(&WatchParams::streaming_lists(), "0")
        .await
        .unwrap()
        .boxed();
    let mut names = Vec::new();
    loop {
        match next_event(&mut stream).await {
            WatchEvent::Added(o) => names.push(o.metadata.name.unwrap()),
            WatchEvent::Bookmark(b) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(names, vec!["x".to_string(), "y".to_string()]);
    drop(stream);

    let stream = cms
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap();
    let events: Vec<_> = tokio::time::timeout(WAIT, stream.collect::<Vec<_>>())
        .await
        .expect("timeoutSeconds=1 ends the watch");
    assert_eq!(events.len(), 2, "the two existing objects, then the end");
    sandbox.shutdown().await;
}
