//! Decoding and validation of incoming objects: typed decoding through k8s-openapi (which
//! also finds unknown fields for `fieldValidation=Strict`), and the checks behind the
//! 422 answers learners meet most (selectors, names, requests above limits, required fields).

use crate::apimachinery::errors::{ApiError, Cause};
use crate::apimachinery::names::{
    LABEL_MSG, dns_label_errors, dns_subdomain_errors, dns1035_errors, is_dns_label, is_label_key,
    is_label_value, path_segment_errors,
};
use crate::apimachinery::quantity;
use crate::apimachinery::resources::Resource;
use crate::apimachinery::selectors::LabelSelector;
use base64::Engine;
use k8s_openapi::api::{
    apps, autoscaling, batch, coordination, core, discovery, networking, policy, rbac, storage,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// What `fieldValidation` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    /// The `fieldValidation` parameter; Warn when absent, as for kubectl.
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        match s {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other:?}; use Ignore, Warn or Strict"
            ))),
        }
    }
}

fn roundtrip<T: DeserializeOwned + Serialize>(v: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

fn typed_roundtrip(r: &Resource, v: &Value) -> Option<Result<Value, String>> {
    Some(match (r.group, r.kind) {
        ("", "Namespace") => roundtrip::<core::v1::Namespace>(v),
        ("", "Node") => roundtrip::<core::v1::Node>(v),
        ("", "Pod") => roundtrip::<core::v1::Pod>(v),
        ("", "Service") => roundtrip::<core::v1::Service>(v),
        ("", "Endpoints") => roundtrip::<core::v1::Endpoints>(v),
        ("", "PersistentVolume") => roundtrip::<core::v1::PersistentVolume>(v),
        ("", "PersistentVolumeClaim") => roundtrip::<core::v1::PersistentVolumeClaim>(v),
        ("", "Event") => roundtrip::<core::v1::Event>(v),
        ("", "ConfigMap") => roundtrip::<core::v1::ConfigMap>(v),
        ("", "Secret") => roundtrip::<core::v1::Secret>(v),
        ("", "ServiceAccount") => roundtrip::<core::v1::ServiceAccount>(v),
        ("apps", "Deployment") => roundtrip::<apps::v1::Deployment>(v),
        ("apps", "ReplicaSet") => roundtrip::<apps::v1::ReplicaSet>(v),
        ("apps", "StatefulSet") => roundtrip::<apps::v1::StatefulSet>(v),
        ("apps", "ControllerRevision") => roundtrip::<apps::v1::ControllerRevision>(v),
        ("autoscaling", "HorizontalPodAutoscaler") if r.version == "v1" => {
            roundtrip::<autoscaling::v1::HorizontalPodAutoscaler>(v)
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            roundtrip::<autoscaling::v2::HorizontalPodAutoscaler>(v)
        }
        ("apps", "DaemonSet") => roundtrip::<apps::v1::DaemonSet>(v),
        ("", "ReplicationController") => roundtrip::<core::v1::ReplicationController>(v),
        ("batch", "Job") => roundtrip::<batch::v1::Job>(v),
        ("batch", "CronJob") => roundtrip::<batch::v1::CronJob>(v),
        ("discovery.k8s.io", "EndpointSlice") => roundtrip::<discovery::v1::EndpointSlice>(v),
        ("storage.k8s.io", "StorageClass") => roundtrip::<storage::v1::StorageClass>(v),
        ("networking.k8s.io", "Ingress") => roundtrip::<networking::v1::Ingress>(v),
        ("networking.k8s.io", "IngressClass") => roundtrip::<networking::v1::IngressClass>(v),
        ("networking.k8s.io", "NetworkPolicy") => roundtrip::<networking::v1::NetworkPolicy>(v),
        ("coordination.k8s.io", "Lease") => roundtrip::<coordination::v1::Lease>(v),
        ("policy", "PodDisruptionBudget") => roundtrip::<policy::v1::PodDisruptionBudget>(v),
        ("rbac.authorization.k8s.io", "Role") => roundtrip::<rbac::v1::Role>(v),
        ("rbac.authorization.k8s.io", "ClusterRole") => roundtrip::<rbac::v1::ClusterRole>(v),
        ("rbac.authorization.k8s.io", "RoleBinding") => roundtrip::<rbac::v1::RoleBinding>(v),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            roundtrip::<rbac::v1::ClusterRoleBinding>(v)
        }
        _ => return None,
    })
}

