//! The HTTP layer: bearer-token authentication, the non-resource paths (health, version,
//! discovery, OpenAPI), and resource paths parsed into a target and dispatched to one
//! handler per action.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::{self, Resource};
use crate::apiserver::codec::read_body;
use crate::apiserver::handlers::{self, ObjectRef, ok};
use crate::apiserver::rbac::{self, Attributes};
use crate::apiserver::registry::Api;
use crate::apiserver::request::{Ctx, Query, accept_of};
use crate::apiserver::{
    auth, discovery, list_options, logs, openapi, scale, streaming, tokens, watch,
};
use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{Method, header};
use std::sync::Arc;

#[derive(Clone)]
struct AppState {
    api: Arc<Api>,
    token: Arc<str>,
}

/// The API server as an axum Router (a tower Service): requires `Authorization: Bearer <token>`.
pub(crate) fn router(api: Arc<Api>, token: &str) -> Router {
    Router::new().fallback(handle).with_state(AppState {
        api,
        token: Arc::from(token),
    })
}

async fn handle(State(st): State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let user = if auth::is_public(&path) {
        Ok(auth::UserInfo::admin())
    } else {
        auth::authenticate(req.headers(), &st.token, &st.api.issuer, &st.api)
            .and_then(|user| auth::impersonate(req.headers(), user, &st.api))
    };
    let answer = match user {
        Ok(user) => route(st, req, user).await,
        Err(e) => Err(e),
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

async fn route(st: AppState, req: Request, user: auth::UserInfo) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let query: Query = axum::extract::Query::<Query>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))?;
    let accept = accept_of(&parts.headers);
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segs == ["readyz"] {
        return Ok(readyz(&st.api));
    }
    if let Some(answer) = non_resource(&parts.method, &segs, &accept) {
        let verb = parts.method.as_str().to_ascii_lowercase();
        let path = if path.is_empty() { "/" } else { path.as_str() };
        rbac::authorize(&st.api, &user, &Attributes::non_resource(&verb, path))?;
        return answer;
    }
    let target = parse_target(&segs)?;
    let watching = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    rbac::authorize(
        &st.api,
        &user,
        &attributes(&target, &parts.method, watching),
    )?;
    if let Target::Object {
        ns,
        name,
        sub: Some(sub),
        ..
    } = &target
        && streaming::is_streaming(sub)
    {
        let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        let req = streaming::StreamRequest {
            ns,
            name,
            sub,
            query: parts.uri.query(),
            headers: &parts.headers,
        };
        return streaming::serve(&st.api, &req, upgrade).await;
    }
    let body = match parts.method {
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => read_body(body).await?,
        _ => Bytes::new(),
    };
    let ctx = Ctx {
        api: st.api,
        query,
        accept,
        headers: parts.headers,
        user,
    };
    dispatch(&ctx, target, parts.method, &body).await
}

/// Ready while the store takes writes; after a write failed (a full disk) it says why, and
/// tries the disk again so it recovers once there is space.
fn readyz(api: &Api) -> Response {
    match api.store.check_writable() {
        Ok(()) => "ok".into_response(),
        Err(e) => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "[+]ping ok\n[-]store failed: {}\nreadyz check failed\n",
                e.message
            ),
        )
            .into_response(),
    }
}

/// Health, version, discovery and OpenAPI; `None` for resource paths.
fn non_resource(
    method: &Method,
    segs: &[&str],
    accept: &str,
) -> Option<Result<Response, ApiError>> {
    let found =
        |doc: Option<serde_json::Value>| doc.map(|d| ok(&d)).ok_or_else(ApiError::path_not_found);
    if matches!(segs, ["healthz" | "readyz" | "livez"]) {
        return Some(Ok("ok".into_response()));
    }
    if *method != Method::GET {
        return None;
    }
    Some(match segs {
        ["version"] => Ok(ok(&discovery::version())),
        ["api"] if discovery::wants_aggregated(accept) => Ok(aggregated(true)),
        ["api"] => Ok(ok(&discovery::core_versions())),
        ["apis"] if discovery::wants_aggregated(accept) => Ok(aggregated(false)),
        ["apis"] => Ok(ok(&discovery::group_list())),
        ["openapi", "v2"] if accept.contains("protobuf") => Ok(openapi_v2()),
        ["openapi", "v2"] => Ok((
            [(header::CONTENT_TYPE, "application/json")],
            openapi::v2_document(),
        )
            .into_response()),
        ["openapi", "v3"] => Ok(ok(&openapi::root())),
        ["openapi", "v3", rest @ ..] => openapi::document(&rest.join("/"))
            .map(|doc| ([(header::CONTENT_TYPE, "application/json")], doc).into_response())
            .ok_or_else(ApiError::path_not_found),
        ["api", "v1"] => found(discovery::resource_list("", "v1")),
        ["apis", g] => found(discovery::group(g)),
        ["apis", g, v] => found(discovery::resource_list(g, v)),
        _ => return None,
    })
}

fn aggregated(core: bool) -> Response {
    (
        [(header::CONTENT_TYPE, discovery::AGGREGATED_CONTENT_TYPE)],
        discovery::aggregated(core).to_string(),
    )
        .into_response()
}

fn openapi_v2() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        )],
        discovery::openapi_v2_protobuf(),
    )
        .into_response()
}

