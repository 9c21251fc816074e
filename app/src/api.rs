//! The JSON API: the original's `GET /` and `POST /new`, a JSON API under `/api/v1`, and probes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{DEFAULT_MAX_MSG_GET, Env, EnvError, Peer};
use crate::message::{self, Message, MessageError};
use crate::store::{Store, StoreError};

/// Largest request body read at all; bigger bodies get 413 before the message rules apply.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest `limit` accepted by `GET /api/v1/messages`.
pub const MAX_LIST_LIMIT: usize = 1000;

/// The API's settings, from `HKA_HOST`, `HKA_PORT`, `REDIS_HOST`, `REDIS_PORT`, `MAX_MSG_GET`,
/// `HKA_DEBUG` and `GET_HOSTS_FROM`.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Redis address.
    pub redis: Peer,
    /// Default number of messages listed.
    pub max_msg_get: usize,
    /// Per-request debug logs.
    pub debug: bool,
}

impl ApiConfig {
    /// Reads the settings, failing on the first invalid variable.
    pub fn from_env<F: Fn(&str) -> Option<std::ffi::OsString>>(
        env: &Env<F>,
    ) -> Result<Self, EnvError> {
        Ok(ApiConfig {
            listen: env.listen("HKA_HOST", "HKA_PORT", 5000)?,
            redis: env.peer("REDIS", "REDIS_HOST", "REDIS_PORT", "localhost", 6379)?,
            max_msg_get: env.count("MAX_MSG_GET")?.unwrap_or(DEFAULT_MAX_MSG_GET),
            debug: env.flag("HKA_DEBUG")?.unwrap_or(false),
        })
    }
}

#[derive(Clone)]
struct AppState {
    store: Store,
    pod: Arc<str>,
    max_msg_get: usize,
}

/// The API's routes over `store`; `pod` names this instance in answers.
pub fn router(store: Store, pod: &str, max_msg_get: usize) -> Router {
    let state = AppState {
        store,
        pod: Arc::from(pod),
        max_msg_get,
    };
    Router::new()
        .route("/", get(compat_list))
        .route("/new", post(compat_create))
        .route("/api/v1/messages", get(list).post(create))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::server::log_request))
        .with_state(state)
}

/// An error answered as `{"status":"error","error":...}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"status": "error", "error": self.message})),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store unavailable");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

impl From<MessageError> for ApiError {
    fn from(e: MessageError) -> Self {
        let status = match e {
            MessageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            MessageError::Empty | MessageError::NotUtf8 => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the request body is over {MAX_BODY_BYTES} bytes; messages are limited to {} bytes",
                message::MAX_MESSAGE_BYTES
            )
        } else {
            format!("cannot read the request body: {}", e.body_text())
        };
        ApiError::new(status, message)
    }
}

async fn compat_list(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let msgs = s.store.latest(s.max_msg_get).await?;
    let texts: Vec<String> = msgs.into_iter().map(|m| m.text).collect();
    Ok(Json(json!({"status": "success", "messages": texts})))
}

async fn compat_create(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = body?;
    let text = message::validate(&body)?;
    let msg = s.store.append(text, None).await?;
    tracing::info!(id = msg.id, bytes = msg.text.len(), "message stored");
    Ok(Json(json!({"status": "success", "message": msg.text})))
}

#[derive(Deserialize)]
struct ListParams {
    limit: Option<usize>,
}

/// Body of `GET /api/v1/messages`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ListResponse {
    /// `success`.
    pub status: String,
    /// The API pod that answered.
    pub pod: String,
    /// Newest first.
    pub messages: Vec<Message>,
}

/// Body of `POST /api/v1/messages`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateRequest {
    /// The message text.
    pub text: String,
    /// An idempotency key (at most 64 letters, digits, `-` or `_`): a second request with
    /// the same key stores nothing and answers with the first one's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The longest idempotency key accepted.
const MAX_KEY_LEN: usize = 64;

/// Answer to `POST /api/v1/messages`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateResponse {
    /// `success`.
    pub status: String,
    /// The API pod that answered.
    pub pod: String,
    /// The stored message.
    pub message: Message,
}

async fn list(
    State(s): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<ListResponse>, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid query ({}): limit must be a number from 1 to {MAX_LIST_LIMIT}",
                e.body_text()
            ),
        )
    })?;
    let limit = params.limit.unwrap_or(s.max_msg_get);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("limit={limit} is out of range: use 1 to {MAX_LIST_LIMIT}"),
        ));
    }
    let messages = s.store.latest(limit).await?;
    Ok(Json(ListResponse {
        status: "success".into(),
        pod: s.pod.to_string(),
        messages,
    }))
}

async fn create(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreateResponse>), ApiError> {
    let body = body?;
    let req: CreateRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the body must be JSON like {{\"text\": \"...\"}} in UTF-8: {e}"),
        )
    })?;
    let text = message::validate(req.text.as_bytes())?;
    if let Some(key) = &req.key
        && (key.is_empty()
            || key.len() > MAX_KEY_LEN
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("key must be 1 to {MAX_KEY_LEN} letters, digits, '-' or '_'"),
        ));
    }
    let msg = s.store.append(text, req.key.as_deref()).await?;
    tracing::info!(id = msg.id, bytes = msg.text.len(), "message stored");
    Ok((
        StatusCode::CREATED,
        Json(CreateResponse {
            status: "success".into(),
            pod: s.pod.to_string(),
            message: msg,
        }),
    ))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(s): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    s.store.ping().await?;
    Ok(Json(json!({"status": "ok", "redis": s.store.addr()})))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint: try GET /, POST /new, GET|POST /api/v1/messages, /healthz, /readyz",
    )
}
