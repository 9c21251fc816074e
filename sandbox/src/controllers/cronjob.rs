//! CronJob controller (Kubernetes' cronjob controller v2): at each time the schedule names,
//! in the CronJob's `timeZone`, creates a Job from its template, named after the scheduled
//! minute; honours `suspend`, `startingDeadlineSeconds` and `concurrencyPolicy` (Allow,
//! Forbid, Replace), tracks active Jobs, and deletes finished ones beyond the history
//! limits. It wakes at the next scheduled time of the controllers' clock, and again
//! whenever a test advances that clock.

use super::util::{controller_ref, controller_uid, is_benign, write_status};
use super::{Error, Shared, api_error};
use crate::apimachinery::events::{EventType, Recorder};
use crate::apimachinery::workqueue;
use crate::apiserver::registry::workloads::parse_schedule;
use crate::shutdown::Shutdown;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams, PropagationPolicy};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The annotation a scheduled Job carries: when it was due, in the CronJob's zone.
const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

struct Ctx {
    shared: Arc<Shared>,
    events: Recorder,
}

/// Reconciles CronJobs on their changes, their Jobs' and the clock's advances.
pub(super) fn run(shared: &Arc<Shared>, shutdown: Shutdown) -> impl Future<Output = ()> + use<> {
    let informers = &shared.informers;
    let controller =
        Controller::for_stream(informers.cron_jobs.subscribe(), informers.cron_jobs.store())
            .owns_stream(informers.jobs.subscribe())
            .reconcile_all_on(shared.config.clock.advances());
    let ctx = Arc::new(Ctx {
        events: Recorder::new(shared.client.clone(), "cronjob-controller"),
        shared: shared.clone(),
    });
    workqueue::run("cronjob", controller, reconcile, ctx, shutdown)
}

fn full_name(cj: &CronJob) -> String {
    format!("{}/{}", cj.namespace().unwrap_or_default(), cj.name_any())
}

/// The finished condition of a Job (`Complete` or `Failed`), if it has one.
fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    ["Complete", "Failed"].into_iter().find(|t| {
        conditions
            .iter()
            .any(|c| c.type_ == *t && c.status == "True")
    })
}

/// The time zone a CronJob's schedule is read in: its `timeZone`, else the machine's.
fn zone(cj: &CronJob) -> TimeZone {
    cj.spec
        .time_zone
        .as_deref()
        .and_then(|tz| TimeZone::get(tz).ok())
        .unwrap_or_else(TimeZone::system)
}

/// The latest scheduled time after `earliest` and at or before `now`, and the next one.
fn schedule_times(
    cj: &CronJob,
    earliest: Timestamp,
    now: Timestamp,
) -> Option<(Option<Timestamp>, Timestamp)> {
    let cron = parse_schedule(&cj.spec.schedule).ok()?;
    let now = Zoned::new(now, zone(cj));
    let next = cron.find_next_occurrence(&now, false).ok()?.timestamp();
    let recent = cron
        .find_previous_occurrence(&now, true)
        .ok()
        .map(|z| z.timestamp())
        .filter(|t| *t > earliest);
    Some((recent, next))
}

