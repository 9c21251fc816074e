//! The sandbox's "cloud" load balancer: every `type: LoadBalancer` Service gets an external
//! IP from 127.240.0.0/16, which the service proxy listens on; a Service that stops being
//! one loses it.

use super::{Error, Shared, api_error};
use crate::apimachinery::events::{EventType, Recorder};
use crate::apimachinery::network::LOAD_BALANCER_CIDR;
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

struct Ctx {
    shared: Arc<Shared>,
    events: Recorder,
    /// Addresses handed out (Service UID to IP) that the store may not show yet, so two
    /// Services reconciled side by side never get the same one.
    assigned: Mutex<HashMap<String, String>>,
}

/// Reconciles Services on their changes.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let controller =
        Controller::for_stream(informers.services.subscribe(), informers.services.store());
    let ctx = Arc::new(Ctx {
        events: Recorder::new(shared.client.clone(), "service-controller"),
        shared: shared.clone(),
        assigned: Mutex::default(),
    });
    workqueue::run("service", controller, reconcile, ctx, shutdown)
}

fn ingress_ip(svc: &Service) -> Option<String> {
    svc.status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?
        .ip
        .clone()
}

async fn reconcile(svc: Arc<Service>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let uid = svc.uid().unwrap_or_default();
    if let Some(left) = ctx.shared.expectations.pending(&uid) {
        return Ok(Action::requeue(left));
    }
    let is_lb = svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
    if !is_lb && ingress_ip(&svc).is_some() {
        ctx.assigned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&uid);
        let patch = serde_json::json!({ "status": { "loadBalancer": {} } });
        write(&svc, &patch, &ctx).await?;
        return Ok(Action::await_change());
    }
    if !is_lb || ingress_ip(&svc).is_some() || svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(ip) = assign(&uid, &ctx) else {
        return Ok(Action::await_change());
    };
    let reference = Recorder::reference(&*svc);
    ctx.events
        .publish(
            &reference,
            EventType::Normal,
            "EnsuringLoadBalancer",
            "Ensuring load balancer",
        )
        .await;
    let patch = serde_json::json!({ "status": { "loadBalancer": { "ingress": [ { "ip": ip, "ipMode": "VIP" } ] } } });
    write(&svc, &patch, &ctx).await?;
    ctx.events
        .publish(
            &reference,
            EventType::Normal,
            "EnsuredLoadBalancer",
            "Ensured load balancer",
        )
        .await;
    Ok(Action::await_change())
}

/// The address handed to the Service `uid` before (a failed write is retried with it), else
/// a free one, starting at a random one so sandboxes running
/// side by side (e.g. parallel tests) do not collide.
fn assign(uid: &str, ctx: &Ctx) -> Option<String> {
    let mut assigned = ctx.assigned.lock().unwrap_or_else(|e| e.into_inner());
    let services = ctx.shared.informers.services.store();
    assigned.retain(|owner, _| {
        services
            .find(|s| s.uid().as_deref() == Some(owner))
            .is_some()
    });
    if let Some(ip) = assigned.get(uid) {
        return Some(ip.clone());
    }
    let taken: HashSet<String> = services
        .state()
        .iter()
        .filter_map(|s| ingress_ip(s))
        .chain(assigned.values().cloned())
        .collect();
    let base = u32::from(LOAD_BALANCER_CIDR.0);
    let size = 1u32 << (32 - LOAD_BALANCER_CIDR.1);
    let start = rand::Rng::random_range(&mut rand::rng(), 1..size - 1);
    let ip = (0..size - 2)
        .map(|i| Ipv4Addr::from(base + 1 + (start + i) % (size - 2)).to_string())
        .find(|ip| !taken.contains(ip))?;
    assigned.insert(uid.to_string(), ip.clone());
    Some(ip)
}

/// Patches the Service's status and awaits the write in the informer.
async fn write(svc: &Service, patch: &serde_json::Value, ctx: &Ctx) -> Result<(), Error> {
    let ns = svc.namespace().unwrap_or_default();
    let api: Api<Service> = Api::namespaced(ctx.shared.client.clone(), &ns);
    let written = api
        .patch_status(
            &svc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .map_err(api_error(format!(
            "writing the load balancer status of service {ns}/{}",
            svc.name_any()
        )))?;
    let uid = svc.uid().unwrap_or_default();
    ctx.shared
        .expectations
        .expect_write(&uid, &written, &ctx.shared.informers.services.store());
    Ok(())
}
