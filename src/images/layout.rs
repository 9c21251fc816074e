//! An OCI image layout (one gzip layer, its config, manifest and index) written as a tar
//! archive, the `oci-archive:` format skopeo, umoci, containerd and kind read.

use super::rootfs::{Entry, RootFs};
use super::{ImageError, ImageSpec};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, Digest, HistoryBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os,
    RootFsBuilder,
};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

/// A content-addressed blob of the layout.
pub(crate) struct Blob {
    pub digest: String,
    pub data: Vec<u8>,
}

impl Blob {
    fn new(data: Vec<u8>) -> Self {
        Blob {
            digest: sha256(&data),
            data,
        }
    }

    fn descriptor(&self, media_type: MediaType) -> Result<Descriptor, ImageError> {
        Ok(DescriptorBuilder::default()
            .media_type(media_type)
            .digest(digest(&self.digest)?)
            .size(self.data.len() as u64)
            .build()?)
    }
}

/// The image as its blobs plus the index that names it.
pub(crate) struct Image {
    pub layer: Blob,
    pub config: Blob,
    pub manifest: Blob,
    pub index: Vec<u8>,
}

/// Builds the image of `spec` from its root filesystem; `epoch` stamps every file and the
/// config, so the same inputs give the same bytes.
pub(crate) fn build(spec: &ImageSpec, fs: &RootFs, epoch: u64) -> Result<Image, ImageError> {
    let tar = layer_tar(fs, epoch)?;
    let diff_id = sha256(&tar);
    let layer = Blob::new(gzip(&tar)?);
    let config = Blob::new(canonical_json(&configuration(spec, &diff_id, epoch)?)?);
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor(MediaType::ImageConfig)?)
        .layers(vec![layer.descriptor(MediaType::ImageLayerGzip)?])
        .annotations(spec.labels())
        .build()?;
    let manifest = Blob::new(canonical_json(&manifest)?);
    let mut descriptor = manifest.descriptor(MediaType::ImageManifest)?;
    descriptor.set_annotations(Some(HashMap::from([
        ("org.opencontainers.image.ref.name".into(), spec.tag.clone()),
        ("io.containerd.image.name".into(), spec.containerd_name()),
    ])));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![descriptor])
        .build()?;
    Ok(Image {
        layer,
        config,
        manifest,
        index: canonical_json(&index)?,
    })
}

fn configuration(
    spec: &ImageSpec,
    diff_id: &str,
    epoch: u64,
) -> Result<oci_spec::image::ImageConfiguration, ImageError> {
    let created = jiff::Timestamp::from_second(epoch as i64)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string();
    let config = ConfigBuilder::default()
        .user(format!("{0}:{0}", super::rootfs::UID))
        .env(spec.env())
        .entrypoint(vec![spec.entrypoint()])
        .exposed_ports(vec![format!("{}/tcp", spec.port)])
        .working_dir("/".to_string())
        .labels(spec.labels())
        .build()?;
    Ok(ImageConfigurationBuilder::default()
        .created(created.clone())
        .architecture(architecture())
        .os(Os::Linux)
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers".to_string())
                .diff_ids(vec![diff_id.to_string()])
                .build()?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(created)
                .created_by(format!("hk8s images build ({})", spec.name))
                .build()?,
        ])
        .build()?)
}

fn architecture() -> Arch {
    match std::env::consts::ARCH {
        "x86_64" => Arch::Amd64,
        "aarch64" => Arch::ARM64,
        other => Arch::Other(other.to_string()),
    }
}

fn layer_tar(fs: &RootFs, epoch: u64) -> Result<Vec<u8>, ImageError> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, entry) in fs {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(epoch);
        let relative = path.trim_start_matches('/');
        match entry {
            Entry::Dir { mode, owner } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_uid(*owner);
                header.set_gid(*owner);
                header.set_size(0);
                tar.append_data(&mut header, format!("{relative}/"), std::io::empty())?;
            }
            Entry::File { mode, data } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, relative, data.as_slice())?;
            }
        }
    }
    Ok(tar.into_inner()?)
}

fn gzip(data: &[u8]) -> Result<Vec<u8>, ImageError> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

/// JSON with sorted keys: oci-spec keeps labels and annotations in HashMaps, whose order
/// changes from run to run, and a digest must not.
fn canonical_json(value: &impl serde::Serialize) -> Result<Vec<u8>, ImageError> {
    Ok(serde_json::to_vec(&serde_json::to_value(value)?)?)
}

/// `sha256:<hex>` of `data`.
pub(crate) fn sha256(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn digest(text: &str) -> Result<Digest, ImageError> {
    Digest::from_str(text).map_err(|e| ImageError::Spec(e.to_string()))
}

/// Writes `image` as an OCI archive at `path`, through a temporary file so an interrupted
/// build never leaves half an archive under the final name.
pub(crate) fn write_archive(image: &Image, path: &Path, epoch: u64) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    let mut tar = tar::Builder::new(tmp);
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mtime(epoch);
        header.set_mode(0o755);
        header.set_size(0);
        tar.append_data(&mut header, dir, std::io::empty())?;
    }
    let mut add = |name: &str, data: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(epoch);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        tar.append_data(&mut header, name, data)
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add("index.json", &image.index)?;
    for blob in [&image.layer, &image.config, &image.manifest] {
        let hex = blob.digest.trim_start_matches("sha256:");
        add(&format!("blobs/sha256/{hex}"), &blob.data)?;
    }
    let tmp = tar.into_inner()?;
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| ImageError::Write {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}
