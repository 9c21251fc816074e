//! CPU and memory usage of running containers from /proc, sampled every second; read by the
//! HPA controller and reported as pod metrics.

use crate::kubelet::cgroups::{TICKS_PER_SECOND, cpu_ticks, rss_bytes};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WINDOW: usize = 6;

#[derive(Debug)]
struct Sample {
    pid: u32,
    history: VecDeque<(Instant, u64)>,
    cpu_millis: u64,
    memory_bytes: u64,
}

/// Usage of one container, as metrics.k8s.io reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUsage {
    pub name: String,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

type Key = (String, String);

/// Usage of one pod, with what identifies it.
#[derive(Debug, Clone)]
pub struct PodUsage {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub containers: Vec<ContainerUsage>,
}

/// Live usage of every tracked container, keyed by namespace and pod name.
#[derive(Debug, Clone, Default)]
pub struct Metrics(
    Arc<Mutex<HashMap<Key, HashMap<String, Sample>>>>,
    Arc<Mutex<HashMap<Key, String>>>,
);

impl Metrics {
    /// Starts sampling a container's process.
    pub fn track(&self, namespace: &str, pod: &str, uid: &str, container: &str, pid: u32) {
        self.1
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((namespace.into(), pod.into()), uid.into());
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((namespace.into(), pod.into()))
            .or_default()
            .insert(
                container.into(),
                Sample {
                    pid,
                    history: VecDeque::new(),
                    cpu_millis: 0,
                    memory_bytes: 0,
                },
            );
    }

    /// Stops sampling a container that ended.
    pub fn untrack(&self, namespace: &str, pod: &str, container: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (namespace.to_string(), pod.to_string());
        if let Some(containers) = map.get_mut(&key) {
            containers.remove(container);
            if containers.is_empty() {
                map.remove(&key);
            }
        }
    }

    /// Takes one sample of every tracked process.
    pub fn sample(&self) {
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for sample in map.values_mut().flat_map(|c| c.values_mut()) {
            let Some(ticks) = cpu_ticks(sample.pid) else {
                continue;
            };
            sample.memory_bytes = rss_bytes(sample.pid).unwrap_or(0);
            sample.history.push_back((now, ticks));
            while sample.history.len() > WINDOW {
                sample.history.pop_front();
            }
            if let (Some((t0, c0)), Some((t1, c1))) =
                (sample.history.front(), sample.history.back())
            {
                let elapsed = t1.duration_since(*t0).as_millis() as u64;
                if let Some(rate) =
                    (c1.saturating_sub(*c0) * 1000 * 1000 / TICKS_PER_SECOND).checked_div(elapsed)
                {
                    sample.cpu_millis = rate;
                }
            }
        }
    }

    /// Per-container usage of a pod, `None` when none of its containers runs.
    pub fn pod_usage(&self, namespace: &str, pod: &str) -> Option<Vec<ContainerUsage>> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let containers = map.get(&(namespace.to_string(), pod.to_string()))?;
        Some(
            containers
                .iter()
                .filter(|(_, s)| s.history.len() >= 2)
                .map(|(name, s)| ContainerUsage {
                    name: name.clone(),
                    cpu_millis: s.cpu_millis,
                    memory_bytes: s.memory_bytes,
                })
                .collect(),
        )
        .filter(|v: &Vec<ContainerUsage>| !v.is_empty())
    }

    /// Usage of every pod with at least one measured container.
    pub fn all_pods(&self) -> Vec<PodUsage> {
        let keys: Vec<Key> = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        let uids = self.1.lock().unwrap_or_else(|e| e.into_inner()).clone();
        keys.into_iter()
            .filter_map(|(ns, pod)| {
                let containers = self.pod_usage(&ns, &pod)?;
                let uid = uids
                    .get(&(ns.clone(), pod.clone()))
                    .cloned()
                    .unwrap_or_default();
                Some(PodUsage {
                    namespace: ns,
                    pod,
                    uid,
                    containers,
                })
            })
            .collect()
    }

    /// Samples every second until the returned task is aborted.
    pub fn spawn_sampler(&self) -> tokio::task::JoinHandle<()> {
        let metrics = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                metrics.sample();
            }
        })
    }
}

