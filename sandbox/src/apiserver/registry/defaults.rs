//! Defaulting as the API server does it on create and update: the fields a learner sees
//! filled in by `kubectl get -o yaml` (restartPolicy, strategy, clusterIP, nodePorts, ...).

use crate::apimachinery::network::{AddressPlan, NODE_PORT_RANGE};
use crate::apimachinery::resources::Resource;
use base64::Engine;
use rand::Rng;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::Ipv4Addr;

/// The current time as Kubernetes writes it (RFC 3339, seconds).
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A random version-4 UUID.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::rng().random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-{:01x}{:01x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6] & 0x0f,
        b[7],
        8 | (b[8] & 0x3),
        b[8] >> 4,
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

fn set_default(obj: &mut Value, key: &str, v: Value) {
    if obj.is_object() && obj.get(key).is_none_or(Value::is_null) {
        obj[key] = v;
    }
}

/// Defaults of a pod spec, also applied inside workload templates.
pub fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                container(c);
            }
        }
    }
}

fn container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    let image = c["image"].as_str().unwrap_or_default().to_string();
    // As the API server defaults it: Always for `latest` or no tag, unless pinned by digest.
    let last = image.rsplit('/').next().unwrap_or_default();
    let latest = !image.contains('@') && (!last.contains(':') || last.ends_with(":latest"));
    set_default(
        c,
        "imagePullPolicy",
        json!(if latest { "Always" } else { "IfNotPresent" }),
    );
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    set_default(c, "resources", json!({}));
    if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            set_default(p, "protocol", json!("TCP"));
        }
    }
    // Limits without requests: requests default to the limits.
    if let Some(limits) = c["resources"]["limits"].as_object().cloned() {
        let res = &mut c["resources"];
        set_default(res, "requests", json!({}));
        for (k, v) in limits {
            set_default(&mut res["requests"], &k, v);
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let p = &mut c[probe];
        if p.is_object() {
            set_default(p, "timeoutSeconds", json!(1));
            set_default(p, "periodSeconds", json!(10));
            set_default(p, "successThreshold", json!(1));
            set_default(p, "failureThreshold", json!(3));
            if p["httpGet"].is_object() {
                set_default(&mut p["httpGet"], "scheme", json!("HTTP"));
                set_default(&mut p["httpGet"], "path", json!("/"));
            }
        }
    }
}

