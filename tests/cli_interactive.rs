//! The interactive walkthrough in a real terminal (tmux): prompts appear, answers advance,
//! Ctrl-C saves progress and says how to resume, the next run resumes there, and a
//! yes/no question waits for its answer.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A private tmux server, killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(dir: &Path, command: &str) -> Self {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let socket = dir.join(format!(
            "tmux-{}.sock",
            STARTED.fetch_add(1, Ordering::SeqCst)
        ));
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "150",
                "-y",
                "50",
                command,
            ])
            .status()
            .expect("tmux is installed");
        assert!(status.success(), "tmux starts");
        Self { socket }
    }

    fn send(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["capture-pane", "-p", "-J", "-S", "-200", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` `count` times, or fails showing the screen.
    fn wait_for(&self, text: &str, count: usize) -> String {
        self.wait_within(text, count, Duration::from_secs(30))
    }

    /// [`Tmux::wait_for`] with a deadline of its own, for steps that start pods.
    fn wait_within(&self, text: &str, count: usize, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= count {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {text:?} x{count}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}

fn dead_cluster_kubeconfig(dir: &Path) -> (PathBuf, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: dead\nclusters:\n- name: dead\n  cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: dead\n  context:\n    cluster: dead\n    user: dead\nusers:\n- name: dead\n  user:\n    token: t\n"
        ),
    )
    .unwrap();
    (path, port)
}

fn lesson_command(dir: &Path, kubeconfig: &Path, extra: &str) -> String {
    format!(
        "env HK8S_DATA_DIR={} NO_COLOR=1 {} lesson 0 --kubeconfig {} {extra}; echo EXITED-$?; sleep 30",
        dir.display(),
        env!("CARGO_BIN_EXE_hk8s"),
        kubeconfig.display()
    )
}

#[test]
fn prompts_advance_and_ctrl_c_saves_progress_for_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, port) = dead_cluster_kubeconfig(dir.path());
    let tmux = Tmux::start(dir.path(), &lesson_command(dir.path(), &kubeconfig, ""));

    let screen = tmux.wait_for("Step 1/4: Where hk8s looks", 1);
    assert!(
        screen.contains("Using cluster dead"),
        "names the cluster first:\n{screen}"
    );
    tmux.wait_for("? Continue? [Enter = run, s = skip, q = quit]", 1);
    tmux.send(&["Enter"]);
    tmux.wait_for("Step 2/4: Getting a cluster", 1);
    tmux.wait_for("? Continue? [Enter = run, s = skip, q = quit]", 2);
    tmux.send(&["s", "Enter"]);
    tmux.wait_for("Step 3/4: Which cluster is this?", 1);
    let screen = tmux.wait_for("? Run this step?", 1);
    assert!(screen.contains("skipped"), "s skips:\n{screen}");
    assert!(
        screen.contains("kubectl equivalent: $ kubectl config current-context"),
        "{screen}"
    );
    tmux.send(&["C-c"]);
    let screen = tmux.wait_for("EXITED-130", 1);
    assert!(
        screen.contains("Interrupted in lesson 0, step 3")
            && screen.contains("Resume with `hk8s lesson 0`"),
        "Ctrl-C says where and how to resume:\n{screen}"
    );

    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("progress.json")).unwrap())
            .unwrap();
    let key = format!("dead@http://127.0.0.1:{port}/demo");
    assert_eq!(
        saved["targets"][&key]["0"]["steps_done"], 2,
        "two steps saved: {saved}"
    );
    assert_eq!(saved["targets"][&key]["0"]["completed"], false);
    drop(tmux);

    let tmux = Tmux::start(dir.path(), &lesson_command(dir.path(), &kubeconfig, ""));
    let screen = tmux.wait_for("Step 3/4: Which cluster is this?", 1);
    assert!(screen.contains("resuming at step 3 of 4"), "{screen}");
    assert!(
        !screen.contains("Step 1/4"),
        "does not replay finished steps:\n{screen}"
    );
    tmux.wait_for("? Run this step?", 1);
    tmux.send(&["q", "Enter"]);
    let screen = tmux.wait_for("EXITED-", 1);
    assert!(screen.contains("Stopped before step 3"), "{screen}");
    assert!(
        screen.contains("EXITED-0"),
        "quitting is not an error:\n{screen}"
    );
}

#[test]
fn a_failing_step_says_what_happened_and_how_to_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, _) = dead_cluster_kubeconfig(dir.path());
    let tmux = Tmux::start(
        dir.path(),
        &lesson_command(dir.path(), &kubeconfig, "--step 3"),
    );
    tmux.wait_for("? Run this step?", 1);
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("EXITED-", 1);
    assert!(screen.contains("does not answer"), "{screen}");
    assert!(screen.contains("hk8s lesson 0 --step 3"), "{screen}");
    assert!(screen.contains("EXITED-1"), "{screen}");
    assert!(!screen.contains("panicked"), "{screen}");
}

#[test]
fn a_confirmation_waits_for_an_answer_and_no_declines() {
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "env -u KUBECONFIG -u HK8S_KUBECONFIG HOME={dir} HK8S_DATA_DIR={dir} NO_COLOR=1 {hk8s} lesson 1; echo EXITED-$?; sleep 30",
        dir = dir.path().display(),
        hk8s = env!("CARGO_BIN_EXE_hk8s"),
    );
    let tmux = Tmux::start(dir.path(), &command);
    let screen = tmux.wait_for("Start hk8s's built-in sandbox? [y/N]", 1);
    assert!(
        screen.contains("No Kubernetes cluster is configured"),
        "says why it asks:\n{screen}"
    );
    tmux.send(&["n", "Enter"]);
    let screen = tmux.wait_for("EXITED-", 1);
    assert!(screen.contains("EXITED-1"), "{screen}");
    assert!(
        screen.contains("no Kubernetes cluster is configured") && screen.contains("--sandbox"),
        "declining says what to do instead:\n{screen}"
    );
    assert!(
        !screen.contains("Starting the built-in sandbox"),
        "no means no:\n{screen}"
    );
}

/// Stops the sandbox a test started through hk8s, pass or fail.
struct SandboxDown(PathBuf);

impl Drop for SandboxDown {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_hk8s"))
            .args(["sandbox", "down"])
            .env("HK8S_SANDBOX_DIR", &self.0)
            .status();
    }
}

/// A learner whose KUBECONFIG names a file that does not exist, with a home of their own.
fn missing_kubeconfig_command(dir: &Path, args: &str) -> String {
    format!(
        "env -u HK8S_KUBECONFIG -u HK8S_CONTEXT KUBECONFIG={dir}/missing-kubeconfig HOME={dir} HK8S_DATA_DIR={dir}/data HK8S_SANDBOX_DIR={dir}/sandbox NO_COLOR=1 {hk8s} {args}; echo EXITED-$?; sleep 60",
        dir = dir.display(),
        hk8s = env!("CARGO_BIN_EXE_hk8s"),
    )
}

#[test]
fn a_missing_kubeconfig_file_offers_the_sandbox_and_the_choice_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let _down = SandboxDown(dir.path().join("sandbox"));
    let tmux = Tmux::start(
        dir.path(),
        &missing_kubeconfig_command(dir.path(), "lesson 0"),
    );
    let screen = tmux.wait_for("Start hk8s's built-in sandbox? [y/N]", 1);
    assert!(
        screen.contains("missing-kubeconfig, which does not exist"),
        "a missing KUBECONFIG file means no cluster, said plainly:\n{screen}"
    );
    assert!(!screen.contains("cannot read the kubeconfig"), "{screen}");
    tmux.send(&["y", "Enter"]);
    for answered in 1..=4 {
        tmux.wait_for("[Enter = run, s = skip, q = quit]", answered);
        tmux.send(&["Enter"]);
    }
    let screen = tmux.wait_for("EXITED-", 1);
    assert!(
        screen.contains("Starting the built-in sandbox") && screen.contains("EXITED-0"),
        "{screen}"
    );
    assert!(screen.contains("Next: `hk8s lesson 1`"), "{screen}");
    drop(tmux);

    let tmux = Tmux::start(
        dir.path(),
        &missing_kubeconfig_command(dir.path(), "lesson 1"),
    );
    let screen = tmux.wait_for("[Enter = run, s = skip, q = quit]", 1);
    assert!(
        !screen.contains("Start hk8s's built-in sandbox?"),
        "the sandbox, once chosen, is not offered again:\n{screen}"
    );
    assert!(
        screen.contains("Using cluster hk8s-sandbox (hk8s sandbox)")
            && screen.contains("as you chose before"),
        "lesson 1 uses the remembered sandbox without --sandbox:\n{screen}"
    );
    assert!(
        !screen.contains("Starting the built-in sandbox"),
        "the running sandbox is reused:\n{screen}"
    );
    tmux.send(&["q", "Enter"]);
    tmux.wait_for("EXITED-0", 1);
}

#[test]
fn a_skipped_step_is_not_saved_and_a_cluster_gone_mid_watch_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox_dir = dir.path().join("sandbox");
    let _down = SandboxDown(sandbox_dir.clone());
    let tmux = Tmux::start(
        dir.path(),
        &missing_kubeconfig_command(dir.path(), "lesson 1 --sandbox"),
    );
    let screen = tmux.wait_for("[Enter = run, s = skip, q = quit]", 1);
    assert!(screen.contains("Create the namespace"), "{screen}");
    tmux.send(&["s", "Enter"]);
    let screen = tmux.wait_for("[Enter = run, s = skip, q = quit]", 2);
    assert!(screen.contains("Wait until it is Active"), "{screen}");
    tmux.send(&["Enter"]);
    tmux.wait_for("waiting for the namespace", 1);
    let stopped = Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(["sandbox", "down"])
        .env("HK8S_SANDBOX_DIR", &sandbox_dir)
        .status()
        .unwrap();
    assert!(stopped.success());
    tmux.wait_for("the cluster stopped answering", 1);
    let screen = tmux.wait_within("EXITED-", 1, Duration::from_secs(90));
    assert!(
        screen.contains("the cluster stopped answering while waiting for")
            && screen.contains("hk8s sandbox up --detach")
            && screen.contains("hk8s lesson 1 --step 2"),
        "says what happened and how to resume:\n{screen}"
    );
    assert!(!screen.contains("timed out"), "{screen}");
    let saved = std::fs::read_to_string(dir.path().join("data/progress.json")).unwrap_or_default();
    assert!(
        !saved.contains("\"steps_done\": 1") && !saved.contains("\"completed\": true"),
        "the skipped step is not saved as done: {saved}"
    );
}

#[test]
fn lesson_3_replays_the_watch_and_offers_to_redo_a_message_redis_lost() {
    support::ensure_app_binaries();
    let dir = tempfile::tempdir().unwrap();
    let _down = SandboxDown(dir.path().join("sandbox"));
    let tmux = Tmux::start(
        dir.path(),
        &missing_kubeconfig_command(dir.path(), "lesson 3 --sandbox"),
    );
    let long = Duration::from_secs(240);
    tmux.wait_within("Run lesson 1's steps now", 1, long);
    tmux.send(&["y", "Enter"]);
    tmux.wait_within("Run lesson 2's steps now", 1, long);
    tmux.send(&["y", "Enter"]);
    for step in 1..=4 {
        tmux.wait_within("[Enter = run, s = skip, q = quit]", step, long);
        tmux.send(&["Enter"]);
    }
    let screen = tmux.wait_within("[Enter = run, s = skip, q = quit]", 5, long);
    assert!(
        screen.contains("Step 5/9: Watch the pods start"),
        "{screen}"
    );
    // The learner reads the prose while the pods start.
    std::thread::sleep(Duration::from_secs(20));
    tmux.send(&["Enter"]);
    let screen = tmux.wait_within(
        "✔ waited for deployments redis, hello-k8s-api, hello-k8s-frontend to be Available",
        1,
        long,
    );
    let watch = &screen[screen.find("Step 5/9").unwrap()..];
    assert!(
        watch.contains("What already happened (events since this lesson run began):"),
        "a watch that starts late replays the events first:\n{watch}"
    );
    for event in [
        "Scheduled pod/redis-",
        "Started pod/hello-k8s-api-",
        "Started pod/hello-k8s-frontend-",
    ] {
        assert!(watch.contains(event), "replays {event:?}:\n{watch}");
    }
    assert!(
        watch.contains("NAME") && watch.contains("READY") && watch.contains("STATUS"),
        "pods are shown as kubectl get pods -w shows them:\n{watch}"
    );
    let running = ready_running_rows(watch);
    assert!(
        running >= 3,
        "three pods shown 1/1 Running ({running}):\n{watch}"
    );
    for step in 6..=7 {
        tmux.wait_within("[Enter = run, s = skip, q = quit]", step, long);
        tmux.send(&["Enter"]);
    }
    let screen = tmux.wait_within("[Enter = run, s = skip, q = quit]", 8, long);
    assert!(
        screen.contains("✔ posted \"Hello from lesson 3"),
        "{screen}"
    );
    tmux.send(&["q", "Enter"]);
    tmux.wait_for("EXITED-0", 1);
    drop(tmux);
    lose_redis_data(&dir.path().join("sandbox"));

    let tmux = Tmux::start(
        dir.path(),
        &missing_kubeconfig_command(dir.path(), "lesson 3"),
    );
    let screen = tmux.wait_within("[Enter = run, s = skip, q = quit]", 1, long);
    assert!(screen.contains("resuming at step 8 of 9"), "{screen}");
    tmux.send(&["Enter"]);
    let screen = tmux.wait_within(
        "Redo step 7 (Leave a kind message) now, then step 8 again? [y/N]",
        1,
        long,
    );
    assert!(
        screen.contains("Step 8 needs what step 7 (Leave a kind message) made, and it is missing"),
        "says which earlier result is missing:\n{screen}"
    );
    assert!(!screen.contains("--step 8"), "{screen}");
    tmux.send(&["y", "Enter"]);
    let screen = tmux.wait_within("[Enter = run, s = skip, q = quit]", 2, long);
    let redo = &screen[screen.find("Redoing step 7").expect("redoes step 7")..];
    assert!(
        redo.contains("✔ posted \"Hello from lesson 3") && redo.contains("is there"),
        "step 7 runs again, then step 8 reads the message back:\n{redo}"
    );
    tmux.send(&["Enter"]);
    let screen = tmux.wait_within("EXITED-", 1, long);
    assert!(
        screen.contains("Lesson 3 complete") && screen.contains("EXITED-0"),
        "{screen}"
    );
}

/// Deletes the Redis pod of the Deployment (no volume: its replacement starts empty) with
/// the real kubectl, and waits for the replacement to be ready.
fn lose_redis_data(sandbox_dir: &Path) {
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(sandbox_dir.join("kubeconfig"))
            .args(args)
            .output()
            .expect("kubectl is installed")
    };
    let out = kubectl(&["delete", "pod", "-l", "app=redis", "-n", "demo"]);
    assert!(out.status.success(), "{}", support::text(&out));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = kubectl(&[
            "wait",
            "--for=condition=Ready",
            "pod",
            "-l",
            "app=redis",
            "-n",
            "demo",
            "--timeout=10s",
        ]);
        if out.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis is back: {}",
            support::text(&out)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Pod rows that show `1/1` and `Running`, as kubectl's READY and STATUS columns.
fn ready_running_rows(screen: &str) -> usize {
    screen
        .lines()
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() == 4 && cols[1] == "1/1" && cols[2] == "Running"
        })
        .count()
}
