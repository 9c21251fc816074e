//! One container's life: resolve its image, start the process with its limits, run its
//! probes, restart it with back-off, and keep its `containerStatuses` entry current.

use super::context::PodContext;
use super::probes::ProbeSpec;
use super::process::{Process, ProcessSpec, spawn};
use crate::apimachinery::events::EventType;
use crate::apimachinery::quantity;
use crate::kubelet::cgroups::{Limiter, Limits};
use crate::kubelet::images::{Program, ProgramKind};
use crate::shutdown::Shutdown;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, ObjectReference, Probe,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use nix::sys::signal::Signal;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How a container's run ended, seen from the supervisor.
enum Outcome {
    Exited(std::process::ExitStatus),
    LivenessFailed,
    Stopped,
}

pub(super) struct Supervisor {
    pub ctx: Arc<PodContext>,
    pub container: Container,
    pub shutdown: Shutdown,
}

impl Supervisor {
    fn object(&self) -> ObjectReference {
        let mut r = self.ctx.pod_ref.clone();
        r.field_path = Some(format!("spec.containers{{{}}}", self.container.name));
        r
    }

    fn update(&self, f: impl FnOnce(&mut ContainerStatus)) {
        self.ctx.update_container(&self.container.name, f);
    }

    async fn event(&self, t: EventType, reason: &str, message: &str) {
        self.ctx
            .kubelet
            .recorder
            .publish(&self.object(), t, reason, message)
            .await;
    }

