//! Every "kubectl equivalent" the lessons print runs verbatim: lesson by lesson, step by
//! step, each equivalent is run in bash against a sandbox with the real kubectl (and hk8s
//! on PATH), in order, as a learner doing the tutorial by hand would type it. A watch
//! (`-w`) counts as working when it is still running after a few seconds.

mod support;

use hk8s::lesson::model;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::ensure_app_binaries;

/// The units a learner would paste one at a time: single lines, and a heredoc with its body.
fn units(equivalent: &str) -> Vec<String> {
    let mut units = Vec::new();
    let mut heredoc: Option<String> = None;
    for line in equivalent.lines() {
        if let Some(block) = heredoc.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.trim() == "EOF" {
                units.push(heredoc.take().unwrap());
            }
        } else if line.contains("<<'EOF'") {
            heredoc = Some(format!("{line}\n"));
        } else if !line.trim().is_empty() {
            units.push(line.to_string());
        }
    }
    units
}

/// A bin directory with hk8s and the kubectl under test (1.37 when the suite provides it).
fn bin_dir(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let kubectl = std::env::var("HK8S_TEST_KUBECTL_NEW").unwrap_or_else(|_| "kubectl".into());
    let kubectl = which(&kubectl).unwrap_or_else(|| panic!("{kubectl} is installed"));
    std::os::unix::fs::symlink(kubectl, bin.join("kubectl")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_hk8s"), bin.join("hk8s")).unwrap();
    bin
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn run(unit: &str, dir: &Path, bin: &Path, kubeconfig: &Path) -> Output {
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let limit = if unit.contains(" -w") { "8" } else { "300" };
    Command::new("timeout")
        .args([limit, "bash", "-o", "pipefail", "-c", unit])
        .current_dir(dir)
        .env("PATH", path)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", dir)
        .env("HK8S_DATA_DIR", dir.join("data"))
        .env("NO_COLOR", "1")
        .env_remove("HK8S_KUBECONFIG")
        .env_remove("HK8S_NAMESPACE")
        .output()
        .unwrap()
}

/// The frontend's address as `hk8s open --print` gives it.
fn frontend_address(dir: &Path, bin: &Path, kubeconfig: &Path) -> Option<String> {
    let out = run("hk8s open --print", dir, bin, kubeconfig);
    let text = String::from_utf8_lossy(&out.stdout);
    let url = text.split_whitespace().find(|w| w.starts_with("http://"))?;
    Some(url.trim_end_matches('/').to_string())
}

/// Stops the background sandbox, pass or fail.
struct SandboxDown(PathBuf);

impl Drop for SandboxDown {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_hk8s"))
            .args(["sandbox", "down"])
            .env("HK8S_SANDBOX_DIR", &self.0)
            .status();
    }
}

/// A background sandbox as a learner starts it (`hk8s sandbox up --detach`); its kubeconfig.
fn start_sandbox(state: &Path) -> PathBuf {
    let up = Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(["sandbox", "up", "--detach"])
        .env("HK8S_SANDBOX_DIR", state)
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", support::text(&up));
    let path = Command::new(env!("CARGO_BIN_EXE_hk8s"))
        .args(["sandbox", "kubeconfig"])
        .env("HK8S_SANDBOX_DIR", state)
        .output()
        .unwrap();
    assert!(path.status.success(), "{}", support::text(&path));
    PathBuf::from(String::from_utf8(path.stdout).unwrap().trim())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_printed_kubectl_equivalent_runs_verbatim_on_the_sandbox() {
    ensure_app_binaries();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    let _down = SandboxDown(state.clone());
    let kubeconfig = start_sandbox(&state);
    let bin = bin_dir(dir.path());
    let mut failures = Vec::new();
    let mut ran = 0;
    for lesson in model::all().unwrap() {
        for (index, step) in lesson.steps.iter().enumerate() {
            let Some(equivalent) = step
                .kubectl
                .clone()
                .or_else(|| step.action.kubectl("demo", "1"))
            else {
                continue;
            };
            for unit in units(&equivalent) {
                let unit = if unit.contains("<frontend address>") {
                    let dir = dir.path().to_path_buf();
                    let (bin, kc) = (bin.clone(), kubeconfig.clone());
                    let address =
                        tokio::task::spawn_blocking(move || frontend_address(&dir, &bin, &kc))
                            .await
                            .unwrap()
                            .expect("the frontend has an address once lesson 3 ran");
                    unit.replace("http://<frontend address>", &address)
                } else {
                    unit
                };
                let (d, b, k, u) = (
                    dir.path().to_path_buf(),
                    bin.clone(),
                    kubeconfig.clone(),
                    unit.clone(),
                );
                let out = tokio::task::spawn_blocking(move || {
                    let out = run(&u, &d, &b, &k);
                    // A sandbox still busy with the load lesson 7 left behind may miss
                    // kubectl's 10 s TLS handshake: that says nothing about the command,
                    // so it gets one more try after a pause.
                    if String::from_utf8_lossy(&out.stderr)
                        .contains("Unable to connect to the server")
                    {
                        std::thread::sleep(std::time::Duration::from_secs(15));
                        return run(&u, &d, &b, &k);
                    }
                    // A curl that got no HTTP answer at all (refused, or an empty reply
                    // from the load balancer while the endpoint of a pod replaced a moment
                    // ago is swapped) is tried once more, as a learner would; an HTTP
                    // error is not. A fresh-clone CI run met one empty reply in lesson 5.
                    if u.starts_with("curl") && matches!(out.status.code(), Some(7 | 52 | 56)) {
                        std::thread::sleep(std::time::Duration::from_secs(2));
                        return run(&u, &d, &b, &k);
                    }
                    out
                })
                .await
                .unwrap();
                ran += 1;
                let code = out.status.code();
                let refused_as_taught = unit.contains("extensions/v1beta1")
                    && String::from_utf8_lossy(&out.stderr).contains("no matches for kind");
                let watching = unit.contains(" -w") && code == Some(124);
                if code != Some(0) && !refused_as_taught && !watching {
                    failures.push(format!(
                        "lesson {} step {} ({}): exit {code:?}\n$ {unit}\n{}{}",
                        lesson.number,
                        index + 1,
                        step.title,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
        }
    }
    assert!(ran > 40, "the lessons print their equivalents ({ran} run)");
    assert!(
        failures.is_empty(),
        "{} of {ran} equivalents failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
