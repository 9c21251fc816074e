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

/// How many bytes of recent changes (their objects as stored, plus [`EVENT_OVERHEAD`] each)
/// a watch or an exact list can go back through before it gets 410 Gone: a bound on memory
/// whatever the objects' size, where a count of events was not (400 patches of a 1 MiB
/// ConfigMap held 440 MB).
pub const HISTORY_BYTES: usize = 32 * 1024 * 1024;
/// What one change costs beyond its object's bytes (the event, keys, the JSON tree's nodes).
const EVENT_OVERHEAD: usize = 512;
/// etcd's default `--max-request-bytes`: a real cluster cannot store a larger object.
pub const MAX_OBJECT_BYTES: usize = 3 * 1024 * 1024 / 2;

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
    /// The object before a modification or deletion, so filtered watches can report an
    /// object entering (ADDED) or leaving (DELETED) their selection, and exact lists can
    /// undo the change.
    pub previous: Option<Arc<Value>>,
    /// What this change counts against [`HISTORY_BYTES`].
    bytes: usize,
    /// `object` as JSON, encoded once for all the watches that send it as it is.
    encoded: std::sync::OnceLock<String>,
}

impl Event {
    /// The changed object as JSON.
    pub fn object_json(&self) -> &str {
        self.encoded.get_or_init(|| self.object.to_string())
    }
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
    history_bytes: usize,
}

/// The store. Reads are served from memory; writes go to disk first.
pub struct Store {
    /// The open database, taken by writers one at a time; `None` after an I/O error until
    /// the next write (or readiness check) reopens it, as redb requires.
    db: Mutex<Option<Database>>,
    path: PathBuf,
    state: RwLock<State>,
    events: broadcast::Sender<Arc<Event>>,
    /// Why writes fail, while they do: `/readyz` and `hk8s sandbox status` report it.
    fault: RwLock<Option<ApiError>>,
    /// The history's bound in bytes ([`HISTORY_BYTES`] unless set).
    history_budget: usize,
}

/// How a write to the disk failed.
enum DiskFault {
    /// The disk (or the user's quota) is full.
    NoSpace(std::io::Error),
    /// Another I/O error: the database must be reopened.
    Io(String),
    /// Not an I/O error (a bug or corruption): the database stays open.
    Other(String),
}

impl DiskFault {
    fn of(e: impl Into<redb::Error>) -> DiskFault {
        match e.into() {
            redb::Error::Io(e) if is_no_space(&e) => DiskFault::NoSpace(e),
            // What redb reads back is not a database: that is corruption, not the disk.
            redb::Error::Io(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
                ) =>
            {
                DiskFault::Other(e.to_string())
            }
            redb::Error::Io(e) => DiskFault::Io(e.to_string()),
            redb::Error::PreviousIo => DiskFault::Io("an earlier write failed".into()),
            e => DiskFault::Other(e.to_string()),
        }
    }
}

/// ENOSPC or EDQUOT.
fn is_no_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28 | 122)) || e.kind() == std::io::ErrorKind::StorageFull
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

/// A redb error at start-up: a full disk or an I/O error is not corruption, and saying so
/// would have the learner move a healthy store away.
fn open_failed(path: &Path, e: impl Into<redb::Error>) -> SandboxError {
    let dir = path.parent().unwrap_or(path).to_path_buf();
    match DiskFault::of(e) {
        DiskFault::NoSpace(e) => SandboxError::DiskFull {
            dir,
            detail: format!("cannot write {}: {e}", path.display()),
        },
        DiskFault::Io(detail) => SandboxError::StateDir {
            path: path.to_path_buf(),
            source: std::io::Error::other(detail),
        },
        DiskFault::Other(detail) => corrupt(path, detail),
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
        Err(e) => Err(open_failed(path, e)),
    }
}

