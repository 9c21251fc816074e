//! PersistentVolumeClaims: bound, as lesson 5 needs them.

use super::Verdict;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

fn phase(pvc: &PersistentVolumeClaim) -> &str {
    pvc.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn bound(pvc: &PersistentVolumeClaim) -> bool {
    phase(pvc) == "Bound"
}

/// At least one claim, and all of them Bound; names each claim with its phase.
pub(crate) fn pvcs_bound(pvcs: &[PersistentVolumeClaim]) -> Verdict {
    if pvcs.is_empty() {
        return Verdict::fail("no PVC in the namespace");
    }
    let states: Vec<String> = pvcs
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.metadata.name.as_deref().unwrap_or_default(),
                phase(p)
            )
        })
        .collect();
    Verdict::new(pvcs.iter().all(bound), states.join(", "))
}

/// The same condition, counted for a wait's progress line.
pub(crate) fn pvcs_bound_count(pvcs: &[PersistentVolumeClaim]) -> Verdict {
    let bound = pvcs.iter().filter(|p| bound(p)).count();
    Verdict::new(
        !pvcs.is_empty() && bound == pvcs.len(),
        format!("{bound}/{} PVCs Bound", pvcs.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::object;
    use serde_json::json;

    fn pvc(name: &str, phase: Option<&str>) -> PersistentVolumeClaim {
        let mut value = json!({"metadata": {"name": name}, "spec": {}});
        if let Some(phase) = phase {
            value["status"] = json!({"phase": phase});
        }
        object(value)
    }

    #[test]
    fn every_claim_must_be_bound_and_there_must_be_one() {
        assert_eq!(pvcs_bound(&[]), Verdict::fail("no PVC in the namespace"));
        assert!(!pvcs_bound_count(&[]).passed);
        let claims = [pvc("data-0", Some("Bound")), pvc("data-1", None)];
        assert_eq!(
            pvcs_bound(&claims),
            Verdict::fail("data-0 Bound, data-1 Pending")
        );
        assert_eq!(pvcs_bound_count(&claims), Verdict::fail("1/2 PVCs Bound"));
        assert!(pvcs_bound(&claims[..1]).passed);
        assert!(pvcs_bound_count(&claims[..1]).passed);
    }
}
