//! One container's life: resolve its image, start the process with its limits, run its
//! probes, restart it with back-off, and keep its `containerStatuses` entry current.

use super::context::PodContext;
use super::namespaces::{ContainerView, image_user};
use super::probes::ProbeSpec;
use super::process::{Isolation, Process, ProcessSpec, spawn};
use crate::apimachinery::events::EventType;
use crate::apimachinery::quantity;
use crate::kubelet::cgroups::{Limiter, Limits};
use crate::kubelet::images::{ImageError, Program, ProgramKind};
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

/// How long a container that could not be pulled, created or started waits to retry.
const RETRY_PAUSE: Duration = Duration::from_secs(5);

/// What a step of a container's life leads to.
enum Next<T> {
    Go(T),
    /// Try again from the start (the failure is reported).
    Retry,
    /// The pod is being stopped.
    Stop,
}

/// What the kubelet remembers of a container's image pulls.
#[derive(Default)]
struct Pulls {
    /// Whether the image's presence has been announced (once, unless pulled Always).
    announced: bool,
    /// Failed pulls in a row, for the back-off.
    failures: u32,
}

/// A started container's process and what its end is reported with.
struct Running {
    process: Process,
    spec: ProcessSpec,
    limiter: Option<Limiter>,
    since: Instant,
    start_time: Time,
}

/// How a run ended, for the restart decision and the container's last state.
struct Ended {
    terminated: ContainerStateTerminated,
    ran_for: Duration,
}

/// What makes a container ephemeral (`kubectl debug`): it runs once, in the PID namespace
/// of its target container when it names one.
pub(super) struct Ephemeral {
    pub target: Option<String>,
}

/// Runs one container of a pod for as long as the pod runs.
pub(super) struct Supervisor {
    pub ctx: Arc<PodContext>,
    pub container: Container,
    /// `Some` for an ephemeral container.
    pub ephemeral: Option<Ephemeral>,
    pub shutdown: Shutdown,
}

