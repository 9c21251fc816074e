//! Pod isolation with Linux namespaces: each pod has an infra process (the "pause"
//! container) holding its network, UTS and IPC namespaces; every process of the pod —
//! containers, exec probes, `kubectl exec` — joins them before it execs, and gets a
//! private mount namespace in which the pod's own `/etc/resolv.conf` and `/etc/hosts`
//! are bind-mounted over the host's.
//!
//! Other parts of the sandbox (exec, attach, port-forward, debug) enter a running pod with
//! [`PodNamespaces::load`] and [`PodNamespaces::join`].

use super::pidns::PidNamespace;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::ffi::CString;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a running pod's namespaces are: the pid of its infra process (its namespaces are
/// `/proc/<pid>/ns/{net,uts,ipc}`) and the directory holding its `resolv.conf` and `hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodNamespaces {
    pub pid: u32,
    /// The kernel's start time of `pid`, which tells it apart from a reused pid.
    pub start_time: u64,
    pub etc_dir: PathBuf,
    /// Each container's root is `<root_dir>/<container>` inside the infra process's mount
    /// namespace.
    pub root_dir: PathBuf,
}

/// The file under a pod's directory (`paths::pod_dir`) that records its namespaces.
const NAMESPACES_FILE: &str = "namespaces.json";

impl PodNamespaces {
    /// The namespaces of the running pod with `uid` on the sandbox keeping its state in
    /// `state_dir`; `None` when the pod runs without isolation (process mode) or has ended.
    pub fn load(state_dir: &Path, uid: &str) -> Option<Self> {
        let path = crate::paths::pod_dir(state_dir, uid).join(NAMESPACES_FILE);
        let ns: Self = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        (super::process::process_start_time(ns.pid) == Some(ns.start_time)).then_some(ns)
    }

    pub(super) fn save(&self, pod_dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(pod_dir)?;
        let text = serde_json::to_string(self).map_err(io::Error::other)?;
        std::fs::write(pod_dir.join(NAMESPACES_FILE), text)
    }

    /// `/proc/<pid>/ns/<kind>` (`net`, `uts`, `ipc`, `mnt`, `pid`).
    pub fn ns_path(&self, kind: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/{kind}", self.pid))
    }

    /// Makes `command` start inside this pod: its network, UTS and IPC namespaces, and
    /// the container's filesystem (the pod's mount namespace, chrooted to the container's
    /// root, in its working directory, as its user). Without a container it gets a private
    /// mount namespace with the pod's `resolv.conf` and `hosts` over the host's files. The
    /// namespace files are opened now, so a pod that has ended gives an error here.
    pub fn join(&self, command: &mut Command, container: Option<&ContainerView>) -> io::Result<()> {
        let entry = Entry::open(self, container)?;
        #[allow(unsafe_code)]
        // SAFETY: `Entry::enter` runs between fork and exec and makes only async-signal-safe
        // system calls (setns, unshare, mount) on descriptors and strings prepared before
        // the fork; it allocates nothing and takes no locks.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(command, move || {
                entry.enter().map_err(io::Error::from)
            });
        }
        Ok(())
    }
}

/// What entering a pod needs, prepared before the fork.
struct Entry {
    net: OwnedFd,
    uts: OwnedFd,
    ipc: OwnedFd,
    mounts: Vec<(CString, CString)>,
    /// The pod's mount namespace, the container's root and working directory.
    root: Option<(OwnedFd, CString, CString)>,
    user: Option<(u32, u32)>,
    no_new_privs: bool,
    /// The container's PID namespace (its own, or the pod's).
    pid: Option<PidNamespace>,
}

impl Entry {
    fn open(ns: &PodNamespaces, container: Option<&ContainerView>) -> io::Result<Self> {
        let open = |kind: &str| -> io::Result<OwnedFd> {
            Ok(std::fs::File::open(ns.ns_path(kind))?.into())
        };
        let mut mounts = Vec::new();
        for file in ["resolv.conf", "hosts"] {
            let source = ns.etc_dir.join(file);
            let target = Path::new("/etc").join(file);
            if source.exists() && target.exists() {
                mounts.push((cstring(&source)?, cstring(&target)?));
            }
        }
        let root = match container {
            Some(c) => Some((
                open("mnt")?,
                cstring(&ns.root_dir.join(&c.name))?,
                cstring(&c.workdir)?,
            )),
            None => None,
        };
        Ok(Entry {
            net: open("net")?,
            uts: open("uts")?,
            ipc: open("ipc")?,
            mounts,
            root,
            user: container.and_then(|c| c.user),
            no_new_privs: container.is_some_and(|c| c.no_new_privs),
            pid: match container {
                Some(ContainerView {
                    pid_of: Some(pid), ..
                }) => Some(PidNamespace::Join(
                    std::fs::File::open(format!("/proc/{pid}/ns/pid"))?.into(),
                )),
                Some(c) if c.shared_pid_namespace => Some(PidNamespace::Join(open("pid")?)),
                Some(_) => Some(PidNamespace::New),
                None => None,
            },
        })
    }

