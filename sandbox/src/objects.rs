//! The write paths of the API: create, update, patch, apply, delete (with owner-reference
//! cascading and namespace termination), independent of HTTP.

use crate::defaults::{self, Taken};
use crate::error::ApiError;
use crate::patch;
use crate::registry::{RESOURCES, Resource, by_kind};
use crate::store::{Store, Write};
use crate::validate::{self, FieldValidation};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;

/// Shared state of a running API server.
pub struct Api {
    pub store: Store,
    pub state_dir: PathBuf,
    /// Pods on a node are marked Terminating on delete and removed by the kubelet
    /// (or after their grace period plus 2 s if nothing does it).
    pub graceful_pods: bool,
    tasks: Mutex<Option<JoinSet<()>>>,
}

/// Options common to writes.
#[derive(Debug, Clone)]
pub struct WriteOpts {
    pub manager: String,
    pub validation: FieldValidation,
    pub dry_run: bool,
    pub force: bool,
}

impl Default for WriteOpts {
    fn default() -> Self {
        WriteOpts {
            manager: "hk8s-sandbox".into(),
            validation: FieldValidation::Strict,
            dry_run: false,
            force: false,
        }
    }
}

/// How a patch body is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

/// A patch as sent: how to read it, and what it says.
#[derive(Debug, Clone)]
pub struct PatchBody {
    pub kind: PatchKind,
    pub body: Value,
}

/// The result of a write.
#[derive(Debug)]
pub struct Outcome {
    pub object: Arc<Value>,
    pub warnings: Vec<String>,
    pub created: bool,
}

/// What DELETE asks for.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub grace_period: Option<i64>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

fn name_of(v: &Value) -> &str {
    v["metadata"]["name"].as_str().unwrap_or_default()
}

fn ns_of(v: &Value) -> &str {
    v["metadata"]["namespace"].as_str().unwrap_or_default()
}

impl Api {
    pub fn new(store: Store, state_dir: PathBuf, graceful_pods: bool) -> Arc<Api> {
        Arc::new(Api {
            store,
            state_dir,
            graceful_pods,
            tasks: Mutex::new(Some(JoinSet::new())),
        })
    }

