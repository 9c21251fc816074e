//! Liveness and readiness probes as the kubelet runs them: HTTP GET, TCP connect and exec,
//! each with a timeout; failure messages match a real kubelet's wording.

use http_body_util::Empty;
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A probe resolved against a pod: where to connect and how often.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    pub action: ProbeAction,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub failure_threshold: u32,
    pub success_threshold: u32,
}

/// What a probe does, resolved for the sandbox (addresses on the pod IP, local programs).
#[derive(Debug, Clone)]
pub enum ProbeAction {
    Http {
        addr: SocketAddr,
        path: String,
        host: String,
        headers: Vec<(String, String)>,
    },
    Tcp {
        addr: SocketAddr,
    },
    Exec {
        program: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
        /// The pod and container to run in (namespace mode).
        namespaces: Option<(
            super::namespaces::PodNamespaces,
            super::namespaces::ContainerView,
        )>,
    },
}

impl ProbeSpec {
    /// Runs an exec probe inside the pod's namespaces.
    pub fn in_pod(
        mut self,
        pod: Option<&super::namespaces::PodNamespaces>,
        container: &Container,
        spec: &k8s_openapi::api::core::v1::PodSpec,
    ) -> Self {
        if let ProbeAction::Exec {
            namespaces,
            program,
            ..
        } = &mut self.action
        {
            let default = super::namespaces::image_user(program);
            *namespaces = pod.and_then(|p| {
                let view = super::namespaces::ContainerView::of(container, spec, default).ok()?;
                Some((p.clone(), view))
            });
        }
        self
    }

