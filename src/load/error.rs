//! Typed errors of the load generator: each names the input, what was expected and the fix.

use std::time::Duration;

/// Why a load run could not start (or stopped abnormally).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Neither a duration nor a repetition count was given, so the run would never end.
    #[error(
        "no end given for the load run: pass a duration with -t (e.g. -t 10S, 1M, 1H) \
         or a repetition count per user with -r (e.g. -r 100)"
    )]
    NoEnd,

    /// Concurrency outside 1..=MAX_CONCURRENCY.
    #[error(
        "concurrency {given} is out of range: use -c between 1 and {max} simulated users \
         (the cap keeps a tutorial load test from exhausting the machine)"
    )]
    Concurrency { given: u32, max: u32 },

    /// A repetition count of zero would send nothing.
    #[error("repetitions must be at least 1 (got -r 0)")]
    ZeroRepetitions,

    /// A zero duration would send nothing.
    #[error("duration must be longer than zero (got -t {given:?})")]
    ZeroDuration { given: Duration },

    /// The -t value is not in siege's NUMBER+UNIT format.
    #[error(
        "invalid duration {given:?}: expected a number followed by S, M or H, e.g. 10S, 1M, 1H"
    )]
    InvalidDuration { given: String },

    /// A numeric option (delay, rate, timeout) is negative, zero where not allowed, or not finite.
    #[error("invalid {option} {given}: {expected}")]
    InvalidNumber {
        option: &'static str,
        given: f64,
        expected: &'static str,
    },

    /// The URL could not be parsed or lacks a host.
    #[error("invalid URL {url:?}: {reason}; expected e.g. http://127.0.0.1:8080/")]
    InvalidUrl { url: String, reason: String },

    /// Only plain HTTP is spoken.
    #[error(
        "unsupported scheme {scheme:?} in {url:?}: hk8s load speaks plain http:// only \
         (point it at the service's HTTP port)"
    )]
    UnsupportedScheme { url: String, scheme: String },

    /// A method, header or content type is not valid HTTP.
    #[error("invalid {what} {given:?}: {reason}")]
    InvalidHttp {
        what: &'static str,
        given: String,
        reason: String,
    },

    /// The URL's host name did not resolve to an address.
    #[error("cannot resolve host {host:?}: {reason}; check the URL or use an IP address")]
    Resolve { host: String, reason: String },

    /// A simulated user's task panicked or was aborted.
    #[error("a simulated user stopped abnormally: {0}")]
    Worker(String),
}
