//! The real kubectl run against a test's sandbox: the machine's binary and, when the test
//! script provides it (`HK8S_TEST_KUBECTL_NEW`), kubectl 1.37.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// One kubectl binary and the kubeconfig it talks to the sandbox with.
pub struct Kubectl {
    pub program: PathBuf,
    pub kubeconfig: PathBuf,
    /// How long one command may run, and how long [`Kubectl::eventually`] polls.
    pub timeout: Duration,
    /// Environment variables set besides `KUBECONFIG` (a test's own `HOME`, say).
    pub envs: Vec<(String, PathBuf)>,
}

/// What one kubectl command gave.
pub struct Out {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    /// The machine's kubectl.
    pub fn new(kubeconfig: &Path, timeout: Duration) -> Kubectl {
        Kubectl::with_program("kubectl", kubeconfig, timeout)
    }

    /// A given kubectl binary.
    pub fn with_program(
        program: impl Into<PathBuf>,
        kubeconfig: &Path,
        timeout: Duration,
    ) -> Kubectl {
        Kubectl {
            program: program.into(),
            kubeconfig: kubeconfig.to_path_buf(),
            timeout,
            envs: Vec::new(),
        }
    }

    /// The same kubectl with `name` set to `value` in its environment.
    pub fn env(mut self, name: &str, value: &Path) -> Kubectl {
        self.envs.push((name.to_string(), value.to_path_buf()));
        self
    }

    /// The machine's kubectl, then kubectl 1.37 when `HK8S_TEST_KUBECTL_NEW` names it.
    pub fn all(kubeconfig: &Path, timeout: Duration) -> Vec<Kubectl> {
        programs()
            .into_iter()
            .map(|program| Kubectl::with_program(program, kubeconfig, timeout))
            .collect()
    }

    pub async fn run(&self, args: &[&str]) -> Out {
        self.run_with_input(args, None).await
    }

    /// Runs kubectl with `input` on its stdin (else /dev/null); fails the test when it does
    /// not finish within the timeout.
    pub async fn run_with_input(&self, args: &[&str], input: Option<&str>) -> Out {
        let mut child = tokio::process::Command::new(&self.program)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env_remove("KUBECTL_EXTERNAL_DIFF")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", self.program.display()));
        if let Some(text) = input {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(text.as_bytes()).await.unwrap();
        }
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish in {:?}", self.timeout))
            .unwrap();
        Out {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// kubectl's stdout; fails the test when kubectl fails.
    pub async fn ok(&self, args: &[&str]) -> String {
        self.ok_with_input(args, None).await
    }

    pub async fn ok_with_input(&self, args: &[&str], input: Option<&str>) -> String {
        let out = self.run_with_input(args, input).await;
        assert!(
            out.ok,
            "{} {args:?} failed:\n{}\n{}",
            self.program.display(),
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    /// kubectl's stderr; fails the test when kubectl succeeds.
    pub async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.ok,
            "{} {args:?} succeeded but should not:\n{}",
            self.program.display(),
            out.stdout
        );
        out.stderr
    }

    /// Polls `args` until it succeeds with output that satisfies `check`; fails the test
    /// after the timeout.
    pub async fn eventually(&self, args: &[&str], check: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let out = self.run(args).await;
            if out.ok && check(&out.stdout) {
                return out.stdout;
            }
            assert!(
                start.elapsed() < self.timeout,
                "{} {args:?} never gave the expected answer:\n{}\n{}",
                self.program.display(),
                out.stdout,
                out.stderr
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The kubectl binaries to test with: the machine's, then kubectl 1.37 when the test script
/// names it in `HK8S_TEST_KUBECTL_NEW`.
pub fn programs() -> Vec<String> {
    let mut programs = vec!["kubectl".to_string()];
    match std::env::var("HK8S_TEST_KUBECTL_NEW") {
        Ok(newer) if !newer.is_empty() => programs.push(newer),
        _ => eprintln!("HK8S_TEST_KUBECTL_NEW unset: testing the machine's kubectl only"),
    }
    programs
}
