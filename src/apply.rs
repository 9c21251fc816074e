//! Server-side apply and delete of manifest objects (field manager `hk8s`), each kind
//! resolved through API discovery so any kind the cluster serves works.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::discovery::{self, ApiResource, Scope};
use kube::{Client, ResourceExt};
use std::collections::BTreeMap;

/// The label that marks a namespace as created by hk8s (so `reset` may delete it).
pub(crate) const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "hk8s");
/// The field manager of every apply.
pub(crate) const FIELD_MANAGER: &str = "hk8s";

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    #[error(
        "the cluster does not serve {api_version} {kind} (needed by {object}): {message}.\n  {hint}"
    )]
    UnknownKind {
        api_version: String,
        kind: String,
        object: String,
        message: String,
        hint: String,
    },
    #[error("{object} has no apiVersion/kind or no metadata.name")]
    Incomplete { object: String },
    #[error("applying {object} failed: {}", crate::kube_text(.source))]
    Api {
        object: String,
        #[source]
        source: kube::Error,
    },
}

impl ApplyError {
    /// The API error behind this failure, when there is one.
    pub(crate) fn kube_error(&self) -> Option<&kube::Error> {
        match self {
            ApplyError::Api { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// What happened to one object.
#[derive(Debug, Clone)]
pub(crate) struct Applied {
    pub kind: String,
    pub name: String,
    pub outcome: &'static str,
}

/// Applies and deletes objects in one namespace, caching discovery per kind.
pub(crate) struct Applier {
    client: Client,
    namespace: String,
    resources: BTreeMap<String, (ApiResource, Scope)>,
}

impl Applier {
    pub(crate) fn new(client: Client, namespace: &str) -> Self {
        Self {
            client,
            namespace: namespace.to_string(),
            resources: BTreeMap::new(),
        }
    }

    async fn api_for(&mut self, obj: &DynamicObject) -> Result<Api<DynamicObject>, ApplyError> {
        let types = obj.types.clone().ok_or_else(|| ApplyError::Incomplete {
            object: obj.name_any(),
        })?;
        let key = format!("{}/{}", types.api_version, types.kind);
        if !self.resources.contains_key(&key) {
            let gvk = GroupVersionKind::try_from(&types).map_err(|_| ApplyError::Incomplete {
                object: obj.name_any(),
            })?;
            let (resource, caps) = discovery::pinned_kind(&self.client, &gvk)
                .await
                .map_err(|e| unknown_kind(&types.api_version, &types.kind, &obj.name_any(), &e))?;
            self.resources.insert(key.clone(), (resource, caps.scope));
        }
        let (resource, scope) = &self.resources[&key];
        Ok(match scope {
            Scope::Namespaced => {
                Api::namespaced_with(self.client.clone(), &self.namespace, resource)
            }
            Scope::Cluster => Api::all_with(self.client.clone(), resource),
        })
    }

    /// Server-side apply of each object, in order.
    pub(crate) async fn apply(
        &mut self,
        objects: &[DynamicObject],
    ) -> Result<Vec<Applied>, ApplyError> {
        let mut done = Vec::new();
        for obj in objects {
            let name = obj
                .metadata
                .name
                .clone()
                .ok_or_else(|| ApplyError::Incomplete {
                    object: obj.types.as_ref().map_or("an object".into(), |t| {
                        format!("a {} {}", t.api_version, t.kind)
                    }),
                })?;
            let kind = obj
                .types
                .as_ref()
                .map(|t| t.kind.clone())
                .unwrap_or_default();
            let api = self.api_for(obj).await?;
            let existed = api.get_opt(&name).await.ok().flatten().is_some();
            let params = PatchParams::apply(FIELD_MANAGER).force();
            api.patch(&name, &params, &Patch::Apply(obj))
                .await
                .map_err(|source| ApplyError::Api {
                    object: format!("{kind}/{name}"),
                    source,
                })?;
            done.push(Applied {
                kind,
                name,
                outcome: if existed { "configured" } else { "created" },
            });
        }
        Ok(done)
    }

    /// Whether the object exists (a kind the cluster does not serve: it does not).
    pub(crate) async fn exists(&mut self, obj: &DynamicObject) -> Result<bool, ApplyError> {
        let name = obj.name_any();
        let api = match self.api_for(obj).await {
            Ok(api) => api,
            Err(ApplyError::UnknownKind { .. }) => return Ok(false),
            Err(err) => return Err(err),
        };
        api.get_opt(&name)
            .await
            .map(|found| found.is_some())
            .map_err(|source| ApplyError::Api {
                object: format!("{}/{name}", obj.types.as_ref().map_or("", |t| &t.kind)),
                source,
            })
    }

    /// Deletes each object; an object already gone counts as deleted.
    pub(crate) async fn delete(
        &mut self,
        objects: &[DynamicObject],
    ) -> Result<Vec<Applied>, ApplyError> {
        let mut done = Vec::new();
        for obj in objects {
            let name = obj.name_any();
            let kind = obj
                .types
                .as_ref()
                .map(|t| t.kind.clone())
                .unwrap_or_default();
            let api = self.api_for(obj).await?;
            let params = DeleteParams::foreground();
            let outcome = match api.delete(&name, &params).await {
                Ok(_) => "deleted",
                Err(kube::Error::Api(s)) if s.code == 404 => "already gone",
                Err(source) => {
                    return Err(ApplyError::Api {
                        object: format!("{kind}/{name}"),
                        source,
                    });
                }
            };
            done.push(Applied {
                kind,
                name,
                outcome,
            });
        }
        Ok(done)
    }
}

fn unknown_kind(api_version: &str, kind: &str, object: &str, err: &kube::Error) -> ApplyError {
    let hint = if api_version.starts_with("extensions/") || api_version.ends_with("v1beta1") {
        format!(
            "{api_version} was removed (Deployments in Kubernetes 1.16): use apps/v1, which also requires spec.selector"
        )
    } else {
        "Check the apiVersion against `kubectl api-resources`".to_string()
    };
    ApplyError::UnknownKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        object: object.to_string(),
        message: crate::kube_text(err),
        hint,
    }
}

/// Creates the namespace labelled as hk8s's own, unless it exists. Returns whether it was created.
pub async fn ensure_namespace(client: &Client, name: &str) -> Result<bool, kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    if api.get_opt(name).await?.is_some() {
        return Ok(false);
    }
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_string(),
                MANAGED_BY.1.to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether hk8s created this namespace (it carries the managed-by label).
pub(crate) fn created_by_hk8s(ns: &Namespace) -> bool {
    ns.labels()
        .get(MANAGED_BY.0)
        .is_some_and(|v| v == MANAGED_BY.1)
}
