//! `metrics.k8s.io` for a real control plane, as metrics-server serves it: an aggregated
//! APIService backed by the kubelet's pod usage, so the real HPA controller can scale. The
//! API server reaches it through a selector-less Service whose Endpoints name this server on
//! the pod bridge's gateway address (a real API server refuses loopback endpoints).

use crate::kubelet::metrics::Metrics;
use crate::shutdown::ShutdownSignal;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The Service (in kube-system) the APIService points at.
const SERVICE: &str = "hk8s-metrics";

/// The field manager of what this writes.
const MANAGER: &str = "hk8s-node-agent";

/// The running metrics server; dropping or stopping it stops serving.
pub(crate) struct MetricsApi {
    stop: ShutdownSignal,
    task: JoinHandle<()>,
}

struct Ctx {
    client: Client,
    metrics: Metrics,
}

impl MetricsApi {
    /// Serves on `ip` (a free port) with certificates under `tls_dir`, then registers the
    /// Service, its Endpoints and the `v1beta1.metrics.k8s.io` APIService.
    pub(crate) async fn start(
        client: Client,
        metrics: Metrics,
        ip: Ipv4Addr,
        tls_dir: &std::path::Path,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(tls_dir)
            .map_err(|e| format!("cannot create {}: {e}", tls_dir.display()))?;
        let tls = crate::apiserver::tls::load_or_generate(tls_dir).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .map_err(|e| format!("cannot listen on {ip}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let router = Router::new()
            .route("/apis/metrics.k8s.io/v1beta1", get(resources))
            .route(
                "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
                get(pod_metrics),
            )
            .with_state(Arc::new(Ctx {
                client: client.clone(),
                metrics,
            }));
        let stop = ShutdownSignal::new();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config);
        let task = tokio::spawn(crate::sandbox::serve(
            listener,
            acceptor,
            crate::sandbox::http_builder(crate::sandbox::HEADER_READ_TIMEOUT),
            router,
            stop.listener(),
        ));
        let api = Self { stop, task };
        register(&client, ip, port)
            .await
            .map_err(|e| format!("registering the metrics.k8s.io APIService: {e}"))?;
        Ok(api)
    }

    pub(crate) async fn shutdown(self) {
        self.stop.trigger();
        let _ = self.task.await;
    }
}

async fn register(client: &Client, ip: Ipv4Addr, port: u16) -> Result<(), kube::Error> {
    let params = PatchParams::apply(MANAGER).force();
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": SERVICE},
        "spec": {"ports": [{"port": 443, "targetPort": port, "protocol": "TCP"}]},
    });
    Api::<Service>::namespaced(client.clone(), "kube-system")
        .patch(SERVICE, &params, &Patch::Apply(&service))
        .await?;
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": SERVICE},
        "subsets": [{"addresses": [{"ip": ip.to_string()}], "ports": [{"port": port, "protocol": "TCP"}]}],
    });
    Api::<Endpoints>::namespaced(client.clone(), "kube-system")
        .patch(SERVICE, &params, &Patch::Apply(&endpoints))
        .await?;
    let gvk = GroupVersionKind::gvk("apiregistration.k8s.io", "v1", "APIService");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "apiservices");
    let name = "v1beta1.metrics.k8s.io";
    let apiservice = json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": name},
        "spec": {
            "group": "metrics.k8s.io", "version": "v1beta1",
            "service": {"namespace": "kube-system", "name": SERVICE, "port": 443},
            "insecureSkipTLSVerify": true,
            "groupPriorityMinimum": 100, "versionPriority": 100,
        },
    });
    Api::<DynamicObject>::all_with(client.clone(), &resource)
        .patch(name, &params, &Patch::Apply(&apiservice))
        .await?;
    Ok(())
}

async fn resources() -> Json<Value> {
    Json(json!({
        "kind": "APIResourceList", "apiVersion": "v1",
        "groupVersion": "metrics.k8s.io/v1beta1",
        "resources": [{
            "name": "pods", "singularName": "", "namespaced": true,
            "kind": "PodMetrics", "verbs": ["get", "list"],
        }],
    }))
}

/// The namespace's PodMetrics, of the pods the API server says match `labelSelector`.
async fn pod_metrics(
    State(ctx): State<Arc<Ctx>>,
    Path(namespace): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Json<Value> {
    let mut params = ListParams::default();
    if let Some(selector) = query.get("labelSelector") {
        params = params.labels(selector);
    }
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &namespace)
        .list_metadata(&params)
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let names: HashSet<String> = pods.iter().map(|p| p.name_any()).collect();
    let now = jiff::Timestamp::now().to_string();
    let items: Vec<Value> = ctx
        .metrics
        .all_pods()
        .into_iter()
        .filter(|u| u.namespace == namespace && names.contains(&u.pod))
        .map(|u| {
            let containers: Vec<Value> = u
                .containers
                .iter()
                .map(|c| {
                    json!({"name": c.name, "usage": {
                        "cpu": format!("{}m", c.cpu_millis),
                        "memory": format!("{}Ki", c.memory_bytes / 1024),
                    }})
                })
                .collect();
            json!({
                "metadata": {"name": u.pod, "namespace": u.namespace, "creationTimestamp": now},
                "timestamp": now, "window": "10s", "containers": containers,
            })
        })
        .collect();
    Json(json!({
        "kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {}, "items": items,
    }))
}
