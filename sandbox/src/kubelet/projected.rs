//! Projected volumes, as the kubelet writes them: a ServiceAccount token it requests for
//! the pod (bound to it), ConfigMap and Secret keys, and downward API fields, all files in
//! one directory (the `kube-api-access-*` volume every pod gets is one).

use super::pod::PodSetupError;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, KeyToPath, Pod, ProjectedVolumeSource, Secret, ServiceAccount,
};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use std::path::Path;

/// Writes every source of a projected volume into `dir`.
pub(super) async fn write(
    client: &Client,
    pod: &Pod,
    projected: &ProjectedVolumeSource,
    dir: &Path,
) -> Result<(), PodSetupError> {
    let ns = pod.namespace().unwrap_or_else(|| "default".into());
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for source in projected.sources.iter().flatten() {
        if let Some(t) = &source.service_account_token {
            files.push((
                t.path.clone(),
                token(client, pod, &ns, t).await?.into_bytes(),
            ));
        }
        if let Some(c) = &source.config_map {
            let found = Api::<ConfigMap>::namespaced(client.clone(), &ns)
                .get_opt(&c.name)
                .await?;
            let data = match found {
                Some(cm) => cm.data.unwrap_or_default(),
                None if c.optional == Some(true) => Default::default(),
                None => return Err(missing("configmap", &c.name)),
            };
            let data = data.into_iter().map(|(k, v)| (k, v.into_bytes()));
            files.extend(select(data, c.items.as_deref()));
        }
        if let Some(s) = &source.secret {
            let found = Api::<Secret>::namespaced(client.clone(), &ns)
                .get_opt(&s.name)
                .await?;
            let data = match found {
                Some(secret) => secret.data.unwrap_or_default(),
                None if s.optional == Some(true) => Default::default(),
                None => return Err(missing("secret", &s.name)),
            };
            let data = data.into_iter().map(|(k, v)| (k, v.0));
            files.extend(select(data, s.items.as_deref()));
        }
        for item in source
            .downward_api
            .iter()
            .flat_map(|d| d.items.iter().flatten())
        {
            let value = item
                .field_ref
                .as_ref()
                .map(|f| field(pod, &f.field_path))
                .unwrap_or_default();
            files.push((item.path.clone(), value.into_bytes()));
        }
    }
    for (path, bytes) in files {
        if path.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(PodSetupError::Message(format!(
                "projected volume path {path:?} must be relative and may not contain '..'"
            )));
        }
        let file = dir.join(&path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| PodSetupError::Message(format!("{}: {e}", parent.display())))?;
        }
        std::fs::write(&file, bytes)
            .map_err(|e| PodSetupError::Message(format!("{}: {e}", file.display())))?;
    }
    Ok(())
}

fn missing(kind: &str, name: &str) -> PodSetupError {
    PodSetupError::Message(format!("{kind} \"{name}\" not found"))
}

/// A token from the TokenRequest API, bound to the pod, as the kubelet asks for it.
async fn token(
    client: &Client,
    pod: &Pod,
    ns: &str,
    source: &k8s_openapi::api::core::v1::ServiceAccountTokenProjection,
) -> Result<String, PodSetupError> {
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".into());
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: source.audience.clone().map(|a| vec![a]),
            expiration_seconds: Some(source.expiration_seconds.unwrap_or(3600)),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod.name_any()),
                uid: pod.uid(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let answer = Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .create_token_request(&account, &PostParams::default(), &request)
        .await?;
    Ok(answer.status.and_then(|s| s.token).unwrap_or_default())
}

/// The keys `items` names (at their paths), or every key when it names none.
fn select(
    data: impl Iterator<Item = (String, Vec<u8>)>,
    items: Option<&[KeyToPath]>,
) -> Vec<(String, Vec<u8>)> {
    match items {
        Some(items) if !items.is_empty() => {
            let data: std::collections::HashMap<String, Vec<u8>> = data.collect();
            items
                .iter()
                .filter_map(|i| data.get(&i.key).map(|v| (i.path.clone(), v.clone())))
                .collect()
        }
        _ => data.collect(),
    }
}

/// A downward API field of the pod.
fn field(pod: &Pod, path: &str) -> String {
    let m = &pod.metadata;
    let pairs = |map: &Option<std::collections::BTreeMap<String, String>>| {
        map.iter()
            .flatten()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match path {
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => pairs(&m.labels),
        "metadata.annotations" => pairs(&m.annotations),
        _ => String::new(),
    }
}
