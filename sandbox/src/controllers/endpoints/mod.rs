//! Endpoints and EndpointSlice controller: for every Service with a selector, the IPs and
//! target ports of its pods. Triggered by the Service, by pods entering or leaving its
//! selection, and by its Endpoints and EndpointSlice (which it owns). [`plan`] decides;
//! [`apply`] writes and awaits each write in the informers.

mod plan;

use super::util::{is_benign, map_selector_matches};
use super::{Error, Shared, api_error};
use crate::apimachinery::informers::Kind;
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::{Action, Config};
use kube::runtime::reflector::{ObjectRef, Store};
use plan::{SERVICE_NAME_LABEL, Write};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How long pod changes are gathered before a Service's endpoints are written
/// (kube-controller-manager's `--endpoint-updates-batch-period`): pods starting together
/// become one write rather than one each.
const BATCH_PERIOD: Duration = Duration::from_millis(50);

/// Reconciles Services on their changes, their pods' and their endpoints'.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let services = informers.services.store();
    let controller = Controller::for_stream(informers.services.subscribe(), services.clone())
        .watches_stream(informers.pods.subscribe(), move |pod| {
            selecting(&services, &pod)
        })
        .owns_stream(informers.endpoints.subscribe())
        .owns_stream(informers.endpoint_slices.subscribe())
        .with_config(Config::default().debounce(BATCH_PERIOD));
    workqueue::run("endpoints", controller, reconcile, shared.clone(), shutdown)
}

/// The Services of `pod`'s namespace whose selector matches its labels (the old and new
/// versions of a pod whose labels changed both come this way).
fn selecting(services: &Store<Service>, pod: &Pod) -> Vec<ObjectRef<Service>> {
    services
        .state()
        .iter()
        .filter(|svc| {
            ResourceExt::namespace(&***svc) == pod.namespace()
                && svc
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|s| map_selector_matches(s, pod.labels()))
        })
        .map(|svc| ObjectRef::from_obj(&**svc))
        .collect()
}

async fn reconcile(svc: Arc<Service>, shared: Arc<Shared>) -> Result<Action, Error> {
    let has_selector = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(|s| !s.is_empty());
    if !has_selector || svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let key = svc.uid().unwrap_or_default();
    if let Some(left) = shared.expectations.pending(&key) {
        return Ok(Action::requeue(left));
    }
    let informers = &shared.informers;
    let ns = svc.namespace();
    let in_namespace = |o: &Arc<_>| ResourceExt::namespace(&**o) == ns;
    let pods: Vec<Pod> = informers
        .pods
        .store()
        .state()
        .iter()
        .filter(|p| in_namespace(p))
        .map(|p| (**p).clone())
        .collect();
    let endpoints = informers
        .endpoints
        .store()
        .find(|e| ResourceExt::namespace(e) == ns && e.name_any() == svc.name_any());
    let slice = informers.endpoint_slices.store().find(|s| {
        ResourceExt::namespace(s) == ns
            && s.labels().get(SERVICE_NAME_LABEL) == Some(&svc.name_any())
    });
    let plan = plan::plan(&svc, &pods, endpoints.as_deref(), slice.as_deref());
    let ns = ns.unwrap_or_default();
    if let Some(write) = plan.endpoints {
        let api = Api::namespaced(shared.client.clone(), &ns);
        apply(&shared, &key, &api, write, &informers.endpoints.store()).await?;
    }
    if let Some(write) = plan.slice {
        let api = Api::namespaced(shared.client.clone(), &ns);
        apply(
            &shared,
            &key,
            &api,
            write,
            &informers.endpoint_slices.store(),
        )
        .await?;
    }
    Ok(Action::await_change())
}

/// Creates or replaces one object for the Service `key`; a conflict means the store was
/// behind, and the change that put it ahead triggers another reconcile.
async fn apply<K: Kind + serde::Serialize>(
    shared: &Shared,
    key: &str,
    api: &Api<K>,
    write: Write<K>,
    store: &Store<K>,
) -> Result<(), Error> {
    let (result, object) = match &write {
        Write::Create(o) => (api.create(&PostParams::default(), o).await, o),
        Write::Replace(o) => (
            api.replace(&o.name_any(), &PostParams::default(), o).await,
            o,
        ),
    };
    match result {
        Ok(written) => {
            shared.expectations.expect_write(key, &written, store);
            Ok(())
        }
        Err(e) if is_benign(&e) => Ok(()),
        Err(e) => Err(api_error(format!(
            "writing {} {}/{}",
            K::kind(&()),
            object.namespace().unwrap_or_default(),
            object.name_any()
        ))(e)),
    }
}
