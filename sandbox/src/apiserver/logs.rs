//! `pods/log`: serves the files the kubelet writes, one per container, at
//! [`container_log_path`] (`<state-dir>/logs/<namespace>/<pod>/<container>.log`; the
//! previous instance's log, for `--previous`, at [`previous_container_log_path`]).

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::by_kind;
use crate::apiserver::handlers;
use crate::apiserver::registry::Api;
use crate::paths::{container_log_path, previous_container_log_path};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header;
use serde_json::Value;
use std::collections::HashMap;
use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

fn tail(text: &[u8], lines: usize) -> &[u8] {
    let trimmed = text.strip_suffix(b"\n").unwrap_or(text);
    let mut count = 0;
    for (i, b) in trimmed.iter().enumerate().rev() {
        if *b == b'\n' {
            count += 1;
            if count == lines {
                return &text[i + 1..];
            }
        }
    }
    text
}

/// GET `pods/<name>/log`: the container's log, cut by `tailLines` and `limitBytes`, and
/// with `follow` kept open for what the container writes next.
pub(crate) async fn serve(
    api: Arc<Api>,
    ns: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let pods = by_kind("v1", "Pod").expect("pods are served");
    let pod = api
        .store
        .get(pods, ns, name)
        .ok_or_else(|| ApiError::not_found(pods, name))?;
    let container = pick_container(&pod, query.get("container").map(String::as_str))?;
    let previous = query.get("previous").is_some_and(|p| p == "true");
    let path = if previous {
        previous_container_log_path(&api.state_dir, ns, name, &container)
    } else {
        container_log_path(&api.state_dir, ns, name, &container)
    };
    let content = tokio::fs::read(&path)
        .await
        .map_err(|_| not_started(&pod, &container, previous))?;
    let shown = Bytes::copy_from_slice(shown(&content, query));
    if query.get("follow").is_none_or(|f| f != "true") {
        return Ok(([(header::CONTENT_TYPE, "text/plain")], shown).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let pod_key = (
        ns.to_string(),
        name.to_string(),
        pod["metadata"]["uid"].clone(),
    );
    api.spawn(follow(
        api.clone(),
        pod_key,
        path,
        content.len() as u64,
        shown,
        tx,
    ));
    Ok(handlers::stream("text/plain", rx))
}

/// The container asked for, or the pod's only one.
fn pick_container(pod: &Value, asked: Option<&str>) -> Result<String, ApiError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            pod["spec"]["initContainers"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect();
    let ephemeral = |c: &str| {
        pod["spec"]["ephemeralContainers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["name"] == c)
    };
    match asked.filter(|c| !c.is_empty()) {
        Some(c) if names.iter().any(|n| n == c) || ephemeral(c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            names.join(" ")
        ))),
    }
}

/// Why there is no log to read: no previous instance, or the container has not started.
fn not_started(pod: &Value, container: &str, previous: bool) -> ApiError {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    if previous {
        return ApiError::bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{name}\" not found"
        ));
    }
    let statuses = |key: &str| pod["status"][key].as_array().cloned().unwrap_or_default();
    let mut all = statuses("containerStatuses");
    all.extend(statuses("ephemeralContainerStatuses"));
    let reason = all
        .iter()
        .find(|c| c["name"] == container)
        .and_then(|c| c["state"]["waiting"]["reason"].as_str().map(String::from))
        .unwrap_or_else(|| "ContainerCreating".into());
    ApiError::bad_request(format!(
        "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
    ))
}

/// The part of the log `tailLines` and `limitBytes` keep.
fn shown<'a>(content: &'a [u8], query: &HashMap<String, String>) -> &'a [u8] {
    let mut shown = content;
    if let Some(n) = query.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
        shown = if n == 0 { &[] } else { tail(shown, n) };
    }
    if let Some(limit) = query
        .get("limitBytes")
        .and_then(|t| t.parse::<usize>().ok())
    {
        shown = &shown[..shown.len().min(limit)];
    }
    shown
}

/// Sends `first`, then what is appended to the log from `offset` on, until the client
/// leaves or the pod (this instance of it, by uid) is gone.
async fn follow(
    api: Arc<Api>,
    (ns, name, uid): (String, String, Value),
    path: PathBuf,
    mut offset: u64,
    first: Bytes,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let pods = by_kind("v1", "Pod").expect("pods are served");
    if tx.send(first).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            _ = tx.closed() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        if let Some(more) = read_from(&path, &mut offset).await
            && tx.send(more).await.is_err()
        {
            return;
        }
        let alive = api
            .store
            .get(pods, &ns, &name)
            .is_some_and(|p| p["metadata"]["uid"] == uid);
        if !alive {
            return;
        }
    }
}

/// What was written to the file after `offset` (from the start again if it shrank).
async fn read_from(path: &Path, offset: &mut u64) -> Option<Bytes> {
    let mut f = tokio::fs::File::open(path).await.ok()?;
    let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    if len < *offset {
        *offset = 0;
    }
    if len <= *offset {
        return None;
    }
    f.seek(SeekFrom::Start(*offset)).await.ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).await.ok()?;
    *offset += buf.len() as u64;
    Some(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 1), b"c");
        assert_eq!(tail(b"a\n", 5), b"a\n");
    }
}
