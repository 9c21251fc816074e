//! Kubernetes protobuf request bodies, decoded to JSON. kubectl's typed clients send
//! `application/vnd.kubernetes.protobuf` for `kubectl create namespace|deployment|configmap|
//! secret|service`, `kubectl autoscale` and `kubectl auth`; this decodes those kinds (fields from the
//! upstream `generated.proto` files) and skips fields it does not know.

use crate::apimachinery::errors::ApiError;
use base64::Engine;
use serde_json::{Map, Value, json};

#[derive(Clone, Copy)]
enum F {
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

type Field = (u32, &'static str, F);

const OBJECT_META: &[Field] = &[
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
const OWNER_REF: &[Field] = &[
    (1, "kind", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
    (6, "controller", F::Bool),
    (7, "blockOwnerDeletion", F::Bool),
];
const LABEL_SELECTOR: &[Field] = &[
    (1, "matchLabels", F::MapStr),
    (2, "matchExpressions", F::RepMsg(SELECTOR_REQ)),
];
const SELECTOR_REQ: &[Field] = &[
    (1, "key", F::Str),
    (2, "operator", F::Str),
    (3, "values", F::RepStr),
];
const NAMESPACE: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(&[(1, "finalizers", F::RepStr)])),
];
const CONFIG_MAP: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapStr),
    (3, "binaryData", F::MapBytes),
    (4, "immutable", F::Bool),
];
const SECRET: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "data", F::MapBytes),
    (3, "type", F::Str),
    (4, "stringData", F::MapStr),
    (5, "immutable", F::Bool),
];
const SERVICE_PORT: &[Field] = &[
    (1, "name", F::Str),
    (2, "protocol", F::Str),
    (3, "port", F::Int),
    (4, "targetPort", F::IntOrStr),
    (5, "nodePort", F::Int),
    (6, "appProtocol", F::Str),
];
const SERVICE: &[Field] = &[
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
const CONTAINER_PORT: &[Field] = &[
    (1, "name", F::Str),
    (2, "hostPort", F::Int),
    (3, "containerPort", F::Int),
    (4, "protocol", F::Str),
    (5, "hostIP", F::Str),
];
const ENV_VAR: &[Field] = &[(1, "name", F::Str), (2, "value", F::Str)];
const RESOURCES: &[Field] = &[
    (1, "limits", F::MapQuantity),
    (2, "requests", F::MapQuantity),
];
const VOLUME_MOUNT: &[Field] = &[
    (1, "name", F::Str),
    (2, "readOnly", F::Bool),
    (3, "mountPath", F::Str),
    (4, "subPath", F::Str),
];
const CONTAINER: &[Field] = &[
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
const POD_SPEC: &[Field] = &[
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
const POD_TEMPLATE: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(POD_SPEC)),
];
const DEPLOYMENT: &[Field] = &[
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
const METRIC_TARGET: &[Field] = &[
    (1, "type", F::Str),
    (2, "value", F::Quantity),
    (3, "averageValue", F::Quantity),
    (4, "averageUtilization", F::Int),
];
const HPA_V2: &[Field] = &[
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

/// Pointer fields where an explicit zero means something.
const KEEP_ZERO: &[&str] = &["replicas", "minReplicas", "averageUtilization"];

/// The media type kubectl's typed clients send.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn malformed() -> ApiError {
    ApiError::bad_request("the protobuf request body is malformed or truncated")
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, ApiError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(malformed)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed())
    }
    fn bytes(&mut self) -> Result<&'a [u8], ApiError> {
        let len = self.varint()? as usize;
        let end = self.pos.checked_add(len).ok_or_else(malformed)?;
        let b = self.buf.get(self.pos..end).ok_or_else(malformed)?;
        self.pos = end;
        Ok(b)
    }
    /// The next (field number, wire value); skips fixed-width values.
    fn next(&mut self) -> Result<Option<(u32, Wire<'a>)>, ApiError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = (key >> 3) as u32;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            2 => Wire::Bytes(self.bytes()?),
            1 => {
                self.pos += 8;
                Wire::Skip
            }
            5 => {
                self.pos += 4;
                Wire::Skip
            }
            _ => return Err(malformed()),
        };
        if self.pos > self.buf.len() {
            return Err(malformed());
        }
        Ok(Some((field, wire)))
    }
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Skip,
}

fn text(b: &[u8]) -> Result<String, ApiError> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed())
}

fn entry(b: &[u8]) -> Result<(String, &[u8]), ApiError> {
    let mut r = Reader { buf: b, pos: 0 };
    let (mut k, mut v) = (String::new(), &[][..]);
    while let Some((f, w)) = r.next()? {
        match (f, w) {
            (1, Wire::Bytes(x)) => k = text(x)?,
            (2, Wire::Bytes(x)) => v = x,
            _ => {}
        }
    }
    Ok((k, v))
}

