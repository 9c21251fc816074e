//! Which process serves a state directory, known for certain: the serving sandbox holds an
//! exclusive `flock` on `sandbox.lock` for as long as it lives (the kernel drops it when the
//! process dies, so a crashed sandbox never blocks the next start), and writes its pid and,
//! once it serves, its URL into that file. A pid is only ever reported while the lock is
//! held, and on Linux only when that process really has the lock file open, so callers never
//! signal a process that is not the sandbox.

use crate::error::SandboxError;
use crate::paths;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The running sandbox of a state directory, as its lock file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The serving process.
    pub pid: i32,
    /// Its API server's URL once it serves; `None` while it is still starting.
    pub url: Option<String>,
}

/// The lock a running sandbox holds on its state directory; dropping it releases it.
#[derive(Debug)]
pub(crate) struct InstanceLock {
    file: File,
    path: PathBuf,
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

fn io_err(path: &Path, source: std::io::Error) -> SandboxError {
    SandboxError::StateDir {
        path: path.to_path_buf(),
        source,
    }
}

impl InstanceLock {
    /// Takes the state directory for this process, or says which sandbox already has it.
    pub(crate) fn acquire(state_dir: &Path) -> Result<InstanceLock, SandboxError> {
        let path = paths::lock_path(state_dir);
        let file = open(&path).map_err(|e| io_err(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(SandboxError::AlreadyRunning {
                    dir: state_dir.to_path_buf(),
                    pid: holder(state_dir).ok().flatten().map(|h| h.pid),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(&path, e)),
        }
        let mut lock = InstanceLock { file, path };
        lock.record(&format!("{}\n", std::process::id()))?;
        Ok(lock)
    }

    /// Records that the sandbox serves at `url`: `up --detach` waits for this line.
    pub(crate) fn serving(&mut self, url: &str) -> Result<(), SandboxError> {
        self.record(&format!("{}\n{url}\n", std::process::id()))
    }

    fn record(&mut self, text: &str) -> Result<(), SandboxError> {
        let path = self.path.clone();
        self.file.set_len(0).map_err(|e| io_err(&path, e))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| io_err(&path, e))?;
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| io_err(&path, e))
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// The sandbox serving from `state_dir`, if one holds its lock.
pub fn holder(state_dir: &Path) -> std::io::Result<Option<Holder>> {
    let path = paths::lock_path(state_dir);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match file.try_lock_shared() {
        Ok(()) => return Ok(None),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => return Err(e),
    }
    // Held: the holder writes its pid right after locking, so wait briefly for it.
    for _ in 0..100 {
        let mut text = String::new();
        file.seek(SeekFrom::Start(0))?;
        file.read_to_string(&mut text)?;
        let mut lines = text.lines();
        if let Some(pid) = lines.next().and_then(|p| p.trim().parse::<i32>().ok())
            && has_open(pid, &path)
        {
            let url = lines.next().map(str::to_string).filter(|u| !u.is_empty());
            return Ok(Some(Holder { pid, url }));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(None)
}

/// Whether process `pid` has `lock` open; where `/proc` cannot tell (not Linux), the lock
/// file's word is taken.
fn has_open(pid: i32, lock: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return !Path::new("/proc/self/fd").exists();
    };
    let want = std::fs::canonicalize(lock).unwrap_or_else(|_| lock.to_path_buf());
    fds.filter_map(Result::ok)
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_names_its_holder_and_a_released_one_nobody() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(holder(dir.path()).unwrap(), None);
        let mut lock = InstanceLock::acquire(dir.path()).unwrap();
        let me = std::process::id() as i32;
        let h = holder(dir.path()).unwrap().unwrap();
        assert_eq!((h.pid, h.url), (me, None));
        lock.serving("https://127.0.0.1:1").unwrap();
        let h = holder(dir.path()).unwrap().unwrap();
        assert_eq!(h.url.as_deref(), Some("https://127.0.0.1:1"));
        match InstanceLock::acquire(dir.path()) {
            Err(SandboxError::AlreadyRunning { pid, .. }) => assert_eq!(pid, Some(me)),
            other => panic!("a second lock must fail, got {other:?}"),
        }
        drop(lock);
        assert_eq!(holder(dir.path()).unwrap(), None);
    }

    #[test]
    fn a_pid_written_into_an_unheld_lock_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(paths::lock_path(dir.path()), "1\nhttps://x\n").unwrap();
        assert_eq!(holder(dir.path()).unwrap(), None);
    }
}
