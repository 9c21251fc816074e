//! The root CA publisher, as kube-controller-manager's: every active namespace has a
//! `kube-root-ca.crt` ConfigMap holding the CA that signed the API server's certificate,
//! which pods read (through their `kube-api-access-*` volume) to trust it.

use super::serviceaccounts::{active, is_forbidden};
use super::util::is_benign;
use super::{Error, Shared, api_error};
use crate::apimachinery::workqueue;
use crate::shutdown::Shutdown;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::ResourceExt;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

pub(crate) const NAME: &str = "kube-root-ca.crt";
const KEY: &str = "ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

struct Ctx {
    shared: Arc<Shared>,
    ca: String,
}

/// Reconciles Namespaces on their changes and on changes to their `kube-root-ca.crt`.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let controller = Controller::for_stream(
        informers.namespaces.subscribe(),
        informers.namespaces.store(),
    )
    .watches_stream(informers.config_maps.subscribe(), |cm| {
        (cm.name_any() == NAME)
            .then(|| cm.namespace().map(|ns| ObjectRef::<Namespace>::new(&ns)))
            .flatten()
    });
    let (ca_path, _, _) = crate::paths::tls_paths(&shared.config.state_dir);
    let ca = std::fs::read_to_string(&ca_path).unwrap_or_else(|e| {
        tracing::warn!(path = %ca_path.display(), error = %e, "cannot read the CA to publish");
        String::new()
    });
    let ctx = Arc::new(Ctx {
        shared: shared.clone(),
        ca,
    });
    workqueue::run(
        "root-ca-cert-publisher",
        controller,
        reconcile,
        ctx,
        shutdown,
    )
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = ns.name_any();
    let current = ctx
        .shared
        .informers
        .config_maps
        .store()
        .get(&ObjectRef::new(NAME).within(&name));
    let want = BTreeMap::from([(KEY.to_string(), ctx.ca.clone())]);
    let up_to_date = current
        .as_ref()
        .is_some_and(|cm| cm.data.as_ref() == Some(&want));
    if !active(&ns) || up_to_date || ctx.ca.is_empty() {
        return Ok(Action::await_change());
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.shared.client.clone(), &name);
    let written = match current {
        Some(cm) => {
            let mut next = (*cm).clone();
            next.data = Some(want);
            api.replace(NAME, &PostParams::default(), &next).await
        }
        None => {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(NAME.into()),
                    annotations: Some(BTreeMap::from([(
                        "kubernetes.io/description".to_string(),
                        DESCRIPTION.to_string(),
                    )])),
                    ..Default::default()
                },
                data: Some(want),
                ..Default::default()
            };
            api.create(&PostParams::default(), &cm).await
        }
    };
    match written {
        Ok(_) => Ok(Action::await_change()),
        Err(e) if is_benign(&e) || is_forbidden(&e) => Ok(Action::await_change()),
        Err(e) => Err(api_error(format!("publishing configmap {name}/{NAME}"))(e)),
    }
}
