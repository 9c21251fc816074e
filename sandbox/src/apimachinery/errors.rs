//! `ApiError`: what the API server answers when a request fails, rendered as a Kubernetes
//! `Status` the way kubectl and kube-rs expect it.

use crate::apimachinery::resources::Resource;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

/// One field-level reason in a 422 Invalid answer.
#[derive(Debug, Clone)]
pub struct Cause {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}

impl Cause {
    pub fn required(field: impl Into<String>) -> Self {
        Cause {
            reason: "FieldValueRequired",
            field: field.into(),
            message: "Required value".into(),
        }
    }
    pub fn invalid(field: impl Into<String>, value: impl std::fmt::Display, why: &str) -> Self {
        Cause {
            reason: "FieldValueInvalid",
            field: field.into(),
            message: format!("Invalid value: {value}: {why}"),
        }
    }
    pub fn unsupported(field: impl Into<String>, value: &str, allowed: &[&str]) -> Self {
        let allowed: Vec<String> = allowed.iter().map(|a| format!("\"{a}\"")).collect();
        Cause {
            reason: "FieldValueNotSupported",
            field: field.into(),
            message: format!(
                "Unsupported value: \"{value}\": supported values: {}",
                allowed.join(", ")
            ),
        }
    }
}

/// An error answer of the API server.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }
    /// StatusDetails' `group` is omitted when empty, as Kubernetes serializes it.
    pub fn with_details(mut self, mut details: Value) -> Self {
        if let Some(map) = details.as_object_mut()
            && map.get("group").is_some_and(|g| g == "")
        {
            map.remove("group");
        }
        self.details = Some(details);
        self
    }
    pub fn not_found(r: &Resource, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", r.group_resource()),
        )
        .with_details(json!({"name": name, "group": r.group, "kind": r.plural}))
    }
    pub fn namespace_not_found(ns: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces \"{ns}\" not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"}))
    }
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }
    pub fn already_exists(r: &Resource, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", r.group_resource()),
        )
        .with_details(json!({"name": name, "group": r.group, "kind": r.plural}))
    }
    pub fn conflict(r: &Resource, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
                 please apply your changes to the latest version and try again",
                r.group_resource()
            ),
        )
        .with_details(json!({"name": name, "group": r.group, "kind": r.plural}))
    }
    /// 409 for a failed uid or resourceVersion precondition (DELETE options, or the uid of a
    /// PUT body), worded as the API server words the storage error it wraps.
    pub fn precondition_failed(
        r: &Resource,
        ns: &str,
        name: &str,
        field: &str,
        wanted: &str,
        found: &str,
    ) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": StorageError: invalid object, Code: 4, \
                 Key: {}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: \
                 {field} in precondition: {wanted}, {field} in object meta: {found}",
                r.group_resource(),
                storage_key(r, ns, name),
            ),
        )
        .with_details(json!({"name": name, "group": r.group, "kind": r.plural}))
    }
    pub fn apply_conflicts(r: &Resource, name: &str, conflicts: &[(String, String)]) -> Self {
        let n = conflicts.len();
        let mut msg = format!(
            "Apply failed with {n} conflict{}:",
            if n == 1 { "" } else { "s" }
        );
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(manager, field)| {
                msg.push_str(&format!(
                    " conflict with \"{manager}\" using {}: {field}",
                    r.api_version()
                ));
                json!({"reason": "FieldManagerConflict",
                       "message": format!("conflict with \"{manager}\" using {}", r.api_version()),
                       "field": field})
            })
            .collect();
        Self::new(409, "Conflict", msg).with_details(
            json!({"name": name, "group": r.group, "kind": r.plural, "causes": causes}),
        )
    }
    pub fn invalid(r: &Resource, name: &str, causes: &[Cause]) -> Self {
        let kind = if r.group.is_empty() {
            r.kind.to_string()
        } else {
            format!("{}.{}", r.kind, r.group)
        };
        let parts: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if parts.len() == 1 {
            parts[0].clone()
        } else {
            format!("[{}]", parts.join(", "))
        };
        let causes_json: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {joined}"),
        )
        .with_details(
            json!({"name": name, "group": r.group, "kind": r.kind, "causes": causes_json}),
        )
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }
    /// The NamespaceLifecycle admission's answer for `default`, `kube-system` and `kube-public`.
    pub fn namespace_undeletable(name: &str) -> Self {
        Self::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        ))
        .with_details(json!({"name": name, "kind": "namespaces"}))
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media types include: \
                 application/json, application/yaml, application/json-patch+json, application/merge-patch+json, \
                 application/strategic-merge-patch+json, application/apply-patch+yaml"
            ),
        )
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit} bytes"),
        )
    }
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `Status` object Kubernetes sends for this error (as a value: its members sorted).
    pub fn status(&self) -> Value {
        serde_json::to_value(self.wire()).expect("a Status serializes")
    }

    /// The `Status` in the API server's member order (`kind`, `apiVersion`, `metadata`,
    /// `status`, `message`, `reason`, `details`, `code`), without an empty core `group`.
    fn wire(&self) -> WireStatus<'_> {
        WireStatus {
            kind: "Status",
            api_version: "v1",
            metadata: Empty {},
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: self.details.as_ref().map(WireDetails::from),
            code: self.code,
        }
    }
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireStatus<'a> {
    kind: &'static str,
    api_version: &'static str,
    metadata: Empty,
    status: &'static str,
    message: &'a str,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<WireDetails<'a>>,
    code: u16,
}

/// `StatusDetails` members in Go's order; empty strings are omitted as `omitempty` does.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireDetails<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<WireCause<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_seconds: Option<i64>,
}

#[derive(Serialize)]
struct WireCause<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

fn non_empty<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v[key].as_str().filter(|s| !s.is_empty())
}

impl<'a> From<&'a Value> for WireDetails<'a> {
    fn from(d: &'a Value) -> Self {
        let causes = d["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| WireCause {
                reason: non_empty(c, "reason"),
                message: non_empty(c, "message"),
                field: non_empty(c, "field"),
            })
            .collect();
        WireDetails {
            name: non_empty(d, "name"),
            group: non_empty(d, "group"),
            kind: non_empty(d, "kind"),
            uid: non_empty(d, "uid"),
            causes,
            retry_after_seconds: d["retryAfterSeconds"].as_i64(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry = self
            .details
            .as_ref()
            .and_then(|d| d["retryAfterSeconds"].as_i64())
            .filter(|s| *s > 0);
        let mut response = (
            code,
            [(http::header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&self.wire()).expect("a Status serializes"),
        )
            .into_response();
        // As kube-apiserver's response writer does: clients (kube-rs, client-go) honour it.
        if let Some(seconds) = retry {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The etcd key kube-apiserver stores an object under, which its precondition errors name.
fn storage_key(r: &Resource, ns: &str, name: &str) -> String {
    let prefix = match (r.group, r.plural) {
        ("", "services") => "services/specs".to_string(),
        ("", "endpoints") => "services/endpoints".to_string(),
        ("", "nodes") => "minions".to_string(),
        ("", "replicationcontrollers") => "controllers".to_string(),
        ("networking.k8s.io", "ingresses") => "ingress".to_string(),
        ("apiextensions.k8s.io" | "apiregistration.k8s.io", plural) => {
            format!("{}/{plural}", r.group)
        }
        (_, plural) => plural.to_string(),
    };
    if ns.is_empty() {
        format!("/registry/{prefix}/{name}")
    } else {
        format!("/registry/{prefix}/{ns}/{name}")
    }
}

/// Whether a client's error is the API's 404 or 409 (someone else got there first).
pub(crate) fn is_benign(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
}
