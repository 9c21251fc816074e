//! Configuration read from environment variables, with errors that name the variable.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Default for `MAX_MSG_GET`: how many messages a page or list shows.
pub const DEFAULT_MAX_MSG_GET: usize = 10;

/// An environment variable held a value the program cannot use.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: expected {expected}; fix or unset it")]
pub struct EnvError {
    /// The variable's name, e.g. `HKF_PORT`.
    pub name: String,
    /// The value found (lossily decoded when it is not UTF-8).
    pub value: String,
    /// What a valid value looks like.
    pub expected: &'static str,
}

/// Reads variables through a lookup function, so tests can pass a map instead of the process env.
pub struct Env<F: Fn(&str) -> Option<std::ffi::OsString>> {
    lookup: F,
}

impl Env<fn(&str) -> Option<std::ffi::OsString>> {
    /// Reads the process environment.
    pub fn process() -> Self {
        Env {
            lookup: |name| std::env::var_os(name),
        }
    }
}

impl<F: Fn(&str) -> Option<std::ffi::OsString>> Env<F> {
    /// Reads variables through `lookup`.
    pub fn new(lookup: F) -> Self {
        Env { lookup }
    }

    /// The variable as a string; an empty value counts as unset.
    pub fn string(&self, name: &str) -> Result<Option<String>, EnvError> {
        match (self.lookup)(name) {
            None => Ok(None),
            Some(raw) => match raw.into_string() {
                Ok(s) if s.is_empty() => Ok(None),
                Ok(s) => Ok(Some(s)),
                Err(raw) => Err(EnvError {
                    name: name.to_owned(),
                    value: raw.to_string_lossy().into_owned(),
                    expected: "valid UTF-8 text",
                }),
            },
        }
    }

    fn parsed<T: FromStr>(
        &self,
        name: &str,
        expected: &'static str,
        valid: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, EnvError> {
        let Some(s) = self.string(name)? else {
            return Ok(None);
        };
        match s.trim().parse::<T>() {
            Ok(v) if valid(&v) => Ok(Some(v)),
            _ => Err(EnvError {
                name: name.to_owned(),
                value: s,
                expected,
            }),
        }
    }

    /// A TCP port 1..=65535.
    pub fn port(&self, name: &str) -> Result<Option<u16>, EnvError> {
        self.parsed(name, "a TCP port number from 1 to 65535", |p: &u16| *p != 0)
    }

    /// An IP address to listen on.
    pub fn ip(&self, name: &str) -> Result<Option<IpAddr>, EnvError> {
        self.parsed(name, "an IP address such as 0.0.0.0 or 127.0.0.1", |_| true)
    }

    /// A count from 1 to 1000.
    pub fn count(&self, name: &str) -> Result<Option<usize>, EnvError> {
        self.parsed(name, "a whole number from 1 to 1000", |n: &usize| {
            (1..=1000).contains(n)
        })
    }

    /// A boolean: true/false, 1/0, yes/no, on/off (any case).
    pub fn flag(&self, name: &str) -> Result<Option<bool>, EnvError> {
        let Some(s) = self.string(name)? else {
            return Ok(None);
        };
        match s.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(EnvError {
                name: name.to_owned(),
                value: s,
                expected: "true or false",
            }),
        }
    }

