//! `hk8s sandbox up` started by a user who is not root (issue 14's rootless case): with
//! unprivileged user namespaces it isolates pods all the same, in a user namespace of its
//! own, and the learner's shell reaches the API server, NodePorts, load balancers and
//! port-forwards; without them it says why pods run as plain processes. The test runs the
//! real binary as `nobody` (it must itself be root to switch) and drives it with kubectl.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// Runs `args` as nobody, killed after 300 s.
fn as_nobody(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        "env",
        "-u",
        "KUBECONFIG",
    ]);
    for (k, v) in envs {
        cmd.arg(format!("{k}={}", v.display()));
    }
    run(cmd.args(args))
}

fn run(cmd: &mut Command) -> Output {
    support::run_within(cmd, Duration::from_secs(300))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The hk8s binary where nobody can run it: in place, or copied out of a checkout under a
/// directory closed to other users.
fn runnable_binary(dir: &Path) -> PathBuf {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_hk8s"));
    let open = built
        .ancestors()
        .skip(1)
        .all(|p| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if open {
        return built;
    }
    for program in ["hk8s", "hello-k8s-api", "hello-k8s-frontend"] {
        let source = built.with_file_name(program);
        if source.exists() {
            let copy = dir.join(program);
            std::fs::copy(&source, &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    dir.join("hk8s")
}

/// A private directory for one rootless sandbox that nobody may write, and hk8s there.
fn rootless_env() -> Rootless {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    Rootless {
        hk8s: runnable_binary(dir.path()),
        dir,
    }
}

struct Rootless {
    dir: tempfile::TempDir,
    hk8s: PathBuf,
}

impl Rootless {
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn hk8s(&self, args: &[&str]) -> Output {
        let mut all = vec![self.hk8s.to_str().unwrap()];
        all.extend_from_slice(args);
        as_nobody(
            &all,
            &[
                ("HOME", self.dir.path()),
                ("HK8S_SANDBOX_DIR", &self.state()),
            ],
        )
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        run(Command::new("kubectl")
            .arg("--namespace=demo")
            .args(args)
            .env("KUBECONFIG", self.state().join("kubeconfig")))
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(v) = check() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        let _ = self.hk8s(&["sandbox", "down"]);
    }
}

fn user_namespaces_allowed() -> bool {
    as_nobody(&["unshare", "--user", "--map-root-user", "true"], &[])
        .status
        .success()
}

#[test]
fn a_sandbox_started_without_root_isolates_pods_in_a_user_namespace_or_says_why_not() {
    if !is_root() {
        return;
    }
    let env = rootless_env();
    let up = env.hk8s(&["sandbox", "up", "--detach"]);
    assert!(up.status.success(), "{}", text(&up));
    let status = env.wait_for("the node's isolation in `sandbox status`", || {
        let status = text(&env.hk8s(&["sandbox", "status"]));
        status.contains("pod isolation:").then_some(status)
    });
    if !user_namespaces_allowed() {
        assert!(
            status.contains("pod isolation: off (") && status.contains("user namespace"),
            "{status}"
        );
        return;
    }
    assert!(
        status.contains("pod isolation: namespaces, rootless")
            && status.contains("runAsUser and runAsGroup not honoured"),
        "{status}"
    );
    std::fs::write(
        env.state().join("images.yaml"),
        "images:\n  shell: sh\n  py: python3\n",
    )
    .unwrap();
    env.kubectl_ok(&["create", "namespace", "demo"]);
    pods_have_their_own_network_and_dns(&env);
    the_learners_shell_reaches_node_ports_load_balancers_and_port_forwards(&env);
    pods_run_as_the_learner_on_the_host(&env);
    let down = env.hk8s(&["sandbox", "down"]);
    assert!(down.status.success(), "{}", text(&down));
}

/// Two replicas binding the same port, a Service, its DNS name and the API server's
/// `kubernetes` Service, from inside a pod.
fn pods_have_their_own_network_and_dns(env: &Rootless) {
    env.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=py",
        "--replicas=2",
        "--port=8000",
        "--",
        "python3",
        "-m",
        "http.server",
        "8000",
    ]);
    env.kubectl_ok(&[
        "expose",
        "deployment",
        "web",
        "--port=80",
        "--target-port=8000",
    ]);
    env.kubectl_ok(&[
        "run",
        "client",
        "--image=shell",
        "--command",
        "--",
        "sleep",
        "1000",
    ]);
    env.kubectl_ok(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=60s",
    ]);
    env.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/client",
        "--timeout=60s",
    ]);
    let restarts = env.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].status.containerStatuses[0].restartCount}",
    ]);
    assert_eq!(restarts, "0 0", "both replicas bind 0.0.0.0:8000");
    let ip = env.kubectl_ok(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("198.19."), "{ip}");
    let script = "getent hosts web.demo.svc.cluster.local; \
        python3 -c 'import urllib.request as u; print(u.urlopen(\"http://web/\").status)'; \
        python3 -c 'import socket; socket.create_connection((\"kubernetes.default.svc\", 443), 5); print(\"api reached\")'";
    let out = env.kubectl_ok(&["exec", "client", "--", "sh", "-c", script]);
    assert!(
        out.contains(&format!("{ip} ")) && out.contains("\n200\n") && out.contains("api reached"),
        "{out}"
    );
}

