//! The protobuf fields of the identity, RBAC and disruption kinds kubectl sends (`create
//! serviceaccount|token|role|rolebinding|clusterrolebinding|pdb`, `drain`), from the upstream
//! `generated.proto` files.

use super::schema::{F, Field, LABEL_SELECTOR, OBJECT_META};

const OBJECT_REFERENCE: &[Field] = &[
    (1, "kind", F::Str),
    (2, "namespace", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
];
const SERVICE_ACCOUNT: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "secrets", F::RepMsg(OBJECT_REFERENCE)),
    (3, "imagePullSecrets", F::RepMsg(&[(1, "name", F::Str)])),
    (4, "automountServiceAccountToken", F::Bool),
];
const TOKEN_REQUEST: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[
            (1, "audiences", F::RepStr),
            (
                3,
                "boundObjectRef",
                F::Msg(&[
                    (1, "kind", F::Str),
                    (2, "apiVersion", F::Str),
                    (3, "name", F::Str),
                    (4, "uid", F::Str),
                ]),
            ),
            (4, "expirationSeconds", F::Int),
        ]),
    ),
];
const POLICY_RULE: &[Field] = &[
    (1, "verbs", F::RepStr),
    (2, "apiGroups", F::RepStr),
    (3, "resources", F::RepStr),
    (4, "resourceNames", F::RepStr),
    (5, "nonResourceURLs", F::RepStr),
];
const ROLE: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "rules", F::RepMsg(POLICY_RULE)),
];
const CLUSTER_ROLE: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "rules", F::RepMsg(POLICY_RULE)),
    (
        3,
        "aggregationRule",
        F::Msg(&[(1, "clusterRoleSelectors", F::RepMsg(LABEL_SELECTOR))]),
    ),
];
const BINDING: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "subjects",
        F::RepMsg(&[
            (1, "kind", F::Str),
            (2, "apiGroup", F::Str),
            (3, "name", F::Str),
            (4, "namespace", F::Str),
        ]),
    ),
    (
        3,
        "roleRef",
        F::Msg(&[
            (1, "apiGroup", F::Str),
            (2, "kind", F::Str),
            (3, "name", F::Str),
        ]),
    ),
];
const POD_DISRUPTION_BUDGET: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[
            (1, "minAvailable", F::IntOrStr),
            (2, "selector", F::Msg(LABEL_SELECTOR)),
            (3, "maxUnavailable", F::IntOrStr),
            (4, "unhealthyPodEvictionPolicy", F::Str),
        ]),
    ),
];
const DELETE_OPTIONS: &[Field] = &[
    (1, "gracePeriodSeconds", F::Int),
    (
        2,
        "preconditions",
        F::Msg(&[(1, "uid", F::Str), (2, "resourceVersion", F::Str)]),
    ),
    (3, "orphanDependents", F::Bool),
    (4, "propagationPolicy", F::Str),
    (5, "dryRun", F::RepStr),
];
const EVICTION: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "deleteOptions", F::Msg(DELETE_OPTIONS)),
];

/// The fields of an access kind kubectl sends as protobuf.
pub(super) fn for_kind(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "ServiceAccount") => SERVICE_ACCOUNT,
        ("authentication.k8s.io/v1", "TokenRequest") => TOKEN_REQUEST,
        ("rbac.authorization.k8s.io/v1", "Role") => ROLE,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => CLUSTER_ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding" | "ClusterRoleBinding") => BINDING,
        ("policy/v1", "PodDisruptionBudget") => POD_DISRUPTION_BUDGET,
        ("policy/v1", "Eviction") => EVICTION,
        ("v1" | "meta.k8s.io/v1" | "policy/v1", "DeleteOptions") => DELETE_OPTIONS,
        _ => return None,
    })
}
