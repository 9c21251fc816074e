//! Watches: the chunked stream of ADDED/MODIFIED/DELETED events (or Table rows for
//! `kubectl get -w`) from a resourceVersion, with selectors, bookmarks, initial events,
//! 410 Gone for versions older than the store's window, and `timeoutSeconds`.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::Resource;
use crate::apiserver::printers;
use crate::apiserver::request::{Ctx, Shape, shape_of};
use crate::apiserver::storage::Event;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

/// Answers a `?watch=true` request on a collection.
pub(crate) fn serve(
    ctx: &Ctx,
    r: &'static Resource,
    ns: Option<&str>,
) -> Result<Response, ApiError> {
    let (labels, fields) = ctx.selectors()?;
    let shape = shape_of(&ctx.accept);
    let include = ctx.opt("includeObject").unwrap_or("Metadata").to_string();
    let bookmarks = ctx.flag("allowWatchBookmarks");
    let send_initial = ctx.flag("sendInitialEvents");
    let timeout = ctx
        .opt("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let rv_param = ctx.opt("resourceVersion").unwrap_or("").to_string();
    let ns = ns.map(String::from);
    let store = &ctx.api.store;

    let start = if rv_param.is_empty() || rv_param == "0" || send_initial {
        let (items, rv, rx) = store.snapshot_and_subscribe(r, ns.as_deref());
        WatchStart {
            initial: items,
            backlog: Vec::new(),
            start_rv: rv,
            rx: Some(rx),
            gone: None,
        }
    } else {
        let after: u64 = rv_param.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resourceVersion {rv_param:?}: expected a number"
            ))
        })?;
        match store.watch_from(after) {
            Ok((backlog, rx)) => WatchStart {
                initial: Vec::new(),
                backlog,
                start_rv: after,
                rx: Some(rx),
                gone: None,
            },
            Err(e) => WatchStart {
                initial: Vec::new(),
                backlog: Vec::new(),
                start_rv: after,
                rx: None,
                gone: Some(e),
            },
        }
    };
    let (tx, body_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let stream = futures::stream::unfold(body_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    let matches = {
        let ns = ns.clone();
        move |ev_r: &Resource, ev_ns: &str, o: &Value| {
            std::ptr::eq(ev_r, r) | (ev_r == r)
                && ns.as_deref().is_none_or(|n| n == ev_ns)
                && labels.matches(&o["metadata"]["labels"])
                && fields.matches(o)
        }
    };
    let render = move |kind: &str, o: &Value, first: bool| -> Bytes {
        let object = match shape {
            Shape::Table => printers::table(r, &[Arc::new(o.clone())], &include, 0, first),
            Shape::Metadata => printers::partial_metadata(o),
            Shape::Object => o.clone(),
        };
        let mut line = json!({"type": kind, "object": object}).to_string();
        line.push('\n');
        Bytes::from(line)
    };
    let api_version = r.api_version();
    let bookmark = move |rv: u64, initial_end: bool| -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let mut line = json!({"type": "BOOKMARK", "object": {"kind": r.kind, "apiVersion": api_version, "metadata": meta}}).to_string();
        line.push('\n');
        Bytes::from(line)
    };
    let WatchStart {
        initial: initial_items,
        backlog,
        start_rv,
        rx,
        gone,
    } = start;
    ctx.api.spawn(async move {
        let mut first = true;
        if let Some(e) = gone {
            let line = format!("{}\n", json!({"type": "ERROR", "object": e.status()}));
            let _ = tx.send(Bytes::from(line)).await;
            return;
        }
        let Some(mut rx) = rx else { return };
        for o in &initial_items {
            if !matches(r, o["metadata"]["namespace"].as_str().unwrap_or(""), o) {
                continue;
            }
            if tx.send(render("ADDED", o, first)).await.is_err() {
                return;
            }
            first = false;
        }
        if send_initial && bookmarks && tx.send(bookmark(start_rv, true)).await.is_err() {
            return;
        }
        let mut last_rv = start_rv;
        // The line a change becomes, if this watch has not seen it and it concerns the
        // watch's selector; backlog and live changes go through the same door.
        let line_for = |ev: &Event, last_rv: &mut u64, first: &mut bool| -> Option<Bytes> {
            if ev.rv <= *last_rv {
                return None;
            }
            *last_rv = ev.rv;
            let kind = seen_as(ev, &matches)?;
            let line = render(kind, &ev.object, *first);
            *first = false;
            Some(line)
        };
        for ev in backlog {
            if let Some(line) = line_for(&ev, &mut last_rv, &mut first)
                && tx.send(line).await.is_err()
            {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                }
                ev = rx.recv() => match ev {
                    Ok(ev) => {
                        if let Some(line) = line_for(&ev, &mut last_rv, &mut first)
                            && tx.send(line).await.is_err()
                        {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let e = ApiError::gone("the watch fell behind; list again and resume from the new resourceVersion");
                        let line = format!("{}\n", json!({"type": "ERROR", "object": e.status()}));
                        let _ = tx.send(Bytes::from(line)).await;
                        return;
                    }
                    Err(_) => return,
                }
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
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

/// Where a watch starts: objects to report as ADDED, changes to replay, and the live feed.
struct WatchStart {
    initial: Vec<Arc<Value>>,
    backlog: Vec<Arc<Event>>,
    start_rv: u64,
    rx: Option<tokio::sync::broadcast::Receiver<Arc<Event>>>,
    gone: Option<ApiError>,
}
