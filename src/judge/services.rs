//! Services: type, ports, selector and cluster IP as a lesson expects them; their endpoints.

use super::{Verdict, fmt_labels, pods};
use crate::checks::ServiceSpec;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The service exists with the expected type, port, target port and selector, and has a
/// cluster IP; `load_balancer` is its external address, when it has one.
pub(crate) fn service(svc: Option<&Service>, spec: &ServiceSpec) -> Verdict {
    let Some(svc) = svc else {
        return Verdict::fail(format!(
            "service {} does not exist — apply it (`hk8s lesson 2`)",
            spec.name
        ));
    };
    let s = svc.spec.clone().unwrap_or_default();
    let type_ = s.type_.clone().unwrap_or_else(|| "ClusterIP".into());
    let selector = s.selector.clone().unwrap_or_default();
    let ip = s.cluster_ip.clone().unwrap_or_default();
    let mut problems = Vec::new();
    if type_ != spec.type_ {
        problems.push(format!("type is {type_}, expected {}", spec.type_));
    }
    problems.extend(port_problem(&s.ports.unwrap_or_default(), spec));
    if selector != spec.selector {
        problems.push(format!(
            "selector is {}, expected {}: it would pick the wrong pods (or none)",
            fmt_labels(&selector),
            fmt_labels(&spec.selector)
        ));
    }
    if ip.is_empty() {
        problems.push("no cluster IP assigned yet".into());
    }
    if !problems.is_empty() {
        return Verdict::fail(problems.join("; "));
    }
    let external = if spec.type_ == "LoadBalancer" {
        match load_balancer_url(svc) {
            Some(url) => format!(", external {url}"),
            None => ", external address <pending> (hk8s open will port-forward)".into(),
        }
    } else {
        String::new()
    };
    Verdict::pass(format!(
        "{type_} {ip}:{} -> {} selecting {}{external}",
        spec.port,
        spec.target_port,
        fmt_labels(&selector)
    ))
}

fn port_problem(
    ports: &[k8s_openapi::api::core::v1::ServicePort],
    spec: &ServiceSpec,
) -> Option<String> {
    let Some(p) = ports.iter().find(|p| p.port == spec.port) else {
        let exposed: Vec<String> = ports.iter().map(|p| p.port.to_string()).collect();
        return Some(match exposed.as_slice() {
            [] => format!("no port {}: it exposes none", spec.port),
            _ => format!("no port {}: it exposes {}", spec.port, exposed.join(", ")),
        });
    };
    let target_port = match &p.target_port {
        None => p.port.to_string(),
        Some(IntOrString::Int(i)) => i.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
    };
    (target_port != spec.target_port.to_string()).then(|| {
        format!(
            "port {} forwards to targetPort {target_port}, but the pods listen on {}",
            spec.port, spec.target_port
        )
    })
}

/// `http://<ingress>:<port>/` when the service has a LoadBalancer ingress.
pub(crate) fn load_balancer_url(svc: &Service) -> Option<String> {
    let ingress = svc
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?
        .clone();
    let host = ingress.ip.or(ingress.hostname)?;
    let port = svc.spec.as_ref()?.ports.as_ref()?.first()?;
    // A port the load balancer reports it could not open (the sandbox without privileges
    // for port 80) answers on the node port of the same address.
    let refused = ingress
        .ports
        .iter()
        .flatten()
        .any(|p| p.port == port.port && p.error.is_some());
    let port = match (refused, port.node_port) {
        (true, Some(node_port)) => node_port,
        _ => port.port,
    };
    Some(format!("http://{host}:{port}/"))
}

