//! The `pods/binding` subresource, as kube-apiserver's `BindingREST`: the scheduler assigns
//! a pod to a node by POSTing a Binding; `spec.nodeName` changes only this way, once.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::by_kind;
use crate::apiserver::codec::{decode_body, is_blank};
use crate::apiserver::handlers::{ObjectRef, json_response};
use crate::apiserver::registry::defaults;
use crate::apiserver::request::Ctx;
use crate::apiserver::storage::Write;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

/// POST `pods/NAME/binding`: 201 with a Success Status once the pod is on the node.
pub(crate) fn bind(ctx: &Ctx, o: &ObjectRef<'_>, body: &[u8]) -> Result<Response, ApiError> {
    let binding: Value = if is_blank(body) {
        json!({})
    } else {
        decode_body(&ctx.headers, body)?
    };
    let node = binding["target"]["name"].as_str().unwrap_or_default();
    if node.is_empty() {
        return Err(ApiError::bad_request("target.name: Required value"));
    }
    let named = binding["metadata"]["name"].as_str().unwrap_or(o.name);
    if named != o.name {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Binding object: {:?} != {named:?}",
            o.name
        )));
    }
    let pods = by_kind("v1", "Pod").expect("served");
    ctx.api.store.write(pods, o.ns, o.name, |cur| {
        let Some(cur) = cur else {
            return Err(ApiError::not_found(pods, o.name));
        };
        Ok(Write::Put(assigned(cur, o, node)?))
    })?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        &[],
    ))
}

/// The pod on `node` with its PodScheduled condition True (`assignPod`), or the conflict
/// kube-apiserver answers for a pod being deleted or already on a node.
fn assigned(cur: &Value, o: &ObjectRef<'_>, node: &str) -> Result<Value, ApiError> {
    let pod = format!("{}/{}", o.ns, o.name);
    if !cur["metadata"]["deletionTimestamp"].is_null() {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!("pod {pod} is being deleted, cannot be assigned to a host"),
        ));
    }
    if let Some(on) = cur["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Err(ApiError::new(
            409,
            "Conflict",
            format!("pod {pod} is already assigned to node {on:?}"),
        ));
    }
    let mut pod = cur.clone();
    pod["spec"]["nodeName"] = json!(node);
    let scheduled = json!({"type": "PodScheduled", "status": "True",
                           "lastTransitionTime": defaults::now()});
    match pod["status"]["conditions"].as_array_mut() {
        Some(conditions) => {
            conditions.retain(|c| c["type"] != "PodScheduled");
            conditions.push(scheduled);
        }
        None => pod["status"]["conditions"] = json!([scheduled]),
    }
    Ok(pod)
}
