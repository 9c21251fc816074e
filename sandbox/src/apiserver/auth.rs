//! Authentication: one bearer token, the sandbox's, for every request but the health
//! checks.

use http::{HeaderMap, header};

/// Paths anyone may read, as the real API server's health endpoints.
pub(super) fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/livez")
}

/// Whether the request carries `Authorization: Bearer <token>`.
pub(super) fn authenticated(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), token.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_authenticates() {
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, value.parse().unwrap());
            h
        };
        assert!(authenticated(&with("Bearer s3cret"), "s3cret"));
        assert!(!authenticated(&with("Bearer s3cre"), "s3cret"));
        assert!(!authenticated(&with("Basic s3cret"), "s3cret"));
        assert!(!authenticated(&HeaderMap::new(), "s3cret"));
        assert!(is_public("/healthz") && !is_public("/api"));
    }
}
