//! Discovery documents (`/version`, `/api`, `/apis`, group versions, aggregated discovery
//! v2) and the minimal OpenAPI v3 that tells kubectl to validate on the server.

use crate::apimachinery::resources::{self, Resource};
use serde_json::{Value, json};

/// `/version`: the Kubernetes version the sandbox imitates.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "37",
        "gitVersion": "v1.37.2-hk8s-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

/// The kind, group, version and verbs a subresource is served with, as a cluster lists them.
fn subresource_kind(
    r: &Resource,
    sub: &str,
) -> (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
) {
    match sub {
        "scale" => ("Scale", "autoscaling", "v1", &["get", "patch", "update"]),
        "log" => ("Pod", "", "v1", &["get"]),
        "exec" => ("PodExecOptions", "", "v1", &["create", "get"]),
        "attach" => ("PodAttachOptions", "", "v1", &["create", "get"]),
        "portforward" => ("PodPortForwardOptions", "", "v1", &["create", "get"]),
        "binding" => ("Binding", "", "v1", &["create"]),
        "eviction" => ("Eviction", "policy", "v1", &["create"]),
        "token" => ("TokenRequest", "authentication.k8s.io", "v1", &["create"]),
        _ => (r.kind, r.group, r.version, &["get", "patch", "update"]),
    }
}

fn api_resource(r: &Resource) -> Vec<Value> {
    let mut out = vec![json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs(),
        "shortNames": r.short_names,
        "categories": r.categories,
    })];
    for sub in r.subresources {
        let (kind, group, version, verbs) = subresource_kind(r, sub);
        let mut v = json!({
            "name": format!("{}/{sub}", r.plural),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": kind,
            "verbs": verbs,
        });
        if matches!(*sub, "scale" | "eviction" | "token") {
            v["group"] = json!(group);
            v["version"] = json!(version);
        }
        out.push(v);
    }
    out
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = resources::in_group_version(group, version)
        .flat_map(api_resource)
        .collect();
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

/// `/api`: the core group's versions.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    })
}

fn api_group(group: &str, version: &str) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    let versions: Vec<Value> = resources::versions_of(group).into_iter().map(gv).collect();
    json!({"name": group, "versions": versions, "preferredVersion": gv(version)})
}

/// `/apis` (legacy form).
pub fn group_list() -> Value {
    let groups: Vec<Value> = resources::groups()
        .into_iter()
        .map(|(g, v)| api_group(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn group(group: &str) -> Option<Value> {
    resources::groups()
        .into_iter()
        .find(|(g, _)| *g == group)
        .map(|(g, v)| {
            let mut doc = api_group(g, v);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            doc
        })
}

/// The media type of aggregated discovery answers.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Did the client ask for aggregated discovery (v2) first?
pub fn wants_aggregated(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=APIGroupDiscoveryList") && first.contains("v=v2"))
}

fn discovery_resource(r: &Resource) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|sub| {
            let (kind, group, version, verbs) = subresource_kind(r, sub);
            json!({"subresource": sub,
                   "responseKind": {"group": group, "version": version, "kind": kind},
                   "verbs": verbs})
        })
        .collect();
    let mut v = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        v["subresources"] = json!(subresources);
    }
    v
}

/// Aggregated discovery for `/api` (core) or `/apis` (every named group).
pub fn aggregated(core: bool) -> Value {
    let mut items = Vec::new();
    let groups: Vec<(&str, &str)> = if core {
        vec![("", "v1")]
    } else {
        resources::groups()
    };
    for (g, _) in groups {
        let versions: Vec<Value> = resources::versions_of(g)
            .into_iter()
            .map(|v| {
                let resources: Vec<Value> = resources::in_group_version(g, v)
                    .map(discovery_resource)
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        items.push(json!({
            "metadata": {"name": g, "creationTimestamp": null},
            "versions": versions,
        }));
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// What `kubectl explain` shows for kinds of groups Kubernetes publishes no OpenAPI for
/// (metrics.k8s.io belongs to metrics-server).
const EXPLAIN_NOTE: &str = "Kubernetes' published OpenAPI does not cover this group (metrics-server serves it), so the hk8s sandbox carries no field documentation for it; see https://github.com/kubernetes/metrics.";

/// `/openapi/v3/<gv>` for a group Kubernetes publishes no document for: paths with the `x-kubernetes-group-version-kind` extension and the
/// `fieldValidation` parameter, which is what kubectl checks before it lets the server
/// validate (and so needs no client-side schema).
pub fn openapi_group_version(gv_path: &str) -> Option<Value> {
    let (group, version) = match gv_path.trim_matches('/').split('/').collect::<Vec<_>>()[..] {
        ["api", v] => ("", v),
        ["apis", g, v] => (g, v),
        _ => return None,
    };
    let resources: Vec<&Resource> = resources::in_group_version(group, version).collect();
    if resources.is_empty() {
        return None;
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let field_validation = json!({
        "name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true},
        "description": "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields."
    });
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for r in resources {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let op = |verb: &str| {
            json!({
                "operationId": format!("{verb}{}", r.kind),
                "parameters": [field_validation.clone()],
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk.clone(),
                "responses": {"200": {"description": "OK"}},
            })
        };
        let base = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{prefix}/{}", r.plural)
        };
        paths.insert(base.clone(), json!({"post": op("post")}));
        paths.insert(
            format!("{base}/{{name}}"),
            json!({"put": op("put"), "patch": op("patch")}),
        );
        let schema_name = format!(
            "io.hk8s.{}.{}.{}",
            if r.group.is_empty() { "core" } else { r.group },
            r.version,
            r.kind
        );
        schemas.insert(
            schema_name,
            json!({
                "description": EXPLAIN_NOTE,
                "type": "object",
                "x-kubernetes-group-version-kind": [gvk],
                "x-kubernetes-preserve-unknown-fields": true,
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (hk8s sandbox)", "version": "v1.37.2"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// `/openapi/v2` as the gnostic protobuf `Document` kubectl asks for: `swagger: "2.0"`
/// and `info` only (the JSON answer carries the definitions). Kubectl reads it when a manifest names a group version the v3
/// document lacks (such as `extensions/v1beta1`), finds no schema, and then reports the
/// same "no matches for kind" a real cluster gives.
pub fn openapi_v2_protobuf() -> Vec<u8> {
    fn field(num: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(num << 3) | 2, bytes.len() as u8];
        out.extend_from_slice(bytes);
        out
    }
    let info = [field(1, b"Kubernetes"), field(2, b"v1.37.2")].concat();
    [field(1, b"2.0"), field(2, &info)].concat()
}
