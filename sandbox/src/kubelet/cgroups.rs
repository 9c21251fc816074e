//! CPU and memory limits on container processes: cgroup v1 (`cpu.cfs_quota_us`,
//! `memory.limit_in_bytes`) where the sandbox may write them, otherwise a polling equivalent
//! that throttles CPU by stopping and continuing the process and kills it on memory overrun;
//! and a cgroup per container (v2 `cgroup.kill`, or a v1 freezer) that every process it
//! starts stays in, so all of them can be killed at once.

use crate::kubelet::process::{proc_stat_fields, signal_group};
use nix::sys::signal::Signal;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const CFS_PERIOD_US: u64 = 100_000;
const CPU_ROOT: &str = "/sys/fs/cgroup/cpu";
const MEMORY_ROOT: &str = "/sys/fs/cgroup/memory";

/// How limits are enforced on this machine; `hk8s sandbox status` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforcement {
    /// cgroup v1 directories the sandbox created under its own cgroups.
    CgroupV1 { cpu: PathBuf, memory: PathBuf },
    /// No writable cgroups: CPU duty-cycled with SIGSTOP/SIGCONT, memory checked by RSS.
    Polling,
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Enforcement::CgroupV1 { .. } => write!(
                f,
                "cgroup v1 (cpu.cfs_quota_us throttles CPU, memory.limit_in_bytes OOM-kills)"
            ),
            Enforcement::Polling => write!(
                f,
                "process polling (no writable cgroups: CPU throttled by SIGSTOP/SIGCONT duty \
                 cycles, memory overrun killed by RSS checks every 100 ms)"
            ),
        }
    }
}

/// The cgroup path this process belongs to in a v1 hierarchy (e.g. `memory`), from /proc.
fn own_cgroup(controller: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| path.to_string())
    })
}

/// Finds writable cgroup v1 cpu and memory hierarchies (nested under the sandbox's own
/// cgroups so outer limits still apply), else falls back to polling.
pub fn detect() -> Enforcement {
    let dir = |root: &str, controller: &str| -> Option<PathBuf> {
        let own = own_cgroup(controller)?;
        let base = Path::new(root)
            .join(own.trim_start_matches('/'))
            .join("hk8s");
        std::fs::create_dir_all(&base).ok()?;
        let probe = base.join(format!("probe-{}", std::process::id()));
        std::fs::create_dir(&probe).ok()?;
        let ok = probe.join("cgroup.procs").exists();
        let _ = std::fs::remove_dir(&probe);
        ok.then_some(base)
    };
    match (dir(CPU_ROOT, "cpu"), dir(MEMORY_ROOT, "memory")) {
        (Some(cpu), Some(memory)) => Enforcement::CgroupV1 { cpu, memory },
        _ => Enforcement::Polling,
    }
}

/// A container's limits: CPU in millicores, memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub cpu_millis: Option<u64>,
    pub memory_bytes: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.cpu_millis.is_none() && self.memory_bytes.is_none()
    }
}

/// Why limits could not be applied to a container (it then runs without them).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the cgroups of container {name} at {path}: {source}")]
pub struct LimitError {
    name: String,
    path: String,
    #[source]
    source: std::io::Error,
}

