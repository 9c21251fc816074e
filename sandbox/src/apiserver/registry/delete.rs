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

/// What a delete decided besides the write, for the steps after it.
#[derive(Default)]
struct Deletion {
    /// A namespace was marked Terminating: purge what is in it.
    terminating_ns: bool,
    /// A pod was marked Terminating: remove it after this many seconds unless the kubelet does.
    reap_after: Option<(u64, Value)>,
    /// The object was removed now.
    removed: bool,
}

/// The uid and resourceVersion preconditions of DeleteOptions.
fn check_preconditions(
    r: &Resource,
    name: &str,
    cur: &Value,
    opts: &DeleteOpts,
) -> Result<(), ApiError> {
    let ns = ns_of(cur);
    for (field, key, wanted) in [
        ("UID", "uid", &opts.uid),
        ("ResourceVersion", "resourceVersion", &opts.resource_version),
    ] {
        let found = cur["metadata"][key].as_str().unwrap_or_default();
        if let Some(wanted) = wanted
            && wanted != found
        {
            return Err(ApiError::precondition_failed(
                r, ns, name, field, wanted, found,
            ));
        }
    }
    Ok(())
}

/// Marks an object for deletion (`deletionTimestamp` at `at`), unless it already is.
fn mark_deleted(cur: &Value, at: String, change: impl FnOnce(&mut Value)) -> Write {
    if !cur["metadata"]["deletionTimestamp"].is_null() {
        return Write::Unchanged(Some(Arc::new(cur.clone())));
    }
    let mut next = cur.clone();
    next["metadata"]["deletionTimestamp"] = json!(at);
    change(&mut next);
    Write::Put(next)
}

/// A pod bound to the node and still running gets its grace period; the kubelet removes it.
fn graceful_pod(r: &Resource, cur: &Value, grace: i64) -> bool {
    let phase = cur["status"]["phase"].as_str().unwrap_or_default();
    r.kind == "Pod"
        && grace > 0
        && cur["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
        && phase != "Succeeded"
        && phase != "Failed"
}

impl Api {
    /// Deletes an object, cascading to its dependents as `propagationPolicy` says.
    pub fn delete(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        name: &str,
        opts: &DeleteOpts,
    ) -> Result<Arc<Value>, ApiError> {
        if r.kind == "Namespace" && ["default", "kube-system", "kube-public"].contains(&name) {
            return Err(ApiError::namespace_undeletable(name));
        }
        let foreground = opts.propagation.as_deref() == Some("Foreground");
        if foreground
            && !opts.dry_run
            && let Some(cur) = self.store.get(r, ns, name)
            && let Some(uid) = cur["metadata"]["uid"].as_str()
        {
            // Foreground: the dependents go first, then the owner.
            self.cascade(uid, ns, "Foreground");
        }
        let mut deletion = Deletion::default();
        let (_, obj) = self.store.write(r, ns, name, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found(r, name))?;
            self.decide_delete(r, cur, opts, &mut deletion)
        })?;
        let obj = obj.unwrap_or_else(|| Arc::new(Value::Null));
        if opts.dry_run {
            return Ok(obj);
        }
        if deletion.terminating_ns {
            let api = self.clone();
            let ns_name = name.to_string();
            self.spawn(async move { api.purge_namespace(&ns_name).await });
        }
        if let Some((grace, uid)) = deletion.reap_after {
            self.reap_later(r, ns, name, uid, Duration::from_secs(grace + 2));
        }
        // A pod marked Terminating keeps its dependents until it is really gone.
        if !foreground && (deletion.removed || r.kind != "Pod") {
            let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
            let policy = opts.propagation.as_deref().unwrap_or("Background");
            self.cascade(uid, ns, policy);
        }
        Ok(obj)
    }

    /// What deleting `cur` writes: nothing (dry run, already marked), a deletion mark
    /// (namespaces, finalizers, graceful pods), or its removal.
    fn decide_delete(
        &self,
        r: &'static Resource,
        cur: &Value,
        opts: &DeleteOpts,
        deletion: &mut Deletion,
    ) -> Result<Write, ApiError> {
        check_preconditions(r, name_of(cur), cur, opts)?;
        if opts.dry_run {
            return Ok(Write::Unchanged(Some(Arc::new(cur.clone()))));
        }
        if r.kind == "Namespace" && r.group.is_empty() {
            deletion.terminating_ns = true;
            return Ok(mark_deleted(cur, defaults::now(), |next| {
                next["status"]["phase"] = json!("Terminating");
            }));
        }
        let has_finalizers = cur["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if has_finalizers {
            return Ok(mark_deleted(cur, defaults::now(), |_| {}));
        }
        let grace = opts.grace_period.unwrap_or_else(|| {
            cur["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .unwrap_or(30)
        });
        if self.graceful_pods && graceful_pod(r, cur, grace) {
            let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(grace);
            let at = at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            let write = mark_deleted(cur, at, |next| {
                next["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            });
            if matches!(write, Write::Put(_)) {
                deletion.reap_after = Some((grace as u64, cur["metadata"]["uid"].clone()));
            }
            return Ok(write);
        }
        deletion.removed = true;
        Ok(Write::Delete)
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