fn qos_class(spec: &Value) -> &'static str {
    let cs: Vec<&Value> = spec["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let any = cs.iter().any(|c| {
        c["resources"]["requests"]
            .as_object()
            .is_some_and(|m| !m.is_empty())
            || c["resources"]["limits"]
                .as_object()
                .is_some_and(|m| !m.is_empty())
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = cs.iter().all(|c| {
        let l = &c["resources"]["limits"];
        let r = &c["resources"]["requests"];
        ["cpu", "memory"]
            .iter()
            .all(|k| !l[k].is_null() && (r[k].is_null() || r[k] == l[k]))
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn workload(obj: &mut Value, kind: &str) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        return;
    }
    set_default(spec, "replicas", json!(1));
    set_default(spec, "revisionHistoryLimit", json!(10));
    match kind {
        "Deployment" => {
            set_default(spec, "progressDeadlineSeconds", json!(600));
            set_default(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
        }
        "StatefulSet" => {
            set_default(spec, "podManagementPolicy", json!("OrderedReady"));
            set_default(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            set_default(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
            if let Some(tpls) = spec["volumeClaimTemplates"].as_array_mut() {
                for t in tpls {
                    set_default(&mut t["spec"], "volumeMode", json!("Filesystem"));
                    set_default(&mut t["spec"], "storageClassName", json!("default"));
                }
            }
        }
        _ => {}
    }
    pod_spec(&mut spec["template"]["spec"]);
}

/// What allocation needs to know: addresses and node ports already taken.
#[derive(Default)]
pub struct Taken {
    pub cluster_ips: HashSet<String>,
    pub node_ports: HashSet<i64>,
    /// Where cluster IPs come from (the sandbox's address plan).
    pub plan: AddressPlan,
    /// For Ingresses: the IngressClass marked default, if any.
    pub default_ingress_class: Option<String>,
}

fn allocate_cluster_ip(taken: &Taken) -> String {
    let (base, len) = taken.plan.service_cidr();
    let base = u32::from(base);
    let size = 1u32 << (32 - len);
    let mut rng = rand::rng();
    loop {
        let ip = Ipv4Addr::from(base + rng.random_range(10..size - 1)).to_string();
        if !taken.cluster_ips.contains(&ip) {
            return ip;
        }
    }
}

fn allocate_node_port(taken: &Taken, also: &HashSet<i64>) -> i64 {
    let mut rng = rand::rng();
    loop {
        let p = rng.random_range(*NODE_PORT_RANGE.start()..=*NODE_PORT_RANGE.end()) as i64;
        if !taken.node_ports.contains(&p) && !also.contains(&p) {
            return p;
        }
    }
}

/// Service defaults, including cluster IP and node port allocation; `old` keeps what
/// an update must not change.
pub fn service(obj: &mut Value, old: Option<&Value>, taken: &Taken) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        return;
    }
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let ty = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if ty != "ExternalName" {
        let old_ip = old.map(|o| o["spec"]["clusterIP"].clone());
        let ip = match (&spec["clusterIP"], old_ip) {
            (Value::String(s), _) if !s.is_empty() => s.clone(),
            (_, Some(Value::String(o))) if !o.is_empty() => o,
            _ => allocate_cluster_ip(taken),
        };
        spec["clusterIP"] = json!(ip);
        spec["clusterIPs"] = json!([ip]);
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    let wants_node_port = ty == "NodePort" || ty == "LoadBalancer";
    if wants_node_port {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
        if ty == "LoadBalancer" {
            set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
    }
    let old_ports: Vec<Value> = old
        .and_then(|o| o["spec"]["ports"].as_array().cloned())
        .unwrap_or_default();
    let mut used_here = HashSet::new();
    if let Some(ports) = spec["ports"].as_array_mut() {
        for p in ports.iter_mut() {
            set_default(p, "protocol", json!("TCP"));
            let port = p["port"].clone();
            set_default(p, "targetPort", port.clone());
            if wants_node_port && p["nodePort"].is_null() {
                let kept = old_ports
                    .iter()
                    .find(|o| o["port"] == port)
                    .and_then(|o| o["nodePort"].as_i64());
                let np = kept.unwrap_or_else(|| allocate_node_port(taken, &used_here));
                p["nodePort"] = json!(np);
            }
            if let Some(np) = p["nodePort"].as_i64() {
                used_here.insert(np);
            }
            if !wants_node_port && let Some(m) = p.as_object_mut() {
                m.remove("nodePort");
            }
        }
    }
    if !obj["status"].is_object() {
        obj["status"] = json!({"loadBalancer": {}});
    }
}

/// Removes null members: they mean "absent" in stored objects.
pub fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// The status a new object starts with: the strategies' `PrepareForCreate` reset it to the
/// zero value, which JSON shows with the members Go does not omit when empty.
fn initial_status(r: &Resource) -> Option<Value> {
    Some(match (r.group, r.kind) {
        ("apps", "Deployment") | ("batch", "Job" | "CronJob") => json!({}),
        ("apps", "ReplicaSet") | ("", "ReplicationController") => json!({"replicas": 0}),
        ("apps", "StatefulSet") => json!({"replicas": 0, "availableReplicas": 0}),
        ("apps", "DaemonSet") => json!({"currentNumberScheduled": 0, "numberMisscheduled": 0,
                                        "desiredNumberScheduled": 0, "numberReady": 0}),
        ("autoscaling", "HorizontalPodAutoscaler") if r.version == "v1" => {
            json!({"currentReplicas": 0, "desiredReplicas": 0})
        }
        ("autoscaling", "HorizontalPodAutoscaler") => json!({"desiredReplicas": 0}),
        ("policy", "PodDisruptionBudget") => json!({"disruptionsAllowed": 0, "currentHealthy": 0,
                                                   "desiredHealthy": 0, "expectedPods": 0}),
        ("networking.k8s.io", "Ingress") => json!({"loadBalancer": {}}),
        _ => return None,
    })
}

/// Kind-specific defaults on create and update.
pub fn apply(r: &Resource, obj: &mut Value, old: Option<&Value>, taken: &Taken) {
    if old.is_none()
        && let Some(status) = initial_status(r)
    {
        obj["status"] = status;
    }
    kind_defaults(r, obj, old, taken);
    strip_nulls(obj);
}

fn kind_defaults(r: &Resource, obj: &mut Value, old: Option<&Value>, taken: &Taken) {
    match (r.group, r.kind) {
        ("", "Namespace") => {
            let name = obj["metadata"]["name"].clone();
            if !obj["metadata"]["labels"].is_object() {
                obj["metadata"]["labels"] = json!({});
            }
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            set_default(obj, "spec", json!({}));
            set_default(&mut obj["spec"], "finalizers", json!(["kubernetes"]));
            if old.is_none() || obj["status"]["phase"].is_null() {
                obj["status"] = json!({"phase": "Active"});
            }
        }
        ("", "Pod") => {
            pod_spec(&mut obj["spec"]);
            set_default(&mut obj["spec"], "serviceAccountName", json!("default"));
            if old.is_none() {
                let qos = qos_class(&obj["spec"]);
                obj["status"] = json!({"phase": "Pending", "qosClass": qos});
            }
        }
        ("apps", k @ ("Deployment" | "ReplicaSet" | "StatefulSet")) => workload(obj, k),
        ("", "Service") => service(obj, old, taken),
        ("", "PersistentVolumeClaim") => {
            set_default(&mut obj["spec"], "volumeMode", json!("Filesystem"));
            set_default(&mut obj["spec"], "storageClassName", json!("default"));
            if old.is_none() {
                obj["status"] = json!({"phase": "Pending"});
            }
        }
        ("", "PersistentVolume") => {
            set_default(
                &mut obj["spec"],
                "persistentVolumeReclaimPolicy",
                json!("Retain"),
            );
            set_default(&mut obj["spec"], "volumeMode", json!("Filesystem"));
            if old.is_none() && obj["status"]["phase"].is_null() {
                obj["status"] = json!({"phase": "Pending"});
            }
        }
        ("", "Secret") => {
            set_default(obj, "type", json!("Opaque"));
            if let Some(sd) = obj
                .as_object_mut()
                .and_then(|m| m.remove("stringData"))
                .and_then(|v| v.as_object().cloned())
            {
                set_default(obj, "data", json!({}));
                for (k, v) in sd {
                    let s = v.as_str().unwrap_or_default();
                    obj["data"][k] =
                        json!(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()));
                }
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            set_default(&mut obj["spec"], "minReplicas", json!(1));
        }
        ("batch", "Job") => super::workloads::job(obj, old),
        ("batch", "CronJob") => super::workloads::cron_job(obj, old),
        ("apps", "DaemonSet") => super::workloads::daemon_set(obj, old),
        ("", "ReplicationController") => super::workloads::replication_controller(obj, old),
        ("networking.k8s.io", "Ingress") if old.is_none() => {
            super::networking::default_ingress(obj, taken.default_ingress_class.as_deref());
        }
        ("networking.k8s.io", "NetworkPolicy") => super::networking::default_network_policy(obj),
        _ => {}
    }
}

/// Does the change from `old` to `new` touch anything but metadata and status
/// (and so bump `metadata.generation`)?
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
        }
        v
    };
    strip(old) != strip(new)
}
