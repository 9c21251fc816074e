//! The process kubelet and controllers against an in-process sandbox, through kube-rs:
//! real processes (sh, python3, sleep) mapped from images in the sandbox's images.yaml.

mod common;

use common::wait_for;
use hk8s_sandbox::{Sandbox, SandboxConfig};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Endpoints, Event, Namespace, Pod, Service};
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Env {
    sandbox: Option<Sandbox>,
    client: Client,
    dir: tempfile::TempDir,
}

impl Env {
    async fn start(images: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = SandboxConfig::new(dir.path().join("state"));
        let sandbox = Sandbox::start(config).await.expect("starting the sandbox");
        std::fs::write(
            hk8s_sandbox::paths::images_config_path(sandbox.state_dir()),
            format!("images:\n{images}"),
        )
        .unwrap();
        let client = sandbox.client().unwrap();
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "demo"}})).unwrap();
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        Env {
            sandbox: Some(sandbox),
            client,
            dir,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), "demo")
    }

    async fn create<K>(&self, value: Value) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
    {
        let obj: K = serde_json::from_value(value).unwrap();
        self.api::<K>()
            .create(&PostParams::default(), &obj)
            .await
            .unwrap()
    }

    async fn wait_pod(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let pods = self.api::<Pod>();
        let start = Instant::now();
        loop {
            if let Ok(pod) = pods.get(name).await {
                let v = serde_json::to_value(&pod).unwrap();
                if check(&v) {
                    return v;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "pod {name}: timed out waiting for {what}: {v:#}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs the real kubectl against this sandbox.
    async fn kubectl(&self, args: &[&str]) -> std::process::Output {
        let sandbox = self.sandbox.as_ref().expect("the sandbox is running");
        tokio::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", sandbox.kubeconfig_path())
            .output()
            .await
            .expect("kubectl runs")
    }

    /// The events once `wanted` holds for them, or after 10 s for the caller's assertion to
    /// show them: components queue their events, which land just after the status changes
    /// a test waits for.
    async fn events_when(&self, wanted: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        let start = Instant::now();
        loop {
            let events = self
                .api::<Event>()
                .list(&ListParams::default())
                .await
                .unwrap()
                .items;
            if wanted(&events) || start.elapsed() > Duration::from_secs(10) {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = &self.dir;
        drop(self.sandbox.take());
    }
}

fn pod(name: &str, image: &str, extra: Value) -> Value {
    let mut container = json!({"name": "main", "image": image});
    if let Some(obj) = extra.as_object() {
        for (k, v) in obj {
            container[k] = v.clone();
        }
    }
    json!({"metadata": {"name": name, "labels": {"app": name}}, "spec": {"containers": [container]}})
}

#[tokio::test(flavor = "multi_thread")]
async fn crashes_back_off_missing_programs_wait_and_memory_hogs_are_oom_killed() {
    let env = Env::start(
        "  crasher:\n    program: sh\n    args: [\"-c\", \"echo boom; exit 3\"]\n  \
         ghost: hk8s-no-such-program\n  \
         sleeper:\n    program: sleep\n    args: [\"600\"]\n  \
         hog:\n    program: python3\n    args: [\"-c\", \"import time\\na = bytearray(300 * 1024 * 1024)\\ntime.sleep(60)\"]\n",
    )
    .await;
    env.create::<Pod>(pod("crasher", "registry.example/crasher:1", json!({})))
        .await;
    env.create::<Pod>(pod("ghost", "ghost:2", json!({}))).await;
    env.create::<Pod>(pod("unknown", "nginx:1.25", json!({})))
        .await;
    env.create::<Pod>(pod(
        "hog",
        "hog",
        json!({"resources": {"limits": {"memory": "64Mi", "cpu": "500m"}}}),
    ))
    .await;

    env.create::<Pod>(pod(
        "slow",
        "sleeper",
        json!({"startupProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}}),
    ))
    .await;
    let crasher = env
        .wait_pod("crasher", "CrashLoopBackOff after two restarts", |p| {
            let s = &p["status"]["containerStatuses"][0];
            s["restartCount"].as_i64().unwrap_or(0) >= 2
                && s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        })
        .await;
    let last = &crasher["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 3, "{crasher:#}");
    assert_eq!(last["reason"], "Error");
    let logs = env
        .api::<Pod>()
        .logs("crasher", &LogParams::default())
        .await
        .unwrap();
    assert!(logs.contains("boom"), "{logs:?}");

    let ghost = env
        .wait_pod("ghost", "a waiting reason", |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["message"].is_string()
                && p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                    != "ContainerCreating"
        })
        .await;
    let waiting = &ghost["status"]["containerStatuses"][0]["state"]["waiting"];
    // ErrImagePull, then ImagePullBackOff while the kubelet waits to pull again.
    assert!(
        waiting["reason"] == "ErrImagePull" || waiting["reason"] == "ImagePullBackOff",
        "{ghost:#}"
    );
    let message = waiting["message"].as_str().unwrap();
    assert!(
        message.contains("hk8s-no-such-program") && message.contains("images.yaml"),
        "{message}"
    );
    let unknown = env
        .wait_pod("unknown", "a waiting reason", |p| {
            let reason = &p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"];
            reason == "ErrImagePull" || reason == "ImagePullBackOff"
        })
        .await;
    let message = unknown["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("redis") && message.contains("images.yaml"),
        "{message}"
    );

    let hog = env
        .wait_pod("hog", "an OOM kill", |p| {
            p["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"] == "OOMKilled"
        })
        .await;
    assert!(
        hog["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap()
            >= 1
    );

    env.wait_pod("slow", "a restart by its startup probe", |p| {
        p["status"]["containerStatuses"][0]["restartCount"]
            .as_i64()
            .unwrap_or(0)
            >= 1
            && p["status"]["containerStatuses"][0]["started"] == false
    })
    .await;
    let expected = [
        "Scheduled",
        "Pulled",
        "Created",
        "Started",
        "BackOff",
        "Failed",
    ];
    let restarted = |e: &Event| {
        e.message.as_deref() == Some("Container main failed startup probe, will be restarted")
    };
    let events = env
        .events_when(|events| {
            events.iter().any(restarted)
                && expected
                    .iter()
                    .all(|r| events.iter().any(|e| e.reason.as_deref() == Some(r)))
        })
        .await;
    assert!(events.iter().any(restarted), "{events:?}");
    let reasons: Vec<String> = events.iter().filter_map(|e| e.reason.clone()).collect();
    for reason in expected {
        assert!(
            reasons.iter().any(|r| r == reason),
            "no {reason} event in {reasons:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_that_do_not_fit_stay_pending_with_failed_scheduling() {
    let env = Env::start("  sleeper:\n    program: sleep\n    args: [\"600\"]\n").await;
    env.create::<Pod>(pod(
        "huge",
        "sleeper",
        json!({"resources": {"requests": {"cpu": "1000", "memory": "1Mi"}}}),
    ))
    .await;
    let huge = env
        .wait_pod("huge", "PodScheduled=False", |p| {
            p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "PodScheduled" && c["status"] == "False")
            })
        })
        .await;
    assert_eq!(huge["status"]["phase"], "Pending");
    assert!(huge["spec"]["nodeName"].is_null());
    let message = huge["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.starts_with("0/1 nodes are available: 1 Insufficient cpu."),
        "{message}"
    );
    let failed = |e: &Event| {
        e.reason.as_deref() == Some("FailedScheduling")
            && e.message
                .as_deref()
                .is_some_and(|m| m.contains("Insufficient cpu"))
    };
    let events = env.events_when(|events| events.iter().any(failed)).await;
    assert!(events.iter().any(failed), "{events:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_gates_endpoints_and_rolling_updates_replace_every_pod() {
    let env = Env::start("  web: python3\n").await;
    let ready_file = env.dir.path().join("ready");
    let deployment = json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "web:1",
                    "args": ["-m", "http.server", "8000", "--bind", "$(POD_IP)"],
                    "env": [
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "VERSION", "value": "1"}
                    ],
                    "ports": [{"name": "http", "containerPort": 8000}],
                    "readinessProbe": {
                        "exec": {"command": ["test", "-f", ready_file.to_str().unwrap()]},
                        "periodSeconds": 1
                    }
                }]}
            }
        }
    });
    env.create::<Deployment>(deployment).await;
    let svc: Service = env
        .create(json!({
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}
        }))
        .await;
    let cluster_ip = svc.spec.unwrap().cluster_ip.unwrap();

    let endpoints = env.api::<Endpoints>();
    wait_for(
        "two not-ready endpoints",
        Duration::from_secs(60),
        async || {
            let ep = endpoints.get_opt("web").await.ok()??;
            let subset = ep.subsets?.into_iter().next()?;
            (subset.addresses.is_none() && subset.not_ready_addresses.map(|a| a.len()) == Some(2))
                .then_some(())
        },
    )
    .await;
    std::fs::write(&ready_file, "").unwrap();
    wait_for("two ready endpoints", Duration::from_secs(60), async || {
        let ep = endpoints.get_opt("web").await.ok()??;
        let subset = ep.subsets?.into_iter().next()?;
        let ports = subset.ports?;
        (subset.addresses.map(|a| a.len()) == Some(2) && ports[0].port == 8000).then_some(())
    })
    .await;
    let status = wait_for(
        "the cluster IP to answer",
        Duration::from_secs(30),
        async || {
            let stream = tokio::net::TcpStream::connect((cluster_ip.as_str(), 80))
                .await
                .ok()?;
            let io = hyper_util::rt::TokioIo::new(stream);
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.ok()?;
            tokio::spawn(conn);
            let req = http::Request::get("/")
                .header("host", "web")
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            Some(sender.send_request(req).await.ok()?.status().as_u16())
        },
    )
    .await;
    assert_eq!(status, 200);

    let deployments = env.api::<Deployment>();
    let before: Vec<String> = env
        .api::<Pod>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "VERSION", "value": "2"}
    ]}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let done = wait_for(
        "the rollout to complete",
        Duration::from_secs(90),
        async || {
            let d = deployments.get("web").await.ok()?;
            let s = d.status.clone()?;
            let complete = s.observed_generation >= d.metadata.generation
                && s.updated_replicas == Some(2)
                && s.replicas == Some(2)
                && s.available_replicas == Some(2);
            complete.then_some(d)
        },
    )
    .await;
    let conditions = done.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"))
    );
    assert!(
        conditions
            .iter()
            .any(|c| c.reason.as_deref() == Some("NewReplicaSetAvailable"))
    );
    let sets = env
        .api::<ReplicaSet>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(sets.len(), 2, "one ReplicaSet per template");
    for rs in &sets {
        let hash = rs
            .labels()
            .get("pod-template-hash")
            .expect("pod-template-hash label");
        assert_eq!(rs.name_any(), format!("web-{hash}"));
    }
    let pods = wait_for(
        "the old pods to be gone",
        Duration::from_secs(60),
        async || {
            let pods = env
                .api::<Pod>()
                .list(&ListParams::default())
                .await
                .ok()?
                .items;
            (pods.len() == 2).then_some(pods)
        },
    )
    .await;
    assert!(
        pods.iter().all(|p| !before.contains(&p.name_any())),
        "a pod survived the rolling update"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_that_makes_no_progress_exceeds_its_deadline() {
    let env = Env::start("  ghost: hk8s-no-such-program\n").await;
    env.create::<Deployment>(json!({
        "metadata": {"name": "stuck"},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 2,
            "selector": {"matchLabels": {"app": "stuck"}},
            "template": {
                "metadata": {"labels": {"app": "stuck"}},
                "spec": {"containers": [{"name": "main", "image": "ghost:1"}]}
            }
        }
    }))
    .await;
    let deployments = env.api::<Deployment>();
    let condition = wait_for(
        "Progressing=False ProgressDeadlineExceeded",
        Duration::from_secs(60),
        async || {
            let d = deployments.get("stuck").await.ok()?;
            d.status?.conditions?.into_iter().find(|c| {
                c.type_.as_deref() == Some("Progressing") && c.status.as_deref() == Some("False")
            })
        },
    )
    .await;
    assert_eq!(
        condition.reason.as_deref(),
        Some("ProgressDeadlineExceeded")
    );
    assert!(
        condition
            .message
            .as_deref()
            .is_some_and(|m| m.ends_with("has timed out progressing.")),
        "{condition:?}"
    );
    let rollout = env
        .kubectl(&[
            "rollout",
            "status",
            "deployment/stuck",
            "-n",
            "demo",
            "--timeout=30s",
        ])
        .await;
    let stderr = String::from_utf8_lossy(&rollout.stderr);
    assert!(!rollout.status.success(), "{stderr}");
    assert!(
        stderr.contains("deployment \"stuck\" exceeded its progress deadline"),
        "kubectl rollout status gives up as on a cluster: {stderr}"
    );
}

