//! Container processes: spawned so that none outlives the sandbox, each in its own process
//! group, output appended to a log file, and recorded in a pid registry so leftovers from a
//! crashed sandbox are killed at the next start.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use tokio::sync::oneshot;

/// What to run for one container instance.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub log_path: PathBuf,
    pub isolation: Isolation,
    /// `cgroup.procs` files of the cgroups the process enters before it execs.
    pub cgroup_procs: Vec<PathBuf>,
    /// Whether its stdin is a pipe the kubelet keeps open (`stdin: true`), else /dev/null.
    pub stdin: bool,
    /// Whether it runs on a terminal (`tty: true`) whose output the kubelet copies to the log.
    pub tty: bool,
}

/// Which namespaces a process runs in.
#[derive(Debug, Clone, Default)]
pub enum Isolation {
    /// The sandbox's own (process mode).
    #[default]
    Host,
    /// New network, UTS and IPC namespaces with this host name: a pod's infra process.
    NewPod { hostname: String },
    /// A running pod's namespaces, and the container whose root, working directory and
    /// user the process gets.
    Join {
        namespaces: super::namespaces::PodNamespaces,
        container: super::namespaces::ContainerView,
    },
}

/// A started process; `exited` resolves when it ends. `pid` is the program's (below the
/// shim and init of its PID namespace, if it has one).
#[derive(Debug)]
pub struct Process {
    pub pid: u32,
    pub exited: oneshot::Receiver<ExitStatus>,
    /// The write end of its stdin, when the spec asked for one (its terminal with `tty`).
    pub stdin: Option<std::fs::File>,
    /// The master side of its terminal, for resizes.
    pub terminal: Option<std::os::fd::OwnedFd>,
}

impl Process {
    /// Sends `signal` to the whole process group of the container.
    pub fn signal(&self, signal: Signal) {
        signal_group(self.pid, signal);
    }
}

/// Sends a signal to a process group, ignoring groups that are already gone.
pub fn signal_group(pid: u32, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

struct SpawnRequest {
    command: Command,
    /// Forks between the spawned process and the program (see `pidns`).
    depth: usize,
    reply: oneshot::Sender<io::Result<Process>>,
}

/// All container processes are forked by one long-lived thread: `PR_SET_PDEATHSIG` fires when
/// the *thread* that forked a child ends, so forking from short-lived runtime threads would
/// kill containers at random; this thread lives as long as the sandbox process.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("hk8s-spawner".into())
            .spawn(move || {
                for SpawnRequest {
                    mut command,
                    depth,
                    reply,
                } in rx
                {
                    let result = command.spawn().map(|mut child| {
                        let shim = child.id();
                        let pid = super::pidns::program_pid(shim, depth).unwrap_or(shim);
                        let stdin = child
                            .stdin
                            .take()
                            .map(|s| std::fs::File::from(std::os::fd::OwnedFd::from(s)));
                        let (tx, exited) = oneshot::channel();
                        let _ = std::thread::Builder::new()
                            .name(format!("hk8s-wait-{shim}"))
                            .spawn(move || {
                                if let Ok(status) = child.wait() {
                                    let _ = tx.send(status);
                                }
                            });
                        Process {
                            pid,
                            exited,
                            stdin,
                            terminal: None,
                        }
                    });
                    let _ = reply.send(result);
                }
            })
            .expect("spawning the process-spawner thread");
        Mutex::new(tx)
    })
}

