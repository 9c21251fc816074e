//! `pods/log`: serves the files the kubelet writes, one per container, at
//! [`container_log_path`] (`<state-dir>/logs/<namespace>/<pod>/<container>.log`; the
//! previous instance's log, for `--previous`, at [`previous_container_log_path`]).

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::by_kind;
use crate::apiserver::registry::Api;
use crate::paths::{container_log_path, previous_container_log_path};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header;
use std::collections::HashMap;
use std::io::SeekFrom;
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

pub async fn serve(
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
    let container = match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) if names.contains(c) => c.clone(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    let previous = query.get("previous").is_some_and(|p| p == "true");
    let path = if previous {
        previous_container_log_path(&api.state_dir, ns, name, &container)
    } else {
        container_log_path(&api.state_dir, ns, name, &container)
    };
    let content = match tokio::fs::read(&path).await {
        Ok(c) => c,
        Err(_) if previous => {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        Err(_) => {
            let reason = pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["name"] == container.as_str())
                .and_then(|c| c["state"]["waiting"]["reason"].as_str().map(String::from))
                .unwrap_or_else(|| "ContainerCreating".into());
            return Err(ApiError::bad_request(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        }
    };
    let mut shown: &[u8] = &content;
    if let Some(n) = query.get("tailLines").and_then(|t| t.parse::<usize>().ok()) {
        shown = if n == 0 { &[] } else { tail(shown, n) };
    }
    if let Some(limit) = query
        .get("limitBytes")
        .and_then(|t| t.parse::<usize>().ok())
    {
        shown = &shown[..shown.len().min(limit)];
    }
    let follow = query.get("follow").is_some_and(|f| f == "true");
    if !follow {
        return Ok((
            [(header::CONTENT_TYPE, "text/plain")],
            Bytes::copy_from_slice(shown),
        )
            .into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let first = Bytes::copy_from_slice(shown);
    let mut offset = content.len() as u64;
    let uid = pod["metadata"]["uid"].clone();
    let (ns, name) = (ns.to_string(), name.to_string());
    let api2 = api.clone();
    api.spawn(async move {
        if tx.send(first).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if let Ok(mut f) = tokio::fs::File::open(&path).await {
                let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
                if len < offset {
                    offset = 0;
                }
                if len > offset && f.seek(SeekFrom::Start(offset)).await.is_ok() {
                    let mut buf = Vec::new();
                    if f.read_to_end(&mut buf).await.is_ok() {
                        offset += buf.len() as u64;
                        if tx.send(Bytes::from(buf)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let alive = api2
                .store
                .get(pods, &ns, &name)
                .is_some_and(|p| p["metadata"]["uid"] == uid);
            if !alive {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response())
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
