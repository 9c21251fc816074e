//! Processes started inside a running container's context, for `kubectl exec`, `cp` and
//! ephemeral debugging: the container's environment, working directory, user and cgroups,
//! read from its main process as a container runtime enters a container through its init
//! process.
//!
//! [`spawn_in_pod`] is the one place that decides what "inside the pod" means: when pods
//! get Linux namespaces of their own, entering them (`setns` on `/proc/<pid>/ns/*` of the
//! container's process) belongs in [`enter_container`], and nothing else changes.

use super::process::ProcessSpec;
use nix::pty::{OpenptyResult, Winsize, openpty};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::{Child, Command};

/// Why a command could not be started in a container.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExecError {
    #[error("container process {pid} is gone: {source}")]
    ContainerGone {
        pid: u32,
        #[source]
        source: io::Error,
    },
    #[error("exec: {program:?}: executable file not found in $PATH")]
    NotFound { program: String },
    #[error("exec: no command given")]
    NoCommand,
    #[error("exec: {program:?}: {source}")]
    Start {
        program: String,
        #[source]
        source: io::Error,
    },
}

/// What a container's main process was started with, and so what a command in it gets.
#[derive(Debug, Clone)]
pub(crate) struct ContainerContext {
    /// The container's main process, whose namespaces and root an exec joins.
    pub(crate) pid: u32,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// `cgroup.procs` files of the container's cgroups that differ from the sandbox's own.
    pub(crate) cgroup_procs: Vec<PathBuf>,
}

/// The running containers' contexts by main process id, as the kubelet started them (a
/// process's own `/proc/<pid>/environ` is not reliable: redis-server overwrites it with
/// its process title).
#[derive(Debug, Default)]
pub(crate) struct Containers {
    started: Mutex<HashMap<u32, Started>>,
}

/// A container process's environment and working directory as started.
type Started = (Vec<(String, String)>, Option<PathBuf>);

impl Containers {
    /// Records a started container's environment and working directory.
    pub(crate) fn add(&self, pid: u32, spec: &ProcessSpec) {
        self.lock()
            .insert(pid, (spec.env.clone(), spec.cwd.clone()));
    }

    /// Forgets a container process that ended.
    pub(crate) fn remove(&self, pid: u32) {
        self.lock().remove(&pid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Started>> {
        self.started.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The context of the container whose main process is `pid`: what it was started with,
    /// and the user and cgroups it runs in now.
    pub(crate) fn context(&self, pid: u32) -> Result<ContainerContext, ExecError> {
        let (env, cwd) =
            self.lock()
                .get(&pid)
                .cloned()
                .ok_or_else(|| ExecError::ContainerGone {
                    pid,
                    source: io::Error::from(io::ErrorKind::NotFound),
                })?;
        let meta = std::fs::metadata(format!("/proc/{pid}"))
            .map_err(|source| ExecError::ContainerGone { pid, source })?;
        Ok(ContainerContext {
            pid,
            env,
            cwd,
            uid: meta.uid(),
            gid: meta.gid(),
            cgroup_procs: foreign_cgroups(pid),
        })
    }
}

/// The container's cgroups (v1 controllers or the v2 unified one) it does not share with the
/// sandbox, as the `cgroup.procs` files a new process is written into.
fn foreign_cgroups(pid: u32) -> Vec<PathBuf> {
    let read =
        |who: &str| std::fs::read_to_string(format!("/proc/{who}/cgroup")).unwrap_or_default();
    let own = read("self");
    read(&pid.to_string())
        .lines()
        .filter(|line| !own.lines().any(|o| o == *line))
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let root = PathBuf::from("/sys/fs/cgroup");
            let dir = match controllers {
                "" => root.join(path.trim_start_matches('/')),
                c => root
                    .join(c.trim_start_matches("name="))
                    .join(path.trim_start_matches('/')),
            };
            Some(dir.join("cgroup.procs"))
        })
        .filter(|procs| procs.exists())
        .collect()
}

/// A command started in a container: its standard streams (one terminal for a TTY) and the
/// process to wait for.
pub(crate) struct ExecProcess {
    pub(crate) child: Child,
    pub(crate) stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub(crate) stdout: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub(crate) stderr: Option<Box<dyn AsyncRead + Send + Unpin>>,
    /// The terminal's master side, for resizes; `None` without a TTY.
    pub(crate) terminal: Option<Terminal>,
}

/// The master side of an exec's pseudo-terminal.
pub(crate) struct Terminal {
    master: OwnedFd,
}

impl Terminal {
    /// The terminal whose master side is `master`.
    pub(crate) fn new(master: OwnedFd) -> Terminal {
        Terminal { master }
    }

