//! `resourceVersion` and `resourceVersionMatch` on lists and watches, as kube-apiserver
//! validates and honours them: unset is the latest state, `0` any state, a version alone or
//! with `NotOlderThan` at least that version (waiting up to 3 s for it, as the watch cache
//! does), `Exact` the state at that version from the change history.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::Resource;
use crate::apiserver::request::Ctx;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How long a request for a version the store has not reached waits for it
/// (the watch cache's `blockTimeout`).
pub(crate) const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

/// Which state of the collection a list asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListAt {
    /// No version, or `0`: the latest state.
    Latest,
    /// At least this version.
    NotOlderThan(u64),
    /// Exactly this version.
    Exact(u64),
}

/// A `ListOptions` field error, answered as kube-apiserver does: 422 Invalid.
fn invalid(causes: &[(&'static str, String)]) -> ApiError {
    let parts: Vec<String> = causes
        .iter()
        .map(|(_, m)| format!("resourceVersionMatch: {m}"))
        .collect();
    let joined = if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    };
    let causes: Vec<Value> = causes
        .iter()
        .map(|(reason, m)| json!({"reason": reason, "message": m, "field": "resourceVersionMatch"}))
        .collect();
    ApiError {
        code: 422,
        reason: "Invalid",
        message: format!("ListOptions.meta.k8s.io \"\" is invalid: {joined}"),
        details: Some(json!({"group": "meta.k8s.io", "kind": "ListOptions", "causes": causes})),
    }
}

fn forbidden(why: &str) -> (&'static str, String) {
    ("FieldValueForbidden", format!("Forbidden: {why}"))
}

fn not_supported(value: &str, allowed: &[&str]) -> (&'static str, String) {
    let allowed: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
    (
        "FieldValueNotSupported",
        format!(
            "Unsupported value: \"{value}\": supported values: {}",
            allowed.join(", ")
        ),
    )
}

fn parse_rv(rv: &str) -> Result<u64, ApiError> {
    rv.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

/// The list options of a GET on a collection, validated as kube-apiserver's
/// `ValidateListOptions` does.
pub(crate) fn list_at(ctx: &Ctx) -> Result<ListAt, ApiError> {
    let rv = ctx.opt("resourceVersion");
    let matching = ctx.opt("resourceVersionMatch");
    if let Some(m) = matching {
        let mut causes = Vec::new();
        if rv.is_none() {
            causes.push(forbidden(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if ctx.opt("continue").is_some() {
            causes.push(forbidden(
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            causes.push(not_supported(m, &["Exact", "NotOlderThan", ""]));
        }
        if m == "Exact" && rv == Some("0") {
            causes.push(forbidden(
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
        if !causes.is_empty() {
            return Err(invalid(&causes));
        }
    }
    Ok(match (rv, matching) {
        (None | Some("0"), _) => ListAt::Latest,
        (Some(rv), Some("Exact")) => ListAt::Exact(parse_rv(rv)?),
        (Some(rv), _) => ListAt::NotOlderThan(parse_rv(rv)?),
    })
}

/// The options of a watch: `resourceVersionMatch` only as `NotOlderThan` with
/// `sendInitialEvents`.
pub(crate) fn validate_watch(ctx: &Ctx) -> Result<(), ApiError> {
    let Some(m) = ctx.opt("resourceVersionMatch") else {
        return Ok(());
    };
    let mut causes = Vec::new();
    if ctx.opt("sendInitialEvents").is_none() {
        causes.push(forbidden(
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ));
    }
    if m != "NotOlderThan" {
        causes.push(not_supported(m, &["NotOlderThan"]));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(&causes))
    }
}

/// Waits until the store has reached the version a list asks for (504 after
/// [`FRESHNESS_WAIT`]); exact lists are answered from the history without waiting.
pub(crate) async fn wait_until_fresh(ctx: &Ctx) -> Result<(), ApiError> {
    match list_at(ctx)? {
        ListAt::NotOlderThan(rv) => ctx.api.store.wait_for(rv, FRESHNESS_WAIT).await,
        ListAt::Latest | ListAt::Exact(_) => Ok(()),
    }
}

/// The objects a list answers with and the version it is consistent with.
pub(crate) fn objects(
    ctx: &Ctx,
    r: &Resource,
    ns: Option<&str>,
) -> Result<(Vec<Arc<Value>>, u64), ApiError> {
    match list_at(ctx)? {
        ListAt::Exact(rv) => Ok((ctx.api.store.list_exact(r, ns, rv)?, rv)),
        ListAt::Latest | ListAt::NotOlderThan(_) => Ok(ctx.api.store.list(r, ns)),
    }
}
