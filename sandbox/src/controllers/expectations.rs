//! Expectations, as kube-controller-manager's `ControllerExpectations` and
//! `UIDTrackingControllerExpectations`: the informers' stores may be older than a
//! controller's own last writes, so a controller that created, deleted or changed objects
//! records what it expects the stores to show, and does not compute a new diff until the
//! informers observed all of it (or the record expired).
//!
//! Records are keyed by the UID of the object whose reconcile wrote: a ReplicaSet expects
//! its pods, a Deployment its ReplicaSets, a Service its Endpoints. The informers' change
//! handlers call [`Expectations::observe`] after their store applied a change.

use crate::apimachinery::informers::Change;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a record waits before it is trusted no more (upstream's `ExpectationsTimeout`),
/// for an observation that never comes (a create whose answer was lost).
const TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Record {
    /// Creations of controlled objects not yet seen.
    adds: i64,
    /// UIDs of controlled objects deleted but not yet seen gone or terminating.
    deletes: HashSet<String>,
    /// Written objects (UID) and the resourceVersion the write returned.
    writes: HashMap<String, String>,
    since: Instant,
}

impl Record {
    fn new() -> Self {
        Self {
            adds: 0,
            deletes: HashSet::new(),
            writes: HashMap::new(),
            since: Instant::now(),
        }
    }

    fn fulfilled(&self) -> bool {
        self.adds <= 0 && self.deletes.is_empty() && self.writes.is_empty()
    }
}

/// What the controllers wait to see, shared with the informers' handlers.
#[derive(Debug)]
pub(crate) struct Expectations {
    records: Mutex<HashMap<String, Record>>,
    timeout: Duration,
}

impl Default for Expectations {
    fn default() -> Self {
        Self::with_timeout(TIMEOUT)
    }
}

impl Expectations {
    pub(crate) fn with_timeout(timeout: Duration) -> Self {
        Self {
            records: Mutex::default(),
            timeout,
        }
    }

    fn update(&self, key: &str, f: impl FnOnce(&mut Record)) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let record = records.entry(key.to_string()).or_insert_with(Record::new);
        record.since = Instant::now();
        f(record);
    }

    fn lower(&self, key: &str, f: impl FnOnce(&mut Record)) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(record) = records.get_mut(key) {
            f(record);
            if record.fulfilled() {
                records.remove(key);
            }
        }
    }

    /// `key` is about to create `n` objects it controls.
    pub(crate) fn expect_creations(&self, key: &str, n: usize) {
        self.update(key, |r| r.adds += n as i64);
    }

    /// One expected creation was seen, or failed and will never be.
    pub(crate) fn creation_observed(&self, key: &str) {
        self.lower(key, |r| r.adds -= 1);
    }

    /// `key` is about to delete the objects with these UIDs.
    pub(crate) fn expect_deletions(&self, key: &str, uids: impl IntoIterator<Item = String>) {
        self.update(key, |r| r.deletes.extend(uids));
    }

    /// The object `uid` was seen gone or terminating, or its deletion failed.
    pub(crate) fn deletion_observed(&self, key: &str, uid: &str) {
        self.lower(key, |r| {
            r.deletes.remove(uid);
        });
    }

    /// `key` wrote `written` (as the API returned it) and must not act on a store older
    /// than that write. The store is read under the lock the informer's handler takes after
    /// applying a change, so a write the store already shows is never awaited.
    pub(crate) fn expect_write<K>(&self, key: &str, written: &K, store: &Store<K>)
    where
        K: Resource<DynamicType = ()> + Clone,
    {
        let meta = written.meta();
        let (Some(uid), Some(rv)) = (&meta.uid, &meta.resource_version) else {
            return;
        };
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let seen = store.get(&ObjectRef::from_obj(written)).is_some_and(|o| {
            o.meta().uid.as_ref() == Some(uid) && at_least(o.meta().resource_version.as_deref(), rv)
        });
        if !seen {
            let record = records.entry(key.to_string()).or_insert_with(Record::new);
            record.since = Instant::now();
            record.writes.insert(uid.clone(), rv.clone());
        }
    }

    fn write_observed(&self, key: &str, meta: &ObjectMeta, gone: bool) {
        let Some(uid) = &meta.uid else { return };
        self.lower(key, |r| {
            let seen = r
                .writes
                .get(uid)
                .is_some_and(|rv| gone || at_least(meta.resource_version.as_deref(), rv));
            if seen {
                r.writes.remove(uid);
            }
        });
    }

    /// `None` once everything `key` expects was observed (or the record expired and is
    /// dropped); else how long the record may still wait.
    pub(crate) fn pending(&self, key: &str) -> Option<Duration> {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let record = records.get(key)?;
        let waited = record.since.elapsed();
        if record.fulfilled() || waited >= self.timeout {
            if !record.fulfilled() {
                tracing::debug!(key, ?record, "expectations expired; trusting the informers");
            }
            records.remove(key);
            return None;
        }
        Some(self.timeout - waited)
    }

    /// Drops what `key` expected (its object is gone).
    pub(crate) fn forget(&self, key: &str) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// An informer's change handler: lowers the expectations of the object's controller
    /// (creations, deletions, writes) and of the object itself (writes), and forgets the
    /// object's own record once it is deleted.
    pub(crate) fn observe<K: Resource>(&self, change: &Change<K>) {
        let meta = change.object().meta();
        let uid = meta.uid.as_deref().unwrap_or_default();
        let controller = meta
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.as_str());
        let (added, deleted) = match change {
            Change::Added(_) => (true, meta.deletion_timestamp.is_some()),
            Change::Modified { old, new } => (
                false,
                new.meta().deletion_timestamp.is_some() && old.meta().deletion_timestamp.is_none(),
            ),
            Change::Deleted(_) => (false, true),
        };
        let gone = matches!(change, Change::Deleted(_));
        if let Some(owner) = controller {
            if added {
                self.creation_observed(owner);
            }
            if deleted {
                self.deletion_observed(owner, uid);
            }
            self.write_observed(owner, meta, gone);
        }
        if gone {
            self.forget(uid);
        } else {
            self.write_observed(uid, meta, false);
        }
    }
}