/// Keeps `metrics.k8s.io` PodMetrics and NodeMetrics objects current (every 10 s), so
/// `kubectl top pods` and `kubectl top node` work; a PodMetrics is owned by its pod and goes
/// with it.
pub async fn publish(client: kube::Client, metrics: Metrics) {
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
    let pod_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
        "pods",
    );
    let node_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "NodeMetrics"),
        "nodes",
    );
    let params = PatchParams::apply("kubelet").force();
    let mut node_cpu = NodeCpu::default();
    loop {
        let now = jiff::Timestamp::now().to_string();
        let labels = pod_labels(&client).await;
        for usage in metrics.all_pods() {
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &usage.namespace, &pod_ar);
            let containers: Vec<serde_json::Value> = usage
                .containers
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "name": c.name,
                        "usage": { "cpu": format!("{}m", c.cpu_millis), "memory": format!("{}Ki", c.memory_bytes / 1024) }
                    })
                })
                .collect();
            let obj = serde_json::json!({
                "apiVersion": "metrics.k8s.io/v1beta1",
                "kind": "PodMetrics",
                "metadata": {
                    "name": usage.pod,
                    "namespace": usage.namespace,
                    "labels": labels.get(&(usage.namespace.clone(), usage.pod.clone())),
                    "ownerReferences": [{ "apiVersion": "v1", "kind": "Pod", "name": usage.pod, "uid": usage.uid }],
                },
                "timestamp": now,
                "window": "10s",
                "containers": containers,
            });
            if let Err(e) = api.patch(&usage.pod, &params, &Patch::Apply(&obj)).await {
                tracing::debug!(pod = %usage.pod, error = %e, "pod metrics not written");
            }
        }
        if let Some((cpu_millis, memory_bytes)) = node_cpu.sample() {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &node_ar);
            let obj = serde_json::json!({
                "apiVersion": "metrics.k8s.io/v1beta1",
                "kind": "NodeMetrics",
                "metadata": { "name": crate::apimachinery::network::NODE_NAME },
                "timestamp": now,
                "window": "10s",
                "usage": { "cpu": format!("{cpu_millis}m"), "memory": format!("{}Ki", memory_bytes / 1024) },
            });
            if let Err(e) = api
                .patch(
                    crate::apimachinery::network::NODE_NAME,
                    &params,
                    &Patch::Apply(&obj),
                )
                .await
            {
                tracing::debug!(error = %e, "node metrics not written");
            }
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

/// Every pod's labels by namespace and name: PodMetrics carry them, as metrics-server's
/// do, so `kubectl top pod -l app=x` selects.
async fn pod_labels(
    client: &kube::Client,
) -> HashMap<(String, String), std::collections::BTreeMap<String, String>> {
    use kube::ResourceExt;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::all(client.clone());
    let list = pods
        .list_metadata(&kube::api::ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    list.into_iter()
        .map(|p| {
            let key = (p.namespace().unwrap_or_default(), p.name_any());
            (key, p.labels().clone())
        })
        .collect()
}

/// Whole-machine CPU (from /proc/stat) and memory (MemTotal - MemAvailable) usage.
#[derive(Debug, Default)]
struct NodeCpu {
    last: Option<(Instant, u64)>,
}

impl NodeCpu {
    fn sample(&mut self) -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let fields: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal
        let busy: u64 = fields
            .iter()
            .take(8)
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, v)| v)
            .sum();
        let now = Instant::now();
        let cpu = match self.last.replace((now, busy)) {
            Some((then, before)) => {
                let ms = now.duration_since(then).as_millis() as u64;
                (busy.saturating_sub(before) * 1000 * 1000 / TICKS_PER_SECOND).checked_div(ms)?
            }
            None => return None,
        };
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let kib = |key: &str| -> Option<u64> {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        };
        let used = kib("MemTotal:")?.saturating_sub(kib("MemAvailable:")?) * 1024;
        Some((cpu, used))
    }
}