    /// Drops to the container's user and, unless it may escalate, forbids gaining
    /// privileges through set-user-ID programs.
    fn become_user(&self) -> nix::Result<()> {
        if let Some((uid, gid)) = self.user {
            let (uid, gid) = (
                nix::unistd::Uid::from_raw(uid),
                nix::unistd::Gid::from_raw(gid),
            );
            nix::unistd::setgroups(&[gid])?;
            nix::unistd::setresgid(gid, gid, gid)?;
            nix::unistd::setresuid(uid, uid, uid)?;
        }
        if self.no_new_privs {
            nix::sys::prctl::set_no_new_privs()?;
        }
        Ok(())
    }

    fn enter(&self) -> nix::Result<()> {
        nix::sched::setns(&self.net, CloneFlags::CLONE_NEWNET)?;
        nix::sched::setns(&self.uts, CloneFlags::CLONE_NEWUTS)?;
        nix::sched::setns(&self.ipc, CloneFlags::CLONE_NEWIPC)?;
        if let Some((mnt, root, workdir)) = &self.root {
            nix::sched::setns(mnt, CloneFlags::CLONE_NEWNS)?;
            nix::unistd::chroot(root.as_c_str())?;
            nix::unistd::chdir(workdir.as_c_str())?;
            if let Some(pid) = &self.pid {
                pid.enter()?;
                mount_own_proc()?;
            }
            self.become_user()?;
            if self.pid.is_some() {
                // Changing the user cleared it; the program dies with its shim.
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            }
            return Ok(());
        }
        nix::sched::unshare(CloneFlags::CLONE_NEWNS)?;
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )?;
        for (source, target) in &self.mounts {
            nix::mount::mount(
                Some(source.as_c_str()),
                target.as_c_str(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
        }
        Ok(())
    }
}

/// The user a container runs as when neither it nor its pod names one: `nobody`, so no
/// pod runs as root just because the sandbox does.
pub const DEFAULT_USER: (u32, u32) = (65534, 65534);

/// The user an "image" runs as when the manifest names none: [`DEFAULT_USER`], unless its
/// program is root's alone (not executable by others) or is a script that reads root's
/// private files (an interpreter under `/root`), as in an image whose user is root. A
/// program merely under a closed directory still runs as the default user (see
/// `process::by_descriptor`).
pub fn image_user(program: &Path) -> (u32, u32) {
    use std::io::Read;
    let Ok(real) = std::fs::canonicalize(program) else {
        return DEFAULT_USER;
    };
    let runnable = others_may(&real);
    let mut head = Vec::with_capacity(4096);
    let read = std::fs::File::open(&real).and_then(|f| f.take(4096).read_to_end(&mut head));
    let interpreted_privately = read.is_ok()
        && head.starts_with(b"#!")
        && (head.windows(6).any(|w| w == b"/root/") || interpreter_closed(&head));
    if runnable && !interpreted_privately {
        DEFAULT_USER
    } else {
        (0, 0)
    }
}

/// Whether a script's `#!` interpreter lies where other users cannot run it.
fn interpreter_closed(head: &[u8]) -> bool {
    let line = head[2..].split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    line.split_whitespace()
        .next()
        .is_some_and(|interpreter| closed_to_others(Path::new(interpreter)).is_some())
}

/// Whether users other than the owner and group may execute the file (search the directory).
fn others_may(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
}

/// The first of `program` and the directories above it that other users may not execute
/// or search (a checkout under a 0700 home), or `None` when any user can run it by its path.
pub fn closed_to_others(program: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(program).ok()?;
    let mut chain: Vec<&Path> = real.ancestors().collect();
    chain.reverse();
    chain
        .into_iter()
        .find(|p| !others_may(p))
        .map(Path::to_path_buf)
}

/// How a process enters one container of a pod: its root, working directory and user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerView {
    /// The container's name (its root is `<root_dir>/<name>`).
    pub name: String,
    pub workdir: PathBuf,
    /// User and group IDs; `None` keeps the caller's.
    pub user: Option<(u32, u32)>,
    /// `allowPrivilegeEscalation: false`.
    pub no_new_privs: bool,
    /// `shareProcessNamespace: true`: the pod's PID namespace instead of one of its own.
    pub shared_pid_namespace: bool,
    /// The host pid of the process whose PID namespace it joins (an ephemeral container's
    /// target), over both of the above.
    pub pid_of: Option<u32>,
}

