//! OpenAPI v3 as kube-apiserver publishes it: Kubernetes' own documents (field descriptions,
//! `x-kubernetes-patch-merge-key`/`-patch-strategy`, `x-kubernetes-group-version-kind`), so
//! `kubectl explain` prints the real documentation and client-side apply merges lists by
//! their keys. They are embedded gzipped (`scripts/openapi-v3.sh` refreshes them from
//! k8s.io/kubernetes) and served for the group versions the sandbox serves, with the paths
//! of the resources it serves.

use crate::apimachinery::resources::{RESOURCES, in_group_version};
use crate::apiserver::discovery;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Mutex, OnceLock};

mod v2;

pub(crate) use v2::document as v2_document;

/// One embedded document of Kubernetes' published specification.
struct Embedded {
    group: &'static str,
    version: &'static str,
    gz: &'static [u8],
}

macro_rules! embedded {
    ($group:literal, $version:literal, $file:literal) => {
        Embedded {
            group: $group,
            version: $version,
            gz: include_bytes!(concat!("v3/", $file, ".json.gz")),
        }
    };
}

static EMBEDDED: &[Embedded] = &[
    embedded!("", "v1", "api__v1"),
    embedded!("apps", "v1", "apis__apps__v1"),
    embedded!("autoscaling", "v1", "apis__autoscaling__v1"),
    embedded!("autoscaling", "v2", "apis__autoscaling__v2"),
    embedded!("batch", "v1", "apis__batch__v1"),
    embedded!("discovery.k8s.io", "v1", "apis__discovery.k8s.io__v1"),
    embedded!("storage.k8s.io", "v1", "apis__storage.k8s.io__v1"),
    embedded!("coordination.k8s.io", "v1", "apis__coordination.k8s.io__v1"),
    embedded!(
        "apiextensions.k8s.io",
        "v1",
        "apis__apiextensions.k8s.io__v1"
    ),
    embedded!(
        "authorization.k8s.io",
        "v1",
        "apis__authorization.k8s.io__v1"
    ),
    embedded!(
        "authentication.k8s.io",
        "v1",
        "apis__authentication.k8s.io__v1"
    ),
    embedded!("networking.k8s.io", "v1", "apis__networking.k8s.io__v1"),
    embedded!("policy", "v1", "apis__policy__v1"),
    embedded!(
        "rbac.authorization.k8s.io",
        "v1",
        "apis__rbac.authorization.k8s.io__v1"
    ),
    embedded!(
        "apiregistration.k8s.io",
        "v1",
        "apis__apiregistration.k8s.io__v1"
    ),
];

/// Every group version the sandbox serves, in discovery order.
fn served() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// `api/v1` or `apis/<group>/<version>`: the document's path under `/openapi/v3`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn embedded(group: &str, version: &str) -> Option<&'static Embedded> {
    EMBEDDED
        .iter()
        .find(|e| e.group == group && e.version == version)
}

