//! The workload kinds beyond Deployments, with the real kubectl (the machine's, and the
//! newer one in `HK8S_TEST_KUBECTL_NEW` when set) against a sandbox this test starts:
//! autoscaling/v1 HPAs read as v2 and back, Jobs that complete and fail, a CronJob firing
//! when the controllers' clock moves a minute on, DaemonSets, and `kubectl get` tables.

mod common;

use common::kubectl::{Kubectl, programs};
use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(90);

/// The tutorial's original 13-frontend-hpa.yml: `autoscaling/v1` with a CPU target.
const ORIGINAL_HPA: &str = r#"apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata:
  name: frontend
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: frontend
  minReplicas: 1
  maxReplicas: 10
  targetCPUUtilizationPercentage: 50
"#;

struct Env {
    sandbox: Option<Sandbox>,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = &self.dir;
        drop(self.sandbox.take());
    }
}

/// A sandbox with a `demo` namespace; `busybox` runs as the machine's `sh`.
async fn start(runtime: NodeRuntime) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let sandbox =
        Sandbox::start(SandboxConfig::new(dir.path().join("state")).with_runtime(runtime))
            .await
            .unwrap();
    std::fs::write(
        hk8s_sandbox::paths::images_config_path(sandbox.state_dir()),
        "images:\n  busybox: sh\n",
    )
    .unwrap();
    let env = Env {
        kubeconfig: sandbox.kubeconfig_path().to_path_buf(),
        sandbox: Some(sandbox),
        dir,
    };
    env.ok("kubectl", &["create", "namespace", "demo"]).await;
    env
}

impl Env {
    fn sandbox(&self) -> &Sandbox {
        self.sandbox.as_ref().expect("running")
    }

    /// Runs kubectl in namespace `demo`; whether it succeeded, and its stdout then stderr.
    async fn run(&self, kubectl: &str, args: &[&str], input: Option<&str>) -> (bool, String) {
        let args: Vec<&str> = ["-n", "demo"].iter().chain(args).copied().collect();
        let out = Kubectl::with_program(kubectl, &self.kubeconfig, TIMEOUT)
            .run_with_input(&args, input)
            .await;
        (out.ok, out.stdout + &out.stderr)
    }

    async fn ok(&self, kubectl: &str, args: &[&str]) -> String {
        let (ok, out) = self.run(kubectl, args, None).await;
        assert!(ok, "{kubectl} {args:?} failed:\n{out}");
        out
    }

    async fn apply(&self, kubectl: &str, manifest: &str) -> String {
        let (ok, out) = self
            .run(kubectl, &["apply", "-f", "-"], Some(manifest))
            .await;
        assert!(ok, "{kubectl} apply failed:\n{out}\n{manifest}");
        out
    }

    async fn json(&self, kubectl: &str, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(kubectl, &all).await).unwrap()
    }

    /// Polls `check` until it answers, or fails after `TIMEOUT`.
    async fn wait_for<T>(&self, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

fn condition_types(job: &Value) -> Vec<String> {
    job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={}",
                c["type"].as_str().unwrap(),
                c["status"].as_str().unwrap()
            )
        })
        .collect()
}

/// The cells of the table row that starts with `name`.
fn row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
        .split_whitespace()
        .map(String::from)
        .collect()
}

