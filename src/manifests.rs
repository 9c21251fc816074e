//! The tutorial's manifests, embedded from embedded-manifests/: list, show (with key fields
//! highlighted), export, and parse into objects, with `--registry` rewriting our image names.

use crate::ui::Ui;
use include_dir::{Dir, include_dir};
use kube::api::DynamicObject;
use std::path::Path;

static MANIFESTS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/embedded-manifests");

/// The app's own images; only these are rewritten by --registry.
const OUR_IMAGES: [&str; 2] = ["hello-k8s-frontend", "hello-k8s-api"];

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("no embedded manifest named {0:?}; `hk8s manifests list` shows them")]
    Unknown(String),
    #[error("embedded manifest {name} is not valid YAML: {message}")]
    Invalid { name: String, message: String },
    #[error("{path} already exists; pass --force to overwrite it")]
    Exists { path: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Every manifest file name, sorted.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&str> = MANIFESTS
        .files()
        .filter_map(|f| f.path().to_str())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort_unstable();
    names
}

/// Resolves `06`, `06-frontend-service` or `06-frontend-service.yml` to a file name.
pub(crate) fn resolve(name: &str) -> Result<&'static str, ManifestError> {
    let all = names();
    if let Some(exact) = all.iter().find(|n| **n == name) {
        return Ok(exact);
    }
    let stem_matches: Vec<&&str> = all
        .iter()
        .filter(|n| {
            let stem = n.trim_end_matches(".yml").trim_end_matches(".yaml");
            stem == name || stem.split('-').next() == Some(name)
        })
        .collect();
    match stem_matches.as_slice() {
        [one] => Ok(one),
        _ => Err(ManifestError::Unknown(name.to_string())),
    }
}

/// The manifest text as hk8s applies it (images rewritten under --registry).
pub fn text(name: &str, registry: Option<&str>) -> Result<String, ManifestError> {
    let name = resolve(name)?;
    let raw = MANIFESTS
        .get_file(name)
        .and_then(|f| f.contents_utf8())
        .ok_or_else(|| ManifestError::Unknown(name.to_string()))?;
    Ok(rewrite_images(raw, registry))
}

/// Prefixes our image names with a registry: `image: hello-k8s-api:0.1.0` becomes
/// `image: <registry>/hello-k8s-api:0.1.0`.
pub fn rewrite_images(text: &str, registry: Option<&str>) -> String {
    let Some(registry) = registry
        .map(|r| r.trim_end_matches('/'))
        .filter(|r| !r.is_empty())
    else {
        return text.to_string();
    };
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let body = trimmed.strip_prefix("- ").unwrap_or(trimmed);
            if let Some(image) = body.strip_prefix("image:") {
                let image = image.trim().trim_matches('"').trim_matches('\'');
                if OUR_IMAGES
                    .iter()
                    .any(|ours| image.starts_with(&format!("{ours}:")) || image == *ours)
                {
                    return line.replacen(image, &format!("{registry}/{image}"), 1);
                }
            }
            line.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}

/// Parses YAML text (one or more documents) into objects.
pub(crate) fn parse(name: &str, text: &str) -> Result<Vec<DynamicObject>, ManifestError> {
    let invalid = |message: String| ManifestError::Invalid {
        name: name.to_string(),
        message,
    };
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| invalid(e.to_string()))?;
    docs.into_iter()
        .filter(|d| !d.is_null())
        .map(|d| serde_json::from_value(d).map_err(|e| invalid(e.to_string())))
        .collect()
}

/// The objects of an embedded manifest.
pub fn objects(name: &str, registry: Option<&str>) -> Result<Vec<DynamicObject>, ManifestError> {
    let text = text(name, registry)?;
    parse(name, &text)
}

/// One field where two manifests differ: its path, e.g.
/// `spec.template.spec.containers[0].resources.limits.cpu`, and both values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub before: String,
    pub after: String,
}

/// The fields where manifest `name` differs from manifest `base`, object by object, keys
/// in alphabetical order (`(none)` for a field only one has).
pub fn changes(
    base: &str,
    name: &str,
    registry: Option<&str>,
) -> Result<Vec<Change>, ManifestError> {
    let values = |n: &str| -> Result<Vec<serde_json::Value>, ManifestError> {
        let text = text(n, registry)?;
        serde_saphyr::from_multiple(&text).map_err(|e| ManifestError::Invalid {
            name: n.to_string(),
            message: e.to_string(),
        })
    };
    let (before, after) = (values(base)?, values(name)?);
    let mut out = Vec::new();
    let none = serde_json::Value::Null;
    for i in 0..before.len().max(after.len()) {
        let prefix = if before.len().max(after.len()) > 1 {
            format!("[{i}]")
        } else {
            String::new()
        };
        compare(
            &prefix,
            before.get(i).unwrap_or(&none),
            after.get(i).unwrap_or(&none),
            &mut out,
        );
    }
    Ok(out)
}

fn compare(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<Change>) {
    use serde_json::Value;
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().collect();
            keys.extend(y.keys().filter(|k| !x.contains_key(*k)));
            for key in keys {
                let none = Value::Null;
                compare(
                    &join(key),
                    x.get(key).unwrap_or(&none),
                    y.get(key).unwrap_or(&none),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let none = Value::Null;
                compare(
                    &format!("{path}[{i}]"),
                    x.get(i).unwrap_or(&none),
                    y.get(i).unwrap_or(&none),
                    out,
                );
            }
        }
        _ if a == b => {}
        _ => out.push(Change {
            path: path.to_string(),
            before: scalar(a),
            after: scalar(b),
        }),
    }
}

/// A value as YAML shows it on one line.
fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "(none)".into(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The manifest text with lines under the `highlight` paths (e.g. `spec.selector`) marked.
pub fn highlighted(text: &str, highlight: &[String], ui: &Ui) -> String {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut out = String::new();
    for line in text.lines() {
        let content = line.trim_start();
        let mut indent = line.len() - content.len();
        let mut key_part = content;
        while let Some(rest) = key_part.strip_prefix("- ") {
            indent += 2;
            key_part = rest;
        }
        let is_key = !content.is_empty() && !content.starts_with('#');
        let key = is_key
            .then(|| key_part.split_once(':').map(|(k, _)| k.trim().to_string()))
            .flatten()
            .filter(|k| !k.contains(' ') && !k.is_empty());
        if let Some(key) = key {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            stack.push((indent, key));
        }
        let path = stack
            .iter()
            .map(|(_, k)| k.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let marked = is_key
            && highlight
                .iter()
                .any(|h| path == *h || path.starts_with(&format!("{h}.")));
        if marked {
            let marker = if ui.color { "  " } else { "» " };
            out.push_str(&format!("{marker}{}\n", ui.highlight(line)));
        } else {
            out.push_str(&format!("  {}\n", ui.dim(line)));
        }
    }
    out
}

/// Writes every manifest into `dir` (images rewritten under --registry).
pub(crate) fn export(
    dir: &Path,
    registry: Option<&str>,
    force: bool,
) -> Result<Vec<String>, ManifestError> {
    std::fs::create_dir_all(dir).map_err(|source| ManifestError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    let mut written = Vec::new();
    for name in names() {
        let path = dir.join(name);
        if path.exists() && !force {
            return Err(ManifestError::Exists {
                path: path.display().to_string(),
            });
        }
    }
    for name in names() {
        let path = dir.join(name);
        std::fs::write(&path, text(name, registry)?).map_err(|source| ManifestError::Write {
            path: path.display().to_string(),
            source,
        })?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
