//! The web frontend: the page with the form and the latest messages, and probes.

pub mod client;
pub mod form;
pub mod page;

use std::net::SocketAddr;
use std::sync::Arc;

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

/// Renders the page with the latest messages, a notice and a draft; `status` unless the API fails.
async fn render(
    s: &AppState,
    status: StatusCode,
    notice: Option<&str>,
    draft: Option<&str>,
) -> Response {
    match s.api.latest(s.max_msg_get).await {
        Ok(list) => html(
            status,
            Page {
                pod: &s.pod,
                api_pod: Some(&list.pod),
                messages: Ok(&list.messages),
                notice,
                draft,
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
                }
                .render(),
            )
        }
    }
}

async fn index(State(s): State<AppState>) -> Response {
    render(&s, StatusCode::OK, None, None).await
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
            return render(&s, status, Some(&notice), None).await;
        }
    };
    let raw = form::field(&body, "msg").unwrap_or_default();
    let text = match message::validate(&raw) {
        Ok(t) => t,
        Err(e) => {
            let status = match e {
                MessageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            let draft = String::from_utf8_lossy(&raw);
            let notice = format!("Not sent: {e}.");
            return render(&s, status, Some(&notice), Some(&draft)).await;
        }
    };
    match s.api.create(text).await {
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
                 Check the list below before sending it again; your text is kept below."
                    .to_owned()
            } else {
                format!(
                    "Not sent: {} Your text is kept below.",
                    unavailable_text(&e)
                )
            };
            render(&s, status, Some(&notice), Some(text)).await
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
