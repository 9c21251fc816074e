//! frontend -> API -> Redis end to end, with real processes on free ports.

mod support;

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hello_k8s::message::MAX_MESSAGE_BYTES;
use support::{App, Redis, client, get, post_form, send, stored, wait_until_async};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

struct Stack {
    redis: Redis,
    api: App,
    frontend: App,
}

fn stack() -> Stack {
    let redis = Redis::start();
    let api = App::api(redis.port, &[]);
    let frontend = App::frontend(api.port, &[]);
    Stack {
        redis,
        api,
        frontend,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_store_page_shows_form_no_messages_and_pods() {
    let s = stack();
    let page = get(&s.frontend.base).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(page.body.contains("Leave us a kind message"));
    assert!(page.body.contains("No messages yet"));
    assert!(page.body.contains("frontend-pod-1"), "serving pod shown");
    assert!(page.body.contains("api-pod-1"), "answering API pod shown");
    assert!(page.body.contains("<style>"), "CSS embedded");
    assert!(
        !page.body.contains("http://") && !page.body.contains("https://"),
        "no external resources"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_message_is_escaped_after_post_redirect_get() {
    let s = stack();
    let posted = post_form(&s.frontend.base, b"<script>alert('x')</script> & hi").await;
    assert_eq!(posted.status, 303, "POST / redirects: {}", posted.body);
    assert_eq!(posted.headers["location"], "/");
    assert_eq!(stored(&s.redis), 1);

    post_form(&s.frontend.base, b"second").await;
    let page = get(&s.frontend.base).await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("<script>"),
        "raw script tag in page: {}",
        page.body
    );
    assert!(
        page.body
            .contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; hi")
            || page
                .body
                .contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; hi"),
        "{}",
        page.body
    );
    let first = page.body.find("second").expect("second message shown");
    let older = page
        .body
        .find("&lt;script&gt;")
        .expect("first message shown");
    assert!(first < older, "newest first");

    // The original API's shapes.
    let compat = get(&s.api.base).await.json();
    assert_eq!(compat["status"], "success");
    assert_eq!(compat["messages"][0], "second");
    assert_eq!(compat["messages"][1], "<script>alert('x')</script> & hi");
    let c = client();
    let new = send(&c, "POST", &format!("{}/new", s.api.base), None, "raw body").await;
    assert_eq!(new.status, 200);
    assert_eq!(new.json()["message"], "raw body");
    let json = send(
        &c,
        "GET",
        &format!("{}/api/v1/messages?limit=2", s.api.base),
        None,
        Bytes::new(),
    )
    .await
    .json();
    assert_eq!(json["pod"], "api-pod-1");
    assert_eq!(json["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["messages"][0]["id"], 3);
    assert_eq!(json["messages"][0]["text"], "raw body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_4xx_and_nothing_is_stored() {
    let s = stack();
    let c = client();
    let new = format!("{}/new", s.api.base);
    let v1 = format!("{}/api/v1/messages", s.api.base);
    let too_big = vec![b'a'; MAX_MESSAGE_BYTES + 1];
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("POST", &new, b"".to_vec(), 400),
        ("POST", &new, b"  \n\t ".to_vec(), 400),
        ("POST", &new, vec![0xff, 0xfe, b'a'], 400),
        ("POST", &new, too_big.clone(), 413),
        ("POST", &new, vec![b'a'; 100 * 1024], 413),
        ("POST", &v1, b"{\"text\": \"   \"}".to_vec(), 400),
        ("POST", &v1, b"not json".to_vec(), 400),
        (
            "POST",
            &v1,
            format!("{{\"text\": \"{}\"}}", "b".repeat(MAX_MESSAGE_BYTES + 1)).into_bytes(),
            413,
        ),
    ];
    for (method, url, body, want) in cases {
        let a = send(&c, method, url, Some("application/json"), body.clone()).await;
        assert_eq!(
            a.status,
            want,
            "{method} {url} {:?}: {}",
            String::from_utf8_lossy(&body[..body.len().min(40)]),
            a.body
        );
        assert_eq!(a.json()["status"], "error", "JSON error body: {}", a.body);
    }
    let bad_limit = send(&c, "GET", &format!("{v1}?limit=0"), None, Bytes::new()).await;
    assert_eq!(bad_limit.status, 400);

    let fe = &s.frontend.base;
    let empty = post_form(fe, b"   ").await;
    assert_eq!(empty.status, 400);
    assert!(empty.body.contains("empty"), "{}", empty.body);
    let big = post_form(fe, &too_big).await;
    assert_eq!(big.status, 413);
    assert!(
        big.body.contains(&"a".repeat(MAX_MESSAGE_BYTES)),
        "draft kept in the form"
    );
    assert_eq!(post_form(fe, &[0xc3, 0x28]).await.status, 400);
    assert_eq!(stored(&s.redis), 0, "nothing stored for refused messages");

    let exact = send(&c, "POST", &new, None, vec![b'z'; MAX_MESSAGE_BYTES]).await;
    assert_eq!(exact.status, 200, "exactly the limit is accepted");
    assert_eq!(stored(&s.redis), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_posts_store_exactly_thousand() {
    let redis = Redis::start();
    let api = App::api(redis.port, &[]);
    let c = client();
    let url = Arc::new(format!("{}/api/v1/messages", api.base));
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let c = c.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let body = format!("{{\"text\": \"message {i}\"}}");
                let a = send(&c, "POST", &url, Some("application/json"), body).await;
                assert_eq!(a.status, 201, "{}", a.body);
                a.json()["message"]["id"].as_u64().expect("id")
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for t in tasks {
        assert!(ids.insert(t.await.expect("task")), "duplicate id");
    }
    assert_eq!(ids, (1..=1000).collect::<HashSet<u64>>());
    assert_eq!(stored(&redis), 1000);
    let list = send(&c, "GET", &format!("{url}?limit=1000"), None, Bytes::new())
        .await
        .json();
    let texts: HashSet<String> = list["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().expect("text").to_owned())
        .collect();
    assert_eq!(
        texts,
        (0..1000)
            .map(|i| format!("message {i}"))
            .collect::<HashSet<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_gives_503_then_recovers_without_restart() {
    let mut s = stack();
    let pid = s.api.pid();
    assert_eq!(post_form(&s.frontend.base, b"before").await.status, 303);
    let port = s.redis.port;
    s.redis.kill();

    let c = client();
    let new = format!("{}/new", s.api.base);
    let down = send(&c, "POST", &new, None, "during").await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(down.json()["status"], "error");
    assert!(
        down.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("Redis")
    );
    assert_eq!(get(&format!("{}/readyz", s.api.base)).await.status, 503);
    let page = get(&s.frontend.base).await;
    assert_eq!(page.status, 503);
    assert!(
        page.body.contains("cannot reach its storage"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Leave us a kind message"),
        "page still renders"
    );

    s.redis = Redis::start_on(port);
    wait_until_async("the API to store again after Redis returned", || {
        let c = c.clone();
        let new = new.clone();
        async move { send(&c, "POST", &new, None, "after").await.status == 200 }
    })
    .await;
    assert!(
        s.api.running() && s.api.pid() == pid,
        "same API process recovered"
    );
    assert_eq!(get(&format!("{}/readyz", s.api.base)).await.status, 200);
    let page = get(&s.frontend.base).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_starts_before_redis_and_serves_once_it_is_up() {
    let redis_port = support::free_port();
    let api = App::api(redis_port, &[]);
    assert_eq!(get(&format!("{}/readyz", api.base)).await.status, 503);
    let c = client();
    let new = format!("{}/new", api.base);
    assert_eq!(send(&c, "POST", &new, None, "early").await.status, 503);
    // Longer than the store's reconnect retries: the failed connect is what it holds now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let redis = Redis::start_on(redis_port);
    // The first probe after Redis is up passes: a kubelet's first readiness probe decides
    // whether the pod is Ready now or one period later.
    let first = get(&format!("{}/readyz", api.base)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(send(&c, "POST", &new, None, "late").await.status, 200);
    assert_eq!(stored(&redis), 1, "the refused message was not stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_down_gives_frontend_503_page_then_recovers() {
    let redis = Redis::start();
    let api_port = support::free_port();
    let frontend = App::frontend(api_port, &[]);
    let page = get(&frontend.base).await;
    assert_eq!(page.status, 503);
    assert!(
        page.body.contains("The API is not responding"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Leave us a kind message"));
    assert_eq!(get(&format!("{}/healthz", frontend.base)).await.status, 200);
    assert_eq!(
        get(&format!("{}/readyz", frontend.base)).await.status,
        200,
        "the frontend stays ready while the API is down: its page says so, no cascade"
    );
    let posted = post_form(&frontend.base, b"keep me").await;
    assert_eq!(posted.status, 503);
    assert!(posted.body.contains("keep me"), "draft kept");

    let _api = App::api_on(api_port, redis.port, &[]);
    assert_eq!(get(&format!("{}/readyz", frontend.base)).await.status, 200);
    assert_eq!(get(&frontend.base).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_in_flight_request() {
    let redis = Redis::start();
    let mut api = App::api(redis.port, &[]);
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", api.port))
        .await
        .expect("connect");
    let body = b"sent during shutdown";
    let head = format!(
        "POST /new HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("write head");
    conn.write_all(&body[..5]).await.expect("write part");
    conn.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(200)).await;

    api.sigterm();
    api.wait_for_log("shutdown signal received");
    assert!(
        support::raw_get_status(api.port, "/healthz").is_none(),
        "no new connections accepted while draining"
    );
    // The request stays in flight for a while: the server must keep waiting for it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(api.running(), "still draining the open request");

    conn.write_all(&body[5..]).await.expect("write rest");
    let mut answer = Vec::new();
    tokio::time::timeout(support::WAIT, conn.read_to_end(&mut answer))
        .await
        .expect("answer in time")
        .expect("read answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("sent during shutdown"));
    assert!(api.wait_exit().success());
    assert_eq!(stored(&redis), 1);

    let lines = api.lines();
    assert!(lines.len() >= 3);
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{l}"
        );
    }
    assert!(lines.last().is_some_and(|l| l.contains("stopped")));
}

#[test]
fn bad_env_value_fails_at_start_naming_the_variable() {
    for (bin, var, value) in [
        (env!("CARGO_BIN_EXE_hello-k8s-frontend"), "HKF_PORT", "abc"),
        (
            env!("CARGO_BIN_EXE_hello-k8s-frontend"),
            "MAX_MSG_GET",
            "-3",
        ),
        (env!("CARGO_BIN_EXE_hello-k8s-api"), "REDIS_PORT", "99999"),
        (env!("CARGO_BIN_EXE_hello-k8s-api"), "HKA_HOST", "not-an-ip"),
    ] {
        let out = Command::new(bin)
            .env_clear()
            .env(var, value)
            .output()
            .expect("run binary");
        assert!(!out.status.success(), "{bin} {var}={value} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var) && err.contains(value), "{bin}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_hosts_from_env_uses_kubernetes_service_variables() {
    let redis = Redis::start();
    let api = App::api(
        9,
        &[
            ("GET_HOSTS_FROM", "env"),
            ("REDIS_SERVICE_HOST", "127.0.0.1"),
            ("REDIS_SERVICE_PORT", &redis.port.to_string()),
        ],
    );
    let api_port = api.port.to_string();
    let frontend = App::frontend(
        9,
        &[
            ("GET_HOSTS_FROM", "env"),
            ("API_HOST", "no-such-host.invalid"),
            ("API_SERVICE_HOST", "127.0.0.1"),
            ("API_SERVICE_PORT", &api_port),
        ],
    );
    assert_eq!(
        post_form(&frontend.base, b"via service env").await.status,
        303
    );
    assert_eq!(stored(&redis), 1);
}

/// The probe paths in the embedded manifests, by file, as (kind, port, path).
fn manifest_probes(file: &str) -> Vec<(String, u16, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../embedded-manifests")
        .join(file);
    let text = std::fs::read_to_string(&path).expect("read manifest");
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).expect("YAML");
    let mut out = Vec::new();
    for doc in docs {
        let Some(containers) = doc
            .pointer("/spec/template/spec/containers")
            .and_then(|c| c.as_array())
        else {
            continue;
        };
        for c in containers {
            for kind in ["livenessProbe", "readinessProbe"] {
                if let Some(h) = c.get(kind).and_then(|p| p.get("httpGet")) {
                    let port = h["port"].as_u64().expect("numeric probe port");
                    out.push((
                        kind.to_owned(),
                        u16::try_from(port).expect("port"),
                        h["path"].as_str().expect("path").to_owned(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_probe_paths_match_the_binaries() {
    let s = stack();
    let status = |port: u16, path: &str| {
        let base = if port == 5000 {
            &s.api.base
        } else {
            &s.frontend.base
        };
        let url = format!("{base}{path}");
        async move { get(&url).await.status }
    };
    for file in [
        "03-api-deployment.yml",
        "05-frontend-deployment.yml",
        "10-frontend-liveness.yml",
        "11-api-liveness.yml",
    ] {
        let probes = manifest_probes(file);
        assert!(!probes.is_empty(), "{file} has HTTP probes");
        for (kind, port, path) in probes {
            assert_eq!(status(port, &path).await, 200, "{file} {kind} {path}");
        }
    }
    let broken = manifest_probes("12-api-liveness-404.yml");
    let liveness = broken
        .iter()
        .find(|(k, _, _)| k == "livenessProbe")
        .expect("12 has a liveness probe");
    assert_eq!(
        status(liveness.1, &liveness.2).await,
        404,
        "12 breaks liveness on purpose"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_form_sent_twice_is_stored_once() {
    let s = stack();
    let page = get(&s.frontend.base).await;
    let start = page
        .body
        .find("name=\"key\" value=\"")
        .expect("the form carries a key")
        + "name=\"key\" value=\"".len();
    let key = &page.body[start..start + page.body[start..].find('"').unwrap()];
    let body = format!("key={key}&msg=only+once");
    let c = client();
    for attempt in ["first", "resent"] {
        let sent = send(
            &c,
            "POST",
            &s.frontend.base,
            Some("application/x-www-form-urlencoded"),
            body.clone(),
        )
        .await;
        assert_eq!(sent.status, 303, "{attempt}: {}", sent.body);
    }
    assert_eq!(stored(&s.redis), 1, "a resent form is not stored twice");
    let next = get(&s.frontend.base).await;
    assert!(
        !next.body.contains(&format!("value=\"{key}\"")),
        "each page gets a new key"
    );
    assert_eq!(post_form(&s.frontend.base, b"another").await.status, 303);
    assert_eq!(
        stored(&s.redis),
        2,
        "a form without a key is stored as before"
    );
}
