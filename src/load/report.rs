//! Statistics: what each simulated user records, and the siege-style report they merge into.
//!
//! Definitions follow siege 4 (browser.c, data.c, main.c):
//! - a *transaction* is a response that arrived in full and is neither 408 nor 5xx;
//! - a *failed transaction* is a request that got no usable response: connection refused or
//!   reset, a connection closed before the response was complete, a timeout, or a 408/5xx;
//! - *availability* is `transactions / (transactions + failed) * 100` (0 with no transactions);
//! - *successful transactions* are responses with a status below 400 (or 401/407), so 4xx
//!   other than 408 count as transactions but not as successes;
//! - *response time* is the summed time of every response received (5xx included) divided by
//!   the transactions; *concurrency* is that summed time divided by the elapsed time;
//! - longest, shortest and the percentiles cover every response received (5xx included);
//!   failures have no response time. Data transferred counts response body bytes.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

const MB: f64 = 1024.0 * 1024.0;

/// Why a request failed without a usable response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The TCP connection could not be opened.
    Connect,
    /// The request did not complete within the timeout.
    Timeout,
    /// The connection broke before the response was complete.
    Dropped,
}

/// What one simulated user saw; recorded without locks and merged after the run.
pub(crate) struct UserStats {
    latency_us: Histogram<u64>,
    total_time: Duration,
    longest: Duration,
    shortest: Option<Duration>,
    transactions: u64,
    successful: u64,
    failures: FailureCounts,
    bytes: u64,
    status: Vec<(u16, u64)>,
}

impl UserStats {
    pub(crate) fn new() -> Self {
        Self {
            latency_us: new_histogram(),
            total_time: Duration::ZERO,
            longest: Duration::ZERO,
            shortest: None,
            transactions: 0,
            successful: 0,
            failures: FailureCounts::default(),
            bytes: 0,
            status: Vec::new(),
        }
    }

    /// Records a complete response; returns whether it counts as a transaction.
    pub(crate) fn response(&mut self, status: u16, bytes: u64, time: Duration) -> bool {
        let micros = u64::try_from(time.as_micros()).unwrap_or(u64::MAX).max(1);
        // An auto-resizing histogram only refuses values beyond its u64 range; such a
        // response is still counted everywhere else.
        let _ = self.latency_us.record(micros);
        self.total_time += time;
        self.longest = self.longest.max(time);
        self.shortest = Some(self.shortest.map_or(time, |s| s.min(time)));
        self.bytes += bytes;
        match self.status.iter_mut().find(|(code, _)| *code == status) {
            Some((_, n)) => *n += 1,
            None => self.status.push((status, 1)),
        }
        if status < 400 || status == 401 || status == 407 {
            self.successful += 1;
        }
        if status == 408 || status >= 500 {
            self.failures.server_error += 1;
            false
        } else {
            self.transactions += 1;
            true
        }
    }

    pub(crate) fn failure(&mut self, failure: Failure) {
        match failure {
            Failure::Connect => self.failures.connect += 1,
            Failure::Timeout => self.failures.timeout += 1,
            Failure::Dropped => self.failures.dropped += 1,
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    // Two significant digits (1 % resolution) keep a user's histogram at a few KB even at
    // the concurrency cap; it grows to whatever latency is seen.
    Histogram::new(2).expect("2 significant digits is a valid histogram precision")
}

/// Failed requests by cause; their sum is siege's "Failed transactions".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FailureCounts {
    /// Connections refused, reset or unreachable while connecting.
    pub connect: u64,
    /// Requests that exceeded the timeout.
    pub timeout: u64,
    /// Connections closed or broken before the response was complete.
    pub dropped: u64,
    /// Responses with status 408 or 5xx.
    pub server_error: u64,
}

impl FailureCounts {
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.dropped + self.server_error
    }
}

