//! Garbage collector, as kube-controller-manager's: an object whose owners are all gone is
//! deleted (Background, so its own dependents follow). The API server collects dependents
//! when their owner is deleted and objects created for an owner already gone; this catches
//! the rest, such as a ReplicaSet a Deployment controller created while the Deployment's
//! Foreground cascade was running (the API server removes the owner only after it).
//!
//! Owners are looked up in the informers' stores, and an owner missing there is confirmed
//! missing by the API before anything is deleted, so a store that has not seen a new owner
//! yet never costs a dependent.

use super::util::is_benign;
use super::{Error, Shared, api_error};
use crate::apimachinery::informers::{Informer, Kind};
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use futures::future::BoxFuture;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use std::future::Future;
use std::sync::Arc;

/// Collects the kinds the controllers create: ReplicaSets (owned by Deployments), pods
/// (by ReplicaSets and StatefulSets), Endpoints and EndpointSlices (by Services).
pub(super) fn run(shared: &Arc<Shared>, shutdown: &Shutdown) -> Vec<BoxFuture<'static, ()>> {
    let i = &shared.informers;
    let replicasets = collector(&i.replicasets).watches_stream(
        i.deployments.subscribe(),
        dependents_of(&i.deployments, &i.replicasets),
    );
    let pods = collector(&i.pods)
        .watches_stream(
            i.replicasets.subscribe(),
            dependents_of(&i.replicasets, &i.pods),
        )
        .watches_stream(
            i.statefulsets.subscribe(),
            dependents_of(&i.statefulsets, &i.pods),
        );
    let endpoints = collector(&i.endpoints).watches_stream(
        i.services.subscribe(),
        dependents_of(&i.services, &i.endpoints),
    );
    let slices = collector(&i.endpoint_slices).watches_stream(
        i.services.subscribe(),
        dependents_of(&i.services, &i.endpoint_slices),
    );
    vec![
        Box::pin(collect("gc-replicasets", replicasets, shared, shutdown)),
        Box::pin(collect("gc-pods", pods, shared, shutdown)),
        Box::pin(collect("gc-endpoints", endpoints, shared, shutdown)),
        Box::pin(collect("gc-endpointslices", slices, shared, shutdown)),
    ]
}

fn collector<K: Kind>(informer: &Informer<K>) -> Controller<K> {
    Controller::for_stream(informer.subscribe(), informer.store())
}

/// The kinds collected and owning: namespaced ones.
trait Namespaced: Kind + Resource<Scope = NamespaceResourceScope> {}
impl<K: Kind + Resource<Scope = NamespaceResourceScope>> Namespaced for K {}

fn collect<K: Namespaced>(
    name: &'static str,
    controller: Controller<K>,
    shared: &Arc<Shared>,
    shutdown: &Shutdown,
) -> impl Future<Output = ()> + use<K> {
    workqueue::run(
        name,
        controller,
        reconcile,
        shared.clone(),
        shutdown.clone(),
    )
}

/// Maps an owner that is gone from its store to the dependents still naming it.
fn dependents_of<O: Kind, K: Kind>(
    owners: &Informer<O>,
    dependents: &Informer<K>,
) -> impl Fn(O) -> Vec<ObjectRef<K>> + Send + Sync + 'static {
    let (owners, dependents) = (owners.store(), dependents.store());
    move |owner| {
        if owners.get(&ObjectRef::from_obj(&owner)).is_some() {
            return Vec::new();
        }
        let uid = owner.uid();
        dependents
            .state()
            .iter()
            .filter(|d| {
                d.owner_references()
                    .iter()
                    .any(|o| Some(&o.uid) == uid.as_ref())
            })
            .map(|d| ObjectRef::from_obj(&**d))
            .collect()
    }
}

async fn reconcile<K: Namespaced>(obj: Arc<K>, shared: Arc<Shared>) -> Result<Action, Error> {
    let owners = obj.owner_references();
    if owners.is_empty() || obj.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = obj.namespace().unwrap_or_default();
    if owners
        .iter()
        .any(|o| in_store(&shared, &ns, o) != Some(false))
    {
        return Ok(Action::await_change());
    }
    for owner in owners {
        if exists(&shared, &ns, owner).await? {
            return Ok(Action::await_change());
        }
    }
    let name = obj.name_any();
    let api: Api<K> = Api::namespaced(shared.client.clone(), &ns);
    match api.delete(&name, &DeleteParams::background()).await {
        Ok(_) => {
            tracing::debug!(kind = %K::kind(&()), %ns, %name, "collected an object whose owners are gone");
            Ok(Action::await_change())
        }
        Err(e) if is_benign(&e) => Ok(Action::await_change()),
        Err(e) => Err(api_error(format!(
            "deleting {} {ns}/{name}, whose owners are gone",
            K::kind(&())
        ))(e)),
    }
}

fn present<O: Kind>(store: &Store<O>, ns: &str, owner: &OwnerReference) -> bool {
    store
        .get(&ObjectRef::new(&owner.name).within(ns))
        .is_some_and(|o| o.uid().as_deref() == Some(owner.uid.as_str()))
}

/// Whether the store holds `owner`; `None` for kinds the informers do not watch.
fn in_store(shared: &Shared, ns: &str, owner: &OwnerReference) -> Option<bool> {
    let i = &shared.informers;
    Some(match (owner.api_version.as_str(), owner.kind.as_str()) {
        ("apps/v1", "Deployment") => present(&i.deployments.store(), ns, owner),
        ("apps/v1", "ReplicaSet") => present(&i.replicasets.store(), ns, owner),
        ("apps/v1", "StatefulSet") => present(&i.statefulsets.store(), ns, owner),
        ("v1", "Service") => present(&i.services.store(), ns, owner),
        ("v1", "Pod") => present(&i.pods.store(), ns, owner),
        _ => return None,
    })
}

/// Whether the API still has `owner` (same name and UID).
async fn exists(shared: &Shared, ns: &str, owner: &OwnerReference) -> Result<bool, Error> {
    async fn get<O: Namespaced>(
        shared: &Shared,
        ns: &str,
        owner: &OwnerReference,
    ) -> Result<bool, Error> {
        let found = Api::<O>::namespaced(shared.client.clone(), ns)
            .get_opt(&owner.name)
            .await
            .map_err(api_error(format!(
                "looking up {} {ns}/{}",
                owner.kind, owner.name
            )))?;
        Ok(found.is_some_and(|o| o.uid().as_deref() == Some(owner.uid.as_str())))
    }
    match owner.kind.as_str() {
        "Deployment" => get::<Deployment>(shared, ns, owner).await,
        "ReplicaSet" => get::<ReplicaSet>(shared, ns, owner).await,
        "StatefulSet" => get::<StatefulSet>(shared, ns, owner).await,
        "Service" => get::<Service>(shared, ns, owner).await,
        _ => get::<Pod>(shared, ns, owner).await,
    }
}
