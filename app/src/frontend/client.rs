//! A keep-alive, pooled HTTP client for the API, reused across requests.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;

use crate::api::{CreateRequest, CreateResponse, ListResponse};
use crate::config::Peer;

/// Upper bound on one API call, connect included.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest API answer read.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiCallError {
    /// No connection or the connection broke.
    #[error("the API at {url} is not responding ({source})")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No answer in time.
    #[error("the API at {url} did not answer within {} s", CALL_TIMEOUT.as_secs())]
    Timeout {
        /// The URL called.
        url: String,
    },
    /// The API answered with an error status.
    #[error("the API answered {status}: {message}")]
    Status {
        /// The API's status code.
        status: StatusCode,
        /// The API's `error` text, or the raw body.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("the API at {url} sent an unexpected answer: {detail}")]
    BadAnswer {
        /// The URL called.
        url: String,
        /// What was wrong.
        detail: String,
    },
}

impl ApiCallError {
    /// The status the frontend should answer with: the API's 4xx as is, 503 otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiCallError::Status { status, .. } if status.is_client_error() => *status,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The API client: one connection pool shared by all requests.
#[derive(Clone)]
pub struct ApiClient {
    http: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl ApiClient {
    /// A client for the API at `peer`; connects lazily.
    pub fn new(peer: &Peer) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(Duration::from_secs(1)));
        conn.set_keepalive(Some(Duration::from_secs(30)));
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build(conn);
        let host = if peer.host.contains(':') && !peer.host.starts_with('[') {
            format!("[{}]", peer.host)
        } else {
            peer.host.clone()
        };
        ApiClient {
            http,
            base: format!("http://{host}:{}", peer.port),
        }
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        json_body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ApiCallError> {
        let url = format!("{}{path}", self.base);
        let mut req = Request::builder().method(method).uri(&url);
        if json_body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(json_body.unwrap_or_default())))
            .map_err(|e| ApiCallError::BadAnswer {
                url: url.clone(),
                detail: format!("cannot build the request: {e}"),
            })?;
        let fut = async {
            let res = self
                .http
                .request(req)
                .await
                .map_err(|e| ApiCallError::Unreachable {
                    url: url.clone(),
                    source: Box::new(e),
                })?;
            let status = res.status();
            let body = Limited::new(res.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| ApiCallError::Unreachable {
                    url: url.clone(),
                    source: e,
                })?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(CALL_TIMEOUT, fut)
            .await
            .map_err(|_| ApiCallError::Timeout { url: url.clone() })?
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        json_body: Option<Vec<u8>>,
    ) -> Result<T, ApiCallError> {
        let (status, body) = self.call(method, path, json_body).await?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(ApiCallError::Status { status, message });
        }
        serde_json::from_slice(&body).map_err(|e| ApiCallError::BadAnswer {
            url: format!("{}{path}", self.base),
            detail: e.to_string(),
        })
    }

    /// The newest `limit` messages.
    pub async fn latest(&self, limit: usize) -> Result<ListResponse, ApiCallError> {
        self.call_json(
            Method::GET,
            &format!("/api/v1/messages?limit={limit}"),
            None,
        )
        .await
    }

    /// Stores a message.
    pub async fn create(
        &self,
        text: &str,
        key: Option<&str>,
    ) -> Result<CreateResponse, ApiCallError> {
        let body = serde_json::to_vec(&CreateRequest {
            text: text.to_owned(),
            key: key.map(str::to_owned),
        })
        .map_err(|e| ApiCallError::BadAnswer {
            url: self.base.clone(),
            detail: format!("cannot encode the message: {e}"),
        })?;
        self.call_json(Method::POST, "/api/v1/messages", Some(body))
            .await
    }
}
