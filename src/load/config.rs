//! What a load run does: target, users, how long, pacing; validated before anything is sent.

use super::LoadError;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, header};
use std::time::Duration;

/// Most simulated users one run may start; each holds one TCP connection (and one file
/// descriptor), so the cap keeps a tutorial run from exhausting the machine.
pub const MAX_CONCURRENCY: u32 = 1_000;

/// Simulated users when -c is not given (siege's default).
pub const DEFAULT_CONCURRENCY: u32 = 25;

/// Per-request limit when none is given (siege's default socket timeout).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One load run. Build with [`LoadConfig::new`] and struct update syntax:
/// `LoadConfig { concurrency: 50, duration: Some(d), ..LoadConfig::new(url) }`.
///
/// The run ends at `duration` or after `repetitions` per user, whichever comes first; at
/// least one of them is required, so no run is unbounded.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The only URL requested (`http://host[:port]/path?query`). Redirects are not followed.
    pub url: String,
    /// Simulated users, each with its own keep-alive connection (1..=[`MAX_CONCURRENCY`]).
    pub concurrency: u32,
    /// Wall-clock length of the run (siege `-t`).
    pub duration: Option<Duration>,
    /// Requests per simulated user (siege `-r`); failures count as repetitions too.
    pub repetitions: Option<u64>,
    /// Each user sleeps a uniformly random time in `[0, delay]` after every request
    /// (siege `-d`); the sleep is not counted in any statistic.
    pub delay: Option<Duration>,
    /// Cap on requests started per second, summed over all users.
    pub rate: Option<f64>,
    /// Request method.
    pub method: Method,
    /// Extra request headers (Host, Content-Length and Content-Type are set by the run).
    pub headers: HeaderMap,
    /// Request body, sent with every request.
    pub body: Option<Bytes>,
    /// Content-Type of `body` (default `application/x-www-form-urlencoded` when a body is
    /// given, as siege does).
    pub content_type: Option<String>,
    /// Limit on one request (connect, send, full response); expiry counts as a failure.
    pub timeout: Duration,
}

impl LoadConfig {
    /// A GET of `url` by [`DEFAULT_CONCURRENCY`] users with no end set yet.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            concurrency: DEFAULT_CONCURRENCY,
            duration: None,
            repetitions: None,
            delay: None,
            rate: None,
            method: Method::GET,
            headers: HeaderMap::new(),
            body: None,
            content_type: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Checks every field and returns the first problem, before anything is sent.
    pub fn validate(&self) -> Result<(), LoadError> {
        self.plan().map(|_| ())
    }

    /// The validated, request-ready form of this config.
    pub(crate) fn plan(&self) -> Result<Plan, LoadError> {
        if self.duration.is_none() && self.repetitions.is_none() {
            return Err(LoadError::NoEnd);
        }
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            return Err(LoadError::Concurrency {
                given: self.concurrency,
                max: MAX_CONCURRENCY,
            });
        }
        if self.repetitions == Some(0) {
            return Err(LoadError::ZeroRepetitions);
        }
        if let Some(d) = self.duration
            && d.is_zero()
        {
            return Err(LoadError::ZeroDuration { given: d });
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(LoadError::InvalidNumber {
                option: "rate",
                given: rate,
                expected: "requests per second must be a number above zero",
            });
        }
        if self.timeout.is_zero() {
            return Err(LoadError::InvalidNumber {
                option: "timeout",
                given: 0.0,
                expected: "seconds must be above zero",
            });
        }
        let target = Target::parse(&self.url)?;
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, target.host_header.clone());
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        if let Some(body) = &self.body {
            let content_type = self
                .content_type
                .as_deref()
                .unwrap_or("application/x-www-form-urlencoded");
            let value =
                HeaderValue::from_str(content_type).map_err(|err| LoadError::InvalidHttp {
                    what: "content type",
                    given: content_type.to_owned(),
                    reason: err.to_string(),
                })?;
            headers.insert(header::CONTENT_TYPE, value);
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        Ok(Plan {
            target,
            concurrency: self.concurrency,
            duration: self.duration,
            repetitions: self.repetitions,
            delay: self.delay.filter(|d| !d.is_zero()),
            rate: self.rate,
            method: self.method.clone(),
            headers,
            body: self.body.clone().unwrap_or_default(),
            timeout: self.timeout,
        })
    }
}

/// A validated [`LoadConfig`], shared read-only by all simulated users.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub target: Target,
    pub concurrency: u32,
    pub duration: Option<Duration>,
    pub repetitions: Option<u64>,
    pub delay: Option<Duration>,
    pub rate: Option<f64>,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub timeout: Duration,
}