/// Quantities written as bare numbers (`cpu: 1`) become strings, as the API server reads them.
fn quantities_to_strings(v: &mut Value, parent: &str) {
    match v {
        Value::Object(m) => {
            let quantity_map = matches!(
                parent,
                "limits" | "requests" | "capacity" | "allocatable" | "hard" | "used"
            );
            for (k, child) in m.iter_mut() {
                if quantity_map && child.is_number() {
                    *child = Value::String(child.to_string());
                } else {
                    quantities_to_strings(child, k);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| quantities_to_strings(x, parent)),
        _ => {}
    }
}

fn unknown_fields(input: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(i), Value::Object(k)) => {
            for (key, iv) in i {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => unknown_fields(iv, kv, &p, out),
                    None if iv.is_null() => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(i), Value::Array(k)) => {
            for (idx, (iv, kv)) in i.iter().zip(k).enumerate() {
                unknown_fields(iv, kv, &format!("{path}[{idx}]"), out);
            }
        }
        _ => {}
    }
}

fn ensure(parent: &mut Value, key: &str, default: Value) {
    if let Some(m) = parent.as_object_mut()
        && m.get(key).is_none_or(Value::is_null)
    {
        m.insert(key.to_string(), default);
    }
}

fn each(list: &mut Value, f: impl Fn(&mut Value)) {
    if let Some(items) = list.as_array_mut() {
        items.iter_mut().for_each(f);
    }
}

fn fill_pod_spec(spec: &mut Value) {
    ensure(spec, "containers", json!([]));
    for list in ["containers", "initContainers"] {
        each(&mut spec[list], |c| {
            ensure(c, "name", json!(""));
            each(&mut c["ports"], |p| ensure(p, "containerPort", json!(0)));
            each(&mut c["env"], |e| ensure(e, "name", json!("")));
            each(&mut c["volumeMounts"], |m| {
                ensure(m, "name", json!(""));
                ensure(m, "mountPath", json!(""));
            });
        });
    }
    each(&mut spec["volumes"], |v| ensure(v, "name", json!("")));
}

/// Fields the typed decoding requires get empty values when missing, so that the
/// validation below answers 422 "Required value" with their path, as Kubernetes does,
/// rather than a decoding error.
fn fill_required(r: &Resource, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    match (r.group, r.kind) {
        ("", "Pod") => {
            ensure(obj, "spec", json!({}));
            fill_pod_spec(&mut obj["spec"]);
        }
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            ensure(obj, "spec", json!({}));
            let spec = &mut obj["spec"];
            ensure(spec, "selector", json!({}));
            ensure(spec, "template", json!({}));
            ensure(&mut spec["template"], "spec", json!({}));
            fill_pod_spec(&mut spec["template"]["spec"]);
        }
        ("", "Service") if obj["spec"].is_object() => {
            each(&mut obj["spec"]["ports"], |p| ensure(p, "port", json!(0)));
        }
        ("batch", "Job" | "CronJob") | ("", "ReplicationController") => {
            super::workloads::fill_required(r.kind, obj, fill_pod_spec)
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            ensure(obj, "spec", json!({}));
            let spec = &mut obj["spec"];
            ensure(spec, "maxReplicas", json!(0));
            ensure(spec, "scaleTargetRef", json!({}));
            ensure(&mut spec["scaleTargetRef"], "kind", json!(""));
            ensure(&mut spec["scaleTargetRef"], "name", json!(""));
        }
        _ => {}
    }
}

