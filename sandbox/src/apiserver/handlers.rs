//! One handler per action on a resource path: list, create, delete a collection, and get,
//! replace, patch and delete one object, each answering in the representation asked for.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::Resource;
use crate::apiserver::codec::{decode_body, decode_patch, is_blank, patch_kind};
use crate::apiserver::printers;
use crate::apiserver::registry::validate::FieldValidation;
use crate::apiserver::registry::{DeleteOpts, PatchBody, PatchKind};
use crate::apiserver::request::{Ctx, Shape, shape_of};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{StatusCode, header};
use serde_json::{Value, json};
use std::sync::Arc;

/// One object's path: its resource, namespace (empty when cluster-scoped), name and
/// subresource (empty for the object itself).
pub(crate) struct ObjectRef<'a> {
    pub(crate) r: &'static Resource,
    pub(crate) ns: &'a str,
    pub(crate) name: &'a str,
    pub(crate) sub: &'a str,
}

/// A JSON answer, with warnings as `Warning: 299` headers (kubectl prints them).
pub(crate) fn json_response(code: StatusCode, v: &Value, warnings: &[String]) -> Response {
    let mut resp = (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response();
    for w in warnings {
        let escaped = w.replace('"', "\\\"");
        if let Ok(h) = http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(header::WARNING, h);
        }
    }
    resp
}

/// A chunked answer that sends what arrives on `rx` until its sender is dropped (watches,
/// `logs --follow`).
pub(crate) fn stream(
    content_type: &'static str,
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> Response {
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    (
        [(header::CONTENT_TYPE, content_type)],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

/// A 200 JSON answer.
pub(crate) fn ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v, &[])
}

fn list_kind(r: &Resource) -> String {
    format!("{}List", r.kind)
}

/// The key a list is ordered and continued by.
fn list_key(o: &Value) -> String {
    format!(
        "{}/{}",
        o["metadata"]["namespace"].as_str().unwrap_or(""),
        o["metadata"]["name"].as_str().unwrap_or("")
    )
}

/// Objects of a collection that the request's label and field selectors select.
fn selected(ctx: &Ctx, r: &Resource, ns: Option<&str>) -> Result<(Vec<Arc<Value>>, u64), ApiError> {
    let (labels, fields) = ctx.selectors(r)?;
    let (items, rv) = crate::apiserver::list_options::objects(ctx, r, ns)?;
    let items = items
        .into_iter()
        .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
        .collect();
    Ok((items, rv))
}

/// `limit` and `continue`: drops what an earlier page returned, keeps one page, and
/// records in `meta` where the next one starts.
fn paginate(ctx: &Ctx, items: &mut Vec<Arc<Value>>, meta: &mut Value) -> Result<(), ApiError> {
    if let Some(token) = ctx.opt("continue") {
        let invalid = || ApiError::bad_request("invalid continue token");
        let after = String::from_utf8(STANDARD.decode(token).map_err(|_| invalid())?)
            .map_err(|_| invalid())?;
        items.retain(|o| list_key(o) > after);
    }
    if let Some(limit) = ctx.opt("limit").and_then(|l| l.parse::<usize>().ok())
        && limit > 0
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let last = list_key(items.last().expect("limit > 0"));
        meta["continue"] = json!(STANDARD.encode(last));
        meta["remainingItemCount"] = json!(remaining);
    }
    Ok(())
}

/// GET on a collection: a list, a Table or partial metadata, paginated.
pub(crate) fn list(
    ctx: &Ctx,
    r: &'static Resource,
    ns: Option<&str>,
) -> Result<Response, ApiError> {
    let (mut items, rv) = selected(ctx, r, ns)?;
    let mut meta = json!({"resourceVersion": rv.to_string()});
    paginate(ctx, &mut items, &mut meta)?;
    let body = match shape_of(&ctx.accept) {
        Shape::Table => {
            let include = ctx.opt("includeObject").unwrap_or("Metadata");
            let mut t = printers::table(r, &items, include, rv, true);
            t["metadata"] = meta;
            t
        }
        Shape::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "items": items.iter().map(|o| printers::partial_metadata(o)).collect::<Vec<_>>(),
        }),
        Shape::Object => return object_list(r, &meta, &items),
    };
    Ok(ok(&body))
}

/// A `<Kind>List` answer, serialized without copying the objects.
fn object_list(r: &Resource, meta: &Value, items: &[Arc<Value>]) -> Result<Response, ApiError> {
    let list = ListBody {
        kind: list_kind(r),
        api_version: r.api_version(),
        metadata: meta,
        items: items.iter().map(|o| &**o).collect(),
    };
    let bytes = serde_json::to_vec(&list).map_err(|e| ApiError::internal(e.to_string()))?;
    let content_type = [(header::CONTENT_TYPE, "application/json")];
    Ok((StatusCode::OK, content_type, bytes).into_response())
}

/// A list written straight from the stored objects, in the API server's field order:
/// building one `Value` first deep-copied every object, which cost more than writing it.
#[derive(serde::Serialize)]
struct ListBody<'a> {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: &'a Value,
    items: Vec<&'a Value>,
}

/// POST on a collection: 201 with the created object (200 for a dry run).
pub(crate) fn create(
    ctx: &Ctx,
    r: &'static Resource,
    ns: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let ns = ns.unwrap_or_default();
    if r.namespaced && ns.is_empty() {
        return Err(ApiError::path_not_found());
    }
    let obj = decode_body(&ctx.headers, body)?;
    let out = ctx.api.create(r, ns, obj, &ctx.write_opts("create")?)?;
    let code = if ctx.opt("dryRun").is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json_response(code, &out.object, &out.warnings))
}