/// Limits applied to one running container, and the cgroup that holds all its processes;
/// dropping it kills what is left in them and removes its cgroups (or stops polling).
#[derive(Debug)]
pub struct Limiter {
    cgroups: Vec<PathBuf>,
    memory_cgroup: Option<PathBuf>,
    kill_group: Option<KillGroup>,
    limits: Limits,
    polling: bool,
    killed_for_memory: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Limiter {
    /// Creates the cgroups of a container before it starts: one to kill all its processes
    /// at once (where the machine has one, see [`kill_support`]) and, for its `limits`,
    /// cgroup v1 cpu and memory ones; `name` makes them unique (pod UID + container).
    pub fn create(
        enforcement: &Enforcement,
        name: &str,
        limits: Limits,
    ) -> Result<Self, LimitError> {
        let mut limiter = Limiter {
            cgroups: Vec::new(),
            memory_cgroup: None,
            kill_group: None,
            limits,
            polling: false,
            killed_for_memory: Arc::default(),
            stop: Arc::default(),
        };
        let fail = |path: &Path, source| LimitError {
            name: name.to_string(),
            path: path.display().to_string(),
            source,
        };
        let write = |path: PathBuf, value: String| {
            std::fs::write(&path, value).map_err(|source| fail(&path, source))
        };
        let mkdir = |limiter: &mut Limiter, base: &Path| {
            let dir = base.join(name);
            std::fs::create_dir_all(&dir).map_err(|source| fail(&dir, source))?;
            limiter.cgroups.push(dir.clone());
            Ok::<_, LimitError>(dir)
        };
        if let Some(support) = kill_support() {
            let dir = mkdir(&mut limiter, support.base())?;
            limiter.kill_group = Some(support.at(dir));
        }
        match enforcement {
            Enforcement::CgroupV1 { cpu, memory } if !limits.is_empty() => {
                if let Some(millis) = limits.cpu_millis {
                    let dir = mkdir(&mut limiter, cpu)?;
                    write(dir.join("cpu.cfs_period_us"), CFS_PERIOD_US.to_string())?;
                    let quota = (millis * CFS_PERIOD_US / 1000).max(1000);
                    write(dir.join("cpu.cfs_quota_us"), quota.to_string())?;
                }
                if let Some(bytes) = limits.memory_bytes {
                    let dir = mkdir(&mut limiter, memory)?;
                    write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                    // Without swap accounting the limit would only push pages to swap.
                    let _ =
                        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
                    let _ = std::fs::write(dir.join("memory.swappiness"), "0");
                    limiter.memory_cgroup = Some(dir);
                }
            }
            Enforcement::CgroupV1 { .. } => {}
            Enforcement::Polling => limiter.polling = !limits.is_empty(),
        }
        Ok(limiter)
    }

    /// The `cgroup.procs` files the container's process enters before it execs.
    pub fn cgroup_procs(&self) -> Vec<PathBuf> {
        self.cgroups
            .iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// Starts enforcing the limits on the started process `pid` where no cgroup does.
    pub fn watch(&self, pid: u32) -> Result<(), LimitError> {
        if !self.polling {
            return Ok(());
        }
        let (stop, killed, limits) = (
            self.stop.clone(),
            self.killed_for_memory.clone(),
            self.limits,
        );
        std::thread::Builder::new()
            .name(format!("hk8s-limit-{pid}"))
            .spawn(move || poll_limits(pid, limits, &stop, &killed))
            .map(drop)
            .map_err(|source| LimitError {
                name: pid.to_string(),
                path: "a polling thread".into(),
                source,
            })
    }

    /// SIGKILLs every process left in the container's cgroup (`setsid` and double-forked
    /// descendants included), as runc does when a container ends; `false` without one.
    pub fn kill_all(&self) -> bool {
        self.kill_group.as_ref().is_some_and(KillGroup::kill)
    }

    /// Whether the process was killed for exceeding its memory limit.
    pub fn oom_killed(&self) -> bool {
        if self.killed_for_memory.load(Ordering::SeqCst) {
            return true;
        }
        self.memory_cgroup.as_ref().is_some_and(|dir| {
            std::fs::read_to_string(dir.join("memory.oom_control")).is_ok_and(|text| {
                text.lines().any(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .unwrap_or(0)
                        > 0
                })
            })
        })
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.kill_all();
        for dir in &self.cgroups {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Where all processes of a container can be killed at once: cgroup v2's `cgroup.kill`
/// (on a v2 or hybrid machine), else a cgroup v1 freezer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillSupport {
    /// cgroup v2 directories under this one.
    CgroupKill(PathBuf),
    /// cgroup v1 freezer directories under this one: freeze, SIGKILL each, thaw.
    Freezer(PathBuf),
}

impl KillSupport {
    fn base(&self) -> &Path {
        match self {
            KillSupport::CgroupKill(base) | KillSupport::Freezer(base) => base,
        }
    }

    fn at(&self, dir: PathBuf) -> KillGroup {
        match self {
            KillSupport::CgroupKill(_) => KillGroup::CgroupKill(dir),
            KillSupport::Freezer(_) => KillGroup::Freezer(dir),
        }
    }
}

impl fmt::Display for KillSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KillSupport::CgroupKill(_) => write!(f, "cgroup v2 cgroup.kill"),
            KillSupport::Freezer(_) => write!(f, "cgroup v1 freezer"),
        }
    }
}

/// This machine's [`KillSupport`], found once; `None` without writable cgroups (not root).
pub fn kill_support() -> Option<&'static KillSupport> {
    static SUPPORT: std::sync::OnceLock<Option<KillSupport>> = std::sync::OnceLock::new();
    SUPPORT.get_or_init(detect_kill_support).as_ref()
}

