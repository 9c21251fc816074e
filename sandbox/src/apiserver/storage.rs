//! The object store: every object as JSON in an embedded redb database, mirrored in memory
//! for fast reads, with one global monotonically increasing resourceVersion and a bounded
//! window of recent changes that watches replay from.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::{RESOURCES, Resource};
use crate::apiserver::conversion;
use crate::error::SandboxError;
use redb::{Database, ReadableTable, TableDefinition};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::broadcast;

const OBJECTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<'_, &str, &str> = TableDefinition::new("meta");
const FORMAT: &str = "hk8s-sandbox-store/1";

/// How many recent changes a watch can resume from before it gets 410 Gone.
pub const HISTORY_WINDOW: usize = 10_000;

/// The kind of change a watch event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub resource: &'static Resource,
    pub namespace: String,
    pub kind: EventType,
    pub object: Arc<Value>,
    /// The object before a modification, so filtered watches can report an object
    /// entering (ADDED) or leaving (DELETED) their selection.
    pub previous: Option<Arc<Value>>,
}

/// What a write closure decided.
pub enum Write {
    Put(Value),
    Delete,
    /// Nothing changes; answer with this object (or nothing).
    Unchanged(Option<Arc<Value>>),
}

/// Changes to replay and the receiver for the ones to come.
pub type Resume = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

type Objects = BTreeMap<(String, String), Arc<Value>>;

struct State {
    /// Indexed like `RESOURCES`.
    objects: Vec<Objects>,
    rv: u64,
    history: VecDeque<Arc<Event>>,
    /// Every change after this resourceVersion is in `history`.
    history_start: u64,
}

/// The store. Reads are served from memory; writes go to disk first.
pub struct Store {
    db: Database,
    path: PathBuf,
    write_lock: Mutex<()>,
    state: RwLock<State>,
    events: broadcast::Sender<Arc<Event>>,
}

fn resource_index(r: &Resource) -> usize {
    let stored = conversion::storage_of(r);
    RESOURCES
        .iter()
        .position(|x| std::ptr::eq(x, stored))
        .expect("resource comes from RESOURCES")
}

/// `obj` as `r`'s version (objects are stored in their kind's storage version).
fn as_version(r: &Resource, obj: Arc<Value>) -> Arc<Value> {
    if obj["apiVersion"].as_str() == Some(r.api_version().as_str()) {
        obj
    } else {
        Arc::new(conversion::to_version(&obj, r))
    }
}

fn storage_key(r: &Resource, ns: &str, name: &str) -> String {
    format!("{}{ns}/{name}", r.storage_prefix())
}