/// Whether resourceVersion `seen` is at least `written`: the sandbox's versions are one
/// increasing counter; anything else counts as newer once it differs.
fn at_least(seen: Option<&str>, written: &str) -> bool {
    let Some(seen) = seen else { return false };
    match (seen.parse::<u64>(), written.parse::<u64>()) {
        (Ok(s), Ok(w)) => s >= w,
        _ => seen == written,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
    use kube::runtime::{reflector, watcher};
    use std::sync::Arc;

    fn pod(uid: &str, rv: &str, owner: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(format!("pod-{uid}")),
                uid: Some(uid.into()),
                resource_version: Some(rv.into()),
                owner_references: Some(vec![OwnerReference {
                    uid: owner.into(),
                    controller: Some(true),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn terminating(p: &Arc<Pod>) -> Arc<Pod> {
        let mut p = (**p).clone();
        p.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
        Arc::new(p)
    }

    #[test]
    fn creations_are_expected_until_each_add_is_observed() {
        let e = Expectations::default();
        assert_eq!(e.pending("rs"), None, "nothing expected at first");
        e.expect_creations("rs", 3);
        e.observe(&Change::Added(pod("a", "1", "rs")));
        e.observe(&Change::Added(pod("b", "2", "other")));
        assert!(e.pending("rs").is_some(), "one of three adds seen");
        e.observe(&Change::Modified {
            old: pod("a", "1", "rs"),
            new: pod("a", "3", "rs"),
        });
        assert!(e.pending("rs").is_some(), "an update is not a creation");
        e.observe(&Change::Added(pod("c", "4", "rs")));
        e.creation_observed("rs"); // the third create failed
        assert_eq!(e.pending("rs"), None);
    }

    #[test]
    fn deletions_are_observed_when_the_pod_terminates_or_goes() {
        let e = Expectations::default();
        let (a, b) = (pod("a", "1", "rs"), pod("b", "2", "rs"));
        e.expect_deletions("rs", ["a".to_string(), "b".to_string()]);
        e.observe(&Change::Modified {
            old: a.clone(),
            new: terminating(&a),
        });
        assert!(e.pending("rs").is_some(), "b is not deleted yet");
        e.observe(&Change::Modified {
            old: b.clone(),
            new: pod("b", "5", "rs"),
        });
        assert!(e.pending("rs").is_some(), "an update is not a deletion");
        e.observe(&Change::Deleted(b));
        assert_eq!(e.pending("rs"), None);
    }

    fn replica_set(uid: &str, rv: &str, owner: &str) -> ReplicaSet {
        let mut rs = ReplicaSet::default();
        rs.metadata.name = Some(format!("rs-{uid}"));
        rs.metadata.uid = Some(uid.into());
        rs.metadata.resource_version = Some(rv.into());
        rs.metadata.owner_references = pod("x", "1", owner).metadata.owner_references.clone();
        rs
    }

    #[test]
    fn a_write_is_expected_until_the_store_holds_that_version_or_newer() {
        let e = Expectations::default();
        let (store, mut writer) = reflector::store::<ReplicaSet>();
        let at = |rv: &str| Arc::new(replica_set("rs", rv, "deploy"));
        e.expect_write("deploy", &*at("10"), &store);
        e.observe(&Change::Modified {
            old: at("8"),
            new: at("9"),
        });
        assert!(
            e.pending("deploy").is_some(),
            "the store is older than the write"
        );
        e.observe(&Change::Modified {
            old: at("9"),
            new: at("11"),
        });
        assert_eq!(e.pending("deploy"), None);

        // A written object that is deleted before it is seen fulfils the write.
        e.expect_write("deploy", &*at("30"), &store);
        e.observe(&Change::Deleted(at("12")));
        assert_eq!(e.pending("deploy"), None);

        // A write the store already shows (the informer was faster than the answer) is
        // not awaited.
        writer.apply_watcher_event(&watcher::Event::Apply(replica_set("rs", "40", "deploy")));
        e.expect_write("deploy", &*at("40"), &store);
        assert_eq!(e.pending("deploy"), None);
    }

    #[test]
    fn a_write_to_the_object_itself_is_observed_on_the_object() {
        let e = Expectations::default();
        let (store, _writer) = reflector::store::<Pod>();
        e.expect_write("svc", &*pod("svc", "20", "nobody"), &store);
        e.observe(&Change::Modified {
            old: pod("svc", "19", "nobody"),
            new: pod("svc", "20", "nobody"),
        });
        assert_eq!(e.pending("svc"), None);
    }

    #[test]
    fn records_expire_and_are_dropped_with_their_owner() {
        let e = Expectations::with_timeout(Duration::ZERO);
        e.expect_creations("rs", 1);
        assert_eq!(
            e.pending("rs"),
            None,
            "an expired record is trusted no more"
        );

        let e = Expectations::default();
        e.expect_creations("rs", 2);
        let left = e.pending("rs").expect("waiting");
        assert!(left <= TIMEOUT && left > TIMEOUT - Duration::from_secs(5));
        let mut rs = ReplicaSet::default();
        rs.metadata.uid = Some("rs".into());
        e.observe(&Change::Deleted(Arc::new(rs)));
        assert_eq!(e.pending("rs"), None, "a deleted owner expects nothing");
    }
}
