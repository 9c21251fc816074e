//! ServiceAccount tokens, as kube-apiserver issues them: JWTs signed (ES256) with a key the
//! sandbox generates once and keeps in its state directory, with the real claims, answered
//! to the TokenRequest subresource (`kubectl create token`) and accepted back as bearer
//! tokens.

use crate::apimachinery::errors::{ApiError, Cause};
use crate::apimachinery::resources::{Resource, by_kind};
use crate::apiserver::auth::service_account_username;
use crate::apiserver::codec::decode_body;
use crate::apiserver::handlers::{ObjectRef, json_response};
use crate::apiserver::registry::defaults;
use crate::apiserver::request::Ctx;
use crate::apiserver::tls::write_private;
use crate::error::SandboxError;
use axum::response::Response;
use http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;

/// The issuer and default audience, as a kind or kubeadm cluster's API server has them.
pub(crate) const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// What `kubectl create token` asks for without `--duration`.
const DEFAULT_EXPIRATION: i64 = 3600;

/// The lifetime the kubelet asks for in projected volumes; the API server stretches it to a
/// year and records when clients should have refreshed (`warnafter`).
const PROJECTED_EXPIRATION: i64 = 3607;
const EXTENDED_EXPIRATION: i64 = 365 * 24 * 3600;

/// An object a token is bound to (`name`, `uid`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ref {
    pub(crate) name: String,
    pub(crate) uid: String,
}

/// The `kubernetes.io` claim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KubernetesClaims {
    pub(crate) namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) node: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<Ref>,
    pub(crate) serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) warnafter: Option<i64>,
}

/// A ServiceAccount token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub(crate) aud: Vec<String>,
    pub(crate) exp: i64,
    pub(crate) iat: i64,
    pub(crate) iss: String,
    pub(crate) jti: String,
    #[serde(rename = "kubernetes.io")]
    pub(crate) kubernetes: KubernetesClaims,
    pub(crate) nbf: i64,
    pub(crate) sub: String,
}

/// The signing key and its public half.
pub(crate) struct Issuer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
}

fn key_err(path: &Path, e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Tls(format!("service account key {}: {e}", path.display()))
}

impl Issuer {
    /// The key at `<state-dir>/sa.key`, generated (P-256) the first time.
    pub(crate) fn load_or_generate(dir: &Path) -> Result<Self, SandboxError> {
        let path = dir.join("sa.key");
        if !path.exists() {
            let key = rcgen::KeyPair::generate().map_err(|e| key_err(&path, e))?;
            write_private(&path, key.serialize_pem().as_bytes())?;
        }
        let pem = std::fs::read_to_string(&path).map_err(|e| key_err(&path, e))?;
        let key = rcgen::KeyPair::from_pem(&pem).map_err(|e| key_err(&path, e))?;
        let public = key.public_key_pem();
        let kid = key_id(key.public_key_raw());
        Ok(Issuer {
            encoding: EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| key_err(&path, e))?,
            decoding: DecodingKey::from_ec_pem(public.as_bytes()).map_err(|e| key_err(&path, e))?,
            kid,
        })
    }

    /// A signed token with these claims.
    pub(crate) fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("signing a service account token: {e}")))
    }

    /// The claims of a token this issuer signed for the API server's audience, unexpired.
    pub(crate) fn verify(&self, token: &str) -> Option<Claims> {
        let mut v = Validation::new(Algorithm::ES256);
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .ok()?
            .claims;
        let k = &claims.kubernetes;
        (claims.sub == service_account_username(&k.namespace, &k.serviceaccount.name))
            .then_some(claims)
    }
}

/// A short, stable id of the public key, so clients can tell keys apart.
fn key_id(public: &[u8]) -> String {
    use base64::Engine;
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in public {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.to_be_bytes())
}