fn corrupt(path: &Path, detail: impl std::fmt::Display) -> SandboxError {
    SandboxError::CorruptStore {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
}

/// The redb file, locked for this process: another running sandbox holds it otherwise.
fn open_database(path: &Path) -> Result<Database, SandboxError> {
    let locked = || SandboxError::StoreLocked {
        path: path.to_path_buf(),
    };
    match Database::create(path) {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(locked()),
        Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
            if e.kind() == std::io::ErrorKind::WouldBlock =>
        {
            Err(locked())
        }
        Err(e) => Err(corrupt(path, e)),
    }
}

/// Every stored object, by resource, and the resourceVersion counter; a new file gets the
/// format marker, an existing one must carry this version's.
fn load(db: &Database, path: &Path, existed: bool) -> Result<(Vec<Objects>, u64), SandboxError> {
    let err = |e: &dyn std::fmt::Display| corrupt(path, e);
    let txn = db.begin_write().map_err(|e| err(&e))?;
    let loaded = {
        let mut meta = txn.open_table(META).map_err(|e| err(&e))?;
        check_format(&mut meta, path, existed)?;
        let rv = match meta.get("rv").map_err(|e| err(&e))? {
            Some(v) => v
                .value()
                .parse()
                .map_err(|_| corrupt(path, "resourceVersion counter is not a number"))?,
            None => 0,
        };
        let table = txn.open_table(OBJECTS).map_err(|e| err(&e))?;
        (read_objects(&table, path)?, rv)
    };
    txn.commit().map_err(|e| err(&e))?;
    Ok(loaded)
}

fn check_format(
    meta: &mut redb::Table<'_, &str, &str>,
    path: &Path,
    existed: bool,
) -> Result<(), SandboxError> {
    let format = meta
        .get("format")
        .map_err(|e| corrupt(path, e))?
        .map(|g| g.value().to_string());
    match format {
        Some(f) if f == FORMAT => Ok(()),
        Some(f) => Err(corrupt(
            path,
            format!("format {f:?}, this hk8s reads {FORMAT:?}"),
        )),
        None if existed => Err(corrupt(path, "no format marker")),
        None => meta
            .insert("format", FORMAT)
            .map(|_| ())
            .map_err(|e| corrupt(path, e)),
    }
}

/// The objects table, by resource; keys of kinds this version does not serve are skipped.
fn read_objects(
    table: &redb::Table<'_, &str, &[u8]>,
    path: &Path,
) -> Result<Vec<Objects>, SandboxError> {
    let mut objects: Vec<Objects> = vec![BTreeMap::new(); RESOURCES.len()];
    for entry in table.iter().map_err(|e| corrupt(path, e))? {
        let (k, v) = entry.map_err(|e| corrupt(path, e))?;
        let key = k.value();
        let Some((idx, rest)) = RESOURCES
            .iter()
            .enumerate()
            .find_map(|(i, r)| key.strip_prefix(&r.storage_prefix()).map(|rest| (i, rest)))
        else {
            tracing::warn!(
                key,
                "skipping an object of a kind this version does not serve"
            );
            continue;
        };
        let Some((ns, name)) = rest.split_once('/') else {
            return Err(corrupt(path, format!("malformed key {key:?}")));
        };
        let value: Value = serde_json::from_slice(v.value())
            .map_err(|e| corrupt(path, format!("object {key:?}: {e}")))?;
        objects[idx].insert((ns.to_string(), name.to_string()), Arc::new(value));
    }
    Ok(objects)
}

impl Store {
    /// Opens (or creates) the store file and loads every object into memory.
    pub fn open(path: &Path) -> Result<Store, SandboxError> {
        let existed = path.exists();
        let db = open_database(path)?;
        let (objects, rv) = load(&db, path, existed)?;
        let (events, _) = broadcast::channel(8192);
        Ok(Store {
            db,
            path: path.to_path_buf(),
            write_lock: Mutex::new(()),
            state: RwLock::new(State {
                objects,
                rv,
                history: VecDeque::new(),
                history_start: rv,
            }),
            events,
        })
    }

    /// The latest committed resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.state.read().expect("store lock").rv
    }

    /// One object, from memory.
    pub fn get(&self, r: &Resource, ns: &str, name: &str) -> Option<Arc<Value>> {
        let st = self.state.read().expect("store lock");
        st.objects[resource_index(r)]
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
            .map(|o| as_version(r, o))
    }

    /// Every object of a resource (in one namespace, or all), in key order, and the
    /// resourceVersion the list is consistent with.
    pub fn list(&self, r: &Resource, ns: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let st = self.state.read().expect("store lock");
        let map = &st.objects[resource_index(r)];
        let items: Vec<Arc<Value>> = match ns {
            Some(ns) => map
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
            None => map.values().cloned().collect(),
        };
        let items = if conversion::storage_of(r) == r {
            items
        } else {
            items.into_iter().map(|o| as_version(r, o)).collect()
        };
        (items, st.rv)
    }

    /// Reads, decides and commits one object atomically: `decide` sees the current object
    /// and returns what to store. The new object gets the next resourceVersion.
    pub fn write(
        &self,
        r: &'static Resource,
        ns: &str,
        name: &str,
        decide: impl FnOnce(Option<&Value>) -> Result<Write, ApiError>,
    ) -> Result<(EventType, Option<Arc<Value>>), ApiError> {
        let _guard = self.write_lock.lock().expect("store write lock");
        let current = self.get(r, ns, name);
        let decision = decide(current.as_deref())?;
        let requested = r;
        let r = conversion::storage_of(r);
        let current = if r == requested {
            current
        } else {
            self.get(r, ns, name)
        };
        let next_rv = self.current_rv() + 1;
        let key = storage_key(r, ns, name);
        let (kind, stored) = match decision {
            Write::Unchanged(v) => return Ok((EventType::Modified, v)),
            Write::Put(obj) => {
                let mut obj = if r == requested {
                    obj
                } else {
                    conversion::to_version(&obj, r)
                };
                obj["metadata"]["resourceVersion"] = Value::String(next_rv.to_string());
                let bytes =
                    serde_json::to_vec(&obj).map_err(|e| ApiError::internal(e.to_string()))?;
                self.persist(next_rv, &key, Some(&bytes))?;
                let kind = if current.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                (kind, Arc::new(obj))
            }
            Write::Delete => {
                let Some(cur) = current.clone() else {
                    return Err(ApiError::not_found(r, name));
                };
                self.persist(next_rv, &key, None)?;
                let mut obj = (*cur).clone();
                obj["metadata"]["resourceVersion"] = Value::String(next_rv.to_string());
                (EventType::Deleted, Arc::new(obj))
            }
        };
        let event = Arc::new(Event {
            rv: next_rv,
            resource: r,
            namespace: ns.to_string(),
            kind,
            object: stored.clone(),
            previous: if kind == EventType::Modified {
                current
            } else {
                None
            },
        });
        let mut st = self.state.write().expect("store lock");
        let idx = resource_index(r);
        let k = (ns.to_string(), name.to_string());
        if kind == EventType::Deleted {
            st.objects[idx].remove(&k);
        } else {
            st.objects[idx].insert(k, stored.clone());
        }
        st.rv = next_rv;
        st.history.push_back(event.clone());
        while st.history.len() > HISTORY_WINDOW {
            if let Some(old) = st.history.pop_front() {
                st.history_start = old.rv;
            }
        }
        let _ = self.events.send(event);
        Ok((kind, Some(as_version(requested, stored))))
    }

    fn persist(&self, rv: u64, key: &str, bytes: Option<&[u8]>) -> Result<(), ApiError> {
        let fail = |e: &dyn std::fmt::Display| {
            ApiError::internal(format!("store {}: {e}", self.path.display()))
        };
        let txn = self.db.begin_write().map_err(|e| fail(&e))?;
        {
            let mut t = txn.open_table(OBJECTS).map_err(|e| fail(&e))?;
            match bytes {
                Some(b) => {
                    t.insert(key, b).map_err(|e| fail(&e))?;
                }
                None => {
                    t.remove(key).map_err(|e| fail(&e))?;
                }
            }
            let mut m = txn.open_table(META).map_err(|e| fail(&e))?;
            m.insert("rv", rv.to_string().as_str())
                .map_err(|e| fail(&e))?;
        }
        txn.commit().map_err(|e| fail(&e))
    }

    /// Starts a watch after `after_rv`: the changes already committed since then, and a
    /// receiver for the ones to come. 410 Gone when `after_rv` is older than the window.
    pub fn watch_from(&self, after_rv: u64) -> Result<Resume, ApiError> {
        let st = self.state.read().expect("store lock");
        if after_rv < st.history_start {
            return Err(ApiError::gone(format!(
                "too old resource version: {after_rv} ({})",
                st.history_start + 1
            )));
        }
        let backlog = st
            .history
            .iter()
            .filter(|e| e.rv > after_rv)
            .cloned()
            .collect();
        Ok((backlog, self.events.subscribe()))
    }

    /// A snapshot of one resource plus a receiver for every change after it.
    pub fn snapshot_and_subscribe(
        &self,
        r: &Resource,
        ns: Option<&str>,
    ) -> (Vec<Arc<Value>>, u64, broadcast::Receiver<Arc<Event>>) {
        let rx = {
            let _st = self.state.read().expect("store lock");
            self.events.subscribe()
        };
        // The write path holds the state write lock while it broadcasts, so the receiver
        // may hold changes already in the snapshot; watchers skip events at or below its rv.
        let (items, rv) = self.list(r, ns);
        (items, rv, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apimachinery::resources::by_kind;
    use serde_json::json;

    #[test]
    fn objects_and_the_version_counter_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let cm = by_kind("v1", "ConfigMap").unwrap();
        {
            let store = Store::open(&path).unwrap();
            let put = |name: &str| {
                let obj = json!({"metadata": {"name": name, "namespace": "demo"}});
                store
                    .write(cm, "demo", name, |_| Ok(Write::Put(obj)))
                    .unwrap()
            };
            assert_eq!(put("a").0, EventType::Added);
            put("b");
            let (kind, _) = store.write(cm, "demo", "a", |_| Ok(Write::Delete)).unwrap();
            assert_eq!(kind, EventType::Deleted);
            assert!(Store::open(&path).is_err(), "the file is locked while open");
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.current_rv(), 3);
        let (items, _) = store.list(cm, Some("demo"));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["metadata"]["resourceVersion"], "2");
        let (backlog, _) = store.watch_from(3).unwrap();
        assert!(backlog.is_empty());
        assert_eq!(store.watch_from(2).unwrap_err().code, 410);
    }
}