    /// Sleeps unless the pod is being stopped; returns false when it is.
    async fn pause(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.shutdown.recv() => false,
        }
    }

    pub async fn run(mut self) {
        let name = self.container.name.clone();
        let image = self.container.image.clone().unwrap_or_default();
        let restart_policy = self
            .ctx
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone());
        let restart_policy = restart_policy.as_deref().unwrap_or("Always").to_string();
        let mut crashes: u32 = 0;
        let mut pulled = false;
        loop {
            if self.shutdown.is_shutdown() {
                return;
            }
            let program = match self.ctx.kubelet.images.resolve(&image) {
                Ok(p) => p,
                Err(e) => {
                    let reason = if pulled {
                        "ImagePullBackOff"
                    } else {
                        "ErrImagePull"
                    };
                    let message = format!("hk8s sandbox: {e}");
                    self.update(|s| {
                        s.state = Some(waiting(reason, &message));
                        s.ready = false;
                    });
                    self.event(
                        EventType::Warning,
                        "Failed",
                        &format!("Failed to pull image \"{image}\": {message}"),
                    )
                    .await;
                    pulled = true;
                    if !self.pause(Duration::from_secs(5)).await {
                        return;
                    }
                    continue;
                }
            };
            if !pulled {
                self.event(
                    EventType::Normal,
                    "Pulled",
                    &format!("Container image \"{image}\" already present on machine"),
                )
                .await;
                pulled = true;
            }
            let spec = match self.process_spec(&program) {
                Ok(spec) => spec,
                Err(message) => {
                    self.update(|s| s.state = Some(waiting("CreateContainerError", &message)));
                    self.event(EventType::Warning, "Failed", &format!("Error: {message}"))
                        .await;
                    if !self.pause(Duration::from_secs(5)).await {
                        return;
                    }
                    continue;
                }
            };
            let log = crate::paths::container_log_path(
                &self.ctx.kubelet.state_dir,
                &self.ctx.namespace,
                &self.ctx.name,
                &name,
            );
            if log.exists() && self.status_restart_count() > 0 {
                let previous = crate::paths::previous_container_log_path(
                    &self.ctx.kubelet.state_dir,
                    &self.ctx.namespace,
                    &self.ctx.name,
                    &name,
                );
                let _ = std::fs::rename(&log, previous);
            }
            let started_at = Instant::now();
            let process = match spawn(&spec).await {
                Ok(p) => p,
                Err(e) => {
                    let message = format!("failed to start {}: {e}", spec.program.display());
                    self.update(|s| s.state = Some(waiting("RunContainerError", &message)));
                    self.event(EventType::Warning, "Failed", &format!("Error: {message}"))
                        .await;
                    if !self.pause(Duration::from_secs(5)).await {
                        return;
                    }
                    continue;
                }
            };
            let pid = process.pid;
            self.ctx.kubelet.pids.add(pid);
            let limits = container_limits(&self.container);
            let limiter = match Limiter::apply(
                &self.ctx.kubelet.enforcement,
                &format!("{}-{}", self.ctx.uid, name),
                pid,
                limits,
            ) {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(pod = %self.ctx.name, container = %name, error = %e, "limits not applied");
                    None
                }
            };
            self.ctx.kubelet.metrics.track(
                &self.ctx.namespace,
                &self.ctx.name,
                &self.ctx.uid,
                &name,
                pid,
            );
            let start_time = Time(jiff::Timestamp::now());
            let has_readiness = self.container.readiness_probe.is_some();
            let has_startup = self.container.startup_probe.is_some();
            self.update(|s| {
                s.state = Some(ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: Some(start_time.clone()),
                    }),
                    ..Default::default()
                });
                s.started = Some(!has_startup);
                s.ready = !has_readiness && !has_startup;
                s.container_id = Some(format!("hk8s://{pid}"));
            });
            self.event(
                EventType::Normal,
                "Created",
                &format!("Created container: {name}"),
            )
            .await;
            self.event(
                EventType::Normal,
                "Started",
                &format!("Started container {name}"),
            )
            .await;

            let (started_tx, started_rx) = watch::channel(false);
            let readiness = self.spawn_readiness(&spec, started_rx);
            let outcome = self.watch_process(process, &spec, started_tx).await;
            readiness.abort();
            self.ctx
                .kubelet
                .metrics
                .untrack(&self.ctx.namespace, &self.ctx.name, &name);
            let (status, reason) = match outcome {
                Outcome::Stopped => {
                    self.ctx.kubelet.pids.remove(pid);
                    return;
                }
                Outcome::LivenessFailed => (None, "Error"),
                Outcome::Exited(status) => {
                    let oom = limiter.as_ref().is_some_and(Limiter::oom_killed);
                    let reason = if oom {
                        "OOMKilled"
                    } else if status.success() {
                        "Completed"
                    } else {
                        "Error"
                    };
                    (Some(status), reason)
                }
            };
            self.ctx.kubelet.pids.remove(pid);
            drop(limiter);
            let exit_code = status
                .map(|s| s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9)))
                .unwrap_or(137);
            let terminated = ContainerStateTerminated {
                exit_code,
                reason: Some(reason.to_string()),
                started_at: Some(start_time),
                finished_at: Some(Time(jiff::Timestamp::now())),
                container_id: Some(format!("hk8s://{pid}")),
                signal: status.and_then(|s| s.signal()),
                message: None,
            };
            let restart = match restart_policy.as_str() {
                "Never" => false,
                "OnFailure" => exit_code != 0,
                _ => true,
            };
            if !restart {
                self.update(|s| {
                    s.state = Some(ContainerState {
                        terminated: Some(terminated),
                        ..Default::default()
                    });
                    s.ready = false;
                    s.started = Some(false);
                });
                return;
            }
            if started_at.elapsed() > Duration::from_secs(600) {
                crashes = 0;
            }
            let delay = self.ctx.kubelet.backoff.delay(crashes);
            crashes += 1;
            let message = format!(
                "back-off {}s restarting failed container={name} pod={}_{}({})",
                delay.as_secs(),
                self.ctx.name,
                self.ctx.namespace,
                self.ctx.uid
            );
            self.update(|s| {
                s.last_state = Some(ContainerState {
                    terminated: Some(terminated),
                    ..Default::default()
                });
                s.restart_count += 1;
                s.ready = false;
                s.started = Some(false);
                s.state = Some(if delay.is_zero() {
                    waiting("ContainerCreating", "")
                } else {
                    waiting("CrashLoopBackOff", &message)
                });
            });
            if !delay.is_zero() {
                self.event(
                    EventType::Warning,
                    "BackOff",
                    &format!(
                        "Back-off restarting failed container {name} in pod {}_{}({})",
                        self.ctx.name, self.ctx.namespace, self.ctx.uid
                    ),
                )
                .await;
            }
            if !self.pause(delay).await {
                return;
            }
        }
    }

    fn status_restart_count(&self) -> i32 {
        self.ctx
            .container_status(&self.container.name)
            .map(|s| s.restart_count)
            .unwrap_or(0)
    }

    /// Waits for the process to end, the liveness probe to fail, or the pod to stop.
    /// Resolves a manifest probe, reporting one the sandbox cannot run as an event.
    async fn probe_spec(
        &self,
        probe: Option<&Probe>,
        kind: &str,
        env: &[(String, String)],
    ) -> Option<ProbeSpec> {
        let resolved =
            ProbeSpec::from_manifest(probe?, &self.container, self.ctx.ip.into(), env, |n| {
                self.ctx.kubelet.images.find_program(n)
            });
        match resolved {
            Ok(p) => Some(p),
            Err(e) => {
                self.event(
                    EventType::Warning,
                    "Unhealthy",
                    &format!("{kind} probe errored: {e}"),
                )
                .await;
                None
            }
        }
    }

    async fn watch_process(
        &mut self,
        mut process: Process,
        spec: &ProcessSpec,
        started: watch::Sender<bool>,
    ) -> Outcome {
        let startup = self
            .probe_spec(self.container.startup_probe.as_ref(), "Startup", &spec.env)
            .await;
        let liveness = self
            .probe_spec(
                self.container.liveness_probe.as_ref(),
                "Liveness",
                &spec.env,
            )
            .await;
        let name = self.container.name.clone();
        let probe_loop = async {
            if let Some(probe) = startup {
                tokio::time::sleep(probe.initial_delay).await;
                let mut failures = 0;
                while let Err(message) = probe.run_once().await {
                    failures += 1;
                    self.event(
                        EventType::Warning,
                        "Unhealthy",
                        &format!("Startup probe failed: {message}"),
                    )
                    .await;
                    if failures >= probe.failure_threshold {
                        return "startup";
                    }
                    tokio::time::sleep(probe.period).await;
                }
                self.update(|s| s.started = Some(true));
            }
            let _ = started.send(true);
            let Some(probe) = liveness else {
                return std::future::pending().await;
            };
            tokio::time::sleep(probe.initial_delay).await;
            let mut failures = 0;
            loop {
                match probe.run_once().await {
                    Ok(()) => failures = 0,
                    Err(message) => {
                        failures += 1;
                        self.event(
                            EventType::Warning,
                            "Unhealthy",
                            &format!("Liveness probe failed: {message}"),
                        )
                        .await;
                        if failures >= probe.failure_threshold {
                            return "liveness";
                        }
                    }
                }
                tokio::time::sleep(probe.period).await;
            }
        };
        let shutdown = self.shutdown.clone();
        tokio::select! {
            status = &mut process.exited => match status {
                Ok(s) => Outcome::Exited(s),
                Err(_) => Outcome::Exited(std::process::ExitStatus::from_raw(137 << 8)),
            },
            failed = probe_loop => {
                self.event(
                    EventType::Normal,
                    "Killing",
                    &format!("Container {name} failed {failed} probe, will be restarted"),
                ).await;
                self.terminate(&mut process).await;
                Outcome::LivenessFailed
            }
            _ = shutdown.recv() => {
                self.event(EventType::Normal, "Killing", &format!("Stopping container {name}")).await;
                self.terminate(&mut process).await;
                Outcome::Stopped
            }
        }
    }

    /// SIGTERM, then SIGKILL after the pod's grace period (at most 10 s in the sandbox).
    async fn terminate(&self, process: &mut Process) {
        process.signal(Signal::SIGTERM);
        let grace = self
            .ctx
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30)
            .clamp(0, 10) as u64;
        if tokio::time::timeout(Duration::from_secs(grace), &mut process.exited)
            .await
            .is_err()
        {
            process.signal(Signal::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut process.exited).await;
        }
    }

    /// Runs the readiness probe once the startup probe (if any) has succeeded; without a
    /// readiness probe the container is ready as soon as it has started.
    fn spawn_readiness(
        &self,
        spec: &ProcessSpec,
        mut started: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let ctx = self.ctx.clone();
        let container = self.container.clone();
        let Some(manifest) = self.container.readiness_probe.clone() else {
            return tokio::spawn(async move {
                if started.wait_for(|s| *s).await.is_ok() {
                    ctx.update_container(&container.name, |s| s.ready = true);
                }
            });
        };
        let env = spec.env.clone();
        tokio::spawn(async move {
            if started.wait_for(|s| *s).await.is_err() {
                return;
            }
            let probe = match ProbeSpec::from_manifest(
                &manifest,
                &container,
                ctx.ip.into(),
                &env,
                |n| ctx.kubelet.images.find_program(n),
            ) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(container = %container.name, error = %e, "readiness probe unusable");
                    return;
                }
            };
            tokio::time::sleep(probe.initial_delay).await;
            let (mut successes, mut failures, mut ready) = (0, 0, false);
            let mut ever_ready = false;
            let mut last_event: Option<Instant> = None;
            loop {
                match probe.run_once().await {
                    Ok(()) => {
                        successes += 1;
                        failures = 0;
                        if !ready && successes >= probe.success_threshold {
                            ready = true;
                            ever_ready = true;
                            ctx.update_container(&container.name, |s| s.ready = true);
                        }
                    }
                    Err(message) => {
                        successes = 0;
                        failures += 1;
                        let quiet = last_event.is_some_and(|t| t.elapsed() < probe.period);
                        if quiet {
                            tokio::time::sleep(next_probe(ever_ready, probe.period)).await;
                            continue;
                        }
                        last_event = Some(Instant::now());
                        let mut r = ctx.pod_ref.clone();
                        r.field_path = Some(format!("spec.containers{{{}}}", container.name));
                        ctx.kubelet
                            .recorder
                            .publish(
                                &r,
                                EventType::Warning,
                                "Unhealthy",
                                &format!("Readiness probe failed: {message}"),
                            )
                            .await;
                        if ready && failures >= probe.failure_threshold {
                            ready = false;
                            ctx.update_container(&container.name, |s| s.ready = false);
                        }
                    }
                }
                tokio::time::sleep(next_probe(ever_ready, probe.period)).await;
            }
        })
    }

    /// The program, arguments and environment of this container, as its image would run it.
    fn process_spec(&self, program: &Program) -> Result<ProcessSpec, String> {
        let ctx = &self.ctx;
        let env = ctx.container_env(&self.container, program.kind);
        let expand = |s: &String| expand_vars(s, &env);
        let command: Vec<String> = self
            .container
            .command
            .iter()
            .flatten()
            .map(expand)
            .collect();
        let args: Vec<String> = self.container.args.iter().flatten().map(expand).collect();
        let (path, mut argv) = match command.split_first() {
            Some((first, rest)) => {
                let same = PathBuf::from(first).file_name() == program.path.file_name();
                let path = if same {
                    program.path.clone()
                } else {
                    ctx.kubelet.images.find_program(first).ok_or_else(|| {
                        format!("exec: {first:?}: executable file not found in $PATH")
                    })?
                };
                let mut argv = rest.to_vec();
                argv.extend(args);
                (path, argv)
            }
            None if args.is_empty() => (program.path.clone(), program.default_args.clone()),
            None => (program.path.clone(), args),
        };
        if program.kind == ProgramKind::Redis {
            argv = redis_args(argv, ctx, &self.container);
        }
        Ok(ProcessSpec {
            program: path,
            args: argv,
            env,
            cwd: ctx.volume_for_mount(&self.container, None),
            log_path: crate::paths::container_log_path(
                &ctx.kubelet.state_dir,
                &ctx.namespace,
                &ctx.name,
                &self.container.name,
            ),
        })
    }
}

