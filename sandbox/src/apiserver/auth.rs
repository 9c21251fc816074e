//! Authentication, as kube-apiserver's: the sandbox's own bearer token (the learner, in
//! `system:masters`), or a ServiceAccount token the sandbox signed; then impersonation
//! (`Impersonate-User`, `Impersonate-Group`), itself authorized.

use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::by_kind;
use crate::apiserver::rbac::{self, Attributes};
use crate::apiserver::registry::Api;
use crate::apiserver::tokens::Issuer;
use http::{HeaderMap, header};

/// The user the sandbox's bearer token authenticates as.
pub(crate) const ADMIN: &str = "hk8s-sandbox-admin";

/// The group whose members may do everything, whatever RBAC says.
pub(crate) const MASTERS: &str = "system:masters";

const AUTHENTICATED: &str = "system:authenticated";

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserInfo {
    pub(crate) username: String,
    pub(crate) uid: String,
    pub(crate) groups: Vec<String>,
}

impl UserInfo {
    /// The holder of the sandbox's own token.
    pub(crate) fn admin() -> Self {
        UserInfo {
            username: ADMIN.into(),
            uid: String::new(),
            groups: vec![MASTERS.into(), AUTHENTICATED.into()],
        }
    }

    /// A ServiceAccount, with the groups Kubernetes gives every one.
    pub(crate) fn service_account(ns: &str, name: &str, uid: &str) -> Self {
        UserInfo {
            username: service_account_username(ns, name),
            uid: uid.into(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                AUTHENTICATED.into(),
            ],
        }
    }

    /// Whether RBAC is bypassed (the `system:masters` group).
    pub(crate) fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }
}

/// `system:serviceaccount:NS:NAME`.
pub(crate) fn service_account_username(ns: &str, name: &str) -> String {
    format!("system:serviceaccount:{ns}:{name}")
}

/// The namespace and name of a ServiceAccount username.
pub(crate) fn parse_service_account(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// Paths anyone may read, as the real API server's health endpoints.
pub(super) fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/livez")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The user a request's bearer token names: the sandbox's own token, or a ServiceAccount
/// token whose account (and bound pod) still exist; 401 otherwise.
pub(super) fn authenticate(
    headers: &HeaderMap,
    token: &str,
    issuer: &Issuer,
    api: &Api,
) -> Result<UserInfo, ApiError> {
    let given = bearer(headers).ok_or_else(ApiError::unauthorized)?;
    if constant_time_eq(given.as_bytes(), token.as_bytes()) {
        return Ok(UserInfo::admin());
    }
    let claims = issuer.verify(given).ok_or_else(ApiError::unauthorized)?;
    let k = &claims.kubernetes;
    let accounts = by_kind("v1", "ServiceAccount").expect("served");
    let account = api
        .store
        .get(accounts, &k.namespace, &k.serviceaccount.name)
        .filter(|sa| sa["metadata"]["uid"] == k.serviceaccount.uid.as_str())
        .ok_or_else(ApiError::unauthorized)?;
    if let Some(pod) = &k.pod {
        let pods = by_kind("v1", "Pod").expect("served");
        api.store
            .get(pods, &k.namespace, &pod.name)
            .filter(|p| p["metadata"]["uid"] == pod.uid.as_str())
            .ok_or_else(ApiError::unauthorized)?;
    }
    let uid = account["metadata"]["uid"].as_str().unwrap_or_default();
    Ok(UserInfo::service_account(
        &k.namespace,
        &k.serviceaccount.name,
        uid,
    ))
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The user a request acts as: `user`, or whom its `Impersonate-*` headers name when
/// `user` may impersonate them (403 otherwise).
pub(super) fn impersonate(
    headers: &HeaderMap,
    user: UserInfo,
    api: &Api,
) -> Result<UserInfo, ApiError> {
    let groups = header_values(headers, "impersonate-group");
    let Some(&username) = header_values(headers, "impersonate-user").first() else {
        if groups.is_empty() {
            return Ok(user);
        }
        return Err(ApiError::internal(format!(
            "requested {groups:?} without impersonating a user"
        )));
    };
    let check = |resource: &'static str, ns: &str, name: &str| {
        let a = Attributes::resource("impersonate", "", resource, "", ns, name);
        rbac::authorize(api, &user, &a)
    };
    let mut target = match parse_service_account(username) {
        Some((ns, name)) => {
            check("serviceaccounts", ns, name)?;
            let mut sa = UserInfo::service_account(ns, name, "");
            if !groups.is_empty() {
                sa.groups.clear();
            }
            sa
        }
        None => {
            check("users", "", username)?;
            UserInfo {
                username: username.into(),
                uid: String::new(),
                groups: Vec::new(),
            }
        }
    };
    for group in groups {
        check("groups", "", group)?;
        target.groups.push(group.into());
    }
    if !target.groups.iter().any(|g| g == AUTHENTICATED) {
        target.groups.push(AUTHENTICATED.into());
    }
    Ok(target)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_usernames_parse_back() {
        let u = service_account_username("demo", "default");
        assert_eq!(u, "system:serviceaccount:demo:default");
        assert_eq!(parse_service_account(&u), Some(("demo", "default")));
        assert_eq!(parse_service_account("system:serviceaccount:demo"), None);
        assert_eq!(parse_service_account("alice"), None);
        assert!(is_public("/healthz") && !is_public("/api"));
        assert!(UserInfo::admin().is_master());
        assert!(!UserInfo::service_account("demo", "default", "u").is_master());
    }
}
