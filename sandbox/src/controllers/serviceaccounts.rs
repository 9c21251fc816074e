//! The ServiceAccount controller, as kube-controller-manager's: every active namespace has
//! a `default` ServiceAccount, created with the namespace and again whenever it is deleted.

use super::util::is_benign;
use super::{Error, Shared, api_error};
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use std::future::Future;
use std::sync::Arc;

const DEFAULT: &str = "default";

/// Reconciles Namespaces on their changes and on changes to their ServiceAccounts.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let controller = Controller::for_stream(
        informers.namespaces.subscribe(),
        informers.namespaces.store(),
    )
    .watches_stream(informers.service_accounts.subscribe(), |sa| {
        (sa.name_any() == DEFAULT)
            .then(|| sa.namespace().map(|ns| ObjectRef::<Namespace>::new(&ns)))
            .flatten()
    });
    workqueue::run(
        "serviceaccount",
        controller,
        reconcile,
        shared.clone(),
        shutdown,
    )
}

/// Whether new objects may be created in the namespace.
pub(super) fn active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

async fn reconcile(ns: Arc<Namespace>, shared: Arc<Shared>) -> Result<Action, Error> {
    let name = ns.name_any();
    let exists = shared
        .informers
        .service_accounts
        .store()
        .get(&ObjectRef::new(DEFAULT).within(&name))
        .is_some();
    if !active(&ns) || exists {
        return Ok(Action::await_change());
    }
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<ServiceAccount> = Api::namespaced(shared.client.clone(), &name);
    match api.create(&PostParams::default(), &account).await {
        Ok(_) => Ok(Action::await_change()),
        Err(e) if is_benign(&e) || is_forbidden(&e) => Ok(Action::await_change()),
        Err(e) => Err(api_error(format!(
            "creating serviceaccount {name}/{DEFAULT}"
        ))(e)),
    }
}

/// A namespace being deleted refuses creates with 403; nothing is left to do.
pub(super) fn is_forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}