/// The real kubectl against `env`'s sandbox; stdout, failing the test on an error.
async fn kubectl(env: &Env, args: &[&str]) -> String {
    let out = env.kubectl(args).await;
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_lease_and_endpoint_slices_read_as_on_a_cluster() {
    let env = Env::start("  web: python3\n").await;
    env.create::<Pod>(pod(
        "web",
        "web:1",
        json!({
            "args": ["-m", "http.server", "8000", "--bind", "$(POD_IP)"],
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
            "ports": [{"containerPort": 8000}],
            "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 1}
        }),
    ))
    .await;
    env.create::<Service>(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8000}]}
    }))
    .await;
    let ip = env
        .wait_pod("web", "ready with an IP", |p| {
            p["status"]["conditions"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .await["status"]["podIP"]
        .as_str()
        .unwrap()
        .to_string();
    let slices = wait_for(
        "the slice to list the pod",
        Duration::from_secs(60),
        async || {
            let out = kubectl(&env, &["get", "endpointslices", "-n", "demo"]).await;
            out.contains(&ip).then_some(out)
        },
    )
    .await;
    let header: Vec<&str> = slices.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]);
    let row: Vec<&str> = slices.lines().nth(1).unwrap().split_whitespace().collect();
    assert!(row[0].starts_with("web-"), "{slices}");
    assert_eq!(row[1..4], ["IPv4", "8000", ip.as_str()], "{slices}");

    let leases = wait_for("the node lease", Duration::from_secs(30), async || {
        let out = kubectl(&env, &["get", "leases", "-n", "kube-node-lease"]).await;
        out.contains("hk8s-sandbox").then_some(out)
    })
    .await;
    assert!(leases.starts_with("NAME"), "{leases}");
    assert!(
        leases.lines().any(|l| l
            .split_whitespace()
            .take(2)
            .eq(["hk8s-sandbox", "hk8s-sandbox"])),
        "the kubelet holds its node's lease: {leases}"
    );
    let node = kubectl(&env, &["describe", "node", "hk8s-sandbox"]).await;
    assert!(
        node.contains("HolderIdentity:  hk8s-sandbox") && !node.contains("Failed to get lease"),
        "{node}"
    );
}