/// The result of a run: siege's fields (same names as siege's JSON output) plus latency
/// percentiles and breakdowns. Times are in seconds, data in MB (2^20 bytes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Responses received in full that were neither 408 nor 5xx ("hits").
    pub transactions: u64,
    /// `transactions / (transactions + failed_transactions) * 100`.
    pub availability: f64,
    /// Wall-clock seconds from the first request to the last user stopping.
    pub elapsed_time: f64,
    /// Response body megabytes received.
    pub data_transferred: f64,
    /// Summed response time of all responses / transactions, in seconds.
    pub response_time: f64,
    /// Transactions per second of elapsed time.
    pub transaction_rate: f64,
    /// Megabytes per second of elapsed time.
    pub throughput: f64,
    /// Average number of requests in flight: summed response time / elapsed time.
    pub concurrency: f64,
    /// Responses with status < 400 (or 401/407).
    pub successful_transactions: u64,
    /// Requests without a usable response (see [`FailureCounts`]).
    pub failed_transactions: u64,
    /// Slowest response, in seconds.
    pub longest_transaction: f64,
    /// Fastest response, in seconds (0 when none arrived).
    pub shortest_transaction: f64,
    /// Median response time, in seconds (1 % resolution).
    pub response_time_p50: f64,
    /// 90th percentile response time, in seconds.
    pub response_time_p90: f64,
    /// 99th percentile response time, in seconds.
    pub response_time_p99: f64,
    /// Responses by HTTP status code.
    pub status_codes: BTreeMap<u16, u64>,
    /// Failed transactions by cause.
    pub failures: FailureCounts,
    /// Response body bytes received.
    pub bytes: u64,
    /// Simulated users of the run.
    pub users: u32,
    /// True when the run was cancelled (Ctrl-C) before its end: the report covers what
    /// happened until then.
    pub interrupted: bool,
}

impl Report {
    pub(crate) fn merge(
        users: Vec<UserStats>,
        concurrency: u32,
        elapsed: Duration,
        interrupted: bool,
    ) -> Self {
        let mut latency = new_histogram();
        let mut total_time = Duration::ZERO;
        let mut longest = Duration::ZERO;
        let mut shortest: Option<Duration> = None;
        let (mut transactions, mut successful, mut bytes) = (0, 0, 0);
        let mut failures = FailureCounts::default();
        let mut status_codes = BTreeMap::new();
        for user in users {
            latency
                .add(&user.latency_us)
                .expect("auto-resizing histograms always merge");
            total_time += user.total_time;
            longest = longest.max(user.longest);
            shortest = match (shortest, user.shortest) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            transactions += user.transactions;
            successful += user.successful;
            bytes += user.bytes;
            failures.connect += user.failures.connect;
            failures.timeout += user.failures.timeout;
            failures.dropped += user.failures.dropped;
            failures.server_error += user.failures.server_error;
            for (code, n) in user.status {
                *status_codes.entry(code).or_insert(0) += n;
            }
        }
        let secs = elapsed.as_secs_f64();
        let per_elapsed = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        let failed = failures.total();
        let percentile = |q: f64| {
            if latency.is_empty() {
                0.0
            } else {
                latency.value_at_quantile(q) as f64 / 1e6
            }
        };
        Self {
            transactions,
            availability: if transactions == 0 {
                0.0
            } else {
                transactions as f64 / (transactions + failed) as f64 * 100.0
            },
            elapsed_time: secs,
            data_transferred: bytes as f64 / MB,
            response_time: if transactions == 0 {
                0.0
            } else {
                total_time.as_secs_f64() / transactions as f64
            },
            transaction_rate: per_elapsed(transactions as f64),
            throughput: per_elapsed(bytes as f64 / MB),
            concurrency: per_elapsed(total_time.as_secs_f64()),
            successful_transactions: successful,
            failed_transactions: failed,
            longest_transaction: longest.as_secs_f64(),
            shortest_transaction: shortest.unwrap_or_default().as_secs_f64(),
            response_time_p50: percentile(0.50),
            response_time_p90: percentile(0.90),
            response_time_p99: percentile(0.99),
            status_codes,
            failures,
            bytes,
            users: concurrency,
            interrupted,
        }
    }
}

