//! Request bodies: read within the size limit and decoded by their content type (JSON,
//! YAML, the protobuf subset kubectl sends), and how a PATCH body is to be read.

use crate::apimachinery::errors::ApiError;
use crate::apiserver::protobuf;
use crate::apiserver::registry::PatchKind;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::BodyExt;
use serde_json::Value;

/// Request bodies above this size get 413, like the real API server's 3 MiB limit.
pub(crate) const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The whole body, or 413 above [`MAX_BODY_BYTES`].
pub(crate) async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::too_large(MAX_BODY_BYTES))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// The media type of the body, lowercase and without parameters.
fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// An empty or whitespace-only body.
pub(crate) fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// A JSON body, or 400 saying it is not JSON.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON: {e}; send a complete Kubernetes object"
        ))
    })
}

/// A YAML body, or 400 saying it is not YAML.
pub(crate) fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8 text"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")))
}

/// An object sent to create or replace, as JSON, YAML or protobuf.
pub(crate) fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if is_blank(body) {
        return Err(ApiError::bad_request(
            "the request body is empty; send a Kubernetes object as JSON or YAML",
        ));
    }
    match content_type(headers).as_str() {
        "" | "application/json" => parse_json(body),
        "application/yaml" | "application/x-yaml" | "text/yaml" => parse_yaml(body),
        protobuf::CONTENT_TYPE => protobuf::decode(body),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Which patch a PATCH request sends, from its content type.
pub(crate) fn patch_kind(headers: &HeaderMap) -> Result<PatchKind, ApiError> {
    match content_type(headers).as_str() {
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        "application/apply-patch+yaml" => Ok(PatchKind::Apply),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// A patch body: apply patches may be YAML, the others are JSON.
pub(crate) fn decode_patch(kind: PatchKind, body: &[u8]) -> Result<Value, ApiError> {
    if is_blank(body) {
        return Err(ApiError::bad_request("the patch body is empty"));
    }
    match kind {
        PatchKind::Apply => parse_json(body).or_else(|_| parse_yaml(body)),
        _ => parse_json(body),
    }
}