/// Whether the pod's Ready condition is True.
fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn restart_count(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.first())
        .map_or(0, |c| c.restart_count)
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_restart_pods_are_not_ready_until_back_and_keep_their_restart_count() {
    let mut env = Env::start("  web: python3\n").await;
    let ready_file = env.dir.path().join("ready");
    std::fs::write(&ready_file, "").unwrap();
    let crash_once = env.dir.path().join("crash-once");
    std::fs::write(&crash_once, "").unwrap();
    let program = format!(
        "import os, sys, time\nif os.path.exists({path:?}):\n    os.remove({path:?})\n    sys.exit(1)\ntime.sleep(600)\n",
        path = crash_once.to_str().unwrap()
    );
    env.create::<Pod>(pod(
        "web",
        "web:1",
        json!({
            "args": ["-c", program],
            "readinessProbe": {
                "exec": {"command": ["test", "-f", ready_file.to_str().unwrap()]},
                "periodSeconds": 1
            }
        }),
    ))
    .await;
    let pods = env.api::<Pod>();
    wait_for(
        "web Ready after one crash",
        Duration::from_secs(60),
        async || {
            let pod = pods.get("web").await.ok()?;
            (pod_ready(&pod) && restart_count(&pod) == 1).then_some(())
        },
    )
    .await;

    let state = env.sandbox.as_ref().unwrap().state_dir().to_path_buf();
    env.sandbox.take().unwrap().shutdown().await;
    std::fs::remove_file(&ready_file).unwrap();
    let config = SandboxConfig::new(state);
    let sandbox = Sandbox::start(config)
        .await
        .expect("restarting the sandbox");
    let pods: Api<Pod> = Api::namespaced(sandbox.client().unwrap(), "demo");
    let restored = pods.get("web").await.unwrap();
    assert!(
        !pod_ready(&restored),
        "the pod's process died with the sandbox, yet it reads Ready: {:?}",
        restored.status
    );
    let running_again = wait_for(
        "web's container running again",
        Duration::from_secs(60),
        async || {
            let pod = pods.get("web").await.ok()?;
            let status = pod.status.as_ref()?.container_statuses.as_ref()?.first()?;
            status.state.as_ref()?.running.is_some().then_some(pod)
        },
    )
    .await;
    assert!(
        !pod_ready(&running_again),
        "readiness now fails, so the restarted pod must not be Ready"
    );
    assert_eq!(
        restart_count(&running_again),
        1,
        "the restart before the sandbox restart is still counted"
    );
    std::fs::write(&ready_file, "").unwrap();
    wait_for("web Ready again", Duration::from_secs(60), async || {
        pod_ready(&pods.get("web").await.ok()?).then_some(())
    })
    .await;
    env.sandbox = Some(sandbox);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hpa_scales_a_busy_deployment_up() {
    let env =
        Env::start("  burner:\n    program: sh\n    args: [\"-c\", \"while :; do :; done\"]\n")
            .await;
    env.create::<Deployment>(json!({
        "metadata": {"name": "burner"},
        "spec": {
            "selector": {"matchLabels": {"app": "burner"}},
            "template": {
                "metadata": {"labels": {"app": "burner"}},
                "spec": {"containers": [{
                    "name": "burner", "image": "burner",
                    "resources": {"requests": {"cpu": "50m"}, "limits": {"cpu": "200m"}}
                }]}
            }
        }
    }))
    .await;
    env.create::<HorizontalPodAutoscaler>(json!({
        "metadata": {"name": "burner"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burner"},
            "minReplicas": 1, "maxReplicas": 2,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
        }
    }))
    .await;
    let deployments = env.api::<Deployment>();
    wait_for(
        "the HPA to scale the deployment to 2",
        Duration::from_secs(90),
        async || {
            let d = deployments.get("burner").await.ok()?;
            (d.spec.replicas == Some(2)).then_some(())
        },
    )
    .await;
    let hpas = env.api::<HorizontalPodAutoscaler>();
    let utilization = wait_for("the HPA's status", Duration::from_secs(30), async || {
        let status = hpas.get("burner").await.ok()?.status?;
        let current = status
            .current_metrics?
            .first()?
            .resource
            .clone()?
            .current
            .average_utilization?;
        (status.desired_replicas == 2).then_some(current)
    })
    .await;
    assert!(utilization > 50, "{utilization}");
    let rescaled = |e: &Event| e.reason.as_deref() == Some("SuccessfulRescale");
    let events = env.events_when(|events| events.iter().any(rescaled)).await;
    assert!(events.iter().any(rescaled), "{events:?}");
    deployments
        .delete("burner", &Default::default())
        .await
        .unwrap();
}
