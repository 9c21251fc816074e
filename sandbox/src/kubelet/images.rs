//! Container images as local programs: the sandbox has no container engine, so an image
//! is mapped, by repository name (any registry, tag or digest), to a program on this machine.
//!
//! Built in: `hello-k8s-frontend` and `hello-k8s-api` (the companion app's binaries) and
//! `redis` (`redis-server`). Users add mappings in `<state-dir>/images.yaml`:
//!
//! ```yaml
//! images:
//!   my-app: /usr/local/bin/my-app          # a path, or a name looked up on PATH
//!   web:
//!     program: python3                    # the image's ENTRYPOINT: [program]
//!     args: ["-m", "http.server"]          # the image's default arguments (its CMD)
//!     tags: ["1.0", "latest"]              # the tags it has (any tag when left out)
//!   python:
//!     entrypoint: []                       # or the image config's ENTRYPOINT and CMD
//!     cmd: ["python3"]
//! ```
//!
//! A container's `command` replaces the image's ENTRYPOINT and its `args` the CMD, as the
//! container runtime combines them (see [`Program::argv`]). The built-in images have their
//! published images' ENTRYPOINT and CMD: hello-k8s-* run their binary as the ENTRYPOINT with
//! no CMD; redis runs `docker-entrypoint.sh` with CMD `redis-server`, whose rule (first
//! argument an option or a `.conf` file: prepend `redis-server`) is applied here.
//!
//! Tags are checked as a registry would: `hello-k8s-frontend` and `hello-k8s-api` have the
//! app's own version and `latest`; `redis` has the installed redis-server's version, its
//! major and minor, its major, `latest`, and (so the tutorial's `redis:7.2.4` runs on any
//! Redis 7) the versions of the same major. Anything else, and any digest, is not found:
//! the kubelet reports ErrImagePull and then ImagePullBackOff.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What an image runs as: its main program on this machine, and the image's ENTRYPOINT and
/// CMD, which a container's command and args replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub path: PathBuf,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub kind: ProgramKind,
}

/// The official redis image's ENTRYPOINT, whose argument rule [`Program::argv`] applies.
const REDIS_ENTRYPOINT: &str = "docker-entrypoint.sh";

impl Program {
    /// The process's argv, combined as containerd does: `command` replaces the ENTRYPOINT,
    /// `args` the CMD; with neither the image's ENTRYPOINT and CMD run.
    pub fn argv(&self, command: Vec<String>, args: Vec<String>) -> Result<Vec<String>, String> {
        let (command, args) = match (command.is_empty(), args.is_empty()) {
            (false, _) => (command, args),
            (true, false) => (self.entrypoint.clone(), args),
            (true, true) => (self.entrypoint.clone(), self.cmd.clone()),
        };
        let mut argv = command;
        argv.extend(args);
        if self.kind == ProgramKind::Redis && argv.first().is_some_and(|a| a == REDIS_ENTRYPOINT) {
            argv.remove(0);
            let first = argv.first().map(String::as_str).unwrap_or_default();
            if first.starts_with('-') || first.ends_with(".conf") {
                argv.insert(0, "redis-server".into());
            }
        }
        if argv.is_empty() {
            return Err("failed to generate spec: no command specified".into());
        }
        Ok(argv)
    }

    /// Whether `name` (argv[0]) is the image's main program rather than another one on PATH.
    pub fn is_main(&self, name: &str) -> bool {
        Path::new(name).file_name() == self.path.file_name()
    }
}

/// Which built-in behaviour the kubelet applies (e.g. redis gets `--bind <podIP>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramKind {
    Frontend,
    Api,
    Redis,
    User,
}

