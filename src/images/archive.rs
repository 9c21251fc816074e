//! Reading an OCI archive back: its one image's name, tag, manifest and blobs, checked
//! against their digests before anything is sent anywhere.

use super::ImageError;
use super::layout::sha256;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The image an archive holds.
#[derive(Debug)]
pub struct ArchiveImage {
    /// Repository name, e.g. `hello-k8s-api`.
    pub name: String,
    pub tag: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    /// Config and layers, each with its `sha256:` digest.
    pub blobs: Vec<(String, Vec<u8>)>,
}

impl ArchiveImage {
    /// Reads and verifies the archive at `path`.
    pub fn read(path: &Path) -> Result<ArchiveImage, ImageError> {
        let bad = |message: String| ImageError::NotAnArchive {
            path: path.to_path_buf(),
            message,
        };
        let files = files(path)?;
        let index: serde_json::Value = serde_json::from_slice(
            files
                .get("index.json")
                .ok_or_else(|| bad("no index.json".into()))?,
        )
        .map_err(|e| bad(format!("index.json: {e}")))?;
        let entry = &index["manifests"][0];
        let manifest_digest = entry["digest"].as_str().unwrap_or_default().to_string();
        let annotation = |key: &str| entry["annotations"][key].as_str().map(str::to_string);
        let full = annotation("io.containerd.image.name")
            .ok_or_else(|| bad("the manifest has no image name annotation".into()))?;
        let (name, tag) = split_name(&full).ok_or_else(|| bad(format!("bad name {full:?}")))?;
        let manifest = blob(&files, &manifest_digest).map_err(bad)?;
        let parsed: serde_json::Value =
            serde_json::from_slice(&manifest).map_err(|e| bad(format!("manifest: {e}")))?;
        let mut blobs = Vec::new();
        let layers = parsed["layers"].as_array().cloned().unwrap_or_default();
        for descriptor in std::iter::once(&parsed["config"]).chain(layers.iter()) {
            let digest = descriptor["digest"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let data = blob(&files, &digest).map_err(bad)?;
            blobs.push((digest, data));
        }
        Ok(ArchiveImage {
            name,
            tag,
            manifest,
            manifest_digest,
            blobs,
        })
    }
}

/// `docker.io/library/hello-k8s-api:0.1.0` → (`hello-k8s-api`, `0.1.0`).
fn split_name(full: &str) -> Option<(String, String)> {
    let (repository, tag) = full.rsplit_once(':')?;
    let name = repository.rsplit('/').next()?;
    Some((name.to_string(), tag.to_string()))
}

fn blob(files: &HashMap<String, Vec<u8>>, digest: &str) -> Result<Vec<u8>, String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("unsupported digest {digest:?}"))?;
    let data = files
        .get(&format!("blobs/sha256/{hex}"))
        .ok_or_else(|| format!("blob {digest} is missing"))?;
    if sha256(data) != digest {
        return Err(format!("blob {digest} does not match its digest"));
    }
    Ok(data.clone())
}

fn files(path: &Path) -> Result<HashMap<String, Vec<u8>>, ImageError> {
    let read_error = |source: std::io::Error| ImageError::Read {
        path: PathBuf::from(path),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let not_tar = |source: std::io::Error| ImageError::NotAnArchive {
        path: PathBuf::from(path),
        message: format!("not a tar archive ({source})"),
    };
    let mut archive = tar::Archive::new(file);
    let mut files = HashMap::new();
    for entry in archive.entries().map_err(not_tar)? {
        let mut entry = entry.map_err(not_tar)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(not_tar)?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(read_error)?;
        files.insert(name, data);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_registry_and_keep_their_tag() {
        assert_eq!(
            split_name("docker.io/library/hello-k8s-api:0.1.0"),
            Some(("hello-k8s-api".into(), "0.1.0".into()))
        );
        assert_eq!(split_name("no-tag"), None);
    }
}
