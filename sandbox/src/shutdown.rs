//! Stopping background work: a [`ShutdownSignal`] held by whoever owns a task, and cloneable
//! [`Shutdown`] listeners inside it (as mini-redis does), instead of ad hoc `watch<bool>`
//! channels.

use tokio_util::sync::CancellationToken;

/// The owner's side: [`ShutdownSignal::trigger`] stops every listener, and so does dropping
/// it, so an owner that is dropped or aborted leaves no task running.
#[derive(Debug, Default)]
pub(crate) struct ShutdownSignal(CancellationToken);

impl ShutdownSignal {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A listener for the tasks this owner starts.
    pub(crate) fn listener(&self) -> Shutdown {
        Shutdown(self.0.clone())
    }

    pub(crate) fn trigger(&self) {
        self.0.cancel();
    }

    /// Triggers the shutdown, lets `tasks` finish for up to `grace`, then aborts the rest.
    pub(crate) async fn stop(
        &self,
        tasks: Vec<tokio::task::JoinHandle<()>>,
        grace: std::time::Duration,
    ) {
        self.trigger();
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(grace, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            aborts.iter().for_each(|a| a.abort());
        }
    }
}

impl Drop for ShutdownSignal {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A task's side: whether to stop, and a future that resolves when it should.
#[derive(Debug, Clone)]
pub(crate) struct Shutdown(CancellationToken);

impl Shutdown {
    pub(crate) fn is_shutdown(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Resolves once the owner triggered the shutdown or went away.
    pub(crate) async fn recv(&self) {
        self.0.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn listeners_stop_on_trigger_and_when_the_owner_is_dropped() {
        let signal = ShutdownSignal::new();
        let listener = signal.listener();
        let clone = listener.clone();
        assert!(!listener.is_shutdown());
        signal.trigger();
        tokio::time::timeout(Duration::from_secs(1), clone.recv())
            .await
            .expect("a triggered shutdown resolves recv");
        assert!(listener.is_shutdown());

        let signal = ShutdownSignal::new();
        let listener = signal.listener();
        drop(signal);
        tokio::time::timeout(Duration::from_secs(1), listener.recv())
            .await
            .expect("a dropped owner resolves recv");
    }
}