/// Decodes `obj` as its typed Kubernetes kind: returns the normalized object (unknown
/// fields dropped) and warnings; rejects bad types, and unknown fields when Strict.
pub fn decode(
    r: &Resource,
    mut obj: Value,
    mode: FieldValidation,
) -> Result<(Value, Vec<String>), ApiError> {
    quantities_to_strings(&mut obj, "");
    fill_required(r, &mut obj);
    let cannot = |detail: String| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {detail}",
            r.kind, r.version, r.kind
        ))
    };
    let Some(result) = typed_roundtrip(r, &obj) else {
        return Ok((obj, Vec::new()));
    };
    let known = result.map_err(cannot)?;
    let mut unknown = Vec::new();
    unknown_fields(&obj, &known, "", &mut unknown);
    let messages: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    match mode {
        FieldValidation::Strict if !messages.is_empty() => Err(cannot(format!(
            "strict decoding error: {}",
            messages.join(", ")
        ))),
        FieldValidation::Warn => Ok((known, messages)),
        _ => Ok((known, Vec::new())),
    }
}

// ---- names and labels ----

/// Checks a name the way the API server does for this kind: DNS labels for namespaces,
/// DNS-1035 labels for services, path segments for HPAs and events, DNS subdomains for the rest.
pub fn check_name(r: &Resource, name: &str, causes: &mut Vec<Cause>) {
    let messages = match r.kind {
        _ if r.group == "rbac.authorization.k8s.io" => super::access::path_segment_problem(name)
            .into_iter()
            .collect(),
        "Namespace" => dns_label_errors(name),
        "Service" => dns1035_errors(name),
        "HorizontalPodAutoscaler" | "Event" => path_segment_errors(name),
        _ => dns_subdomain_errors(name),
    };
    for m in messages {
        causes.push(Cause::invalid("metadata.name", format!("\"{name}\""), &m));
    }
}

/// What ConfigMaps and Secrets may hold in total, and annotations on any object.
const MAX_DATA_BYTES: usize = 1024 * 1024;
const MAX_ANNOTATION_BYTES: usize = 256 * 1024;

fn too_long(field: &str, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooLong",
        field: field.into(),
        message: format!("Too long: may not be more than {max} bytes"),
    }
}

/// The size limits the API server enforces: annotations (keys and values) together at most
/// 256 KiB; a ConfigMap's data and binaryData, or a Secret's data, at most 1 MiB.
fn check_sizes(r: &Resource, obj: &Value, causes: &mut Vec<Cause>) {
    let annotations: usize = obj["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if annotations > MAX_ANNOTATION_BYTES {
        causes.push(too_long("metadata.annotations", MAX_ANNOTATION_BYTES));
    }
    let decoded_len = |v: &Value| {
        v.as_str().map_or(0, |s| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_or(s.len(), |b| b.len())
        })
    };
    let total = |key: &str, binary: bool| -> usize {
        obj[key]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, v)| {
                if binary {
                    decoded_len(v)
                } else {
                    v.as_str().map_or(0, str::len)
                }
            })
            .sum()
    };
    match (r.group, r.kind) {
        ("", "ConfigMap") if total("data", false) + total("binaryData", true) > MAX_DATA_BYTES => {
            causes.push(too_long("[]", MAX_DATA_BYTES))
        }
        ("", "Secret") if total("data", true) > MAX_DATA_BYTES => {
            causes.push(too_long("data", MAX_DATA_BYTES))
        }
        _ => {}
    }
}

pub(super) fn check_labels(labels: &Value, field: &str, causes: &mut Vec<Cause>) {
    let Some(m) = labels.as_object() else { return };
    for (k, v) in m {
        if !is_label_key(k) {
            causes.push(Cause::invalid(
                field,
                format!("\"{k}\""),
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            ));
        }
        let s = v.as_str().unwrap_or_default();
        if s.len() > 63 {
            causes.push(Cause::invalid(
                field,
                format!("\"{s}\""),
                "must be no more than 63 characters",
            ));
        } else if !is_label_value(s) {
            causes.push(Cause::invalid(
                field,
                format!("\"{s}\""),
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            ));
        }
    }
}