/// What a resource request asks to do, for the authorizer.
fn attributes(target: &Target, method: &Method, watching: bool) -> Attributes {
    let (r, ns, name, sub) = match target {
        Target::Collection { r, ns } => (*r, ns.as_deref().unwrap_or(""), "", ""),
        Target::Object { r, ns, name, sub } => {
            (*r, ns.as_str(), name.as_str(), sub.as_deref().unwrap_or(""))
        }
    };
    let collection = matches!(target, Target::Collection { .. });
    let verb = match *method {
        Method::GET | Method::HEAD if watching => "watch",
        Method::GET | Method::HEAD if collection => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "",
    };
    Attributes::resource(verb, r.group, r.plural, sub, ns, name)
}

/// What a resource path names.
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

/// `/api/v1/...` and `/apis/<group>/<version>/...` into a collection or an object.
fn parse_target(segs: &[&str]) -> Result<Target, ApiError> {
    let (group, version, rest) = match segs {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::path_not_found()),
    };
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && resources::by_plural(group, version, rest[2]).is_some_and(|r| r.namespaced);
    if namespaced_path {
        let r = lookup(group, version, rest[2])?;
        return namespaced_target(r, rest[1], &rest[3..]);
    }
    let r = lookup(group, version, rest.first().copied().unwrap_or(""))?;
    let object = |name: &str, sub: Option<&str>| Target::Object {
        r,
        ns: String::new(),
        name: name.to_string(),
        sub: sub.map(String::from),
    };
    Ok(match &rest[1..] {
        [] => Target::Collection { r, ns: None },
        [name] if !r.namespaced => object(name, None),
        [name, sub] if !r.namespaced && (r.subresources.contains(sub) || *sub == "finalize") => {
            object(name, Some(sub))
        }
        _ => return Err(ApiError::path_not_found()),
    })
}

/// The part of `/namespaces/<ns>/<plural>/...` after the plural.
fn namespaced_target(r: &'static Resource, ns: &str, rest: &[&str]) -> Result<Target, ApiError> {
    let ns = ns.to_string();
    Ok(match rest {
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
    })
}

/// One handler per action on a collection; objects go on to [`object`].
async fn dispatch(
    ctx: &Ctx,
    target: Target,
    method: Method,
    body: &[u8],
) -> Result<Response, ApiError> {
    match (target, method) {
        (Target::Collection { r, ns }, Method::POST) if r.is_review() => {
            handlers::review(ctx, r, ns.as_deref().unwrap_or(""), body)
        }
        (Target::Collection { r, .. } | Target::Object { r, .. }, _) if r.is_review() => {
            Err(ApiError::method_not_allowed())
        }
        (Target::Collection { r, ns }, Method::GET) if ctx.flag("watch") => {
            watch::serve(ctx, r, ns.as_deref())
        }
        (Target::Collection { r, ns }, Method::GET) => {
            list_options::wait_until_fresh(ctx).await?;
            handlers::list(ctx, r, ns.as_deref())
        }
        (Target::Collection { r, ns }, Method::POST) => {
            handlers::create(ctx, r, ns.as_deref(), body)
        }
        (Target::Collection { r, ns }, Method::DELETE) => {
            handlers::delete_collection(ctx, r, ns.as_deref(), body)
        }
        (Target::Object { r, ns, name, sub }, method) => {
            // `finalize` (namespaces) writes the object itself.
            let sub = sub.as_deref().filter(|s| *s != "finalize").unwrap_or("");
            let o = ObjectRef {
                r,
                ns: &ns,
                name: &name,
                sub,
            };
            object(ctx, &o, method, body).await
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// One handler per action on an object or its subresource.
async fn object(
    ctx: &Ctx,
    o: &ObjectRef<'_>,
    method: Method,
    body: &[u8],
) -> Result<Response, ApiError> {
    let writes = method != Method::GET && method != Method::DELETE;
    if o.r.namespaced && writes && !namespace_exists(ctx, o.ns) {
        return Err(ApiError::namespace_not_found(o.ns));
    }
    match (o.sub, method) {
        ("log", Method::GET) => logs::serve(ctx.api.clone(), o.ns, o.name, &ctx.query).await,
        ("scale", method) => scale::serve(ctx, o, &method, body),
        ("token", Method::POST) => tokens::request(ctx, o, body),
        ("eviction", Method::POST) => crate::apiserver::eviction::evict(ctx, o, body),
        ("binding", Method::POST) if o.r.kind == "Pod" => {
            crate::apiserver::binding::bind(ctx, o, body)
        }
        ("token" | "eviction" | "binding", _) => Err(ApiError::method_not_allowed()),
        ("ephemeralcontainers", Method::DELETE | Method::POST) => {
            Err(ApiError::method_not_allowed())
        }
        (_, Method::GET) => handlers::get(ctx, o),
        (_, Method::PUT) => handlers::replace(ctx, o, body),
        (_, Method::PATCH) => handlers::patch(ctx, o, body),
        (_, Method::DELETE) => handlers::delete(ctx, o, body),
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn namespace_exists(ctx: &Ctx, ns: &str) -> bool {
    let namespaces = resources::by_kind("v1", "Namespace").expect("served");
    ctx.api.store.get(namespaces, "", ns).is_some()
}
