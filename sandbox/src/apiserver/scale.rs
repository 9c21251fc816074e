//! The `scale` subresource of Deployments, ReplicaSets, StatefulSets and
//! ReplicationControllers: an
//! `autoscaling/v1` Scale read from and written to `spec.replicas`.

use crate::apimachinery::errors::{ApiError, Cause};
use crate::apimachinery::selectors::LabelSelector;
use crate::apiserver::codec::{decode_body, parse_json, patch_kind};
use crate::apiserver::handlers::{ObjectRef, ok};
use crate::apiserver::registry::patch::{json_merge, json_patch, strategic_merge};
use crate::apiserver::registry::{PatchBody, PatchKind};
use crate::apiserver::request::Ctx;
use axum::response::Response;
use http::Method;
use serde_json::{Value, json};

/// The Scale of a workload.
fn scale_of(obj: &Value) -> Value {
    // A ReplicationController's selector is a plain map of labels.
    let selector = match obj["kind"].as_str() {
        Some("ReplicationController") => json!({"matchLabels": obj["spec"]["selector"]}),
        _ => obj["spec"]["selector"].clone(),
    };
    let sel = LabelSelector::from_object(&selector).to_query();
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

/// The Scale a PUT or PATCH asks for.
fn wanted(ctx: &Ctx, current: &Value, method: &Method, body: &[u8]) -> Result<Value, ApiError> {
    match *method {
        Method::PUT => decode_body(&ctx.headers, body),
        Method::PATCH => {
            let mut s = current.clone();
            let p = parse_json(body)?;
            match patch_kind(&ctx.headers)? {
                PatchKind::Json => json_patch(&mut s, &p)?,
                PatchKind::Merge => json_merge(&mut s, &p),
                PatchKind::Strategic | PatchKind::Apply => strategic_merge(&mut s, &p)?,
            }
            Ok(s)
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// GET, PUT or PATCH on `<workload>/scale`.
pub(crate) fn serve(
    ctx: &Ctx,
    o: &ObjectRef<'_>,
    method: &Method,
    body: &[u8],
) -> Result<Response, ApiError> {
    let cur = ctx
        .api
        .store
        .get(o.r, o.ns, o.name)
        .ok_or_else(|| ApiError::not_found(o.r, o.name))?;
    let current = scale_of(&cur);
    if *method == Method::GET {
        return Ok(ok(&current));
    }
    let wanted = wanted(ctx, &current, method, body)?;
    let replicas = wanted["spec"]["replicas"]
        .as_i64()
        .ok_or_else(|| ApiError::invalid(o.r, o.name, &[Cause::required("spec.replicas")]))?;
    if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str()
        && !rv.is_empty()
        && Some(rv) != cur["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError::conflict(o.r, o.name));
    }
    let patch = PatchBody {
        kind: PatchKind::Merge,
        body: json!({"spec": {"replicas": replicas}}),
    };
    let out = ctx
        .api
        .patch(o.r, o.ns, o.name, "", patch, &ctx.write_opts("scale")?)?;
    Ok(ok(&scale_of(&out.object)))
}
