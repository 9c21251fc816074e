//! Lessons 3-7 on the sandbox with its process runtime (real app binaries and redis-server):
//! every lesson with --yes, `hk8s verify --apply --all --sandbox` as CI runs it, and the
//! lessons' checks failing with their reason on deliberately broken states.

mod support;

use support::{ensure_app_binaries, text};

use hk8s::checks::{CheckSpec, HpaSpec, ResourcesSpec};
use hk8s::cluster::Target;
use hk8s_sandbox::{Sandbox, SandboxConfig};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::Api;
use kube::api::{Patch, PatchParams};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

async fn start_sandbox(dir: &Path) -> Sandbox {
    ensure_app_binaries();
    let config = SandboxConfig::new(dir.join("sandbox"));
    Sandbox::start(config).await.expect("sandbox starts")
}

async fn hk8s(args: &[&str], envs: &[(&str, &Path)], limit: Duration) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_hk8s"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("HK8S_NAMESPACE")
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("hk8s {args:?} did not finish within {limit:?}"))
        .expect("hk8s runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lesson_with_yes_on_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(dir.path()).await;
    let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
    let data = dir.path().join("data");
    let envs = [
        ("HK8S_KUBECONFIG", kubeconfig.as_path()),
        ("HK8S_DATA_DIR", data.as_path()),
    ];
    let expectations: [(u32, &[&str]); 8] = [
        (0, &["✔ a node is Ready"]),
        (1, &["namespace/demo created"]),
        (
            2,
            &[
                "service/frontend created",
                "✔ service frontend: LoadBalancer",
            ],
        ),
        (
            3,
            &[
                "As expected, the cluster refused it",
                "extensions/v1beta1",
                "deployment/hello-k8s-frontend created",
                "✔ message posted through the frontend is read back",
            ],
        ),
        (
            4,
            &[
                "Availability:",
                "✔ requests and limits of hello-k8s-frontend",
            ],
        ),
        (
            5,
            &[
                "is gone",
                "✔ PersistentVolumeClaims Bound",
                "✔ a message survives deleting pods app=redis",
            ],
        ),
        (
            6,
            &[
                "✔ pods app=hello-k8s,tier=api restarted by the kubelet",
                "Unhealthy",
            ],
        ),
        (
            7,
            &[
                "✔ hello-k8s-frontend has more than 1 replica(s)",
                "✔ HPA hello-k8s-frontend",
            ],
        ),
    ];
    for (lesson, wanted) in expectations {
        let n = lesson.to_string();
        let out = hk8s(&["lesson", &n, "--yes"], &envs, Duration::from_secs(600)).await;
        let t = text(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "lesson {lesson} with --yes:\n{t}"
        );
        for w in wanted {
            assert!(t.contains(w), "lesson {lesson} shows {w:?}:\n{t}");
        }
        assert!(!t.contains("✘"), "no failed check in lesson {lesson}:\n{t}");
    }
    let out = hk8s(&[], &envs, Duration::from_secs(30)).await;
    assert!(text(&out).contains("8/8"), "{}", text(&out));
    lessons_three_and_five_again_keep_one_redis_and_its_data(&sandbox, &envs).await;
    sandbox.shutdown().await;
}

