//! Indexed completion mode: each pod holds one completion index (annotation and label
//! `batch.kubernetes.io/job-completion-index`), the Job is done when every index in
//! `0..completions` succeeded, and `status.completedIndexes` lists them as `0-2,4`.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodSpec};
use std::collections::BTreeSet;

/// The annotation and label naming a pod's completion index.
pub(super) const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// Whether the Job runs in `completionMode: Indexed`.
pub(super) fn is_indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

/// The completion index a pod holds, if it is a valid one for `completions`.
pub(super) fn index_of(pod: &Pod, completions: i32) -> Option<i32> {
    let index: i32 = pod
        .metadata
        .annotations
        .as_ref()?
        .get(INDEX_KEY)?
        .parse()
        .ok()?;
    (0..completions).contains(&index).then_some(index)
}

/// Indexes as `status.completedIndexes` writes them: ascending, runs joined as `a-b`.
pub(super) fn format(indexes: &BTreeSet<i32>) -> String {
    let mut runs: Vec<(i32, i32)> = Vec::new();
    for &i in indexes {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => runs.push((i, i)),
        }
    }
    runs.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses indexes written by [`format`], keeping those below `completions`.
pub(super) fn parse(text: &str, completions: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for run in text.split(',').filter(|r| !r.is_empty()) {
        let (a, b) = run.split_once('-').unwrap_or((run, run));
        if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
            out.extend(a.max(0)..=b.min(completions - 1));
        }
    }
    out
}

/// The lowest `n` indexes that neither succeeded nor have a running pod.
pub(super) fn to_create(
    completions: i32,
    succeeded: &BTreeSet<i32>,
    active: &[&Pod],
    n: usize,
) -> Vec<i32> {
    let running: BTreeSet<i32> = active
        .iter()
        .filter_map(|p| index_of(p, completions))
        .collect();
    (0..completions)
        .filter(|i| !succeeded.contains(i) && !running.contains(i))
        .take(n)
        .collect()
}

/// Gives a pod from the template its index as the Job controller does: the annotation and
/// label, the hostname `<job>-<index>` and `JOB_COMPLETION_INDEX` in every container.
pub(super) fn assign(pod: &mut Pod, job_name: &str, index: i32) {
    let value = index.to_string();
    let meta = &mut pod.metadata;
    meta.generate_name = Some(format!("{job_name}-{index}-"));
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(INDEX_KEY.into(), value.clone());
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(INDEX_KEY.into(), value);
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    if spec.hostname.is_none() {
        spec.hostname = Some(format!("{job_name}-{index}"));
    }
    let containers = spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut());
    for container in containers {
        let env = container.env.get_or_insert_with(Vec::new);
        if env.iter().any(|e| e.name == INDEX_ENV) {
            continue;
        }
        env.push(EnvVar {
            name: INDEX_ENV.into(),
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: format!("metadata.annotations['{INDEX_KEY}']"),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_indexes_are_written_as_runs() {
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<_>>();
        assert_eq!(format(&set(&[0, 1, 2, 4])), "0-2,4");
        assert_eq!(format(&set(&[1, 3, 4, 5, 7, 8])), "1,3-5,7-8");
        assert_eq!(format(&set(&[])), "");
        assert_eq!(parse("1,3-5,7-8", 8), set(&[1, 3, 4, 5, 7]));
        assert_eq!(parse("", 3), set(&[]));
    }
}
