//! Delete: preconditions, graceful pod deletion with a reaper, finalizers, and owner-reference
//! garbage collection (Background, Foreground, Orphan).

use super::defaults;
use super::{Api, DeleteOpts, name_of, ns_of};
use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::{RESOURCES, Resource};
use crate::apiserver::storage::Write;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

impl Api {
    /// Deletes an object, cascading to its dependents as `propagationPolicy` says.
    pub fn delete(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        let graceful_pods = self.graceful_pods;
        let foreground = opts.propagation.as_deref() == Some("Foreground");
        if foreground
            && !opts.dry_run
            && let Some(cur) = self.store.get(r, ns, name)
            && let Some(uid) = cur["metadata"]["uid"].as_str()
        {
            // Foreground: the dependents go first, then the owner.
            self.cascade(uid, ns, "Foreground");
        }
        let mut terminating_ns = false;
        let mut reap_after = None;
        let mut removed = None;
        let (_, obj) = self.store.write(r, ns, name, |cur| {
            let Some(cur) = cur else {
                return Err(ApiError::not_found(r, name));
            };
            if let Some(uid) = &opts.uid
                && cur["metadata"]["uid"].as_str() != Some(uid)
            {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        r.group_resource(),
                        cur["metadata"]["uid"].as_str().unwrap_or_default()
                    ),
                ));
            }
            if let Some(rv) = &opts.resource_version
                && cur["metadata"]["resourceVersion"].as_str() != Some(rv)
            {
                return Err(ApiError::conflict(r, name));
            }
            if opts.dry_run {
                return Ok(Write::Unchanged(Some(Arc::new(cur.clone()))));
            }
            let already = !cur["metadata"]["deletionTimestamp"].is_null();
            let mut next = cur.clone();
            if r.kind == "Namespace" && r.group.is_empty() {
                terminating_ns = true;
                if already {
                    return Ok(Write::Unchanged(Some(Arc::new(cur.clone()))));
                }
                next["metadata"]["deletionTimestamp"] = json!(defaults::now());
                next["status"]["phase"] = json!("Terminating");
                return Ok(Write::Put(next));
            }
            let has_finalizers = cur["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty());
            if has_finalizers {
                if already {
                    return Ok(Write::Unchanged(Some(Arc::new(cur.clone()))));
                }
                next["metadata"]["deletionTimestamp"] = json!(defaults::now());
                return Ok(Write::Put(next));
            }
            let grace = opts.grace_period.unwrap_or_else(|| {
                cur["spec"]["terminationGracePeriodSeconds"]
                    .as_i64()
                    .unwrap_or(30)
            });
            let phase = cur["status"]["phase"].as_str().unwrap_or_default();
            if r.kind == "Pod"
                && graceful_pods
                && grace > 0
                && cur["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty())
                && phase != "Succeeded"
                && phase != "Failed"
            {
                if already {
                    return Ok(Write::Unchanged(Some(Arc::new(cur.clone()))));
                }
                let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
                next["metadata"]["deletionTimestamp"] =
                    json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
                next["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                reap_after = Some((grace as u64, cur["metadata"]["uid"].clone()));
                return Ok(Write::Put(next));
            }
            removed = Some(cur["metadata"]["uid"].clone());
            Ok(Write::Delete)
        })?;
        let obj = obj.unwrap_or_else(|| Arc::new(Value::Null));
        if opts.dry_run {
            return Ok(obj);
        }
        if terminating_ns {
            let api = self.clone();
            let ns_name = name.to_string();
            self.spawn(async move { api.purge_namespace(&ns_name).await });
        }
        if let Some((grace, uid)) = reap_after {
            self.reap_later(r, ns, name, uid, Duration::from_secs(grace + 2));
        }
        let uid = obj["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !foreground && (removed.is_some() || r.kind != "Pod") {
            self.cascade(
                &uid,
                ns,
                opts.propagation.as_deref().unwrap_or("Background"),
            );
        }
        Ok(obj)
    }

    /// Removes a Terminating pod after `wait` unless the kubelet did (or it was recreated).
    pub(super) fn reap_later(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        name: &str,
        uid: Value,
        wait: Duration,
    ) {
        let api = self.clone();
        let (ns, name) = (ns.to_string(), name.to_string());
        self.spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = api.store.write(r, &ns, &name, |cur| match cur {
                Some(c) if c["metadata"]["uid"] == uid => Ok(Write::Delete),
                _ => Ok(Write::Unchanged(None)),
            });
        });
    }

    /// Owner-reference garbage collection, done synchronously by the API server:
    /// Background and Foreground delete every dependent (recursively), Orphan removes the
    /// owner reference from them.
    pub(super) fn cascade(self: &Arc<Self>, owner_uid: &str, ns: &str, policy: &str) {
        if owner_uid.is_empty() {
            return;
        }
        for r in RESOURCES.iter() {
            let (items, _) = self
                .store
                .list(r, if r.namespaced { Some(ns) } else { None });
            for item in items {
                let owned = item["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|o| o["uid"] == owner_uid));
                if !owned {
                    continue;
                }
                let (ins, iname) = (ns_of(&item).to_string(), name_of(&item).to_string());
                if policy == "Orphan" {
                    let _ = self.store.write(r, &ins, &iname, |cur| {
                        let Some(cur) = cur else {
                            return Ok(Write::Unchanged(None));
                        };
                        let mut next = cur.clone();
                        if let Some(refs) = next["metadata"]["ownerReferences"].as_array_mut() {
                            refs.retain(|o| o["uid"] != owner_uid);
                        }
                        Ok(Write::Put(next))
                    });
                } else {
                    let _ = self.delete(
                        r,
                        &ins,
                        &iname,
                        &DeleteOpts {
                            propagation: Some("Background".into()),
                            ..Default::default()
                        },
                    );
                }
            }
        }
    }
}
