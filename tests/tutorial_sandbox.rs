//! The tutorial end to end on the built-in sandbox, driven by the real kubectl: real
//! processes for the app's binaries and redis-server, real HTTP through the service proxy.

mod support;

use support::{ensure_app_binaries, repo_root};

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn manifest(name: &str) -> PathBuf {
    let dir = repo_root().join("embedded-manifests");
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(name))
        })
        .unwrap_or_else(|| panic!("no manifest {name}* in {}", dir.display()))
}

/// A sandbox with the process runtime, plus kubectl pointed at it.
pub struct Cluster {
    pub sandbox: Option<hk8s_sandbox::Sandbox>,
    pub kubeconfig: PathBuf,
    pub _dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        ensure_app_binaries();
        let dir = tempfile::tempdir().unwrap();
        let config = hk8s_sandbox::SandboxConfig::new(dir.path().join("state"));
        let sandbox = hk8s_sandbox::Sandbox::start(config)
            .await
            .expect("starting the sandbox");
        let kubeconfig = sandbox.kubeconfig_path().to_path_buf();
        Cluster {
            sandbox: Some(sandbox),
            kubeconfig,
            _dir: dir,
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.sandbox.as_ref().unwrap().state_dir().to_path_buf()
    }

    /// Runs kubectl (in namespace demo unless the args say otherwise); panics on failure.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_raw(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kubectl_raw(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--request-timeout=20s");
        if !args
            .iter()
            .any(|a| a.starts_with("-n") || *a == "--all-namespaces" || *a == "namespace")
        {
            cmd.args(["-n", "demo"]);
        }
        cmd.args(args).output().expect("running kubectl")
    }

    /// `kubectl create namespace demo`.
    pub fn create_namespace(&self) {
        self.kubectl(&["create", "namespace", "demo"]);
    }

    pub fn apply(&self, name: &str) {
        self.kubectl(&["apply", "-f", manifest(name).to_str().unwrap()]);
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).expect("kubectl printed JSON")
    }

    /// Polls `check` every 200 ms until it returns Some, or panics after `timeout` with `what`.
    pub async fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Cluster) -> Option<T>,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = check(self) {
                return v;
            }
            if start.elapsed() > timeout {
                let pods =
                    self.kubectl_raw(&["get", "pods,deploy,sts,svc,endpoints,pvc", "-o", "wide"]);
                let events = self.kubectl_raw(&["get", "events"]);
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}\n{}",
                    String::from_utf8_lossy(&pods.stdout),
                    String::from_utf8_lossy(&events.stdout)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn wait_deployments_available(&self, names: &[&str]) {
        for name in names {
            self.wait(
                &format!("deployment {name} Available"),
                Duration::from_secs(90),
                |c| {
                    let out = c.kubectl_raw(&[
                        "rollout",
                        "status",
                        &format!("deployment/{name}"),
                        "--timeout=1s",
                    ]);
                    out.status.success().then_some(())
                },
            )
            .await;
        }
    }

    /// The frontend's load balancer address, as `kubectl get services` shows it.
    pub async fn frontend_url(&self) -> String {
        let ip = self
            .wait("the frontend's EXTERNAL-IP", Duration::from_secs(30), |c| {
                let ip = c.kubectl(&[
                    "get",
                    "service",
                    "frontend",
                    "-o",
                    "jsonpath={.status.loadBalancer.ingress[0].ip}",
                ]);
                (!ip.trim().is_empty()).then(|| ip.trim().to_string())
            })
            .await;
        format!("http://{ip}")
    }

    pub fn pod_pids(&self) -> Vec<u32> {
        let registry = hk8s_sandbox::paths::pid_registry_path(&self.state_dir());
        std::fs::read_to_string(registry)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect()
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.sandbox.take() {
            s.shutdown().await;
        }
    }
}

pub async fn http(method: &str, url: &str, body: Option<String>) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<hyper::body::Bytes>>();
    let mut req = http::Request::builder().method(method).uri(url);
    if body.is_some() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = req
        .body(Full::new(hyper::body::Bytes::from(
            body.unwrap_or_default(),
        )))
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
        Ok(Err(e)) => (0, e.to_string()),
        Err(_) => (0, "timed out".into()),
    }
}

