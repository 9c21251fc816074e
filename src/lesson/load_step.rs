//! The lessons' load step: many clients request the frontend at once, siege-style, and the
//! report shows availability and response times. (Stand-in until `hk8s::load` lands.)

use crate::cluster::Target;
use crate::frontend;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// What a load run measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadSummary {
    pub transactions: u64,
    pub failed: u64,
    pub availability_percent: f64,
    pub elapsed_secs: f64,
    pub rate_per_sec: f64,
    pub longest_secs: f64,
    pub shortest_secs: f64,
}

impl LoadSummary {
    /// Siege-like lines.
    pub fn render(&self) -> String {
        format!(
            "Transactions:            {} hits\nAvailability:            {:.2} %\nElapsed time:            {:.2} secs\nTransaction rate:        {:.2} trans/sec\nSuccessful transactions: {}\nFailed transactions:     {}\nLongest transaction:     {:.2}\nShortest transaction:    {:.2}",
            self.transactions,
            self.availability_percent,
            self.elapsed_secs,
            self.rate_per_sec,
            self.transactions,
            self.failed,
            self.longest_secs,
            self.shortest_secs
        )
    }
}

/// Runs `concurrency` clients against the frontend for `seconds` or until `stop` is set.
pub async fn run(
    target: &Target,
    concurrency: u32,
    seconds: u64,
    stop: Arc<AtomicBool>,
) -> LoadSummary {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let stats = Arc::new(Mutex::new((0u64, 0u64, 0f64, f64::MAX)));
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let target = target.clone();
        let stats = stats.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let remaining = deadline
                    .saturating_duration_since(t)
                    .max(Duration::from_millis(1));
                let outcome = tokio::time::timeout(remaining, frontend::page(&target)).await;
                let secs = t.elapsed().as_secs_f64();
                let mut s = stats.lock().await;
                match outcome {
                    Ok(Ok(_)) => {
                        s.0 += 1;
                        s.2 = s.2.max(secs);
                        s.3 = s.3.min(secs);
                    }
                    Ok(Err(_)) => s.1 += 1,
                    Err(_) => {}
                }
                drop(s);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let (ok, failed, longest, shortest) = *stats.lock().await;
    let elapsed = started.elapsed().as_secs_f64();
    let total = ok + failed;
    LoadSummary {
        transactions: ok,
        failed,
        availability_percent: if total == 0 {
            0.0
        } else {
            ok as f64 * 100.0 / total as f64
        },
        elapsed_secs: elapsed,
        rate_per_sec: if elapsed > 0.0 {
            ok as f64 / elapsed
        } else {
            0.0
        },
        longest_secs: longest,
        shortest_secs: if shortest == f64::MAX { 0.0 } else { shortest },
    }
}