fn detect_kill_support() -> Option<KillSupport> {
    let usable = |base: PathBuf, file: &str| -> Option<PathBuf> {
        std::fs::create_dir_all(&base).ok()?;
        let probe = base.join(format!("probe-{}", std::process::id()));
        std::fs::create_dir(&probe).ok()?;
        let ok = probe.join(file).exists();
        let _ = std::fs::remove_dir(&probe);
        ok.then_some(base)
    };
    let unified = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .find(|root| Path::new(root).join("cgroup.controllers").exists());
    if let (Some(root), Some(own)) = (unified, own_cgroup_v2()) {
        let base = Path::new(root)
            .join(own.trim_start_matches('/'))
            .join("hk8s");
        if let Some(base) = usable(base, "cgroup.kill") {
            return Some(KillSupport::CgroupKill(base));
        }
    }
    let own = own_cgroup("freezer")?;
    let base = Path::new("/sys/fs/cgroup/freezer")
        .join(own.trim_start_matches('/'))
        .join("hk8s");
    usable(base, "freezer.state").map(KillSupport::Freezer)
}

/// This process's cgroup v2 path (the `0::` line of /proc/self/cgroup).
fn own_cgroup_v2() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("0::").map(str::to_string))
}

/// One container's kill cgroup.
#[derive(Debug)]
enum KillGroup {
    CgroupKill(PathBuf),
    Freezer(PathBuf),
}

impl KillGroup {
    fn dir(&self) -> &Path {
        match self {
            KillGroup::CgroupKill(dir) | KillGroup::Freezer(dir) => dir,
        }
    }

