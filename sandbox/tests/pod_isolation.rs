//! Pods in Linux namespaces (issue 14), with the real kubectl and real processes: each pod
//! has its own network (IP on the sandbox's bridge, own ports and loopback), host name,
//! resolv.conf and hosts, and every process it starts dies with it.
//!
//! Where isolation is off (`HK8S_SANDBOX_ISOLATION=off`, or not root) the node must say so,
//! and that is what these tests then check.

mod common;

use common::{Env, wait_for};
use serde_json::json;
use std::time::Duration;

const IMAGES: &str = "  shell: sh\n  py: python3\n";

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_binding_the_same_port_both_run_and_the_host_reaches_them() {
    let env = Env::start(IMAGES).await;
    if !env.isolated().await {
        return;
    }
    env.apply(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "web", "image": "py",
                     "command": ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"],
                     "readinessProbe": {"tcpSocket": {"port": 8000}, "periodSeconds": 1}}]}}}
    }))
    .await;
    env.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8000}]}
    }))
    .await;
    let ips = wait_for("two ready web pods", Duration::from_secs(60), async || {
        let out = env
            .kubectl_ok(&["get", "pods", "-l", "app=web", "-o", "json"])
            .await;
        let list: serde_json::Value = serde_json::from_str(&out).ok()?;
        let items = list["items"].as_array()?;
        let ready: Vec<String> = items
            .iter()
            .filter(|p| p["status"]["containerStatuses"][0]["ready"] == json!(true))
            .map(|p| {
                p["status"]["podIP"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        (ready.len() == 2).then_some(ready)
    })
    .await;
    let out = env.kubectl_ok(&["get", "pods", "-l", "app=web"]).await;
    for line in out.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[2], "Running", "{out}");
        assert_eq!(cols[3], "0", "restarts: {out}");
    }
    assert_ne!(ips[0], ips[1]);
    for ip in &ips {
        assert!(
            ip.starts_with("198.18."),
            "pod IP {ip} is not on the pod network"
        );
        let body = http_get(&format!("{ip}:8000")).await;
        assert!(body.contains("Directory listing"), "{ip}: {body}");
    }
    let cluster_ip = env
        .kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"])
        .await;
    assert!(cluster_ip.starts_with("198.19."), "cluster IP {cluster_ip}");
    let body = wait_for(
        "the service from the host",
        Duration::from_secs(20),
        async || {
            let body = http_get(&format!("{cluster_ip}:80")).await;
            body.contains("Directory listing").then_some(body)
        },
    )
    .await;
    assert!(!body.is_empty());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_has_its_own_hostname_resolv_conf_and_reaches_services() {
    let env = Env::start(IMAGES).await;
    if !env.isolated().await {
        return;
    }
    env.apply(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "server", "namespace": "demo", "labels": {"app": "server"}},
        "spec": {"containers": [{"name": "main", "image": "py",
            "command": ["python3", "-m", "http.server", "8000"]}]}
    }))
    .await;
    env.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "server", "namespace": "demo"},
        "spec": {"selector": {"app": "server"}, "ports": [{"port": 8080, "targetPort": 8000}]}
    }))
    .await;
    let script = "cat /proc/sys/kernel/hostname; cat /etc/resolv.conf; \
        until python3 -c \"import urllib.request,os; print('via-service', urllib.request.urlopen('http://'+os.environ['SERVER_SERVICE_HOST']+':8080/').status)\"; \
        do sleep 0.2; done; \
        python3 -c \"import os,socket; h=os.environ['KUBERNETES_SERVICE_HOST']; socket.create_connection((h, 443), 5); print('api-service', h)\"; \
        sleep 1000";
    env.apply(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "client", "namespace": "demo"},
        "spec": {"containers": [{"name": "main", "image": "shell",
            "command": ["sh", "-c", script]}]}
    }))
    .await;
    let logs = env.logs_with("client", "via-service 200").await;
    let mut lines = logs.lines();
    assert_eq!(lines.next(), Some("client"), "host name: {logs}");
    assert!(logs.contains("search demo.svc.cluster.local svc.cluster.local cluster.local"));
    assert!(logs.contains("options ndots:5"), "{logs}");
    assert!(logs.contains("nameserver 198.18."), "{logs}");
    let api = wait_for(
        "the API server's Service",
        Duration::from_secs(20),
        async || {
            let out = env.kubectl(&["logs", "client"]).await;
            let logs = String::from_utf8_lossy(&out.stdout).to_string();
            logs.lines()
                .find_map(|l| l.strip_prefix("api-service ").map(str::to_string))
        },
    )
    .await;
    assert!(api.starts_with("198.19."), "kubernetes.default at {api}");
    env.shutdown().await;
}