/// Every stored object, by resource, and the resourceVersion counter; a new file gets the
/// format marker, an existing one must carry this version's.
fn load(db: &Database, path: &Path, existed: bool) -> Result<(Vec<Objects>, u64), SandboxError> {
    // The write transaction also proves the disk takes writes before the sandbox serves.
    let txn = db.begin_write().map_err(|e| open_failed(path, e))?;
    let loaded = {
        let mut meta = txn.open_table(META).map_err(|e| open_failed(path, e))?;
        check_format(&mut meta, path, existed)?;
        let rv = match meta.get("rv").map_err(|e| open_failed(path, e))? {
            Some(v) => v
                .value()
                .parse()
                .map_err(|_| corrupt(path, "resourceVersion counter is not a number"))?,
            None => 0,
        };
        let table = txn.open_table(OBJECTS).map_err(|e| open_failed(path, e))?;
        (read_objects(&table, path)?, rv)
    };
    txn.commit().map_err(|e| open_failed(path, e))?;
    Ok(loaded)
}

fn check_format(
    meta: &mut redb::Table<'_, &str, &str>,
    path: &Path,
    existed: bool,
) -> Result<(), SandboxError> {
    let format = meta
        .get("format")
        .map_err(|e| open_failed(path, e))?
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
            .map_err(|e| open_failed(path, e)),
    }
}

