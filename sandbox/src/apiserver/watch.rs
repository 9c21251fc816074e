//! Watches: the chunked stream of ADDED/MODIFIED/DELETED events (or Table rows for
//! `kubectl get -w`) from a resourceVersion, with selectors, bookmarks, initial events,
//! 410 Gone for versions older than the store's window, and `timeoutSeconds`.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::Resource;
use crate::apimachinery::selectors::{FieldSelector, LabelSelector};
use crate::apiserver::list_options::{self, FRESHNESS_WAIT};
use crate::apiserver::request::{Ctx, Shape, shape_of};
use crate::apiserver::storage::{Event, Store, too_large_rv};
use crate::apiserver::{handlers, printers};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

/// Answers a `?watch=true` request on a collection.
pub(crate) fn serve(
    ctx: &Ctx,
    r: &'static Resource,
    ns: Option<&str>,
) -> Result<Response, ApiError> {
    let (labels, fields) = ctx.selectors(r)?;
    list_options::validate_watch(ctx)?;
    let send_initial = ctx.flag("sendInitialEvents");
    let start = WatchStart::at(
        &ctx.api.store,
        r,
        ns,
        ctx.opt("resourceVersion"),
        send_initial,
    )?;
    let (tx, body_rx) = mpsc::channel::<Bytes>(64);
    let watcher = Watcher {
        r,
        ns: ns.map(String::from),
        labels,
        fields,
        shape: shape_of(&ctx.accept),
        include: ctx.opt("includeObject").unwrap_or("Metadata").to_string(),
        bookmarks: ctx.flag("allowWatchBookmarks"),
        send_initial,
        timeout: Duration::from_secs(
            ctx.opt("timeoutSeconds")
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(1800),
        ),
        tx,
        first: true,
        last_rv: start.start_rv,
    };
    ctx.api.spawn(watcher.run(start));
    Ok(handlers::stream("application/json", body_rx))
}

/// Where a watch starts: objects to report as ADDED, changes to replay, and the live feed
/// (or the 410 Gone to report when the version is older than the store's window).
struct WatchStart {
    initial: Vec<Arc<Value>>,
    backlog: Vec<Arc<Event>>,
    start_rv: u64,
    feed: Result<broadcast::Receiver<Arc<Event>>, ApiError>,
    /// The store's version when the watch started from a newer one: the watch waits for
    /// its version (up to [`FRESHNESS_WAIT`]) before it streams.
    behind: Option<u64>,
}

impl WatchStart {
    /// Without a resourceVersion (or with `0`, or `sendInitialEvents`) a watch starts with
    /// the current objects; otherwise it replays the changes after that version.
    fn at(
        store: &Store,
        r: &Resource,
        ns: Option<&str>,
        rv: Option<&str>,
        send_initial: bool,
    ) -> Result<Self, ApiError> {
        let rv = rv.unwrap_or("");
        if rv.is_empty() || rv == "0" || send_initial {
            let (initial, start_rv, rx) = store.snapshot_and_subscribe(r, ns);
            return Ok(WatchStart {
                initial,
                backlog: Vec::new(),
                start_rv,
                feed: Ok(rx),
                behind: None,
            });
        }
        let after: u64 = rv.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid resourceVersion {rv:?}: expected a number"))
        })?;
        let current = store.current_rv();
        let (backlog, feed) = match store.watch_from(after) {
            Ok((backlog, rx)) => (backlog, Ok(rx)),
            Err(e) => (Vec::new(), Err(e)),
        };
        Ok(WatchStart {
            initial: Vec::new(),
            backlog,
            start_rv: after,
            feed,
            behind: (after > current).then_some(current),
        })
    }
}

/// One running watch: what it selects, how it renders, and where its lines go.
struct Watcher {
    r: &'static Resource,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    shape: Shape,
    include: String,
    bookmarks: bool,
    send_initial: bool,
    timeout: Duration,
    tx: mpsc::Sender<Bytes>,
    /// Table watches send the column definitions with the first row only.
    first: bool,
    /// The newest version sent; older changes are skipped.
    last_rv: u64,
}

/// The client went away: the watch ends.
struct Closed;

impl Watcher {
    async fn run(mut self, start: WatchStart) {
        let mut feed = match start.feed {
            Ok(feed) => feed,
            Err(gone) => return self.error(&gone).await,
        };
        if let Some(current) = start.behind
            && let Err(e) = self.catch_up(&mut feed, current).await
        {
            return self.error(&e).await;
        }
        if self.initial(&start.initial).await.is_err() {
            return;
        }
        for ev in &start.backlog {
            if self.change(ev).await.is_err() {
                return;
            }
        }
        self.live(feed).await;
    }

