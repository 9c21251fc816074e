//! `hk8s images push REGISTRY`: the archives' blobs and manifests to a registry, with the
//! manifest's bytes (and so its digest) exactly as built.

use super::{ArchiveImage, ImageError};
use http::HeaderValue;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::str::FromStr;

/// Pushes `image` to `registry` (`host[:port][/path]`) and returns the pushed reference.
/// Loopback registries and `insecure` ones are spoken to over plain HTTP, as Docker does.
pub async fn push(
    image: &ArchiveImage,
    registry: &str,
    insecure: bool,
    auth: &RegistryAuth,
) -> Result<String, ImageError> {
    let registry = registry.trim_end_matches('/');
    let reference_text = format!("{registry}/{}:{}", image.name, image.tag);
    let failed = |message: String| ImageError::Push {
        reference: reference_text.clone(),
        message,
    };
    let reference = Reference::from_str(&reference_text)
        .map_err(|e| failed(format!("not a valid image reference ({e})")))?;
    let host = reference.resolve_registry().to_string();
    let protocol = if insecure || is_loopback(&host) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    // reqwest is built without a provider of its own: use the one kube-rs uses (ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::new(ClientConfig {
        protocol,
        ..Default::default()
    });
    client.store_auth_if_needed(&host, auth).await;
    for (digest, data) in &image.blobs {
        let exists = client.blob_exists(&reference, digest).await;
        if !exists.map_err(|e| failed(describe(&e, &host)))? {
            client
                .push_blob(&reference, data.clone(), digest)
                .await
                .map_err(|e| failed(describe(&e, &host)))?;
        }
    }
    client
        .push_manifest_raw(
            &reference,
            image.manifest.clone(),
            HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json"),
        )
        .await
        .map_err(|e| failed(describe(&e, &host)))?;
    Ok(reference_text)
}

fn describe(err: &oci_client::errors::OciDistributionError, host: &str) -> String {
    let mut text = crate::error_chain(err);
    if text.contains("Connect") || text.contains("connection refused") {
        text.push_str(&format!("; is a registry listening at {host}?"));
    }
    if text.contains("401") || text.contains("Unauthorized") {
        text.push_str("; set HK8S_REGISTRY_USER and HK8S_REGISTRY_PASSWORD");
    }
    text
}

fn is_loopback(host: &str) -> bool {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_registries_are_recognised_with_and_without_ports() {
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["ghcr.io", "registry.local:5000", "10.0.0.1:5000"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