/// `claims` names the StatefulSet's volumeClaimTemplates, which mounts may use too.
pub(super) fn check_pod_spec(
    spec: &Value,
    field: &str,
    causes: &mut Vec<Cause>,
    template: bool,
    claims: &[&str],
) {
    let containers = spec["containers"].as_array();
    if containers.is_none_or(Vec::is_empty) {
        causes.push(Cause::required(format!("{field}.containers")));
    }
    let mut volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    volumes.extend_from_slice(claims);
    let mut seen = Vec::new();
    for (i, c) in containers.into_iter().flatten().enumerate() {
        let cf = format!("{field}.containers[{i}]");
        check_container_name(c, &cf, &mut seen, causes);
        if c["image"].as_str().is_none_or(|s| s.trim().is_empty()) {
            causes.push(Cause::required(format!("{cf}.image")));
        }
        check_container_ports(c, &cf, causes);
        check_resources(c, &cf, causes);
        check_volume_mounts(c, &cf, &volumes, causes);
        check_env(c, &cf, causes);
        check_probes(c, &cf, causes);
    }
    if template
        && let Some(rp) = spec["restartPolicy"].as_str()
        && rp != "Always"
    {
        causes.push(Cause::unsupported(
            format!("{field}.restartPolicy"),
            rp,
            &["Always"],
        ));
    }
}

/// A container name is required, a DNS label, and unique in the pod.
fn check_container_name<'a>(
    c: &'a Value,
    cf: &str,
    seen: &mut Vec<&'a str>,
    causes: &mut Vec<Cause>,
) {
    match c["name"].as_str() {
        None | Some("") => causes.push(Cause::required(format!("{cf}.name"))),
        Some(n) if !is_dns_label(n) => causes.push(Cause::invalid(
            format!("{cf}.name"),
            format!("\"{n}\""),
            LABEL_MSG,
        )),
        Some(n) if seen.contains(&n) => causes.push(Cause {
            reason: "FieldValueDuplicate",
            field: format!("{cf}.name"),
            message: format!("Duplicate value: \"{n}\""),
        }),
        Some(n) => seen.push(n),
    }
}

fn check_container_ports(c: &Value, cf: &str, causes: &mut Vec<Cause>) {
    for (j, p) in c["ports"].as_array().into_iter().flatten().enumerate() {
        let port = p["containerPort"].as_i64().unwrap_or(0);
        if !(1..=65535).contains(&port) {
            causes.push(Cause::invalid(
                format!("{cf}.ports[{j}].containerPort"),
                port,
                "must be between 1 and 65535, inclusive",
            ));
        }
    }
}

/// Requests may not exceed limits, and every quantity must parse.
fn check_resources(c: &Value, cf: &str, causes: &mut Vec<Cause>) {
    let limits = &c["resources"]["limits"];
    let requests = &c["resources"]["requests"];
    for (res, q) in requests.as_object().into_iter().flatten() {
        let (Some(req), Some(lim)) = (q.as_str(), limits[res].as_str()) else {
            continue;
        };
        if let (Some(rq), Some(lq)) = (quantity::parse(req), quantity::parse(lim))
            && rq > lq + f64::EPSILON * rq.abs()
        {
            causes.push(Cause::invalid(
                format!("{cf}.resources.requests"),
                format!("\"{req}\""),
                &format!("must be less than or equal to {res} limit of {lim}"),
            ));
        }
    }
    for (res, q) in limits
        .as_object()
        .into_iter()
        .flatten()
        .chain(requests.as_object().into_iter().flatten())
    {
        if q.as_str().and_then(quantity::parse).is_none() {
            causes.push(Cause::invalid(
                format!("{cf}.resources[{res}]"),
                q,
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ));
        }
    }
}

