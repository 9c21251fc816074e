//! Running a kube-runtime `Controller` the way kube-controller-manager runs its workqueues:
//! each object is reconciled on its own, a failure requeues that object alone with
//! exponential back-off (client-go's `ItemExponentialFailureRateLimiter`), a success forgets
//! its failures, and the controller stops on shutdown once running reconciles finish.

use crate::apimachinery::informers::Kind;
use crate::shutdown::Shutdown;
use futures::StreamExt;
use kube::runtime::Controller;
use kube::runtime::controller::{Action, Error};
use kube::runtime::reflector::ObjectRef;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The first retry's delay; each further failure doubles it.
const BASE_DELAY: Duration = Duration::from_millis(5);
/// The longest delay between retries (client-go allows 1000 s; a sandbox should recover
/// within a learner's patience).
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Consecutive failures per object.
pub(crate) struct Backoff<K: Kind> {
    failures: Mutex<HashMap<ObjectRef<K>, u32>>,
}

impl<K: Kind> Default for Backoff<K> {
    fn default() -> Self {
        Self {
            failures: Mutex::default(),
        }
    }
}

impl<K: Kind> Backoff<K> {
    /// Counts a failure of `key` and says how long to wait before retrying it.
    pub(crate) fn failed(&self, key: &ObjectRef<K>) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.clone()).or_insert(0);
        let delay = BASE_DELAY.saturating_mul(1u32 << (*n).min(20));
        *n += 1;
        delay.min(MAX_DELAY)
    }

    pub(crate) fn forget(&self, key: &ObjectRef<K>) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

/// Runs `controller` until `shutdown`, calling `reconcile` for each object it schedules;
/// `name` labels the logs.
pub(crate) async fn run<K, C, E, F, Fut>(
    name: &'static str,
    controller: Controller<K>,
    reconcile: F,
    ctx: Arc<C>,
    shutdown: Shutdown,
) where
    K: Kind,
    C: Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
    F: Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
{
    let backoff = Arc::new(Backoff::<K>::default());
    let retries = backoff.clone();
    let reconcile = Arc::new(reconcile);
    let reconciler = move |obj: Arc<K>, ctx: Arc<C>| {
        let backoff = backoff.clone();
        let reconcile = reconcile.clone();
        async move {
            let key = ObjectRef::from_obj(&*obj);
            let result = reconcile(obj, ctx).await;
            if result.is_ok() {
                backoff.forget(&key);
            }
            result
        }
    };
    let error_policy = move |obj: Arc<K>, error: &E, _: Arc<C>| {
        let key = ObjectRef::from_obj(&*obj);
        let delay = retries.failed(&key);
        tracing::debug!(controller = name, object = %key, error = %error, ?delay, "reconcile failed; retrying");
        Action::requeue(delay)
    };
    controller
        .graceful_shutdown_on(async move { shutdown.recv().await })
        .run(reconciler, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok(_) | Err(Error::ReconcilerFailed(..)) => {}
                Err(Error::ObjectNotFound(key)) => {
                    tracing::trace!(controller = name, object = %key, "gone before its reconcile")
                }
                Err(e) => tracing::debug!(controller = name, error = %e, "controller error"),
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn failures_back_off_exponentially_per_object_and_a_success_forgets_them() {
        let backoff = Backoff::<Pod>::default();
        let a = ObjectRef::new("a").within("demo");
        let b = ObjectRef::new("b").within("demo");
        let delays: Vec<Duration> = (0..4).map(|_| backoff.failed(&a)).collect();
        assert_eq!(
            delays,
            [5, 10, 20, 40].map(Duration::from_millis),
            "each failure doubles the delay"
        );
        assert_eq!(
            backoff.failed(&b),
            BASE_DELAY,
            "another object is not slowed down"
        );
        for _ in 0..30 {
            backoff.failed(&a);
        }
        assert_eq!(backoff.failed(&a), MAX_DELAY);
        backoff.forget(&a);
        assert_eq!(backoff.failed(&a), BASE_DELAY);
    }
}
