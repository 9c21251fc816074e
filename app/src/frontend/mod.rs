//! The web frontend: the page with the form and the latest messages, and probes.

pub mod client;
pub mod form;
pub mod page;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use crate::config::{DEFAULT_MAX_MSG_GET, Env, EnvError, Peer};
use crate::message::{self, MessageError};
use client::{ApiCallError, ApiClient};
use page::Page;

/// Largest form body read; the message rules (1 KiB of text) apply after decoding.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// The frontend's settings, from `HKF_HOST`, `HKF_PORT`, `HKF_DEBUG`, `API_HOST`, `API_PORT`,
/// `MAX_MSG_GET` and `GET_HOSTS_FROM`.
#[derive(Debug, Clone)]
pub struct FrontendConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// The API's address.
    pub api: Peer,
    /// How many messages the page shows.
    pub max_msg_get: usize,
    /// Per-request debug logs.
    pub debug: bool,
}

impl FrontendConfig {
    /// Reads the settings, failing on the first invalid variable.
    pub fn from_env<F: Fn(&str) -> Option<std::ffi::OsString>>(
        env: &Env<F>,
    ) -> Result<Self, EnvError> {
        Ok(FrontendConfig {
            listen: env.listen("HKF_HOST", "HKF_PORT", 8080)?,
            api: env.peer("API", "API_HOST", "API_PORT", "localhost", 5000)?,
            max_msg_get: env.count("MAX_MSG_GET")?.unwrap_or(DEFAULT_MAX_MSG_GET),
            debug: env.flag("HKF_DEBUG")?.unwrap_or(false),
        })
    }
}

#[derive(Clone)]
struct AppState {
    api: ApiClient,
    pod: Arc<str>,
    max_msg_get: usize,
}

/// The frontend's routes, calling the API through `api`; `pod` names this instance.
pub fn router(api: ApiClient, pod: &str, max_msg_get: usize) -> Router {
    let state = AppState {
        api,
        pod: Arc::from(pod),
        max_msg_get,
    };
    Router::new()
        .route("/", get(index).post(submit))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn(crate::server::log_request))
        .with_state(state)
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn unavailable_text(e: &ApiCallError) -> String {
    match e {
        ApiCallError::Status { status, .. } if *status == StatusCode::SERVICE_UNAVAILABLE => {
            "The API is up but cannot reach its storage (Redis) right now. Try again in a moment."
                .to_owned()
        }
        _ => "The API is not responding right now, so messages cannot be shown. Try again in a moment."
            .to_owned(),
    }
}

/// A new form's idempotency key: this pod's name, the time and a counter, unique across
/// pods and renders, in the characters the API accepts.
fn fresh_key(pod: &str) -> String {
    static RENDERED: AtomicU64 = AtomicU64::new(0);
    let pod: String = pod
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(24)
        .collect();
    format!(
        "{pod}-{}-{}",
        jiff::Timestamp::now().as_nanosecond(),
        RENDERED.fetch_add(1, Ordering::Relaxed)
    )
}

/// The key a submitted form carries, when it is one the API accepts.
fn submitted_key(body: &[u8]) -> Option<String> {
    let key = String::from_utf8(form::field(body, "key")?).ok()?;
    let valid = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(key)
}

/// Renders the page with the latest messages, a notice and a draft; `status` unless the API
/// fails. A draft keeps the form's `key`, so sending it again cannot store it twice.
async fn render(
    s: &AppState,
    status: StatusCode,
    notice: Option<&str>,
    draft: Option<&str>,
    key: Option<&str>,
) -> Response {
    let key = key.map_or_else(|| fresh_key(&s.pod), str::to_owned);
    match s.api.latest(s.max_msg_get).await {
        Ok(list) => html(
            status,
            Page {
                pod: &s.pod,
                api_pod: Some(&list.pod),
                messages: Ok(&list.messages),
                notice,
                draft,
                key: &key,
            }
            .render(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list messages");
            let why = unavailable_text(&e);
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                Page {
                    pod: &s.pod,
                    api_pod: None,
                    messages: Err(&why),
                    notice,
                    draft,
                    key: &key,
                }
                .render(),
            )
        }
    }
}

async fn index(State(s): State<AppState>) -> Response {
    render(&s, StatusCode::OK, None, None, None).await
}

async fn submit(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let status = e.status();
            let notice = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "Your message is too long: the limit is {} bytes.",
                    message::MAX_MESSAGE_BYTES
                )
            } else {
                format!("The form could not be read: {}", e.body_text())
            };
            return render(&s, status, Some(&notice), None, None).await;
        }
    };
    let raw = form::field(&body, "msg").unwrap_or_default();
    let key = submitted_key(&body);
    let text = match message::validate(&raw) {
        Ok(t) => t,
        Err(e) => {
            let status = match e {
                MessageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            let draft = String::from_utf8_lossy(&raw);
            let notice = format!("Not sent: {e}.");
            return render(&s, status, Some(&notice), Some(&draft), key.as_deref()).await;
        }
    };
    match s.api.create(text, key.as_deref()).await {
        Ok(_) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, "/"), (header::CACHE_CONTROL, "no-store")],
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot store message");
            let status = e.status();
            let notice = if status.is_client_error() {
                format!("Not sent: {e}.")
            } else if matches!(e, ApiCallError::Timeout { .. }) {
                "Maybe sent: the API did not answer in time, but it may have saved your message. \
                 Sending it again is safe: the same form is never stored twice."
                    .to_owned()
            } else {
                format!(
                    "Not sent: {} Your text is kept below.",
                    unavailable_text(&e)
                )
            };
            render(&s, status, Some(&notice), Some(text), key.as_deref()).await
        }
    }
}

/// Ready whenever this process serves, without asking the API: were the frontend unready
/// while the API is down, every frontend pod would leave the Service at once and visitors
/// would get empty replies instead of a page saying what is wrong (the cascading-readiness
/// failure lesson 6 explains). The page itself reports the API's state.
async fn readyz() -> &'static str {
    "ok\n"
}