/// The service's selector as a label selector string, e.g. `app=redis,tier=backend`.
pub(crate) fn selector(svc: &Service) -> String {
    let selector = svc
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Ready pods back the service: `pods` are those its selector `selector` matches.
pub(crate) fn has_endpoints(selector: &str, pods: &[Pod]) -> Verdict {
    let ready = pods.iter().filter(|p| pods::ready(p)).count();
    Verdict::new(
        ready > 0,
        format!(
            "selector {selector} matches {ready} ready pod(s) of {}",
            pods.len()
        ),
    )
}

/// Each of the named services has a cluster IP (`None` for a missing service).
pub(crate) fn cluster_ips<'a>(
    services: impl IntoIterator<Item = (&'a str, Option<&'a Service>)>,
) -> Verdict {
    let missing: Vec<&str> = services
        .into_iter()
        .filter(|(_, svc)| {
            svc.and_then(|s| s.spec.as_ref())
                .and_then(|s| s.cluster_ip.as_deref())
                .is_none_or(str::is_empty)
        })
        .map(|(name, _)| name)
        .collect();
    if missing.is_empty() {
        Verdict::pass("each has a cluster IP")
    } else {
        Verdict::fail(format!("no cluster IP yet: {}", missing.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::{PodFixture, object};
    use serde_json::json;
    use std::collections::BTreeMap;

    fn spec(type_: &str) -> ServiceSpec {
        ServiceSpec {
            name: "frontend".into(),
            type_: type_.into(),
            port: 80,
            target_port: 8080,
            selector: BTreeMap::from([
                ("app".into(), "hello-k8s".into()),
                ("tier".into(), "frontend".into()),
            ]),
        }
    }

    fn frontend(target_port: i32, tier: &str, ip: &str, ingress: Option<&str>) -> Service {
        let mut svc = json!({
            "metadata": {"name": "frontend"},
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": ip,
                "ports": [{"port": 80, "targetPort": target_port}],
                "selector": {"app": "hello-k8s", "tier": tier}
            }
        });
        if let Some(ingress) = ingress {
            svc["status"] = json!({"loadBalancer": {"ingress": [{"ip": ingress}]}});
        }
        object(svc)
    }

    #[test]
    fn a_matching_service_passes_with_its_address() {
        let svc = frontend(8080, "frontend", "127.96.0.3", Some("127.240.0.1"));
        assert_eq!(
            service(Some(&svc), &spec("LoadBalancer")),
            Verdict::pass(
                "LoadBalancer 127.96.0.3:80 -> 8080 selecting app=hello-k8s,tier=frontend, external http://127.240.0.1:80/"
            )
        );
        let pending = frontend(8080, "frontend", "127.96.0.3", None);
        assert!(
            service(Some(&pending), &spec("LoadBalancer"))
                .detail
                .ends_with("external address <pending> (hk8s open will port-forward)")
        );
    }

    #[test]
    fn every_mismatch_is_named() {
        let svc = frontend(5000, "backend", "", None);
        let verdict = service(Some(&svc), &spec("ClusterIP"));
        assert!(!verdict.passed);
        for part in [
            "type is LoadBalancer, expected ClusterIP",
            "port 80 forwards to targetPort 5000, but the pods listen on 8080",
            "selector is app=hello-k8s,tier=backend, expected app=hello-k8s,tier=frontend",
            "no cluster IP assigned yet",
        ] {
            assert!(verdict.detail.contains(part), "{part}: {}", verdict.detail);
        }
        let mut other_port = spec("LoadBalancer");
        other_port.port = 81;
        let svc = frontend(8080, "frontend", "10.0.0.1", None);
        assert_eq!(
            service(Some(&svc), &other_port).detail,
            "no port 81: it exposes 80"
        );
        assert_eq!(
            service(None, &spec("LoadBalancer")),
            Verdict::fail("service frontend does not exist — apply it (`hk8s lesson 2`)")
        );
    }

    #[test]
    fn endpoints_need_a_ready_pod() {
        let svc = frontend(8080, "frontend", "10.0.0.1", None);
        assert_eq!(selector(&svc), "app=hello-k8s,tier=frontend");
        let pods = [PodFixture::running("a").not_ready().build()];
        assert_eq!(
            has_endpoints("app=x", &pods),
            Verdict::fail("selector app=x matches 0 ready pod(s) of 1")
        );
        assert!(has_endpoints("app=x", &[PodFixture::running("b").build()]).passed);
    }

    #[test]
    fn cluster_ips_name_the_services_without_one() {
        let with = frontend(8080, "frontend", "10.0.0.1", None);
        let without = frontend(8080, "frontend", "", None);
        assert_eq!(
            cluster_ips([("frontend", Some(&with))]),
            Verdict::pass("each has a cluster IP")
        );
        assert_eq!(
            cluster_ips([
                ("api", Some(&without)),
                ("redis", None),
                ("frontend", Some(&with))
            ]),
            Verdict::fail("no cluster IP yet: api, redis")
        );
    }
}
