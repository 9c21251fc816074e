//! Sandbox API benchmark (not a test): start to first answer, and p50/p99 of GET, LIST
//! and watch delivery with 1,000 objects, over HTTPS through kube-rs like any client.
//! Run with `benches/sandbox.sh` (release build).

use futures::StreamExt;
use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::time::{Duration, Instant};

const OBJECTS: usize = 1000;

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let idx = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(name: &str, samples: &mut [Duration], target_p99_ms: Option<f64>) {
    let p50 = percentile(samples, 0.50);
    let p99 = percentile(samples, 0.99);
    let target = match target_p99_ms {
        Some(t) => format!("  (target p99 < {t} ms: {:.2}x of target)", ms(p99) / t),
        None => String::new(),
    };
    println!(
        "{name:<28} n={:<5} p50 {:>8.3} ms  p99 {:>8.3} ms{target}",
        samples.len(),
        ms(p50),
        ms(p99)
    );
}

fn cm(i: usize) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": format!("cm-{i:04}"), "labels": {"app": "bench", "n": (i % 10).to_string()}},
        "data": {"message": format!("hello {i}")}
    }))
    .expect("a valid ConfigMap")
}

async fn first_answer(dir: &std::path::Path) -> (Sandbox, Duration, Duration) {
    let started = Instant::now();
    let sandbox = Sandbox::start(SandboxConfig::new(dir).with_runtime(NodeRuntime::Standin))
        .await
        .expect("sandbox starts");
    let listening = started.elapsed();
    let client = sandbox.client().expect("client");
    client.apiserver_version().await.expect("first answer");
    (sandbox, listening, started.elapsed())
}

#[tokio::main]
async fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("state");

    let (sandbox, listening, answered) = first_answer(&dir).await;
    println!(
        "fresh start: listening after {:.1} ms, first answer after {:.1} ms  (target < 300 ms: {:.2}x of target)",
        ms(listening),
        ms(answered),
        ms(answered) / 300.0
    );
    let client = sandbox.client().expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());

    let mut creates = Vec::with_capacity(OBJECTS);
    for i in 0..OBJECTS {
        let t = Instant::now();
        cms.create(&PostParams::default(), &cm(i))
            .await
            .expect("create");
        creates.push(t.elapsed());
    }
    report("CREATE (durable commit)", &mut creates, None);

    let mut gets = Vec::new();
    for round in 0..3 * OBJECTS {
        let name = format!("cm-{:04}", (round * 7919) % OBJECTS);
        let t = Instant::now();
        cms.get(&name).await.expect("get");
        gets.push(t.elapsed());
    }
    report("GET one of 1,000", &mut gets, Some(5.0));

    let mut lists = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let l = cms.list(&ListParams::default()).await.expect("list");
        lists.push(t.elapsed());
        assert_eq!(l.items.len(), OBJECTS);
    }
    report("LIST all 1,000", &mut lists, None);

    let mut selected = Vec::new();
    for i in 0..50 {
        let t = Instant::now();
        let l = cms
            .list(&ListParams::default().labels(&format!("n={}", i % 10)))
            .await
            .expect("list");
        selected.push(t.elapsed());
        assert_eq!(l.items.len(), OBJECTS / 10);
    }
    report("LIST 100 by label of 1,000", &mut selected, None);

    let rv = cms
        .list(&ListParams::default().limit(1))
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list has a resourceVersion");
    let mut stream = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    let mut deliveries = Vec::new();
    for i in 0..OBJECTS {
        let t = Instant::now();
        cms.patch(
            &format!("cm-{i:04}"),
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"message": format!("changed {i}")}})),
        )
        .await
        .expect("patch");
        loop {
            match stream.next().await {
                Some(Ok(WatchEvent::Modified(o)))
                    if o.metadata.name.as_deref() == Some(&format!("cm-{i:04}")) =>
                {
                    break;
                }
                Some(Ok(_)) => {}
                other => panic!("watch ended: {other:?}"),
            }
        }
        deliveries.push(t.elapsed());
    }
    report("PATCH -> watch event", &mut deliveries, None);
    drop(stream);
    sandbox.shutdown().await;

    let (sandbox, listening, answered) = first_answer(&dir).await;
    println!(
        "restart with {} objects: listening after {:.1} ms, first answer after {:.1} ms  (target < 300 ms: {:.2}x of target)",
        OBJECTS + 8,
        ms(listening),
        ms(answered),
        ms(answered) / 300.0
    );
    sandbox.shutdown().await;
}