    /// Where to reach a peer service. With `GET_HOSTS_FROM=env` the Kubernetes-injected
    /// `<SERVICE>_SERVICE_HOST`/`_PORT` win; otherwise (or when they are absent because the
    /// service was created after the pod) `<host_var>`/`<port_var>` are used, e.g. a DNS name.
    pub fn peer(
        &self,
        service: &str,
        host_var: &str,
        port_var: &str,
        default_host: &str,
        default_port: u16,
    ) -> Result<Peer, EnvError> {
        let from_env = self
            .string("GET_HOSTS_FROM")?
            .is_some_and(|v| v.eq_ignore_ascii_case("env"));
        let host = self
            .string(host_var)?
            .unwrap_or_else(|| default_host.to_owned());
        let port = self.port(port_var)?.unwrap_or(default_port);
        if from_env {
            let svc_host = format!("{service}_SERVICE_HOST");
            let svc_port = format!("{service}_SERVICE_PORT");
            if let Some(h) = self.string(&svc_host)? {
                let p = self.port(&svc_port)?.unwrap_or(port);
                return Ok(Peer {
                    host: h,
                    port: p,
                    source: PeerSource::ServiceEnv,
                });
            }
        }
        Ok(Peer {
            host,
            port,
            source: if from_env {
                PeerSource::FallbackNoServiceEnv
            } else {
                PeerSource::Config
            },
        })
    }

    /// The listen address from `<host_var>` (default 0.0.0.0) and `<port_var>`.
    pub fn listen(
        &self,
        host_var: &str,
        port_var: &str,
        default_port: u16,
    ) -> Result<SocketAddr, EnvError> {
        let ip = self.ip(host_var)?.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let port = self.port(port_var)?.unwrap_or(default_port);
        Ok(SocketAddr::new(ip, port))
    }
}

/// A peer service address (API for the frontend, Redis for the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Host name or IP.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Where the address came from, for the startup log.
    pub source: PeerSource,
}

/// Where a [`Peer`] address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSource {
    /// `<SERVICE>_SERVICE_HOST`/`_PORT` injected by Kubernetes.
    ServiceEnv,
    /// `GET_HOSTS_FROM=env` but the service variables were missing.
    FallbackNoServiceEnv,
    /// Plain host/port variables or defaults.
    Config,
}

impl PeerSource {
    /// Short label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerSource::ServiceEnv => "service-env",
            PeerSource::FallbackNoServiceEnv => "fallback-no-service-env",
            PeerSource::Config => "config",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<std::ffi::OsString>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env::new(move |k| map.get(k).map(Into::into))
    }

    #[test]
    fn bad_port_names_the_variable_and_value() {
        let err = env(&[("HKF_PORT", "abc")])
            .listen("HKF_HOST", "HKF_PORT", 8080)
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("HKF_PORT") && msg.contains("abc"), "{msg}");
        assert!(env(&[("P", "0")]).port("P").is_err());
        assert!(env(&[("P", "70000")]).port("P").is_err());
    }

    #[test]
    fn service_env_wins_only_with_get_hosts_from_env() {
        let vars = [
            ("API_HOST", "api"),
            ("API_SERVICE_HOST", "10.0.0.7"),
            ("API_SERVICE_PORT", "5001"),
        ];
        let p = env(&vars)
            .peer("API", "API_HOST", "API_PORT", "localhost", 5000)
            .unwrap();
        assert_eq!((p.host.as_str(), p.port), ("api", 5000));
        let mut with = vars.to_vec();
        with.push(("GET_HOSTS_FROM", "env"));
        let p = env(&with)
            .peer("API", "API_HOST", "API_PORT", "localhost", 5000)
            .unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.source),
            ("10.0.0.7", 5001, PeerSource::ServiceEnv)
        );
        let p = env(&[("GET_HOSTS_FROM", "env"), ("API_HOST", "api")])
            .peer("API", "API_HOST", "API_PORT", "localhost", 5000)
            .unwrap();
        assert_eq!(
            (p.host.as_str(), p.source),
            ("api", PeerSource::FallbackNoServiceEnv)
        );
    }

    #[test]
    fn flags_and_counts() {
        assert_eq!(env(&[("D", "True")]).flag("D").unwrap(), Some(true));
        assert!(env(&[("D", "maybe")]).flag("D").is_err());
        assert!(env(&[("N", "0")]).count("N").is_err());
        assert_eq!(env(&[("N", "25")]).count("N").unwrap(), Some(25));
    }
}
