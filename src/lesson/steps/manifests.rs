//! `show-manifest`, `apply` and `delete`: the embedded manifests (or an inline one).

use super::{StepContext, StepError, StepOutcome};
use crate::apply::{Applier, ApplyError, ensure_namespace};
use crate::cluster::ClusterError;
use crate::manifests;
use kube::api::DynamicObject;

/// The manifest's text as hk8s would apply it, with the fields to highlight.
pub(super) fn show(
    ctx: &StepContext<'_>,
    name: &str,
    highlight: &[String],
) -> Result<StepOutcome, StepError> {
    Ok(StepOutcome::Manifest {
        name: name.to_string(),
        text: manifests::text(name, ctx.registry)?,
        highlight: highlight.to_vec(),
    })
}

/// The fields where manifest `name` differs from `base`.
pub(super) fn show_changes(
    ctx: &StepContext<'_>,
    name: &str,
    base: &str,
) -> Result<StepOutcome, StepError> {
    Ok(StepOutcome::ManifestChanges {
        name: name.to_string(),
        base: base.to_string(),
        changes: manifests::changes(base, name, ctx.registry)?,
    })
}

/// Server-side apply of the named manifests and the inline one. With `expect_error` the
/// cluster must refuse them (a teaching moment) and the refusal is the outcome.
pub(super) async fn apply(
    ctx: &StepContext<'_>,
    names: &[String],
    inline: Option<&str>,
    expect_error: bool,
) -> Result<StepOutcome, StepError> {
    ensure_namespace_quietly(ctx).await?;
    let mut objects = objects(ctx, names)?;
    if let Some(text) = inline {
        objects.extend(manifests::parse("inline manifest", text)?);
    }
    let mut applier = Applier::new(ctx.target.client.clone(), &ctx.target.namespace);
    match applier.apply(&objects).await {
        Ok(_) if expect_error => Err(StepError::AcceptedUnexpectedly),
        Ok(done) => Ok(StepOutcome::Applied(done)),
        Err(err) if expect_error => Ok(StepOutcome::Refused(err)),
        Err(err) => Err(explain(err, ctx)),
    }
}

/// Deletes the objects of the named manifests.
pub(super) async fn delete(
    ctx: &StepContext<'_>,
    names: &[String],
) -> Result<StepOutcome, StepError> {
    let objects = objects(ctx, names)?;
    let mut applier = Applier::new(ctx.target.client.clone(), &ctx.target.namespace);
    Ok(StepOutcome::Deleted(applier.delete(&objects).await?))
}

/// Creates the tutorial namespace unless it exists, saying so when it did.
async fn ensure_namespace_quietly(ctx: &StepContext<'_>) -> Result<(), ClusterError> {
    let created = ensure_namespace(&ctx.target.client, &ctx.target.namespace)
        .await
        .map_err(|e| ClusterError::from_kube(&e, ctx.target))?;
    if created {
        crate::lesson::present::namespace_created_first(ctx.ui, &ctx.target.namespace);
    }
    Ok(())
}

fn objects(ctx: &StepContext<'_>, names: &[String]) -> Result<Vec<DynamicObject>, StepError> {
    let mut objects = Vec::new();
    for name in names {
        objects.extend(manifests::objects(name, ctx.registry)?);
    }
    Ok(objects)
}

/// A refusal for lack of rights says what to ask for; any other failure says itself.
fn explain(err: ApplyError, ctx: &StepContext<'_>) -> StepError {
    match err.kube_error() {
        Some(k @ kube::Error::Api(s)) if s.code == 401 || s.code == 403 => {
            ClusterError::from_kube(k, ctx.target).into()
        }
        _ => err.into(),
    }
}
