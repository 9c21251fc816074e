//! The controllers' clock (client-go's `clock.Clock`): the wall clock plus an offset that
//! tests move forward, so a CronJob's next minute arrives without waiting for it.

use futures::Stream;
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The time controllers act on. Clones share one offset.
#[derive(Debug, Clone)]
pub struct Clock {
    offset: Arc<watch::Sender<SignedDuration>>,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            offset: Arc::new(watch::channel(SignedDuration::ZERO).0),
        }
    }
}

impl Clock {
    /// The wall clock plus every advance so far.
    pub fn now(&self) -> Timestamp {
        Timestamp::now() + *self.offset.borrow()
    }

    /// Moves this clock `by` into the future; controllers that wait on time look again.
    pub fn advance(&self, by: Duration) {
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        self.offset.send_modify(|o| *o = o.saturating_add(by));
    }

    /// One item per advance, for controllers to re-check their schedules.
    pub(crate) fn advances(&self) -> impl Stream<Item = ()> + Send + use<> {
        futures::stream::unfold(self.offset.subscribe(), |mut rx| async move {
            rx.changed().await.ok().map(|()| ((), rx))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn advancing_moves_now_and_announces_it() {
        let clock = Clock::default();
        let mut advances = Box::pin(clock.advances());
        let before = clock.now();
        clock.clone().advance(Duration::from_secs(60));
        assert!(clock.now().duration_since(before) >= SignedDuration::from_secs(60));
        assert_eq!(advances.next().await, Some(()));
    }
}
