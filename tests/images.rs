//! `hk8s images`: the archives are judged by real tools from Debian — skopeo reads them,
//! umoci unpacks them, the unpacked root filesystem runs the binary under chroot as the
//! image's user, and a real registry (docker-registry on loopback) takes a push that skopeo
//! reads back.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::text;

const TAG: &str = env!("CARGO_PKG_VERSION");
const IMAGES: [(&str, &str); 2] = [
    ("hello-k8s-frontend", "HKF_PORT"),
    ("hello-k8s-api", "HKA_PORT"),
];

fn hk8s(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("running hk8s")
}

/// Runs a tool the test needs, saying how to install it when it is missing.
fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); `bash scripts/test.sh` installs it")
        })
}

fn ok(out: Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The archives built once for this test binary (the build is what the other tests judge).
fn built() -> &'static Path {
    static BUILT: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    &BUILT.get_or_init(build).1
}

/// Builds the archives into a fresh directory.
fn build() -> (tempfile::TempDir, PathBuf) {
    support::ensure_app_binaries();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("images");
    let printed = ok(
        hk8s(&["images", "build", "--out", out.to_str().unwrap()]),
        "hk8s images build",
    );
    for (name, _) in IMAGES {
        assert!(printed.contains(&format!("{name}:{TAG}")), "{printed}");
    }
    (dir, out)
}

fn archive(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}-{TAG}.oci.tar"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

fn wait_for(port: u16, path: &str, child: &mut Child) -> String {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Some(answer) = http_get(port, path) {
            return answer;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the process exited ({status}) before answering {path}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing answered on port {port} within 20 s");
}

/// Kills the one process it holds when the test ends, whatever happens.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn skopeo_reads_the_archives_with_the_dockerfiles_settings() {
    let out = built();
    for (name, port_env) in IMAGES {
        let location = format!("oci-archive:{}", archive(out, name).display());
        let inspect: serde_json::Value = serde_json::from_str(&ok(
            tool("skopeo", &["inspect", &location]),
            "skopeo inspect",
        ))
        .unwrap();
        assert_eq!(inspect["Os"], "linux", "{inspect}");
        assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(1));
        assert_eq!(inspect["Labels"]["org.opencontainers.image.version"], TAG);
        let config: serde_json::Value = serde_json::from_str(&ok(
            tool("skopeo", &["inspect", "--config", &location]),
            "skopeo inspect --config",
        ))
        .unwrap();
        let config = &config["config"];
        assert_eq!(
            config["User"], "10001:10001",
            "non-root like the Dockerfile"
        );
        assert_eq!(
            config["Entrypoint"],
            serde_json::json!([format!("/usr/local/bin/{name}")])
        );
        let env = config["Env"].to_string();
        assert!(env.contains(port_env), "{env}");
        assert_eq!(config["ExposedPorts"].as_object().map(|p| p.len()), Some(1));
    }
}

#[test]
fn building_twice_gives_the_same_bytes() {
    let first = built();
    let (_b, second) = build();
    for (name, _) in IMAGES {
        let a = std::fs::read(archive(first, name)).unwrap();
        let b = std::fs::read(archive(&second, name)).unwrap();
        assert!(a == b, "{name}: two builds of the same binary differ");
    }
}

#[test]
fn umoci_unpacks_a_root_filesystem_that_runs_under_chroot_as_the_image_user() {
    let (dir, out) = (tempfile::tempdir().unwrap(), built());
    for (name, port_env) in IMAGES {
        let layout = dir.path().join(format!("{name}-layout"));
        std::fs::create_dir_all(&layout).unwrap();
        ok(
            tool(
                "tar",
                &[
                    "-xf",
                    archive(out, name).to_str().unwrap(),
                    "-C",
                    layout.to_str().unwrap(),
                ],
            ),
            "tar -x",
        );
        let bundle = dir.path().join(format!("{name}-bundle"));
        ok(
            tool(
                "umoci",
                &[
                    "unpack",
                    "--image",
                    &format!("{}:{TAG}", layout.display()),
                    bundle.to_str().unwrap(),
                ],
            ),
            "umoci unpack",
        );
        let rootfs = bundle.join("rootfs");
        let port = free_port();
        let child = Command::new("chroot")
            .arg("--userspec=10001:10001")
            .arg(&rootfs)
            .arg(format!("/usr/local/bin/{name}"))
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env(port_env, port.to_string())
            .env("HKA_HOST", "127.0.0.1")
            .env("HKF_HOST", "127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chroot (run the tests as root)");
        let mut running = Running(child);
        let answer = wait_for(port, "/healthz", &mut running.0);
        assert!(answer.starts_with("HTTP/1.1 200"), "{name}: {answer}");
    }
}

/// A CNCF distribution registry (Debian's docker-registry) on a free loopback port.
fn registry(dir: &Path) -> (Running, String) {
    let port = free_port();
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.join("registry-data").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("docker-registry (bash scripts/test.sh installs it)");
    let mut running = Running(child);
    wait_for(port, "/v2/", &mut running.0);
    (running, format!("127.0.0.1:{port}"))
}

#[test]
fn a_push_to_a_real_registry_pulls_back_with_skopeo() {
    let (dir, out) = (tempfile::tempdir().unwrap(), built());
    let (_registry, address) = registry(dir.path());
    let pushed = ok(
        hk8s(&["images", "push", &address, "--dir", out.to_str().unwrap()]),
        "hk8s images push",
    );
    for (name, _) in IMAGES {
        assert!(
            pushed.contains(&format!("{address}/{name}:{TAG}")),
            "{pushed}"
        );
        let local = format!("oci-archive:{}", archive(out, name).display());
        let remote = format!("docker://{address}/{name}:{TAG}");
        let digest = |location: &str| {
            let json = ok(
                tool("skopeo", &["inspect", "--tls-verify=false", location]),
                "skopeo inspect",
            );
            serde_json::from_str::<serde_json::Value>(&json).unwrap()["Digest"].clone()
        };
        assert_eq!(digest(&remote), digest(&local), "{name}: the same manifest");
        let copy = dir.path().join(format!("{name}-pulled"));
        ok(
            tool(
                "skopeo",
                &[
                    "copy",
                    "--src-tls-verify=false",
                    &remote,
                    &format!("oci:{}:{TAG}", copy.display()),
                ],
            ),
            "skopeo copy",
        );
        assert!(copy.join("index.json").is_file());
    }
}

#[test]
fn mistakes_get_errors_that_say_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let out = hk8s(&["images", "push", "127.0.0.1:1", "--dir", dir]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("hk8s images build --out"),
        "{}",
        text(&out)
    );

    let images = built();
    let port = free_port();
    let out = hk8s(&[
        "images",
        "push",
        &format!("127.0.0.1:{port}"),
        "--dir",
        images.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(&format!("is a registry listening at 127.0.0.1:{port}")),
        "{}",
        text(&out)
    );

    let garbage = empty.path().join(format!("hello-k8s-api-{TAG}.oci.tar"));
    std::fs::write(&garbage, b"not a tar").unwrap();
    let out = hk8s(&["images", "push", "localhost:5000", "--dir", dir]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is not an OCI image archive"),
        "{}",
        text(&out)
    );

    let out = Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(["images", "load", "--dir", images.to_str().unwrap()])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("none of kind, minikube or k3d is installed"),
        "{}",
        text(&out)
    );
}