/// POST `serviceaccounts/NAME/token`: a TokenRequest answered with a signed token.
pub(crate) fn request(ctx: &Ctx, o: &ObjectRef<'_>, body: &[u8]) -> Result<Response, ApiError> {
    let mut req = decode_body(&ctx.headers, body)?;
    let accounts = by_kind("v1", "ServiceAccount").expect("served");
    let sa = ctx
        .api
        .store
        .get(accounts, o.ns, o.name)
        .ok_or_else(|| ApiError::not_found(accounts, o.name))?;
    let token_requests = token_request_resource();
    let spec = &mut req["spec"];
    let expiration = spec["expirationSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_EXPIRATION);
    check_expiration(&token_requests, o.name, expiration)?;
    let audiences: Vec<String> = match spec["audiences"].as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => vec![ISSUER.to_string()],
    };
    let mut k = KubernetesClaims {
        namespace: o.ns.into(),
        node: None,
        pod: None,
        secret: None,
        serviceaccount: Ref {
            name: o.name.into(),
            uid: sa["metadata"]["uid"].as_str().unwrap_or_default().into(),
        },
        warnafter: None,
    };
    if spec["boundObjectRef"].is_object() {
        bind(ctx, o.ns, &mut spec["boundObjectRef"], &mut k)?;
    }
    let now = jiff::Timestamp::now().as_second();
    let mut exp = now + expiration;
    if k.pod.is_some() && expiration == PROJECTED_EXPIRATION {
        k.warnafter = Some(exp);
        exp = now + EXTENDED_EXPIRATION;
    }
    let claims = Claims {
        aud: audiences.clone(),
        exp,
        iat: now,
        iss: ISSUER.into(),
        jti: defaults::new_uid(),
        kubernetes: k,
        nbf: now,
        sub: service_account_username(o.ns, o.name),
    };
    let token = ctx.api.issuer.sign(&claims)?;
    let expires = jiff::Timestamp::from_second(exp)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let answer = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": o.name, "namespace": o.ns, "creationTimestamp": defaults::now()},
        "spec": {
            "audiences": audiences,
            "expirationSeconds": expiration,
            "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null),
        },
        "status": {"token": token, "expirationTimestamp": expires},
    });
    let mut answer = answer;
    defaults::strip_nulls(&mut answer);
    Ok(json_response(StatusCode::CREATED, &answer, &[]))
}

fn token_request_resource() -> Resource {
    Resource {
        group: "authentication.k8s.io",
        version: "v1",
        kind: "TokenRequest",
        plural: "serviceaccounts",
        singular: "",
        short_names: &[],
        namespaced: true,
        categories: &[],
        subresources: &[],
    }
}

fn check_expiration(r: &Resource, name: &str, seconds: i64) -> Result<(), ApiError> {
    let why = if seconds < 600 {
        "may not specify a duration less than 10 minutes"
    } else if seconds > 1 << 32 {
        "may not specify a duration larger than 2^32 seconds"
    } else {
        return Ok(());
    };
    Err(ApiError::invalid(
        r,
        name,
        &[Cause::invalid("spec.expirationSeconds", seconds, why)],
    ))
}

/// Binds the token to a Pod, Secret or Node that must exist (its uid is filled in).
fn bind(ctx: &Ctx, ns: &str, bound: &mut Value, k: &mut KubernetesClaims) -> Result<(), ApiError> {
    let kind = bound["kind"].as_str().unwrap_or_default().to_string();
    let name = bound["name"].as_str().unwrap_or_default().to_string();
    let (r, obj_ns) = match kind.as_str() {
        "Pod" | "Secret" => (by_kind("v1", &kind).expect("served"), ns),
        "Node" => (by_kind("v1", "Node").expect("served"), ""),
        other => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of kind {other:?}: Pod, Secret and Node can be bound"
            )));
        }
    };
    let obj = ctx
        .api
        .store
        .get(r, obj_ns, &name)
        .ok_or_else(|| ApiError::not_found(r, &name))?;
    let uid = obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if bound["uid"]
        .as_str()
        .is_some_and(|u| !u.is_empty() && u != uid)
    {
        return Err(ApiError::conflict(r, &name));
    }
    bound["uid"] = json!(uid);
    bound["apiVersion"] = json!("v1");
    let reference = Some(Ref { name, uid });
    match kind.as_str() {
        "Pod" => k.pod = reference,
        "Secret" => k.secret = reference,
        _ => k.node = reference,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: &str, exp: i64) -> Claims {
        Claims {
            aud: vec![aud.into()],
            exp,
            iat: 0,
            iss: ISSUER.into(),
            jti: "j".into(),
            kubernetes: KubernetesClaims {
                namespace: "demo".into(),
                node: None,
                pod: None,
                secret: None,
                serviceaccount: Ref {
                    name: "default".into(),
                    uid: "u".into(),
                },
                warnafter: None,
            },
            nbf: 0,
            sub: "system:serviceaccount:demo:default".into(),
        }
    }

    #[test]
    fn tokens_verify_only_for_the_api_audience_unexpired_and_with_this_key() {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Issuer::load_or_generate(dir.path()).unwrap();
        let later = jiff::Timestamp::now().as_second() + 600;
        let good = issuer.sign(&claims(ISSUER, later)).unwrap();
        assert_eq!(
            issuer.verify(&good).unwrap().sub,
            "system:serviceaccount:demo:default"
        );
        assert!(
            issuer
                .verify(&issuer.sign(&claims("vault", later)).unwrap())
                .is_none()
        );
        assert!(
            issuer
                .verify(&issuer.sign(&claims(ISSUER, 1000)).unwrap())
                .is_none()
        );
        let again = Issuer::load_or_generate(dir.path()).unwrap();
        assert!(again.verify(&good).is_some(), "the key is kept");
        let other = Issuer::load_or_generate(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.verify(&good).is_none());
    }
}