impl ContainerView {
    /// The view of `container` in a pod with `spec`, from their securityContexts (the
    /// container's wins), running as `default` (see [`image_user`]) when neither names a
    /// user; `Err` with the kubelet's message when `runAsNonRoot` is violated.
    pub fn of(
        container: &k8s_openapi::api::core::v1::Container,
        spec: &k8s_openapi::api::core::v1::PodSpec,
        default: (u32, u32),
    ) -> Result<Self, String> {
        let own = container.security_context.as_ref();
        let pod = spec.security_context.as_ref();
        let uid = own
            .and_then(|s| s.run_as_user)
            .or_else(|| pod.and_then(|s| s.run_as_user));
        let gid = own
            .and_then(|s| s.run_as_group)
            .or_else(|| pod.and_then(|s| s.run_as_group));
        let non_root = own
            .and_then(|s| s.run_as_non_root)
            .or_else(|| pod.and_then(|s| s.run_as_non_root))
            .unwrap_or(false);
        let (uid, gid) = match (uid, gid) {
            (Some(u), g) => (u as u32, g.map_or(u as u32, |g| g as u32)),
            (None, Some(g)) => (default.0, g as u32),
            (None, None) => default,
        };
        if non_root && uid == 0 {
            return Err("container's runAsUser breaks non-root policy".into());
        }
        Ok(ContainerView {
            name: container.name.clone(),
            workdir: container
                .working_dir
                .clone()
                .map_or_else(|| PathBuf::from("/"), PathBuf::from),
            // Rootless, the user namespace maps one user, the learner's, as root.
            user: (!crate::rootless::active()).then_some((uid, gid)),
            no_new_privs: own.and_then(|s| s.allow_privilege_escalation) == Some(false),
            shared_pid_namespace: spec.share_process_namespace == Some(true),
            pid_of: None,
        })
    }

    /// Whether the container gets a PID namespace of its own.
    pub fn new_pid_namespace(&self) -> bool {
        !self.shared_pid_namespace && self.pid_of.is_none()
    }
}

/// A `/proc` of the process's own PID namespace over the host's, in a mount namespace of the
/// container's own (so `ps` in the container lists only its processes).
fn mount_own_proc() -> nix::Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNS)?;
    nix::mount::mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Makes `command` (the infra process) create the pod's network, UTS, IPC, mount and PID
/// namespaces, with `hostname` (the pod name) as its host name; it runs as pid 2 under an
/// init that reaps the orphans of containers sharing the pod's PID namespace.
pub(super) fn create(command: &mut Command, hostname: &str) {
    let name: String = hostname.chars().take(63).collect();
    #[allow(unsafe_code)]
    // SAFETY: runs between fork and exec; unshare and sethostname are plain system calls
    // on data prepared before the fork.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, move || {
            nix::sched::unshare(
                CloneFlags::CLONE_NEWNET
                    | CloneFlags::CLONE_NEWUTS
                    | CloneFlags::CLONE_NEWIPC
                    | CloneFlags::CLONE_NEWNS,
            )?;
            // Nothing mounted in the pod may propagate back to the host.
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            nix::unistd::sethostname(&name)?;
            Ok(PidNamespace::New.enter()?)
        });
    }
}

/// SIGKILLs every process in the network namespace of `pid` but `pid` itself: whatever a
/// pod started, through `setsid` or double forks, shares its network namespace.
pub(super) fn kill_members(pid: u32) -> usize {
    let Ok(target) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else {
        return 0;
    };
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(other) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if other as u32 == pid || other as u32 == std::process::id() {
            continue;
        }
        if std::fs::read_link(format!("/proc/{other}/ns/net")).is_ok_and(|l| l == target) {
            let _ = nix::sys::signal::kill(Pid::from_raw(other), Signal::SIGKILL);
            killed += 1;
        }
    }
    killed
}

/// Whether the learner asked for process mode (`HK8S_SANDBOX_ISOLATION=off`).
pub(crate) fn off_requested() -> bool {
    std::env::var("HK8S_SANDBOX_ISOLATION").is_ok_and(|v| v == "off")
}

/// Whether this process may create namespaces and the pod network (root with
/// CAP_SYS_ADMIN and CAP_NET_ADMIN); `Err` says why not.
pub fn available() -> Result<(), String> {
    if off_requested() {
        return Err("HK8S_SANDBOX_ISOLATION=off".into());
    }
    if let Some(reason) = crate::rootless::refusal() {
        return Err(reason.into());
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(
            "the sandbox does not run as root, and was not started by `hk8s sandbox up`, which \
             would give it a user namespace"
                .into(),
        );
    }
    let probe = std::thread::spawn(|| {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS)
            .map_err(|e| format!("creating a network namespace failed: {e}"))
    });
    probe
        .join()
        .unwrap_or_else(|_| Err("the namespace probe panicked".into()))
}

/// The pod's `/etc/resolv.conf`: the cluster DNS on the bridge and the search path of
/// its namespace, as a kubelet writes it for `dnsPolicy: ClusterFirst`.
pub(super) fn resolv_conf(nameserver: std::net::Ipv4Addr, namespace: &str) -> String {
    let domain = crate::apimachinery::network::CLUSTER_DOMAIN;
    format!(
        "nameserver {nameserver}\nsearch {namespace}.svc.{domain} svc.{domain} {domain}\noptions ndots:5\n"
    )
}

/// The pod's `/etc/hosts`: loopback and its own name (and its FQDN when it has a
/// `hostname` and `subdomain`, as StatefulSet pods do).
pub(super) fn hosts(ip: std::net::Ipv4Addr, hostname: &str, fqdn: Option<&str>) -> String {
    let mut text = String::from(
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    match fqdn {
        Some(fqdn) => text.push_str(&format!("{ip}\t{fqdn}\t{hostname}\n")),
        None => text.push_str(&format!("{ip}\t{hostname}\n")),
    }
    text
}