/// Until a container is first ready its readiness probe is retried every 250 ms rather than
/// every period, so a sandbox pod turns Ready as soon as it can (failure events still come
/// at most once per period); afterwards the manifest's period applies.
fn next_probe(ever_ready: bool, period: Duration) -> Duration {
    if ever_ready {
        period
    } else {
        period.min(Duration::from_millis(250))
    }
}

/// redis-server bound to the pod's IP, its data in the volume mounted at /data (or the pod's
/// scratch directory), saving like the official image's default; user arguments come last
/// so they win.
fn redis_args(user: Vec<String>, ctx: &PodContext, container: &Container) -> Vec<String> {
    let port = container
        .ports
        .iter()
        .flatten()
        .next()
        .map(|p| p.container_port)
        .unwrap_or(6379);
    let dir = ctx
        .volume_for_mount(container, Some("/data"))
        .unwrap_or_else(|| ctx.scratch_dir().join(format!("{}-data", container.name)));
    let _ = std::fs::create_dir_all(&dir);
    let (config_file, rest): (Vec<String>, Vec<String>) = match user.first() {
        Some(first) if !first.starts_with("--") && first != "redis-server" => {
            (vec![first.clone()], user[1..].to_vec())
        }
        _ => (
            Vec::new(),
            user.into_iter().filter(|a| a != "redis-server").collect(),
        ),
    };
    let mut args = config_file;
    args.extend([
        "--bind".to_string(),
        ctx.ip.to_string(),
        "--port".into(),
        port.to_string(),
        "--dir".into(),
        dir.display().to_string(),
        "--save".into(),
        "60 1".into(),
        "--protected-mode".into(),
        "no".into(),
        "--daemonize".into(),
        "no".into(),
    ]);
    args.extend(rest);
    args
}

/// Expands `$(VAR)` references as Kubernetes does in env values, command and args.
pub fn expand_vars(input: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) => {
                let name = &after[..j];
                match env.iter().rev().find(|(k, _)| k == name) {
                    Some((_, v)) => out.push_str(v),
                    None => {
                        out.push_str("$(");
                        out.push_str(name);
                        out.push(')');
                    }
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("$$(", "$(")
}

/// The limits of a container (requests are what the scheduler counts; limits are enforced).
pub fn container_limits(container: &Container) -> Limits {
    let limits = container.resources.as_ref().and_then(|r| r.limits.as_ref());
    Limits {
        cpu_millis: limits
            .and_then(|l| l.get("cpu"))
            .and_then(|q| quantity::cpu_millis(&q.0)),
        memory_bytes: limits
            .and_then(|l| l.get("memory"))
            .and_then(|q| quantity::memory_bytes(&q.0)),
    }
}

pub fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message: (!message.is_empty()).then(|| message.to_string()),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_like_kubernetes() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand_vars("x$(A)y", &env), "x1y");
        assert_eq!(expand_vars("$(B)", &env), "$(B)");
        assert_eq!(expand_vars("$(A", &env), "$(A");
    }
}
