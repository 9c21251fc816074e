//! The `pods/eviction` subresource, as kube-apiserver's: a pod covered by a
//! PodDisruptionBudget is deleted only when the budget allows one more disruption (which
//! the eviction then takes), else the answer is 429; `kubectl drain` retries on it.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::{Resource, by_kind};
use crate::apimachinery::selectors::LabelSelector;
use crate::apiserver::codec::{decode_body, is_blank};
use crate::apiserver::handlers::{ObjectRef, json_response};
use crate::apiserver::registry::{DeleteOpts, defaults};
use crate::apiserver::request::Ctx;
use crate::apiserver::storage::Write;
use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

const VIOLATES: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

fn pdbs() -> &'static Resource {
    by_kind("policy/v1", "PodDisruptionBudget").expect("served")
}

/// POST `pods/NAME/eviction`: 201 with a Success Status once the pod is being deleted.
pub(crate) fn evict(ctx: &Ctx, o: &ObjectRef<'_>, body: &[u8]) -> Result<Response, ApiError> {
    let eviction = if is_blank(body) {
        json!({})
    } else {
        decode_body(&ctx.headers, body)?
    };
    let pods = by_kind("v1", "Pod").expect("served");
    let pod = ctx
        .api
        .store
        .get(pods, o.ns, o.name)
        .ok_or_else(|| ApiError::not_found(pods, o.name))?;
    if !ignores_budgets(&pod) {
        let covering: Vec<Arc<Value>> = ctx
            .api
            .store
            .list(pdbs(), Some(o.ns))
            .0
            .into_iter()
            .filter(|b| {
                b["spec"]["selector"].is_object()
                    && LabelSelector::from_object(&b["spec"]["selector"])
                        .matches(&pod["metadata"]["labels"])
            })
            .collect();
        match covering.as_slice() {
            [] => {}
            [budget] => take_disruption(ctx, budget, &pod)?,
            _ => {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
        }
    }
    let opts = delete_opts(&eviction["deleteOptions"]);
    ctx.api.delete(pods, o.ns, o.name, &opts)?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }),
        &[],
    ))
}

/// Pods already going or that never ran are evicted without asking their budget.
fn ignores_budgets(pod: &Value) -> bool {
    !pod["metadata"]["deletionTimestamp"].is_null()
        || matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed" | "Pending")
        )
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn too_many(cause: String) -> ApiError {
    ApiError::new(429, "TooManyRequests", VIOLATES)
        .with_details(json!({"causes": [{"reason": "DisruptionBudget", "message": cause}]}))
}

/// Checks the budget and records the disruption in its status (429 when none is left).
fn take_disruption(ctx: &Ctx, budget: &Value, pod: &Value) -> Result<(), ApiError> {
    let ns = budget["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = budget["metadata"]["name"].as_str().unwrap_or_default();
    let pod_name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let unhealthy_ok = !is_ready(pod);
    ctx.api.store.write(pdbs(), ns, name, |cur| {
        let Some(cur) = cur else {
            return Ok(Write::Unchanged(None));
        };
        let status = &cur["status"];
        let observed = status["observedGeneration"].as_i64().unwrap_or(0);
        if observed < cur["metadata"]["generation"].as_i64().unwrap_or(1) {
            return Err(too_many(format!(
                "The disruption budget {name} is still being processed by the server."
            )));
        }
        let healthy = status["currentHealthy"].as_i64().unwrap_or(0);
        let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
        let policy = cur["spec"]["unhealthyPodEvictionPolicy"].as_str();
        if unhealthy_ok && (policy == Some("AlwaysAllow") || healthy >= desired) {
            return Ok(Write::Unchanged(None));
        }
        let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
        if allowed <= 0 {
            return Err(too_many(format!(
                "The disruption budget {name} needs {desired} healthy pods and has {healthy} currently"
            )));
        }
        let mut next = cur.clone();
        next["status"]["disruptionsAllowed"] = json!(allowed - 1);
        if !next["status"]["disruptedPods"].is_object() {
            next["status"]["disruptedPods"] = json!({});
        }
        next["status"]["disruptedPods"][&pod_name] = json!(defaults::now());
        Ok(Write::Put(next))
    })?;
    Ok(())
}

fn delete_opts(v: &Value) -> DeleteOpts {
    let propagation = if v["orphanDependents"] == true {
        Some("Orphan".to_string())
    } else {
        v["propagationPolicy"].as_str().map(String::from)
    };
    DeleteOpts {
        propagation,
        grace_period: v["gracePeriodSeconds"].as_i64(),
        uid: v["preconditions"]["uid"].as_str().map(String::from),
        resource_version: v["preconditions"]["resourceVersion"]
            .as_str()
            .map(String::from),
        dry_run: v["dryRun"].as_array().is_some_and(|a| !a.is_empty()),
    }
}
