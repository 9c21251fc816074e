//! The sandbox judged by real Kubernetes: every request sequence in `tests/differential/*.yaml`
//! goes to the sandbox (in process, API only) and to the reference control plane (real
//! kube-apiserver 1.37.2 with its controllers, `reference/`), step by step. Responses are
//! compared after normalizing what legitimately differs (uids, timestamps, resourceVersions,
//! generated names, IPs, node ports, ages in Table cells) and leaving out the managedFields
//! entries of the reference's kube-controller-manager (the sandbox runs API only here; the
//! controllers are judged by the lessons on the reference). Each difference must be listed in
//! `tests/differential/known-differences.txt` with its reason; the test fails on a difference
//! that is not listed and on a listed one that no longer occurs, so the list only shrinks.
//!
//! A step of a sequence file (`steps:`), all fields but `name` optional:
//! - `method`, `path` (`{ns}` is the sequence's namespace, `{rv:STEP}` / `{rv:STEP+N}` the
//!   resourceVersion of STEP's response on the same server, `{name:STEP}` its name),
//!   `body` (YAML, sent as JSON), `rawBody` (sent verbatim), `contentType`, `accept`;
//! - `manifest: FILE[#DOC]` with `verb` (create, apply, serverSideApply, get, table, delete) and
//!   optional `query`: the path and body come from the embedded manifest;
//! - `fill: {pointer, bytes}`: sets the string at `pointer` in the body to that many `x`s;
//! - `watchSeconds`: the response is a watch stream, read for that long, compared event by event;
//! - `untilCode`: repeat the request (up to 30 s) until it answers with this status code;
//! - `waitSeconds`: pause before the request; `timeoutSeconds`: how long to wait for an
//!   answer (default 60; a server that gives none answers `{code: 0}`). A step with its own
//!   `timeoutSeconds` that the reference leaves unanswered is printed and not compared: the
//!   kube-apiserver 1.37.2 built here answers a list at a future resourceVersion with 504
//!   after 3 s on some machines and not at all on others;
//! - `ignore: [POINTER]`: left out of the comparison on both sides (what controllers write,
//!   which the API-only sandbox does not run; the sequence's description says why).

#[path = "differential/reference.rs"]
mod reference;

use futures::FutureExt;
use hk8s_sandbox::{NodeRuntime, Sandbox, SandboxConfig};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