/// Each mount names a volume of the pod (or a claim template) and has a path.
fn check_volume_mounts(c: &Value, cf: &str, volumes: &[&str], causes: &mut Vec<Cause>) {
    for (j, m) in c["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let n = m["name"].as_str().unwrap_or_default();
        if n.is_empty() {
            causes.push(Cause::required(format!("{cf}.volumeMounts[{j}].name")));
        } else if !volumes.contains(&n) {
            causes.push(Cause {
                reason: "FieldValueNotFound",
                field: format!("{cf}.volumeMounts[{j}].name"),
                message: format!("Not found: \"{n}\""),
            });
        }
        if m["mountPath"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("{cf}.volumeMounts[{j}].mountPath")));
        }
    }
}

fn check_env(c: &Value, cf: &str, causes: &mut Vec<Cause>) {
    for (j, e) in c["env"].as_array().into_iter().flatten().enumerate() {
        if e["name"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("{cf}.env[{j}].name")));
        }
    }
}

/// A probe must say how to probe.
fn check_probes(c: &Value, cf: &str, causes: &mut Vec<Cause>) {
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let p = &c[probe];
        let handlers = ["httpGet", "tcpSocket", "exec", "grpc"];
        if p.is_object() && handlers.iter().all(|h| p[*h].is_null()) {
            causes.push(Cause::required(format!(
                "{cf}.{probe}: must specify a handler type"
            )));
        }
    }
}

