//! kube-rs against an in-process sandbox over HTTPS: CRUD, server-side apply, watches,
//! cascading delete, and the error answers.

mod common;

use futures::{StreamExt, TryStreamExt};
use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{conditions, wait::await_condition, watcher};
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .expect("namespace created");
}

fn deployment(name: &str, replicas: i32, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": name, "image": image}]}}}
    }))
    .unwrap()
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn typed_crud_round_trips() {
    let (sandbox, client, _dir) = common::start_standin().await;
    namespace(&client, "demo").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "settings", "labels": {"app": "x"}}, "data": {"k": "v"}}),
    )
    .unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    let rv1: u64 = created
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());

    let mut got = cms.get("settings").await.unwrap();
    assert_eq!(got.data.as_ref().unwrap()["k"], "v");
    got.data.as_mut().unwrap().insert("k".into(), "w".into());
    let replaced = cms
        .replace("settings", &PostParams::default(), &got)
        .await
        .unwrap();
    let rv2: u64 = replaced
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1, "resourceVersion grows: {rv1} -> {rv2}");

    // A stale resourceVersion is a 409 Conflict.
    let err = api_error(
        cms.replace("settings", &PostParams::default(), &got)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));

    let patched = cms
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["extra"], "1");

    let listed = cms
        .list(&ListParams::default().labels("app=x"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let none = cms
        .list(&ListParams::default().labels("app=y"))
        .await
        .unwrap();
    assert!(none.items.is_empty());
    let by_field = cms
        .list(&ListParams::default().fields("metadata.name=settings"))
        .await
        .unwrap();
    assert_eq!(by_field.items.len(), 1);

    cms.delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    let err = api_error(cms.get("settings").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "configmaps \"settings\" not found");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn error_answers_name_the_problem() {
    let (sandbox, client, _dir) = common::start_standin().await;
    namespace(&client, "demo").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "demo");
    deploys
        .create(&PostParams::default(), &deployment("web", 1, "nginx:1"))
        .await
        .unwrap();
    let err = api_error(
        deploys
            .create(&PostParams::default(), &deployment("web", 1, "nginx:1"))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));

    let mut bad = deployment("mismatch", 1, "nginx:1");
    bad.spec.selector.match_labels = Some([("app".to_string(), "other".to_string())].into());
    let err = api_error(
        deploys
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message
            .contains("spec.template.metadata.labels: Invalid value"),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains("`selector` does not match template `labels`")
    );

    // A required field left out is a 422 naming it, not a decoding error.
    let no_selector = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "loose"},
        "spec": {"template": {"metadata": {"labels": {"app": "x"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "demo",
        &kube::api::ApiResource::erase::<Deployment>(&()),
    );
    let err = api_error(
        raw.create(
            &PostParams::default(),
            &serde_json::from_value(no_selector).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("spec.selector: Required value"),
        "{}",
        err.message
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "demo");
    let greedy: Pod = serde_json::from_value(json!({
        "metadata": {"name": "greedy"},
        "spec": {"containers": [{"name": "c", "image": "i",
            "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}
    }))
    .unwrap();
    let err = api_error(
        pods.create(&PostParams::default(), &greedy)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains("spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"),
        "{}",
        err.message
    );

    let bad_name: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "Not_Valid"}})).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    let err = api_error(
        cms.create(&PostParams::default(), &bad_name)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message
            .contains("metadata.name: Invalid value: \"Not_Valid\"")
    );

    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let err = api_error(
        missing
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"nowhere\" not found");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_is_idempotent_and_tracks_managers() {
    let (sandbox, client, _dir) = common::start_standin().await;
    namespace(&client, "demo").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "demo");
    let pp = PatchParams::apply("hk8s-test");
    let first = deploys
        .patch("api", &pp, &Patch::Apply(deployment("api", 1, "api:1")))
        .await
        .unwrap();
    let again = deploys
        .patch("api", &pp, &Patch::Apply(deployment("api", 1, "api:1")))
        .await
        .unwrap();
    assert_eq!(
        first.metadata.resource_version, again.metadata.resource_version,
        "applying the same configuration twice changes nothing"
    );
    let managers: Vec<String> = again
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, vec!["hk8s-test".to_string()]);

    let changed = deploys
        .patch("api", &pp, &Patch::Apply(deployment("api", 3, "api:2")))
        .await
        .unwrap();
    let spec = changed.spec;
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        spec.template.spec.unwrap().containers[0].image.as_deref(),
        Some("api:2")
    );
    assert_eq!(changed.metadata.generation, Some(2));

    let other = PatchParams::apply("someone-else");
    let err = api_error(
        deploys
            .patch("api", &other, &Patch::Apply(deployment("api", 5, "api:2")))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert!(
        err.message.contains("conflict with \"hk8s-test\"")
            && err.message.contains(".spec.replicas"),
        "{}",
        err.message
    );
    let forced = deploys
        .patch(
            "api",
            &other.force(),
            &Patch::Apply(deployment("api", 5, "api:2")),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.replicas, Some(5));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn watcher_and_await_condition_see_pods_start() {
    let (sandbox, client, _dir) = common::start_standin().await;
    namespace(&client, "demo").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "demo");
    let stream = watcher(pods.clone(), watcher::Config::default().labels("app=redis"));
    let mut events = stream.boxed();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "redis-0", "labels": {"app": "redis"}},
        "spec": {"containers": [{"name": "redis", "image": "redis:7.2.4"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let running = tokio::time::timeout(
        WAIT,
        await_condition(pods.clone(), "redis-0", conditions::is_pod_running()),
    )
    .await
    .expect("pod runs in time")
    .unwrap()
    .unwrap();
    assert_eq!(running.status.unwrap().phase.as_deref(), Some("Running"));
    let seen = tokio::time::timeout(WAIT, async {
        while let Some(ev) = events.try_next().await.unwrap() {
            if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = ev
                && p.metadata.name.as_deref() == Some("redis-0")
            {
                return p;
            }
        }
        panic!("watch ended");
    })
    .await
    .expect("watcher sees the pod");
    assert_eq!(seen.metadata.labels.unwrap()["app"], "redis");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn deleting_an_owner_deletes_its_dependents() {
    let (sandbox, client, _dir) = common::start_standin().await;
    namespace(&client, "demo").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "demo");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "demo");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "demo");
    let d = deploys
        .create(&PostParams::default(), &deployment("web", 1, "nginx:1"))
        .await
        .unwrap();
    let owner = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                        "uid": d.metadata.uid.unwrap(), "controller": true}]);
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web-1", "labels": {"app": "web"}, "ownerReferences": owner},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}
    }))
    .unwrap();
    rss.create(&PostParams::default(), &rs).await.unwrap();
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    }))
    .unwrap();
    let svc = svcs.create(&PostParams::default(), &svc).await.unwrap();
    assert!(svc.spec.unwrap().cluster_ip.unwrap().starts_with("127.96."));

    deploys
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    assert_eq!(api_error(rss.get("web-1").await.unwrap_err()).code, 404);
    assert!(svcs.get("web").await.is_ok(), "unowned objects stay");

    // Orphan keeps the dependent and drops its owner reference.
    let d = deploys
        .create(&PostParams::default(), &deployment("web", 1, "nginx:1"))
        .await
        .unwrap();
    let mut rs2 = rs.clone();
    rs2.metadata.owner_references = Some(
        serde_json::from_value(json!([{"apiVersion": "apps/v1", "kind": "Deployment",
            "name": "web", "uid": d.metadata.uid.unwrap()}]))
        .unwrap(),
    );
    rss.create(&PostParams::default(), &rs2).await.unwrap();
    deploys
        .delete("web", &DeleteParams::orphan())
        .await
        .unwrap();
    let kept = rss.get("web-1").await.unwrap();
    assert!(
        kept.metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );

    // Foreground removes the dependents first, then the owner.
    rss.delete("web-1", &DeleteParams::default()).await.unwrap();
    let d = deploys
        .create(&PostParams::default(), &deployment("web", 1, "nginx:1"))
        .await
        .unwrap();
    let mut rs3 = rs.clone();
    rs3.metadata.owner_references = Some(
        serde_json::from_value(json!([{"apiVersion": "apps/v1", "kind": "Deployment",
            "name": "web", "uid": d.metadata.uid.unwrap()}]))
        .unwrap(),
    );
    rss.create(&PostParams::default(), &rs3).await.unwrap();
    deploys
        .delete("web", &DeleteParams::foreground())
        .await
        .unwrap();
    assert_eq!(api_error(rss.get("web-1").await.unwrap_err()).code, 404);
    assert_eq!(api_error(deploys.get("web").await.unwrap_err()).code, 404);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn objects_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let sandbox = Sandbox::start(SandboxConfig::new(&state).with_runtime(NodeRuntime::Standin))
        .await
        .unwrap();
    let client = sandbox.client().unwrap();
    namespace(&client, "demo").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "kept"}, "data": {"a": "b"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    sandbox.shutdown().await;

    let sandbox = Sandbox::start(SandboxConfig::new(&state).with_runtime(NodeRuntime::Standin))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(sandbox.client().unwrap(), "demo");
    let back = cms.get("kept").await.unwrap();
    assert_eq!(back.metadata.uid, cm.metadata.uid);
    assert_eq!(back.data.unwrap()["a"], "b");
    let next = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "later"}})).unwrap(),
        )
        .await
        .unwrap();
    let before: u64 = cm.metadata.resource_version.unwrap().parse().unwrap();
    let after: u64 = next.metadata.resource_version.unwrap().parse().unwrap();
    assert!(
        after > before,
        "resourceVersion keeps growing after a restart"
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn logs_scale_and_collections() {
    let (sandbox, client, _dir) = common::start_standin().await;
    namespace(&client, "demo").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "demo");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "api-0", "labels": {"app": "api"}},
        "spec": {"containers": [{"name": "hello-k8s-api", "image": "hello-k8s-api:0.1.0"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let log = hk8s_sandbox::paths::container_log_path(
        sandbox.state_dir(),
        "demo",
        "api-0",
        "hello-k8s-api",
    );
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, "starting\nlistening on 127.244.0.9:5000\nready\n").unwrap();
    let all = pods.logs("api-0", &Default::default()).await.unwrap();
    assert_eq!(all, "starting\nlistening on 127.244.0.9:5000\nready\n");
    let tail = pods
        .logs(
            "api-0",
            &kube::api::LogParams {
                tail_lines: Some(1),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tail, "ready\n");

    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "demo");
    deploys
        .create(&PostParams::default(), &deployment("web", 1, "nginx:1"))
        .await
        .unwrap();
    let scale = deploys.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    deploys
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(deploys.get("web").await.unwrap().spec.replicas, Some(4));

    // A pod relabelled out of a watch's selector is DELETED for that watch.
    let mut watch = pods
        .watch(&kube::api::WatchParams::default().labels("app=api"), "0")
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(WAIT, watch.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(first, Some(kube::api::WatchEvent::Added(_))));
    pods.patch(
        "api-0",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "moved"}}})),
    )
    .await
    .unwrap();
    let left = tokio::time::timeout(WAIT, watch.try_next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(left, Some(kube::api::WatchEvent::Deleted(_))),
        "{left:?}"
    );
    drop(watch);

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    for (name, tier) in [("a", "x"), ("b", "x"), ("c", "y")] {
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name, "labels": {"tier": tier}}}))
                .unwrap(),
        )
        .await
        .unwrap();
    }
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("tier=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(left, vec!["c".to_string()]);

    // Deleting the namespace empties it and then removes it.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let uid = namespaces.get("demo").await.unwrap().metadata.uid.unwrap();
    namespaces
        .delete("demo", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(namespaces.clone(), "demo", conditions::is_deleted(&uid)),
    )
    .await
    .expect("the namespace goes away")
    .unwrap();

    assert!(cms.get("c").await.is_err());
    let err = api_error(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "late"}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 404, "{}", err.message);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn terminating_pods_are_reaped_even_across_a_restart() {
    // Without a kubelet, a pod on the node stays Terminating for its grace period and is
    // then removed by the server, also when the sandbox restarted meanwhile.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = SandboxConfig::new(&state).with_runtime(NodeRuntime::ApiOnly);
    let sandbox = Sandbox::start(config.clone()).await.unwrap();
    let client = sandbox.client().unwrap();
    namespace(&client, "demo").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "demo");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "slow"},
        "spec": {"nodeName": "hk8s-sandbox", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": "redis:7.2.4"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    pods.delete("slow", &DeleteParams::default()).await.unwrap();
    let terminating = pods.get("slow").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(1));
    sandbox.shutdown().await;

    let sandbox = Sandbox::start(config).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(sandbox.client().unwrap(), "demo");
    let uid = terminating.metadata.uid.unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(pods.clone(), "slow", conditions::is_deleted(&uid)),
    )
    .await
    .expect("the pod is reaped after its grace period")
    .unwrap();
    sandbox.shutdown().await;
}