const USER_AGENT: &str = "hk8s-differential/1.37.2 (linux/amd64)";
/// The field manager of the reference's controllers, whose writes the API-only sandbox has no
/// counterpart for: their managedFields entries are left out on both sides.
const CONTROLLERS: &str = "kube-controller-manager";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sequence {
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Step {
    name: String,
    method: Option<String>,
    path: Option<String>,
    body: Option<Value>,
    raw_body: Option<String>,
    content_type: Option<String>,
    accept: Option<String>,
    manifest: Option<String>,
    verb: Option<String>,
    query: Option<String>,
    fill: Option<Fill>,
    watch_seconds: Option<f64>,
    until_code: Option<u16>,
    wait_seconds: Option<f64>,
    timeout_seconds: Option<u64>,
    #[serde(default)]
    ignore: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct Fill {
    pointer: String,
    bytes: usize,
}

/// One request, ready to send to either server (before per-server substitutions).
struct Request {
    method: String,
    path: String,
    content_type: Option<String>,
    accept: Option<String>,
    body: Vec<u8>,
    watch: Option<Duration>,
    timeout: Duration,
}

/// One server under test, with what its earlier responses in this sequence said.
struct Target {
    client: kube::Client,
    responses: HashMap<String, Value>,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

fn timeout(step: &Step) -> Duration {
    step.timeout_seconds
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `apps/v1` + `Deployment` + namespace → the collection path.
fn collection_path(api_version: &str, kind: &str, ns: &str) -> String {
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    format!("{prefix}/namespaces/{ns}/{}s", kind.to_lowercase())
}

fn load_manifest(spec: &str) -> Value {
    let (file, doc) = match spec.split_once('#') {
        Some((f, d)) => (f, d.parse::<usize>().expect("a document index after #")),
        None => (spec, 0),
    };
    let text = std::fs::read_to_string(repo_root().join("embedded-manifests").join(file))
        .unwrap_or_else(|e| panic!("embedded manifest {file}: {e}"));
    let docs: Vec<&str> = text
        .split("\n---")
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        })
        .collect();
    serde_saphyr::from_str(docs[doc]).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn manifest_request(step: &Step, spec: &str, ns: &str) -> Request {
    let object = load_manifest(spec);
    let kind = object["kind"].as_str().expect("kind");
    let name = object["metadata"]["name"].as_str().expect("metadata.name");
    let collection = collection_path(object["apiVersion"].as_str().expect("apiVersion"), kind, ns);
    let item = format!("{collection}/{name}");
    let with_query = |path: String, extra: &str| {
        let q: Vec<&str> = [extra, step.query.as_deref().unwrap_or("")]
            .into_iter()
            .filter(|q| !q.is_empty())
            .collect();
        if q.is_empty() {
            path
        } else {
            format!("{path}?{}", q.join("&"))
        }
    };
    let json_body = |v: &Value| serde_json::to_vec(v).unwrap();
    let (method, path, content_type, body) = match step.verb.as_deref().unwrap_or("create") {
        "create" => (
            "POST",
            with_query(collection, ""),
            "application/json",
            json_body(&object),
        ),
        "apply" => {
            let mut annotated = object.clone();
            let last_applied = serde_json::to_string(&object).unwrap();
            annotated["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
                json!(last_applied);
            (
                "POST",
                with_query(collection, "fieldManager=kubectl-client-side-apply"),
                "application/json",
                json_body(&annotated),
            )
        }
        "serverSideApply" => (
            "PATCH",
            with_query(item, "fieldManager=kubectl"),
            "application/apply-patch+yaml",
            json_body(&object),
        ),
        "get" | "table" => ("GET", with_query(item, ""), "", Vec::new()),
        "delete" => ("DELETE", with_query(item, ""), "", Vec::new()),
        other => panic!("step {}: unknown verb {other}", step.name),
    };
    Request {
        method: method.into(),
        path,
        content_type: (!content_type.is_empty()).then(|| content_type.into()),
        accept: match step.verb.as_deref() {
            Some("table") => Some(TABLE.into()),
            _ => step.accept.clone(),
        },
        body,
        watch: None,
        timeout: timeout(step),
    }
}

fn request(step: &Step, ns: &str) -> Request {
    if let Some(spec) = &step.manifest {
        return manifest_request(step, spec, ns);
    }
    let mut body = step.body.clone();
    if let (Some(fill), Some(b)) = (&step.fill, body.as_mut()) {
        *b.pointer_mut(&fill.pointer)
            .expect("fill.pointer inside the body") = json!("x".repeat(fill.bytes));
    }
    let body = match (&step.raw_body, &body) {
        (Some(raw), _) => raw.clone().into_bytes(),
        (None, Some(b)) => serde_json::to_vec(b).unwrap(),
        (None, None) => Vec::new(),
    };
    let method = step.method.clone().unwrap_or_else(|| "GET".into());
    let content_type = step.content_type.clone().or_else(|| {
        (!body.is_empty()).then(|| match method.as_str() {
            "PATCH" => "application/merge-patch+json".to_string(),
            _ => "application/json".to_string(),
        })
    });
    Request {
        method,
        path: step
            .path
            .clone()
            .expect("a step without manifest needs a path"),
        content_type,
        accept: step.accept.clone(),
        body,
        watch: step.watch_seconds.map(Duration::from_secs_f64),
        timeout: timeout(step),
    }
}

/// Replaces `{ns}`, `{rv:STEP}`, `{rv:STEP+N}` and `{name:STEP}` in a path.
fn substitute(path: &str, ns: &str, responses: &HashMap<String, Value>) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closing }") + start;
        let token = &rest[start + 1..end];
        let value = match token.split_once(':') {
            None if token == "ns" => ns.to_string(),
            Some(("rv", step)) => {
                let (step, add) = match step.split_once('+') {
                    Some((s, n)) => (s, n.parse::<u64>().expect("a number after +")),
                    None => (step, 0),
                };
                let rv = responses[step]["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_else(|| panic!("step {step} has no resourceVersion"))
                    .parse::<u64>()
                    .expect("a numeric resourceVersion");
                (rv + add).to_string()
            }
            Some(("name", step)) => responses[step]["metadata"]["name"]
                .as_str()
                .unwrap_or_else(|| panic!("step {step} has no name"))
                .to_string(),
            _ => panic!("unknown substitution {{{token}}} in {path}"),
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn parse_body(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| json!({ "text": String::from_utf8_lossy(bytes).trim_end() }))
}

/// Reads a watch stream for `window`, one JSON event per line.
async fn read_events(body: kube::client::Body, window: Duration) -> Value {
    let mut body = body;
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
            Ok(Some(Err(e))) => {
                buf.extend_from_slice(
                    format!("\n{{\"streamError\":{:?}}}\n", e.to_string()).as_bytes(),
                );
                break;
            }
            Ok(None) | Err(_) => break,
        }
    }
    let events: Vec<Value> = buf
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(parse_body)
        .collect();
    Value::Array(events)
}

/// Sends one request; the answer as `{code, body}` (body: JSON, or `{text}`, or the events).
async fn send(client: &kube::Client, req: &Request, path: &str) -> Value {
    let mut builder = http::Request::builder()
        .method(req.method.as_str())
        .uri(path)
        .header("user-agent", USER_AGENT);
    if let Some(ct) = &req.content_type {
        builder = builder.header("content-type", ct);
    }
    if let Some(accept) = &req.accept {
        builder = builder.header("accept", accept);
    }
    let http_req = builder
        .body(kube::client::Body::from(req.body.clone()))
        .unwrap();
    let Ok(resp) = tokio::time::timeout(req.timeout, client.send(http_req)).await else {
        let body = format!("no answer within {} s", req.timeout.as_secs());
        return json!({ "code": 0, "body": body });
    };
    let resp = resp.unwrap_or_else(|e| panic!("{} {path}: {e}", req.method));
    let code = resp.status().as_u16();
    let body = match req.watch {
        Some(window) if code == 200 => read_events(resp.into_body(), window).await,
        _ => {
            let bytes = resp.into_body().collect().await.map(|b| b.to_bytes());
            parse_body(&bytes.unwrap_or_default())
        }
    };
    json!({ "code": code, "body": body })
}

async fn run_step(target: &mut Target, step: &Step, ns: &str) -> Value {
    if let Some(wait) = step.wait_seconds {
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    }
    let req = request(step, ns);
    let path = substitute(&req.path, ns, &target.responses);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut answer = send(&target.client, &req, &path).await;
    while let Some(code) = step.until_code {
        if answer["code"] == json!(code) || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        answer = send(&target.client, &req, &path).await;
    }
    target
        .responses
        .insert(step.name.clone(), answer["body"].clone());
    answer
}

fn is_timestamp(s: &str) -> bool {
    jiff::Timestamp::from_str(s).is_ok()
}

fn is_age(s: &str) -> bool {
    let mut digits = false;
    let mut units = 0;
    for c in s.chars() {
        match c {
            '0'..='9' => digits = true,
            's' | 'm' | 'h' | 'd' | 'y' if digits => {
                units += 1;
                digits = false;
            }
            _ => return false,
        }
    }
    units > 0 && !digits || s == "<invalid>"
}

use std::str::FromStr;

/// `80:30522/TCP` → `80:<port>/TCP`: node ports are allocated at random.
fn node_ports_hidden(cell: &str) -> String {
    cell.split(',')
        .map(|port| match port.split_once(':') {
            Some((p, rest)) => match rest.split_once('/') {
                Some((node, proto)) if node.parse::<u16>().is_ok() => format!("{p}:<port>/{proto}"),
                _ => port.to_string(),
            },
            None => port.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Rewrites what legitimately differs between two servers to placeholders, in place.
fn normalize(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => normalize_object(map),
        Value::Array(items) => items.iter_mut().for_each(|v| normalize(v, key)),
        Value::String(s) => {
            let placeholder = match key {
                "uid" => Some("<uid>"),
                "resourceVersion" | "continue" => Some("<rv>"),
                "cells" if is_age(s) => Some("<age>"),
                "cells" if s.contains('/') => {
                    *s = node_ports_hidden(s);
                    None
                }
                _ if is_timestamp(s) => Some("<time>"),
                _ if std::net::Ipv4Addr::from_str(s).is_ok() => Some("<ip>"),
                _ => None,
            };
            if let Some(p) = placeholder {
                *s = p.to_string();
            }
        }
        Value::Number(_) if matches!(key, "nodePort" | "healthCheckNodePort") => {
            *value = json!("<port>");
        }
        _ => {}
    }
}

fn normalize_object(map: &mut Map<String, Value>) {
    if let Some(Value::Array(entries)) = map.get_mut("managedFields") {
        entries.retain(|e| e["manager"] != CONTROLLERS);
        // Kubernetes orders entries by operation, then time (to the second), then manager:
        // times differ between the servers, so both sides are put in a time-free order.
        entries.sort_by_key(|e| {
            ["operation", "manager", "subresource"].map(|k| e[k].as_str().unwrap_or("").to_string())
        });
    }
    if let (Some(Value::String(generate)), Some(Value::String(name))) =
        (map.get("generateName").cloned(), map.get_mut("name"))
        && name.starts_with(&generate)
        && name.len() > generate.len()
    {
        *name = format!("{generate}<generated>");
    }
    for (k, v) in map.iter_mut() {
        normalize(v, k);
    }
}

fn remove(value: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').expect("a JSON pointer");
    let last = last.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last);
            if map.is_empty() && !parent.is_empty() {
                remove(value, parent);
            }
        }
        Some(Value::Array(items)) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => items[i] = json!("<ignored>"),
            Ok(i) if i == items.len() => items.push(json!("<ignored>")),
            _ => {}
        },
        _ => {}
    }
}