    /// Waits for the store to reach the version the watch starts from, as the watch cache
    /// does; 504 "Too large resource version" when it does not within [`FRESHNESS_WAIT`].
    async fn catch_up(
        &mut self,
        feed: &mut broadcast::Receiver<Arc<Event>>,
        mut current: u64,
    ) -> Result<(), ApiError> {
        let deadline = tokio::time::Instant::now() + FRESHNESS_WAIT;
        while current < self.last_rv {
            match tokio::time::timeout_at(deadline, feed.recv()).await {
                Ok(Ok(ev)) => {
                    current = ev.rv;
                    if ev.rv > self.last_rv && self.change(&ev).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => {
                    return Err(too_large_rv(self.last_rv, current, 1));
                }
            }
        }
        Ok(())
    }

    /// The current objects as ADDED, then (with bookmarks) the initial-events-end bookmark.
    async fn initial(&mut self, items: &[Arc<Value>]) -> Result<(), Closed> {
        for o in items {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or("");
            if self.matches(self.r, ns, o) {
                self.send_object("ADDED", o).await?;
            }
        }
        if self.send_initial && self.bookmarks {
            self.send(self.bookmark(self.last_rv, true)).await?;
        }
        Ok(())
    }

    /// Live changes, periodic bookmarks, until the timeout or the client leaves.
    async fn live(&mut self, mut feed: broadcast::Receiver<Arc<Event>>) {
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        loop {
            let sent = tokio::select! {
                _ = &mut deadline => return,
                _ = self.tx.closed() => return,
                _ = tick.tick(), if self.bookmarks => self.send(self.bookmark(self.last_rv, false)).await,
                ev = feed.recv() => match ev {
                    Ok(ev) => self.change(&ev).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let gone = ApiError::gone("the watch fell behind; list again and resume from the new resourceVersion");
                        return self.error(&gone).await;
                    }
                    Err(_) => return,
                },
            };
            if sent.is_err() {
                return;
            }
        }
    }

    /// Sends a committed change if this watch has not seen it and it concerns its selection.
    async fn change(&mut self, ev: &Event) -> Result<(), Closed> {
        if ev.rv <= self.last_rv {
            return Ok(());
        }
        self.last_rv = ev.rv;
        let as_stored = self.shape == Shape::Object
            && ev.object["apiVersion"].as_str() == Some(self.r.api_version().as_str());
        match seen_as(ev, &|r, ns, o| self.matches(r, ns, o)) {
            Some(kind) if as_stored => {
                self.first = false;
                let line = format!("{{\"type\":\"{kind}\",\"object\":{}}}", ev.object_json());
                self.send_line(line).await
            }
            Some(kind) => self.send_object(kind, &ev.object).await,
            None => Ok(()),
        }
    }

    fn matches(&self, r: &Resource, ns: &str, o: &Value) -> bool {
        crate::apiserver::conversion::storage_of(r)
            == crate::apiserver::conversion::storage_of(self.r)
            && self.ns.as_deref().is_none_or(|n| n == ns)
            && self.labels.matches(&o["metadata"]["labels"])
            && self.fields.matches(o)
    }

    async fn send_object(&mut self, kind: &str, o: &Value) -> Result<(), Closed> {
        let converted;
        let o = if o["apiVersion"].as_str() == Some(self.r.api_version().as_str()) {
            o
        } else {
            converted = crate::apiserver::conversion::to_version(o, self.r);
            &converted
        };
        let object = match self.shape {
            Shape::Table => {
                printers::table(self.r, &[Arc::new(o.clone())], &self.include, 0, self.first)
            }
            Shape::Metadata => printers::partial_metadata(o),
            Shape::Object => o.clone(),
        };
        self.first = false;
        self.send(json!({"type": kind, "object": object})).await
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object =
            json!({"kind": self.r.kind, "apiVersion": self.r.api_version(), "metadata": meta});
        json!({"type": "BOOKMARK", "object": object})
    }

    /// Ends the watch with an ERROR event carrying the Status.
    async fn error(&self, e: &ApiError) {
        let _ = self
            .send(json!({"type": "ERROR", "object": e.status()}))
            .await;
    }

    async fn send(&self, event: Value) -> Result<(), Closed> {
        self.send_line(event.to_string()).await
    }

    /// Sends one event already encoded as JSON, as one line.
    async fn send_line(&self, mut line: String) -> Result<(), Closed> {
        line.push('\n');
        self.tx.send(Bytes::from(line)).await.map_err(|_| Closed)
    }
}

/// How a filtered watch reports a change: objects entering the selection are ADDED,
/// objects leaving it DELETED, others as they happened; `None` when it never matched.
fn seen_as(ev: &Event, matches: &impl Fn(&Resource, &str, &Value) -> bool) -> Option<&'static str> {
    let now = matches(ev.resource, &ev.namespace, &ev.object);
    let before = ev
        .previous
        .as_ref()
        .map(|p| matches(ev.resource, &ev.namespace, p));
    match (before, now) {
        (Some(false), true) => Some("ADDED"),
        (Some(true), false) => Some("DELETED"),
        (_, true) => Some(ev.kind.as_str()),
        _ => None,
    }
}
