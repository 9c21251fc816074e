//! CPU and memory limits on container processes: cgroup v1 (`cpu.cfs_quota_us`,
//! `memory.limit_in_bytes`) where the sandbox may write them, otherwise a polling equivalent
//! that throttles CPU by stopping and continuing the process and kills it on memory overrun.

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
#[error("cannot apply limits to process {pid} through {path}: {source}")]
pub struct LimitError {
    pid: u32,
    path: String,
    #[source]
    source: std::io::Error,
}

/// Limits applied to one running container; dropping it removes its cgroups or stops polling.
#[derive(Debug)]
pub struct Limiter {
    cgroups: Vec<PathBuf>,
    memory_cgroup: Option<PathBuf>,
    killed_for_memory: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Limiter {
    /// Puts `pid` under `limits`; `name` makes the cgroup directory unique (pod UID + container).
    pub fn apply(
        enforcement: &Enforcement,
        name: &str,
        pid: u32,
        limits: Limits,
    ) -> Result<Self, LimitError> {
        let mut limiter = Limiter {
            cgroups: Vec::new(),
            memory_cgroup: None,
            killed_for_memory: Arc::default(),
            stop: Arc::default(),
        };
        if limits.is_empty() {
            return Ok(limiter);
        }
        match enforcement {
            Enforcement::CgroupV1 { cpu, memory } => {
                let write = |path: PathBuf, value: String| {
                    std::fs::write(&path, value).map_err(|source| LimitError {
                        pid,
                        path: path.display().to_string(),
                        source,
                    })
                };
                let mkdir = |path: &Path| {
                    std::fs::create_dir_all(path).map_err(|source| LimitError {
                        pid,
                        path: path.display().to_string(),
                        source,
                    })
                };
                if let Some(millis) = limits.cpu_millis {
                    let dir = cpu.join(name);
                    mkdir(&dir)?;
                    limiter.cgroups.push(dir.clone());
                    write(dir.join("cpu.cfs_period_us"), CFS_PERIOD_US.to_string())?;
                    let quota = (millis * CFS_PERIOD_US / 1000).max(1000);
                    write(dir.join("cpu.cfs_quota_us"), quota.to_string())?;
                    write(dir.join("cgroup.procs"), pid.to_string())?;
                }
                if let Some(bytes) = limits.memory_bytes {
                    let dir = memory.join(name);
                    mkdir(&dir)?;
                    limiter.cgroups.push(dir.clone());
                    write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                    // Without swap accounting the limit would only push pages to swap.
                    let _ =
                        std::fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
                    let _ = std::fs::write(dir.join("memory.swappiness"), "0");
                    write(dir.join("cgroup.procs"), pid.to_string())?;
                    limiter.memory_cgroup = Some(dir);
                }
            }
            Enforcement::Polling => {
                let stop = limiter.stop.clone();
                let killed = limiter.killed_for_memory.clone();
                std::thread::Builder::new()
                    .name(format!("hk8s-limit-{pid}"))
                    .spawn(move || poll_limits(pid, limits, &stop, &killed))
                    .map_err(|source| LimitError {
                        pid,
                        path: "a polling thread".into(),
                        source,
                    })?;
            }
        }
        Ok(limiter)
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
        for dir in &self.cgroups {
            let _ = std::fs::remove_dir(dir);
        }
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
    use crate::kubelet::process::{ProcessSpec, spawn};

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
        };
        let process = spawn(&spec).await.unwrap();
        let name = format!("test-{}-{}", std::process::id(), process.pid);
        let limits = Limits {
            cpu_millis: Some(500),
            memory_bytes: Some(64 * 1024 * 1024),
        };
        let limiter = Limiter::apply(&enforcement, &name, process.pid, limits).unwrap();
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
        };
        let process = spawn(&spec).await.unwrap();
        let name = format!("busy-{}-{}", std::process::id(), process.pid);
        let limits = Limits {
            cpu_millis,
            memory_bytes: None,
        };
        let limiter = Limiter::apply(enforcement, &name, process.pid, limits).unwrap();
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
}
