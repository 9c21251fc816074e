//! The real `hk8s sandbox up | down | status` around faults: a stale pid in the state
//! directory is never signalled and never blocks `up`, a crashed sandbox does not either,
//! two `up` at once leave one sandbox, the bridge a killed sandbox left is taken back by
//! the next sandbox that asks for its slot, and a full disk (a small tmpfs the test fills) is
//! refused at start-up and reported by `status` while it runs.

mod support;

use support::text;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const HK8S: &str = env!("CARGO_BIN_EXE_hk8s");

fn run(cmd: &mut Command) -> Output {
    support::run_within(cmd, Duration::from_secs(40))
}

fn hk8s(state: &Path, args: &[&str]) -> Output {
    support::sandbox_command(state, args, Duration::from_secs(40))
}

/// The pid in "(pid N)".
fn pid_in(text: &str) -> i32 {
    let start = text.find("(pid ").expect("a pid is named") + 5;
    text[start..]
        .split(')')
        .next()
        .unwrap()
        .parse()
        .expect("a number")
}

fn alive(child: &mut Child) -> bool {
    child.try_wait().unwrap().is_none()
}

/// Stops a background sandbox the test left running (a failed assertion).
struct StopOnDrop(PathBuf);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = hk8s(&self.0, &["down"]);
    }
}

/// A process that is not the sandbox.
struct Bystander(Child);