fn header(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_original_v1_hpa_is_accepted_and_reads_the_same_in_v1_and_v2() {
    let env = start(NodeRuntime::Standin).await;
    for kubectl in programs() {
        let versions = env.ok(&kubectl, &["api-versions"]).await;
        for gv in ["autoscaling/v1", "autoscaling/v2", "batch/v1", "apps/v1"] {
            assert!(versions.lines().any(|l| l == gv), "{gv} in\n{versions}");
        }
        env.apply(&kubectl, ORIGINAL_HPA).await;
        let v2 = env
            .json(
                &kubectl,
                &["get", "horizontalpodautoscalers.v2.autoscaling", "frontend"],
            )
            .await;
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"],
            serde_json::json!({"type": "Utilization", "averageUtilization": 50}),
            "{v2:#}"
        );
        let patch = r#"{"spec":{"metrics":[
            {"type":"Resource","resource":{"name":"cpu","target":{"type":"Utilization","averageUtilization":60}}},
            {"type":"Resource","resource":{"name":"memory","target":{"type":"AverageValue","averageValue":"100Mi"}}}]}}"#;
        env.ok(
            &kubectl,
            &[
                "patch",
                "horizontalpodautoscalers.v2.autoscaling",
                "frontend",
                "--type=merge",
                "-p",
                patch,
            ],
        )
        .await;
        let v1 = env
            .json(
                &kubectl,
                &["get", "horizontalpodautoscalers.v1.autoscaling", "frontend"],
            )
            .await;
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60, "{v1:#}");
        let other = v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .unwrap_or_else(|| panic!("the memory metric rides in an annotation: {v1:#}"));
        assert!(
            other.contains("\"memory\"") && other.contains("100Mi"),
            "{other}"
        );
        // A v1 write keeps what v1 cannot say.
        env.ok(
            &kubectl,
            &[
                "patch",
                "horizontalpodautoscalers.v1.autoscaling",
                "frontend",
                "--type=merge",
                "-p",
                r#"{"spec":{"maxReplicas":5}}"#,
            ],
        )
        .await;
        let v2 = env
            .json(
                &kubectl,
                &["get", "horizontalpodautoscalers.v2.autoscaling", "frontend"],
            )
            .await;
        assert_eq!(v2["spec"]["maxReplicas"], 5);
        assert_eq!(
            v2["spec"]["metrics"].as_array().map(Vec::len),
            Some(2),
            "{v2:#}"
        );
        assert!(v2["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"].is_null());
        let table = env.ok(&kubectl, &["get", "hpa"]).await;
        assert_eq!(
            header(&table),
            [
                "NAME",
                "REFERENCE",
                "TARGETS",
                "MINPODS",
                "MAXPODS",
                "REPLICAS",
                "AGE"
            ]
        );
        env.ok(&kubectl, &["delete", "hpa", "frontend"]).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kinds_are_discovered_and_validated_like_a_cluster() {
    let env = start(NodeRuntime::Standin).await;
    for kubectl in programs() {
        let resources = env.ok(&kubectl, &["api-resources"]).await;
        for (name, short) in [
            ("jobs", ""),
            ("cronjobs", "cj"),
            ("daemonsets", "ds"),
            ("replicationcontrollers", "rc"),
        ] {
            let cells = row(&resources, name);
            if !short.is_empty() {
                assert_eq!(cells[1], short, "{resources}");
            }
        }
        let no_policy = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: bad}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: busybox}]\n";
        let (ok, out) = env
            .run(&kubectl, &["apply", "-f", "-"], Some(no_policy))
            .await;
        assert!(!ok, "{out}");
        assert!(
            out.contains(r#"spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never""#),
            "{out}"
        );
        let bad_schedule = "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: bad}\nspec:\n  schedule: 'every minute'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          containers: [{name: c, image: busybox}]\n";
        let (ok, out) = env
            .run(&kubectl, &["apply", "-f", "-"], Some(bad_schedule))
            .await;
        assert!(!ok && out.contains("spec.schedule"), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_complete_fail_at_their_backoff_limit_and_print_like_a_cluster() {
    let env = start(NodeRuntime::Processes).await;
    let kubectl = programs().pop().unwrap();
    env.ok(
        &kubectl,
        &[
            "create",
            "job",
            "hello",
            "--image=busybox",
            "--",
            "sh",
            "-c",
            "echo hello from the job",
        ],
    )
    .await;
    env.ok(
        &kubectl,
        &[
            "wait",
            "--for=condition=complete",
            "job/hello",
            "--timeout=60s",
        ],
    )
    .await;
    env.wait_for("the job's pod event in kubectl describe", async || {
        let out = env.ok(&kubectl, &["describe", "job", "hello"]).await;
        (out.contains("SuccessfulCreate") && out.contains("Created pod: hello-")).then_some(())
    })
    .await;
    let logs = env.ok(&kubectl, &["logs", "job/hello"]).await;
    assert!(logs.contains("hello from the job"), "{logs}");
    let job = env.json(&kubectl, &["get", "job", "hello"]).await;
    assert_eq!(
        condition_types(&job),
        ["SuccessCriteriaMet=True", "Complete=True"]
    );
    assert_eq!(job["status"]["succeeded"], 1);
    let uid = job["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    let pods = env
        .ok(
            &kubectl,
            &[
                "get",
                "pods",
                "-l",
                "batch.kubernetes.io/job-name=hello",
                "-o",
                "name",
            ],
        )
        .await;
    assert_eq!(pods.lines().count(), 1, "{pods}");
    let table = env.ok(&kubectl, &["get", "jobs"]).await;
    assert_eq!(
        header(&table),
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    );
    assert_eq!(row(&table, "hello")[1..3], ["Complete", "1/1"]);

    let parallel = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: three}\nspec:\n  completions: 3\n  parallelism: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox, command: [sh, -c, 'sleep 0.2']}]\n";
    env.apply(&kubectl, parallel).await;
    let failing = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: fails}\nspec:\n  backoffLimit: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox, command: [sh, -c, 'exit 3']}]\n";
    env.apply(&kubectl, failing).await;
    env.ok(
        &kubectl,
        &[
            "wait",
            "--for=condition=complete",
            "job/three",
            "--timeout=60s",
        ],
    )
    .await;
    let three = env.json(&kubectl, &["get", "job", "three"]).await;
    assert_eq!(three["status"]["succeeded"], 3);
    env.ok(
        &kubectl,
        &[
            "wait",
            "--for=condition=failed",
            "job/fails",
            "--timeout=60s",
        ],
    )
    .await;
    let fails = env.json(&kubectl, &["get", "job", "fails"]).await;
    assert_eq!(
        condition_types(&fails),
        ["FailureTarget=True", "Failed=True"]
    );
    assert_eq!(
        fails["status"]["failed"], 2,
        "one try and one retry: {fails:#}"
    );
    assert_eq!(
        fails["status"]["conditions"][1]["reason"],
        "BackoffLimitExceeded"
    );
    let table = env.ok(&kubectl, &["get", "jobs"]).await;
    assert_eq!(row(&table, "fails")[1..3], ["Failed", "0/1"]);
    assert_eq!(row(&table, "three")[1..3], ["Complete", "3/3"]);

    let ttl = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: brief}\nspec:\n  ttlSecondsAfterFinished: 0\n  template:\n    spec:\n      restartPolicy: OnFailure\n      containers: [{name: c, image: busybox, command: [sh, -c, 'true']}]\n";
    env.apply(&kubectl, ttl).await;
    env.wait_for(
        "the finished job with a zero TTL to be deleted",
        async || {
            let (ok, out) = env.run(&kubectl, &["get", "job", "brief"], None).await;
            (!ok && out.contains("NotFound")).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cron_job_fires_when_its_minute_comes_and_jobs_can_be_made_from_it() {
    let env = start(NodeRuntime::Processes).await;
    let kubectl = programs().pop().unwrap();
    env.ok(
        &kubectl,
        &[
            "create",
            "cronjob",
            "tick",
            "--image=busybox",
            "--schedule=*/1 * * * *",
            "--",
            "sh",
            "-c",
            "echo tick",
        ],
    )
    .await;
    let table = env.ok(&kubectl, &["get", "cronjobs"]).await;
    assert_eq!(
        header(&table),
        [
            "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"
        ]
    );
    assert_eq!(
        row(&table, "tick")[1..8],
        ["*/1", "*", "*", "*", "*", "<none>", "False"]
    );
    env.sandbox().clock().advance(Duration::from_secs(61));
    let scheduled = env
        .wait_for("the cron job's first job", async || {
            let jobs = env.json(&kubectl, &["get", "jobs"]).await;
            jobs["items"]
                .as_array()?
                .iter()
                .find(|j| j["metadata"]["ownerReferences"][0]["name"] == "tick")
                .map(|j| j["metadata"]["name"].as_str().unwrap().to_string())
        })
        .await;
    assert!(scheduled.starts_with("tick-"), "{scheduled}");
    env.ok(
        &kubectl,
        &[
            "wait",
            "--for=condition=complete",
            &format!("job/{scheduled}"),
            "--timeout=60s",
        ],
    )
    .await;
    let logs = env
        .ok(&kubectl, &["logs", &format!("job/{scheduled}")])
        .await;
    assert!(logs.contains("tick"), "{logs}");
    let cj = env
        .wait_for("the cron job's status to record the run", async || {
            let cj = env.json(&kubectl, &["get", "cronjob", "tick"]).await;
            (!cj["status"]["lastSuccessfulTime"].is_null()).then_some(cj)
        })
        .await;
    assert!(!cj["status"]["lastScheduleTime"].is_null(), "{cj:#}");
    env.ok(
        &kubectl,
        &["create", "job", "by-hand", "--from=cronjob/tick"],
    )
    .await;
    env.ok(
        &kubectl,
        &[
            "wait",
            "--for=condition=complete",
            "job/by-hand",
            "--timeout=60s",
        ],
    )
    .await;
    let by_hand = env.json(&kubectl, &["get", "job", "by-hand"]).await;
    assert_eq!(
        by_hand["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    env.ok(
        &kubectl,
        &[
            "patch",
            "cronjob",
            "tick",
            "-p",
            r#"{"spec":{"suspend":true}}"#,
        ],
    )
    .await;
    let before = env.json(&kubectl, &["get", "jobs"]).await["items"]
        .as_array()
        .unwrap()
        .len();
    env.sandbox().clock().advance(Duration::from_secs(120));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = env.json(&kubectl, &["get", "jobs"]).await["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after, "a suspended cron job starts nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_set_runs_a_pod_on_the_node_and_replication_controllers_scale() {
    let env = start(NodeRuntime::Processes).await;
    let kubectl = programs().pop().unwrap();
    let daemon_set = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      containers: [{name: a, image: busybox, command: [sh, -c, 'sleep 600']}]\n";
    env.apply(&kubectl, daemon_set).await;
    env.ok(
        &kubectl,
        &["rollout", "status", "ds/agent", "--timeout=60s"],
    )
    .await;
    let table = env.ok(&kubectl, &["get", "ds"]).await;
    assert_eq!(
        header(&table),
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE",
            "SELECTOR",
            "AGE"
        ]
    );
    assert_eq!(
        row(&table, "agent")[1..7],
        ["1", "1", "1", "1", "1", "<none>"]
    );
    let pods = env
        .json(&kubectl, &["get", "pods", "-l", "app=agent"])
        .await;
    let pod = &pods["items"][0];
    assert_eq!(pod["spec"]["nodeName"], hk8s_sandbox::NODE_NAME, "{pod:#}");
    let first = pod["metadata"]["name"].as_str().unwrap().to_string();
    env.ok(&kubectl, &["set", "env", "ds/agent", "ROUND=2"])
        .await;
    env.ok(
        &kubectl,
        &["rollout", "status", "ds/agent", "--timeout=60s"],
    )
    .await;
    let pods = env
        .json(&kubectl, &["get", "pods", "-l", "app=agent"])
        .await;
    let live: Vec<&Value> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect();
    assert_eq!(live.len(), 1, "{pods:#}");
    assert_ne!(
        live[0]["metadata"]["name"],
        first.as_str(),
        "the pod was replaced"
    );
    assert_eq!(live[0]["spec"]["containers"][0]["env"][0]["value"], "2");
    let second = live[0]["metadata"]["name"].as_str().unwrap().to_string();
    env.wait_for(
        "the daemon set's pod events in kubectl describe",
        async || {
            let out = env.ok(&kubectl, &["describe", "ds", "agent"]).await;
            (out.contains(&format!("Created pod: {second}"))
                && out.contains("SuccessfulDelete")
                && out.contains(&format!("Deleted pod: {first}")))
            .then_some(())
        },
    )
    .await;

    let rc = "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: old}\nspec:\n  replicas: 2\n  template:\n    metadata: {labels: {app: old}}\n    spec:\n      containers: [{name: a, image: busybox, command: [sh, -c, 'sleep 600']}]\n";
    env.apply(&kubectl, rc).await;
    let rc = env.json(&kubectl, &["get", "rc", "old"]).await;
    assert_eq!(
        rc["spec"]["selector"],
        serde_json::json!({"app": "old"}),
        "defaulted from the template"
    );
    env.wait_for("two ready pods of the replication controller", async || {
        let rc = env.json(&kubectl, &["get", "rc", "old"]).await;
        (rc["status"]["readyReplicas"] == 2).then_some(())
    })
    .await;
    assert_eq!(
        header(&env.ok(&kubectl, &["get", "rc"]).await),
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    );
    env.ok(&kubectl, &["scale", "rc", "old", "--replicas=1"])
        .await;
    env.wait_for("the replication controller scaled to one", async || {
        let pods = env.json(&kubectl, &["get", "pods", "-l", "app=old"]).await;
        let live = pods["items"]
            .as_array()?
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .count();
        (live == 1).then_some(())
    })
    .await;
    env.wait_for("the scale-down's event in kubectl describe", async || {
        let out = env.ok(&kubectl, &["describe", "rc", "old"]).await;
        out.contains("Deleted pod: old-").then_some(())
    })
    .await;
    let top = env
        .wait_for("kubectl top to select pods by label", async || {
            let (ok, out) = env
                .run(&kubectl, &["top", "pod", "-l", "app=agent"], None)
                .await;
            (ok && out.contains("agent-")).then_some(out)
        })
        .await;
    assert!(!top.contains("old-"), "only the selected pods: {top}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_history_renumbers_an_undone_revision_and_shows_change_causes() {
    let env = start(NodeRuntime::Processes).await;
    let kubectl = programs().pop().unwrap();
    env.ok(
        &kubectl,
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--",
            "sh",
            "-c",
            "sleep 600",
        ],
    )
    .await;
    env.ok(
        &kubectl,
        &["rollout", "status", "deploy/web", "--timeout=60s"],
    )
    .await;
    for round in ["2", "3"] {
        env.ok(
            &kubectl,
            &["set", "env", "deploy/web", &format!("ROUND={round}")],
        )
        .await;
        let cause = format!("kubernetes.io/change-cause=round {round}");
        env.ok(&kubectl, &["annotate", "deploy/web", &cause, "--overwrite"])
            .await;
        env.ok(
            &kubectl,
            &["rollout", "status", "deploy/web", "--timeout=60s"],
        )
        .await;
    }
    env.ok(&kubectl, &["rollout", "undo", "deploy/web"]).await;
    env.ok(
        &kubectl,
        &["rollout", "status", "deploy/web", "--timeout=60s"],
    )
    .await;
    let history = env
        .wait_for("the undone revision to be renumbered", async || {
            let out = env
                .ok(&kubectl, &["rollout", "history", "deploy/web"])
                .await;
            out.lines().any(|l| l.starts_with('4')).then_some(out)
        })
        .await;
    let revisions: Vec<&str> = history
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(revisions, ["1", "3", "4"], "{history}");
    let four = history.lines().find(|l| l.starts_with('4')).unwrap();
    assert!(
        four.contains("round 2"),
        "the undone template's cause: {history}"
    );
    let deploy = env.json(&kubectl, &["get", "deploy", "web"]).await;
    assert_eq!(
        deploy["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "4"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn indexed_jobs_give_each_pod_its_index_and_record_completed_indexes() {
    let env = start(NodeRuntime::Processes).await;
    let kubectl = programs().pop().unwrap();
    let unindexed = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: bad}\nspec:\n  completionMode: Indexed\n  parallelism: 2\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox}]\n";
    let (ok, out) = env
        .run(&kubectl, &["apply", "-f", "-"], Some(unindexed))
        .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("spec.completions: Required value: when completion mode is Indexed"),
        "{out}"
    );

    let three = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: idx}\nspec:\n  completionMode: Indexed\n  completions: 3\n  parallelism: 3\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox, command: [sh, -c, 'echo index=$JOB_COMPLETION_INDEX']}]\n";
    env.apply(&kubectl, three).await;
    env.ok(
        &kubectl,
        &[
            "wait",
            "--for=condition=complete",
            "job/idx",
            "--timeout=60s",
        ],
    )
    .await;
    let job = env.json(&kubectl, &["get", "job", "idx"]).await;
    assert_eq!(job["status"]["completedIndexes"], "0-2", "{job:#}");
    assert_eq!(job["status"]["succeeded"], 3);
    let pods = env
        .json(
            &kubectl,
            &["get", "pods", "-l", "batch.kubernetes.io/job-name=idx"],
        )
        .await;
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 3);
    let mut seen = Vec::new();
    for pod in pods {
        let meta = &pod["metadata"];
        let index = meta["annotations"]["batch.kubernetes.io/job-completion-index"]
            .as_str()
            .unwrap();
        assert_eq!(
            meta["labels"]["batch.kubernetes.io/job-completion-index"],
            index
        );
        let name = meta["name"].as_str().unwrap();
        assert!(name.starts_with(&format!("idx-{index}-")), "{name}");
        assert_eq!(pod["spec"]["hostname"], format!("idx-{index}"));
        let logs = env.ok(&kubectl, &["logs", name]).await;
        assert_eq!(logs.trim(), format!("index={index}"));
        seen.push(index.to_string());
    }
    seen.sort();
    assert_eq!(seen, ["0", "1", "2"]);

    let go = env.dir.path().join("go");
    let odd_fail = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: odd}}\nspec:\n  completionMode: Indexed\n  completions: 4\n  parallelism: 4\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: c, image: busybox, command: [sh, -c, 'if [ $((JOB_COMPLETION_INDEX % 2)) = 1 ]; then while [ ! -e {} ]; do sleep 0.1; done; exit 1; fi']}}]\n",
        go.display()
    );
    env.apply(&kubectl, &odd_fail).await;
    env.wait_for("the even indexes to complete", async || {
        let job = env.json(&kubectl, &["get", "job", "odd"]).await;
        (job["status"]["completedIndexes"] == "0,2").then_some(())
    })
    .await;
    std::fs::write(&go, "").unwrap();
    env.ok(
        &kubectl,
        &["wait", "--for=condition=failed", "job/odd", "--timeout=60s"],
    )
    .await;
    let odd = env.json(&kubectl, &["get", "job", "odd"]).await;
    assert_eq!(odd["status"]["completedIndexes"], "0,2", "{odd:#}");
    assert_eq!(odd["status"]["succeeded"], 2);
    assert_eq!(
        odd["status"]["conditions"][1]["reason"],
        "BackoffLimitExceeded"
    );
}