/// Where requests go: the host to resolve and the request-target to send.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub host_header: HeaderValue,
    pub path: Uri,
}

impl Target {
    fn parse(url: &str) -> Result<Self, LoadError> {
        let invalid = |reason: &str| LoadError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url
            .parse()
            .map_err(|err: http::uri::InvalidUri| invalid(&err.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(LoadError::UnsupportedScheme {
                    url: url.to_owned(),
                    scheme: other.to_owned(),
                });
            }
            None => return Err(invalid("it has no scheme (add http://)")),
        }
        let authority = uri.authority().ok_or_else(|| invalid("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("user info (user@host) is not supported"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid("it has no host"));
        }
        let path = uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .filter(|pq| !pq.is_empty())
            .unwrap_or("/");
        Ok(Self {
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(80),
            host_header: HeaderValue::from_str(authority.as_str())
                .map_err(|err| invalid(&err.to_string()))?,
            path: path
                .parse()
                .map_err(|err: http::uri::InvalidUri| invalid(&err.to_string()))?,
        })
    }
}

/// Parses siege's `-t` format: a number and a unit S, M or H (either case), e.g. `10S`,
/// `1M`, `1H`, `2.5s`. siege's help says the unit is required (siege itself reads a bare
/// number as minutes); a bare number is refused here rather than guessed.
pub fn parse_siege_duration(text: &str) -> Result<Duration, LoadError> {
    let invalid = || LoadError::InvalidDuration {
        given: text.to_owned(),
    };
    let trimmed = text.trim();
    let unit = trimmed.chars().last().ok_or_else(invalid)?;
    let scale = match unit.to_ascii_uppercase() {
        'S' => 1.0,
        'M' => 60.0,
        'H' => 3600.0,
        _ => return Err(invalid()),
    };
    let number: f64 = trimmed[..trimmed.len() - 1]
        .trim()
        .parse()
        .map_err(|_| invalid())?;
    if !number.is_finite() || number < 0.0 {
        return Err(invalid());
    }
    Duration::try_from_secs_f64(number * scale).map_err(|_| invalid())
}

/// Parses a `Name: value` header as given to `-H`.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), LoadError> {
    let invalid = |reason: String| LoadError::InvalidHttp {
        what: "header",
        given: text.to_owned(),
        reason,
    };
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| invalid("expected Name: value".to_owned()))?;
    let name =
        HeaderName::from_bytes(name.trim().as_bytes()).map_err(|e| invalid(e.to_string()))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|e| invalid(e.to_string()))?;
    Ok((name, value))
}

/// Seconds given as a float (for -d, --timeout) turned into a duration, rejecting
/// negative and non-finite values.
pub fn seconds(option: &'static str, value: f64) -> Result<Duration, LoadError> {
    Duration::try_from_secs_f64(value).map_err(|_| LoadError::InvalidNumber {
        option,
        given: value,
        expected: "seconds must be a finite number, zero or more",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siege_durations_parse_with_units() {
        assert_eq!(
            parse_siege_duration("10S").unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(parse_siege_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(
            parse_siege_duration("1H").unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(
            parse_siege_duration("2.5s").unwrap(),
            Duration::from_millis(2500)
        );
        for bad in ["10", "S", "", "-1S", "10X", "abcS"] {
            assert!(parse_siege_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn urls_split_into_host_port_and_path() {
        let t = Target::parse("http://127.0.0.1:8080/a?b=1").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8080));
        assert_eq!(t.path.to_string(), "/a?b=1");
        assert_eq!(t.host_header, "127.0.0.1:8080");
        let t = Target::parse("http://example.test").unwrap();
        assert_eq!((t.port, t.path.to_string().as_str()), (80, "/"));
        assert!(matches!(
            Target::parse("https://x/"),
            Err(LoadError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            Target::parse("x/y"),
            Err(LoadError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn a_run_needs_an_end_and_a_sane_concurrency() {
        let base = LoadConfig::new("http://127.0.0.1:1/");
        assert!(matches!(base.validate(), Err(LoadError::NoEnd)));
        let over = LoadConfig {
            concurrency: MAX_CONCURRENCY + 1,
            repetitions: Some(1),
            ..base.clone()
        };
        assert!(matches!(
            over.validate(),
            Err(LoadError::Concurrency { .. })
        ));
        let ok = LoadConfig {
            repetitions: Some(1),
            ..base
        };
        ok.validate().unwrap();
    }
}