impl Drop for Bystander {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills the sandbox `pid` with SIGKILL, as a crash would, and waits until it is gone.
fn crash(pid: i32) {
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stale_pid_is_never_signalled_and_never_blocks_up() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    let _guard = StopOnDrop(state.clone());
    std::fs::create_dir_all(&state).unwrap();
    let mut bystander = Bystander(Command::new("sleep").arg("300").spawn().unwrap());
    let pid = bystander.0.id().to_string();
    std::fs::write(state.join("sandbox.pid"), &pid).unwrap();
    std::fs::write(
        state.join("sandbox.lock"),
        format!("{pid}\nhttps://127.0.0.1:1\n"),
    )
    .unwrap();

    let status = hk8s(&state, &["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", text(&status));
    let down = hk8s(&state, &["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("no sandbox runs"), "{}", text(&down));
    assert!(
        alive(&mut bystander.0),
        "`down` signalled a process that is not the sandbox"
    );

    let up = hk8s(&state, &["up", "--detach"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(
        text(&up).contains("running in the background"),
        "{}",
        text(&up)
    );
    let sandbox = pid_in(&text(&up));
    assert_ne!(sandbox.to_string(), pid);
    let down = hk8s(&state, &["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(pid_in(&text(&down)), sandbox);
    assert!(
        alive(&mut bystander.0),
        "`down` signalled a process that is not the sandbox"
    );
}

#[test]
fn a_crashed_sandbox_does_not_block_the_next_up() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    let _guard = StopOnDrop(state.clone());
    let up = hk8s(&state, &["up", "--detach"]);
    assert!(up.status.success(), "{}", text(&up));
    let crashed = pid_in(&text(&up));
    crash(crashed);

    let started = Instant::now();
    let up = hk8s(&state, &["up", "--detach"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(
        text(&up).contains("running in the background"),
        "{}",
        text(&up)
    );
    assert_ne!(pid_in(&text(&up)), crashed);
    assert!(started.elapsed() < Duration::from_secs(20));
    let status = hk8s(&state, &["status"]);
    assert!(status.status.success(), "{}", text(&status));
}

/// The slot of the pod network a sandbox recorded (`None` in process mode).
fn slot(state: &Path) -> Option<u64> {
    let plan = std::fs::read_to_string(state.join("network.json")).ok()?;
    serde_json::from_str::<serde_json::Value>(&plan).ok()?["slot"].as_u64()
}

fn bridge_exists(slot: u64) -> bool {
    Path::new(&format!("/sys/class/net/hk8s{slot}")).exists()
}

#[test]
fn the_bridge_of_a_killed_sandbox_is_taken_back_by_another_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    let _guards = (StopOnDrop(first.clone()), StopOnDrop(second.clone()));
    let up = hk8s(&first, &["up", "--detach"]);
    assert!(up.status.success(), "{}", text(&up));
    let Some(taken) = slot(&first) else {
        return; // process mode: no bridge to leave behind
    };
    let crashed = pid_in(&text(&up));
    crash(crashed);
    assert!(bridge_exists(taken), "a killed sandbox leaves its bridge");

    // Another state directory that asks for the same slot (as its own previous one) and
    // has no record of who held it: the bridge's own alias says its sandbox is gone.
    std::fs::create_dir_all(&second).unwrap();
    for file in ["hk8s-sandbox.json", "network.json"] {
        std::fs::copy(first.join(file), second.join(file)).unwrap();
    }
    std::fs::remove_dir_all(&first).unwrap();
    let up = hk8s(&second, &["up", "--detach"]);
    assert!(up.status.success(), "{}", text(&up));
    assert_eq!(
        slot(&second),
        Some(taken),
        "the abandoned slot is taken back: {}",
        text(&up)
    );
    let status = hk8s(&second, &["status"]);
    assert!(status.status.success(), "{}", text(&status));
    let down = hk8s(&second, &["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(!bridge_exists(taken), "`down` removes the bridge");
}

#[test]
fn two_ups_at_once_leave_one_sandbox_and_tell_the_loser() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    let _guard = StopOnDrop(state.clone());
    let spawn = || {
        Command::new(HK8S)
            .args(["sandbox", "up", "--detach", "--state-dir"])
            .arg(&state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let (a_text, b_text) = (text(&a), text(&b));
    let started = [&a_text, &b_text]
        .iter()
        .filter(|t| t.contains("running in the background"))
        .count();
    assert_eq!(started, 1, "one wins:\n{a_text}\n---\n{b_text}");
    let loser = if a_text.contains("running in the background") {
        &b_text
    } else {
        &a_text
    };
    assert!(
        loser.contains("already runs"),
        "the loser is told:\n{loser}"
    );
    assert_eq!(
        pid_in(&a_text),
        pid_in(&b_text),
        "both name the same sandbox"
    );

    let foreground = hk8s(&state, &["up"]);
    assert!(!foreground.status.success());
    assert!(
        text(&foreground).contains("already runs"),
        "{}",
        text(&foreground)
    );
    assert_eq!(pid_in(&text(&foreground)), pid_in(&a_text));
}

/// A tmpfs of `size`, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir)
    }

    fn fill(&self) -> PathBuf {
        let path = self.0.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![1u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> Output {
    run(Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig))
}

#[test]
fn a_full_disk_is_reported_by_status_and_refused_at_start_up() {
    let disk = SmallDisk::mount("24m");
    let state = disk.0.path().join("sandbox");
    let _guard = StopOnDrop(state.clone());
    let kubeconfig = state.join("kubeconfig");
    let up = hk8s(&state, &["up", "--detach"]);
    assert!(up.status.success(), "{}", text(&up));
    let made = kubectl(
        &kubeconfig,
        &["create", "configmap", "kept", "--from-literal=k=v"],
    );
    assert!(made.status.success(), "{}", text(&made));

    let filler = disk.fill();
    let value = "x".repeat(64 * 1024);
    let refused = (0..200).find_map(|i| {
        let out = kubectl(
            &kubeconfig,
            &[
                "create",
                "configmap",
                &format!("fill-{i}"),
                &format!("--from-literal=k={value}"),
            ],
        );
        (!out.status.success()).then(|| text(&out))
    });
    let refused = refused.expect("a write fails on a full disk");
    assert!(refused.contains("no space left"), "{refused}");
    let status = hk8s(&state, &["status"]);
    assert!(text(&status).contains("NOT READY"), "{}", text(&status));
    assert!(text(&status).contains("no space left"), "{}", text(&status));
    let down = hk8s(&state, &["down"]);
    assert!(down.status.success(), "{}", text(&down));

    // The store may still have room inside its file; either it starts and can be found and
    // stopped, or it refuses clearly and leaves nothing running.
    let up = hk8s(&state, &["up", "--detach"]);
    if up.status.success() {
        let status = hk8s(&state, &["status"]);
        assert!(status.status.success(), "{}", text(&status));
        assert!(hk8s(&state, &["down"]).status.success());
    } else {
        assert!(!text(&up).contains("corrupt"), "{}", text(&up));
        assert!(
            text(&up).to_lowercase().contains("no space left"),
            "{}",
            text(&up)
        );
    }
    let status = hk8s(&state, &["status"]);
    assert_eq!(
        status.status.code(),
        Some(3),
        "nothing is left running: {}",
        text(&status)
    );

    std::fs::remove_file(filler).unwrap();
    let up = hk8s(&state, &["up", "--detach"]);
    assert!(up.status.success(), "{}", text(&up));
    let kept = kubectl(
        &kubeconfig,
        &["get", "configmap", "kept", "-o", "jsonpath={.data.k}"],
    );
    assert_eq!(
        String::from_utf8_lossy(&kept.stdout),
        "v",
        "{}",
        text(&kept)
    );
}
