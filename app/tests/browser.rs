//! A real headless Chromium, driven over the DevTools protocol, loads the page, types a
//! message into the form, clicks Send, and finds the message on the reloaded page.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use support::{App, Redis, WAIT, get, stored};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Headless Chromium with a throwaway profile; stopped on drop.
struct Chromium {
    child: Child,
    _profile: tempfile::TempDir,
    port: u16,
}

impl Chromium {
    fn start(url: &str) -> Chromium {
        let profile = tempfile::tempdir().expect("profile dir");
        let log = profile.path().join("chromium.log");
        let mut child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("chromium log"))
            .spawn()
            .expect("chromium must be installed (Debian package chromium)");
        let port = devtools_port(&mut child, &profile.path().join("DevToolsActivePort"), &log);
        Chromium {
            child,
            _profile: profile,
            port,
        }
    }
}

/// The DevTools port Chromium writes once it is up. A cold first start on a loaded machine
/// has taken over 20 s, so this waits longer than the other waits, and shows Chromium's own
/// output if it exits or never gets there.
fn devtools_port(child: &mut Child, port_file: &Path, log: &Path) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let port = std::fs::read_to_string(port_file)
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse().ok()));
        if let Some(port) = port {
            return port;
        }
        let exited = child.try_wait().ok().flatten();
        let log_text = || std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            exited.is_none(),
            "Chromium exited ({exited:?}) before it was up:\n{}",
            log_text()
        );
        assert!(
            Instant::now() < deadline,
            "Chromium did not write its DevToolsActivePort within 90 s:\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Chromium {
    /// SIGTERM lets the browser close its own helper processes; SIGKILL if it lingers.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A minimal DevTools protocol client for one page target.
struct Page {
    ws: Ws,
    next_id: u64,
}

impl Page {
    async fn attach(chromium: &Chromium, url_prefix: &str) -> Page {
        let list_url = format!("http://127.0.0.1:{}/json/list", chromium.port);
        let mut ws_url = None;
        let start = Instant::now();
        while ws_url.is_none() {
            assert!(start.elapsed() < WAIT, "no page target for {url_prefix}");
            let targets = get(&list_url).await.json();
            ws_url = targets.as_array().and_then(|ts| {
                ts.iter()
                    .find(|t| {
                        t["type"] == "page"
                            && t["url"].as_str().is_some_and(|u| u.starts_with(url_prefix))
                    })
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
            });
            if ws_url.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let url = ws_url.expect("target");
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url.as_str()))
            .await
            .expect("DevTools connect in time")
            .expect("DevTools websocket");
        Page { ws, next_id: 1 }
    }

    /// Sends a command and returns its `result`, skipping events.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws
            .send(WsMessage::text(msg))
            .await
            .map_err(|e| format!("send {method}: {e}"))?;
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.ws.next())
                .await
                .map_err(|_| format!("{method}: no answer within {WAIT:?}"))?
                .ok_or_else(|| format!("{method}: DevTools connection closed"))?
                .map_err(|e| format!("{method}: {e}"))?;
            let WsMessage::Text(text) = frame else {
                continue;
            };
            let v: Value = serde_json::from_str(text.as_str()).map_err(|e| e.to_string())?;
            if v["id"].as_u64() != Some(id) {
                continue;
            }
            if let Some(err) = v.get("error") {
                return Err(format!("{method}: {err}"));
            }
            return Ok(v["result"].clone());
        }
    }

    /// Evaluates a JavaScript expression and returns its JSON value.
    async fn eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("{expr}: {ex}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Re-evaluates `expr` until it yields `true` (errors during navigation are retried).
    async fn wait_true(&mut self, what: &str, expr: &str) {
        let start = Instant::now();
        loop {
            if self.eval(expr).await == Ok(Value::Bool(true)) {
                return;
            }
            assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks at the centre of the element matched by `selector`, like a user would.
    async fn click(&mut self, selector: &str) {
        let rect = self
            .eval(&format!(
                "(() => {{ const r = document.querySelector({sel}).getBoundingClientRect(); \
                 return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
                sel = json!(selector)
            ))
            .await
            .expect("element position");
        let (x, y) = (rect[0].as_f64().expect("x"), rect[1].as_f64().expect("y"));
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await
            .expect("mouse event");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_submits_the_form_and_sees_the_message_after_reload() {
    let redis = Redis::start();
    let api = App::api(redis.port, &[]);
    let frontend = App::frontend(api.port, &[]);
    let url = format!("{}/", frontend.base);
    let chromium = Chromium::start(&url);
    let mut page = Page::attach(&chromium, &url).await;

    page.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 375, "height": 740, "deviceScaleFactor": 2, "mobile": true}),
    )
    .await
    .expect("phone viewport");
    page.wait_true(
        "the form",
        "document.readyState === 'complete' && !!document.querySelector('textarea[name=msg]')",
    )
    .await;
    let empty = page.eval("document.body.innerText").await.expect("text");
    assert!(
        empty.as_str().unwrap_or("").contains("No messages yet"),
        "{empty}"
    );
    page.eval("window.hk8sBeforeSubmit = true")
        .await
        .expect("marker");

    let msg = "Hello from <b>Chromium</b> & friends";
    page.eval("document.querySelector('textarea[name=msg]').focus()")
        .await
        .expect("focus");
    page.call("Input.insertText", json!({"text": msg}))
        .await
        .expect("type the message");
    let typed = page
        .eval("document.querySelector('textarea[name=msg]').value")
        .await
        .expect("value");
    assert_eq!(typed, msg);
    page.click("form button[type=submit]").await;

    page.wait_true(
        "the reloaded page showing the message",
        &format!(
            "window.hk8sBeforeSubmit === undefined && document.readyState === 'complete' && \
             [...document.querySelectorAll('ol.messages li p')].some(p => p.textContent === {})",
            json!(msg)
        ),
    )
    .await;
    let state = page
        .eval(
            "({path: location.pathname, \
               nav: performance.getEntriesByType('navigation')[0].type, \
               draft: document.querySelector('textarea[name=msg]').value, \
               injected: document.querySelectorAll('ol.messages b').length, \
               buttonBg: getComputedStyle(document.querySelector('button')).backgroundColor, \
               scrollWidth: document.documentElement.scrollWidth, \
               external: performance.getEntriesByType('resource').length})",
        )
        .await
        .expect("page state");
    assert_eq!(state["path"], "/", "redirected back to /: {state}");
    assert_eq!(state["nav"], "navigate", "{state}");
    assert_eq!(
        state["draft"], "",
        "the form is empty after the redirect: {state}"
    );
    assert_eq!(state["injected"], 0, "message markup is escaped: {state}");
    assert_eq!(
        state["buttonBg"], "rgb(42, 77, 160)",
        "embedded CSS applied: {state}"
    );
    assert!(
        state["scrollWidth"].as_u64().is_some_and(|w| w <= 375),
        "fits a phone: {state}"
    );
    assert_eq!(state["external"], 0, "no external resources: {state}");
    assert_eq!(stored(&redis), 1, "stored exactly once");
}