/// Lesson 3 after lesson 5: one Redis behind the service, not two, said before it is done;
/// the StatefulSet's claim and its messages stay and come back with lesson 5.
async fn lessons_three_and_five_again_keep_one_redis_and_its_data(
    sandbox: &Sandbox,
    envs: &[(&str, &Path)],
) {
    let out = hk8s(&["lesson", "3", "--yes"], envs, Duration::from_secs(600)).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "lesson 3 again:\n{t}");
    let said = t
        .find("Lesson 5 replaced deployment/redis by statefulset/redis")
        .unwrap_or_else(|| panic!("says what lesson 5 changed:\n{t}"));
    let deleted = t.find("statefulset/redis deleted").expect("deletes it");
    assert!(said < deleted, "said before it is done:\n{t}");
    assert!(
        t.contains("redis-data-redis-0"),
        "names the kept claim:\n{t}"
    );
    assert!(
        t.contains("Lesson 5 is no longer marked done"),
        "progress follows the cluster:\n{t}"
    );
    let client = sandbox.client().unwrap();
    let sets = Api::<StatefulSet>::namespaced(client.clone(), "demo");
    assert!(sets.get_opt("redis").await.unwrap().is_none(), "{t}");
    let deployments = Api::<Deployment>::namespaced(client.clone(), "demo");
    assert!(deployments.get_opt("redis").await.unwrap().is_some(), "{t}");
    let claims = Api::<PersistentVolumeClaim>::namespaced(client, "demo");
    assert!(
        claims
            .get_opt("redis-data-redis-0")
            .await
            .unwrap()
            .is_some(),
        "claim kept"
    );

    let out = hk8s(&["lesson", "5", "--yes"], envs, Duration::from_secs(600)).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "lesson 5 again:\n{t}");
    let kept = t
        .lines()
        .filter(|l| {
            l.trim_start()
                .starts_with("• Written before the pod is deleted (")
        })
        .count();
    assert_eq!(
        kept, 2,
        "the first run's message is back with the claim, beside this run's:\n{t}"
    );
    assert!(
        t.contains(
            "Deleting the pods app=redis in namespace demo to check that a message survives"
        ),
        "the check says it deletes the Redis pod:\n{t}"
    );
    assert!(
        t.contains("• hk8s check: persistence test message") && t.contains("safe to ignore"),
        "the first run's check message is marked as hk8s's own on the page:\n{t}"
    );
}

/// Stops a sandbox started by `--sandbox` (detached) when the test ends, pass or fail.
struct SandboxDown(PathBuf);

