//! A container's filesystem in namespace mode: a root of its own, built inside the pod's
//! mount namespace, that shows the host's directories (bind mounts; read-only with
//! `readOnlyRootFilesystem`), the pod's `resolv.conf` and `hosts`, and its volumes at
//! their `mountPath`. A mount point the host lacks inside an existing host directory
//! (a ConfigMap key at `/opt/x.py`) is made in an overlay of that directory, so the host's
//! own files are never touched. The container is chrooted into it before it execs.

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use std::collections::HashSet;
use std::io;
use std::path::{Component, Path, PathBuf};

/// One volume mount of a container, resolved to its host source.
#[derive(Debug, Clone)]
pub(super) struct VolumeMount {
    pub source: PathBuf,
    pub mount_path: String,
    pub read_only: bool,
}

/// What a container's root is made of.
#[derive(Debug, Clone)]
pub(super) struct RootSpec {
    /// Where the root is built (under the pod's directory).
    pub root: PathBuf,
    /// Upper and work directories of overlays.
    pub overlays: PathBuf,
    /// The pod's `resolv.conf` and `hosts`.
    pub etc_dir: PathBuf,
    pub volumes: Vec<VolumeMount>,
    pub read_only: bool,
}

/// Builds `spec.root` inside the mount namespace of process `pid` (the pod's infra
/// process), on a thread of its own that enters it.
pub(super) async fn build(pid: u32, spec: RootSpec) -> Result<(), String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name(format!("hk8s-rootfs-{pid}"))
        .spawn(move || {
            let result = enter_mount_namespace(pid)
                .and_then(|()| build_here(&spec))
                .map_err(|e| format!("cannot build the container's filesystem: {e}"));
            let _ = tx.send(result);
        });
    if let Err(e) = thread {
        return Err(format!(
            "cannot start a thread to build the filesystem: {e}"
        ));
    }
    rx.await
        .unwrap_or_else(|_| Err("the filesystem thread ended early".into()))
}

fn enter_mount_namespace(pid: u32) -> io::Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))?;
    nix::sched::unshare(CloneFlags::CLONE_FS)?;
    nix::sched::setns(ns, CloneFlags::CLONE_NEWNS)?;
    Ok(())
}

fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> io::Result<()> {
    nix::mount::mount(source, target, fstype, flags, data).map_err(|e| {
        io::Error::other(format!(
            "mounting {} on {}: {e}",
            source.map_or_else(
                || fstype.unwrap_or("").to_string(),
                |s| s.display().to_string()
            ),
            target.display()
        ))
    })
}

fn remount_read_only(target: &Path) -> io::Result<()> {
    mount(
        None,
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None,
    )
}

/// The first component of an absolute mount path (`opt` for `/opt/x.py`).
fn top_of(mount_path: &str) -> Option<String> {
    Path::new(mount_path).components().find_map(|c| match c {
        Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
        _ => None,
    })
}

/// Host top-level directories that need an overlay: a mount point below them is missing.
fn overlay_tops(volumes: &[VolumeMount]) -> HashSet<String> {
    volumes
        .iter()
        .filter(|v| !Path::new(&v.mount_path).exists())
        .filter_map(|v| top_of(&v.mount_path))
        .filter(|top| {
            let host = Path::new("/").join(top);
            host.is_dir() && !host.is_symlink()
        })
        .collect()
}

fn build_here(spec: &RootSpec) -> io::Result<()> {
    mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    std::fs::create_dir_all(&spec.root)?;
    let overlays = overlay_tops(&spec.volumes);
    for entry in std::fs::read_dir("/")? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let host = entry.path();
        let inside = spec.root.join(&name);
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            if !inside.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&host)?, &inside)?;
            }
            continue;
        }
        if !kind.is_dir() {
            continue;
        }
        std::fs::create_dir_all(&inside)?;
        if overlays.contains(&name) {
            let upper = spec.overlays.join(&name);
            let work = spec.overlays.join(format!(".work-{name}"));
            std::fs::create_dir_all(&upper)?;
            std::fs::create_dir_all(&work)?;
            let data = format!(
                "lowerdir={},upperdir={},workdir={}",
                host.display(),
                upper.display(),
                work.display()
            );
            mount(
                None,
                &inside,
                Some("overlay"),
                MsFlags::empty(),
                Some(&data),
            )?;
        } else {
            mount(
                Some(&host),
                &inside,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )?;
        }
        let writable = matches!(name.as_str(), "proc" | "sys" | "dev" | "tmp");
        if spec.read_only && !writable {
            remount_read_only(&inside)?;
        }
    }
    for file in ["resolv.conf", "hosts"] {
        let target = spec.root.join("etc").join(file);
        if target.exists() {
            mount(
                Some(&spec.etc_dir.join(file)),
                &target,
                None,
                MsFlags::MS_BIND,
                None,
            )?;
        }
    }
    for volume in &spec.volumes {
        mount_volume(&spec.root, volume)?;
    }
    Ok(())
}

/// Binds a volume at its mount path inside `root`, creating the mount point (a file for
/// a file, such as a ConfigMap key through `subPath`).
fn mount_volume(root: &Path, volume: &VolumeMount) -> io::Result<()> {
    let relative = volume.mount_path.trim_start_matches('/');
    if relative.is_empty() || relative.split('/').any(|c| c == "..") {
        return Err(io::Error::other(format!(
            "invalid mountPath {:?}",
            volume.mount_path
        )));
    }
    let target = root.join(relative);
    if volume.source.is_dir() {
        std::fs::create_dir_all(&target)?;
    } else {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if !target.exists() {
            std::fs::write(&target, b"")?;
        }
    }
    mount(
        Some(&volume.source),
        &target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    if volume.read_only {
        remount_read_only(&target)?;
    }
    Ok(())
}
