//! `hk8s open`: the frontend in a browser — its LoadBalancer address, else a
//! `kubectl port-forward` kept open until Ctrl-C.

use crate::cluster::{self, ClusterOptions};
use crate::frontend::{self, Address};
use crate::ui::Ui;
use std::process::{ExitCode, Stdio};

pub(super) async fn run(
    port: u16,
    print: bool,
    options: &ClusterOptions,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    let target = cluster::connect(options, ui).await?;
    println!("Using {}", target.describe(ui));
    match frontend::address(&target).await? {
        Address::Direct(url) => {
            println!("The frontend is at {}", ui.bold(&url));
            if !print {
                launch_browser(&url);
            }
            Ok(ExitCode::SUCCESS)
        }
        Address::Proxy(_) => {
            let url = format!("http://127.0.0.1:{}/", port);
            let mut cmd = tokio::process::Command::new("kubectl");
            cmd.args(["port-forward", "-n", &target.namespace, "service/frontend"])
                .arg(format!("{}:80", port))
                .arg("--context")
                .arg(&target.context)
                .stdout(Stdio::null())
                .kill_on_drop(true);
            if let Some(path) = &target.kubeconfig {
                cmd.arg("--kubeconfig").arg(path);
            }
            let mut child = cmd.spawn().map_err(|e| {
                anyhow::anyhow!("the frontend has no external address and `kubectl port-forward` could not start ({e}); install kubectl")
            })?;
            println!(
                "The frontend has no external address; forwarding {} to service/frontend. Ctrl-C stops it.",
                ui.bold(&url)
            );
            ui.kubectl(&format!(
                "kubectl port-forward -n {} service/frontend {}:80",
                target.namespace, port
            ));
            if !print {
                launch_browser(&url);
            }
            tokio::select! {
                status = child.wait() => {
                    anyhow::bail!("kubectl port-forward stopped ({})", status.map(|s| s.to_string()).unwrap_or_default())
                }
                _ = tokio::signal::ctrl_c() => {
                    let _ = child.kill().await;
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
    }
}

fn launch_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
