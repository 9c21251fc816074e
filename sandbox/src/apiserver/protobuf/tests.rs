//! Bodies as kubectl sends them (from `testdata/encode.go`, which runs the protobuf
//! serializer of k8s.io/api v0.37.2, the code kubectl's typed clients use), and hand-built
//! bodies for what kubectl never sends: unknown fields, truncation, bad varints, wrong wire
//! types.

use super::*;

/// `name -> body` from testdata/kubectl-bodies.hex.
fn kubectl_body(name: &str) -> Vec<u8> {
    let hex = include_str!("testdata/kubectl-bodies.hex")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .expect("body in testdata");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn namespace_configmap_and_secret_decode_as_kubectl_sent_them() {
    assert_eq!(
        decode(&kubectl_body("namespace")).unwrap(),
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": "demo", "labels": {"team": "a"}}, "spec": {}})
    );
    assert_eq!(
        decode(&kubectl_body("configmap")).unwrap(),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "settings", "namespace": "demo"},
               "data": {"mode": "fast"},
               "binaryData": {"logo.png": STANDARD.encode([0x89, b'P', b'N', b'G', 0, 0xff])}})
    );
    assert_eq!(
        decode(&kubectl_body("secret")).unwrap(),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
               "data": {"password": "czNjcmV0"}, "type": "Opaque"})
    );
}

#[test]
fn service_target_ports_decode_as_numbers_or_names() {
    let svc = decode(&kubectl_body("service")).unwrap();
    assert_eq!(
        svc["spec"],
        json!({"type": "NodePort", "selector": {"app": "web"}, "ports": [
            {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": "metrics"}]})
    );
}

#[test]
fn deployment_quantities_and_times_decode() {
    let d = decode(&kubectl_body("deployment")).unwrap();
    assert_eq!(
        d["metadata"],
        json!({"name": "web", "creationTimestamp": "2025-01-02T03:04:05Z", "labels": {"app": "web"}})
    );
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}})
    );
    assert_eq!(
        d["spec"]["template"],
        json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
            "name": "nginx", "image": "nginx:1", "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}}}]}})
    );
}

#[test]
fn autoscalers_keep_explicit_numbers() {
    let hpa = decode(&kubectl_body("hpa")).unwrap();
    assert_eq!(
        hpa["spec"],
        json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
               "minReplicas": 1, "maxReplicas": 3, "metrics": [{"type": "Resource", "resource": {
                   "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]})
    );
}

/// A tiny protobuf writer for bodies kubectl would never send.
mod wire {
    pub fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    }
    pub fn tag(field: u32, wire: u8) -> Vec<u8> {
        varint(u64::from(field) << 3 | u64::from(wire))
    }
    pub fn bytes(field: u32, b: &[u8]) -> Vec<u8> {
        [tag(field, 2), varint(b.len() as u64), b.to_vec()].concat()
    }
    pub fn int(field: u32, v: u64) -> Vec<u8> {
        [tag(field, 0), varint(v)].concat()
    }
    /// The `k8s\0` envelope around an object of the given type.
    pub fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [bytes(1, api_version.as_bytes()), bytes(2, kind.as_bytes())].concat();
        [b"k8s\0".to_vec(), bytes(1, &type_meta), bytes(2, raw)].concat()
    }
}

#[test]
fn unknown_fields_of_every_wire_type_are_skipped() {
    let meta = [wire::bytes(1, b"demo"), wire::bytes(99, b"future")].concat();
    let raw = [
        wire::bytes(1, &meta),
        wire::int(40, 7),
        [wire::tag(41, 1), vec![0; 8]].concat(),
        [wire::tag(42, 5), vec![0; 4]].concat(),
        wire::bytes(43, b"\xff\xfe not text"),
    ]
    .concat();
    assert_eq!(
        decode(&wire::envelope("v1", "Namespace", &raw)).unwrap(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
    );
}

#[test]
fn malformed_bodies_get_clear_errors() {
    let meta = |b: Vec<u8>| wire::envelope("v1", "ConfigMap", &b);
    let cut = {
        let mut b = kubectl_body("deployment");
        b.truncate(b.len() - 20);
        b
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (cut, "truncated"),
        (
            meta([wire::tag(1, 2), wire::varint(50), b"short".to_vec()].concat()),
            "truncated",
        ),
        (
            meta([wire::tag(4, 0), vec![0xff; 11]].concat()),
            "longer than 10 bytes",
        ),
        (
            meta(wire::int(1, 5)),
            "field metadata (1) is encoded as a varint, expected length-delimited bytes",
        ),
        (
            meta(wire::bytes(4, b"yes")),
            "field immutable (4) is encoded as length-delimited bytes, expected a varint",
        ),
        (meta(wire::tag(4, 3)), "wire type 3"),
        (
            meta(wire::bytes(1, &wire::bytes(1, b"\xc3\x28"))),
            "field name is not UTF-8",
        ),
    ];
    for (body, want) in cases {
        let err = decode(&body).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .starts_with("the protobuf request body is malformed: ")
                && err.message.contains(want),
            "{want}: {}",
            err.message
        );
    }
    let err = decode(b"\x0a\x00").unwrap_err();
    assert!(err.message.contains("'k8s\\0' prefix"), "{}", err.message);
    let err = decode(&wire::envelope("v1", "Pod", &[])).unwrap_err();
    assert_eq!(err.code, 415);
    assert!(
        err.message.contains("Pod v1; send it as JSON or YAML"),
        "{}",
        err.message
    );
}

#[test]
fn the_openapi_v2_document_the_server_encodes_reads_back() {
    let info: &[Field] = &[(1, "title", F::Str), (2, "version", F::Str)];
    let document: &[Field] = &[(1, "swagger", F::Str), (2, "info", F::Msg(info))];
    let bytes = crate::apiserver::discovery::openapi_v2_protobuf();
    assert_eq!(
        message(&bytes, document).unwrap(),
        json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.37.2"}})
    );
}

#[test]
fn varints_round_trip_through_the_reader() {
    for v in [0, 1, 127, 128, 300, 1 << 35, u64::MAX] {
        let bytes = wire::varint(v);
        let mut r = Reader::new(&bytes);
        assert_eq!(r.varint().unwrap(), v);
        assert_eq!(r.pos, bytes.len());
    }
}