impl Supervisor {
    fn object(&self) -> ObjectReference {
        let mut r = self.ctx.pod_ref.clone();
        let list = if self.ephemeral.is_some() {
            "ephemeralContainers"
        } else {
            "containers"
        };
        r.field_path = Some(format!("spec.{list}{{{}}}", self.container.name));
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

    /// Runs the container until the pod stops, restarting it as its restart policy says.
    pub async fn run(mut self) {
        let mut crashes: u32 = 0;
        let mut pulls = Pulls::default();
        if self.ephemeral.is_some()
            && let Err(message) = self.build_ephemeral_root().await
        {
            self.fail("CreateContainerError", &message).await;
            return;
        }
        loop {
            if self.shutdown.is_shutdown() {
                return;
            }
            let running = match self.start(&mut pulls).await {
                Next::Go(running) => running,
                Next::Retry => continue,
                Next::Stop => return,
            };
            let Some(ended) = self.supervise(running).await else {
                return;
            };
            if !self.restarts_after(&ended) {
                self.update(|s| {
                    s.state = Some(ContainerState {
                        terminated: Some(ended.terminated),
                        ..Default::default()
                    });
                    s.ready = false;
                    s.started = Some(false);
                });
                return;
            }
            if ended.ran_for > Duration::from_secs(600) {
                crashes = 0;
            }
            let delay = self.ctx.kubelet.backoff.delay(crashes);
            crashes += 1;
            if !self.back_off(ended.terminated, delay).await {
                return;
            }
        }
    }

    /// Resolves the image, builds the process and starts it with its limits; a failure is
    /// reported in the container's status and retried after a pause.
    async fn start(&mut self, pulls: &mut Pulls) -> Next<Running> {
        let program = match self.pull(pulls).await {
            Ok(p) => p,
            Err(pause) => return self.retry_after(pause).await,
        };
        let spec = match self.process_spec(&program) {
            Ok(spec) => spec,
            Err(message) if message.contains("non-root") => {
                return self.fail("CreateContainerConfigError", &message).await;
            }
            Err(message) => return self.fail("CreateContainerError", &message).await,
        };
        self.rotate_log();
        let mut spec = spec;
        let limiter = self.cgroups();
        spec.cgroup_procs = limiter
            .as_ref()
            .map(Limiter::cgroup_procs)
            .unwrap_or_default();
        let process = match spawn(&spec).await {
            Ok(p) => p,
            Err(e) => {
                let message = start_failure(&spec, &e);
                return self.fail("RunContainerError", &message).await;
            }
        };
        Next::Go(self.started(process, spec, limiter).await)
    }

    /// The image's program, with the events a kubelet writes for its pull policy;
    /// ErrImagePull, then ImagePullBackOff for a back-off, when it has none.
    async fn pull(&mut self, pulls: &mut Pulls) -> Result<Program, Duration> {
        let image = self.container.image.clone().unwrap_or_default();
        let always = self.container.image_pull_policy.as_deref() == Some("Always");
        let resolved = self.ctx.kubelet.images.resolve(&image);
        if always || resolved.is_err() || !pulls.announced {
            pulls.announced = true;
            self.pull_events(&image, always, resolved.as_ref().ok())
                .await;
        }
        match resolved {
            Ok(program) => {
                pulls.failures = 0;
                Ok(program)
            }
            Err(e) => {
                let message = match e {
                    ImageError::TagNotFound { .. } => e.to_string(),
                    _ => format!("hk8s sandbox: {e}"),
                };
                let delay = self.ctx.kubelet.backoff.delay(pulls.failures + 1);
                pulls.failures += 1;
                if self.pull_failed(&image, &message, delay).await {
                    Err(Duration::ZERO)
                } else {
                    Err(RETRY_PAUSE)
                }
            }
        }
    }

    /// `Pulling` and `Pulled` as the kubelet writes them: a present image is not pulled
    /// unless the policy is Always.
    async fn pull_events(&self, image: &str, always: bool, program: Option<&Program>) {
        let Some(program) = program else {
            let pulling = format!("Pulling image \"{image}\"");
            return self.event(EventType::Normal, "Pulling", &pulling).await;
        };
        if !always {
            let message = format!("Container image \"{image}\" already present on machine");
            return self.event(EventType::Normal, "Pulled", &message).await;
        }
        let pulling = format!("Pulling image \"{image}\"");
        self.event(EventType::Normal, "Pulling", &pulling).await;
        let size = std::fs::metadata(&program.path).map_or(0, |m| m.len());
        let pulled = format!(
            "Successfully pulled image \"{image}\" in 0s (0s including waiting). Image size: {size} bytes."
        );
        self.event(EventType::Normal, "Pulled", &pulled).await;
    }

    /// Reports a failed pull as the kubelet does: ErrImagePull, then ImagePullBackOff while
    /// it waits `delay` to retry; false when the pod stops meanwhile.
    async fn pull_failed(&mut self, image: &str, message: &str, delay: Duration) -> bool {
        self.update(|s| {
            s.state = Some(waiting("ErrImagePull", message));
            s.ready = false;
        });
        let failed = format!("Failed to pull image \"{image}\": {message}");
        self.event(EventType::Warning, "Failed", &failed).await;
        self.event(EventType::Warning, "Failed", "Error: ErrImagePull")
            .await;
        if !self.pause(Duration::from_secs(1)).await {
            return false;
        }
        let backoff = format!("Back-off pulling image \"{image}\"");
        let state = waiting(
            "ImagePullBackOff",
            &format!("{backoff}: ErrImagePull: {message}"),
        );
        self.update(|s| s.state = Some(state));
        self.event(EventType::Normal, "BackOff", &backoff).await;
        self.event(EventType::Warning, "Failed", "Error: ImagePullBackOff")
            .await;
        self.pause(delay).await
    }

    /// Reports a container that could not be created or started, and retries later.
    async fn fail(&mut self, reason: &str, message: &str) -> Next<Running> {
        self.update(|s| s.state = Some(waiting(reason, message)));
        self.event(EventType::Warning, "Failed", &format!("Error: {message}"))
            .await;
        self.retry_after(RETRY_PAUSE).await
    }

    async fn retry_after(&mut self, pause: Duration) -> Next<Running> {
        if self.pause(pause).await {
            Next::Retry
        } else {
            Next::Stop
        }
    }

    /// A restarted container's previous log is kept for `kubectl logs --previous`.
    fn rotate_log(&self) {
        let kubelet = &self.ctx.kubelet;
        let (ns, pod, name) = (&self.ctx.namespace, &self.ctx.name, &self.container.name);
        let log = crate::paths::container_log_path(&kubelet.state_dir, ns, pod, name);
        if log.exists() && self.status_restart_count() > 0 {
            let previous =
                crate::paths::previous_container_log_path(&kubelet.state_dir, ns, pod, name);
            let _ = std::fs::rename(&log, previous);
        }
    }

    /// A started process: registered for cleanup, limited, measured, reported Running.
    async fn started(
        &mut self,
        mut process: Process,
        spec: ProcessSpec,
        limiter: Option<Limiter>,
    ) -> Running {
        let name = self.container.name.clone();
        let pid = process.pid;
        let kubelet = self.ctx.kubelet.clone();
        kubelet.pids.add(pid);
        kubelet.containers.add(pid, &spec);
        super::attach::register(
            pid,
            &spec.log_path,
            process.stdin.take(),
            process.terminal.take(),
            self.container.stdin_once == Some(true),
        );
        if let Some(Err(e)) = limiter.as_ref().map(|l| l.watch(pid)) {
            tracing::warn!(pod = %self.ctx.name, container = %name, error = %e, "limits not applied");
        }
        let ctx = &self.ctx;
        kubelet
            .metrics
            .track(&ctx.namespace, &ctx.name, &ctx.uid, &name, pid);
        let start_time = Time(jiff::Timestamp::now());
        let has_readiness = self.container.readiness_probe.is_some();
        let has_startup = self.container.startup_probe.is_some();
        let running = ContainerStateRunning {
            started_at: Some(start_time.clone()),
        };
        self.update(|s| {
            s.state = Some(ContainerState {
                running: Some(running),
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
        Running {
            process,
            spec,
            limiter,
            since: Instant::now(),
            start_time,
        }
    }

    /// The container's cgroups, created before it starts so that it execs inside them;
    /// `None` (and a warning) where they cannot be made, and it runs without them.
    fn cgroups(&self) -> Option<Limiter> {
        let limits = container_limits(&self.container);
        let cgroup = format!("{}-{}", self.ctx.uid, self.container.name);
        Limiter::create(&self.ctx.kubelet.enforcement, &cgroup, limits)
            .inspect_err(|e| {
                tracing::warn!(pod = %self.ctx.name, container = %self.container.name, error = %e, "cgroups not set up");
            })
            .ok()
    }

    /// Probes the running container until it ends; `None` when the pod is being stopped.
    async fn supervise(&mut self, running: Running) -> Option<Ended> {
        let Running {
            process,
            spec,
            limiter,
            since,
            start_time,
        } = running;
        let pid = process.pid;
        let (started_tx, started_rx) = watch::channel(false);
        let readiness = self.spawn_readiness(&spec, started_rx);
        let outcome = self.watch_process(process, &spec, started_tx).await;
        readiness.abort();
        let ctx = &self.ctx;
        ctx.kubelet
            .metrics
            .untrack(&ctx.namespace, &ctx.name, &self.container.name);
        ctx.kubelet.pids.remove(pid);
        ctx.kubelet.containers.remove(pid);
        super::attach::unregister(pid);
        let (status, reason) = match outcome {
            Outcome::Stopped => return None,
            Outcome::LivenessFailed => (None, "Error"),
            Outcome::Exited(status) if limiter.as_ref().is_some_and(Limiter::oom_killed) => {
                (Some(status), "OOMKilled")
            }
            Outcome::Exited(status) if status.success() => (Some(status), "Completed"),
            Outcome::Exited(status) => (Some(status), "Error"),
        };
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
        Some(Ended {
            terminated,
            ran_for: since.elapsed(),
        })
    }

    /// The pod's restart policy applied to how the container ended.
    fn restarts_after(&self, ended: &Ended) -> bool {
        if self.ephemeral.is_some() {
            return false;
        }
        let policy = self
            .ctx
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always");
        match policy {
            "Never" => false,
            "OnFailure" => ended.terminated.exit_code != 0,
            _ => true,
        }
    }

    /// Records the ended run as the last state and waits out the back-off (CrashLoopBackOff);
    /// false when the pod is stopped meanwhile.
    async fn back_off(&mut self, terminated: ContainerStateTerminated, delay: Duration) -> bool {
        let name = self.container.name.clone();
        let (pod, ns, uid) = (&self.ctx.name, &self.ctx.namespace, &self.ctx.uid);
        let message = format!(
            "back-off {}s restarting failed container={name} pod={pod}_{ns}({uid})",
            delay.as_secs(),
        );
        let event = format!("Back-off restarting failed container {name} in pod {pod}_{ns}({uid})");
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
            self.event(EventType::Warning, "BackOff", &event).await;
        }
        self.pause(delay).await
    }

    fn status_restart_count(&self) -> i32 {
        self.ctx
            .container_status(&self.container.name)
            .map(|s| s.restart_count)
            .unwrap_or(0)
    }

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
            Ok(p) => Some(p.in_pod(
                self.ctx.namespaces.as_ref(),
                &self.container,
                &self.ctx.pod.spec.clone().unwrap_or_default(),
            )),
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

    /// Waits for the process to end, a startup or liveness probe to fail, or the pod to stop.
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
        let shutdown = self.shutdown.clone();
        tokio::select! {
            status = &mut process.exited => match status {
                Ok(s) => Outcome::Exited(s),
                Err(_) => Outcome::Exited(std::process::ExitStatus::from_raw(137 << 8)),
            },
            failed = self.probe(startup, liveness, started) => {
                let message = format!("Container {name} failed {failed} probe, will be restarted");
                self.event(EventType::Normal, "Killing", &message).await;
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

    /// The startup probe until it succeeds (then `started` is signalled), then the liveness
    /// probe forever; returns which probe failed.
    async fn probe(
        &self,
        startup: Option<ProbeSpec>,
        liveness: Option<ProbeSpec>,
        started: watch::Sender<bool>,
    ) -> &'static str {
        if let Some(probe) = startup {
            if !self.until_started(&probe).await {
                return "startup";
            }
            self.update(|s| s.started = Some(true));
        }
        let _ = started.send(true);
        match liveness {
            Some(probe) => self.until_dead(&probe).await,
            None => std::future::pending().await,
        }
    }

    /// Runs the startup probe until it succeeds (true) or fails its threshold (false).
    async fn until_started(&self, probe: &ProbeSpec) -> bool {
        tokio::time::sleep(probe.initial_delay).await;
        let mut failures = 0;
        while let Err(message) = probe.run_once().await {
            failures += 1;
            let event = format!("Startup probe failed: {message}");
            self.event(EventType::Warning, "Unhealthy", &event).await;
            if failures >= probe.failure_threshold {
                return false;
            }
            tokio::time::sleep(probe.period).await;
        }
        true
    }

    /// Runs the liveness probe until it fails its threshold in a row.
    async fn until_dead(&self, probe: &ProbeSpec) -> &'static str {
        tokio::time::sleep(probe.initial_delay).await;
        let mut failures = 0;
        loop {
            match probe.run_once().await {
                Ok(()) => failures = 0,
                Err(message) => {
                    failures += 1;
                    let event = format!("Liveness probe failed: {message}");
                    self.event(EventType::Warning, "Unhealthy", &event).await;
                    if failures >= probe.failure_threshold {
                        return "liveness";
                    }
                }
            }
            tokio::time::sleep(probe.period).await;
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
                Ok(p) => p.in_pod(
                    ctx.namespaces.as_ref(),
                    &container,
                    &ctx.pod.spec.clone().unwrap_or_default(),
                ),
                Err(e) => {
                    tracing::warn!(container = %container.name, error = %e, "readiness probe unusable");
                    return;
                }
            };
            readiness_loop(&ctx, &container.name, &probe).await;
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
        let argv = program.argv(command, args)?;
        let (first, rest) = argv.split_first().expect("argv is never empty");
        let path = if program.is_main(first) {
            program.path.clone()
        } else {
            ctx.kubelet
                .images
                .find_program(first)
                .ok_or_else(|| format!("exec: {first:?}: executable file not found in $PATH"))?
        };
        let mut argv = rest.to_vec();
        if program.kind == ProgramKind::Redis && program.is_main(first) {
            argv = redis_args(argv, ctx, &self.container);
        }
        let default_user = image_user(&path);
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
            cgroup_procs: Vec::new(),
            stdin: self.container.stdin == Some(true),
            tty: self.container.tty == Some(true),
            isolation: match &ctx.namespaces {
                None => Isolation::Host,
                Some(namespaces) => {
                    let mut container = ContainerView::of(
                        &self.container,
                        &ctx.pod.spec.clone().unwrap_or_default(),
                        default_user,
                    )?;
                    container.pid_of = self.target_pid()?;
                    Isolation::Join {
                        namespaces: namespaces.clone(),
                        container,
                    }
                }
            },
        })
    }

    /// The host pid of the running target of an ephemeral container, whose PID namespace
    /// it joins.
    fn target_pid(&self) -> Result<Option<u32>, String> {
        let Some(target) = self.ephemeral.as_ref().and_then(|e| e.target.as_deref()) else {
            return Ok(None);
        };
        let status = self.ctx.container_status(target);
        let running = status.as_ref().and_then(|s| {
            s.state.as_ref()?.running.as_ref()?;
            s.container_id
                .as_deref()?
                .strip_prefix("hk8s://")?
                .parse()
                .ok()
        });
        match running {
            Some(pid) => Ok(Some(pid)),
            None => Err(format!("target container {target:?} is not running")),
        }
    }

    /// An ephemeral container's root, built in the pod's mount namespace as the pod's
    /// containers' are when the pod starts.
    async fn build_ephemeral_root(&self) -> Result<(), String> {
        let Some(namespaces) = &self.ctx.namespaces else {
            return Ok(());
        };
        super::infra::build_root(
            &self.ctx.kubelet,
            namespaces,
            &self.ctx.scratch_dir(),
            &self.container,
            &self.ctx.volumes,
        )
        .await
    }
}

/// Runs a readiness probe for as long as the container runs: Ready after `successThreshold`
/// successes, not Ready after `failureThreshold` failures, with at most one Unhealthy event
/// per period.
async fn readiness_loop(ctx: &PodContext, container: &str, probe: &ProbeSpec) {
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
                    ctx.update_container(container, |s| s.ready = true);
                }
            }
            Err(_) if last_event.is_some_and(|t| t.elapsed() < probe.period) => {
                successes = 0;
                failures += 1;
            }
            Err(message) => {
                successes = 0;
                failures += 1;
                last_event = Some(Instant::now());
                let mut r = ctx.pod_ref.clone();
                r.field_path = Some(format!("spec.containers{{{container}}}"));
                let event = format!("Readiness probe failed: {message}");
                ctx.kubelet
                    .recorder
                    .publish(&r, EventType::Warning, "Unhealthy", &event)
                    .await;
                if ready && failures >= probe.failure_threshold {
                    ready = false;
                    ctx.update_container(container, |s| s.ready = false);
                }
            }
        }
        tokio::time::sleep(next_probe(ever_ready, probe.period)).await;
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
    let dir = match ctx.namespaces {
        // The pod's /data: its volume, or the image's anonymous volume (see infra.rs).
        Some(_) => PathBuf::from("/data"),
        None => {
            let dir = ctx
                .volume_for_mount(container, Some("/data"))
                .unwrap_or_else(|| ctx.scratch_dir().join(format!("{}-data", container.name)));
            let _ = std::fs::create_dir_all(&dir);
            dir
        }
    };
    let (config_file, rest): (Vec<String>, Vec<String>) = match user.first() {
        Some(first) if !first.starts_with('-') => (vec![first.clone()], user[1..].to_vec()),
        _ => (Vec::new(), user),
    };
    let mut args = config_file;
    // With a network of its own the pod binds every address, as the official image does.
    let bind = match ctx.namespaces {
        Some(_) => "0.0.0.0".to_string(),
        None => ctx.ip.to_string(),
    };
    args.extend([
        "--bind".to_string(),
        bind,
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

/// A Waiting container state, as `kubectl get pods` shows its reason.
pub fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message: (!message.is_empty()).then(|| message.to_string()),
        }),
        ..Default::default()
    }
}

/// Why a container's process did not start, and for a refused program what to change.
fn start_failure(spec: &ProcessSpec, err: &std::io::Error) -> String {
    let program = spec.program.display();
    let user = match &spec.isolation {
        Isolation::Join { container, .. } => container.user,
        _ => None,
    };
    match user {
        Some((uid, gid)) if err.kind() == std::io::ErrorKind::PermissionDenied => format!(
            "failed to start {program}: permission denied for user {uid} (group {gid}), the \
             container's runAsUser or the image's user: the program file must be executable by \
             that user (e.g. `chmod o+rx {program}`), or set runAsUser to its owner"
        ),
        _ => format!("failed to start {program}: {err}"),
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
