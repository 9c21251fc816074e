//! Reaching the tutorial's frontend from the learner's machine: its LoadBalancer address,
//! else the API server's service proxy, to post and read messages.

use crate::cluster::Target;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use std::time::Duration;

/// The frontend service's name (embedded-manifests/06-frontend-service.yml).
pub const SERVICE: &str = "frontend";

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("service {SERVICE} not found in namespace {0}: run lesson 2 (`hk8s lesson 2`) first")]
    NoService(String),
    #[error("the frontend at {url} did not answer: {message}")]
    Http { url: String, message: String },
    #[error("the frontend at {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
}

/// Where the frontend can be reached.
#[derive(Debug, Clone)]
pub enum Address {
    /// A LoadBalancer ingress, e.g. `http://127.240.0.1:80/`.
    Direct(String),
    /// Through the API server: `/api/v1/namespaces/<ns>/services/frontend:80/proxy/`.
    Proxy(String),
}

impl Address {
    pub fn describe(&self) -> String {
        match self {
            Address::Direct(url) => url.clone(),
            Address::Proxy(path) => format!("the API server's service proxy {path}"),
        }
    }
}

/// Finds the frontend's address: LoadBalancer ingress if any, else the service proxy.
pub async fn address(target: &Target) -> Result<Address, FrontendError> {
    let api: Api<Service> = Api::namespaced(target.client.clone(), &target.namespace);
    let svc = api
        .get_opt(SERVICE)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| FrontendError::NoService(target.namespace.clone()))?;
    let port = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|p| p.first())
        .map(|p| p.port)
        .unwrap_or(80);
    if let Some(url) = crate::judge::services::load_balancer_url(&svc) {
        return Ok(Address::Direct(url));
    }
    Ok(Address::Proxy(format!(
        "/api/v1/namespaces/{}/services/{SERVICE}:{port}/proxy/",
        target.namespace
    )))
}

/// One HTTP request to the frontend; returns status and body. The whole exchange, body
/// included, has 20 s.
async fn request(
    target: &Target,
    addr: &Address,
    method: http::Method,
    body: Option<String>,
) -> Result<(u16, String), FrontendError> {
    let url = addr.describe();
    let http_error = |message: String| FrontendError::Http {
        url: url.clone(),
        message,
    };
    let uri = match addr {
        Address::Direct(url) => url.as_str(),
        Address::Proxy(path) => path.as_str(),
    };
    let mut req = http::Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
    }
    let req = req
        .body(body.unwrap_or_default().into_bytes())
        .map_err(|e| http_error(e.to_string()))?;
    let exchange = async {
        match addr {
            Address::Direct(_) => {
                let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
                let resp = client
                    .request(req.map(|b| Full::new(Bytes::from(b))))
                    .await
                    .map_err(|e| crate::error_chain(&e))?;
                read_text(resp).await
            }
            Address::Proxy(_) => {
                let resp = target
                    .client
                    .send(req.map(Into::into))
                    .await
                    .map_err(|e| e.to_string())?;
                read_text(resp).await
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .map_err(|_| http_error("no answer within 20 s".into()))?
        .map_err(http_error)
}

/// A response's status and its whole body as text.
async fn read_text<B>(resp: http::Response<B>) -> Result<(u16, String), String>
where
    B: hyper::body::Body,
    B::Error: std::fmt::Display,
{
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Posts a message through the frontend's form, as a visitor would.
pub async fn post_message(target: &Target, text: &str) -> Result<Address, FrontendError> {
    let addr = address(target).await?;
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("msg", text)
        .finish();
    let (status, body) = request(target, &addr, http::Method::POST, Some(form)).await?;
    if !(200..400).contains(&status) {
        return Err(FrontendError::Status {
            url: addr.describe(),
            status,
            body: crate::html::snippet(&body),
        });
    }
    Ok(addr)
}

/// Posts a message, retrying while the frontend (or the tiers behind it) answer 5xx or
/// cannot be reached, e.g. right after Redis or the API was replaced.
pub async fn post_message_retrying(
    target: &Target,
    text: &str,
    patience: Duration,
) -> Result<Address, FrontendError> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        match post_message(target, text).await {
            Ok(addr) => return Ok(addr),
            Err(FrontendError::Status { status, .. })
                if status >= 500 && std::time::Instant::now() < deadline => {}
            Err(FrontendError::Http { .. }) if std::time::Instant::now() < deadline => {}
            Err(e) => return Err(e),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The frontend's page, as a visitor sees it.
pub async fn page(target: &Target) -> Result<(Address, String), FrontendError> {
    let addr = address(target).await?;
    let (status, body) = request(target, &addr, http::Method::GET, None).await?;
    if status != 200 {
        return Err(FrontendError::Status {
            url: addr.describe(),
            status,
            body: crate::html::snippet(&body),
        });
    }
    Ok((addr, body))
}