/// Why an image has no program to run on this machine, or the mappings cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "image {image:?} runs the program `{program}`, which was not found (looked next to the \
         sandbox's executable, on PATH and in the cargo target directory); {hint}"
    )]
    ProgramNotFound {
        image: String,
        program: String,
        hint: String,
    },
    #[error(
        "image {image:?} has no local program: the sandbox knows hello-k8s-frontend, \
         hello-k8s-api and redis; map {repository:?} to a program in {config}"
    )]
    Unknown {
        image: String,
        repository: String,
        config: String,
    },
    #[error(
        "rpc error: code = NotFound desc = failed to pull and unpack image \"{reference}\": \
         failed to resolve reference \"{reference}\": {reference}: not found"
    )]
    TagNotFound { reference: String },
    #[error("cannot read the image mappings in {path}: {source}")]
    Config {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    images: BTreeMap<String, Mapping>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Mapping {
    Program(String),
    Full {
        program: Option<String>,
        args: Option<Vec<String>>,
        entrypoint: Option<Vec<String>>,
        cmd: Option<Vec<String>>,
        #[serde(default)]
        tags: Option<Vec<String>>,
    },
}

/// An image's ENTRYPOINT, CMD and tags (any tag when `None`).
type ImageConfig = (Vec<String>, Vec<String>, Option<Vec<String>>);

impl Mapping {
    /// The image's ENTRYPOINT, CMD and tags; `program`/`args` and `entrypoint`/`cmd` are
    /// two spellings of the same thing and do not mix.
    fn split(self) -> Result<ImageConfig, String> {
        match self {
            Mapping::Program(program) => Ok((vec![program], Vec::new(), None)),
            Mapping::Full {
                program,
                args,
                entrypoint,
                cmd,
                tags,
            } => match (program, args, entrypoint, cmd) {
                (Some(program), args, None, None) => {
                    Ok((vec![program], args.unwrap_or_default(), tags))
                }
                (None, None, entrypoint, cmd) if entrypoint.is_some() || cmd.is_some() => Ok((
                    entrypoint.unwrap_or_default(),
                    cmd.unwrap_or_default(),
                    tags,
                )),
                _ => Err("give either `program` (and `args`) or `entrypoint` and `cmd`".into()),
            },
        }
    }
}

/// Resolves images to programs; user mappings win over the built-in ones. The mappings
/// file is re-read when it changes, so a mapping added while the sandbox runs is used by
/// the next container start.
#[derive(Debug, Clone, Default)]
pub struct ImageResolver {
    user: Arc<Mutex<UserMappings>>,
    versions: Arc<Mutex<BTreeMap<PathBuf, Option<String>>>>,
    config_path: PathBuf,
    extra_dirs: Vec<PathBuf>,
}

#[derive(Debug, Default)]
struct UserMappings {
    modified: Option<SystemTime>,
    images: BTreeMap<String, Mapping>,
}

type Loaded = (Option<SystemTime>, BTreeMap<String, Mapping>);

fn read_config(config_path: &Path) -> Result<Loaded, ImageError> {
    let config_error = |source: Box<dyn std::error::Error + Send + Sync>| ImageError::Config {
        path: config_path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(config_path) {
        Ok(text) => {
            let modified = std::fs::metadata(config_path)
                .and_then(|m| m.modified())
                .ok();
            let file = serde_saphyr::from_str::<ConfigFile>(&text)
                .map_err(|e| config_error(Box::new(e)))?;
            Ok((modified, file.images))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, BTreeMap::new())),
        Err(e) => Err(config_error(Box::new(e))),
    }
}

impl ImageResolver {
    /// Loads `<state-dir>/images.yaml` if it exists; a malformed file is an error, never ignored.
    pub fn load(state_dir: &Path) -> Result<Self, ImageError> {
        let config_path = crate::paths::images_config_path(state_dir);
        let (modified, images) = read_config(&config_path)?;
        Ok(Self {
            user: Arc::new(Mutex::new(UserMappings { modified, images })),
            versions: Arc::default(),
            config_path,
            extra_dirs: Vec::new(),
        })
    }

    /// Also looks for programs in `dir` first (e.g. a freshly built target directory).
    pub fn with_search_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.extra_dirs.push(dir.into());
        self
    }

    /// The program an image runs as: the user's mapping for its repository, else one of the
    /// tutorial's images (frontend, API, Redis); any other image is unknown.
    pub fn resolve(&self, image: &str) -> Result<Program, ImageError> {
        let repository = repository_name(image);
        let mapping = {
            let mut user = self.user.lock().unwrap_or_else(|e| e.into_inner());
            let modified = std::fs::metadata(&self.config_path)
                .and_then(|m| m.modified())
                .ok();
            if modified != user.modified && !self.config_path.as_os_str().is_empty() {
                let (modified, images) = read_config(&self.config_path)?;
                *user = UserMappings { modified, images };
            }
            user.images.get(repository).cloned()
        };
        if let Some(mapping) = mapping {
            return self.resolve_user(image, repository, mapping);
        }
        let (program, kind, hint) = match repository {
            "hello-k8s-frontend" => (
                "hello-k8s-frontend",
                ProgramKind::Frontend,
                "build it with `cargo build -p hello-k8s` (or `cargo install --path app`)",
            ),
            "hello-k8s-api" => (
                "hello-k8s-api",
                ProgramKind::Api,
                "build it with `cargo build -p hello-k8s` (or `cargo install --path app`)",
            ),
            "redis" | "redis-server" => (
                "redis-server",
                ProgramKind::Redis,
                "install Redis: `sudo apt install redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)",
            ),
            _ => {
                return Err(ImageError::Unknown {
                    image: image.to_string(),
                    repository: repository.to_string(),
                    config: self.config_path.display().to_string(),
                });
            }
        };
        let path = self
            .find_program(program)
            .ok_or_else(|| ImageError::ProgramNotFound {
                image: image.to_string(),
                program: program.to_string(),
                hint: hint.to_string(),
            })?;
        match kind {
            ProgramKind::Redis => {
                let version = self.redis_version(&path);
                has_tag(image, |tag| redis_has(version.as_deref(), tag))?;
            }
            _ => has_tag(image, |tag| {
                tag == "latest" || tag == env!("CARGO_PKG_VERSION")
            })?,
        }
        let (entrypoint, cmd) = match kind {
            ProgramKind::Redis => (vec![REDIS_ENTRYPOINT.into()], vec!["redis-server".into()]),
            _ => (vec![format!("/usr/local/bin/{program}")], Vec::new()),
        };
        Ok(Program {
            path,
            entrypoint,
            cmd,
            kind,
        })
    }

    /// A user's mapping from images.yaml: its tags checked, its main program (the first
    /// word of its ENTRYPOINT, else of its CMD) found.
    fn resolve_user(
        &self,
        image: &str,
        repository: &str,
        mapping: Mapping,
    ) -> Result<Program, ImageError> {
        let fix = format!(
            "fix the mapping for {repository:?} in {}",
            self.config_path.display()
        );
        let (entrypoint, cmd, tags) = mapping.split().map_err(|e| ImageError::Config {
            path: self.config_path.display().to_string(),
            source: format!("image {repository:?}: {e}").into(),
        })?;
        if let Some(tags) = tags {
            has_tag(image, |tag| tags.iter().any(|t| t == tag))?;
        }
        let program = entrypoint
            .first()
            .or(cmd.first())
            .cloned()
            .unwrap_or_default();
        let path = Some(&program)
            .filter(|p| !p.is_empty())
            .and_then(|p| self.find_program(p))
            .ok_or_else(|| ImageError::ProgramNotFound {
                image: image.to_string(),
                program: program.clone(),
                hint: fix,
            })?;
        Ok(Program {
            path,
            entrypoint,
            cmd,
            kind: ProgramKind::User,
        })
    }

    /// The installed redis-server's version (`7.0.15`), asked once per program.
    fn redis_version(&self, path: &Path) -> Option<String> {
        let mut known = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        known
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let out = std::process::Command::new(path)
                    .arg("--version")
                    .output()
                    .ok()?;
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let version = text.split_whitespace().find_map(|w| w.strip_prefix("v="))?;
                Some(version.to_string())
            })
            .clone()
    }

    /// Looks a program up: an explicit path as is; a bare name in the extra directories, next to
    /// the current executable (and its parent, for test binaries in `target/*/deps`), on PATH,
    /// then in the cargo target directory.
    pub fn find_program(&self, name: &str) -> Option<PathBuf> {
        let as_path = Path::new(name);
        if as_path.components().count() > 1 {
            return is_executable(as_path).then(|| as_path.to_path_buf());
        }
        candidate_dirs(&self.extra_dirs)
            .into_iter()
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
    }
}