    /// Resolves a manifest probe for a container whose pod has IP `ip`; `None` when the probe
    /// has no handler the sandbox can run (e.g. gRPC), with the reason.
    pub fn from_manifest(
        probe: &Probe,
        container: &Container,
        ip: IpAddr,
        env: &[(String, String)],
        find_program: impl Fn(&str) -> Option<PathBuf>,
    ) -> Result<Self, String> {
        let port = |p: &IntOrString| -> Result<u16, String> {
            match p {
                IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
                IntOrString::String(name) => container
                    .ports
                    .iter()
                    .flatten()
                    .find(|cp| cp.name.as_deref() == Some(name.as_str()))
                    .and_then(|cp| u16::try_from(cp.container_port).ok())
                    .ok_or_else(|| format!("no container port named {name:?}")),
            }
        };
        let action = if let Some(http) = &probe.http_get {
            let host = http.host.clone().unwrap_or_else(|| ip.to_string());
            let target: IpAddr = http
                .host
                .as_deref()
                .and_then(|h| h.parse().ok())
                .unwrap_or(ip);
            ProbeAction::Http {
                addr: SocketAddr::new(target, port(&http.port)?),
                path: http.path.clone().unwrap_or_else(|| "/".into()),
                host,
                headers: http
                    .http_headers
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            }
        } else if let Some(tcp) = &probe.tcp_socket {
            let target: IpAddr = tcp
                .host
                .as_deref()
                .and_then(|h| h.parse().ok())
                .unwrap_or(ip);
            ProbeAction::Tcp {
                addr: SocketAddr::new(target, port(&tcp.port)?),
            }
        } else if let Some(exec) = &probe.exec {
            let command = exec.command.clone().unwrap_or_default();
            let (first, rest) = command
                .split_first()
                .ok_or("exec probe without a command")?;
            let program = find_program(first).ok_or_else(|| format!("{first}: not found"))?;
            ProbeAction::Exec {
                program,
                args: rest.to_vec(),
                env: env.to_vec(),
                namespaces: None,
            }
        } else {
            return Err("the probe has no httpGet, tcpSocket or exec handler".into());
        };
        let secs =
            |v: Option<i32>, default: i32| Duration::from_secs(v.unwrap_or(default).max(0) as u64);
        Ok(ProbeSpec {
            action,
            initial_delay: secs(probe.initial_delay_seconds, 0),
            period: secs(probe.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: secs(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
        })
    }

    /// Runs the probe once: `Ok(())` on success, `Err(message)` in a kubelet's words.
    pub async fn run_once(&self) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.action.run()).await {
            Ok(result) => result,
            Err(_) => Err(match &self.action {
                ProbeAction::Http { addr, path, .. } => format!(
                    "Get \"http://{addr}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                ),
                ProbeAction::Tcp { addr } => format!("dial tcp {addr}: i/o timeout"),
                ProbeAction::Exec { .. } => {
                    format!("command timed out after {}s", self.timeout.as_secs())
                }
            }),
        }
    }
}

impl ProbeAction {
    async fn run(&self) -> Result<(), String> {
        match self {
            ProbeAction::Http {
                addr,
                path,
                host,
                headers,
            } => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("Get \"http://{addr}{path}\": dial tcp {addr}: {e}"))?;
                let io = hyper_util::rt::TokioIo::new(stream);
                let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(|e| format!("Get \"http://{addr}{path}\": {e}"))?;
                tokio::spawn(conn);
                let mut request = http::Request::get(path.as_str())
                    .header(http::header::HOST, host.as_str())
                    .header(http::header::USER_AGENT, "kube-probe/1.37")
                    .header(http::header::ACCEPT, "*/*");
                for (name, value) in headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                let request = request
                    .body(Empty::<bytes::Bytes>::new())
                    .map_err(|e| format!("invalid probe request: {e}"))?;
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| format!("Get \"http://{addr}{path}\": {e}"))?;
                let status = response.status().as_u16();
                if (200..400).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("HTTP probe failed with statuscode: {status}"))
                }
            }
            ProbeAction::Tcp { addr } => tokio::net::TcpStream::connect(addr)
                .await
                .map(|_| ())
                .map_err(|e| format!("dial tcp {addr}: {e}")),
            ProbeAction::Exec {
                program,
                args,
                env,
                namespaces,
            } => {
                let mut command = match namespaces {
                    Some((_, container)) => super::process::command_as(program, container)
                        .map_err(|e| format!("opening {}: {e}", program.display()))?,
                    None => std::process::Command::new(program),
                };
                if let Some((ns, container)) = namespaces {
                    ns.join(&mut command, Some(container)).map_err(|e| {
                        format!("entering the pod to run {}: {e}", program.display())
                    })?;
                }
                let output = tokio::process::Command::from(command)
                    .args(args)
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .kill_on_drop(true)
                    .output()
                    .await
                    .map_err(|e| format!("{}: {e}", program.display()))?;
                if output.status.success() {
                    Ok(())
                } else {
                    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                    text.push_str(&String::from_utf8_lossy(&output.stderr));
                    Err(text.trim().to_string())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ExecAction, HTTPGetAction, TCPSocketAction};

    fn spec(probe: Probe) -> ProbeSpec {
        let container = Container {
            name: "c".into(),
            ..Default::default()
        };
        ProbeSpec::from_manifest(&probe, &container, "127.0.0.1".parse().unwrap(), &[], |p| {
            crate::kubelet::images::ImageResolver::default().find_program(p)
        })
        .unwrap()
    }

    #[tokio::test]
    async fn http_probes_report_the_status_code() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]);
                    let status = if req.starts_with("GET /healthz ") {
                        "200 OK"
                    } else {
                        "404 Not Found"
                    };
                    let _ = s
                        .write_all(
                            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes(),
                        )
                        .await;
                });
            }
        });
        let probe = |path: &str| Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::Int(port as i32),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(spec(probe("/healthz")).run_once().await, Ok(()));
        assert_eq!(
            spec(probe("/nope")).run_once().await,
            Err("HTTP probe failed with statuscode: 404".to_string())
        );
    }

    #[tokio::test]
    async fn tcp_and_exec_probes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port() as i32;
        let tcp = |port| Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(port),
                host: None,
            }),
            ..Default::default()
        };
        assert!(spec(tcp(port)).run_once().await.is_ok());
        drop(listener);
        assert!(
            spec(tcp(port))
                .run_once()
                .await
                .unwrap_err()
                .contains("dial tcp")
        );
        let exec = |cmd: &str| Probe {
            exec: Some(ExecAction {
                command: Some(vec!["sh".into(), "-c".into(), cmd.into()]),
            }),
            ..Default::default()
        };
        assert!(spec(exec("exit 0")).run_once().await.is_ok());
        assert_eq!(
            spec(exec("echo sick; exit 1")).run_once().await,
            Err("sick".to_string())
        );
    }
}
