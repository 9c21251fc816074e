//! `hk8s reset`: delete the tutorial namespace, only if hk8s created it, after confirmation.

use crate::apply::{MANAGED_BY, created_by_hk8s};
use crate::cluster::{self, ClusterError};
use crate::commands::Options;
use crate::progress::Progress;
use crate::ui::Ui;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use std::process::ExitCode;

pub(super) async fn run(options: &Options, ui: &Ui) -> anyhow::Result<ExitCode> {
    let target = cluster::connect(&options.cluster, ui).await?;
    let ns = &target.namespace;
    println!("Using {}", target.describe(ui));
    let api: Api<Namespace> = Api::all(target.client.clone());
    let existing = api
        .get_opt(ns)
        .await
        .map_err(|e| ClusterError::from_kube(&e, &target))?;
    let mut progress = Progress::load()?;
    let Some(existing) = existing else {
        progress.forget(&target.progress_key())?;
        println!("Namespace {ns} does not exist; progress for it is cleared.");
        return Ok(ExitCode::SUCCESS);
    };
    if !created_by_hk8s(&existing) {
        anyhow::bail!(
            "namespace {ns} was not created by hk8s (it lacks the label {}={}), so hk8s will not delete it.\n  Delete it yourself if you mean to (`kubectl delete namespace {ns}`), or use another namespace with -n",
            MANAGED_BY.0,
            MANAGED_BY.1
        );
    }
    let question = format!(
        "Delete namespace {ns} and everything in it on {}?",
        target.context
    );
    if !ui.confirm(&question, options.yes) {
        println!("Nothing deleted. (Without a terminal, pass --yes to confirm.)");
        return Ok(ExitCode::FAILURE);
    }
    api.delete(ns, &Default::default())
        .await
        .map_err(|e| ClusterError::from_kube(&e, &target))?;
    progress.forget(&target.progress_key())?;
    ui.ok(&format!(
        "namespace/{ns} deleted; progress cleared. Start again with `hk8s lesson 1`."
    ));
    Ok(ExitCode::SUCCESS)
}
