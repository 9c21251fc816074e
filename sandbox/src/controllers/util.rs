//! Helpers shared by the controllers: selectors, owner references, template hashes, pod
//! readiness and status writes that skip no-op updates.

use crate::apimachinery::names::safe_encode;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// The `pod-template-hash` of a pod template: FNV-32a of its JSON, safe-encoded, so the same
/// template always gives the same ReplicaSet name.
pub(crate) fn pod_template_hash(template: &PodTemplateSpec) -> String {
    let mut t = template.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove("pod-template-hash");
    }
    let json = serde_json::to_vec(&t).unwrap_or_default();
    let mut hash: u32 = 0x811c9dc5;
    for b in json {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x01000193);
    }
    safe_encode(&hash.to_string())
}

/// Whether `labels` satisfy a label selector (matchLabels and matchExpressions).
pub(crate) fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    labels_ok
        && exprs_ok
        && (selector.match_labels.is_some() || selector.match_expressions.is_some())
}

/// Whether a Service-style selector (plain map) matches `labels`.
pub(crate) fn map_selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The UID of the object's controlling owner.
pub(crate) fn controller_uid<K: Resource>(obj: &K) -> Option<String> {
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

/// An owner reference making `owner` the controller of a dependent.
pub(crate) fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub(crate) fn is_terminating<K: Resource>(obj: &K) -> bool {
    obj.meta().deletion_timestamp.is_some()
}

/// Pods that count as replicas: not being deleted and not finished.
pub(crate) fn is_active(pod: &Pod) -> bool {
    !is_terminating(pod)
        && !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
}

pub(crate) fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Writes `status` through the status subresource unless it already equals the current one
/// (ignoring condition timestamps), so reconciles that change nothing write nothing; returns
/// the object written, if any.
pub(crate) async fn write_status<K, S>(
    api: &Api<K>,
    name: &str,
    current: Option<&S>,
    status: &S,
) -> Result<Option<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let (new, old) = (to_json(status), current.map(to_json));
    if unchanged(old.as_ref(), &new) {
        return Ok(None);
    }
    let patch = serde_json::json!({ "status": new });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(Some)
}

/// As [`write_status`], for controllers that compute the whole status: fields of the
/// current status that `status` leaves out are removed rather than kept by the merge.
pub(crate) async fn replace_status<K, S>(
    api: &Api<K>,
    name: &str,
    current: Option<&S>,
    status: &S,
) -> Result<Option<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let (new, old) = (to_json(status), current.map(to_json));
    if unchanged(old.as_ref(), &new) {
        return Ok(None);
    }
    let mut body = new;
    let dropped = old
        .as_ref()
        .and_then(|o| o.as_object())
        .into_iter()
        .flatten()
        .filter(|(k, v)| !v.is_null() && body[k.as_str()].is_null())
        .map(|(k, _)| k.clone())
        .collect::<Vec<_>>();
    for k in dropped {
        body[k] = serde_json::Value::Null;
    }
    let patch = serde_json::json!({ "status": body });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(Some)
}

fn to_json<S: Serialize>(status: &S) -> serde_json::Value {
    serde_json::to_value(status).unwrap_or_default()
}

/// Whether the status to write is the current one but for timestamps and empty fields.
fn unchanged(current: Option<&serde_json::Value>, new: &serde_json::Value) -> bool {
    current.is_some_and(|c| comparable(c.clone()) == comparable(new.clone()))
}

fn comparable(mut v: serde_json::Value) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, val| {
                    !val.is_null()
                        && !matches!(
                            k.as_str(),
                            "lastTransitionTime" | "lastUpdateTime" | "lastProbeTime"
                        )
                });
                for val in m.values_mut() {
                    strip(val);
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

pub(crate) use crate::apimachinery::errors::is_benign;

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn template_hashes_are_stable_and_ignore_their_own_label() {
        let mut t = PodTemplateSpec {
            metadata: Some(kube::api::ObjectMeta {
                labels: Some(BTreeMap::from([("app".into(), "x".into())])),
                ..Default::default()
            }),
            spec: None,
        };
        let h = pod_template_hash(&t);
        assert!(
            h.chars()
                .all(|c| crate::apimachinery::names::SAFE_ALPHABET.contains(&(c as u8)))
        );
        t.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert("pod-template-hash".into(), h.clone());
        assert_eq!(pod_template_hash(&t), h);
        t.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert("app".into(), "y".into());
        assert_ne!(pod_template_hash(&t), h);
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels = BTreeMap::from([("app".to_string(), "redis".to_string())]);
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), "redis".into())])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "DoesNotExist".into(),
                values: None,
            }]),
        };
        assert!(selector_matches(&sel, &labels));
        assert!(!selector_matches(&LabelSelector::default(), &labels));
    }
}
