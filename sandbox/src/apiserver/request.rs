//! What a request asks for beyond its path, shared by the router and the watch stream:
//! query options, selectors, write options and the representation (object, Table,
//! metadata) the client accepts.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::Resource;
use crate::apimachinery::selectors::{FieldSelector, LabelSelector};
use crate::apiserver::registry::validate::FieldValidation;
use crate::apiserver::registry::{Api, WriteOpts};
use http::{HeaderMap, header};
use std::collections::HashMap;
use std::sync::Arc;

/// A request's query parameters.
pub(crate) type Query = HashMap<String, String>;

/// The Accept header, which says the representation asked for.
pub(crate) fn accept_of(headers: &HeaderMap) -> String {
    headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// What representation the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Object,
    Table,
    Metadata,
}

/// The representation the first media type of an Accept header asks for.
pub(crate) fn shape_of(accept: &str) -> Shape {
    let first = accept.split(',').next().unwrap_or("");
    if first.contains("as=Table") {
        Shape::Table
    } else if first.contains("as=PartialObjectMetadata") {
        Shape::Metadata
    } else {
        Shape::Object
    }
}

/// What a handler needs of a request besides its path and body.
pub(crate) struct Ctx {
    pub(crate) api: Arc<Api>,
    pub(crate) query: Query,
    pub(crate) accept: String,
    pub(crate) headers: HeaderMap,
    /// Who the request comes from (after impersonation).
    pub(crate) user: crate::apiserver::auth::UserInfo,
}

impl Ctx {
    /// A query parameter, unless absent or empty.
    pub(crate) fn opt(&self, k: &str) -> Option<&str> {
        self.query
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
    /// A boolean query parameter (`true` or `1`).
    pub(crate) fn flag(&self, k: &str) -> bool {
        matches!(self.opt(k), Some("true" | "1"))
    }
    /// The write options; the field manager defaults to the client's user agent, as
    /// Kubernetes names it.
    pub(crate) fn write_opts(&self, verb: &str) -> Result<WriteOpts, ApiError> {
        let manager = match self.opt("fieldManager") {
            Some(m) => m.to_string(),
            None => self
                .headers
                .get(header::USER_AGENT)
                .and_then(|h| h.to_str().ok())
                .and_then(|ua| ua.split('/').next())
                .filter(|m| !m.is_empty())
                .map(String::from)
                .unwrap_or_else(|| format!("unknown-{verb}")),
        };
        Ok(WriteOpts {
            manager,
            validation: FieldValidation::parse(self.opt("fieldValidation"))?,
            dry_run: self.opt("dryRun").is_some(),
            force: self.flag("force"),
        })
    }
    /// The `labelSelector` and `fieldSelector` parameters.
    pub(crate) fn selectors(
        &self,
        r: &Resource,
    ) -> Result<(LabelSelector, FieldSelector), ApiError> {
        Ok((
            LabelSelector::parse(self.opt("labelSelector").unwrap_or(""))?,
            FieldSelector::parse(self.opt("fieldSelector").unwrap_or(""))?.for_resource(r)?,
        ))
    }
}