/// Starts a container process; its output is appended to `spec.log_path`.
pub async fn spawn(spec: &ProcessSpec) -> io::Result<Process> {
    if let Some(dir) = spec.log_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_path)?;
    let mut command = match &spec.isolation {
        Isolation::Join { container, .. } => command_as(&spec.program, container)?,
        _ => Command::new(&spec.program),
    };
    command
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    let master = if spec.tty {
        let pty = nix::pty::openpty(None, None).map_err(io::Error::from)?;
        command
            .stdin(Stdio::from(pty.slave.try_clone()?))
            .stdout(Stdio::from(pty.slave.try_clone()?))
            .stderr(Stdio::from(pty.slave));
        Some(pty.master)
    } else {
        command
            .stdin(if spec.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?);
        None
    };
    if let (Some(cwd), Isolation::Host | Isolation::NewPod { .. }) = (&spec.cwd, &spec.isolation) {
        command.current_dir(cwd);
    }
    die_with_parent(&mut command);
    enter_cgroups(&mut command, &spec.cgroup_procs)?;
    let depth = match &spec.isolation {
        Isolation::Host => 0,
        Isolation::NewPod { hostname } => {
            super::namespaces::create(&mut command, hostname);
            super::pidns::depth(true)
        }
        Isolation::Join {
            namespaces,
            container,
        } => {
            namespaces.join(&mut command, Some(container))?;
            super::pidns::depth(container.new_pid_namespace())
        }
    };
    if master.is_some() {
        take_terminal(&mut command);
    }
    let (reply, rx) = oneshot::channel();
    spawner()
        .lock()
        .map_err(|_| io::Error::other("process spawner poisoned"))?
        .send(SpawnRequest {
            command,
            depth,
            reply,
        })
        .map_err(|_| io::Error::other("process spawner stopped"))?;
    let mut process = rx
        .await
        .map_err(|_| io::Error::other("process spawner dropped the request"))??;
    if let Some(master) = master {
        copy_terminal(master.try_clone()?, log);
        if spec.stdin {
            process.stdin = Some(std::fs::File::from(master.try_clone()?));
        }
        process.terminal = Some(master);
    }
    Ok(process)
}

/// A command for `program` run as `container`'s user: through [`by_descriptor`] when that
/// user cannot reach it by its path.
pub(super) fn command_as(
    program: &Path,
    container: &super::namespaces::ContainerView,
) -> io::Result<Command> {
    let another_user = container
        .user
        .is_some_and(|(uid, _)| uid != nix::unistd::geteuid().as_raw());
    if another_user && super::namespaces::closed_to_others(program).is_some() {
        by_descriptor(program)
    } else {
        Ok(Command::new(program))
    }
}

/// A command that runs `program` through a descriptor the sandbox opened, at
/// `/proc/self/fd/N`: a container's user can then run a mapped program that lies under a
/// directory closed to it (a checkout in a 0700 home), as a runtime runs an image's files
/// whatever the host's directories are. Its own permissions still apply.
#[allow(unsafe_code)]
fn by_descriptor(program: &Path) -> io::Result<Command> {
    use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = nix::fcntl::open(
        program,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(io::Error::from)?;
    let mut command = Command::new(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    command.arg0(program);
    // SAFETY: one fcntl on a descriptor opened before the fork: a script's interpreter
    // then opens the script through it; nothing is allocated.
    unsafe {
        command.pre_exec(move || {
            fcntl(&fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
            Ok(())
        });
    }
    Ok(command)
}

/// Makes the program's terminal its controlling terminal (it leads a session already).
#[allow(unsafe_code)]
fn take_terminal(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: one ioctl on stdin between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Appends what a container writes on its terminal to its log, until the terminal closes.
fn copy_terminal(master: std::os::fd::OwnedFd, mut log: std::fs::File) {
    let mut master = std::fs::File::from(master);
    let _ = std::thread::Builder::new()
        .name("hk8s-tty-log".into())
        .spawn(move || {
            let _ = io::copy(&mut master, &mut log);
        });
}

/// Makes the child enter the cgroups whose `cgroup.procs` files are given before it execs
/// (or forks), so the program and all it starts are in them from its first instruction.
#[allow(unsafe_code)]
fn enter_cgroups(command: &mut Command, procs: &[PathBuf]) -> io::Result<()> {
    use std::os::unix::process::CommandExt;
    if procs.is_empty() {
        return Ok(());
    }
    let files = procs
        .iter()
        .map(|p| std::fs::OpenOptions::new().write(true).open(p))
        .collect::<io::Result<Vec<_>>>()?;
    // SAFETY: the closure only writes to descriptors opened before the fork (write is
    // async-signal-safe); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            for file in &files {
                nix::unistd::write(file, b"0")?;
            }
            Ok(())
        });
    }
    Ok(())
}

/// Makes the child lead its own session and process group, and asks the kernel to SIGKILL it when the
/// sandbox dies, even by SIGKILL.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (setsid, prctl, getppid, kill); it allocates nothing and takes no locks.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid()?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            if nix::unistd::getppid().as_raw() as u32 != parent {
                // The sandbox died between fork and prctl: do not run orphaned.
                let _ = nix::sys::signal::raise(Signal::SIGKILL);
            }
            Ok(())
        });
    }
}