/// One observed difference: where, and what each server said.
#[derive(Debug, Clone)]
struct Difference {
    sequence: String,
    step: String,
    pointer: String,
    sandbox: String,
    reference: String,
}

fn summary(v: Option<&Value>) -> String {
    let s = v.map_or("<absent>".to_string(), |v| v.to_string());
    if s.len() > 160 {
        format!("{}…", &s[..s.floor_char_boundary(160)])
    } else {
        s
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn diff(
    pointer: &str,
    s: Option<&Value>,
    r: Option<&Value>,
    out: &mut Vec<(String, String, String)>,
) {
    match (s, r) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                diff(&format!("{pointer}/{}", escape(k)), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                diff(&format!("{pointer}/{i}"), a.get(i), b.get(i), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push((pointer.to_string(), summary(a), summary(b))),
    }
}

/// A line of known-differences.txt: `SEQUENCE:STEP POINTER REASON`; `*` matches any
/// sequence or step. The pointer matches itself and everything under it; in it `*` stands for
/// one segment and `**` for any number of them.
#[derive(Debug)]
struct Known {
    line: usize,
    sequence: String,
    step: String,
    pointer: String,
    text: String,
}

impl Known {
    fn matches(&self, d: &Difference) -> bool {
        (self.sequence == "*" || self.sequence == d.sequence)
            && (self.step == "*" || self.step == d.step)
            && pointer_matches(
                &self.pointer.split('/').collect::<Vec<_>>(),
                &d.pointer.split('/').collect::<Vec<_>>(),
            )
    }
}

fn pointer_matches(pattern: &[&str], pointer: &[&str]) -> bool {
    match pattern.split_first() {
        None => true,
        Some((&"**", rest)) => {
            (0..=pointer.len()).any(|skip| pointer_matches(rest, &pointer[skip..]))
        }
        Some((first, rest)) => pointer.split_first().is_some_and(|(segment, tail)| {
            (*first == "*" || first == segment) && pointer_matches(rest, tail)
        }),
    }
}

fn read_known(path: &Path) -> Vec<Known> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let mut parts = l.split_whitespace();
            let key = parts.next().unwrap();
            let pointer = parts
                .next()
                .unwrap_or_else(|| panic!("{}:{}: no pointer", path.display(), i + 1));
            let reason: Vec<&str> = parts.collect();
            assert!(
                !reason.is_empty(),
                "{}:{}: every known difference needs its reason",
                path.display(),
                i + 1
            );
            let (sequence, step) = key
                .split_once(':')
                .unwrap_or_else(|| panic!("{}:{}: expected SEQUENCE:STEP", path.display(), i + 1));
            Known {
                line: i + 1,
                sequence: sequence.into(),
                step: step.into(),
                pointer: pointer.into(),
                text: l.to_string(),
            }
        })
        .collect()
}

