//! Object names: the random suffixes Kubernetes generates (`generateName`, ReplicaSet pods,
//! EndpointSlices) and the DNS and label rules names and labels must follow.

use rand::Rng;

/// The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes).
pub(crate) const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Five random characters as `generateName` appends.
pub(crate) fn random_suffix() -> String {
    let mut rng = rand::rng();
    (0..5)
        .map(|_| SAFE_ALPHABET[rng.random_range(0..SAFE_ALPHABET.len())] as char)
        .collect()
}

/// Encodes like Kubernetes' `rand.SafeEncodeString`.
pub(crate) fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE_ALPHABET[b as usize % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` without a length limit.
fn label_shaped(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

pub(crate) fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && label_shaped(s)
}

/// A DNS-1123 subdomain: at most 253 characters of dot-separated label-shaped parts (which,
/// unlike labels, may each be longer than 63).
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(label_shaped)
}

fn max_len(s: &str, max: usize) -> Option<String> {
    (s.len() > max).then(|| format!("must be no more than {max} characters"))
}

/// `IsDNS1123Label`'s messages (none when valid).
pub(crate) fn dns_label_errors(s: &str) -> Vec<String> {
    let mut out: Vec<String> = max_len(s, 63).into_iter().collect();
    if !label_shaped(s) {
        out.push(LABEL_MSG.into());
    }
    out
}

/// `IsDNS1123Subdomain`'s messages (none when valid).
pub(crate) fn dns_subdomain_errors(s: &str) -> Vec<String> {
    let mut out: Vec<String> = max_len(s, 253).into_iter().collect();
    if !s.split('.').all(label_shaped) {
        out.push(SUBDOMAIN_MSG.into());
    }
    out
}

/// `IsDNS1035Label`'s messages (none when valid).
pub(crate) fn dns1035_errors(s: &str) -> Vec<String> {
    let mut out: Vec<String> = max_len(s, 63).into_iter().collect();
    if !(label_shaped(s) && s.as_bytes()[0].is_ascii_lowercase()) {
        out.push(DNS1035_MSG.into());
    }
    out
}

/// `IsValidPathSegmentName`'s messages, the rule for kinds whose names only go into URLs.
pub(crate) fn path_segment_errors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s == "." || s == ".." {
        out.push(format!("may not be '{s}'"));
    }
    for bad in ["/", "%"] {
        if s.contains(bad) {
            out.push(format!("may not contain '{bad}'"));
        }
    }
    out
}

pub(crate) const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub(crate) const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
pub(crate) const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

pub(crate) fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && (s.is_empty()
            || (s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                && s.as_bytes()[0].is_ascii_alphanumeric()
                && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()))
}

pub(crate) fn is_label_key(s: &str) -> bool {
    let (prefix, name) = match s.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

const LABEL_KEY_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// `IsQualifiedName`'s messages (none when valid): label keys and condition types.
pub(crate) fn qualified_name_errors(s: &str) -> Vec<String> {
    let parts: Vec<&str> = s.split('/').collect();
    let mut out = Vec::new();
    let name = match parts[..] {
        [name] => name,
        [prefix, name] => {
            if prefix.is_empty() {
                out.push("prefix part must be non-empty".to_string());
            } else {
                out.extend(
                    dns_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            name
        }
        _ => {
            return vec![format!(
                "a valid label key {LABEL_KEY_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        out.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        out.push("name part must be no more than 63 bytes".to_string());
    }
    if !is_label_value_shape(name) {
        out.push(format!("name part {LABEL_KEY_MSG}"));
    }
    out
}

fn is_label_value_shape(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && s.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric)
}
