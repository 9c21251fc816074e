//! The HTTP layer: bearer-token authentication, routing of Kubernetes API paths, body
//! decoding (JSON, YAML, patch types, size limit), lists, Tables, watches, logs and scale.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::{self, Resource};
use crate::apimachinery::selectors::LabelSelector;
use crate::apiserver::auth;
use crate::apiserver::discovery;
use crate::apiserver::printers;
use crate::apiserver::registry::validate::FieldValidation;
use crate::apiserver::registry::{Api, DeleteOpts, PatchBody, PatchKind};
use crate::apiserver::request::{Ctx, Query, Shape, accept_of, shape_of};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;

/// Request bodies above this size get 413, like the real API server's 3 MiB limit.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

#[derive(Clone)]
struct AppState {
    api: Arc<Api>,
    token: Arc<str>,
}

/// The API server as an axum Router (a tower Service): requires `Authorization: Bearer <token>`.
pub fn router(api: Arc<Api>, token: &str) -> Router {
    Router::new().fallback(handle).with_state(AppState {
        api,
        token: Arc::from(token),
    })
}

fn json_response(code: StatusCode, v: &Value, warnings: &[String]) -> Response {
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

fn ok(v: &Value) -> Response {
    json_response(StatusCode::OK, v, &[])
}

async fn handle(State(st): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if !auth::is_public(&path) && !auth::authenticated(req.headers(), &st.token) {
        return ApiError::unauthorized().into_response();
    }
    match route(st, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(st: AppState, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let query: Query = axum::extract::Query::<Query>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
    let accept = accept_of(&parts.headers);
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = parts.method.clone();
    let is_get = method == Method::GET;
    match segs.as_slice() {
        ["healthz"] | ["readyz"] | ["livez"] => return Ok("ok".into_response()),
        ["version"] if is_get => return Ok(ok(&discovery::version())),
        ["api"] if is_get => {
            return Ok(if discovery::wants_aggregated(&accept) {
                aggregated(true)
            } else {
                ok(&discovery::core_versions())
            });
        }
        ["apis"] if is_get => {
            return Ok(if discovery::wants_aggregated(&accept) {
                aggregated(false)
            } else {
                ok(&discovery::group_list())
            });
        }
        ["openapi", "v2"] if is_get => {
            return Ok((
                [(
                    header::CONTENT_TYPE,
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                )],
                discovery::openapi_v2_protobuf(),
            )
                .into_response());
        }
        ["openapi", "v3"] if is_get => return Ok(ok(&discovery::openapi_root())),
        ["openapi", "v3", rest @ ..] if is_get => {
            return discovery::openapi_group_version(&rest.join("/"))
                .map(|d| ok(&d))
                .ok_or_else(ApiError::path_not_found);
        }
        ["api", "v1"] if is_get => {
            return discovery::resource_list("", "v1")
                .map(|d| ok(&d))
                .ok_or_else(ApiError::path_not_found);
        }
        ["apis", g] if is_get => {
            return discovery::group(g)
                .map(|d| ok(&d))
                .ok_or_else(ApiError::path_not_found);
        }
        ["apis", g, v] if is_get => {
            return discovery::resource_list(g, v)
                .map(|d| ok(&d))
                .ok_or_else(ApiError::path_not_found);
        }
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    let target = parse_target(group, version, rest)?;
    let body = if matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        read_body(body).await?
    } else {
        Bytes::new()
    };
    let ctx = Ctx {
        api: st.api,
        query,
        accept,
        headers: parts.headers,
    };
    match (target, method) {
        (Target::Collection { r, .. }, Method::POST) if r.is_review() => {
            let request = decode_body(&ctx.headers, &body)?;
            let answer = crate::apiserver::reviews::answer(r, request)?;
            Ok(json_response(StatusCode::CREATED, &answer, &[]))
        }
        (Target::Collection { r, .. } | Target::Object { r, .. }, _) if r.is_review() => {
            Err(ApiError::method_not_allowed())
        }
        (Target::Collection { r, ns }, Method::GET) => {
            if ctx.flag("watch") {
                crate::apiserver::watch::serve(&ctx, r, ns.as_deref())
            } else {
                list(&ctx, r, ns.as_deref())
            }
        }
        (Target::Collection { r, ns }, Method::POST) => {
            let ns = ns.unwrap_or_default();
            if r.namespaced && ns.is_empty() {
                return Err(ApiError::path_not_found());
            }
            let obj = decode_body(&ctx.headers, &body)?;
            let out = ctx.api.create(r, &ns, obj, &ctx.write_opts("create")?)?;
            let mut resp = json_response(StatusCode::CREATED, &out.object, &out.warnings);
            if ctx.opt("dryRun").is_some() {
                *resp.status_mut() = StatusCode::OK;
            }
            Ok(resp)
        }
        (Target::Collection { r, ns }, Method::DELETE) => {
            delete_collection(&ctx, r, ns.as_deref(), &body)
        }
        (Target::Object { r, ns, name, sub }, method) => {
            object(&ctx, r, &ns, &name, sub.as_deref(), method, &body).await
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn aggregated(core: bool) -> Response {
    (
        [(header::CONTENT_TYPE, discovery::AGGREGATED_CONTENT_TYPE)],
        discovery::aggregated(core).to_string(),
    )
        .into_response()
}

enum Target {
    Collection {
        r: &'static Resource,
        ns: Option<String>,
    },
    Object {
        r: &'static Resource,
        ns: String,
        name: String,
        sub: Option<String>,
    },
}

fn lookup(group: &str, version: &str, plural: &str) -> Result<&'static Resource, ApiError> {
    resources::by_plural(group, version, plural).ok_or_else(ApiError::path_not_found)
}

fn parse_target(group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && resources::by_plural(group, version, rest[2]).is_some_and(|r| r.namespaced);
    if namespaced_path {
        let ns = rest[1].to_string();
        let r = lookup(group, version, rest[2])?;
        return Ok(match &rest[3..] {
            [] => Target::Collection { r, ns: Some(ns) },
            [name] => Target::Object {
                r,
                ns,
                name: name.to_string(),
                sub: None,
            },
            [name, sub] if r.subresources.contains(sub) => Target::Object {
                r,
                ns,
                name: name.to_string(),
                sub: Some(sub.to_string()),
            },
            _ => return Err(ApiError::path_not_found()),
        });
    }
    let r = lookup(group, version, rest.first().copied().unwrap_or(""))?;
    Ok(match &rest[1..] {
        [] => Target::Collection { r, ns: None },
        [name] if !r.namespaced => Target::Object {
            r,
            ns: String::new(),
            name: name.to_string(),
            sub: None,
        },
        [name, sub] if !r.namespaced && (r.subresources.contains(sub) || *sub == "finalize") => {
            Target::Object {
                r,
                ns: String::new(),
                name: name.to_string(),
                sub: Some(sub.to_string()),
            }
        }
        _ => return Err(ApiError::path_not_found()),
    })
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
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

fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the request body is not valid JSON: {e}; send a complete Kubernetes object"
        ))
    })
}

fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8 text"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}")))
}

