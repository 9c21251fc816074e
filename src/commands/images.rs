//! `hk8s images build|load|push`: the app's images for real clusters, through `images`.

use crate::images::{self, ArchiveImage, ImageSpec, Loader};
use crate::ui::Ui;
use anyhow::Context;
use oci_client::secrets::RegistryAuth;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `hk8s images` does; `dir` holds the archives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Job {
    Build {
        dir: PathBuf,
    },
    Load {
        dir: PathBuf,
        to: Option<Loader>,
        cluster: Option<String>,
    },
    Push {
        dir: PathBuf,
        registry: String,
        insecure: bool,
    },
}

pub(super) async fn run(job: Job, context: Option<&str>, ui: &Ui) -> anyhow::Result<ExitCode> {
    match job {
        Job::Build { dir } => build(&dir, ui)?,
        Job::Load { dir, to, cluster } => load(&dir, to, cluster.as_deref(), context, ui)?,
        Job::Push {
            dir,
            registry,
            insecure,
        } => push(&dir, &registry, insecure, ui).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn build(dir: &std::path::Path, ui: &Ui) -> anyhow::Result<()> {
    for spec in ImageSpec::app() {
        let spinner = ui.spinner(&format!("building {}:{}", spec.name, spec.tag));
        let built = images::build(&spec, dir);
        spinner.finish_and_clear();
        let built = built.with_context(|| format!("building the {} image", spec.name))?;
        ui.ok(&format!(
            "{} → {} ({:.1} MB, manifest {})",
            built.reference,
            built.path.display(),
            built.bytes as f64 / 1e6,
            &built.manifest_digest[..19],
        ));
    }
    ui.line(
        &ui.dim("Next: `hk8s images load` (kind, minikube, k3d) or `hk8s images push REGISTRY`"),
    );
    Ok(())
}

fn load(
    dir: &std::path::Path,
    to: Option<Loader>,
    cluster: Option<&str>,
    context: Option<&str>,
    ui: &Ui,
) -> anyhow::Result<()> {
    let loader = match to {
        Some(loader) => loader,
        None => Loader::detect(context)?,
    };
    for archive in images::archives(dir)? {
        let spinner = ui.spinner(&format!(
            "loading {} with {}",
            archive.display(),
            loader.program()
        ));
        let result = images::load(loader, &archive, cluster);
        spinner.finish_and_clear();
        result?;
        ui.ok(&format!("loaded {}", archive.display()));
    }
    Ok(())
}

async fn push(
    dir: &std::path::Path,
    registry: &str,
    insecure: bool,
    ui: &Ui,
) -> anyhow::Result<()> {
    let auth = match (
        std::env::var("HK8S_REGISTRY_USER"),
        std::env::var("HK8S_REGISTRY_PASSWORD"),
    ) {
        (Ok(user), Ok(password)) => RegistryAuth::Basic(user, password),
        _ => RegistryAuth::Anonymous,
    };
    for archive in images::archives(dir)? {
        let image = ArchiveImage::read(&archive)?;
        let spinner = ui.spinner(&format!(
            "pushing {}:{} to {registry}",
            image.name, image.tag
        ));
        let result = images::push(&image, registry, insecure, &auth).await;
        spinner.finish_and_clear();
        let pushed = result?;
        ui.ok(&format!("pushed {pushed} ({})", image.manifest_digest));
    }
    ui.line(&ui.dim(&format!(
        "Use them in the lessons with `hk8s --registry {registry} lesson N`"
    )));
    Ok(())
}