/// Whether the sandbox may create cgroups (root), which is what holds a pod's descendants
/// without namespaces too.
fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Host pids of processes whose command line has `marker` as an argument.
fn processes_with(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == marker.as_bytes()))
        })
        .collect()
}

/// A `sleep` duration unique to this test run, to find its process by its argv.
fn marker(n: u32) -> String {
    format!("{}.{n}", 100_000 + std::process::id())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_setsid_grandchild_dies_with_its_pod_and_its_cgroup_holds_it_from_the_start() {
    let env = Env::start(IMAGES).await;
    let isolated = env.isolated().await;
    if !root() {
        return;
    }
    let escaper = marker(1);
    let script = format!("cat /proc/self/cgroup; (setsid sleep {escaper} &); sleep 1000");
    env.apply(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "escaper", "namespace": "demo"},
        "spec": {"terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": "shell", "command": ["sh", "-c", script]}]}
    }))
    .await;
    let pids = wait_for(
        "the setsid grandchild",
        Duration::from_secs(60),
        async || {
            let pids = processes_with(&escaper);
            (!pids.is_empty()).then_some(pids)
        },
    )
    .await;
    let uid = env
        .kubectl_ok(&["get", "pod", "escaper", "-o", "jsonpath={.metadata.uid}"])
        .await;
    let logs = env.kubectl_ok(&["logs", "escaper"]).await;
    assert!(
        logs.lines().any(|l| l.ends_with(&format!("/{uid}-main"))),
        "the container's first read of /proc/self/cgroup is not in its cgroup {uid}-main: {logs}"
    );
    if isolated {
        let status = std::fs::read_to_string(format!("/proc/{}/status", pids[0])).unwrap();
        let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
        assert_eq!(
            nspid.split_whitespace().count(),
            3,
            "the grandchild is not in a PID namespace of its own: {nspid}"
        );
    }
    env.kubectl_ok(&["delete", "pod", "escaper", "--wait=true"])
        .await;
    wait_for(
        "the grandchild to die",
        Duration::from_secs(20),
        async || processes_with(&escaper).is_empty().then_some(()),
    )
    .await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_sees_only_the_containers_own_processes_unless_the_pod_shares_them() {
    let env = Env::start(IMAGES).await;
    if !env.isolated().await {
        return;
    }
    let (first, second) = (marker(11), marker(12));
    let pod = |name: &str, shared: bool| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"shareProcessNamespace": shared, "terminationGracePeriodSeconds": 1,
                "containers": [
                    {"name": "one", "image": "shell", "command": ["sleep", first]},
                    {"name": "two", "image": "shell", "command": ["sleep", second]}]}
        })
    };
    env.apply(pod("apart", false)).await;
    env.apply(pod("together", true)).await;
    for (name, sees_second) in [("apart", false), ("together", true)] {
        let ps = wait_for(
            &format!("ps in {name}"),
            Duration::from_secs(60),
            async || {
                let out = env
                    .kubectl(&[
                        "exec",
                        name,
                        "-c",
                        "one",
                        "--",
                        "ps",
                        "-e",
                        "-o",
                        "pid=,args=",
                    ])
                    .await;
                let ps = String::from_utf8_lossy(&out.stdout).to_string();
                ps.contains(&first).then_some(ps)
            },
        )
        .await;
        assert_eq!(ps.contains(&second), sees_second, "{name}: {ps}");
        let pids: Vec<u32> = ps
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        assert!(
            pids.contains(&1) && pids.iter().all(|p| *p < 20),
            "{name}: not the pod's own PID namespace: {ps}"
        );
        let ls = env
            .kubectl_ok(&["exec", name, "-c", "one", "--", "ls", "/proc"])
            .await;
        let listed = ls
            .split_whitespace()
            .filter(|e| e.parse::<u32>().is_ok())
            .count();
        assert!(listed < 10, "{name}: /proc lists {listed} processes: {ls}");
    }
    env.shutdown().await;
}