/// POST of an access or identity review: answered, never stored.
pub(crate) fn review(
    ctx: &Ctx,
    r: &'static Resource,
    ns: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let request = decode_body(&ctx.headers, body)?;
    let answer = crate::apiserver::reviews::answer(&ctx.api, &ctx.user, r, ns, request)?;
    Ok(json_response(StatusCode::CREATED, &answer, &[]))
}

/// DELETE on a collection: deletes what the selectors select, answering the list of
/// what was deleted.
pub(crate) fn delete_collection(
    ctx: &Ctx,
    r: &'static Resource,
    ns: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let opts = delete_opts(ctx, body)?;
    let (items, _) = selected(ctx, r, ns)?;
    let mut deleted = Vec::new();
    for o in &items {
        let ons = o["metadata"]["namespace"].as_str().unwrap_or("");
        let name = o["metadata"]["name"].as_str().unwrap_or("");
        match ctx.api.delete(r, ons, name, &opts) {
            Ok(v) => deleted.push((*v).clone()),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ok(&json!({
        "kind": list_kind(r),
        "apiVersion": r.api_version(),
        "metadata": {"resourceVersion": ctx.api.store.current_rv().to_string()},
        "items": deleted,
    })))
}

/// One object in the representation asked for.
pub(crate) fn render_one(ctx: &Ctx, r: &Resource, obj: &Value) -> Response {
    match shape_of(&ctx.accept) {
        Shape::Table => {
            let include = ctx.opt("includeObject").unwrap_or("Metadata");
            let items = [Arc::new(obj.clone())];
            ok(&printers::table(
                r,
                &items,
                include,
                ctx.api.store.current_rv(),
                true,
            ))
        }
        Shape::Metadata => ok(&printers::partial_metadata(obj)),
        Shape::Object => ok(obj),
    }
}

/// GET on one object.
pub(crate) fn get(ctx: &Ctx, o: &ObjectRef<'_>) -> Result<Response, ApiError> {
    let obj = ctx
        .api
        .store
        .get(o.r, o.ns, o.name)
        .ok_or_else(|| ApiError::not_found(o.r, o.name))?;
    Ok(render_one(ctx, o.r, &obj))
}

/// PUT: replaces the object (or its status).
pub(crate) fn replace(ctx: &Ctx, o: &ObjectRef<'_>, body: &[u8]) -> Result<Response, ApiError> {
    let obj = decode_body(&ctx.headers, body)?;
    let opts = ctx.write_opts("update")?;
    let out = ctx.api.update(o.r, o.ns, o.name, o.sub, obj, &opts)?;
    Ok(json_response(StatusCode::OK, &out.object, &out.warnings))
}

/// PATCH: JSON, merge, strategic merge or apply; 201 when an apply created the object.
pub(crate) fn patch(ctx: &Ctx, o: &ObjectRef<'_>, body: &[u8]) -> Result<Response, ApiError> {
    let kind = patch_kind(&ctx.headers)?;
    let patch = decode_patch(kind, body)?;
    let mut opts = ctx.write_opts("patch")?;
    if kind == PatchKind::Apply && ctx.opt("fieldManager").is_none() {
        return Err(ApiError::bad_request(
            "PATCH is missing the fieldManager query parameter, which apply requests require",
        ));
    }
    if kind != PatchKind::Apply && opts.force {
        return Err(ApiError::bad_request(
            "force may only be set for apply patches",
        ));
    }
    if kind != PatchKind::Apply && ctx.opt("fieldValidation").is_none() {
        opts.validation = FieldValidation::Warn;
    }
    let body = PatchBody { kind, body: patch };
    let out = ctx.api.patch(o.r, o.ns, o.name, o.sub, body, &opts)?;
    let code = if out.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_response(code, &out.object, &out.warnings))
}

/// DELETE: 200 with the deleted object, 202 when it is only marked for deletion.
pub(crate) fn delete(ctx: &Ctx, o: &ObjectRef<'_>, body: &[u8]) -> Result<Response, ApiError> {
    let opts = delete_opts(ctx, body)?;
    let obj = ctx.api.delete(o.r, o.ns, o.name, &opts)?;
    let code = if obj["metadata"]["deletionTimestamp"].is_null() {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(json_response(code, &obj, &[]))
}

/// DeleteOptions from the query and the body (the body wins).
fn delete_opts(ctx: &Ctx, body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let mut opts = DeleteOpts {
        propagation: ctx.opt("propagationPolicy").map(String::from),
        grace_period: ctx.opt("gracePeriodSeconds").and_then(|g| g.parse().ok()),
        dry_run: ctx.opt("dryRun").is_some(),
        ..Default::default()
    };
    if !is_blank(body) {
        let v = decode_body(&ctx.headers, body)?;
        if let Some(p) = v["propagationPolicy"].as_str() {
            opts.propagation = Some(p.to_string());
        }
        if v["orphanDependents"] == true {
            opts.propagation = Some("Orphan".into());
        }
        if let Some(g) = v["gracePeriodSeconds"].as_i64() {
            opts.grace_period = Some(g);
        }
        if v["dryRun"].as_array().is_some_and(|a| !a.is_empty()) {
            opts.dry_run = true;
        }
        opts.uid = v["preconditions"]["uid"].as_str().map(String::from);
        opts.resource_version = v["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from);
    }
    if let Some(p) = &opts.propagation
        && !["Background", "Foreground", "Orphan"].contains(&p.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy {p:?} is not one of Background, Foreground, Orphan"
        )));
    }
    Ok(opts)
}