fn candidate_dirs(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = extra.to_vec();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.push(dir.to_path_buf());
        if dir.file_name().is_some_and(|n| n == "deps")
            && let Some(parent) = dir.parent()
        {
            dirs.push(parent.to_path_buf());
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_MANIFEST_DIR").map(|d| PathBuf::from(d).join("../target"))
        });
    if let Some(target) = target {
        dirs.push(target.join("release"));
        dirs.push(target.join("debug"));
    }
    dirs
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether the image's tag (`latest` when it has none) is one the image has; a digest is
/// never known, as the sandbox has no image content to hash.
fn has_tag(image: &str, known: impl Fn(&str) -> bool) -> Result<(), ImageError> {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    if digest.is_none() && known(tag.unwrap_or("latest")) {
        return Ok(());
    }
    let mut reference = qualified(name);
    if tag.is_none() && digest.is_none() {
        reference.push_str(":latest");
    }
    if let Some(digest) = digest {
        reference = format!("{reference}@{digest}");
    }
    Err(ImageError::TagNotFound { reference })
}

/// The image name as a container runtime resolves it: Docker Hub's `docker.io/library/`
/// for bare names, `docker.io/` for `user/name`.
fn qualified(name: &str) -> String {
    let first = name.split('/').next().unwrap_or(name);
    let has_registry =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    match (has_registry, name.contains('/')) {
        (true, _) => name.to_string(),
        (false, true) => format!("docker.io/{name}"),
        (false, false) => format!("docker.io/library/{name}"),
    }
}

