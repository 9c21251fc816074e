//! kubectl's streaming subresources against a sandbox running real pods: `kubectl exec`
//! (kubectl 1.32 and, with HK8S_TEST_KUBECTL_NEW, 1.37), `exec -it` under tmux, `kubectl cp`
//! both ways, and the Python client's `stream()` exec (HK8S_TEST_PYTHON).

mod common;

use common::kubectl::Kubectl;
use hk8s_sandbox::{Sandbox, SandboxConfig};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(120);

/// A sandbox running pods, with a Redis Deployment in `demo` whose pod is Ready.
async fn start_with_redis() -> (Sandbox, Kubectl, tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxConfig::new(dir.path().join("state")))
        .await
        .unwrap();
    let kubectl = Kubectl::new(sandbox.kubeconfig_path(), TIMEOUT);
    kubectl.ok(&["create", "namespace", "demo"]).await;
    kubectl
        .ok(&[
            "create",
            "deployment",
            "redis",
            "--image=redis:7.2.4",
            "-n",
            "demo",
        ])
        .await;
    let start = Instant::now();
    loop {
        let out = kubectl
            .run_with_input(
                &[
                    "get", "pods", "-n", "demo", "-l", "app=redis", "-o",
                    "jsonpath={.items[0].metadata.name} {.items[0].status.containerStatuses[0].ready}",
                ],
                None,
            )
            .await;
        if let Some(name) = out.stdout.strip_suffix(" true") {
            return (sandbox, kubectl, dir, name.to_string());
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "redis never became Ready: {}",
            out.stdout
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn exec_runs_in_the_container_and_passes_exit_codes_back() {
    let (sandbox, kubectl, _dir, pod) = start_with_redis().await;
    let ip = kubectl
        .ok(&[
            "get",
            "pod",
            "-n",
            "demo",
            &pod,
            "-o",
            "jsonpath={.status.podIP}",
        ])
        .await;
    for k in Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT) {
        let who = k.program.display().to_string();
        let ping = k
            .ok(&[
                "exec",
                "-n",
                "demo",
                "deploy/redis",
                "--",
                "redis-cli",
                "-h",
                &ip,
                "ping",
            ])
            .await;
        assert_eq!(ping.trim(), "PONG", "{who}");
        let exit = k
            .run_with_input(
                &[
                    "exec",
                    "-n",
                    "demo",
                    &pod,
                    "--",
                    "sh",
                    "-c",
                    "echo out; echo err >&2; exit 3",
                ],
                None,
            )
            .await;
        assert_eq!(exit.code, Some(3), "{who}: {}", exit.stderr);
        assert_eq!(exit.stdout, "out\n", "{who}");
        assert!(exit.stderr.starts_with("err\n"), "{who}: {}", exit.stderr);
        assert!(
            exit.stderr.contains("command terminated with exit code 3"),
            "{who}: {}",
            exit.stderr
        );
        let env = k
            .ok(&[
                "exec",
                "-n",
                "demo",
                &pod,
                "--",
                "sh",
                "-c",
                "echo $HOSTNAME",
            ])
            .await;
        assert_eq!(env.trim(), pod, "{who}: the container's environment");
        let echoed = k
            .run_with_input(
                &["exec", "-i", "-n", "demo", &pod, "--", "cat"],
                Some("through stdin\n"),
            )
            .await;
        assert_eq!(echoed.stdout, "through stdin\n", "{who}: {}", echoed.stderr);
        let missing = k
            .run_with_input(
                &["exec", "-n", "demo", &pod, "--", "hk8s-no-such-tool"],
                None,
            )
            .await;
        assert_ne!(missing.code, Some(0), "{who}");
        assert!(
            missing
                .stderr
                .contains("exec: \"hk8s-no-such-tool\": executable file not found in $PATH"),
            "{who}: {}",
            missing.stderr
        );
        let wrong = k
            .run_with_input(
                &["exec", "-n", "demo", &pod, "-c", "nope", "--", "true"],
                None,
            )
            .await;
        assert!(
            wrong
                .stderr
                .contains(&format!("container nope is not valid for pod {pod}")),
            "{who}: {}",
            wrong.stderr
        );
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn cp_copies_files_into_and_out_of_a_pod() {
    let (sandbox, kubectl, dir, pod) = start_with_redis().await;
    // A directory the container's user may write: its /data volume in namespace mode, /tmp
    // where pods run as plain processes.
    let writable = kubectl
        .ok(&[
            "exec",
            "-n",
            "demo",
            &pod,
            "--",
            "sh",
            "-c",
            "for d in /data /tmp; do if [ -w $d ]; then echo $d; break; fi; done",
        ])
        .await;
    let inside = PathBuf::from(writable.trim()).join(format!("cp-{}", std::process::id()));
    kubectl
        .ok(&[
            "exec",
            "-n",
            "demo",
            &pod,
            "--",
            "mkdir",
            "-p",
            inside.to_str().unwrap(),
        ])
        .await;
    let local = dir.path().join("message.txt");
    std::fs::write(&local, "kind words\n").unwrap();
    let into = format!("demo/{pod}:{}/message.txt", inside.display());
    kubectl.ok(&["cp", local.to_str().unwrap(), &into]).await;
    let seen = kubectl
        .ok(&[
            "exec",
            "-n",
            "demo",
            &pod,
            "--",
            "cat",
            &format!("{}/message.txt", inside.display()),
        ])
        .await;
    assert_eq!(seen, "kind words\n");
    let back = dir.path().join("back.txt");
    kubectl.ok(&["cp", &into, back.to_str().unwrap()]).await;
    assert_eq!(std::fs::read_to_string(back).unwrap(), "kind words\n");
    sandbox.shutdown().await;
}

/// Runs `command` in a detached tmux session of the given size; returns the session name.
fn tmux_start(name: &str, command: &str) {
    let status = std::process::Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "120",
            "-y",
            "40",
            command,
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

fn tmux(args: &[&str]) -> String {
    let out = std::process::Command::new("tmux")
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn exec_with_a_terminal_works_under_tmux() {
    let (sandbox, _kubectl, dir, pod) = start_with_redis().await;
    let session = format!("hk8s-exec-{}", std::process::id());
    let rc = dir.path().join("rc");
    let command = format!(
        "KUBECONFIG={} kubectl exec -it -n demo {pod} -- sh; echo $? > {}",
        sandbox.kubeconfig_path().display(),
        rc.display()
    );
    tmux_start(&session, &command);
    let pane = || tmux(&["capture-pane", "-p", "-t", &session]);
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "stty size; echo ready-$((6*7))",
        "Enter",
    ]);
    wait_for("the shell's answer", || pane().contains("ready-42")).await;
    assert!(pane().contains("40 120"), "the terminal's size: {}", pane());
    tmux(&["resize-window", "-t", &session, "-x", "100", "-y", "30"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    tmux(&["send-keys", "-t", &session, "stty size", "Enter"]);
    wait_for("the resized terminal", || pane().contains("30 100")).await;
    tmux(&["send-keys", "-t", &session, "exit 4", "Enter"]);
    wait_for("kubectl to exit", || rc.exists()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(std::fs::read_to_string(&rc).unwrap().trim(), "4");
    tmux(&["kill-server"]);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn the_python_clients_stream_exec_reads_output_and_exit_code() {
    let Some(python) = std::env::var_os("HK8S_TEST_PYTHON") else {
        eprintln!("HK8S_TEST_PYTHON unset: the Python client's exec is not tested");
        return;
    };
    let (sandbox, _kubectl, _dir, pod) = start_with_redis().await;
    let script = r#"
import sys
from kubernetes import client, config
from kubernetes.stream import stream
config.load_kube_config(config_file=sys.argv[1])
api = client.CoreV1Api()
out = stream(api.connect_get_namespaced_pod_exec, sys.argv[2], "demo",
             command=["sh", "-c", "echo hello-$HOSTNAME"], stderr=True, stdin=False,
             stdout=True, tty=False)
print(out.strip())
resp = stream(api.connect_get_namespaced_pod_exec, sys.argv[2], "demo",
              command=["sh", "-c", "exit 7"], stderr=True, stdin=False, stdout=True,
              tty=False, _preload_content=False)
resp.run_forever(timeout=20)
print("rc", resp.returncode)
"#;
    let out = tokio::process::Command::new(python)
        .args(["-c", script])
        .arg(sandbox.kubeconfig_path())
        .arg(&pod)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, format!("hello-{pod}\nrc 7\n"));
    sandbox.shutdown().await;
}

/// A sandbox with namespace `demo` and the image `shell` mapped to `sh`.
async fn start_with_shell() -> (Sandbox, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxConfig::new(dir.path().join("state")))
        .await
        .unwrap();
    std::fs::write(
        hk8s_sandbox::paths::images_config_path(sandbox.state_dir()),
        "images:\n  shell: sh\n",
    )
    .unwrap();
    Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT)[0]
        .ok(&["create", "namespace", "demo"])
        .await;
    (sandbox, dir)
}

#[tokio::test]
async fn attach_streams_a_running_containers_output() {
    let (sandbox, _dir) = start_with_shell().await;
    for (i, kubectl) in Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT)
        .iter()
        .enumerate()
    {
        let pod = format!("ticker-{i}");
        kubectl
            .ok(&[
                "run",
                &pod,
                "-n",
                "demo",
                "--image=shell",
                "--restart=Never",
                "--command",
                "--",
                "sh",
                "-c",
                "sleep 2; for i in 1 2 3 4 5; do echo line-$i; sleep 1; done",
            ])
            .await;
        kubectl
            .ok(&[
                "wait",
                "-n",
                "demo",
                "--for=jsonpath={.status.phase}=Running",
                &format!("pod/{pod}"),
            ])
            .await;
        let out = kubectl
            .run_with_input(&["attach", "-n", "demo", &pod], None)
            .await;
        let lines: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| l.starts_with("line-"))
            .collect();
        assert!(
            lines.len() >= 3 && lines.ends_with(&["line-4", "line-5"]),
            "{}: attach got {:?}\n{}",
            kubectl.program.display(),
            out.stdout,
            out.stderr
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn run_with_stdin_attaches_and_the_container_reads_it() {
    let (sandbox, _dir) = start_with_shell().await;
    for (i, kubectl) in Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT)
        .iter()
        .enumerate()
    {
        let pod = format!("reader-{i}");
        let out = kubectl
            .run_with_input(
                &[
                    "run",
                    "-i",
                    "--rm",
                    "--restart=Never",
                    &pod,
                    "-n",
                    "demo",
                    "--image=shell",
                    "--command",
                    "--",
                    "sh",
                    "-c",
                    "read l; echo got $l",
                ],
                Some("hello from stdin\n"),
            )
            .await;
        assert!(
            out.stdout.contains("got hello from stdin"),
            "{}: {}\n{}",
            kubectl.program.display(),
            out.stdout,
            out.stderr
        );
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        let gone = kubectl
            .run_with_input(&["get", "pod", "-n", "demo", &pod], None)
            .await;
        assert!(
            gone.stderr.contains("NotFound"),
            "--rm left the pod: {}",
            gone.stdout
        );
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn run_it_gives_a_shell_on_the_containers_terminal_under_tmux() {
    let (sandbox, dir) = start_with_shell().await;
    let session = format!("hk8s-run-it-{}", std::process::id());
    let rc = dir.path().join("rc");
    let command = format!(
        "KUBECONFIG={} kubectl run -it --rm --restart=Never -n demo tty --image=shell --command -- sh; echo $? > {}",
        sandbox.kubeconfig_path().display(),
        rc.display()
    );
    tmux_start(&session, &command);
    let pane = || tmux(&["capture-pane", "-p", "-t", &session]);
    let ask = || {
        tmux(&[
            "send-keys",
            "-t",
            &session,
            "tty; stty size; echo ready-$((6*7))",
            "Enter",
        ])
    };
    let start = Instant::now();
    while !pane().contains("ready-42") {
        assert!(
            start.elapsed() < TIMEOUT,
            "no shell on a terminal: {}",
            pane()
        );
        ask();
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    assert!(pane().contains("/dev/pts/"), "not a terminal: {}", pane());
    assert!(pane().contains("40 120"), "the terminal's size: {}", pane());
    tmux(&["send-keys", "-t", &session, "exit 3", "Enter"]);
    wait_for("kubectl to exit", || rc.exists()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    tmux(&["kill-session", "-t", &session]);
    sandbox.shutdown().await;
}

/// A sandbox running the tutorial's Redis, API and frontend (embedded manifests 01–06) in
/// `demo`, with the frontend's rollout complete.
async fn start_with_app() -> (Sandbox, Kubectl, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(SandboxConfig::new(dir.path().join("state")))
        .await
        .unwrap();
    let kubectl = Kubectl::new(sandbox.kubeconfig_path(), TIMEOUT);
    kubectl.ok(&["create", "namespace", "demo"]).await;
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../embedded-manifests");
    for file in [
        "01-redis-deployment.yml",
        "02-redis-service.yml",
        "03-api-deployment.yml",
        "04-api-service.yml",
        "05-frontend-deployment.yml",
        "06-frontend-service.yml",
    ] {
        let path = manifests.join(file);
        kubectl
            .ok(&["apply", "-n", "demo", "-f", path.to_str().unwrap()])
            .await;
    }
    for deployment in ["redis", "hello-k8s-api", "hello-k8s-frontend"] {
        kubectl
            .ok(&[
                "rollout",
                "status",
                "-n",
                "demo",
                &format!("deploy/{deployment}"),
                "--timeout=100s",
            ])
            .await;
    }
    (sandbox, kubectl, dir)
}

/// A free local port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `kubectl port-forward`, killed when dropped.
struct Forward {
    child: tokio::process::Child,
    local: u16,
}

impl Kubectl {
    /// Starts `kubectl port-forward -n demo <target> <local>:<remote>` and waits until it
    /// says it is forwarding.
    async fn port_forward(&self, target: &str, remote: u16) -> Forward {
        self.port_forward_with(target, remote, &[]).await
    }

    /// [`Kubectl::port_forward`] with extra environment variables.
    async fn port_forward_with(&self, target: &str, remote: u16, env: &[(&str, &str)]) -> Forward {
        use tokio::io::AsyncBufReadExt;
        let local = free_port();
        let mut child = tokio::process::Command::new(&self.program)
            .args(["port-forward", "-n", "demo", target])
            .arg(format!("{local}:{remote}"))
            .env("KUBECONFIG", &self.kubeconfig)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("kubectl is installed");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with(&format!("Forwarding from 127.0.0.1:{local}")) {
                    return true;
                }
            }
            false
        })
        .await;
        if ready != Ok(true) {
            let _ = child.start_kill();
            let out = child.wait_with_output().await.unwrap();
            panic!(
                "kubectl port-forward {target} did not start: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Keep draining stdout ("Handling connection for …"), so kubectl never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Forward { child, local }
    }
}

/// Sends `request` to a local port and reads the answer until the connection closes.
async fn exchange(port: u16, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("no end to the answer to {request:?}"))
        .unwrap_or_default();
    String::from_utf8_lossy(&answer).into_owned()
}

const GET_PAGE: &str = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn port_forward_serves_the_frontend_through_its_service_deployment_and_pod() {
    let (sandbox, kubectl, _dir) = start_with_app().await;
    let pod = kubectl
        .ok(&[
            "get",
            "pods",
            "-n",
            "demo",
            "-l",
            "tier=frontend",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .await;
    for k in Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT) {
        let who = k.program.display().to_string();
        let pod_target = format!("pod/{pod}");
        for (target, remote) in [
            ("svc/frontend", 80),
            ("deploy/hello-k8s-frontend", 8080),
            (pod_target.as_str(), 8080),
        ] {
            let forward = k.port_forward(target, remote).await;
            // Several connections through one session, each a request and its page.
            for _ in 0..3 {
                let page = exchange(forward.local, GET_PAGE).await;
                assert!(
                    page.starts_with("HTTP/1.1 200") && page.contains("<title>hello-k8s</title>"),
                    "{who} {target}: {page}"
                );
                assert!(
                    page.contains(&pod),
                    "{who} {target}: the page names its pod"
                );
            }
            drop(forward);
        }
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn port_forward_to_a_closed_port_reports_the_refusal_and_ends() {
    let (sandbox, _kubectl, _dir, pod) = start_with_redis().await;
    for k in Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT) {
        let who = k.program.display().to_string();
        let pod_target = format!("pod/{pod}");
        let forward = k.port_forward(&pod_target, 6390).await;
        let answer = exchange(forward.local, "PING\r\n").await;
        assert_eq!(answer, "", "{who}: nothing answers on 6390");
        let Forward { child, .. } = forward;
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{who}: kubectl port-forward hangs after the refusal"))
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("error forwarding port 6390 to pod")
                && stderr.contains("connect: connection refused"),
            "{who}: {stderr}"
        );
        assert!(!out.status.success(), "{who}: {stderr}");
        // The redis port itself forwards: the client protocol goes through both ways.
        let forward = k.port_forward(&pod_target, 6379).await;
        let pong = exchange(forward.local, "PING\r\nQUIT\r\n").await;
        assert_eq!(pong, "+PONG\r\n+OK\r\n", "{who}");
        // Without WebSockets (as kubectl before 1.31), a plain SPDY upgrade.
        let spdy = [("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")];
        let forward = k.port_forward_with(&pod_target, 6379, &spdy).await;
        let pong = exchange(forward.local, "PING\r\nQUIT\r\n").await;
        assert_eq!(pong, "+PONG\r\n+OK\r\n", "{who} over SPDY");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn python_client_port_forward_reaches_the_pod() {
    let Some(python) = std::env::var_os("HK8S_TEST_PYTHON") else {
        eprintln!("HK8S_TEST_PYTHON unset: the Python client's port-forward is not tested");
        return;
    };
    let (sandbox, _kubectl, _dir, pod) = start_with_redis().await;
    let script = r#"
import sys
from kubernetes import client, config
from kubernetes.stream import portforward
config.load_kube_config(config_file=sys.argv[1])
api = client.CoreV1Api()
pf = portforward(api.connect_get_namespaced_pod_portforward, sys.argv[2], "demo",
                 ports="6379,6390")
sock = pf.socket(6379)
sock.setblocking(True)
sock.sendall(b"PING\r\n")
print(sock.recv(100).decode().strip())
sock.close()
# The client closes a port's socket when the kubelet reports its error.
closed = pf.socket(6390)
closed.setblocking(True)
print("data:", closed.recv(100))
print("error:", pf.error(6390))
"#;
    let out = tokio::time::timeout(
        TIMEOUT,
        tokio::process::Command::new(python)
            .args(["-c", script])
            .arg(sandbox.kubeconfig_path())
            .arg(&pod)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the Python client's port-forward finishes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("+PONG"), "{stdout}\n{stderr}");
    assert_eq!(lines.next(), Some("data: b''"), "{stdout}\n{stderr}");
    let error = lines.next().unwrap_or_default();
    assert!(
        error.starts_with("error: error forwarding port 6390 to pod")
            && error.contains("connection refused"),
        "{stdout}\n{stderr}"
    );
    sandbox.shutdown().await;
}

/// Waits until the pod's ephemeral container `name` terminated.
async fn ephemeral_terminated(kubectl: &Kubectl, pod: &str, name: &str) {
    let path = format!(
        "jsonpath={{.status.ephemeralContainerStatuses[?(@.name==\"{name}\")].state.terminated.reason}}"
    );
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let out = kubectl
            .run_with_input(&["get", "pod", "-n", "demo", pod, "-o", &path], None)
            .await;
        if !out.stdout.trim().is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never terminated");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn debug_runs_an_ephemeral_container_in_the_targets_pid_namespace() {
    let (sandbox, _dir) = start_with_shell().await;
    for (i, kubectl) in Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT)
        .iter()
        .enumerate()
    {
        let pod = format!("app-{i}");
        let args = ["--image=shell", "--restart=Never", "--command", "--"];
        let run = [
            &["run", pod.as_str(), "-n", "demo"][..],
            &args,
            &["sleep", "4321"],
        ];
        kubectl.ok(&run.concat()).await;
        let running = "--for=jsonpath={.status.phase}=Running";
        kubectl
            .ok(&["wait", "-n", "demo", running, &format!("pod/{pod}")])
            .await;
        let debug = [
            "debug",
            "-n",
            "demo",
            &pod,
            "--image=shell",
            "--container=dbg",
            "--target",
            &pod,
            "--",
            "sh",
            "-c",
            "ps ax; echo debug-done",
        ];
        kubectl.ok(&debug).await;
        ephemeral_terminated(kubectl, &pod, "dbg").await;
        let logs = kubectl.ok(&["logs", "-n", "demo", &pod, "-c", "dbg"]).await;
        assert!(
            logs.contains("debug-done") && logs.contains("sleep 4321"),
            "{}: the debug container did not see its target: {logs}",
            kubectl.program.display()
        );
        let piped = [
            "debug",
            "-i",
            "-n",
            "demo",
            &pod,
            "--image=shell",
            "--container=dbg2",
            "--",
            "sh",
            "-c",
            "read l; echo got $l; ps ax",
        ];
        let out = kubectl.run_with_input(&piped, Some("hello debug\n")).await;
        assert!(
            out.stdout.contains("got hello debug") && !out.stdout.contains("sleep 4321"),
            "{}: debug -i: {}\n{}",
            kubectl.program.display(),
            out.stdout,
            out.stderr
        );
        let names = kubectl
            .ok(&[
                "get",
                "pod",
                "-n",
                "demo",
                &pod,
                "-o",
                "jsonpath={.spec.ephemeralContainers[*].name}",
            ])
            .await;
        assert_eq!(names, "dbg dbg2");
        ephemeral_terminated(kubectl, &pod, "dbg2").await;
        let phase = kubectl
            .ok(&[
                "get",
                "pod",
                "-n",
                "demo",
                &pod,
                "-o",
                "jsonpath={.status.phase}",
            ])
            .await;
        assert_eq!(
            phase, "Running",
            "ephemeral containers ending must not end the pod"
        );
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn ephemeral_containers_may_be_added_but_not_changed_or_removed() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, Patch, PatchParams};
    let (sandbox, _dir) = start_with_shell().await;
    let kubectl = &Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT)[0];
    let discovery = kubectl.ok(&["get", "--raw", "/api/v1"]).await;
    assert!(
        discovery.contains("\"pods/ephemeralcontainers\""),
        "{discovery}"
    );
    let run = [
        "run",
        "app",
        "-n",
        "demo",
        "--image=shell",
        "--restart=Never",
        "--command",
        "--",
        "sleep",
        "600",
    ];
    kubectl.ok(&run).await;
    let pods: Api<Pod> = Api::namespaced(sandbox.client().unwrap(), "demo");
    let pp = PatchParams::default();
    let add = serde_json::json!({"spec": {"ephemeralContainers": [
        {"name": "dbg", "image": "shell", "command": ["true"]}
    ]}});
    let added = pods
        .patch_subresource("ephemeralcontainers", "app", &pp, &Patch::Strategic(&add))
        .await
        .expect("an ephemeral container can be added");
    let ec = &added.spec.unwrap().ephemeral_containers.unwrap()[0];
    assert_eq!(ec.termination_message_policy.as_deref(), Some("File"));
    let relabel = serde_json::json!({"metadata": {"labels": {"x": "y"}}, "spec": {"ephemeralContainers": [
        {"name": "dbg", "image": "shell", "command": ["true"]}
    ]}});
    let kept = pods
        .patch_subresource(
            "ephemeralcontainers",
            "app",
            &pp,
            &Patch::Strategic(&relabel),
        )
        .await
        .unwrap();
    assert!(!kept.metadata.labels.unwrap_or_default().contains_key("x"));
    let cases = [
        (
            serde_json::json!([{"op": "remove", "path": "/spec/ephemeralContainers/0"}]),
            "existing ephemeral containers \"dbg\" may not be removed",
        ),
        (
            serde_json::json!([{"op": "replace", "path": "/spec/ephemeralContainers/0/image", "value": "other"}]),
            "existing ephemeral containers \"dbg\" may not be changed",
        ),
    ];
    for (patch, message) in cases {
        let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
        let err = pods
            .patch_subresource("ephemeralcontainers", "app", &pp, &Patch::<()>::Json(patch))
            .await
            .unwrap_err();
        match err {
            kube::Error::Api(e) => {
                assert_eq!(e.code, 422);
                assert!(e.message.contains(message), "{}", e.message);
                assert!(
                    e.message.contains("spec.ephemeralContainers: Forbidden"),
                    "{}",
                    e.message
                );
            }
            other => panic!("expected 422, got {other}"),
        }
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn an_ended_ephemeral_container_is_not_run_again_after_a_sandbox_restart() {
    let (sandbox, dir) = start_with_shell().await;
    let kubectl = &Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT)[0];
    let run = [
        "run",
        "app",
        "-n",
        "demo",
        "--image=shell",
        "--restart=Never",
        "--command",
        "--",
    ];
    kubectl.ok(&[&run[..], &["sleep", "600"]].concat()).await;
    let running = "--for=jsonpath={.status.phase}=Running";
    kubectl
        .ok(&["wait", "-n", "demo", running, "pod/app"])
        .await;
    let debug = [
        "debug",
        "-n",
        "demo",
        "app",
        "--image=shell",
        "--container=once",
        "--",
        "echo",
        "ran",
    ];
    kubectl.ok(&debug).await;
    ephemeral_terminated(kubectl, "app", "once").await;
    let finished = "jsonpath={.status.ephemeralContainerStatuses[0].state.terminated.finishedAt}";
    let get = ["get", "pod", "-n", "demo", "app", "-o", finished];
    let before = kubectl.ok(&get).await;
    sandbox.shutdown().await;
    let sandbox = Sandbox::start(SandboxConfig::new(dir.path().join("state")))
        .await
        .unwrap();
    let kubectl = &Kubectl::all(sandbox.kubeconfig_path(), TIMEOUT)[0];
    let ready = "--for=condition=Ready";
    kubectl
        .ok(&["wait", "-n", "demo", ready, "pod/app", "--timeout=60s"])
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        kubectl.ok(&get).await,
        before,
        "the ephemeral container ran again"
    );
    let logs = kubectl
        .ok(&["logs", "-n", "demo", "app", "-c", "once"])
        .await;
    assert_eq!(logs.matches("ran").count(), 1, "{logs}");
    sandbox.shutdown().await;
}