    /// Sets the terminal's size, which sends SIGWINCH to its foreground process group.
    #[allow(unsafe_code)]
    pub(crate) fn resize(&self, width: u16, height: u16) -> io::Result<()> {
        let size = winsize(width, height);
        // SAFETY: TIOCSWINSZ reads one `winsize` from the pointer, which outlives the call;
        // the descriptor is the open master owned by `self`.
        let rc = unsafe {
            nix::libc::ioctl(
                self.master.as_raw_fd(),
                nix::libc::TIOCSWINSZ,
                &size as *const Winsize,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

fn winsize(width: u16, height: u16) -> Winsize {
    Winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// What to run and which streams the client attached.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExecOptions {
    pub(crate) argv: Vec<String>,
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    /// A terminal of this size (width, height), or none.
    pub(crate) tty: Option<(u16, u16)>,
}

/// Starts `opts.argv` in a container's context: its environment (and so its PATH for the
/// lookup), working directory, user and cgroups.
pub(crate) fn spawn_in_pod(
    ctx: &ContainerContext,
    opts: &ExecOptions,
) -> Result<ExecProcess, ExecError> {
    let (program, args) = opts.argv.split_first().ok_or(ExecError::NoCommand)?;
    let mut command = if in_own_namespaces(ctx.pid) {
        joined_command(ctx, program, opts.tty.is_none())?
    } else {
        let mut command = Command::new(program);
        if let Some(cwd) = &ctx.cwd {
            command.current_dir(cwd);
        }
        enter_container(&mut command, ctx);
        command
    };
    command
        .args(args)
        .env_clear()
        .envs(ctx.env.iter().map(|(k, v)| (k, v)));
    let mut process = match opts.tty {
        Some((w, h)) => spawn_with_terminal(command, winsize(w, h)),
        None => spawn_with_pipes(command, opts),
    }
    .map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => ExecError::NotFound {
            program: program.clone(),
        },
        _ => ExecError::Start {
            program: program.clone(),
            source,
        },
    })?;
    if let Some(pid) = process.child.id() {
        join_cgroups(ctx, pid);
    }
    if !opts.stdin {
        process.stdin = None;
    }
    Ok(process)
}

/// Whether the container runs in namespaces of its own (the sandbox's namespace mode).
fn in_own_namespaces(pid: u32) -> bool {
    let own = std::fs::read_link("/proc/self/ns/mnt").ok();
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    theirs.is_some() && own != theirs
}

/// `nsenter` into the container's mount, UTS, IPC and network namespaces, its root and
/// working directory, as its user: the program is looked up on the container's PATH
/// inside its root first, so a missing one gets the kubelet's own message. Without a
/// terminal it joins the container's PID namespace too (with one, dash under nsenter's
/// extra fork loses its terminal and exits; the container's own `/proc` is seen either way).
fn joined_command(
    ctx: &ContainerContext,
    program: &str,
    pid_namespace: bool,
) -> Result<Command, ExecError> {
    let root = PathBuf::from(format!("/proc/{}/root", ctx.pid));
    let path = ctx
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or("/usr/local/bin:/usr/bin:/bin", |(_, v)| v.as_str());
    let found = if program.contains('/') {
        root.join(program.trim_start_matches('/')).exists()
    } else {
        path.split(':').any(|dir| {
            root.join(dir.trim_start_matches('/'))
                .join(program)
                .exists()
        })
    };
    if !found {
        return Err(ExecError::NotFound {
            program: program.to_string(),
        });
    }
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--target={}", ctx.pid))
        .args(["--mount", "--uts", "--ipc", "--net", "--root", "--wd"])
        .args(pid_namespace.then_some("--pid"))
        .arg(format!("--setgid={}", ctx.gid))
        .arg(format!("--setuid={}", ctx.uid))
        .arg("--")
        .arg(program);
    Ok(command)
}

/// Puts the command in the container: its user and group when they differ from the
/// sandbox's. (With per-pod namespaces, `setns` into the container's process's namespaces
/// goes here too.)
fn enter_container(command: &mut Command, ctx: &ContainerContext) {
    let own = std::fs::metadata("/proc/self").ok();
    if own.as_ref().map(|m| (m.uid(), m.gid())) != Some((ctx.uid, ctx.gid)) {
        command.uid(ctx.uid).gid(ctx.gid);
    }
}

/// Writes a started command's pid into the container's cgroups, so its limits and usage
/// include the command.
fn join_cgroups(ctx: &ContainerContext, pid: u32) {
    for procs in &ctx.cgroup_procs {
        if let Err(e) = std::fs::write(procs, pid.to_string()) {
            tracing::debug!(cgroup = %procs.display(), error = %e, "exec not moved into the container's cgroup");
        }
    }
}

fn spawn_with_pipes(mut command: Command, opts: &ExecOptions) -> io::Result<ExecProcess> {
    let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    command
        .stdin(piped(opts.stdin))
        .stdout(piped(opts.stdout))
        .stderr(piped(opts.stderr));
    own_group_dying_with_sandbox(&mut command, false);
    let mut child = command.spawn()?;
    Ok(ExecProcess {
        stdin: child
            .stdin
            .take()
            .map(|s| Box::new(s) as Box<dyn AsyncWrite + Send + Unpin>),
        stdout: child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
        stderr: child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn AsyncRead + Send + Unpin>),
        child,
        terminal: None,
    })
}

/// Runs the command on a new pseudo-terminal, as its session leader with the terminal as
/// its controlling terminal (so Ctrl-C and job control work); stdout carries stderr too.
fn spawn_with_terminal(mut command: Command, size: Winsize) -> io::Result<ExecProcess> {
    let OpenptyResult { master, slave } = openpty(Some(&size), None).map_err(io::Error::from)?;
    command
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    own_group_dying_with_sandbox(&mut command, true);
    let child = command.spawn()?;
    drop(command);
    let reader = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
    let writer = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
    Ok(ExecProcess {
        child,
        stdin: Some(Box::new(writer)),
        stdout: Some(Box::new(reader)),
        stderr: None,
        terminal: Some(Terminal { master }),
    })
}

/// Makes the command its own process group (or session, with a terminal it controls) and
/// asks the kernel to SIGKILL it when the sandbox dies.
#[allow(unsafe_code)]
fn own_group_dying_with_sandbox(command: &mut Command, session: bool) {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe system
    // calls (setsid/setpgid, ioctl, prctl, getppid, kill); it allocates nothing and takes no
    // locks.
    unsafe {
        command.pre_exec(move || {
            if session {
                nix::unistd::setsid()?;
                if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else {
                nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
            }
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            if nix::unistd::getppid().as_raw() as u32 != parent {
                let _ = nix::sys::signal::raise(Signal::SIGKILL);
            }
            Ok(())
        });
    }
}

/// The exit code as a container runtime reports it: the code, or 128 + the signal.
pub(crate) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A container's context as the kubelet records it, for a running `sleep`.
    async fn container(greeting: &str) -> (Child, ContainerContext) {
        let child = Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let containers = Containers::default();
        let spec = ProcessSpec {
            program: "sleep".into(),
            args: vec![],
            env: vec![
                ("GREETING".into(), greeting.into()),
                ("PATH".into(), "/usr/bin:/bin".into()),
            ],
            cwd: Some("/tmp".into()),
            log_path: "/dev/null".into(),
            isolation: crate::kubelet::process::Isolation::Host,
            cgroup_procs: Vec::new(),
            stdin: false,
            tty: false,
        };
        containers.add(pid, &spec);
        let ctx = containers.context(pid).unwrap();
        (child, ctx)
    }

    #[tokio::test]
    async fn commands_get_the_containers_env_and_directory_and_exit_code() {
        let (_main, ctx) = container("hello").await;
        let opts = ExecOptions {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "echo $GREETING $(pwd); echo e >&2; exit 3".into(),
            ],
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut exec = spawn_in_pod(&ctx, &opts).unwrap();
        let mut out = String::new();
        exec.stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        let mut err = String::new();
        exec.stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .await
            .unwrap();
        let status = exec.child.wait().await.unwrap();
        assert_eq!(out, "hello /tmp\n");
        assert_eq!(err, "e\n");
        assert_eq!(exit_code(status), 3);
    }

    #[tokio::test]
    async fn a_terminal_has_the_asked_size_and_missing_programs_are_named() {
        let (_main, ctx) = container("x").await;
        let opts = ExecOptions {
            argv: vec!["sh".into()],
            stdin: true,
            stdout: true,
            tty: Some((100, 30)),
            ..Default::default()
        };
        let mut exec = spawn_in_pod(&ctx, &opts).unwrap();
        let mut stdin = exec.stdin.take().unwrap();
        stdin.write_all(b"stty size; exit 5\n").await.unwrap();
        let mut out = Vec::new();
        let mut stdout = exec.stdout.take().unwrap();
        let mut buf = [0u8; 1024];
        while let Ok(n) = stdout.read(&mut buf).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let out = String::from_utf8_lossy(&out);
        assert!(out.contains("30 100"), "{out}");
        assert_eq!(exit_code(exec.child.wait().await.unwrap()), 5);
        let missing = ExecOptions {
            argv: vec!["hk8s-no-such-tool".into()],
            ..Default::default()
        };
        let err = spawn_in_pod(&ctx, &missing).err().unwrap();
        assert_eq!(
            err.to_string(),
            "exec: \"hk8s-no-such-tool\": executable file not found in $PATH"
        );
    }
}
