//! Namespace lifecycle: no creates in a Terminating namespace, and the purge that empties
//! it before it goes.

use super::{Api, name_of};
use crate::apimachinery::errors::ApiError;
use crate::apimachinery::resources::{RESOURCES, by_kind};
use crate::apiserver::storage::Write;
use std::sync::Arc;
use std::time::Duration;

impl Api {
    /// Creating in a namespace needs it to exist and not be terminating (404, 403).
    pub(super) fn namespace_ready(&self, ns: &str) -> Result<(), ApiError> {
        let r = by_kind("v1", "Namespace").expect("namespaces are served");
        match self.store.get(r, "", ns) {
            None => Err(ApiError::namespace_not_found(ns)),
            Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => {
                Err(ApiError::forbidden(format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                )))
            }
            Some(_) => Ok(()),
        }
    }

    /// Deletes everything in a Terminating namespace, then the namespace itself.
    pub(super) async fn purge_namespace(self: Arc<Self>, ns: &str) {
        for _round in 0..50 {
            let mut left = 0;
            for r in RESOURCES.iter().filter(|r| r.namespaced) {
                let (items, _) = self.store.list(r, Some(ns));
                for item in items {
                    left += 1;
                    let name = name_of(&item).to_string();
                    let _ = self.store.write(r, ns, &name, |cur| match cur {
                        Some(_) => Ok(Write::Delete),
                        None => Ok(Write::Unchanged(None)),
                    });
                }
            }
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = by_kind("v1", "Namespace").expect("namespaces are served");
        let _ = self.store.write(r, "", ns, |cur| match cur {
            Some(_) => Ok(Write::Delete),
            None => Ok(Write::Unchanged(None)),
        });
    }
}
