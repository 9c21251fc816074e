//! The fields of the kinds kubectl sends as protobuf, from the upstream `generated.proto`
//! files: (field number, JSON name, type). Fields not listed are skipped.

/// How a field is encoded and what JSON it becomes.
#[derive(Debug, Clone, Copy)]
pub(super) enum F {
    Str,
    Int,
    Bool,
    Bytes,
    Msg(&'static [Field]),
    Time,
    Quantity,
    IntOrStr,
    MapStr,
    MapBytes,
    MapQuantity,
    RepStr,
    RepMsg(&'static [Field]),
}

pub(super) type Field = (u32, &'static str, F);

pub(super) const OBJECT_META: &[Field] = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (5, "uid", F::Str),
    (6, "resourceVersion", F::Str),
    (7, "generation", F::Int),
    (8, "creationTimestamp", F::Time),
    (11, "labels", F::MapStr),
    (12, "annotations", F::MapStr),
    (13, "ownerReferences", F::RepMsg(OWNER_REF)),
    (14, "finalizers", F::RepStr),
];
pub(super) const OWNER_REF: &[Field] = &[
    (1, "kind", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
    (6, "controller", F::Bool),
    (7, "blockOwnerDeletion", F::Bool),
];
pub(super) const LABEL_SELECTOR: &[Field] = &[
    (1, "matchLabels", F::MapStr),
    (2, "matchExpressions", F::RepMsg(SELECTOR_REQ)),
];
pub(super) const SELECTOR_REQ: &[Field] = &[
    (1, "key", F::Str),
    (2, "operator", F::Str),
    (3, "values", F::RepStr),
];
pub(super) const NAMESPACE: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(&[(1, "finalizers", F::RepStr)])),
];
pub(super) const CONFIG_MAP: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapStr),
    (3, "binaryData", F::MapBytes),
    (4, "immutable", F::Bool),
];
pub(super) const SECRET: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapBytes),
    (3, "type", F::Str),
    (4, "stringData", F::MapStr),
    (5, "immutable", F::Bool),
];
pub(super) const SERVICE_PORT: &[Field] = &[
    (1, "name", F::Str),
    (2, "protocol", F::Str),
    (3, "port", F::Int),
    (4, "targetPort", F::IntOrStr),
    (5, "nodePort", F::Int),
    (6, "appProtocol", F::Str),
];
pub(super) const SERVICE: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[
            (1, "ports", F::RepMsg(SERVICE_PORT)),
            (2, "selector", F::MapStr),
            (3, "clusterIP", F::Str),
            (4, "type", F::Str),
            (5, "externalIPs", F::RepStr),
            (7, "sessionAffinity", F::Str),
            (8, "loadBalancerIP", F::Str),
            (10, "externalName", F::Str),
            (11, "externalTrafficPolicy", F::Str),
            (18, "clusterIPs", F::RepStr),
        ]),
    ),
];
pub(super) const CONTAINER_PORT: &[Field] = &[
    (1, "name", F::Str),
    (2, "hostPort", F::Int),
    (3, "containerPort", F::Int),
    (4, "protocol", F::Str),
    (5, "hostIP", F::Str),
];
pub(super) const ENV_VAR: &[Field] = &[(1, "name", F::Str), (2, "value", F::Str)];
pub(super) const RESOURCES: &[Field] = &[
    (1, "limits", F::MapQuantity),
    (2, "requests", F::MapQuantity),
];
pub(super) const VOLUME_MOUNT: &[Field] = &[
    (1, "name", F::Str),
    (2, "readOnly", F::Bool),
    (3, "mountPath", F::Str),
    (4, "subPath", F::Str),
];
pub(super) const CONTAINER: &[Field] = &[
    (1, "name", F::Str),
    (2, "image", F::Str),
    (3, "command", F::RepStr),
    (4, "args", F::RepStr),
    (5, "workingDir", F::Str),
    (6, "ports", F::RepMsg(CONTAINER_PORT)),
    (7, "env", F::RepMsg(ENV_VAR)),
    (8, "resources", F::Msg(RESOURCES)),
    (9, "volumeMounts", F::RepMsg(VOLUME_MOUNT)),
    (13, "terminationMessagePath", F::Str),
    (14, "imagePullPolicy", F::Str),
    (20, "terminationMessagePolicy", F::Str),
];
pub(super) const POD_SPEC: &[Field] = &[
    (2, "containers", F::RepMsg(CONTAINER)),
    (3, "restartPolicy", F::Str),
    (4, "terminationGracePeriodSeconds", F::Int),
    (6, "dnsPolicy", F::Str),
    (7, "nodeSelector", F::MapStr),
    (8, "serviceAccountName", F::Str),
    (10, "nodeName", F::Str),
    (19, "schedulerName", F::Str),
    (20, "initContainers", F::RepMsg(CONTAINER)),
];
pub(super) const POD_TEMPLATE: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(POD_SPEC)),
];
pub(super) const DEPLOYMENT: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[
            (1, "replicas", F::Int),
            (2, "selector", F::Msg(LABEL_SELECTOR)),
            (3, "template", F::Msg(POD_TEMPLATE)),
            (5, "minReadySeconds", F::Int),
            (6, "revisionHistoryLimit", F::Int),
            (7, "paused", F::Bool),
            (9, "progressDeadlineSeconds", F::Int),
        ]),
    ),
];
pub(super) const METRIC_TARGET: &[Field] = &[
    (1, "type", F::Str),
    (2, "value", F::Quantity),
    (3, "averageValue", F::Quantity),
    (4, "averageUtilization", F::Int),
];
pub(super) const HPA_V2: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[
            (
                1,
                "scaleTargetRef",
                F::Msg(&[
                    (1, "kind", F::Str),
                    (2, "name", F::Str),
                    (3, "apiVersion", F::Str),
                ]),
            ),
            (2, "minReplicas", F::Int),
            (3, "maxReplicas", F::Int),
            (
                4,
                "metrics",
                F::RepMsg(&[
                    (1, "type", F::Str),
                    (
                        4,
                        "resource",
                        F::Msg(&[(1, "name", F::Str), (2, "target", F::Msg(METRIC_TARGET))]),
                    ),
                ]),
            ),
        ]),
    ),
];