impl Drop for SandboxDown {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_hk8s"))
            .args(["sandbox", "down"])
            .env("HK8S_SANDBOX_DIR", &self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_apply_all_with_the_sandbox_flag_passes() {
    ensure_app_binaries();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    let data = dir.path().join("data");
    let _down = SandboxDown(state.clone());
    let envs = [
        ("HK8S_SANDBOX_DIR", state.as_path()),
        ("HK8S_DATA_DIR", data.as_path()),
    ];
    let out = hk8s(
        &[
            "verify",
            "--apply",
            "--all",
            "--sandbox",
            "--output",
            "json",
        ],
        &envs,
        Duration::from_secs(900),
    )
    .await;
    let t = text(&out);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{t}"));
    let failed: Vec<&serde_json::Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .collect();
    assert!(failed.is_empty(), "failed checks: {failed:#?}\n{t}");
    assert_eq!(out.status.code(), Some(0), "{t}");
    let lessons: std::collections::BTreeSet<u64> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["lesson"].as_u64())
        .collect();
    assert_eq!(lessons.len(), 8, "every lesson checked: {lessons:?}");
    assert!(
        t.contains("Starting the built-in sandbox"),
        "--sandbox started it:\n{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_of_lessons_three_to_seven_fail_with_the_reason_on_broken_states() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(dir.path()).await;
    let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
    let data = dir.path().join("data");
    let envs = [
        ("HK8S_KUBECONFIG", kubeconfig.as_path()),
        ("HK8S_DATA_DIR", data.as_path()),
    ];
    for lesson in ["1", "2", "3"] {
        let out = hk8s(
            &["lesson", lesson, "--yes"],
            &envs,
            Duration::from_secs(600),
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let target = Target {
        client: sandbox.client().unwrap(),
        context: "hk8s-sandbox".into(),
        server: sandbox.url(),
        namespace: "demo".into(),
        sandbox: true,
        kubeconfig: Some(kubeconfig.clone()),
    };

    // Lesson 4: the frontend still has lesson 3's resources, not the starved ones.
    let starved = CheckSpec::ContainerResources(ResourcesSpec {
        deployment: "hello-k8s-frontend".into(),
        container: "hello-k8s-frontend".into(),
        requests: BTreeMap::from([("cpu".into(), "1m".into())]),
        limits: BTreeMap::from([("cpu".into(), "10m".into())]),
    });
    let r = starved.run(&target, 4).await;
    assert!(
        !r.passed && r.detail.contains("requests.cpu is 50m, expected 1m"),
        "{r:?}"
    );

    // Lesson 5: no claim exists before the StatefulSet.
    let r = CheckSpec::PvcsBound.run(&target, 5).await;
    assert!(
        !r.passed && r.detail.contains("no PVC in the namespace"),
        "{r:?}"
    );
    // ... and messages do not survive a plain Redis Deployment's pod being replaced.
    let r = CheckSpec::MessageSurvivesPodDeletion {
        selector: "app=redis".into(),
    }
    .run(&target, 5)
    .await;
    assert!(!r.passed && r.detail.contains("was lost"), "{r:?}");

    // Lesson 6: a healthy API has not been restarted.
    let r = CheckSpec::Restarted {
        selector: "app=hello-k8s,tier=api".into(),
        at_least: 1,
        event_reason: "Unhealthy".into(),
    }
    .run(&target, 6)
    .await;
    assert!(
        !r.passed && r.detail.contains("0 restart(s), expected at least 1"),
        "{r:?}"
    );

    // Lesson 7: no HPA yet, one replica.
    let r = CheckSpec::Hpa(HpaSpec {
        name: "hello-k8s-frontend".into(),
        deployment: "hello-k8s-frontend".into(),
        min: 1,
        max: 10,
    })
    .run(&target, 7)
    .await;
    assert!(
        !r.passed && r.detail.contains("HPA hello-k8s-frontend not found"),
        "{r:?}"
    );
    let r = CheckSpec::ReplicasAbove {
        deployment: "hello-k8s-frontend".into(),
        above: 1,
    }
    .run(&target, 7)
    .await;
    assert!(!r.passed && r.detail.contains("has 1 replica(s)"), "{r:?}");

    // Lesson 3: with the API scaled to zero the frontend cannot store a message.
    let deployments = Api::<Deployment>::namespaced(target.client.clone(), "demo");
    deployments
        .patch(
            "hello-k8s-api",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    let pods = Api::<k8s_openapi::api::core::v1::Pod>::namespaced(target.client.clone(), "demo");
    let api_pods = kube::api::ListParams::default().labels("app=hello-k8s,tier=api");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !pods.list(&api_pods).await.unwrap().items.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "api pods still there after scaling to 0"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let out = hk8s(&["verify", "3"], &envs, Duration::from_secs(180)).await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("FAIL lesson 3 · service api has ready endpoints: selector app=hello-k8s,tier=api matches 0 ready pod(s) of 0"),
        "{t}"
    );
    assert!(
        t.contains("FAIL lesson 3 · deployment hello-k8s-api Available: hello-k8s-api is scaled to 0 replicas"),
        "{t}"
    );
    assert!(t.contains("FAIL lesson 3 · message posted through the frontend is read back: the frontend at http://"), "{t}");
    assert!(
        t.contains("PASS lesson 3 · deployment hello-k8s-frontend Available"),
        "{t}"
    );
    sandbox.shutdown().await;
}

/// The README's run command (`hk8s lesson 3 --sandbox --yes`) on a machine with no sandbox
/// and no progress: it starts the sandbox, sets up lessons 1 and 2, then runs lesson 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_three_with_sandbox_and_yes_from_scratch() {
    ensure_app_binaries();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    let data = dir.path().join("data");
    let _down = SandboxDown(state.clone());
    let envs = [
        ("HK8S_SANDBOX_DIR", state.as_path()),
        ("HK8S_DATA_DIR", data.as_path()),
    ];
    let out = hk8s(
        &["lesson", "3", "--sandbox", "--yes"],
        &envs,
        Duration::from_secs(600),
    )
    .await;
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("Starting the built-in sandbox"), "{t}");
    assert!(t.contains("Lesson 3 builds on lesson 2 (Services)"), "{t}");
    assert!(t.contains("✔ lesson 2 set up"), "{t}");
    assert!(t.contains("Lesson 3 complete."), "{t}");

    let open = hk8s(
        &["open", "--sandbox", "--print"],
        &envs,
        Duration::from_secs(60),
    )
    .await;
    let t = text(&open);
    assert_eq!(open.status.code(), Some(0), "{t}");
    let url = t
        .lines()
        .find_map(|l| l.strip_prefix("The frontend is at "))
        .unwrap_or_else(|| panic!("`hk8s open --print` names the frontend's address:\n{t}"));
    let page = http_get(url.trim());
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("Leave us a kind message"),
        "the address `hk8s open` printed serves the frontend: {url}\n{page}"
    );

    let status = hk8s(&["sandbox", "status"], &envs, Duration::from_secs(30)).await;
    assert_eq!(
        status.status.code(),
        Some(0),
        "the sandbox keeps running: {}",
        text(&status)
    );
}

/// A plain GET of an `http://host[:port]/path` URL; the whole response as text.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut stream = std::net::TcpStream::connect(&addr).expect("the frontend's address accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut page = Vec::new();
    stream.read_to_end(&mut page).expect("the frontend answers");
    String::from_utf8_lossy(&page).into_owned()
}

