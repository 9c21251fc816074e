//! `pods/exec`, `attach` and `portforward`: the sandbox's pods are local processes, so
//! these answer 400 with what works instead.

use crate::apimachinery::errors::ApiError;
use crate::apiserver::handlers::ObjectRef;
use crate::apiserver::request::Ctx;
use axum::response::Response;
use serde_json::Value;

/// Answers a streaming subresource request with the reason it cannot be served.
pub(crate) fn refuse(ctx: &Ctx, o: &ObjectRef<'_>) -> Result<Response, ApiError> {
    let pod = ctx
        .api
        .store
        .get(o.r, o.ns, o.name)
        .ok_or_else(|| ApiError::not_found(o.r, o.name))?;
    Err(ApiError::bad_request(process_pod_limit(o.sub, &pod)))
}

/// The address a pod's first container port answers on.
fn address(pod: &Value) -> String {
    let ip = pod["status"]["podIP"].as_str();
    let port = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find_map(|p| p["containerPort"].as_i64());
    match (ip, port) {
        (Some(ip), Some(port)) => format!("{ip}:{port}"),
        (Some(ip), None) => ip.to_string(),
        (None, _) => "its pod IP once it runs".to_string(),
    }
}

/// Why `kubectl exec`, `attach` and `port-forward` have nothing to connect to on the sandbox,
/// and what works instead: its pods are local processes listening on their own address.
fn process_pod_limit(sub: &str, pod: &Value) -> String {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let address = address(pod);
    if sub == "portforward" {
        return format!(
            "the hk8s sandbox has no port-forward, and needs none: pod {ns}/{name} is a process on this machine listening on {address}, reachable directly (e.g. curl http://{address}/). Services answer on their CLUSTER-IP and LoadBalancers on their EXTERNAL-IP: kubectl get services -n {ns}"
        );
    }
    let verb = if sub == "exec" {
        "exec into"
    } else {
        "attach to"
    };
    let redis = pod["spec"]["containers"][0]["image"]
        .as_str()
        .is_some_and(|image| image.contains("redis"));
    let example = match pod["status"]["podIP"].as_str() {
        Some(ip) if redis => format!(" (e.g. redis-cli -h {ip})"),
        _ => String::new(),
    };
    format!(
        "the hk8s sandbox cannot {verb} pod {ns}/{name}: its containers are plain processes on this machine, not containers to enter. Read its output with `kubectl logs -n {ns} {name}`, or reach it from this machine at {address}{example}"
    )
}