    /// Runs a background task that is cancelled when the sandbox shuts down.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        if let Some(set) = self.tasks.lock().expect("task lock").as_mut() {
            // Finished tasks stay in the set until joined; drop them as new ones come.
            while set.try_join_next().is_some() {}
            set.spawn(fut);
        }
    }

    /// Cancels every background task (watches, reapers, the stand-in kubelet).
    pub async fn stop_tasks(&self) {
        let set = self.tasks.lock().expect("task lock").take();
        if let Some(mut set) = set {
            set.abort_all();
            while set.join_next().await.is_some() {}
        }
    }

    fn namespace_ready(&self, ns: &str) -> Result<(), ApiError> {
        let r = by_kind("v1", "Namespace").expect("namespaces are served");
        match self.store.get(r, "", ns) {
            None => Err(ApiError::namespace_not_found(ns)),
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => {
                Err(ApiError::forbidden(format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                )))
            }
            Some(_) => Ok(()),
        }
    }

    fn taken(&self, r: &Resource) -> Taken {
        let mut t = Taken::default();
        if r.kind == "Service" {
            let (svcs, _) = self.store.list(r, None);
            for s in svcs {
                if let Some(ip) = s["spec"]["clusterIP"].as_str() {
                    t.cluster_ips.insert(ip.to_string());
                }
                for p in s["spec"]["ports"].as_array().into_iter().flatten() {
                    if let Some(np) = p["nodePort"].as_i64() {
                        t.node_ports.insert(np);
                    }
                }
            }
        }
        t
    }

    /// Checks apiVersion/kind against the URL's resource, filling them when absent.
    fn check_type(r: &Resource, obj: &mut Value) -> Result<(), ApiError> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON or YAML object",
            ));
        }
        let want = r.api_version();
        match obj["apiVersion"].as_str() {
            None | Some("") => obj["apiVersion"] = json!(want),
            Some(v) if v != want => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({want})"
                )));
            }
            _ => {}
        }
        match obj["kind"].as_str() {
            None | Some("") => obj["kind"] = json!(r.kind),
            Some(k) if k != r.kind => {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({k}) does not match the expected kind ({})",
                    r.kind
                )));
            }
            _ => {}
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        Ok(())
    }

    fn check_namespace(r: &Resource, url_ns: &str, obj: &mut Value) -> Result<(), ApiError> {
        if r.namespaced {
            match obj["metadata"]["namespace"].as_str() {
                Some(n) if !n.is_empty() && n != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => obj["metadata"]["namespace"] = json!(url_ns),
            }
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        Ok(())
    }

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
            obj["metadata"]["name"] = json!(format!("{prefix}{}", defaults::random_suffix()));
        }
        let (obj, warnings) = validate::decode(r, obj, opts.validation)?;
        self.create_decoded(r, ns, obj, opts, warnings, false)
    }

    fn create_decoded(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        mut obj: Value,
        opts: &WriteOpts,
        warnings: Vec<String>,
        applied: bool,
    ) -> Result<Outcome, ApiError> {
        let taken = self.taken(r);
        defaults::apply(r, &mut obj, None, &taken);
        validate::validate(r, &obj, None)?;
        let now = defaults::now();
        let meta = obj["metadata"].as_object_mut().expect("checked object");
        meta.insert("uid".into(), json!(defaults::new_uid()));
        meta.insert("creationTimestamp".into(), json!(now));
        meta.insert("generation".into(), json!(1));
        for k in ["resourceVersion", "deletionTimestamp", "selfLink"] {
            meta.remove(k);
        }
        if !applied {
            if let Some(m) = obj["metadata"].as_object_mut() {
                m.remove("managedFields");
            }
            patch::track_update(None, &mut obj, &opts.manager, "", &r.api_version(), &now);
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
    fn owners_gone(&self, ns: &str, obj: &Value) -> bool {
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

    /// The shared tail of update, patch and apply: keep what clients may not change,
    /// decode, default, validate, bump generation, and decide whether anything changed.
    fn finish_update(
        r: &'static Resource,
        old: &Value,
        mut new: Value,
        subresource: &str,
        opts: &WriteOpts,
        taken: &Taken,
        track: bool,
    ) -> Result<(Write, Vec<String>), ApiError> {
        Self::check_type(r, &mut new)?;
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
        for k in [
            "uid",
            "creationTimestamp",
            "name",
            "namespace",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ] {
            match old["metadata"].get(k) {
                Some(v) => new["metadata"][k] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
        if subresource == "status" {
            let status = new["status"].clone();
            new = old.clone();
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
        let (mut new, warnings) = validate::decode(r, new, opts.validation)?;
        defaults::apply(r, &mut new, Some(old), taken);
        validate::validate(r, &new, Some(old))?;
        if defaults::spec_changed(old, &new) {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            new["metadata"]["generation"] = json!(g);
        }
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        // A request that rewrites managedFields itself (kubectl's client-side to
        // server-side apply upgrade does) gets them as written.
        let rewrites_managers = new["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
            && new["metadata"]["managedFields"] != old["metadata"]["managedFields"];
        if track && !rewrites_managers {
            patch::track_update(
                Some(old),
                &mut new,
                &opts.manager,
                subresource,
                &r.api_version(),
                &defaults::now(),
            );
        }
        if &new == old {
            return Ok((Write::Unchanged(None), warnings));
        }
        if !new["metadata"]["deletionTimestamp"].is_null()
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty)
        {
            return Ok((Write::Delete, warnings));
        }
        Ok((Write::Put(new), warnings))
    }

    fn commit_update(
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
            Self::finish_update(r, cur, body, subresource, opts, taken, true)
        })
    }

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
                PatchKind::Json => patch::json_patch(&mut new, &body)?,
                PatchKind::Merge => patch::json_merge(&mut new, &body),
                PatchKind::Strategic => {
                    if !body.is_object() {
                        return Err(ApiError::bad_request(
                            "a strategic merge patch must be a JSON object",
                        ));
                    }
                    patch::strategic_merge(&mut new, &body)
                }
                PatchKind::Apply => unreachable!("handled above"),
            }
            Self::finish_update(r, cur, new, subresource, opts, taken, true)
        })
    }

    fn apply(
        self: &Arc<Self>,
        r: &'static Resource,
        ns: &str,
        name: &str,
        subresource: &str,
        mut applied: Value,
        opts: &WriteOpts,
    ) -> Result<Outcome, ApiError> {
        Self::check_type(r, &mut applied)?;
        Self::check_namespace(r, ns, &mut applied)?;
        match applied["metadata"]["name"].as_str() {
            None | Some("") => applied["metadata"]["name"] = json!(name),
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            _ => {}
        }
        let (applied, warnings) = validate::decode(r, applied, opts.validation)?;
        // decode() fills nothing in, but typed round trips may add empty containers; the
        // applied configuration is what the manager asked for.
        let api_version = r.api_version();
        let now = defaults::now();
        if self.store.get(r, ns, name).is_none() {
            if r.namespaced {
                self.namespace_ready(ns)?;
            }
            let obj = patch::server_side_apply(
                None,
                &applied,
                &opts.manager,
                opts.force,
                &api_version,
                &now,
            )
            .map_err(|c| ApiError::apply_conflicts(r, name, &c))?;
            match self.create_decoded(r, ns, obj, opts, warnings.clone(), true) {
                Err(e) if e.reason == "AlreadyExists" => {}
                other => return other,
            }
        }
        let mut out = self.commit_update(r, ns, name, opts, |cur, taken| {
            let merged = patch::server_side_apply(
                Some(cur),
                &applied,
                &opts.manager,
                opts.force,
                &api_version,
                &now,
            )
            .map_err(|c| ApiError::apply_conflicts(r, name, &c))?;
            Self::finish_update(r, cur, merged, subresource, opts, taken, false)
        })?;
        out.warnings = warnings;
        Ok(out)
    }

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
    fn reap_later(
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
    fn cascade(self: &Arc<Self>, owner_uid: &str, ns: &str, policy: &str) {
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

    /// Deletes everything in a Terminating namespace, then the namespace itself.
    async fn purge_namespace(self: Arc<Self>, ns: &str) {
        for _round in 0..50 {
            let mut left = 0;
            for r in RESOURCES.iter().filter(|r| r.namespaced) {
                let (items, _) = self.store.list(r, Some(ns));
                for item in items {
                    left += 1;
                    let name = name_of(&item).to_string();
                    let _ = self.store.write(r, ns, &name, |cur| match cur {
                        Some(_) => Ok(Write::Delete),
                        None => Ok(Write::Unchanged(None)),
                    });
                }
            }
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = by_kind("v1", "Namespace").expect("namespaces are served");
        let _ = self.store.write(r, "", ns, |cur| match cur {
            Some(_) => Ok(Write::Delete),
            None => Ok(Write::Unchanged(None)),
        });
    }

    /// Creates the objects every cluster has: namespaces default, kube-system,
    /// kube-public and kube-node-lease, the node, and the default StorageClass.
    pub fn bootstrap(self: &Arc<Self>) -> Result<(), ApiError> {
        let opts = WriteOpts {
            manager: "hk8s-sandbox".into(),
            ..Default::default()
        };
        let ensure = |api_version: &str, kind: &str, ns: &str, obj: Value| {
            let r = by_kind(api_version, kind).expect("bootstrap kinds are served");
            if self.store.get(r, ns, name_of(&obj)).is_none() {
                match self.create(r, ns, obj, &opts) {
                    Ok(_) => Ok(()),
                    Err(e) if e.reason == "AlreadyExists" => Ok(()),
                    Err(e) => Err(e),
                }
            } else {
                Ok(())
            }
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            ensure("v1", "Namespace", "", json!({"metadata": {"name": ns}}))?;
        }
        ensure(
            "storage.k8s.io/v1",
            "StorageClass",
            "",
            json!({
                "metadata": {"name": "default", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "hk8s.dev/local-directory",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": false,
            }),
        )?;
        // Pods that were Terminating when the sandbox stopped get their reaper back.
        let pods = by_kind("v1", "Pod").expect("pods are served");
        let now = jiff::Timestamp::now();
        for pod in self.store.list(pods, None).0 {
            let Some(at) = pod["metadata"]["deletionTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            else {
                continue;
            };
            let left = (at.as_second() - now.as_second()).max(0) as u64;
            self.reap_later(
                pods,
                ns_of(&pod),
                name_of(&pod),
                pod["metadata"]["uid"].clone(),
                Duration::from_secs(left + 2),
            );
        }
        let node_r = by_kind("v1", "Node").expect("nodes are served");
        let node_name = crate::network::NODE_NAME;
        ensure("v1", "Node", "", node_object())?;
        // The node's status is refreshed at every start: it is Ready now.
        let status = node_object()["status"].clone();
        let _ = self.store.write(node_r, "", node_name, |cur| match cur {
            Some(c) => {
                let mut n = c.clone();
                n["status"] = status;
                Ok(Write::Put(n))
            }
            None => Ok(Write::Unchanged(None)),
        });
        Ok(())
    }

    /// Marks every pod on the node not ready, as a node controller does for a node that was
    /// down: the processes died with the previous sandbox run, so until the kubelet has
    /// started them again, clients and the endpoints controller must not count them.
    pub fn mark_pods_not_ready(&self) -> Result<(), ApiError> {
        let pods = by_kind("v1", "Pod").expect("pods are served");
        let now = defaults::now();
        for pod in self.store.list(pods, None).0 {
            let on_node = pod["spec"]["nodeName"] == crate::network::NODE_NAME;
            let finished = matches!(
                pod["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            );
            if !on_node || finished {
                continue;
            }
            self.store.write(pods, ns_of(&pod), name_of(&pod), |cur| {
                let Some(cur) = cur else {
                    return Ok(Write::Unchanged(None));
                };
                let mut next = cur.clone();
                let status = &mut next["status"];
                if let Some(conditions) = status["conditions"].as_array_mut() {
                    for c in conditions.iter_mut().filter(|c| {
                        matches!(c["type"].as_str(), Some("Ready" | "ContainersReady"))
                            && c["status"] != "False"
                    }) {
                        c["status"] = json!("False");
                        c["reason"] = json!("NodeRestarted");
                        c["message"] = json!(
                            "the sandbox restarted; the kubelet is starting the containers again"
                        );
                        c["lastTransitionTime"] = json!(now);
                    }
                }
                for list in ["containerStatuses", "initContainerStatuses"] {
                    if let Some(containers) = status[list].as_array_mut() {
                        for c in containers {
                            c["ready"] = json!(false);
                            c["started"] = json!(false);
                            c["state"] = json!({"waiting": {"reason": "ContainerCreating"}});
                        }
                    }
                }
                Ok(if next == *cur {
                    Write::Unchanged(None)
                } else {
                    Write::Put(next)
                })
            })?;
        }
        Ok(())
    }
}

fn node_object() -> Value {
    let now = defaults::now();
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cond = |t: &str, s: &str, reason: &str, msg: &str| {
        json!({"type": t, "status": s, "reason": reason, "message": msg,
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "metadata": {"name": crate::network::NODE_NAME, "labels": {
            "kubernetes.io/hostname": crate::network::NODE_NAME,
            "kubernetes.io/os": std::env::consts::OS,
            "kubernetes.io/arch": std::env::consts::ARCH,
            "node-role.kubernetes.io/control-plane": ""}},
        "spec": {"podCIDR": "127.244.0.0/16", "podCIDRs": ["127.244.0.0/16"]},
        "status": {
            "capacity": {"cpu": cpus.to_string(), "memory": "8Gi", "pods": "110", "ephemeral-storage": "20Gi"},
            "allocatable": {"cpu": cpus.to_string(), "memory": "8Gi", "pods": "110", "ephemeral-storage": "20Gi"},
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": crate::network::NODE_IP.to_string()},
                {"type": "Hostname", "address": crate::network::NODE_NAME},
            ],
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": "", "osImage": "hk8s sandbox",
                "containerRuntimeVersion": "hk8s-process://0.1.0",
                "kubeletVersion": "v1.33.0", "kubeProxyVersion": "v1.33.0",
                "operatingSystem": std::env::consts::OS, "architecture": std::env::consts::ARCH,
            },
        },
    })
}