/// A Job (named `name`, with `backoffLimit`) whose pods run `script`, under a pod failure
/// policy that ignores exit code 3 and fails the Job on exit code 42 of container `c`.
fn job_with_failure_policy(name: &str, backoff_limit: i32, script: &str, restart: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  backoffLimit: {backoff_limit}\n  podFailurePolicy:\n    rules:\n    - action: Ignore\n      onExitCodes: {{operator: In, values: [3]}}\n    - action: FailJob\n      onExitCodes: {{containerName: c, operator: In, values: [42]}}\n  template:\n    spec:\n      restartPolicy: {restart}\n      containers: [{{name: c, image: busybox, command: [sh, -c, '{script}']}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn pod_failure_policies_fail_the_job_at_once_or_ignore_the_failure() {
    let env = start(NodeRuntime::Processes).await;
    let kubectl = programs().pop().unwrap();
    let on_failure = job_with_failure_policy("bad", 1, "true", "OnFailure");
    let (ok, out) = env
        .run(&kubectl, &["apply", "-f", "-"], Some(&on_failure))
        .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains(r#"only "Never" is supported when podFailurePolicy is specified"#),
        "{out}"
    );

    env.apply(
        &kubectl,
        &job_with_failure_policy("fatal", 6, "exit 42", "Never"),
    )
    .await;
    env.ok(
        &kubectl,
        &[
            "wait",
            "--for=condition=failed",
            "job/fatal",
            "--timeout=60s",
        ],
    )
    .await;
    let fatal = env.json(&kubectl, &["get", "job", "fatal"]).await;
    assert_eq!(
        condition_types(&fatal),
        ["FailureTarget=True", "Failed=True"]
    );
    assert_eq!(fatal["status"]["failed"], 1, "no retry: {fatal:#}");
    let pod = env
        .ok(
            &kubectl,
            &[
                "get",
                "pods",
                "-l",
                "batch.kubernetes.io/job-name=fatal",
                "-o",
                "name",
            ],
        )
        .await;
    let pod = pod.trim().trim_start_matches("pod/");
    let failed = &fatal["status"]["conditions"][1];
    assert_eq!(failed["reason"], "PodFailurePolicy");
    assert_eq!(
        failed["message"],
        format!(
            "Container c for pod demo/{pod} failed with exit code 42 matching FailJob rule at index 1"
        )
    );

    let go = env.dir.path().join("go");
    let script = format!("if [ -e {} ]; then exit 0; fi; exit 3", go.display());
    env.apply(
        &kubectl,
        &job_with_failure_policy("flaky", 0, &script, "Never"),
    )
    .await;
    env.wait_for("an ignored failure", async || {
        let pods = env
            .json(
                &kubectl,
                &["get", "pods", "-l", "batch.kubernetes.io/job-name=flaky"],
            )
            .await;
        let items = pods["items"].as_array().cloned().unwrap_or_default();
        items
            .iter()
            .any(|p| p["status"]["phase"] == "Failed")
            .then_some(())
    })
    .await;
    std::fs::write(&go, "").unwrap();
    let (ok, _) = env
        .run(
            &kubectl,
            &[
                "wait",
                "--for=condition=complete",
                "job/flaky",
                "--timeout=60s",
            ],
            None,
        )
        .await;
    let flaky = env.json(&kubectl, &["get", "job", "flaky"]).await;
    let pods = env.ok(&kubectl, &["get", "pods"]).await;
    assert!(ok, "{flaky:#}\n{pods}");
    assert!(flaky["status"]["failed"].is_null(), "{flaky:#}");
    let pods = env
        .json(
            &kubectl,
            &["get", "pods", "-l", "batch.kubernetes.io/job-name=flaky"],
        )
        .await;
    let phases: Vec<&str> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"]["phase"].as_str().unwrap())
        .collect();
    // Each ignored failure is replaced at once, so more than one may fail before `go` exists.
    let count = |phase: &str| phases.iter().filter(|p| **p == phase).count();
    assert!(
        count("Failed") >= 1 && count("Succeeded") == 1 && count("Failed") + 1 == phases.len(),
        "the ignored failures were replaced until one succeeded: {phases:?}"
    );
}

/// A Job whose pod failure policy breaks each of the API server's rules.
const BAD_FAILURE_POLICY: &str = r#"apiVersion: batch/v1
kind: Job
metadata: {name: bad-policy}
spec:
  podFailurePolicy:
    rules:
    - action: FailJob
      onExitCodes: {operator: In, values: [0, 5, 5, 2]}
    - action: Restart
      onExitCodes: {containerName: nope, operator: Within, values: []}
    - action: Ignore
      onExitCodes: {operator: NotIn, values: [1]}
      onPodConditions: [{type: DisruptionTarget}]
    - action: Count
    - action: FailIndex
      onPodConditions: [{type: "bad type!", status: Maybe}]
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox}]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn pod_failure_policy_rules_are_validated_like_the_api_server() {
    let env = start(NodeRuntime::Standin).await;
    for kubectl in programs() {
        let (ok, out) = env
            .run(&kubectl, &["apply", "-f", "-"], Some(BAD_FAILURE_POLICY))
            .await;
        assert!(!ok, "{out}");
        let rules = "spec.podFailurePolicy.rules";
        for expected in [
            format!(
                "{rules}[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator"
            ),
            format!("{rules}[0].onExitCodes.values[2]: Duplicate value: 5"),
            format!("{rules}[0].onExitCodes.values: Invalid value: [0,5,5,2]: must be ordered"),
            format!(
                r#"{rules}[1].action: Unsupported value: "Restart": supported values: "Count", "FailIndex", "FailJob", "Ignore""#
            ),
            format!(
                r#"{rules}[1].onExitCodes.operator: Unsupported value: "Within": supported values: "In", "NotIn""#
            ),
            format!(
                r#"{rules}[1].onExitCodes.containerName: Invalid value: "nope": must be one of the container or initContainer names in the pod template"#
            ),
            format!(
                "{rules}[1].onExitCodes.values: Invalid value: []: at least one value is required"
            ),
            format!(
                "{rules}[2]: Invalid value: specifying both OnExitCodes and OnPodConditions is not supported"
            ),
            format!(
                "{rules}[3]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required"
            ),
            format!(
                r#"{rules}[4].action: Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set"#
            ),
            format!(
                r#"{rules}[4].onPodConditions[0].type: Invalid value: "bad type!": name part must consist of alphanumeric characters"#
            ),
            format!(
                r#"{rules}[4].onPodConditions[0].status: Unsupported value: "Maybe": supported values: "False", "True", "Unknown""#
            ),
        ] {
            assert!(out.contains(&expected), "missing {expected}\nin {out}");
        }
        let many: String = (0..21)
            .map(|i| {
                format!(
                    "    - {{action: Ignore, onExitCodes: {{operator: In, values: [{}]}}}}\n",
                    i + 1
                )
            })
            .collect();
        let too_many = BAD_FAILURE_POLICY
            .split_once("    rules:\n")
            .map(|(head, tail)| {
                let rest = tail.split_once("  template:").unwrap().1;
                format!("{head}    rules:\n{many}  template:{rest}")
            })
            .unwrap();
        let (ok, out) = env
            .run(&kubectl, &["apply", "-f", "-"], Some(&too_many))
            .await;
        assert!(!ok, "{out}");
        assert!(
            out.contains("spec.podFailurePolicy.rules: Too many: 21: must have at most 20 items"),
            "{out}"
        );
    }
    let defaulted = BAD_FAILURE_POLICY
        .split_once("    rules:\n")
        .map(|(head, tail)| {
            let rest = tail.split_once("  template:").unwrap().1;
            format!("{head}    rules:\n    - action: Ignore\n      onPodConditions: [{{type: DisruptionTarget}}]\n  template:{rest}")
        })
        .unwrap();
    let kubectl = programs().pop().unwrap();
    env.apply(&kubectl, &defaulted).await;
    let job = env.json(&kubectl, &["get", "job", "bad-policy"]).await;
    let rule = &job["spec"]["podFailurePolicy"]["rules"][0];
    assert_eq!(rule["onPodConditions"][0]["status"], "True", "{job:#}");
    assert_eq!(job["spec"]["podReplacementPolicy"], "Failed");
}

/// The `batch.kubernetes.io/job-index-failure-count` annotations of the Job's pods of
/// `index`, in creation order, and their phases.
async fn index_pods(env: &Env, kubectl: &str, job: &str, index: &str) -> Vec<(String, String)> {
    let selector = format!(
        "batch.kubernetes.io/job-name={job},batch.kubernetes.io/job-completion-index={index}"
    );
    let pods = env
        .json(
            kubectl,
            &[
                "get",
                "pods",
                "-l",
                &selector,
                "--sort-by=.metadata.creationTimestamp",
            ],
        )
        .await;
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let count =
                &p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"];
            (
                count.as_str().unwrap_or("-").to_string(),
                p["status"]["phase"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn indexes_are_retried_on_their_own_with_a_backoff_limit_per_index() {
    let env = start(NodeRuntime::Processes).await;
    let kubectl = programs().pop().unwrap();
    let non_indexed = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: bad}\nspec:\n  backoffLimitPerIndex: 1\n  maxFailedIndexes: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox}]\n";
    let (ok, out) = env
        .run(&kubectl, &["apply", "-f", "-"], Some(non_indexed))
        .await;
    assert!(!ok, "{out}");
    for expected in [
        "spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode",
        "spec.maxFailedIndexes: Invalid value: 1: requires indexed completion mode",
    ] {
        assert!(out.contains(expected), "missing {expected}\nin {out}");
    }

    // Index 1 always exits 1 (retried once, then failed), index 2 exits 42, which fails
    // its index at once; 0 and 3 succeed.
    let per_index = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: per-index}\nspec:\n  completionMode: Indexed\n  completions: 4\n  parallelism: 4\n  backoffLimitPerIndex: 1\n  podFailurePolicy:\n    rules:\n    - action: FailIndex\n      onExitCodes: {operator: In, values: [42]}\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox, command: [sh, -c, 'case $JOB_COMPLETION_INDEX in 1) exit 1;; 2) exit 42;; esac']}]\n";
    env.apply(&kubectl, per_index).await;
    let job = env.json(&kubectl, &["get", "job", "per-index"]).await;
    assert_eq!(job["spec"]["backoffLimit"], 2147483647, "{job:#}");
    env.ok(
        &kubectl,
        &[
            "wait",
            "--for=condition=failed",
            "job/per-index",
            "--timeout=80s",
        ],
    )
    .await;
    let job = env.json(&kubectl, &["get", "job", "per-index"]).await;
    assert_eq!(job["status"]["failedIndexes"], "1-2", "{job:#}");
    assert!(job["status"]["active"].is_null(), "{job:#}");
    assert_eq!(job["status"]["completedIndexes"], "0,3", "{job:#}");
    assert_eq!(job["status"]["failed"], 3, "{job:#}");
    assert_eq!(condition_types(&job), ["FailureTarget=True", "Failed=True"]);
    let failed = &job["status"]["conditions"][1];
    assert_eq!(failed["reason"], "FailedIndexes");
    assert_eq!(failed["message"], "Job has failed indexes");
    let failed = |n: &str| (n.to_string(), "Failed".to_string());
    assert_eq!(
        index_pods(&env, &kubectl, "per-index", "1").await,
        [failed("0"), failed("1")]
    );
    assert_eq!(
        index_pods(&env, &kubectl, "per-index", "2").await,
        [failed("0")]
    );
    assert_eq!(
        index_pods(&env, &kubectl, "per-index", "0").await,
        [("0".to_string(), "Succeeded".to_string())]
    );

    // Two failed indexes exceed maxFailedIndexes 1: the Job fails while index 2 still runs.
    let max_failed = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: max-failed}\nspec:\n  completionMode: Indexed\n  completions: 3\n  parallelism: 3\n  backoffLimitPerIndex: 0\n  maxFailedIndexes: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox, command: [sh, -c, 'if [ $JOB_COMPLETION_INDEX = 2 ]; then sleep 600; fi; exit 1']}]\n";
    env.apply(&kubectl, max_failed).await;
    env.ok(
        &kubectl,
        &[
            "wait",
            "--for=condition=failed",
            "job/max-failed",
            "--timeout=60s",
        ],
    )
    .await;
    let job = env.json(&kubectl, &["get", "job", "max-failed"]).await;
    assert_eq!(job["status"]["failedIndexes"], "0-1", "{job:#}");
    assert!(job["status"]["active"].is_null(), "{job:#}");
    let failed = &job["status"]["conditions"][1];
    assert_eq!(failed["reason"], "MaxFailedIndexesExceeded", "{job:#}");
    assert_eq!(
        failed["message"],
        "Job has exceeded the specified maximal number of failed indexes"
    );
    assert!(job["status"]["completedIndexes"].is_null(), "{job:#}");
}