fn decode_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty; send a Kubernetes object as JSON or YAML",
        ));
    }
    match content_type(headers).as_str() {
        "" | "application/json" => parse_json(body),
        "application/yaml" | "application/x-yaml" | "text/yaml" => parse_yaml(body),
        crate::apiserver::protobuf::CONTENT_TYPE => crate::apiserver::protobuf::decode(body),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn list_kind(r: &Resource) -> String {
    format!("{}List", r.kind)
}

fn list(ctx: &Ctx, r: &'static Resource, ns: Option<&str>) -> Result<Response, ApiError> {
    let (labels, fields) = ctx.selectors()?;
    let (items, rv) = ctx.api.store.list(r, ns);
    let mut items: Vec<Arc<Value>> = items
        .into_iter()
        .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
        .collect();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(token) = ctx.opt("continue") {
        let after = String::from_utf8(
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, token)
                .map_err(|_| ApiError::bad_request("invalid continue token"))?,
        )
        .map_err(|_| ApiError::bad_request("invalid continue token"))?;
        items.retain(|o| list_key(o) > after);
    }
    if let Some(limit) = ctx.opt("limit").and_then(|l| l.parse::<usize>().ok())
        && limit > 0
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        let last = list_key(items.last().expect("limit > 0"));
        meta["continue"] = json!(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            last
        ));
        meta["remainingItemCount"] = json!(remaining);
    }
    match shape_of(&ctx.accept) {
        Shape::Table => {
            let mut t = printers::table(
                r,
                &items,
                ctx.opt("includeObject").unwrap_or("Metadata"),
                rv,
                true,
            );
            t["metadata"] = meta;
            Ok(ok(&t))
        }
        Shape::Metadata => {
            let items: Vec<Value> = items
                .iter()
                .map(|o| printers::partial_metadata(o))
                .collect();
            Ok(ok(&json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": meta,
                "items": items,
            })))
        }
        Shape::Object => {
            let items: Vec<&Value> = items.iter().map(|o| &**o).collect();
            Ok(ok(&json!({
                "kind": list_kind(r),
                "apiVersion": r.api_version(),
                "metadata": meta,
                "items": items,
            })))
        }
    }
}