/// The kernel's start time of a process (field 22 of `/proc/<pid>/stat`), which tells a
/// recorded pid apart from an unrelated process that reused the number.
pub fn process_start_time(pid: u32) -> Option<u64> {
    proc_stat_fields(pid)?.get(19)?.parse().ok()
}

/// Fields of `/proc/<pid>/stat` after the command name (field 3 onwards).
pub fn proc_stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The processes the kubelet started, persisted so a crashed sandbox's leftovers are found.
#[derive(Debug, Clone)]
pub struct PidRegistry {
    path: PathBuf,
    pids: Arc<Mutex<HashMap<u32, u64>>>,
}

impl PidRegistry {
    /// Opens the registry, killing every recorded process (group) that is still alive.
    pub fn open(path: &Path) -> io::Result<(Self, usize)> {
        let mut killed = 0;
        if let Ok(text) = std::fs::read_to_string(path) {
            for line in text.lines() {
                let mut parts = line.split_whitespace();
                let (Some(Ok(pid)), Some(Ok(start))) = (
                    parts.next().map(str::parse::<u32>),
                    parts.next().map(str::parse::<u64>),
                ) else {
                    continue;
                };
                if process_start_time(pid) == Some(start) {
                    signal_group(pid, Signal::SIGKILL);
                    if let Ok(raw) = i32::try_from(pid) {
                        let _ = nix::sys::signal::kill(Pid::from_raw(raw), Signal::SIGKILL);
                    }
                    killed += 1;
                }
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let registry = Self {
            path: path.to_path_buf(),
            pids: Arc::default(),
        };
        registry.save()?;
        Ok((registry, killed))
    }

    /// Records a started process, so a later run can kill it if this one crashes.
    pub fn add(&self, pid: u32) {
        if let Some(start) = process_start_time(pid) {
            self.pids
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(pid, start);
            let _ = self.save();
        }
    }

    /// Forgets a process that ended.
    pub fn remove(&self, pid: u32) {
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
        let _ = self.save();
    }

    /// SIGKILLs every recorded process group (for a kubelet dropped without shutdown).
    pub fn kill_all(&self) {
        let pids: Vec<u32> = self
            .pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect();
        for pid in pids {
            if process_start_time(pid).is_some() {
                signal_group(pid, Signal::SIGKILL);
            }
        }
    }

    fn save(&self) -> io::Result<()> {
        let text: String = self
            .pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(pid, start)| format!("{pid} {start}\n"))
            .collect();
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[tokio::test]
    async fn output_goes_to_the_log_and_exit_codes_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("logs/c.log");
        let spec = ProcessSpec {
            program: "/bin/sh".into(),
            args: vec![
                "-c".into(),
                "echo out-$GREETING; echo err >&2; exit 7".into(),
            ],
            env: vec![("GREETING".into(), "hi".into())],
            cwd: None,
            log_path: log_path.clone(),
            isolation: Isolation::Host,
            cgroup_procs: Vec::new(),
            stdin: false,
            tty: false,
        };
        let process = spawn(&spec).await.unwrap();
        let status = process.exited.await.unwrap();
        assert_eq!(status.code(), Some(7));
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert!(log.contains("out-hi") && log.contains("err"), "{log}");
    }

    #[tokio::test]
    async fn the_registry_kills_leftovers_from_a_previous_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pids");
        let (registry, _) = PidRegistry::open(&path).unwrap();
        let spec = ProcessSpec {
            program: "/bin/sleep".into(),
            args: vec!["30".into()],
            env: vec![],
            cwd: None,
            log_path: dir.path().join("sleep.log"),
            isolation: Isolation::Host,
            cgroup_procs: Vec::new(),
            stdin: false,
            tty: false,
        };
        let process = spawn(&spec).await.unwrap();
        registry.add(process.pid);
        drop(registry);
        let (_again, killed) = PidRegistry::open(&path).unwrap();
        assert_eq!(killed, 1);
        let status = tokio::time::timeout(std::time::Duration::from_secs(10), process.exited)
            .await
            .expect("the leftover process was not killed")
            .unwrap();
        assert_eq!(status.signal(), Some(9));
    }
}