/// FNV-1a, 64 bits, as upper-case hex: a document's version for clients' caches.
fn fnv(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// A document's hash without building it: its source and the resources it is cut to.
fn hash(group: &str, version: &str) -> String {
    let plurals: Vec<u8> = in_group_version(group, version)
        .flat_map(|r| {
            let subs = r.subresources.join(",");
            format!("{}[{subs}];", r.plural).into_bytes()
        })
        .collect();
    match embedded(group, version) {
        Some(e) => fnv(&[e.gz, &plurals]),
        None => fnv(&[&document_bytes(group, version).unwrap_or_default()]),
    }
}

/// `/openapi/v3`: where each served group version's document is, with its hash.
pub(crate) fn root() -> Value {
    let paths: serde_json::Map<String, Value> = served()
        .into_iter()
        .map(|(g, v)| {
            let path = gv_path(g, v);
            let url = format!("/openapi/v3/{path}?hash={}", hash(g, v));
            (path, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// Whether an OpenAPI path (`/api/v1/namespaces/{namespace}/pods/{name}/log`) names a
/// resource, and a subresource, that the sandbox serves.
fn path_served(group: &str, version: &str, path: &str) -> bool {
    let prefix = format!("/{}/", gv_path(group, version));
    let Some(rest) = path.strip_prefix(&prefix) else {
        return path == prefix;
    };
    let rest = rest.strip_prefix("watch/").unwrap_or(rest);
    let mut segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segs.len() > 2 && segs[0] == "namespaces" && segs[1] == "{namespace}" {
        segs.drain(..2);
    }
    let Some(r) = segs
        .first()
        .and_then(|p| in_group_version(group, version).find(|r| r.plural == *p))
    else {
        return segs.is_empty();
    };
    segs.get(2).is_none_or(|sub| r.subresources.contains(sub))
}

fn decompress(gz: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// Builds the served document: Kubernetes' own, cut to the served paths; for a group
/// version Kubernetes does not publish (metrics.k8s.io), the generated one.
fn document_bytes(group: &str, version: &str) -> Option<Vec<u8>> {
    let Some(e) = embedded(group, version) else {
        let doc = discovery::openapi_group_version(&gv_path(group, version))?;
        return serde_json::to_vec(&doc).ok();
    };
    let mut doc: Value = serde_json::from_slice(&decompress(e.gz)?).ok()?;
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.retain(|p, _| path_served(group, version, p));
    }
    serde_json::to_vec(&doc).ok()
}

/// `/openapi/v3/<api/v1|apis/g/v>`: the document as JSON, built once per process.
pub(crate) fn document(path: &str) -> Option<Bytes> {
    static CACHE: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    let (group, version) = served()
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == path.trim_matches('/'))?;
    let cache = CACHE.get_or_init(Default::default);
    if let Some(doc) = cache.lock().expect("openapi cache").get(path) {
        return Some(doc.clone());
    }
    let doc = Bytes::from(document_bytes(group, version)?);
    cache
        .lock()
        .expect("openapi cache")
        .insert(path.to_string(), doc.clone());
    Some(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_document_is_kubernetes_json_for_its_group_version() {
        for e in EMBEDDED {
            let doc: Value = serde_json::from_slice(&decompress(e.gz).unwrap()).unwrap();
            assert_eq!(doc["openapi"], "3.0.0", "{}/{}", e.group, e.version);
            let prefix = format!("/{}/", gv_path(e.group, e.version));
            assert!(
                doc["paths"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .all(|p| p.starts_with(&prefix)),
                "{prefix}"
            );
        }
    }

    #[test]
    fn served_paths_are_those_of_served_resources_and_subresources() {
        assert!(path_served(
            "",
            "v1",
            "/api/v1/namespaces/{namespace}/pods/{name}/log"
        ));
        assert!(path_served(
            "",
            "v1",
            "/api/v1/watch/namespaces/{namespace}/pods"
        ));
        assert!(path_served("", "v1", "/api/v1/namespaces/{name}"));
        assert!(path_served("", "v1", "/api/v1/"));
        assert!(!path_served("", "v1", "/api/v1/namespaces/{name}/finalize"));
        assert!(path_served(
            "",
            "v1",
            "/api/v1/namespaces/{namespace}/pods/{name}/binding"
        ));
        assert!(!path_served(
            "",
            "v1",
            "/api/v1/namespaces/{namespace}/bindings"
        ));
        assert!(!path_served("", "v1", "/api/v1/componentstatuses"));
        assert!(path_served(
            "apps",
            "v1",
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"
        ));
    }

    #[test]
    fn deployment_strategy_is_documented_and_containers_merge_by_name() {
        let doc: Value = serde_json::from_slice(&document("apis/apps/v1").unwrap()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let spec = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"];
        assert!(
            spec["strategy"]["description"].is_string() || spec["strategy"]["allOf"].is_array(),
            "{}",
            spec["strategy"]
        );
        let pod = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(pod["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(pod["x-kubernetes-patch-strategy"], "merge");
        assert!(
            root()["paths"]["apis/apps/v1"]["serverRelativeURL"]
                .as_str()
                .unwrap()
                .starts_with("/openapi/v3/apis/apps/v1?hash=")
        );
    }
}