async fn reconcile(cj: Arc<CronJob>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let now = ctx.shared.config.clock.now();
    let uid = cj.uid().unwrap_or_default();
    let ns = cj.namespace();
    let mut jobs: Vec<Job> = ctx
        .shared
        .informers
        .jobs
        .store()
        .state()
        .iter()
        .filter(|j| j.namespace() == ns && controller_uid(&***j).as_deref() == Some(uid.as_str()))
        .map(|j| (**j).clone())
        .collect();
    jobs.sort_by_key(|j| j.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let mut status = track(&cj, &jobs, &ctx).await;
    let next = schedule(&cj, &jobs, &mut status, now, &ctx).await?;
    clean_history(&cj, &jobs, &ctx).await;
    let api: Api<CronJob> = Api::namespaced(ctx.shared.client.clone(), &ns.unwrap_or_default());
    write_status(&api, &cj.name_any(), cj.status.as_ref(), &status)
        .await
        .map_err(api_error(format!(
            "writing the status of cron job {}",
            full_name(&cj)
        )))?;
    Ok(match next {
        Some(next) => Action::requeue(
            Duration::try_from(next.duration_since(now)).unwrap_or(Duration::from_secs(1))
                + Duration::from_millis(100),
        ),
        None => Action::await_change(),
    })
}

/// The status's active Jobs as they are now, and the last success.
async fn track(cj: &CronJob, jobs: &[Job], ctx: &Ctx) -> CronJobStatus {
    let mut status = cj.status.clone().unwrap_or_default();
    let was_active: Vec<String> = status
        .active
        .iter()
        .flatten()
        .filter_map(|r| r.uid.clone())
        .collect();
    let reference = Recorder::reference(cj);
    let mut active = Vec::new();
    for job in jobs {
        match finished(job) {
            None => active.push(Recorder::reference(job)),
            Some(condition) => {
                if was_active.contains(&job.uid().unwrap_or_default()) {
                    let message = format!(
                        "Saw completed job: {}, condition: {condition}",
                        job.name_any()
                    );
                    ctx.events
                        .publish(&reference, EventType::Normal, "SawCompletedJob", &message)
                        .await;
                }
                if condition == "Complete" {
                    let done = job.status.as_ref().and_then(|s| s.completion_time.clone());
                    if done.as_ref().map(|t| t.0)
                        > status.last_successful_time.as_ref().map(|t| t.0)
                    {
                        status.last_successful_time = done;
                    }
                }
            }
        }
    }
    status.active = (!active.is_empty()).then_some(active);
    status
}

/// Starts the Job due now, if any, as the concurrency policy allows; returns the next
/// scheduled time.
async fn schedule(
    cj: &CronJob,
    jobs: &[Job],
    status: &mut CronJobStatus,
    now: Timestamp,
    ctx: &Ctx,
) -> Result<Option<Timestamp>, Error> {
    if cj.spec.suspend == Some(true) {
        return Ok(None);
    }
    let created = cj.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
    let mut earliest = status.last_schedule_time.as_ref().map_or(created, |t| t.0);
    if let Some(deadline) = cj.spec.starting_deadline_seconds {
        earliest = earliest.max(now - jiff::SignedDuration::from_secs(deadline));
    }
    let Some((due, next)) = schedule_times(cj, earliest, now) else {
        return Ok(None);
    };
    let Some(due) = due else {
        return Ok(Some(next));
    };
    let active: Vec<&Job> = jobs.iter().filter(|j| finished(j).is_none()).collect();
    let reference = Recorder::reference(cj);
    match cj.spec.concurrency_policy.as_deref() {
        Some("Forbid") if !active.is_empty() => {
            let message = "Not starting job because prior execution is running and concurrency policy is Forbid";
            ctx.events
                .publish(&reference, EventType::Normal, "JobAlreadyActive", message)
                .await;
            return Ok(Some(next));
        }
        Some("Replace") => {
            for job in active {
                delete_job(cj, job, "SuccessfulDelete", ctx).await;
            }
        }
        _ => {}
    }
    let job = job_from_template(cj, due);
    let api: Api<Job> = Api::namespaced(
        ctx.shared.client.clone(),
        &cj.namespace().unwrap_or_default(),
    );
    match api.create(&PostParams::default(), &job).await {
        Ok(created) => {
            let message = format!("Created job {}", created.name_any());
            ctx.events
                .publish(&reference, EventType::Normal, "SuccessfulCreate", &message)
                .await;
            status
                .active
                .get_or_insert_with(Vec::new)
                .push(Recorder::reference(&created));
        }
        Err(e) if is_benign(&e) => {}
        Err(e) => {
            return Err(api_error(format!(
                "creating the job due at {due} for cron job {}",
                full_name(cj)
            ))(e));
        }
    }
    status.last_schedule_time = Some(Time(due));
    Ok(Some(next))
}

async fn delete_job(cj: &CronJob, job: &Job, reason: &str, ctx: &Ctx) {
    let api: Api<Job> = Api::namespaced(
        ctx.shared.client.clone(),
        &job.namespace().unwrap_or_default(),
    );
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    if api.delete(&job.name_any(), &params).await.is_ok() {
        let message = format!("Deleted job {}", job.name_any());
        ctx.events
            .publish(
                &Recorder::reference(cj),
                EventType::Normal,
                reason,
                &message,
            )
            .await;
    }
}

/// Deletes the oldest finished Jobs beyond `successfulJobsHistoryLimit` and
/// `failedJobsHistoryLimit`.
async fn clean_history(cj: &CronJob, jobs: &[Job], ctx: &Ctx) {
    for (condition, limit) in [
        (
            "Complete",
            cj.spec.successful_jobs_history_limit.unwrap_or(3),
        ),
        ("Failed", cj.spec.failed_jobs_history_limit.unwrap_or(1)),
    ] {
        let done: Vec<&Job> = jobs
            .iter()
            .filter(|j| finished(j) == Some(condition))
            .collect();
        let extra = done.len().saturating_sub(limit.max(0) as usize);
        for job in done.into_iter().take(extra) {
            delete_job(cj, job, "SuccessfulDelete", ctx).await;
        }
    }
}

/// The Job due at `due`: `<cronjob>-<minutes since the epoch>`, as Kubernetes names it.
fn job_from_template(cj: &CronJob, due: Timestamp) -> Job {
    let template = cj.spec.job_template.clone();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.into(),
        Zoned::new(due, zone(cj))
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(format!("{}-{}", cj.name_any(), due.as_second() / 60)),
            namespace: cj.namespace(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(cj)]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cron_job(schedule: &str, tz: Option<&str>) -> CronJob {
        serde_json::from_value(json!({"metadata": {"name": "hello"},
            "spec": {"schedule": schedule, "timeZone": tz, "jobTemplate": {"spec": {"template": {}}}}}))
        .unwrap()
    }

    #[test]
    fn the_due_minute_and_the_next_are_found_in_the_cron_jobs_zone() {
        let now: Timestamp = "2026-03-01T10:30:20Z".parse().unwrap();
        let earliest: Timestamp = "2026-03-01T10:29:00Z".parse().unwrap();
        let (due, next) = schedule_times(&cron_job("*/1 * * * *", None), earliest, now).unwrap();
        assert_eq!(due, Some("2026-03-01T10:30:00Z".parse().unwrap()));
        assert_eq!(next, "2026-03-01T10:31:00Z".parse::<Timestamp>().unwrap());
        let (due, _) = schedule_times(&cron_job("*/1 * * * *", None), due.unwrap(), now).unwrap();
        assert_eq!(due, None, "a minute already run is not due again");
        // 09:00 in Tokyo is 00:00 UTC.
        let tokyo = cron_job("0 9 * * *", Some("Asia/Tokyo"));
        let (_, next) = schedule_times(&tokyo, earliest, now).unwrap();
        assert_eq!(next, "2026-03-02T00:00:00Z".parse::<Timestamp>().unwrap());
        let job = job_from_template(&tokyo, next);
        assert_eq!(
            job.metadata.name.unwrap(),
            format!("hello-{}", next.as_second() / 60)
        );
        assert_eq!(
            job.metadata.annotations.unwrap()[SCHEDULED_TIMESTAMP],
            "2026-03-02T09:00:00+09:00"
        );
    }
}
