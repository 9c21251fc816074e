//! Images of the app for real clusters, without Docker: `build` writes OCI archives of
//! hello-k8s-frontend and hello-k8s-api from the installed binaries, `load` hands them to
//! kind, minikube or k3d, and `push` sends them to a registry.

mod archive;
mod layout;
mod load;
mod push;
mod rootfs;

pub use archive::ArchiveImage;
pub use load::{Loader, load};
pub use push::push;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What can go wrong building, loading or pushing images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "cannot find the {name} binary next to hk8s or on PATH; build it with \
         `cargo build --release -p hello-k8s` (or `cargo install --path app`)"
    )]
    BinaryNotFound { name: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot list the shared libraries of {binary}: {message}")]
    Ldd { binary: PathBuf, message: String },
    #[error("{path} is not an OCI image archive written by `hk8s images build`: {message}")]
    NotAnArchive { path: PathBuf, message: String },
    #[error("no image archives in {dir}; run `hk8s images build --out {dir}` first")]
    NoArchives { dir: PathBuf },
    #[error("{0}")]
    Loader(String),
    #[error("pushing {reference}: {message}")]
    Push { reference: String, message: String },
    #[error("invalid OCI metadata: {0}")]
    Spec(String),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<oci_spec::OciSpecError> for ImageError {
    fn from(err: oci_spec::OciSpecError) -> Self {
        ImageError::Spec(err.to_string())
    }
}

/// One of the app's images: its program, tag and the settings its Dockerfile gives.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub name: &'static str,
    pub tag: String,
    port: u16,
    port_env: &'static str,
}

impl ImageSpec {
    /// The app's two images at hk8s's own version, as the manifests name them.
    pub fn app() -> Vec<ImageSpec> {
        let tag = env!("CARGO_PKG_VERSION").to_string();
        vec![
            ImageSpec {
                name: "hello-k8s-frontend",
                tag: tag.clone(),
                port: 8080,
                port_env: "HKF_PORT",
            },
            ImageSpec {
                name: "hello-k8s-api",
                tag,
                port: 5000,
                port_env: "HKA_PORT",
            },
        ]
    }

    /// The archive's file name, e.g. `hello-k8s-api-0.1.0.oci.tar`.
    pub fn archive_name(&self) -> String {
        format!("{}-{}.oci.tar", self.name, self.tag)
    }

    fn entrypoint(&self) -> String {
        format!("/usr/local/bin/{}", self.name)
    }

    fn env(&self) -> Vec<String> {
        vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            format!("{}={}", self.port_env, self.port),
        ]
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            ("org.opencontainers.image.title".into(), self.name.into()),
            ("org.opencontainers.image.version".into(), self.tag.clone()),
            (
                "org.opencontainers.image.description".into(),
                "hello-k8s, the three-tier app of the hk8s Kubernetes tutorial".into(),
            ),
            (
                "org.opencontainers.image.licenses".into(),
                "Apache-2.0".into(),
            ),
        ])
    }

    /// The name containerd (and so kind and k3d) gives the image on import.
    fn containerd_name(&self) -> String {
        format!("docker.io/library/{}:{}", self.name, self.tag)
    }
}

/// One archive `build` wrote.
#[derive(Debug, Clone)]
pub struct Built {
    pub reference: String,
    pub path: PathBuf,
    pub manifest_digest: String,
    pub bytes: u64,
}

/// Writes the archive of `spec` into `out`, from the binary found next to hk8s or on PATH.
pub fn build(spec: &ImageSpec, out: &Path) -> Result<Built, ImageError> {
    let binary = find_binary(spec.name)?;
    let epoch = modified_seconds(&binary);
    let fs = rootfs::gather(spec, &binary)?;
    let image = layout::build(spec, &fs, epoch)?;
    std::fs::create_dir_all(out).map_err(|source| ImageError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let path = out.join(spec.archive_name());
    layout::write_archive(&image, &path, epoch)?;
    let bytes = std::fs::metadata(&path)?.len();
    Ok(Built {
        reference: format!("{}:{}", spec.name, spec.tag),
        path,
        manifest_digest: image.manifest.digest,
        bytes,
    })
}

/// The archives `build` wrote into `dir`, in the app's order.
pub fn archives(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let found: Vec<PathBuf> = ImageSpec::app()
        .iter()
        .map(|spec| dir.join(spec.archive_name()))
        .filter(|path| path.is_file())
        .collect();
    if found.is_empty() {
        return Err(ImageError::NoArchives {
            dir: dir.to_path_buf(),
        });
    }
    Ok(found)
}

/// The binary's modification time, so rebuilding from the same binary gives the same bytes
/// (`SOURCE_DATE_EPOCH` overrides it, as for reproducible builds).
fn modified_seconds(binary: &Path) -> u64 {
    if let Some(epoch) = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return epoch;
    }
    std::fs::metadata(binary)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

/// Looks `name` up next to the running hk8s (and its parent, for test binaries in
/// `target/*/deps`), then on PATH.
fn find_binary(name: &str) -> Result<PathBuf, ImageError> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        if dir.ends_with("deps")
            && let Some(parent) = dir.parent()
        {
            dirs.push(parent.to_path_buf());
        }
        dirs.push(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| ImageError::BinaryNotFound { name: name.into() })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
