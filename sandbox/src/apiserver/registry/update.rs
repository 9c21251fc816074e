//! Update (PUT) and the commit shared by update, patch and apply: what clients may not
//! change is kept, the result decoded, defaulted and validated, and stored if it changed.

use super::defaults::{self, Taken};
use super::fields;
use super::validate;
use super::{Api, Outcome, WriteOpts, name_of};
use crate::apimachinery::errors::{ApiError, Cause};
use crate::apimachinery::resources::Resource;
use crate::apiserver::storage::Write;
use serde_json::{Value, json};
use std::sync::Arc;

/// Metadata only the server sets; an update keeps the stored values.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "creationTimestamp",
    "name",
    "namespace",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

/// 409 when the update was made against an older resourceVersion, 400 when it renames.
fn check_identity(r: &Resource, old: &Value, new: &Value) -> Result<(), ApiError> {
    if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != old["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(r, name_of(old)));
    }
    if let Some(n) = new["metadata"]["name"].as_str()
        && n != name_of(old)
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({})",
            name_of(old)
        )));
    }
    if let Some(uid) = new["metadata"]["uid"].as_str()
        && !uid.is_empty()
        && Some(uid) != old["metadata"]["uid"].as_str()
    {
        let cause = Cause::invalid("metadata.uid", format!("\"{uid}\""), "field is immutable");
        return Err(ApiError::invalid(r, name_of(old), &[cause]));
    }
    Ok(())
}

/// A PUT body's uid is a precondition (`defaultUpdatedObjectInfo.Preconditions`): 409 when
/// it names another incarnation of the object.
fn check_uid_precondition(r: &Resource, cur: &Value, body: &Value) -> Result<(), ApiError> {
    let found = cur["metadata"]["uid"].as_str().unwrap_or_default();
    match body["metadata"]["uid"].as_str() {
        Some(uid) if !uid.is_empty() && uid != found => Err(ApiError::precondition_failed(
            r,
            cur["metadata"]["namespace"].as_str().unwrap_or_default(),
            name_of(cur),
            "UID",
            uid,
            found,
        )),
        _ => Ok(()),
    }
}

/// What the client may not change through this endpoint: server metadata always, the
/// status through the main resource, everything but the status through `status`.
fn keep_server_fields(r: &Resource, old: &Value, new: &mut Value, subresource: &str) {
    for k in SERVER_METADATA {
        match old["metadata"].get(*k) {
            Some(v) => new["metadata"][*k] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(*k);
                }
            }
        }
    }
    if subresource == "ephemeralcontainers" {
        super::ephemeral::keep_only_ephemeral(old, new);
    } else if subresource == "status" {
        let status = new["status"].clone();
        *new = old.clone();
        new["status"] = status;
    } else if r.has_status() && subresource.is_empty() {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
}

/// A request that rewrites managedFields itself (kubectl's client-side to server-side
/// apply upgrade does) gets them as written.
fn rewrites_managers(old: &Value, new: &Value) -> bool {
    new["metadata"]["managedFields"]
        .as_array()
        .is_some_and(|m| !m.is_empty())
        && new["metadata"]["managedFields"] != old["metadata"]["managedFields"]
}

/// Unchanged, stored, or (marked for deletion with no finalizer left) removed.
fn decide_write(old: &Value, new: Value) -> Write {
    if &new == old {
        return Write::Unchanged(None);
    }
    if !new["metadata"]["deletionTimestamp"].is_null()
        && new["metadata"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty)
    {
        return Write::Delete;
    }
    Write::Put(new)
}

impl Api {
    /// The shared tail of update, patch and apply: keep what clients may not change,
    /// decode, default, validate, bump generation, and decide whether anything changed.
    pub(super) fn finish_update(
        r: &'static Resource,
        old: &Value,
        mut new: Value,
        subresource: &str,
        opts: &WriteOpts,
        taken: &Taken,
        track: bool,
    ) -> Result<(Write, Vec<String>), ApiError> {
        Self::check_type(r, &mut new)?;
        check_identity(r, old, &new)?;
        keep_server_fields(r, old, &mut new, subresource);
        let (mut new, warnings) = validate::decode(r, new, opts.validation)?;
        defaults::apply(r, &mut new, Some(old), taken);
        validate::validate(r, &new, Some(old))?;
        let mut causes = Vec::new();
        match (r.group, r.kind, subresource) {
            ("", "Pod", "ephemeralcontainers") => {
                super::ephemeral::check_update(old, &new, &mut causes)
            }
            ("", "Pod", "") => super::podupdate::check_update(old, &new, &mut causes),
            _ => {}
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(r, name_of(old), &causes));
        }
        if defaults::spec_changed(old, &new) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = json!(g);
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if track && !rewrites_managers(old, &new) {
            fields::track_update(
                Some(old),
                &mut new,
                &opts.manager,
                subresource,
                &r.api_version(),
                &defaults::now(),
            );
        }
        Ok((decide_write(old, new), warnings))
    }

    /// Reads, changes and stores one object atomically; a dry run answers the result without
    /// storing it.
    pub(super) fn commit_update(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        name: &str,
        opts: &WriteOpts,
        change: impl FnOnce(&Value, &Taken) -> Result<(Write, Vec<String>), ApiError>,
    ) -> Result<Outcome, ApiError> {
        let taken = self.taken(r);
        let mut warnings = Vec::new();
        let mut unchanged = None;
        let result = self.store.write(r, ns, name, |cur| {
            let Some(cur) = cur else {
                return Err(ApiError::not_found(r, name));
            };
            let (w, warn) = change(cur, &taken)?;
            warnings = warn;
            match w {
                Write::Unchanged(_) => {
                    unchanged = Some(Arc::new(cur.clone()));
                    Ok(Write::Unchanged(None))
                }
                Write::Put(v) if opts.dry_run => {
                    unchanged = Some(Arc::new(v));
                    Ok(Write::Unchanged(None))
                }
                other if opts.dry_run => {
                    let _ = other;
                    unchanged = Some(Arc::new(cur.clone()));
                    Ok(Write::Unchanged(None))
                }
                other => Ok(other),
            }
        })?;
        let object = match (unchanged, result) {
            (Some(v), _) => v,
            (None, (_, Some(v))) => v,
            (None, (_, None)) => return Err(ApiError::internal("write lost its object")),
        };
        Ok(Outcome {
            object,
            warnings,
            created: false,
        })
    }

    /// Replaces an object (PUT), on the object itself or its `status` subresource.
    pub fn update(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        name: &str,
        subresource: &str,
        body: Value,
        opts: &WriteOpts,
    ) -> Result<Outcome, ApiError> {
        let mut body = body;
        Self::check_type(r, &mut body)?;
        Self::check_namespace(r, ns, &mut body)?;
        self.commit_update(r, ns, name, opts, |cur, taken| {
            check_uid_precondition(r, cur, &body)?;
            Self::finish_update(r, cur, body, subresource, opts, taken, true)
        })
    }
}