/// An object created for an owner that is already gone (a controller acting on a stale
/// view) is collected, as Kubernetes' garbage collector does; one whose owner lives stays.
#[tokio::test]
async fn objects_created_for_a_deleted_owner_are_collected() {
    let (sandbox, client, _dir) = common::start_standin().await;
    namespace(&client, "demo").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    let owner_of = |name: &str, uid: &str| {
        serde_json::from_value::<ConfigMap>(json!({"metadata": {"name": name,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                 "uid": uid}]}}))
        .unwrap()
    };
    let owner: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap();
    let owner = cms.create(&PostParams::default(), &owner).await.unwrap();
    let uid = owner.metadata.uid.unwrap();
    cms.create(&PostParams::default(), &owner_of("kept", &uid))
        .await
        .unwrap();

    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    assert!(cms.get_opt("kept").await.unwrap().is_none(), "cascade");
    cms.create(&PostParams::default(), &owner_of("late", &uid))
        .await
        .unwrap();
    assert!(
        cms.get_opt("late").await.unwrap().is_none(),
        "an object whose only owner is gone must be collected"
    );

    let again = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let live = cms
        .create(
            &PostParams::default(),
            &owner_of("live", again.metadata.uid.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert!(live.metadata.deletion_timestamp.is_none());
    assert!(cms.get_opt("live").await.unwrap().is_some());
    cms.create(&PostParams::default(), &owner_of("stale-uid", &uid))
        .await
        .unwrap();
    assert!(
        cms.get_opt("stale-uid").await.unwrap().is_none(),
        "an owner of the same name but another uid is not the owner"
    );
    sandbox.shutdown().await;
}