/// The objects table, by resource; keys of kinds this version does not serve are skipped.
fn read_objects(
    table: &redb::Table<'_, &str, &[u8]>,
    path: &Path,
) -> Result<Vec<Objects>, SandboxError> {
    let mut objects: Vec<Objects> = vec![BTreeMap::new(); RESOURCES.len()];
    for entry in table.iter().map_err(|e| open_failed(path, e))? {
        let (k, v) = entry.map_err(|e| open_failed(path, e))?;
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

/// kube-apiserver's answer for a version newer than any it has: 504 Timeout with the
/// `ResourceVersionTooLarge` cause, which clients retry after `retry` seconds.
pub fn too_large_rv(rv: u64, current: u64, retry: u64) -> ApiError {
    ApiError {
        code: 504,
        reason: "Timeout",
        message: format!("Too large resource version: {rv}, current: {current}"),
        details: Some(serde_json::json!({
            "causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
            "retryAfterSeconds": retry,
        })),
    }
}

/// One key (put or removed) and the version counter, in one transaction.
fn commit(db: &Database, rv: u64, key: &str, bytes: Option<&[u8]>) -> Result<(), DiskFault> {
    let txn = db.begin_write().map_err(DiskFault::of)?;
    {
        let mut t = txn.open_table(OBJECTS).map_err(DiskFault::of)?;
        match bytes {
            Some(b) => t.insert(key, b).map(drop).map_err(DiskFault::of)?,
            None => t.remove(key).map(drop).map_err(DiskFault::of)?,
        }
        let mut m = txn.open_table(META).map_err(DiskFault::of)?;
        m.insert("rv", rv.to_string().as_str())
            .map_err(DiskFault::of)?;
    }
    txn.commit().map_err(DiskFault::of)
}

/// The object as stored, within etcd's request limit: as kube-apiserver does, an object
/// too large is tried again without its managedFields, and refused with etcd's error if it
/// still does not fit.
fn encode_within_limit(r: &Resource, name: &str, obj: &mut Value) -> Result<Vec<u8>, ApiError> {
    let encode = |o: &Value| serde_json::to_vec(o).map_err(|e| ApiError::internal(e.to_string()));
    let bytes = encode(obj)?;
    if bytes.len() <= MAX_OBJECT_BYTES {
        return Ok(bytes);
    }
    if let Some(meta) = obj["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    let bytes = encode(obj)?;
    if bytes.len() <= MAX_OBJECT_BYTES {
        return Ok(bytes);
    }
    Err(ApiError::internal(format!(
        "etcdserver: request is too large ({} \"{name}\" is {} bytes when stored; etcd \
         stores at most {MAX_OBJECT_BYTES} bytes per object: keep large data out of API objects)",
        r.group_resource(),
        bytes.len()
    )))
}

impl Store {
    /// Opens (or creates) the store file and loads every object into memory.
    pub fn open(path: &Path) -> Result<Store, SandboxError> {
        let existed = path.exists();
        let db = open_database(path)?;
        let (objects, rv) = load(&db, path, existed)?;
        let (events, _) = broadcast::channel(8192);
        Ok(Store {
            db: Mutex::new(Some(db)),
            path: path.to_path_buf(),
            state: RwLock::new(State {
                objects,
                rv,
                history: VecDeque::new(),
                history_start: rv,
                history_bytes: 0,
            }),
            events,
            fault: RwLock::new(None),
            history_budget: HISTORY_BYTES,
        })
    }

    /// The same store with another bound on the history's bytes.
    pub fn with_history_budget(mut self, bytes: usize) -> Store {
        self.history_budget = bytes;
        self
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
        let mut db = self.db.lock().expect("store write lock");
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
        let (kind, stored, bytes) = match decision {
            Write::Unchanged(v) => return Ok((EventType::Modified, v)),
            Write::Put(obj) => {
                let mut obj = if r == requested {
                    obj
                } else {
                    conversion::to_version(&obj, r)
                };
                obj["metadata"]["resourceVersion"] = Value::String(next_rv.to_string());
                let bytes = encode_within_limit(r, name, &mut obj)?;
                self.persist(&mut db, next_rv, &key, Some(&bytes))?;
                let kind = if current.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                (kind, Arc::new(obj), bytes.len())
            }
            Write::Delete => {
                let Some(cur) = current.clone() else {
                    return Err(ApiError::not_found(r, name));
                };
                self.persist(&mut db, next_rv, &key, None)?;
                let mut obj = (*cur).clone();
                obj["metadata"]["resourceVersion"] = Value::String(next_rv.to_string());
                let size = serde_json::to_vec(&obj).map_or(0, |b| b.len());
                // The object and the one before it (kept to undo the deletion) are both held.
                (EventType::Deleted, Arc::new(obj), 2 * size)
            }
        };
        let event = Arc::new(Event {
            rv: next_rv,
            resource: r,
            namespace: ns.to_string(),
            kind,
            object: stored.clone(),
            previous: current,
            bytes: bytes + EVENT_OVERHEAD,
            encoded: std::sync::OnceLock::new(),
        });
        self.commit_in_memory(event);
        Ok((kind, Some(as_version(requested, stored))))
    }

    /// Makes a change that is on disk visible: the objects, the version, the history
    /// (trimmed to [`HISTORY_BYTES`]) and the watchers.
    fn commit_in_memory(&self, event: Arc<Event>) {
        let mut st = self.state.write().expect("store lock");
        let idx = resource_index(event.resource);
        let name = event.object["metadata"]["name"].as_str().unwrap_or("");
        let k = (event.namespace.clone(), name.to_string());
        if event.kind == EventType::Deleted {
            st.objects[idx].remove(&k);
        } else {
            st.objects[idx].insert(k, event.object.clone());
        }
        st.rv = event.rv;
        st.history_bytes += event.bytes;
        st.history.push_back(event.clone());
        while st.history_bytes > self.history_budget && st.history.len() > 1 {
            if let Some(old) = st.history.pop_front() {
                st.history_start = old.rv;
                st.history_bytes -= old.bytes;
            }
        }
        if st.history.capacity() > 4 * st.history.len().max(1024) {
            st.history.shrink_to_fit();
        }
        let _ = self.events.send(event);
    }

    /// Writes one key and the version counter in one transaction. An I/O error closes the
    /// database (redb refuses every later write on that handle) and is remembered as the
    /// store's fault until a later write or [`Store::check_writable`] reopens it.
    fn persist(
        &self,
        db: &mut Option<Database>,
        rv: u64,
        key: &str,
        bytes: Option<&[u8]>,
    ) -> Result<(), ApiError> {
        let result = match self.reopened(db) {
            Ok(open) => commit(open, rv, key, bytes),
            Err(fault) => Err(fault),
        };
        match result {
            Ok(()) => {
                // A small write can fit on a disk that is still all but full: readiness
                // stays off until `check_writable` finds room for 1 MiB.
                let mut current = self.fault.write().expect("fault lock");
                if current.as_ref().is_none_or(|e| e.code != 507) {
                    *current = None;
                }
                Ok(())
            }
            Err(fault) => {
                if !matches!(fault, DiskFault::Other(_)) {
                    *db = None;
                }
                let e = self.fault_error(fault);
                *self.fault.write().expect("fault lock") = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The open database, reopening it after an I/O error; changes that reached the disk
    /// without being acknowledged are loaded, and watchers from before them get 410 Gone.
    fn reopened<'d>(&self, db: &'d mut Option<Database>) -> Result<&'d Database, DiskFault> {
        if db.is_none() {
            let fresh = Database::create(&self.path).map_err(DiskFault::of)?;
            let (objects, rv) = load(&fresh, &self.path, true)
                .map_err(|e| DiskFault::Io(format!("reloading the store: {e}")))?;
            let mut st = self.state.write().expect("store lock");
            if rv != st.rv {
                tracing::warn!(
                    disk = rv,
                    memory = st.rv,
                    "store reloaded after an I/O error"
                );
                st.objects = objects;
                st.rv = rv;
                st.history.clear();
                st.history_start = rv;
                st.history_bytes = 0;
            }
            *db = Some(fresh);
        }
        Ok(db.as_ref().expect("opened above"))
    }

    /// The answer for a failed write: 507 naming the disk when it is full.
    fn fault_error(&self, fault: DiskFault) -> ApiError {
        let dir = self.path.parent().unwrap_or(&self.path).display();
        match fault {
            DiskFault::NoSpace(e) => ApiError::new(
                507,
                "InsufficientStorage",
                format!(
                    "no space left on the disk holding the sandbox state directory {dir} \
                     (writing {}: {e}); free some space there (see `df {dir}`) and retry: \
                     writes resume without a restart",
                    self.path.display()
                ),
            ),
            DiskFault::Io(e) => ApiError::internal(format!(
                "cannot write the sandbox store {}: {e}; it is reopened on the next write",
                self.path.display()
            )),
            DiskFault::Other(e) => {
                ApiError::internal(format!("store {}: {e}", self.path.display()))
            }
        }
    }

    /// Why writes fail, if they do: after a failure, tries the disk again (a 1 MiB file
    /// beside the store, and reopening the store) so readiness recovers once there is space.
    pub fn check_writable(&self) -> Result<(), ApiError> {
        if self.fault.read().expect("fault lock").is_none() {
            return Ok(());
        }
        let mut db = self.db.lock().expect("store write lock");
        let probe = self.path.with_extension("probe");
        let written = std::fs::write(&probe, vec![0u8; 1 << 20]);
        let _ = std::fs::remove_file(&probe);
        let result = match written {
            Err(e) if is_no_space(&e) => Err(DiskFault::NoSpace(e)),
            Err(e) => Err(DiskFault::Io(e.to_string())),
            Ok(()) => self.reopened(&mut db).map(drop),
        };
        match result {
            Ok(()) => {
                *self.fault.write().expect("fault lock") = None;
                Ok(())
            }
            Err(fault) => {
                let e = self.fault_error(fault);
                *self.fault.write().expect("fault lock") = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Every object of a resource as it was at `rv`, undoing the changes after it: what
    /// etcd answers for `resourceVersionMatch=Exact`. 410 Gone once the history no longer
    /// reaches back to `rv`; 504 "Too large resource version" for a version not yet written.
    pub fn list_exact(
        &self,
        r: &Resource,
        ns: Option<&str>,
        rv: u64,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        let st = self.state.read().expect("store lock");
        if rv > st.rv {
            return Err(too_large_rv(rv, st.rv, 0));
        }
        if rv < st.history_start {
            return Err(ApiError::gone(
                "The resourceVersion for the provided list is too old.",
            ));
        }
        let map = &st.objects[resource_index(r)];
        let mut at: Objects = match ns {
            Some(ns) => map
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            None => map.clone(),
        };
        let undone = st.history.iter().rev().take_while(|e| e.rv > rv);
        for e in undone.filter(|e| std::ptr::eq(e.resource, r) || e.resource == r) {
            if ns.is_some_and(|ns| ns != e.namespace) {
                continue;
            }
            let name = e.object["metadata"]["name"].as_str().unwrap_or("");
            let key = (e.namespace.clone(), name.to_string());
            match (&e.kind, &e.previous) {
                (EventType::Added, _) | (_, None) => at.remove(&key),
                (_, Some(before)) => at.insert(key, before.clone()),
            };
        }
        Ok(at.into_values().collect())
    }

    /// Waits up to `within` until the store has reached `rv`, as the watch cache does before
    /// it serves a version it has not seen; then 504 "Too large resource version".
    pub async fn wait_for(&self, rv: u64, within: std::time::Duration) -> Result<(), ApiError> {
        let mut rx = self.events.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let current = self.current_rv();
            if current >= rv {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_) => return Err(too_large_rv(rv, current, 1)),
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    return Err(too_large_rv(rv, current, 1));
                }
                Ok(_) => {}
            }
        }
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