/// A LoadBalancer on port 80, which an unprivileged sandbox may not bind: its status says
/// so and its node port answers on the same address; `kubectl port-forward` works.
fn the_learners_shell_reaches_node_ports_load_balancers_and_port_forwards(env: &Rootless) {
    env.kubectl_ok(&[
        "expose",
        "deployment",
        "web",
        "--name=lb",
        "--type=LoadBalancer",
        "--port=80",
        "--target-port=8000",
    ]);
    let (ip, error) = env.wait_for("the load balancer's status", || {
        let out = env.kubectl_ok(&[
            "get",
            "service",
            "lb",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip} {.status.loadBalancer.ingress[0].ports[0].error}",
        ]);
        let (ip, error) = out.split_once(' ')?;
        (!error.is_empty()).then(|| (ip.to_string(), error.to_string()))
    });
    let unprivileged = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .is_ok_and(|p| p.trim().parse::<u16>().is_ok_and(|p| p > 80));
    assert!(unprivileged, "port 80 needs privileges on this machine");
    assert_eq!(error, "hk8s.dev/PrivilegedPortNodePortInstead");
    let node_port = env.kubectl_ok(&[
        "get",
        "service",
        "lb",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    for addr in [
        format!("{ip}:{node_port}"),
        format!("127.0.0.1:{node_port}"),
    ] {
        let answer = env.wait_for(&format!("an answer at {addr}"), || http_get(&addr));
        assert!(answer.starts_with("HTTP/1.0 200"), "{addr}: {answer}");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut forward = Command::new("kubectl")
        .args(["--namespace=demo", "port-forward", "deployment/web"])
        .arg(format!("{port}:8000"))
        .env("KUBECONFIG", env.state().join("kubeconfig"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let answer = env.wait_for("the port-forward", || {
        http_get(&format!("127.0.0.1:{port}"))
    });
    let _ = forward.kill();
    let _ = forward.wait();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
}

fn http_get(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    (!answer.is_empty()).then_some(answer)
}

/// Root inside the pod is the learner (nobody) on the host.
fn pods_run_as_the_learner_on_the_host(env: &Rootless) {
    let inside = env.kubectl_ok(&["exec", "client", "--", "id", "-u"]);
    assert_eq!(inside.trim(), "0");
    let sleeping: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.ends_with("sleep\u{0}1000\u{0}"))
        })
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let uid = status.lines().find(|l| l.starts_with("Uid:"))?;
            uid.split_whitespace().nth(1)?.parse().ok()
        })
        .collect();
    assert!(
        sleeping.contains(&NOBODY),
        "the pod's process runs as nobody on the host: {sleeping:?}"
    );
}

/// The tutorial's first lessons, applied and checked by `hk8s verify` run as nobody on the
/// sandbox it starts: the app's message goes through the load balancer's node port, which
/// the Service's status names.
#[test]
fn lessons_0_to_3_pass_on_a_sandbox_started_without_root() {
    if !is_root() || !user_namespaces_allowed() {
        return;
    }
    support::ensure_app_binaries();
    let env = rootless_env();
    let out = as_nobody(
        &[
            env.hk8s.to_str().unwrap(),
            "verify",
            "--sandbox",
            "--apply",
            "0",
            "1",
            "2",
            "3",
        ],
        &[
            ("HOME", env.dir.path()),
            ("HK8S_SANDBOX_DIR", &env.state()),
            ("HK8S_DATA_DIR", &env.dir.path().join("data")),
        ],
    );
    let report = text(&out);
    assert!(
        out.status.success() && report.contains(" passed, 0 failed"),
        "{report}"
    );
    let node_port = env.kubectl_ok(&[
        "get",
        "service",
        "frontend",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    assert!(
        report.contains(&format!(":{node_port}/ and read it back")),
        "the message went through the load balancer's node port {node_port}: {report}"
    );
}
