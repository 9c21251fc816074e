//! CPU and memory usage of running containers from /proc, sampled every second; read by the
//! HPA controller and reported as pod metrics.

use crate::cgroups::{TICKS_PER_SECOND, cpu_ticks, rss_bytes};
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

/// Live usage of every tracked container, keyed by namespace and pod name.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Mutex<HashMap<Key, HashMap<String, Sample>>>>);

impl Metrics {
    pub fn track(&self, namespace: &str, pod: &str, container: &str, pid: u32) {
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