/// Creates the sequence's namespace on a server; on the reference, waits for the
/// ServiceAccount controller's `default` account, which pod admission requires.
async fn prepare_namespace(target: &mut Target, ns: &str, wait_for_service_account: bool) {
    let create = Request {
        method: "POST".into(),
        path: "/api/v1/namespaces".into(),
        content_type: Some("application/json".into()),
        accept: None,
        body: serde_json::to_vec(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .unwrap(),
        watch: None,
        timeout: DEFAULT_TIMEOUT,
    };
    let answer = send(&target.client, &create, "/api/v1/namespaces").await;
    assert_eq!(
        answer["code"],
        json!(201),
        "creating namespace {ns}: {answer}"
    );
    if !wait_for_service_account {
        return;
    }
    let get = Request {
        method: "GET".into(),
        path: String::new(),
        content_type: None,
        accept: None,
        body: Vec::new(),
        watch: None,
        timeout: DEFAULT_TIMEOUT,
    };
    let sa = format!("/api/v1/namespaces/{ns}/serviceaccounts/default");
    for _ in 0..100 {
        if send(&target.client, &get, &sa).await["code"] == json!(200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_sequence(
    name: &str,
    sequence: &Sequence,
    sandbox: &mut Target,
    reference: &mut Target,
    out: &mut Vec<Difference>,
) {
    let ns = format!("diff-{name}");
    prepare_namespace(reference, &ns, true).await;
    prepare_namespace(sandbox, &ns, false).await;
    sandbox.responses.clear();
    reference.responses.clear();
    for step in &sequence.steps {
        let started = std::time::Instant::now();
        let (mut s, mut r) = futures::join!(
            run_step(sandbox, step, &ns).boxed(),
            run_step(reference, step, &ns).boxed()
        );
        if started.elapsed() > Duration::from_secs(2) {
            eprintln!("{name}:{} took {:?}", step.name, started.elapsed());
        }
        if step.timeout_seconds.is_some() && r["code"] == json!(0) {
            eprintln!(
                "{name}:{}: the reference gave no answer within {:?}; not compared (the sandbox answered {})",
                step.name,
                timeout(step),
                s["code"]
            );
            continue;
        }
        normalize(&mut s, "");
        normalize(&mut r, "");
        for pointer in &step.ignore {
            remove(&mut s, pointer);
            remove(&mut r, pointer);
        }
        let mut found = Vec::new();
        diff("", Some(&s), Some(&r), &mut found);
        out.extend(
            found
                .into_iter()
                .map(|(pointer, sandbox, reference)| Difference {
                    sequence: name.to_string(),
                    step: step.name.clone(),
                    pointer,
                    sandbox,
                    reference,
                }),
        );
    }
}

fn corpus() -> BTreeMap<String, Sequence> {
    let dir = repo_root().join("tests/differential");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("tests/differential") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let seq: Sequence =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let mut names = std::collections::HashSet::new();
            for step in &seq.steps {
                assert!(
                    names.insert(step.name.clone()),
                    "{}: step {} twice",
                    path.display(),
                    step.name
                );
            }
            out.insert(
                path.file_stem().unwrap().to_string_lossy().into_owned(),
                seq,
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sandbox_answers_as_the_reference_control_plane_does() {
    let corpus = corpus();
    assert!(!corpus.is_empty(), "no sequences in tests/differential");
    let started = std::time::Instant::now();
    let reference_plane = reference::Reference::start();
    eprintln!(
        "differential: reference control plane ready in {:.1?}",
        started.elapsed()
    );
    let dir = tempfile::tempdir().unwrap();
    let sandbox_server = Sandbox::start(
        SandboxConfig::new(dir.path().join("state")).with_runtime(NodeRuntime::ApiOnly),
    )
    .await
    .expect("the sandbox starts");
    let mut sandbox = Target {
        client: sandbox_server.client().unwrap(),
        responses: HashMap::new(),
    };
    let mut reference = Target {
        client: reference_plane.client().await,
        responses: HashMap::new(),
    };
    let only = std::env::var("HK8S_DIFFERENTIAL_ONLY").ok();
    let mut differences = Vec::new();
    for (name, sequence) in &corpus {
        if only.as_ref().is_some_and(|o| o != name) {
            continue;
        }
        let started = std::time::Instant::now();
        run_sequence(
            name,
            sequence,
            &mut sandbox,
            &mut reference,
            &mut differences,
        )
        .await;
        eprintln!(
            "differential: {name}: {} steps in {:.1?}",
            sequence.steps.len(),
            started.elapsed()
        );
    }
    sandbox_server.shutdown().await;

    let known_path = repo_root().join("tests/differential/known-differences.txt");
    let known = read_known(&known_path);
    let mut used = vec![false; known.len()];
    let mut unlisted = Vec::new();
    for d in &differences {
        let mut listed = false;
        for (k, used) in known.iter().zip(used.iter_mut()) {
            if k.matches(d) {
                *used = true;
                listed = true;
            }
        }
        if !listed {
            unlisted.push(d);
        }
    }
    let stale: Vec<&Known> = known
        .iter()
        .zip(&used)
        .filter(|(k, used)| {
            !**used && (only.is_none() || only.as_deref() == Some(k.sequence.as_str()))
        })
        .map(|(k, _)| k)
        .collect();
    let mut report = String::new();
    for d in &unlisted {
        report.push_str(&format!(
            "unlisted difference: {}:{} {}\n    sandbox:   {}\n    reference: {}\n",
            d.sequence, d.step, d.pointer, d.sandbox, d.reference
        ));
    }
    for k in &stale {
        report.push_str(&format!(
            "listed difference no longer seen (remove line {} of known-differences.txt): {}\n",
            k.line, k.text
        ));
    }
    assert!(
        report.is_empty(),
        "{} differences not in {} and {} listed ones gone:\n{report}",
        unlisted.len(),
        known_path.display(),
        stale.len()
    );
}