/// The body of `GET http://<addr>/`, or the error as text.
async fn http_get(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
            .await?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await?;
        Ok::<_, std::io::Error>(body)
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "error: timed out".into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn config_map_and_secret_files_appear_at_their_mount_path() {
    let env = Env::start(IMAGES).await;
    if !env.isolated().await {
        return;
    }
    env.apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "code", "namespace": "demo"},
        "data": {"x.py": "print('hello from x.py')\n"}
    }))
    .await;
    env.apply(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "demo"},
        "stringData": {"password": "s3cret"}
    }))
    .await;
    let script = "python3 /opt/x.py; cat /etc/creds/password; echo; \
        echo kept > /scratch/file && cat /scratch/file; \
        touch /etc/creds/new 2>/dev/null || echo read-only; sleep 1000";
    env.apply(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "mounts", "namespace": "demo"},
        "spec": {
            "volumes": [
                {"name": "code", "configMap": {"name": "code"}},
                {"name": "creds", "secret": {"secretName": "creds"}},
                {"name": "scratch", "emptyDir": {}}
            ],
            "containers": [{"name": "main", "image": "shell", "command": ["sh", "-c", script],
                "volumeMounts": [
                    {"name": "code", "mountPath": "/opt/x.py", "subPath": "x.py"},
                    {"name": "creds", "mountPath": "/etc/creds", "readOnly": true},
                    {"name": "scratch", "mountPath": "/scratch"}
                ]}]}
    }))
    .await;
    let logs = env.logs_with("mounts", "read-only").await;
    assert_eq!(
        logs.lines().collect::<Vec<_>>(),
        ["hello from x.py", "s3cret", "kept", "read-only"],
        "{logs}"
    );
    assert!(
        !std::path::Path::new("/opt/x.py").exists() && !std::path::Path::new("/scratch").exists(),
        "a pod's mounts leaked onto the host"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_run_as_their_security_context_user_and_never_as_root_by_default() {
    let env = Env::start(IMAGES).await;
    if !env.isolated().await {
        return;
    }
    let script = "echo $(id -u) $(id -g); grep NoNewPrivs /proc/self/status; \
        touch /usr/hk8s-probe 2>/dev/null || echo read-only-root; sleep 1000";
    let pod = |name: &str, security: serde_json::Value| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"containers": [{"name": "main", "image": "shell",
                "command": ["sh", "-c", script], "securityContext": security}]}
        })
    };
    env.apply(pod("plain", json!({}))).await;
    env.apply(pod(
        "chosen",
        json!({"runAsUser": 1000, "runAsGroup": 3000, "allowPrivilegeEscalation": false,
               "readOnlyRootFilesystem": true}),
    ))
    .await;
    env.apply(pod(
        "refused",
        json!({"runAsUser": 0, "runAsNonRoot": true}),
    ))
    .await;
    for (name, expected) in [
        ("plain", vec!["65534 65534", "NoNewPrivs:\t0"]),
        (
            "chosen",
            vec!["1000 3000", "NoNewPrivs:\t1", "read-only-root"],
        ),
    ] {
        let logs = env.logs_with(name, "NoNewPrivs").await;
        for line in expected {
            assert!(
                logs.lines().any(|l| l == line),
                "{name}: no {line:?} in {logs}"
            );
        }
    }
    let reason = wait_for("the refusal", Duration::from_secs(60), async || {
        let reason = env
            .kubectl_ok(&[
                "get",
                "pod",
                "refused",
                "-o",
                "jsonpath={.status.containerStatuses[0].state.waiting.reason}",
            ])
            .await;
        (reason == "CreateContainerConfigError").then_some(reason)
    })
    .await;
    assert_eq!(reason, "CreateContainerConfigError");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_program_under_a_private_directory_runs_as_the_pods_user_and_a_closed_one_is_explained() {
    use std::os::unix::fs::PermissionsExt;
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let program = |name: &str, mode: u32| {
        let path = private.path().join(name);
        std::fs::write(&path, "#!/bin/sh\necho uid=$(id -u)\nexec sleep 1000\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    let (open, closed) = (program("open.sh", 0o755), program("closed.sh", 0o700));
    let images = format!(
        "{IMAGES}  private-open: {}\n  private-closed: {}\n",
        open.display(),
        closed.display()
    );
    let env = Env::start(&images).await;
    if !env.isolated().await {
        return;
    }
    for (name, image, security) in [
        ("open", "private-open", json!({"runAsUser": 10001})),
        ("unset", "private-open", json!({})),
        ("closed", "private-closed", json!({"runAsUser": 10001})),
    ] {
        env.apply(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"securityContext": security,
                     "containers": [{"name": "main", "image": image}]}
        }))
        .await;
    }
    for (name, expected) in [("open", "uid=10001"), ("unset", "uid=65534")] {
        let logs = env.logs_with(name, "uid=").await;
        assert_eq!(logs.trim(), expected, "{name}");
    }
    let message = wait_for("closed's refusal", Duration::from_secs(60), async || {
        let message = env
            .kubectl_ok(&[
                "get",
                "pod",
                "closed",
                "-o",
                "jsonpath={.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}",
            ])
            .await;
        message.contains("permission denied").then_some(message)
    })
    .await;
    assert!(
        message.starts_with("RunContainerError: ")
            && message.contains("user 10001")
            && message.contains(&format!("chmod o+rx {}", closed.display())),
        "{message}"
    );
    env.shutdown().await;
}