pub(super) const HPA_V1: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[
            (
                1,
                "scaleTargetRef",
                F::Msg(&[
                    (1, "kind", F::Str),
                    (2, "name", F::Str),
                    (3, "apiVersion", F::Str),
                ]),
            ),
            (2, "minReplicas", F::Int),
            (3, "maxReplicas", F::Int),
            (4, "targetCPUUtilizationPercentage", F::Int),
        ]),
    ),
];
pub(super) const JOB_SPEC: &[Field] = &[
    (1, "parallelism", F::Int),
    (2, "completions", F::Int),
    (3, "activeDeadlineSeconds", F::Int),
    (4, "selector", F::Msg(LABEL_SELECTOR)),
    (5, "manualSelector", F::Bool),
    (6, "template", F::Msg(POD_TEMPLATE)),
    (7, "backoffLimit", F::Int),
    (8, "ttlSecondsAfterFinished", F::Int),
    (9, "completionMode", F::Str),
    (10, "suspend", F::Bool),
    (14, "podReplacementPolicy", F::Str),
];
pub(super) const JOB: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(JOB_SPEC)),
];
pub(super) const CRON_JOB: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[
            (1, "schedule", F::Str),
            (2, "startingDeadlineSeconds", F::Int),
            (3, "concurrencyPolicy", F::Str),
            (4, "suspend", F::Bool),
            (5, "jobTemplate", F::Msg(JOB)),
            (6, "successfulJobsHistoryLimit", F::Int),
            (7, "failedJobsHistoryLimit", F::Int),
            (8, "timeZone", F::Str),
        ]),
    ),
];

/// Pointer fields where an explicit zero means something.
pub(super) const KEEP_ZERO: &[&str] = &[
    "replicas",
    "minReplicas",
    "averageUtilization",
    "parallelism",
    "completions",
    "backoffLimit",
    "ttlSecondsAfterFinished",
    "startingDeadlineSeconds",
    "successfulJobsHistoryLimit",
    "failedJobsHistoryLimit",
];

// authorization/v1 and authentication/v1, as `kubectl auth can-i` and `whoami` send them.
pub(super) const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", F::Str),
    (2, "verb", F::Str),
    (3, "group", F::Str),
    (4, "version", F::Str),
    (5, "resource", F::Str),
    (6, "subresource", F::Str),
    (7, "name", F::Str),
];
pub(super) const NON_RESOURCE_ATTRIBUTES: &[Field] = &[(1, "path", F::Str), (2, "verb", F::Str)];
pub(super) const SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (
        2,
        "spec",
        F::Msg(&[
            (1, "resourceAttributes", F::Msg(RESOURCE_ATTRIBUTES)),
            (2, "nonResourceAttributes", F::Msg(NON_RESOURCE_ATTRIBUTES)),
        ]),
    ),
];
pub(super) const SELF_SUBJECT_RULES_REVIEW: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(&[(1, "namespace", F::Str)])),
];
pub(super) const SELF_SUBJECT_REVIEW: &[Field] = &[(1, "metadata", F::Msg(OBJECT_META))];

/// The fields of a kind kubectl sends as protobuf.
pub(super) fn for_kind(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "Service") => SERVICE,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("autoscaling/v2", "HorizontalPodAutoscaler") => HPA_V2,
        ("autoscaling/v1", "HorizontalPodAutoscaler") => HPA_V1,
        ("batch/v1", "Job") => JOB,
        ("batch/v1", "CronJob") => CRON_JOB,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => SELF_SUBJECT_ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => SELF_SUBJECT_RULES_REVIEW,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => SELF_SUBJECT_REVIEW,
        _ => return super::access_schema::for_kind(api_version, kind),
    })
}

/// The `runtime.Unknown` envelope around every object.
pub(super) const UNKNOWN: &[Field] = &[
    (
        1,
        "typeMeta",
        F::Msg(&[(1, "apiVersion", F::Str), (2, "kind", F::Str)]),
    ),
    (2, "raw", F::Bytes),
];
/// `metav1.Time`: seconds since the epoch (nanoseconds are dropped, as JSON has none).
pub(super) const TIME: &[Field] = &[(1, "seconds", F::Int)];
/// `resource.Quantity`: its string form.
pub(super) const QUANTITY: &[Field] = &[(1, "s", F::Str)];
/// `intstr.IntOrString`: type 0 an integer, 1 a string.
pub(super) const INT_OR_STRING: &[Field] =
    &[(1, "type", F::Int), (2, "int", F::Int), (3, "str", F::Str)];