pub(super) fn check_workload(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    if let Some(n) = spec["replicas"].as_i64()
        && n < 0
    {
        causes.push(Cause::invalid(
            "spec.replicas",
            n,
            "must be greater than or equal to 0",
        ));
    }
    let selector = &spec["selector"];
    let template_labels = &spec["template"]["metadata"]["labels"];
    if selector.is_null() {
        causes.push(Cause::required("spec.selector"));
    } else {
        let sel = LabelSelector::from_object(selector);
        if sel.is_empty() {
            causes.push(Cause::required("spec.selector"));
        } else if !sel.matches(template_labels) {
            causes.push(Cause::invalid(
                "spec.template.metadata.labels",
                go_map(template_labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    check_labels(template_labels, "spec.template.metadata.labels", causes);
    let claims: Vec<&str> = spec["volumeClaimTemplates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["metadata"]["name"].as_str())
        .collect();
    check_pod_spec(
        &spec["template"]["spec"],
        "spec.template.spec",
        causes,
        true,
        &claims,
    );
}

pub(super) fn go_map(labels: &Value) -> String {
    let parts: Vec<String> = labels
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect())
        .unwrap_or_default();
    format!("map[string]string{{{}}}", parts.join(", "))
}

fn check_service(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let ty = spec["type"].as_str().unwrap_or("ClusterIP");
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
        causes.push(Cause::unsupported(
            "spec.type",
            ty,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let ports = spec["ports"].as_array();
    if ty != "ExternalName" && ports.is_none_or(Vec::is_empty) && spec["clusterIP"] != "None" {
        causes.push(Cause::required("spec.ports"));
    }
    let ports = ports.cloned().unwrap_or_default();
    for (i, p) in ports.iter().enumerate() {
        let port = p["port"].as_i64().unwrap_or(0);
        if !(1..=65535).contains(&port) {
            causes.push(Cause::invalid(
                format!("spec.ports[{i}].port"),
                port,
                "must be between 1 and 65535, inclusive",
            ));
        }
        if ports.len() > 1 && p["name"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("spec.ports[{i}].name")));
        }
        if let Some(np) = p["nodePort"].as_i64()
            && !crate::apimachinery::network::NODE_PORT_RANGE.contains(&(np as u16))
        {
            causes.push(Cause::invalid(
                format!("spec.ports[{i}].nodePort"),
                np,
                "provided port is not in the valid range. The range of valid ports is 30000-32767",
            ));
        }
    }
}

fn check_pvc(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    if spec["accessModes"].as_array().is_none_or(Vec::is_empty) {
        causes.push(Cause {
            reason: "FieldValueRequired",
            field: "spec.accessModes".into(),
            message: "Required value: at least 1 access mode is required".into(),
        });
    }
    if spec["resources"]["requests"]["storage"].is_null() {
        causes.push(Cause::required("spec.resources[storage]"));
    }
}

fn check_hpa(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let max = spec["maxReplicas"].as_i64().unwrap_or(0);
    let min = spec["minReplicas"].as_i64().unwrap_or(1);
    if max < 1 {
        causes.push(Cause::invalid(
            "spec.maxReplicas",
            max,
            "must be greater than or equal to 1",
        ));
    } else if min > max {
        causes.push(Cause::invalid(
            "spec.maxReplicas",
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    for f in ["kind", "name"] {
        if spec["scaleTargetRef"][f].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("spec.scaleTargetRef.{f}")));
        }
    }
}

/// The checks of a created or updated object; `old` is the stored version on update.
pub fn validate(r: &Resource, obj: &Value, old: Option<&Value>) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired",
            field: "metadata.name".into(),
            message: "Required value: name or generateName is required".into(),
        });
    } else {
        check_name(r, name, &mut causes);
    }
    check_labels(&obj["metadata"]["labels"], "metadata.labels", &mut causes);
    check_sizes(r, obj, &mut causes);
    match (r.group, r.kind) {
        ("", "Pod") => check_pod_spec(&obj["spec"], "spec", &mut causes, false, &[]),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet") => {
            check_workload(obj, &mut causes);
            if let Some(old) = old
                && old["spec"]["selector"] != obj["spec"]["selector"]
            {
                causes.push(Cause::invalid(
                    "spec.selector",
                    obj["spec"]["selector"].to_string(),
                    "field is immutable",
                ));
            }
        }
        ("", "Service") => {
            check_service(obj, &mut causes);
            if let Some(old) = old {
                let (o, n) = (&old["spec"]["clusterIP"], &obj["spec"]["clusterIP"]);
                if !n.is_null() && n != o && n != "" {
                    causes.push(Cause::invalid(
                        "spec.clusterIPs[0]",
                        n.to_string(),
                        "may not change once set",
                    ));
                }
            }
        }
        ("", "PersistentVolumeClaim") => check_pvc(obj, &mut causes),
        ("autoscaling", "HorizontalPodAutoscaler") => check_hpa(obj, &mut causes),
        ("apps", "DaemonSet") => {
            check_workload(obj, &mut causes);
            super::workloads::check_immutable_selector(obj, old, &mut causes);
        }
        ("batch", "Job") => super::workloads::check_job(obj, old, &mut causes),
        ("batch", "CronJob") => super::workloads::check_cron_job(obj, &mut causes),
        ("", "ReplicationController") => super::workloads::check_rc(obj, &mut causes),
        ("rbac.authorization.k8s.io" | "policy", kind) => {
            super::access::validate(kind, obj, old, &mut causes)
        }
        ("networking.k8s.io", "Ingress") => super::networking::check_ingress(obj, &mut causes),
        ("networking.k8s.io", "NetworkPolicy") => {
            super::networking::check_network_policy(obj, &mut causes)
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(r, name, &causes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apimachinery::resources::by_kind;
    use serde_json::json;

    #[test]
    fn missing_required_fields_are_422_with_paths() {
        let r = by_kind("apps/v1", "Deployment").unwrap();
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"image": "i"}]}}}});
        let (obj, _) = decode(r, d, FieldValidation::Strict).unwrap();
        let err = validate(r, &obj, None).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(
            err.message.contains("spec.selector: Required value"),
            "{}",
            err.message
        );
        assert!(
            err.message
                .contains("spec.template.spec.containers[0].name: Required value"),
            "{}",
            err.message
        );
    }

    #[test]
    fn strict_decoding_names_unknown_fields() {
        let r = by_kind("apps/v1", "Deployment").unwrap();
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicass": 2, "selector": {"matchLabels": {"a": "b"}},
                     "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let err = decode(r, d.clone(), FieldValidation::Strict).unwrap_err();
        assert!(
            err.message.contains("unknown field \"spec.replicass\""),
            "{}",
            err.message
        );
        let (_, warnings) = decode(r, d, FieldValidation::Warn).unwrap();
        assert_eq!(
            warnings,
            vec!["unknown field \"spec.replicass\"".to_string()]
        );
    }
}