fn list_key(o: &Value) -> String {
    format!(
        "{}/{}",
        o["metadata"]["namespace"].as_str().unwrap_or(""),
        o["metadata"]["name"].as_str().unwrap_or("")
    )
}

fn delete_opts(ctx: &Ctx, body: &[u8]) -> Result<DeleteOpts, ApiError> {
    let mut opts = DeleteOpts {
        propagation: ctx.opt("propagationPolicy").map(String::from),
        grace_period: ctx.opt("gracePeriodSeconds").and_then(|g| g.parse().ok()),
        dry_run: ctx.opt("dryRun").is_some(),
        ..Default::default()
    };
    if !body.iter().all(u8::is_ascii_whitespace) {
        let v = parse_json(body)?;
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

fn delete_collection(
    ctx: &Ctx,
    r: &'static Resource,
    ns: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let opts = delete_opts(ctx, body)?;
    let (labels, fields) = ctx.selectors()?;
    let (items, _) = ctx.api.store.list(r, ns);
    let mut deleted = Vec::new();
    for o in items
        .iter()
        .filter(|o| labels.matches(&o["metadata"]["labels"]) && fields.matches(o))
    {
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

fn patch_kind(headers: &HeaderMap) -> Result<PatchKind, ApiError> {
    match content_type(headers).as_str() {
        "application/json-patch+json" => Ok(PatchKind::Json),
        "application/merge-patch+json" => Ok(PatchKind::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchKind::Strategic),
        "application/apply-patch+yaml" => Ok(PatchKind::Apply),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Why `kubectl exec`, `attach` and `port-forward` have nothing to connect to on the sandbox,
/// and what works instead: its pods are local processes listening on their own address.
fn process_pod_limit(sub: &str, pod: &Value) -> String {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let ip = pod["status"]["podIP"].as_str();
    let ports: Vec<String> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .filter_map(|p| p["containerPort"].as_i64())
        .map(|p| p.to_string())
        .collect();
    let address = match (ip, ports.first()) {
        (Some(ip), Some(port)) => format!("{ip}:{port}"),
        (Some(ip), None) => ip.to_string(),
        (None, _) => "its pod IP once it runs".to_string(),
    };
    match sub {
        "portforward" => format!(
            "the hk8s sandbox has no port-forward, and needs none: pod {ns}/{name} is a process on this machine listening on {address}, reachable directly (e.g. curl http://{address}/). Services answer on their CLUSTER-IP and LoadBalancers on their EXTERNAL-IP: kubectl get services -n {ns}"
        ),
        _ => {
            let verb = if sub == "exec" {
                "exec into"
            } else {
                "attach to"
            };
            let redis = pod["spec"]["containers"][0]["image"]
                .as_str()
                .is_some_and(|image| image.contains("redis"));
            let example = match ip {
                Some(ip) if redis => format!(" (e.g. redis-cli -h {ip})"),
                _ => String::new(),
            };
            format!(
                "the hk8s sandbox cannot {verb} pod {ns}/{name}: its containers are plain processes on this machine, not containers to enter. Read its output with `kubectl logs -n {ns} {name}`, or reach it from this machine at {address}{example}"
            )
        }
    }
}

fn render_one(ctx: &Ctx, r: &Resource, obj: &Value) -> Response {
    match shape_of(&ctx.accept) {
        Shape::Table => ok(&printers::table(
            r,
            &[Arc::new(obj.clone())],
            ctx.opt("includeObject").unwrap_or("Metadata"),
            ctx.api.store.current_rv(),
            true,
        )),
        Shape::Metadata => ok(&printers::partial_metadata(obj)),
        Shape::Object => ok(obj),
    }
}

async fn object(
    ctx: &Ctx,
    r: &'static Resource,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    method: Method,
    body: &[u8],
) -> Result<Response, ApiError> {
    if r.namespaced
        && ctx
            .api
            .store
            .get(
                resources::by_kind("v1", "Namespace").expect("served"),
                "",
                ns,
            )
            .is_none()
        && method != Method::GET
        && method != Method::DELETE
    {
        return Err(ApiError::namespace_not_found(ns));
    }
    match (sub, &method) {
        (Some("log"), &Method::GET) => {
            return crate::apiserver::logs::serve(ctx.api.clone(), ns, name, &ctx.query).await;
        }
        (Some("scale"), _) => return scale(ctx, r, ns, name, method, body),
        (Some(sub @ ("exec" | "attach" | "portforward")), _) => {
            let pod = ctx
                .api
                .store
                .get(r, ns, name)
                .ok_or_else(|| ApiError::not_found(r, name))?;
            return Err(ApiError::bad_request(process_pod_limit(sub, &pod)));
        }
        _ => {}
    }
    let sub = match sub {
        Some("finalize") => "",
        Some(s) => s,
        None => "",
    };
    match method {
        Method::GET => {
            let obj = ctx
                .api
                .store
                .get(r, ns, name)
                .ok_or_else(|| ApiError::not_found(r, name))?;
            Ok(render_one(ctx, r, &obj))
        }
        Method::PUT => {
            let obj = decode_body(&ctx.headers, body)?;
            let out = ctx
                .api
                .update(r, ns, name, sub, obj, &ctx.write_opts("update")?)?;
            Ok(json_response(StatusCode::OK, &out.object, &out.warnings))
        }
        Method::PATCH => {
            let kind = patch_kind(&ctx.headers)?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Err(ApiError::bad_request("the patch body is empty"));
            }
            let patch = match kind {
                PatchKind::Apply => parse_json(body).or_else(|_| parse_yaml(body))?,
                _ => parse_json(body)?,
            };
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
            let out = ctx
                .api
                .patch(r, ns, name, sub, PatchBody { kind, body: patch }, &opts)?;
            let code = if out.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_response(code, &out.object, &out.warnings))
        }
        Method::DELETE => {
            let opts = delete_opts(ctx, body)?;
            let obj = ctx.api.delete(r, ns, name, &opts)?;
            let code = if obj["metadata"]["deletionTimestamp"].is_null() {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            Ok(json_response(code, &obj, &[]))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn scale_of(obj: &Value) -> Value {
    let sel = LabelSelector::from_object(&obj["spec"]["selector"]).to_query();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"],
            "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": sel},
    })
}

fn scale(
    ctx: &Ctx,
    r: &'static Resource,
    ns: &str,
    name: &str,
    method: Method,
    body: &[u8],
) -> Result<Response, ApiError> {
    let cur = ctx
        .api
        .store
        .get(r, ns, name)
        .ok_or_else(|| ApiError::not_found(r, name))?;
    let current = scale_of(&cur);
    let wanted = match method {
        Method::GET => return Ok(ok(&current)),
        Method::PUT => decode_body(&ctx.headers, body)?,
        Method::PATCH => {
            let mut s = current.clone();
            let p = parse_json(body)?;
            match patch_kind(&ctx.headers)? {
                PatchKind::Json => crate::apiserver::registry::patch::json_patch(&mut s, &p)?,
                PatchKind::Merge => crate::apiserver::registry::patch::json_merge(&mut s, &p),
                PatchKind::Strategic => {
                    crate::apiserver::registry::patch::strategic_merge(&mut s, &p)
                }
                PatchKind::Apply => crate::apiserver::registry::patch::strategic_merge(&mut s, &p),
            }
            s
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    let replicas = wanted["spec"]["replicas"].as_i64().ok_or_else(|| {
        ApiError::invalid(
            r,
            name,
            &[crate::apimachinery::errors::Cause::required(
                "spec.replicas",
            )],
        )
    })?;
    if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != cur["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(r, name));
    }
    let out = ctx.api.patch(
        r,
        ns,
        name,
        "",
        PatchBody {
            kind: PatchKind::Merge,
            body: json!({"spec": {"replicas": replicas}}),
        },
        &ctx.write_opts("scale")?,
    )?;
    Ok(ok(&scale_of(&out.object)))
}
