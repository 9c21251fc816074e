//! Create (POST): decode, default, validate, set the server-owned metadata and store;
//! an object whose owners are already gone is collected at once.

use super::defaults;
use super::fields;
use super::validate;
use super::{Api, DeleteOpts, Outcome, WriteOpts, name_of};
use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::{Resource, by_kind};
use crate::apiserver::storage::Write;
use serde_json::{Value, json};
use std::sync::Arc;

impl Api {
    /// Creates an object (POST). `ns` is empty for cluster-scoped resources.
    pub fn create(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
    ) -> Result<Outcome, ApiError> {
        Self::check_type(r, &mut obj)?;
        Self::check_namespace(r, ns, &mut obj)?;
        if r.namespaced {
            self.namespace_ready(ns)?;
        }
        if obj["metadata"]["name"].as_str().is_none_or(str::is_empty)
            && let Some(prefix) = obj["metadata"]["generateName"].as_str()
        {
            obj["metadata"]["name"] = json!(format!(
                "{prefix}{}",
                crate::apimachinery::names::random_suffix()
            ));
        }
        let (obj, warnings) = validate::decode(r, obj, opts.validation)?;
        self.create_decoded(r, ns, obj, opts, warnings, false)
    }

    /// Creates an object already decoded and validated (the tail of create and apply).
    pub(super) fn create_decoded(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
        warnings: Vec<String>,
        applied: bool,
    ) -> Result<Outcome, ApiError> {
        let taken = self.taken(r);
        // The uid comes first: the Job strategy puts it in the selector it generates.
        obj["metadata"]["uid"] = json!(defaults::new_uid());
        defaults::apply(r, &mut obj, None, &taken);
        if r.group.is_empty() && r.kind == "Pod" {
            self.admit_service_account(&mut obj)?;
        }
        validate::validate(r, &obj, None)?;
        let now = defaults::now();
        let meta = obj["metadata"].as_object_mut().expect("checked object");
        meta.insert("creationTimestamp".into(), json!(now));
        meta.insert("generation".into(), json!(1));
        for k in ["resourceVersion", "deletionTimestamp", "selfLink"] {
            meta.remove(k);
        }
        if !applied {
            if let Some(m) = obj["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
            fields::track_update(None, &mut obj, &opts.manager, "", &r.api_version(), &now);
        }
        let name = name_of(&obj).to_string();
        if opts.dry_run {
            if self.store.get(r, ns, &name).is_some() {
                return Err(ApiError::already_exists(r, &name));
            }
            return Ok(Outcome {
                object: Arc::new(obj),
                warnings,
                created: true,
            });
        }
        let (_, stored) = self.store.write(r, ns, &name, |cur| {
            if cur.is_some() {
                Err(ApiError::already_exists(r, &name))
            } else {
                Ok(Write::Put(obj))
            }
        })?;
        let stored = stored.expect("put returns the object");
        if self.owners_gone(ns, &stored) {
            let background = DeleteOpts {
                propagation: Some("Background".into()),
                ..Default::default()
            };
            let _ = self.delete(r, ns, &name, &background);
        }
        Ok(Outcome {
            object: stored,
            warnings,
            created: true,
        })
    }

    /// True when an object names owners and none of them exists any more, as when a
    /// controller acting on a stale view creates a pod for a ReplicaSet just deleted.
    /// Checked after the write, so a cascade that listed before it cannot miss the object;
    /// like Kubernetes' garbage collector, the object is then deleted.
    pub(super) fn owners_gone(&self, ns: &str, obj: &Value) -> bool {
        let Some(refs) = obj["metadata"]["ownerReferences"].as_array() else {
            return false;
        };
        !refs.is_empty()
            && refs.iter().all(|o| {
                let (Some(api_version), Some(kind), Some(name)) = (
                    o["apiVersion"].as_str(),
                    o["kind"].as_str(),
                    o["name"].as_str(),
                ) else {
                    return false;
                };
                let Some(owner_r) = by_kind(api_version, kind) else {
                    return false;
                };
                let owner_ns = if owner_r.namespaced { ns } else { "" };
                self.store
                    .get(owner_r, owner_ns, name)
                    .is_none_or(|owner| owner["metadata"]["uid"] != o["uid"])
            })
    }
}