/// Prints the report as siege does (same labels and column layout), then the extras.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Transactions:\t\t{:>12} hits", self.transactions)?;
        writeln!(f, "Availability:\t\t{:>12.2} %", self.availability)?;
        writeln!(f, "Elapsed time:\t\t{:>12.2} secs", self.elapsed_time)?;
        writeln!(f, "Data transferred:\t{:>12.2} MB", self.data_transferred)?;
        writeln!(f, "Response time:\t\t{:>12.2} secs", self.response_time)?;
        writeln!(
            f,
            "Transaction rate:\t{:>12.2} trans/sec",
            self.transaction_rate
        )?;
        writeln!(f, "Throughput:\t\t{:>12.2} MB/sec", self.throughput)?;
        writeln!(f, "Concurrency:\t\t{:>12.2}", self.concurrency)?;
        writeln!(
            f,
            "Successful transactions:{:>12}",
            self.successful_transactions
        )?;
        writeln!(f, "Failed transactions:\t{:>12}", self.failed_transactions)?;
        writeln!(
            f,
            "Longest transaction:\t{:>12.2}",
            self.longest_transaction
        )?;
        writeln!(
            f,
            "Shortest transaction:\t{:>12.2}",
            self.shortest_transaction
        )?;
        writeln!(
            f,
            "Response time p50:\t{:>12.2} ms",
            self.response_time_p50 * 1e3
        )?;
        writeln!(
            f,
            "Response time p90:\t{:>12.2} ms",
            self.response_time_p90 * 1e3
        )?;
        writeln!(
            f,
            "Response time p99:\t{:>12.2} ms",
            self.response_time_p99 * 1e3
        )?;
        let codes: Vec<String> = self
            .status_codes
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect();
        let codes = if codes.is_empty() {
            "none".to_owned()
        } else {
            codes.join(", ")
        };
        writeln!(f, "Status codes:\t\t{codes}")?;
        let FailureCounts {
            connect,
            timeout,
            dropped,
            server_error,
        } = self.failures;
        writeln!(
            f,
            "Failures:\t\tconnect {connect}, timeout {timeout}, dropped {dropped}, \
             408/5xx {server_error}"
        )?;
        if self.interrupted {
            writeln!(
                f,
                "Interrupted:\t\tyes (report covers the run until Ctrl-C)"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siege_counting_rules() {
        let mut user = UserStats::new();
        assert!(user.response(200, 100, Duration::from_millis(10)));
        assert!(user.response(404, 10, Duration::from_millis(20)));
        assert!(!user.response(500, 5, Duration::from_millis(30)));
        user.failure(Failure::Dropped);
        let report = Report::merge(
            vec![user, UserStats::new()],
            2,
            Duration::from_secs(1),
            false,
        );
        assert_eq!(report.transactions, 2);
        assert_eq!(report.successful_transactions, 1);
        assert_eq!(report.failed_transactions, 2);
        assert_eq!(report.availability, 50.0);
        assert_eq!(report.bytes, 115);
        assert!((report.response_time - 0.030).abs() < 1e-9);
        assert!((report.concurrency - 0.060).abs() < 1e-9);
        assert_eq!(report.longest_transaction, 0.030);
        assert_eq!(report.shortest_transaction, 0.010);
        assert_eq!(
            report.status_codes,
            BTreeMap::from([(200, 1), (404, 1), (500, 1)])
        );
        let text = report.to_string();
        assert!(
            text.contains("Transactions:\t\t           2 hits"),
            "{text}"
        );
        assert!(text.contains("Availability:\t\t       50.00 %"), "{text}");
    }
}
