//! PID namespaces for containers, entered between fork and exec. `std::process::Command`
//! forks once, but a process cannot move itself into a PID namespace, only its children, so
//! the forked process stays behind as a shim that waits and reports the program's exit
//! status as its own:
//! - a container of its own (`shareProcessNamespace: false`, Kubernetes' default): the shim
//!   forks an init (pid 1 of a new namespace) that forks the program (pid 2) and reaps
//!   orphans; when the program ends the init exits and the kernel kills whatever is left in
//!   the namespace — `setsid` and double-forked grandchildren included;
//! - `shareProcessNamespace: true`: the shim joins the pod's namespace (whose init is the
//!   pod's infra process) and forks the program into it.

use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};
use std::os::fd::{AsRawFd, OwnedFd};

/// Which PID namespace a process gets, prepared before the fork.
#[derive(Debug)]
pub(super) enum PidNamespace {
    /// A new one, with an init that reaps orphans.
    New,
    /// An existing one (`/proc/<pid>/ns/pid` of the pod's infra process).
    Join(OwnedFd),
}

/// How many forks below the spawned shim the program runs.
pub(super) fn depth(new: bool) -> usize {
    if new { 2 } else { 1 }
}

impl PidNamespace {
    /// Moves the calling (forked, not yet exec'd) process's future program into the namespace:
    /// returns only in the process that is to exec the program; the shim and the init wait
    /// and exit with the program's status.
    ///
    /// Only async-signal-safe system calls are made (pipe, unshare, setns, fork, waitpid,
    /// read, write, prctl, setsid, _exit).
    pub(super) fn enter(&self) -> nix::Result<()> {
        let (status_read, status_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        match self {
            PidNamespace::New => nix::sched::unshare(CloneFlags::CLONE_NEWPID)?,
            PidNamespace::Join(fd) => nix::sched::setns(fd, CloneFlags::CLONE_NEWPID)?,
        }
        // SAFETY: between fork and exec of a (possibly multi-threaded) parent the child only
        // makes async-signal-safe system calls, as above.
        #[allow(unsafe_code)]
        if let ForkResult::Parent { child } = unsafe { nix::unistd::fork() }? {
            drop(status_write);
            shim(child, &status_read);
        }
        drop(status_read);
        if let PidNamespace::New = self {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // SAFETY: as above.
            #[allow(unsafe_code)]
            if let ForkResult::Parent { child } = unsafe { nix::unistd::fork() }? {
                init(child, &status_write);
            }
        }
        drop(status_write);
        nix::unistd::setsid()?;
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
        Ok(())
    }
}

/// Pid 1 of a container's namespace: reaps every child, and when the program ends passes its
/// wait status to the shim and exits, which makes the kernel kill the rest of the namespace.
fn init(program: Pid, status_pipe: &OwnedFd) -> ! {
    close_all_but(status_pipe);
    loop {
        let mut status = 0;
        // SAFETY: waitpid and write are async-signal-safe; `status` is a local.
        #[allow(unsafe_code)]
        unsafe {
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == program.as_raw() {
                let bytes = status.to_ne_bytes();
                libc::write(status_pipe.as_raw_fd(), bytes.as_ptr().cast(), bytes.len());
                libc::_exit(0);
            }
            if pid < 0 && nix::errno::Errno::last() != nix::errno::Errno::EINTR {
                libc::_exit(0);
            }
        }
    }
}

/// The process `std::process::Command` knows: waits for its child (the init or the program)
/// and ends as the program did — by the same signal, or with the same exit code.
fn shim(child: Pid, status_pipe: &OwnedFd) -> ! {
    close_all_but(status_pipe);
    let mut status = 0;
    // SAFETY: waitpid, read, signal, sigprocmask, setrlimit, kill and _exit are
    // async-signal-safe; all buffers are locals.
    #[allow(unsafe_code)]
    unsafe {
        while libc::waitpid(child.as_raw(), &mut status, 0) < 0 {
            if nix::errno::Errno::last() != nix::errno::Errno::EINTR {
                libc::_exit(127);
            }
        }
        let mut bytes = [0u8; 4];
        if libc::read(status_pipe.as_raw_fd(), bytes.as_mut_ptr().cast(), 4) == 4 {
            status = i32::from_ne_bytes(bytes);
        }
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(signal, libc::SIG_DFL);
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::sigprocmask(libc::SIG_UNBLOCK, &all, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            1
        });
    }
}

/// Closes every descriptor above stdio but `keep` — above all the pipe through which
/// `Command::spawn` learns that the program was exec'd: it reports success only once every
/// copy is closed, and the shim and the init never exec.
fn close_all_but(keep: &OwnedFd) {
    let keep = keep.as_raw_fd() as libc::c_uint;
    // SAFETY: close_range only closes descriptors of this (forked, single-threaded) process.
    #[allow(unsafe_code)]
    unsafe {
        if keep > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, keep - 1, 0u32);
        }
        libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0u32);
    }
}

/// The program's pid below the shim `shim` (`depth` forks down), looked up in /proc as soon
/// as it exists; `None` when the shim ended first.
pub(super) fn program_pid(shim: u32, depth: usize) -> Option<u32> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut pid = shim;
    for _ in 0..depth {
        pid = loop {
            if let Some(child) = child_of(pid) {
                break child;
            }
            let ended = super::process::proc_stat_fields(shim)
                .is_none_or(|fields| fields.first().is_some_and(|state| state == "Z"));
            if ended || std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
    }
    Some(pid)
}

/// A child of `parent`: from its main thread's `children` list (one read, where the kernel
/// has it), else from the parent pids of every process in /proc.
fn child_of(parent: u32) -> Option<u32> {
    if let Ok(list) = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")) {
        return list.split_whitespace().find_map(|pid| pid.parse().ok());
    }
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let ppid: u32 = super::process::proc_stat_fields(pid)?
                .get(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
}
