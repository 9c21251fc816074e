//! Patches as kubectl and kube-rs send them: strategic merge ([`strategic`], lists merged
//! by their patchMergeKey), JSON merge and JSON patch.

use super::{Api, Outcome, PatchBody, PatchKind, WriteOpts};
use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::Resource;
use serde_json::{Map, Value};
use std::sync::Arc;

mod strategic;

pub use strategic::{ListStrategy, SmpError, list_strategy};

/// A value without strategic merge directives (`$`-keys, `$patch: delete` items): what an
/// applied configuration stores.
pub(super) fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(
            a.iter()
                .filter(|x| x.get("$patch").and_then(Value::as_str) != Some("delete"))
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

impl From<SmpError> for ApiError {
    /// As the API server's `interpretStrategicMergePatchError`: malformed directives are
    /// 400, lists of lists 422, anything else an internal error.
    fn from(e: SmpError) -> Self {
        match e {
            SmpError::BadPrimitiveList | SmpError::BadRetainKeys | SmpError::BadSetElementOrder => {
                ApiError::bad_request(e.to_string())
            }
            SmpError::ListOfLists => ApiError::new(422, "Invalid", e.to_string()),
            other => ApiError::internal(format!("Internal error occurred: {other}")),
        }
    }
}

/// Applies a strategic merge patch to `target` in place; a patch that is not an object
/// replaces the target.
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<(), SmpError> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        strategic::apply(t, p.clone())?;
    }
    Ok(())
}

/// Applies an RFC 7396 JSON merge patch.
pub fn json_merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch. As in the API server, a body that is not a list of
/// operations is a bad request (400); operations that cannot be applied (a failed `test`,
/// a missing path, an unknown op) make it invalid (422), and nothing is changed.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let invalid = |e: &dyn std::fmt::Display| {
        ApiError::new(
            422,
            "Invalid",
            format!("the JSON patch could not be applied: {e}"),
        )
    };
    let ops: json_patch::Patch = match serde_json::from_value(patch.clone()) {
        Ok(ops) => ops,
        Err(e)
            if patch
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_object)) =>
        {
            return Err(invalid(&e));
        }
        Err(e) => return Err(ApiError::bad_request(format!("invalid JSON patch: {e}"))),
    };
    json_patch::patch(target, &ops).map_err(|e| invalid(&e))
}

impl Api {
    /// Patches an object; an apply patch creates it when missing.
    pub fn patch(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        name: &str,
        subresource: &str,
        patch: PatchBody,
        opts: &WriteOpts,
    ) -> Result<Outcome, ApiError> {
        let PatchBody { kind, body } = patch;
        if kind == PatchKind::Apply {
            return self.apply(r, ns, name, subresource, body, opts);
        }
        self.commit_update(r, ns, name, opts, |cur, taken| {
            let mut new = cur.clone();
            match kind {
                PatchKind::Json => json_patch(&mut new, &body)?,
                PatchKind::Merge => json_merge(&mut new, &body),
                PatchKind::Strategic => {
                    if !body.is_object() {
                        return Err(ApiError::bad_request(
                            "a strategic merge patch must be a JSON object",
                        ));
                    }
                    strategic_merge(&mut new, &body)?
                }
                PatchKind::Apply => unreachable!("handled above"),
            }
            Self::finish_update(r, cur, new, subresource, opts, taken, true)
        })
    }
}

#[cfg(test)]
mod tests;
