//! `/openapi/v2` as JSON: a Swagger 2.0 document converted from the v3 documents the
//! sandbox serves (schemas under `definitions`, `$ref`s rewritten, parameters, bodies and
//! responses in 2.0's shape, the `x-kubernetes-*` extensions kept), for clients that still
//! read v2, such as older kubectl's client-side validation and helm.

use super::{document_bytes, served};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

const V3_SCHEMAS: &str = "#/components/schemas/";
const V2_DEFINITIONS: &str = "#/definitions/";
const OPERATIONS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];

/// The document, built once per process.
pub(crate) fn document() -> Bytes {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    DOC.get_or_init(|| Bytes::from(serde_json::to_vec(&build()).unwrap_or_default()))
        .clone()
}

fn build() -> Value {
    let mut definitions = Map::new();
    let mut paths = Map::new();
    for (group, version) in served() {
        let Some(doc) =
            document_bytes(group, version).and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        let schemas = doc["components"]["schemas"].as_object().cloned();
        for (name, schema) in schemas.into_iter().flatten() {
            definitions.entry(name).or_insert(schema);
        }
        for (path, item) in doc["paths"].as_object().cloned().into_iter().flatten() {
            let item = path_item(&path, item);
            paths.insert(path, item);
        }
    }
    let mut doc = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.37.2"},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {"BearerToken": {
            "description": "Bearer Token authentication", "in": "header",
            "name": "authorization", "type": "apiKey"}},
        "security": [{"BearerToken": []}],
    });
    rewrite(&mut doc);
    doc
}

/// Refs to `#/definitions/`, `allOf` wrappers of a single ref unwrapped (2.0 allows
/// siblings of `$ref` only as documentation), 3.0's `nullable` dropped, and the `oneOf` of
/// Quantity and IntOrString written as 2.0's plain string.
fn rewrite(v: &mut Value) {
    match v {
        Value::Object(m) => {
            keywords(m);
            for (k, child) in m.iter_mut() {
                match (k.as_str(), child) {
                    ("properties" | "definitions", Value::Object(named)) => {
                        named.values_mut().for_each(rewrite)
                    }
                    (_, child) => rewrite(child),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite),
        _ => {}
    }
}

fn keywords(m: &mut Map<String, Value>) {
    let single_ref = m
        .get("allOf")
        .and_then(Value::as_array)
        .filter(|a| a.len() == 1 && a[0].get("$ref").is_some())
        .map(|a| a[0]["$ref"].clone());
    if let Some(r) = single_ref {
        m.remove("allOf");
        m.remove("default");
        m.insert("$ref".into(), r);
    }
    if let Some(Value::String(r)) = m.get_mut("$ref")
        && let Some(name) = r.strip_prefix(V3_SCHEMAS)
    {
        *r = format!("{V2_DEFINITIONS}{name}");
    }
    if m.get("nullable").is_some_and(Value::is_boolean) {
        m.remove("nullable");
    }
    if m.get("oneOf").is_some_and(Value::is_array) {
        m.remove("oneOf");
        m.entry("type").or_insert("string".into());
    }
}

/// A path's operations and parameters in 2.0's shape; the `{name}`s of its template that
/// no parameter declares (the generated documents leave them out) become path parameters.
fn path_item(path: &str, mut item: Value) -> Value {
    let Some(m) = item.as_object_mut() else {
        return item;
    };
    for (key, v) in m.iter_mut() {
        if key == "parameters" {
            *v = parameters(v);
        } else if OPERATIONS.contains(&key.as_str()) {
            *v = operation(v);
        }
    }
    let declared = |name: &str| {
        m.values()
            .flat_map(|v| v.as_array().or(v["parameters"].as_array()))
            .flatten()
            .any(|p| p["in"] == "path" && p["name"] == name)
    };
    let missing: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .filter(|name| !declared(name))
        .map(|name| json!({"name": name, "in": "path", "required": true, "type": "string", "uniqueItems": true}))
        .collect();
    if !missing.is_empty() {
        let list = m.entry("parameters").or_insert(json!([]));
        if let Some(list) = list.as_array_mut() {
            list.extend(missing);
        }
    }
    item
}

/// A 3.0 parameter's `schema` flattened into it, as 2.0 writes non-body parameters.
fn parameters(list: &Value) -> Value {
    let converted = list.as_array().into_iter().flatten().map(|p| {
        let mut p = p.clone();
        if let Some(Value::Object(schema)) = p.as_object_mut().and_then(|m| m.remove("schema")) {
            for (k, v) in schema {
                p[k] = v;
            }
        }
        p
    });
    Value::Array(converted.collect())
}

fn operation(op: &Value) -> Value {
    let mut out = op.clone();
    let m = out.as_object_mut().expect("an operation is an object");
    let mut params = parameters(m.get("parameters").unwrap_or(&Value::Null));
    if let Some(body) = m.remove("requestBody") {
        let content = body["content"].as_object().cloned().unwrap_or_default();
        let schema = content.values().next().map(|c| c["schema"].clone());
        if let Some(list) = params.as_array_mut() {
            list.push(json!({"name": "body", "in": "body", "required": true,
                             "schema": schema.unwrap_or(json!({}))}));
        }
        m.insert("consumes".into(), json!(content.keys().collect::<Vec<_>>()));
    }
    if params.as_array().is_some_and(|p| !p.is_empty()) {
        m.insert("parameters".into(), params);
    }
    let mut produces: Vec<String> = Vec::new();
    let responses = m.remove("responses").unwrap_or(json!({}));
    let mut converted = Map::new();
    for (code, r) in responses.as_object().into_iter().flatten() {
        let mut entry = json!({"description": r["description"].clone()});
        let content = r["content"].as_object().cloned().unwrap_or_default();
        if let Some(c) = content.values().next() {
            entry["schema"] = c["schema"].clone();
        }
        produces.extend(
            content
                .keys()
                .filter(|k| !produces.contains(k))
                .cloned()
                .collect::<Vec<_>>(),
        );
        converted.insert(code.clone(), entry);
    }
    m.insert("responses".into(), Value::Object(converted));
    if !produces.is_empty() {
        m.insert("produces".into(), json!(produces));
    }
    m.insert("schemes".into(), json!(["https"]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_point_at_definitions_that_exist() {
        let doc = build();
        let definitions = doc["definitions"].as_object().unwrap();
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 1000);
        for r in all {
            let name = r
                .strip_prefix(V2_DEFINITIONS)
                .unwrap_or_else(|| panic!("{r}"));
            assert!(definitions.contains_key(name), "{r}");
        }
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        let body = patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["in"] == "body");
        assert!(body.is_some(), "{patch:#}");
        assert!(
            patch["consumes"]
                .as_array()
                .unwrap()
                .contains(&json!("application/strategic-merge-patch+json"))
        );
    }
}
