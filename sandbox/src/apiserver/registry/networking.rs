//! networking.k8s.io/v1 admission: the default IngressClass (as the `DefaultIngressClass`
//! admission plugin), NetworkPolicy defaults, and the validation of Ingresses and
//! NetworkPolicies behind their 422 answers.

use crate::apimachinery::errors::Cause;
use crate::apimachinery::names::{dns_subdomain_errors, is_dns_label};
use serde_json::{Value, json};

/// The annotation that marks the cluster's default IngressClass.
pub(crate) const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The name of the default IngressClass among `classes`, as the admission plugin picks it.
pub(crate) fn default_class(classes: &[std::sync::Arc<Value>]) -> Option<String> {
    classes
        .iter()
        .filter(|c| c["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true")
        .filter_map(|c| c["metadata"]["name"].as_str().map(String::from))
        .next()
}

/// A new Ingress naming no class (by field or by the old annotation) gets the default one.
pub(crate) fn default_ingress(obj: &mut Value, default_class: Option<&str>) {
    let named = obj["spec"]["ingressClassName"].is_string()
        || obj["metadata"]["annotations"]["kubernetes.io/ingress.class"].is_string();
    if let (false, Some(class)) = (named, default_class)
        && obj["spec"].is_object()
    {
        obj["spec"]["ingressClassName"] = json!(class);
    }
}

/// `policyTypes` defaults to Ingress, plus Egress when egress rules are given; ports are TCP.
pub(crate) fn default_network_policy(obj: &mut Value) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        return;
    }
    if spec["podSelector"].is_null() {
        spec["podSelector"] = json!({});
    }
    if spec["policyTypes"].as_array().is_none_or(Vec::is_empty) {
        let mut types = vec![json!("Ingress")];
        if spec["egress"].as_array().is_some_and(|e| !e.is_empty()) {
            types.push(json!("Egress"));
        }
        spec["policyTypes"] = json!(types);
    }
    for dir in ["ingress", "egress"] {
        for rule in spec[dir].as_array_mut().into_iter().flatten() {
            for port in rule["ports"].as_array_mut().into_iter().flatten() {
                if port["protocol"].is_null() {
                    port["protocol"] = json!("TCP");
                }
            }
        }
    }
}

fn check_backend(b: &Value, field: &str, causes: &mut Vec<Cause>) {
    let svc = &b["service"];
    match (svc.is_object(), b["resource"].is_object()) {
        (true, true) => causes.push(Cause::invalid(
            field,
            "\"\"",
            "cannot set both resource and service backends",
        )),
        (false, false) => causes.push(Cause::required(format!("{field}.service"))),
        (false, true) => {}
        (true, false) => {
            let name = svc["name"].as_str().unwrap_or_default();
            if name.is_empty() {
                causes.push(Cause::required(format!("{field}.service.name")));
            }
            let port = &svc["port"];
            match (port["name"].as_str(), port["number"].as_i64()) {
                (Some(_), Some(_)) => causes.push(Cause::invalid(
                    format!("{field}.service.port"),
                    port,
                    "cannot set both port name & port number",
                )),
                (None, None) => causes.push(Cause::invalid(
                    format!("{field}.service.port"),
                    port,
                    "port name or number is required",
                )),
                (Some(n), None) if !is_dns_label(n) => causes.push(Cause::invalid(
                    format!("{field}.service.port.name"),
                    format!("\"{n}\""),
                    "must contain only alphanumeric characters or '-'",
                )),
                (None, Some(n)) if !(1..=65535).contains(&n) => causes.push(Cause::invalid(
                    format!("{field}.service.port.number"),
                    n,
                    "must be between 1 and 65535, inclusive",
                )),
                _ => {}
            }
        }
    }
}

fn check_host(host: &str, field: &str, causes: &mut Vec<Cause>) {
    if host.parse::<std::net::IpAddr>().is_ok() {
        causes.push(Cause::invalid(
            field,
            format!("\"{host}\""),
            "must be a DNS name, not an IP address",
        ));
        return;
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    for m in dns_subdomain_errors(name) {
        causes.push(Cause::invalid(field, format!("\"{host}\""), &m));
    }
}

fn check_path(p: &Value, field: &str, causes: &mut Vec<Cause>) {
    let path = p["path"].as_str().unwrap_or_default();
    match p["pathType"].as_str() {
        None | Some("") => causes.push(Cause {
            reason: "FieldValueRequired",
            field: format!("{field}.pathType"),
            message: "Required value: pathType must be specified".into(),
        }),
        Some("Exact" | "Prefix") if !path.starts_with('/') => causes.push(Cause::invalid(
            format!("{field}.path"),
            format!("\"{path}\""),
            "must be an absolute path",
        )),
        Some("Exact" | "Prefix") => {}
        Some("ImplementationSpecific") => {}
        Some(other) => causes.push(Cause::unsupported(
            format!("{field}.pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    check_backend(&p["backend"], &format!("{field}.backend"), causes);
}

/// `ValidateIngressSpec`: a default backend or rules; hosts are DNS names (a leading `*.`
/// allowed); every path has a type, an absolute path for Exact and Prefix, one backend.
pub(crate) fn check_ingress(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let rules = spec["rules"].as_array();
    if rules.is_none_or(Vec::is_empty) && spec["defaultBackend"].is_null() {
        causes.push(Cause::invalid(
            "spec",
            "[]networking.IngressRule(nil)",
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if spec["defaultBackend"].is_object() {
        check_backend(&spec["defaultBackend"], "spec.defaultBackend", causes);
    }
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        if let Some(host) = rule["host"].as_str().filter(|h| !h.is_empty()) {
            check_host(host, &format!("spec.rules[{i}].host"), causes);
        }
        if rule["http"].is_null() {
            continue;
        }
        let paths = rule["http"]["paths"].as_array();
        if paths.is_none_or(Vec::is_empty) {
            causes.push(Cause::required(format!("spec.rules[{i}].http.paths")));
        }
        for (j, p) in paths.into_iter().flatten().enumerate() {
            check_path(p, &format!("spec.rules[{i}].http.paths[{j}]"), causes);
        }
    }
}

/// `ValidateNetworkPolicySpec`'s common checks: policy types, port protocols and ranges.
pub(crate) fn check_network_policy(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    for (i, t) in spec["policyTypes"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let t = t.as_str().unwrap_or_default();
        if t != "Ingress" && t != "Egress" {
            causes.push(Cause::unsupported(
                format!("spec.policyTypes[{i}]"),
                t,
                &["Egress", "Ingress"],
            ));
        }
    }
    for dir in ["ingress", "egress"] {
        for (i, rule) in spec[dir].as_array().into_iter().flatten().enumerate() {
            for (j, port) in rule["ports"].as_array().into_iter().flatten().enumerate() {
                let field = format!("spec.{dir}[{i}].ports[{j}]");
                let proto = port["protocol"].as_str().unwrap_or("TCP");
                if !["TCP", "UDP", "SCTP"].contains(&proto) {
                    causes.push(Cause::unsupported(
                        format!("{field}.protocol"),
                        proto,
                        &["SCTP", "TCP", "UDP"],
                    ));
                }
                if let (Some(end), Some(start)) = (port["endPort"].as_i64(), port["port"].as_i64())
                    && end < start
                {
                    causes.push(Cause::invalid(
                        format!("{field}.endPort"),
                        end,
                        "must be greater than or equal to `port`",
                    ));
                }
            }
        }
    }
}
