//! The sandbox's "cloud" load balancer: every `type: LoadBalancer` Service gets an external
//! IP from 127.240.0.0/16, which the service proxy listens on.

use super::{Ctx, Snapshot};
use crate::apimachinery::events::{EventType, Recorder};
use crate::apimachinery::network::LOAD_BALANCER_CIDR;
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use std::collections::HashSet;
use std::net::Ipv4Addr;

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

pub async fn reconcile(ctx: &Ctx, snap: &Snapshot) -> Result<(), kube::Error> {
    let mut taken: HashSet<String> = snap.services.iter().filter_map(ingress_ip).collect();
    for svc in &snap.services {
        let is_lb = svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer");
        let api: Api<Service> =
            Api::namespaced(ctx.client.clone(), &svc.namespace().unwrap_or_default());
        if !is_lb {
            if ingress_ip(svc).is_some() {
                let patch = serde_json::json!({ "status": { "loadBalancer": {} } });
                api.patch_status(
                    &svc.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
            }
            continue;
        }
        if ingress_ip(svc).is_some() || svc.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let base = u32::from(LOAD_BALANCER_CIDR.0);
        let size = 1u32 << (32 - LOAD_BALANCER_CIDR.1);
        // Random, so sandboxes running side by side (e.g. parallel tests) do not collide.
        let start = rand::Rng::random_range(&mut rand::rng(), 1..size - 1);
        let Some(ip) = (0..size - 2)
            .map(|i| Ipv4Addr::from(base + 1 + (start + i) % (size - 2)).to_string())
            .find(|ip| !taken.contains(ip))
        else {
            continue;
        };
        let reference = Recorder::reference(svc);
        ctx.services
            .publish(
                &reference,
                EventType::Normal,
                "EnsuringLoadBalancer",
                "Ensuring load balancer",
            )
            .await;
        let patch = serde_json::json!({ "status": { "loadBalancer": { "ingress": [ { "ip": ip, "ipMode": "VIP" } ] } } });
        api.patch_status(
            &svc.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        ctx.services
            .publish(
                &reference,
                EventType::Normal,
                "EnsuredLoadBalancer",
                "Ensured load balancer",
            )
            .await;
        taken.insert(ip);
    }
    Ok(())
}