fn alive(pid: u32) -> bool {
    // A zombie (already dead, not yet reaped) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

async fn post_message(base: &str, msg: &str) -> bool {
    let (status, _) = http("POST", &format!("{base}/"), Some(format!("msg={msg}"))).await;
    status == 303 || status == 302
}

async fn page_has(base: &str, msg: &str) -> Option<bool> {
    let (status, body) = http("GET", &format!("{base}/"), None).await;
    (status == 200).then(|| body.contains(msg))
}

/// Whether the sandbox runs pods in namespaces (with cluster DNS), from its node.
fn pods_isolated(c: &Cluster) -> bool {
    let annotation = c.kubectl(&[
        "get",
        "node",
        hk8s_sandbox::NODE_NAME,
        "-o",
        "jsonpath={.metadata.annotations.hk8s\\.dev/pod-isolation}",
    ]);
    annotation.starts_with("namespaces")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_get_hosts_from_dns_the_app_finds_its_services_through_cluster_dns() {
    let mut c = Cluster::start().await;
    c.create_namespace();
    c.wait(
        "the node's isolation annotation",
        Duration::from_secs(30),
        |c| {
            let a = c.kubectl(&[
                "get",
                "node",
                "-o",
                "jsonpath={.items[0].metadata.annotations}",
            ]);
            a.contains("pod-isolation").then_some(())
        },
    )
    .await;
    if !pods_isolated(&c) {
        c.stop().await;
        return;
    }
    for m in ["01", "03", "05", "02", "04", "06"] {
        c.apply(m);
    }
    c.kubectl(&[
        "set",
        "env",
        "deployment/hello-k8s-api",
        "deployment/hello-k8s-frontend",
        "GET_HOSTS_FROM=dns",
    ]);
    c.wait_deployments_available(&["redis", "hello-k8s-api", "hello-k8s-frontend"])
        .await;
    let base = c.frontend_url().await;
    let message = "found-through-dns";
    let mut seen = false;
    for _ in 0..100 {
        if post_message(&base, message).await && page_has(&base, message).await == Some(true) {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        seen,
        "a message posted through the frontend was not read back"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_tutorial_runs_on_the_sandbox_with_kubectl() {
    let mut c = Cluster::start().await;
    c.create_namespace();

    // Lesson 2: services first, so pods get their variables.
    for m in ["02", "04", "06"] {
        c.apply(m);
    }
    let services = c.kubectl(&["get", "services"]);
    assert!(
        services.contains("EXTERNAL-IP") && services.contains("frontend"),
        "{services}"
    );
    let base = c.frontend_url().await;
    assert!(base.starts_with("http://127.240."), "{base}");

    // Lesson 3: deployments, pods Running, a message through the load balancer.
    for m in ["01", "03", "05"] {
        c.apply(m);
    }
    c.wait_deployments_available(&["redis", "hello-k8s-api", "hello-k8s-frontend"])
        .await;
    let pods = c.kubectl(&["get", "pods"]);
    assert_eq!(pods.matches("Running").count(), 3, "{pods}");
    let endpoints = c.json(&["get", "endpoints", "frontend"]);
    assert!(
        endpoints["subsets"][0]["addresses"][0]["ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("127.244.") || ip.starts_with("198.18.")),
        "{endpoints}"
    );
    let first = "hello-from-lesson-3";
    let mut posted = false;
    for _ in 0..50 {
        if http("GET", &format!("{base}/"), None).await.0 == 200 {
            posted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(posted, "the frontend never became ready behind {base}");
    assert!(
        post_message(&base, first).await,
        "posting a message through {base} failed"
    );
    assert_eq!(
        page_has(&base, first).await,
        Some(true),
        "the message was not read back"
    );
    let logs = c.kubectl(&["logs", "deployment/redis"]);
    assert!(
        logs.to_lowercase().contains("ready to accept connections"),
        "redis log: {logs}"
    );

    // Lesson 5: a Deployment's Redis loses the messages when recreated...
    c.kubectl(&["delete", "-f", manifest("01").to_str().unwrap()]);
    c.apply("01");
    c.wait_deployments_available(&["redis"]).await;
    let after = "after-recreating-redis";
    let mut stored = false;
    for _ in 0..150 {
        post_message(&base, after).await;
        if page_has(&base, after).await == Some(true) {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(stored, "the app did not recover after redis was recreated");
    assert_eq!(
        page_has(&base, first).await,
        Some(false),
        "messages survived recreating the redis Deployment"
    );

    // ...a StatefulSet's keeps them across pod deletion.
    c.kubectl(&["delete", "-f", manifest("01").to_str().unwrap()]);
    c.apply("09");
    c.wait("redis-0 Ready", Duration::from_secs(60), |c| {
        c.kubectl_raw(&[
            "wait",
            "--for=condition=Ready",
            "pod/redis-0",
            "--timeout=1s",
        ])
        .status
        .success()
        .then_some(())
    })
    .await;
    let pvc = c.kubectl(&["get", "pvc"]);
    assert!(pvc.contains("Bound"), "{pvc}");
    let kept = "kept-by-the-statefulset";
    let mut ok = false;
    for _ in 0..100 {
        post_message(&base, kept).await;
        if page_has(&base, kept).await == Some(true) {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ok, "could not store a message in the StatefulSet's redis");
    let old_uid = c.kubectl(&["get", "pod", "redis-0", "-o", "jsonpath={.metadata.uid}"]);
    c.kubectl(&["delete", "pod", "-l", "app=redis"]);
    c.wait("a new redis-0 Ready", Duration::from_secs(60), |c| {
        let uid = c.kubectl_raw(&["get", "pod", "redis-0", "-o", "jsonpath={.metadata.uid}"]);
        let uid = String::from_utf8_lossy(&uid.stdout).to_string();
        (!uid.is_empty()
            && uid != old_uid
            && c.kubectl_raw(&[
                "wait",
                "--for=condition=Ready",
                "pod/redis-0",
                "--timeout=1s",
            ])
            .status
            .success())
        .then_some(())
    })
    .await;
    let mut found = None;
    for _ in 0..100 {
        found = page_has(&base, kept).await;
        if found == Some(true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        found,
        Some(true),
        "the message did not survive deleting redis-0"
    );

    // Lesson 6: a liveness probe on a 404 path restarts the API, with events saying why.
    c.apply("12");
    c.wait(
        "the API to be restarted by its liveness probe",
        Duration::from_secs(120),
        |c| {
            let pods = c.json(&["get", "pods", "-l", "tier=api"]);
            pods["items"]
                .as_array()?
                .iter()
                .any(|p| {
                    p["status"]["containerStatuses"][0]["restartCount"]
                        .as_i64()
                        .unwrap_or(0)
                        >= 1
                })
                .then_some(())
        },
    )
    .await;
    let events = c.kubectl(&["get", "events"]);
    assert!(
        events.contains("HTTP probe failed with statuscode: 404"),
        "{events}"
    );
    assert!(events.contains("Killing"), "{events}");
    c.apply("11");
    c.wait_deployments_available(&["hello-k8s-api"]).await;

    // Lesson 7's tooling: pod metrics for `kubectl top`.
    c.wait(
        "kubectl top pods to show the frontend",
        Duration::from_secs(40),
        |c| {
            let out = c.kubectl_raw(&["top", "pods"]);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            (out.status.success()
                && text.contains("MEMORY(bytes)")
                && text.contains("hello-k8s-frontend"))
            .then_some(())
        },
    )
    .await;

    let pids = c.pod_pids();
    assert!(
        pids.len() >= 3,
        "expected the pods' processes in the registry, got {pids:?}"
    );
    c.stop().await;
    let left: Vec<u32> = pids.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        left.is_empty(),
        "pod processes outlived the sandbox: {left:?}"
    );
}

/// SIGKILLs a real `hk8s sandbox up`: its pod processes must die with it, and the next
/// `up` on the same state directory runs the stored pods again.
#[tokio::test(flavor = "multi_thread")]
async fn killing_the_sandbox_kills_its_pods_and_a_restart_brings_them_back() {
    ensure_app_binaries();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let spawn_child = || {
        Command::new(env!("CARGO_BIN_EXE_hk8s"))
            .args(["sandbox", "up", "--state-dir"])
            .arg(&state)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    /// Stops the sandbox as `Ctrl-C` would when the test ends, so it takes its pod network
    /// down with it; SIGKILL only if it has not stopped within 30 s.
    struct StopOnDrop(std::process::Child);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            if !matches!(self.0.try_wait(), Ok(None)) {
                return;
            }
            let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = StopOnDrop(spawn_child());
    let marker = state.join("sandbox.pid");
    let start = Instant::now();
    while !marker.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the child sandbox did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kubeconfig = state.join("kubeconfig");
    let c = Cluster {
        sandbox: None,
        kubeconfig,
        _dir: tempfile::tempdir().unwrap(),
    };
    c.create_namespace();
    c.apply("02");
    c.apply("09");
    c.wait("redis-0 Ready", Duration::from_secs(60), |c| {
        c.kubectl_raw(&[
            "wait",
            "--for=condition=Ready",
            "pod/redis-0",
            "--timeout=1s",
        ])
        .status
        .success()
        .then_some(())
    })
    .await;
    let registry = hk8s_sandbox::paths::pid_registry_path(&state);
    let pids: Vec<u32> = std::fs::read_to_string(&registry)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(!pids.is_empty(), "no pod process recorded");
    assert!(pids.iter().all(|p| alive(*p)));
    let _ = child.0.kill();
    let _ = child.0.wait();
    let start = Instant::now();
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pod processes outlived a SIGKILLed sandbox: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_file(&marker);

    // Starting again runs the stored pods again.
    let _child = StopOnDrop(spawn_child());
    let start = Instant::now();
    while !marker.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the child sandbox did not restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.wait(
        "redis-0 running again after the restart",
        Duration::from_secs(60),
        |c| {
            let pids: Vec<u32> = std::fs::read_to_string(&registry)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split_whitespace().next()?.parse().ok())
                .collect();
            (pids.iter().any(|p| alive(*p))
                && c.kubectl_raw(&[
                    "wait",
                    "--for=condition=Ready",
                    "pod/redis-0",
                    "--timeout=1s",
                ])
                .status
                .success())
            .then_some(())
        },
    )
    .await;
}

/// `clients` concurrent clients GET `url` for `duration`; returns (successes, failures).
async fn load(url: &str, clients: usize, duration: Duration) -> (u64, u64) {
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(clients)
        .build_http::<Full<hyper::body::Bytes>>();
    let deadline = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let client = client.clone();
        let url: http::Uri = url.parse().unwrap();
        tasks.spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                let req = http::Request::get(url.clone())
                    .body(Full::default())
                    .unwrap();
                let left =
                    deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
                match tokio::time::timeout(left, client.request(req)).await {
                    Ok(Ok(resp)) if resp.status().is_success() => {
                        let _ = resp.into_body().collect().await;
                        ok += 1;
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed)
        });
    }
    let mut total = (0, 0);
    while let Some(Ok((ok, failed))) = tasks.join_next().await {
        total.0 += ok;
        total.1 += failed;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn starved_limits_serve_clearly_less_than_sane_limits() {
    let c = Cluster::start().await;
    c.create_namespace();
    for m in ["02", "04", "06", "01", "03", "07"] {
        c.apply(m);
    }
    c.wait_deployments_available(&["redis", "hello-k8s-api", "hello-k8s-frontend"])
        .await;
    let base = c.frontend_url().await;
    let limits = c.kubectl(&[
        "get",
        "deployment",
        "hello-k8s-frontend",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].resources.limits.cpu}",
    ]);
    assert_eq!(limits.trim(), "10m");
    let (starved_ok, starved_failed) =
        load(&format!("{base}/"), 255, Duration::from_secs(10)).await;

    c.apply("08");
    c.wait_deployments_available(&["hello-k8s-frontend"]).await;
    let (sane_ok, sane_failed) = load(&format!("{base}/"), 255, Duration::from_secs(10)).await;
    eprintln!(
        "07: {starved_ok} ok / {starved_failed} failed; 08: {sane_ok} ok / {sane_failed} failed"
    );
    assert!(
        sane_ok > starved_ok * 2,
        "07's starved frontend served {starved_ok} requests ({starved_failed} failed), 08's {sane_ok} ({sane_failed} failed)"
    );
}

/// Sends one inline Redis command to `addr` and returns the raw reply.
async fn redis_command(addr: &str, command: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
            .ok()?
            .ok()?;
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = vec![0; 512];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn down_and_up_keeps_objects_and_volume_data() {
    let mut c = Cluster::start().await;
    let state = c.state_dir();
    c.create_namespace();
    c.apply("02");
    c.apply("09");
    let ready = |c: &Cluster| {
        c.kubectl_raw(&[
            "wait",
            "--for=condition=Ready",
            "pod/redis-0",
            "--timeout=1s",
        ])
        .status
        .success()
        .then_some(())
    };
    c.wait("redis-0 Ready", Duration::from_secs(60), ready)
        .await;
    let redis = format!(
        "{}:6379",
        c.kubectl(&[
            "get",
            "service",
            "redis",
            "-o",
            "jsonpath={.spec.clusterIP}"
        ])
        .trim()
    );
    // The service proxy learns of the ready endpoint a moment after the pod is Ready.
    let reply = wait_redis(&redis, "SET hk8s-kept still-here").await;
    assert_eq!(reply, "+OK\r\n", "writing to redis through {redis}");
    c.stop().await;

    let config = hk8s_sandbox::SandboxConfig::new(&state);
    c.sandbox = Some(
        hk8s_sandbox::Sandbox::start(config)
            .await
            .expect("restarting the sandbox"),
    );
    c.kubeconfig = c.sandbox.as_ref().unwrap().kubeconfig_path().to_path_buf();
    c.wait(
        "redis-0 Ready after the restart",
        Duration::from_secs(60),
        ready,
    )
    .await;
    let reply = wait_redis(&redis, "GET hk8s-kept").await;
    assert!(
        reply.contains("still-here"),
        "after down/up redis answered {reply:?}"
    );
    c.stop().await;
}

async fn wait_redis(addr: &str, command: &str) -> String {
    for _ in 0..100 {
        // An empty reply is the service proxy closing a connection it has no ready
        // endpoint for yet (the restarted pod still shows its stored Ready status).
        if let Some(reply) = redis_command(addr, command).await
            && !reply.is_empty()
            && !reply.starts_with("-LOADING")
        {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("redis at {addr} did not answer {command}");
}