/// The REVISION and CHANGE-CAUSE rows of `kubectl rollout history`.
fn history_rows(out: &str) -> Vec<(String, String)> {
    out.lines()
        .skip_while(|l| !l.starts_with("REVISION"))
        .skip(1)
        .filter_map(|l| {
            let (rev, cause) = l.trim().split_once(char::is_whitespace)?;
            Some((rev.to_string(), cause.trim().to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn daemon_set_rollouts_keep_controller_revisions_for_history_and_undo() {
    let env = start(NodeRuntime::Processes).await;
    let kubectl = programs().pop().unwrap();
    let daemon_set = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\n  annotations: {kubernetes.io/change-cause: first}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      containers: [{name: a, image: busybox, command: [sh, -c, 'sleep 600']}]\n";
    roll_out_a_second_template(
        &env,
        &kubectl,
        daemon_set,
        "ds/agent",
        r#"daemon set "agent" successfully rolled out"#,
    )
    .await;
    let revisions = env.json(&kubectl, &["get", "controllerrevisions"]).await;
    let pods = env
        .json(&kubectl, &["get", "pods", "-l", "app=agent"])
        .await;
    let live: Vec<&Value> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect();
    let hash = live[0]["metadata"]["labels"]["controller-revision-hash"]
        .as_str()
        .unwrap();
    let newest = revisions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["revision"] == 2)
        .unwrap_or_else(|| panic!("no revision 2 in {revisions:#}"));
    assert_eq!(newest["metadata"]["name"], format!("agent-{hash}"));
    assert_eq!(
        newest["metadata"]["labels"]["controller-revision-hash"],
        hash
    );
    assert_eq!(
        newest["metadata"]["ownerReferences"][0]["kind"],
        "DaemonSet"
    );
    assert_eq!(newest["data"]["spec"]["template"]["$patch"], "replace");

    undo_to_the_first_template(&env, &kubectl, "ds/agent", "app=agent").await;
}

/// Applies `manifest` (a workload annotated with change-cause `first`), rolls out a second
/// template with the change-cause `second` (`rolled_out` is what `rollout status`
/// says once done), and checks both kubectls' `rollout history`.
async fn roll_out_a_second_template(
    env: &Env,
    kubectl: &str,
    manifest: &str,
    target: &str,
    rolled_out: &str,
) {
    env.apply(kubectl, manifest).await;
    let status = env
        .ok(kubectl, &["rollout", "status", target, "--timeout=60s"])
        .await;
    assert!(status.contains(rolled_out), "{status}");
    env.ok(kubectl, &["set", "env", target, "ROUND=2"]).await;
    env.ok(
        kubectl,
        &[
            "annotate",
            "--overwrite",
            target,
            "kubernetes.io/change-cause=second",
        ],
    )
    .await;
    env.ok(kubectl, &["rollout", "status", target, "--timeout=60s"])
        .await;
    for k in programs() {
        let out = env.ok(&k, &["rollout", "history", target]).await;
        let rows = history_rows(&out);
        assert_eq!(rows.len(), 2, "{out}");
        assert_eq!(rows[0], ("1".to_string(), "first".to_string()), "{out}");
        assert_eq!(rows[1].0, "2", "{out}");
        let second = env
            .ok(&k, &["rollout", "history", target, "--revision=2"])
            .await;
        assert!(
            second.contains("ROUND:") && second.contains("2"),
            "{second}"
        );
    }
}

/// `kubectl rollout undo`: the first template's revision is renumbered newest and the one
/// pod `selector` selects runs it again.
async fn undo_to_the_first_template(env: &Env, kubectl: &str, target: &str, selector: &str) {
    env.ok(kubectl, &["rollout", "undo", target]).await;
    env.ok(kubectl, &["rollout", "status", target, "--timeout=60s"])
        .await;
    let out = env
        .wait_for("the undone revision renumbered", async || {
            let out = env.ok(kubectl, &["rollout", "history", target]).await;
            let revs: Vec<String> = history_rows(&out).into_iter().map(|r| r.0).collect();
            (revs == ["2", "3"]).then_some(out)
        })
        .await;
    assert!(
        out.contains("first"),
        "revision 3 is the first template again: {out}"
    );
    env.wait_for("the pod back on the first template", async || {
        let pods = env.json(kubectl, &["get", "pods", "-l", selector]).await;
        let live: Vec<Value> = pods["items"]
            .as_array()?
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .cloned()
            .collect();
        (live.len() == 1 && live[0]["spec"]["containers"][0]["env"].is_null()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stateful_set_rollouts_keep_controller_revisions_for_history_and_undo() {
    let env = start(NodeRuntime::Processes).await;
    let kubectl = programs().pop().unwrap();
    let stateful_set = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\n  annotations: {kubernetes.io/change-cause: first}\nspec:\n  serviceName: db\n  replicas: 1\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      containers: [{name: a, image: busybox, command: [sh, -c, 'sleep 600']}]\n";
    roll_out_a_second_template(
        &env,
        &kubectl,
        stateful_set,
        "sts/db",
        "partitioned roll out complete: 1 new pods have been updated",
    )
    .await;
    let sts = env.json(&kubectl, &["get", "sts", "db"]).await;
    let update = sts["status"]["updateRevision"]
        .as_str()
        .unwrap()
        .to_string();
    let revisions = env.json(&kubectl, &["get", "controllerrevisions"]).await;
    let newest = revisions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["revision"] == 2)
        .unwrap_or_else(|| panic!("no revision 2 in {revisions:#}"));
    assert_eq!(newest["metadata"]["name"], update, "{revisions:#}");
    assert_eq!(
        newest["metadata"]["ownerReferences"][0]["kind"],
        "StatefulSet"
    );
    undo_to_the_first_template(&env, &kubectl, "sts/db", "app=db").await;
}

/// A Deployment whose pods name a ServiceAccount that does not exist: as on a cluster, its
/// ReplicaSet writes `FailedCreate` events with the API server's message, and both carry a
/// `ReplicaFailure` condition until the account exists and the pod is created.
#[tokio::test(flavor = "multi_thread")]
async fn pods_that_cannot_be_created_show_as_failed_create_and_replica_failure() {
    let env = start(NodeRuntime::Processes).await;
    let kubectl = programs().pop().unwrap();
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: {app: web}}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      serviceAccountName: missing\n      containers: [{name: a, image: busybox, command: [sh, -c, 'sleep 600']}]\n";
    env.apply(&kubectl, deployment).await;
    let refused =
        "error looking up service account demo/missing: serviceaccount \"missing\" not found";
    // Admission names the pod by its generateName prefix, so the retries' events are one,
    // counted ("x3 over 2s").
    let described = env
        .wait_for("repeated FailedCreate in kubectl describe rs", async || {
            let out = env.ok(&kubectl, &["describe", "rs", "-l", "app=web"]).await;
            (out.contains("FailedCreate") && out.contains(refused) && out.contains("(x"))
                .then_some(out)
        })
        .await;
    let message = described
        .lines()
        .find(|l| l.contains("Error creating: pods \"web-"))
        .unwrap_or_else(|| panic!("{described}"));
    assert!(message.contains("-\" is forbidden: "), "{message}");
    assert_eq!(described.matches("FailedCreate").count(), 2, "{described}");
    let failure = "jsonpath={.items[*].status.conditions[?(@.type==\"ReplicaFailure\")].reason}";
    for kind in ["rs", "deploy"] {
        env.wait_for(&format!("ReplicaFailure on the {kind}"), async || {
            let out = env
                .ok(&kubectl, &["get", kind, "-l", "app=web", "-o", failure])
                .await;
            (out.trim() == "FailedCreate").then_some(())
        })
        .await;
    }
    let deploy = env.ok(&kubectl, &["describe", "deploy", "web"]).await;
    assert!(
        deploy.contains("ReplicaFailure") && deploy.contains("FailedCreate"),
        "{deploy}"
    );
    let progressing = "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}";
    assert_eq!(
        env.ok(&kubectl, &["get", "deploy", "web", "-o", progressing])
            .await
            .trim(),
        "NewReplicaSetCreated",
        "no progress: the condition stays as the new ReplicaSet left it"
    );

    env.ok(&kubectl, &["create", "serviceaccount", "missing"])
        .await;
    env.ok(
        &kubectl,
        &["rollout", "status", "deploy/web", "--timeout=60s"],
    )
    .await;
    for kind in ["rs", "deploy"] {
        env.wait_for(
            &format!("ReplicaFailure gone from the {kind}"),
            async || {
                let out = env
                    .ok(&kubectl, &["get", kind, "-l", "app=web", "-o", failure])
                    .await;
                out.trim().is_empty().then_some(())
            },
        )
        .await;
    }
}

/// A StatefulSet's pod events read as Kubernetes v1.37 writes them (`Create Pod db-0 in
/// StatefulSet db failed error: …`, then `… successful`, `Delete Pod …`).
#[tokio::test(flavor = "multi_thread")]
async fn stateful_set_pod_events_read_as_on_a_cluster() {
    let env = start(NodeRuntime::Processes).await;
    let kubectl = programs().pop().unwrap();
    let set = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      serviceAccountName: missing\n      containers: [{name: a, image: busybox, command: [sh, -c, 'sleep 600']}]\n";
    env.apply(&kubectl, set).await;
    let refused = "Create Pod db-0 in StatefulSet db failed error: pods \"db-0\" is forbidden: error looking up service account demo/missing: serviceaccount \"missing\" not found";
    let events = async |needle: &str| {
        env.wait_for(needle, async || {
            let out = env.ok(&kubectl, &["describe", "sts", "db"]).await;
            out.contains(needle).then_some(out)
        })
        .await
    };
    let described = events(refused).await;
    assert!(described.contains("Warning  FailedCreate"), "{described}");
    env.ok(&kubectl, &["create", "serviceaccount", "missing"])
        .await;
    events("Create Pod db-0 in StatefulSet db successful").await;
    env.ok(&kubectl, &["scale", "sts", "db", "--replicas=0"])
        .await;
    events("Delete Pod db-0 in StatefulSet db successful").await;
}