fn message(b: &[u8], schema: &[Field]) -> Result<Value, ApiError> {
    let mut out = Map::new();
    let mut r = Reader { buf: b, pos: 0 };
    while let Some((num, wire)) = r.next()? {
        let Some(&(_, name, ty)) = schema.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let name = name.to_string();
        match (ty, wire) {
            // Go encodes unset non-pointer fields as zero values; JSON omits them.
            (F::Str, Wire::Bytes([])) => {}
            (F::Int, Wire::Varint(0)) if !KEEP_ZERO.contains(&name.as_str()) => {}
            (F::Bool, Wire::Varint(0)) => {}
            (F::Str, Wire::Bytes(x)) => {
                out.insert(name, json!(text(x)?));
            }
            (F::Int, Wire::Varint(v)) => {
                out.insert(name, json!(v as i64));
            }
            (F::Bool, Wire::Varint(_)) => {
                out.insert(name, json!(true));
            }
            (F::Bytes, Wire::Bytes(x)) => {
                out.insert(
                    name,
                    json!(base64::engine::general_purpose::STANDARD.encode(x)),
                );
            }
            (F::Msg(s), Wire::Bytes(x)) => {
                out.insert(name, message(x, s)?);
            }
            (F::Time, Wire::Bytes(x)) => {
                let t = message(x, &[(1, "seconds", F::Int)])?;
                let secs = t["seconds"].as_i64().unwrap_or(0);
                if secs == 0 {
                    continue;
                }
                let ts = jiff::Timestamp::from_second(secs).map_err(|_| malformed())?;
                out.insert(name, json!(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
            }
            (F::Quantity, Wire::Bytes(x)) => {
                out.insert(name, message(x, &[(1, "s", F::Str)])?["s"].clone());
            }
            (F::IntOrStr, Wire::Bytes(x)) => {
                let v = message(
                    x,
                    &[(1, "type", F::Int), (2, "int", F::Int), (3, "str", F::Str)],
                )?;
                let value = if v["type"].as_i64() == Some(1) {
                    v["str"].clone()
                } else {
                    json!(v["int"].as_i64().unwrap_or(0))
                };
                out.insert(name, value);
            }
            (F::MapStr | F::MapBytes | F::MapQuantity, Wire::Bytes(x)) => {
                let (k, v) = entry(x)?;
                let value = match ty {
                    F::MapStr => json!(text(v)?),
                    F::MapBytes => json!(base64::engine::general_purpose::STANDARD.encode(v)),
                    _ => message(v, &[(1, "s", F::Str)])?["s"].clone(),
                };
                out.entry(name)
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .ok_or_else(malformed)?
                    .insert(k, value);
            }
            (F::RepStr, Wire::Bytes(x)) => {
                out.entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .ok_or_else(malformed)?
                    .push(json!(text(x)?));
            }
            (F::RepMsg(s), Wire::Bytes(x)) => {
                let item = message(x, s)?;
                out.entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .ok_or_else(malformed)?
                    .push(item);
            }
            _ => return Err(malformed()),
        }
    }
    Ok(Value::Object(out))
}

// authorization/v1 and authentication/v1, as `kubectl auth can-i` and `whoami` send them.
const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", F::Str),
    (2, "verb", F::Str),
    (3, "group", F::Str),
    (4, "version", F::Str),
    (5, "resource", F::Str),
    (6, "subresource", F::Str),
    (7, "name", F::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[(1, "path", F::Str), (2, "verb", F::Str)];
const SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
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
const SELF_SUBJECT_RULES_REVIEW: &[Field] = &[
    (1, "metadata", F::Msg(OBJECT_META)),
    (2, "spec", F::Msg(&[(1, "namespace", F::Str)])),
];
const SELF_SUBJECT_REVIEW: &[Field] = &[(1, "metadata", F::Msg(OBJECT_META))];

/// Decodes a `k8s\0`-prefixed protobuf envelope into a JSON object.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let inner = body.strip_prefix(b"k8s\0").ok_or_else(|| {
        ApiError::bad_request("the protobuf request body lacks the Kubernetes 'k8s\\0' prefix")
    })?;
    let envelope = message(
        inner,
        &[
            (
                1,
                "typeMeta",
                F::Msg(&[(1, "apiVersion", F::Str), (2, "kind", F::Str)]),
            ),
            (2, "raw", F::Bytes),
        ],
    )?;
    let api_version = envelope["typeMeta"]["apiVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let kind = envelope["typeMeta"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(envelope["raw"].as_str().unwrap_or_default())
        .map_err(|_| malformed())?;
    let schema = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => NAMESPACE,
        ("v1", "ConfigMap") => CONFIG_MAP,
        ("v1", "Secret") => SECRET,
        ("v1", "Service") => SERVICE,
        ("apps/v1", "Deployment") => DEPLOYMENT,
        ("autoscaling/v2", "HorizontalPodAutoscaler") => HPA_V2,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => SELF_SUBJECT_ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => SELF_SUBJECT_RULES_REVIEW,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => SELF_SUBJECT_REVIEW,
        _ => {
            return Err(ApiError::unsupported_media_type(&format!(
                "{CONTENT_TYPE} for {kind} {api_version}; send it as JSON or YAML"
            )));
        }
    };
    let mut obj = message(&raw, schema)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}