    fn members(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir().join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Kills every member and waits (up to 2 s) until the cgroup is empty.
    fn kill(&self) -> bool {
        for _ in 0..200 {
            let members = self.members();
            if members.is_empty() {
                return true;
            }
            match self {
                KillGroup::CgroupKill(dir) => {
                    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
                }
                KillGroup::Freezer(dir) => {
                    let state = dir.join("freezer.state");
                    let _ = std::fs::write(&state, "FROZEN");
                    for pid in self.members() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            Signal::SIGKILL,
                        );
                    }
                    let _ = std::fs::write(&state, "THAWED");
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

/// CPU time (user + system) of a process in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let fields = proc_stat_fields(pid)?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of a process in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Clock ticks per second of /proc CPU times (USER_HZ, 100 on Linux).
pub const TICKS_PER_SECOND: u64 = 100;

fn poll_limits(pid: u32, limits: Limits, stop: &AtomicBool, killed: &AtomicBool) {
    let window = Duration::from_millis(100);
    let mut last = cpu_ticks(pid);
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(window);
        if let Some(max) = limits.memory_bytes
            && rss_bytes(pid).is_some_and(|rss| rss > max)
        {
            killed.store(true, Ordering::SeqCst);
            signal_group(pid, Signal::SIGKILL);
            return;
        }
        let Some(now) = cpu_ticks(pid) else { return };
        if let (Some(millis), Some(before)) = (limits.cpu_millis, last) {
            let used_ms = (now.saturating_sub(before)) * 1000 / TICKS_PER_SECOND;
            let wall_needed_ms = used_ms * 1000 / millis.max(1);
            let pause = wall_needed_ms
                .saturating_sub(window.as_millis() as u64)
                .min(2000);
            if pause > 0 {
                signal_group(pid, Signal::SIGSTOP);
                std::thread::sleep(Duration::from_millis(pause));
                signal_group(pid, Signal::SIGCONT);
            }
        }
        last = cpu_ticks(pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::process::{Process, ProcessSpec, spawn};

    /// Creates the cgroups first and starts the process inside them, as the kubelet does.
    async fn spawn_limited(
        enforcement: &Enforcement,
        tag: &str,
        mut spec: ProcessSpec,
        limits: Limits,
    ) -> (Process, Limiter) {
        let name = format!("{tag}-{}-{}", std::process::id(), rand::random::<u32>());
        let limiter = Limiter::create(enforcement, &name, limits).unwrap();
        spec.cgroup_procs = limiter.cgroup_procs();
        let process = spawn(&spec).await.unwrap();
        limiter.watch(process.pid).unwrap();
        (process, limiter)
    }

    async fn memory_hog_is_oom_killed(enforcement: Enforcement) {
        let dir = tempfile::tempdir().unwrap();
        let spec = ProcessSpec {
            program: "/usr/bin/env".into(),
            args: [
                "python3",
                "-c",
                "import time\na = bytearray(300 * 1024 * 1024)\ntime.sleep(30)",
            ]
            .map(String::from)
            .to_vec(),
            env: vec![("PATH".into(), std::env::var("PATH").unwrap_or_default())],
            cwd: None,
            log_path: dir.path().join("hog.log"),
            isolation: Default::default(),
            cgroup_procs: Vec::new(),
            stdin: false,
            tty: false,
        };
        let limits = Limits {
            cpu_millis: Some(500),
            memory_bytes: Some(64 * 1024 * 1024),
        };
        let (process, limiter) = spawn_limited(&enforcement, "test", spec, limits).await;
        let status = tokio::time::timeout(Duration::from_secs(20), process.exited)
            .await
            .expect("a process allocating 300 MiB under a 64 MiB limit was not killed")
            .unwrap();
        assert!(!status.success());
        assert!(limiter.oom_killed(), "the kill was not recognised as OOM");
    }

    /// CPU ticks a busy loop gets in `wall` under `limits` (none: unthrottled).
    async fn busy_ticks(enforcement: &Enforcement, cpu_millis: Option<u64>, wall: Duration) -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let spec = ProcessSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "while :; do :; done".into()],
            env: vec![],
            cwd: None,
            log_path: dir.path().join("busy.log"),
            isolation: Default::default(),
            cgroup_procs: Vec::new(),
            stdin: false,
            tty: false,
        };
        let limits = Limits {
            cpu_millis,
            memory_bytes: None,
        };
        let (process, limiter) = spawn_limited(enforcement, "busy", spec, limits).await;
        let before = cpu_ticks(process.pid).unwrap_or(0);
        tokio::time::sleep(wall).await;
        let used = cpu_ticks(process.pid).unwrap_or(0) - before;
        process.signal(Signal::SIGKILL);
        let _ = process.exited.await;
        drop(limiter);
        used
    }

    async fn cpu_limit_throttles(enforcement: Enforcement) {
        let wall = Duration::from_millis(1500);
        let free = busy_ticks(&enforcement, None, wall).await;
        let limited = busy_ticks(&enforcement, Some(20), wall).await;
        assert!(
            limited * 3 < free,
            "{enforcement}: 20m got {limited} ticks, unlimited {free}"
        );
    }

    #[tokio::test]
    async fn polling_enforcement_throttles_cpu() {
        cpu_limit_throttles(Enforcement::Polling).await;
    }

    #[tokio::test]
    async fn cgroup_enforcement_throttles_cpu_where_available() {
        cpu_limit_throttles(detect()).await;
    }

    #[tokio::test]
    async fn polling_enforcement_kills_memory_overrun() {
        memory_hog_is_oom_killed(Enforcement::Polling).await;
    }

    #[tokio::test]
    async fn cgroup_enforcement_kills_memory_overrun_where_available() {
        let enforcement = detect();
        if let Enforcement::CgroupV1 { cpu, .. } = &enforcement {
            assert!(cpu.exists());
        }
        memory_hog_is_oom_killed(enforcement).await;
    }

    #[tokio::test]
    async fn a_container_is_in_its_cgroup_from_its_first_instruction_and_dies_whole() {
        let Some(support) = kill_support() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild.pid");
        let spec = ProcessSpec {
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                format!(
                    "cat /proc/self/cgroup; (setsid sh -c 'echo $$ > {}; exec sleep 1000' &); sleep 1000",
                    marker.display()
                ),
            ],
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: None,
            log_path: dir.path().join("c.log"),
            isolation: Default::default(),
            cgroup_procs: Vec::new(),
            stdin: false,
            tty: false,
        };
        let (mut process, limiter) =
            spawn_limited(&Enforcement::Polling, "kill", spec, Limits::default()).await;
        let grandchild = loop {
            if let Ok(text) = std::fs::read_to_string(&marker)
                && let Ok(pid) = text.trim().parse::<u32>()
            {
                break pid;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let log = std::fs::read_to_string(dir.path().join("c.log")).unwrap();
        let dir_name = limiter.cgroups[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(
            log.contains(&dir_name),
            "{support}: the first read of /proc/self/cgroup: {log}"
        );
        process.signal(Signal::SIGKILL);
        let _ = (&mut process.exited).await;
        assert!(
            process_start_time_alive(grandchild),
            "the setsid grandchild should survive its parent's group kill"
        );
        drop(limiter);
        assert!(
            !process_start_time_alive(grandchild),
            "{support}: the setsid grandchild outlived its container"
        );
    }

    fn process_start_time_alive(pid: u32) -> bool {
        proc_stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z"))
    }
}