/// The redis tags an installed version stands for: itself, its major.minor, its major,
/// `latest`, and other versions of its major.
fn redis_has(version: Option<&str>, tag: &str) -> bool {
    let Some(version) = version else {
        return true;
    };
    let major = version.split('.').next().unwrap_or(version);
    let numeric = |t: &str| {
        !t.is_empty()
            && t.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    tag == "latest"
        || tag == version
        || (numeric(tag) && tag.split('.').next() == Some(major) && tag.split('.').count() <= 3)
}

/// The repository's last path component without registry, tag or digest:
/// `docker.io/library/redis:7.2.4` and `redis@sha256:…` are both `redis`.
pub fn repository_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_ignore_registry_tag_and_digest() {
        assert_eq!(repository_name("redis"), "redis");
        assert_eq!(repository_name("redis:7.2.4"), "redis");
        assert_eq!(repository_name("docker.io/library/redis:7.2.4"), "redis");
        assert_eq!(
            repository_name("localhost:5000/team/hello-k8s-api:0.1.0"),
            "hello-k8s-api"
        );
        assert_eq!(
            repository_name("gcr.io/x/hello-k8s-frontend@sha256:abc"),
            "hello-k8s-frontend"
        );
    }

    #[test]
    fn user_mappings_win_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            crate::paths::images_config_path(dir.path()),
            "images:\n  redis: sleep\n  web:\n    program: sh\n    args: [\"-c\", \"exit 3\"]\n",
        )
        .unwrap();
        let resolver = ImageResolver::load(dir.path()).unwrap();
        let redis = resolver.resolve("docker.io/redis:7").unwrap();
        assert_eq!(redis.kind, ProgramKind::User);
        assert!(redis.path.ends_with("sleep"));
        let web = resolver.resolve("example.com/web:1").unwrap();
        assert_eq!(web.cmd, vec!["-c", "exit 3"]);
        let unknown = resolver.resolve("nginx:1.25").unwrap_err().to_string();
        assert!(unknown.contains("images.yaml"), "{unknown}");

        std::fs::write(
            crate::paths::images_config_path(dir.path()),
            "images: [oops",
        )
        .unwrap();
        let err = ImageResolver::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("images.yaml"), "{err}");
    }

    #[test]
    fn command_and_args_combine_as_containerd_does() {
        let v = |s: &[&str]| s.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let redis = Program {
            path: "/usr/bin/redis-server".into(),
            entrypoint: v(&[REDIS_ENTRYPOINT]),
            cmd: v(&["redis-server"]),
            kind: ProgramKind::Redis,
        };
        assert_eq!(redis.argv(vec![], vec![]).unwrap(), v(&["redis-server"]));
        assert_eq!(
            redis.argv(vec![], v(&["--port", "7000"])).unwrap(),
            v(&["redis-server", "--port", "7000"])
        );
        assert_eq!(
            redis.argv(vec![], v(&["/etc/r.conf"])).unwrap(),
            v(&["redis-server", "/etc/r.conf"])
        );
        assert_eq!(
            redis.argv(vec![], v(&["redis-cli", "ping"])).unwrap(),
            v(&["redis-cli", "ping"])
        );
        assert_eq!(
            redis.argv(v(&["sh"]), v(&["-c", "x"])).unwrap(),
            v(&["sh", "-c", "x"])
        );
        let web = Program {
            path: "/usr/bin/sleep".into(),
            entrypoint: Vec::new(),
            cmd: v(&["sleep", "9"]),
            kind: ProgramKind::User,
        };
        assert_eq!(web.argv(vec![], vec![]).unwrap(), v(&["sleep", "9"]));
        assert_eq!(web.argv(vec![], v(&["true"])).unwrap(), v(&["true"]));
        assert_eq!(web.argv(v(&["env"]), vec![]).unwrap(), v(&["env"]));
        let none = Program {
            cmd: Vec::new(),
            ..web
        };
        let err = none.argv(vec![], vec![]).unwrap_err();
        assert!(err.contains("no command specified"), "{err}");
    }

    #[test]
    fn unknown_tags_and_digests_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            crate::paths::images_config_path(dir.path()),
            "images:\n  web:\n    program: sh\n    tags: [\"1.0\"]\n",
        )
        .unwrap();
        let resolver = ImageResolver::load(dir.path()).unwrap();
        assert!(resolver.resolve("example.com/team/web:1.0").is_ok());
        let err = resolver.resolve("example.com/team/web:2.0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "rpc error: code = NotFound desc = failed to pull and unpack image \"example.com/team/web:2.0\": failed to resolve reference \"example.com/team/web:2.0\": example.com/team/web:2.0: not found"
        );
        assert!(matches!(
            has_tag("hello-k8s-api:9.9.9", |t| t == "0.1.0"),
            Err(ImageError::TagNotFound { reference }) if reference == "docker.io/library/hello-k8s-api:9.9.9"
        ));
        assert!(has_tag("redis@sha256:abc", |_| true).is_err());
        assert!(has_tag("team/app", |t| t == "latest").is_ok());
        assert!(redis_has(Some("7.0.15"), "7.0"));
        assert!(redis_has(Some("7.0.15"), "7"));
        assert!(redis_has(Some("7.0.15"), "7.2.4"));
        assert!(redis_has(Some("7.0.15"), "latest"));
        assert!(!redis_has(Some("7.0.15"), "6.2"));
        assert!(!redis_has(Some("7.0.15"), "9.9.9"));
        assert!(!redis_has(Some("7.0.15"), "7-alpine"));
    }

    #[test]
    fn mappings_added_while_running_are_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let resolver = ImageResolver::load(dir.path()).unwrap();
        assert!(resolver.resolve("later:1").is_err());
        std::fs::write(
            crate::paths::images_config_path(dir.path()),
            "images:\n  later: sh\n",
        )
        .unwrap();
        assert!(resolver.resolve("later:1").unwrap().path.ends_with("sh"));
    }

    #[test]
    fn missing_programs_carry_an_install_hint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            crate::paths::images_config_path(dir.path()),
            "images:\n  ghost: hk8s-no-such-program\n",
        )
        .unwrap();
        let resolver = ImageResolver::load(dir.path()).unwrap();
        let err = resolver.resolve("ghost:1").unwrap_err().to_string();
        assert!(
            err.contains("hk8s-no-such-program") && err.contains("fix the mapping"),
            "{err}"
        );
    }
}
