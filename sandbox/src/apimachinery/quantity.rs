//! Kubernetes resource quantities (`500m`, `1`, `128Mi`, `1Gi`, `2e3`), parsed in one place
//! for validation, the scheduler's request sums and the kubelet's limits.

/// A suffix's scale: a power of ten or of two.
#[derive(Debug, Clone, Copy)]
enum Scale {
    Decimal(i32),
    Binary(i32),
}

/// Binary suffixes come first, so `Mi` is not read as `M` after an `i`.
const SUFFIXES: &[(&str, Scale)] = &[
    ("Ki", Scale::Binary(10)),
    ("Mi", Scale::Binary(20)),
    ("Gi", Scale::Binary(30)),
    ("Ti", Scale::Binary(40)),
    ("Pi", Scale::Binary(50)),
    ("Ei", Scale::Binary(60)),
    ("n", Scale::Decimal(-9)),
    ("u", Scale::Decimal(-6)),
    ("m", Scale::Decimal(-3)),
    ("k", Scale::Decimal(3)),
    ("M", Scale::Decimal(6)),
    ("G", Scale::Decimal(9)),
    ("T", Scale::Decimal(12)),
    ("P", Scale::Decimal(15)),
    ("E", Scale::Decimal(18)),
];

/// The quantity in units of 10^`exponent`; exact when the number and suffix allow it
/// (`700m` in millis is 700, not 700.0000000000001).
fn scaled(s: &str, exponent: i32) -> Option<f64> {
    let s = s.trim();
    let (number, scale) = SUFFIXES
        .iter()
        .find_map(|(suffix, scale)| s.strip_suffix(suffix).map(|n| (n, *scale)))
        .unwrap_or((s, Scale::Decimal(0)));
    let n = number.parse::<f64>().ok()?;
    let ten = |e: i32| 10f64.powi(e);
    Some(match scale {
        Scale::Decimal(e) if e >= exponent => n * ten(e - exponent),
        Scale::Decimal(e) => n / ten(exponent - e),
        Scale::Binary(e) if exponent <= 0 => n * 2f64.powi(e) * ten(-exponent),
        Scale::Binary(e) => n * 2f64.powi(e) / ten(exponent),
    })
}

/// The quantity as a plain number (`500m` is 0.5, `128Mi` is 134217728).
pub(crate) fn parse(s: &str) -> Option<f64> {
    scaled(s, 0)
}

/// A CPU quantity in millicores, rounded up as Kubernetes does (`250m`, `0.5`, `2`).
pub(crate) fn cpu_millis(s: &str) -> Option<u64> {
    scaled(s, -3).map(|v| v.ceil() as u64)
}

/// A memory quantity in bytes, rounded up (`128Mi`, `1G`, `500000`).
pub(crate) fn memory_bytes(s: &str) -> Option<u64> {
    parse(s).map(|v| v.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("128Mi"), Some(128.0 * 1024.0 * 1024.0));
        assert_eq!(parse("2"), Some(2.0));
        assert_eq!(parse("x"), None);
    }

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(cpu_millis("250m"), Some(250));
        assert_eq!(cpu_millis("0.5"), Some(500));
        assert_eq!(cpu_millis("2"), Some(2000));
        assert_eq!(memory_bytes("128Mi"), Some(128 * 1024 * 1024));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(memory_bytes("4096"), Some(4096));
        assert_eq!(memory_bytes("lots"), None);
    }

    #[test]
    fn millicores_are_exact_integers() {
        for m in [1, 100, 700, 999, 1500, 33333] {
            assert_eq!(cpu_millis(&format!("{m}m")), Some(m));
        }
        assert_eq!(cpu_millis("0.7"), Some(700));
        assert_eq!(cpu_millis("0.1"), Some(100));
        assert_eq!(
            cpu_millis("1.5m"),
            Some(2),
            "a fraction of a millicore rounds up"
        );
    }
}