fn deployment(name: &str, image: &str, cpu: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "main",
                    "image": image,
                    "resources": {"requests": {"cpu": cpu}}
                }]}
            }
        }
    }))
    .unwrap()
}

/// A wait that times out explains what is stuck: an image the cluster cannot pull (with
/// the commands to load it), or a pod the scheduler cannot place (with its reason).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_time_out_with_a_diagnosis() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox(dir.path()).await;
    let client = sandbox.client().unwrap();
    hk8s::apply::ensure_namespace(&client, "demo")
        .await
        .unwrap();
    let target = Target {
        client: client.clone(),
        context: "hk8s-sandbox".into(),
        server: sandbox.url(),
        namespace: "demo".into(),
        sandbox: true,
        kubeconfig: None,
    };
    let ui = hk8s::ui::Ui {
        color: false,
        interactive: false,
        quiet: true,
    };
    let deployments = Api::<Deployment>::namespaced(client, "demo");
    let pp = kube::api::PostParams::default();
    deployments
        .create(&pp, &deployment("unpullable", "no-such-image:1.0", "10m"))
        .await
        .unwrap();
    deployments
        .create(&pp, &deployment("too-big", "hello-k8s-api:0.1.0", "500"))
        .await
        .unwrap();

    let err = hk8s::wait::wait(
        &target,
        &hk8s::wait::WaitFor::PodsReady("app=unpullable".into()),
        Duration::from_secs(15),
        &ui,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("timed out after 15 s waiting for pods app=unpullable to be Ready"),
        "{err}"
    );
    assert!(err.contains("cannot pull image no-such-image:1.0"), "{err}");
    assert!(
        err.contains("kind load docker-image no-such-image:1.0"),
        "{err}"
    );
    assert!(
        err.contains("minikube image load") && err.contains("k3d image import"),
        "{err}"
    );

    let err = hk8s::wait::wait(
        &target,
        &hk8s::wait::WaitFor::DeploymentsAvailable(vec!["too-big".into()]),
        Duration::from_secs(10),
        &ui,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("is Pending: the scheduler cannot place it"),
        "{err}"
    );
    assert!(err.contains("Insufficient cpu"), "{err}");
    sandbox.shutdown().await;
}
