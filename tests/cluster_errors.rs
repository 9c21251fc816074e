//! A cluster that forbids what a lesson needs: hk8s says what was refused and what to do.
//!
//! The sandbox allows everything to its one user, so this runs against a small API server
//! that answers discovery and refuses the rest with the 403 Status a real RBAC-enabled
//! cluster sends.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;

const FORBIDDEN: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"namespaces \"demo\" is forbidden: User \"learner\" cannot get resource \"namespaces\" in API group \"\" in the namespace \"demo\"","reason":"Forbidden","details":{"name":"demo","kind":"namespaces"},"code":403}"#;

const VERSION: &str =
    r#"{"major":"1","minor":"30","gitVersion":"v1.30.0","platform":"linux/amd64"}"#;

/// Serves `/version` and answers every other request 403, counting what it refused.
fn forbidding_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (refused, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let refused = refused.clone();
            std::thread::spawn(move || serve(stream, &refused));
        }
    });
    (port, seen)
}

fn serve(stream: TcpStream, refused: &std::sync::mpsc::Sender<String>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/");
        let (status, body) = if path == "/version" {
            ("200 OK", VERSION)
        } else {
            let _ = refused.send(request_line.trim().to_string());
            ("403 Forbidden", FORBIDDEN)
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn kubeconfig(dir: &Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: rbac\nclusters:\n- name: rbac\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: rbac\n  context:\n    cluster: rbac\n    user: learner\nusers:\n- name: learner\n  user:\n    token: learner-token\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_forbidden_request_names_the_refusal_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (port, refused) = forbidding_server();
    let kubeconfig = kubeconfig(dir.path(), port);
    let out = Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(["lesson", "1", "--yes", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("HK8S_DATA_DIR", dir.path().join("data"))
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .output()
        .expect("hk8s runs");
    let text = format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        refused.try_recv().is_ok(),
        "hk8s sent a request the cluster refused:\n{text}"
    );
    assert!(
        text.contains("User \"learner\" cannot get resource \"namespaces\""),
        "the cluster's own reason is shown:\n{text}"
    );
    assert!(
        text.contains("ask the cluster admin for a Role with edit rights")
            && text.contains("kubectl auth can-i --list -n demo"),
        "says what to do:\n{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
}
