//! The files of an app image: the installed binary, the shared libraries `ldd` says it
//! loads, and the little of `/etc` a distroless base gives (users, CA certificates).

use super::{ImageError, ImageSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The image's non-root user, as in the Dockerfiles (`USER 10001:10001`).
pub(crate) const UID: u64 = 10001;

/// One entry of the root filesystem, keyed by its absolute path in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    Dir { mode: u32, owner: u64 },
    File { mode: u32, data: Vec<u8> },
}

/// Every entry of the image's root filesystem, parents before children.
pub(crate) type RootFs = BTreeMap<String, Entry>;

/// Gathers the root filesystem for `spec` from the binary at `binary`.
pub(crate) fn gather(spec: &ImageSpec, binary: &Path) -> Result<RootFs, ImageError> {
    let mut fs = RootFs::new();
    for dir in ["/etc", "/usr/local/bin", "/home"] {
        add_dir(&mut fs, dir, 0o755, 0);
    }
    add_dir(&mut fs, "/tmp", 0o1777, 0);
    add_dir(&mut fs, "/home/nonroot", 0o700, UID);
    add_file(&mut fs, &spec.entrypoint(), 0o755, read(binary)?);
    for library in shared_libraries(binary)? {
        let data = read(&library)?;
        add_file(&mut fs, &library.to_string_lossy(), 0o755, data);
    }
    add_file(&mut fs, "/etc/passwd", 0o644, PASSWD.as_bytes().to_vec());
    add_file(&mut fs, "/etc/group", 0o644, GROUP.as_bytes().to_vec());
    add_file(
        &mut fs,
        "/etc/nsswitch.conf",
        0o644,
        b"hosts: files dns\n".to_vec(),
    );
    let certs = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if certs.is_file() {
        add_file(&mut fs, &certs.to_string_lossy(), 0o644, read(certs)?);
    }
    Ok(fs)
}

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
nonroot:x:10001:10001:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\nnonroot:x:10001:\n";

fn read(path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn add_dir(fs: &mut RootFs, path: &str, mode: u32, owner: u64) {
    add_parents(fs, path);
    fs.insert(path.to_string(), Entry::Dir { mode, owner });
}

fn add_file(fs: &mut RootFs, path: &str, mode: u32, data: Vec<u8>) {
    add_parents(fs, path);
    fs.insert(path.to_string(), Entry::File { mode, data });
}

fn add_parents(fs: &mut RootFs, path: &str) {
    let mut parent = Path::new(path).parent();
    while let Some(dir) = parent.filter(|d| *d != Path::new("/")) {
        fs.entry(dir.to_string_lossy().into_owned())
            .or_insert(Entry::Dir {
                mode: 0o755,
                owner: 0,
            });
        parent = dir.parent();
    }
}

/// The absolute paths of the shared objects `binary` loads, its ELF interpreter included.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|source| ImageError::Ldd {
            binary: binary.to_path_buf(),
            message: format!(
                "cannot run ldd ({source}); install it with `apt-get install libc-bin`"
            ),
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    if !output.status.success() {
        return Err(ImageError::Ldd {
            binary: binary.to_path_buf(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    parse_ldd(&text).map_err(|line| ImageError::Ldd {
        binary: binary.to_path_buf(),
        message: format!("a library is missing on this machine: {line}"),
    })
}

/// Paths from `ldd` output; `Err(line)` names a library ldd could not find.
fn parse_ldd(text: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.contains("=> not found") {
            return Err(line.to_string());
        }
        let path = match line.split_once("=>") {
            Some((_, after)) => after.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            paths.push(PathBuf::from(path));
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_libraries_and_the_interpreter_but_not_the_vdso() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
            \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        assert_eq!(
            parse_ldd(text).unwrap(),
            [
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib64/ld-linux-x86-64.so.2"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn a_missing_library_is_named() {
        let text = "\tlibssl.so.3 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n";
        assert_eq!(parse_ldd(text).unwrap_err(), "libssl.so.3 => not found");
    }

    #[test]
    fn parents_come_first_and_keep_explicit_modes() {
        let mut fs = RootFs::new();
        add_dir(&mut fs, "/tmp", 0o1777, 0);
        add_file(&mut fs, "/lib/x86_64-linux-gnu/libc.so.6", 0o755, vec![1]);
        let keys: Vec<&str> = fs.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "/lib",
                "/lib/x86_64-linux-gnu",
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/tmp"
            ]
        );
        assert_eq!(
            fs["/tmp"],
            Entry::Dir {
                mode: 0o1777,
                owner: 0
            }
        );
    }
}
