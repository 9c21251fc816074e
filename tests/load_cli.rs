//! The `hk8s load` binary: siege-style report, JSON, input errors, Ctrl-C.

mod load_support;

use load_support::{Behaviour, TestServer};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(60);

fn hk8s() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hk8s"));
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn load(args: &[&str]) -> Output {
    let child = hk8s().arg("load").args(args).spawn().expect("start hk8s");
    tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("hk8s load ended in time")
        .expect("hk8s load output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SIEGE_LABELS: [&str; 12] = [
    "Transactions:",
    "Availability:",
    "Elapsed time:",
    "Data transferred:",
    "Response time:",
    "Transaction rate:",
    "Throughput:",
    "Concurrency:",
    "Successful transactions:",
    "Failed transactions:",
    "Longest transaction:",
    "Shortest transaction:",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_the_siege_report() {
    let server = TestServer::start(Behaviour {
        fail_500: vec![3],
        ..Behaviour::default()
    })
    .await;
    let output = load(&["-c", "2", "-r", "5", &server.url]).await;
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let mut at = 0;
    for label in SIEGE_LABELS {
        let found = stdout[at..]
            .find(label)
            .unwrap_or_else(|| panic!("{label} missing or out of siege's order in:\n{stdout}"));
        at += found + label.len();
    }
    // 10 requests, #3 of them a 500: 9 transactions, 1 failure, 90 % availability.
    assert!(
        stdout.contains("Transactions:\t\t           9 hits"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Availability:\t\t       90.00 %"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Failed transactions:\t           1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Status codes:\t\t200: 9, 500: 1"),
        "{stdout}"
    );
    for extra in [
        "Response time p50:",
        "Response time p90:",
        "Response time p99:",
    ] {
        assert!(stdout.contains(extra), "{extra} missing in:\n{stdout}");
    }
    assert!(text(&output.stderr).contains("Preparing 2 concurrent users"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_output_is_valid_and_complete() {
    let server = TestServer::start(Behaviour::default()).await;
    for threads in ["1", "4"] {
        let output = load(&[
            "--json",
            "--threads",
            threads,
            "-c",
            "3",
            "-r",
            "2",
            &server.url,
        ])
        .await;
        assert!(output.status.success(), "--threads {threads}: {output:?}");
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
        assert_eq!(report["transactions"], 6, "--threads {threads}: {report}");
        assert_eq!(report["status_codes"]["200"], 6, "--threads {threads}");
    }
    let output = load(&["--json", "-c", "3", "-r", "2", &server.url]).await;
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    assert_eq!(report["transactions"], 6);
    assert_eq!(report["availability"], 100.0);
    assert_eq!(report["successful_transactions"], 6);
    assert_eq!(report["failed_transactions"], 0);
    assert_eq!(report["status_codes"]["200"], 6);
    for field in [
        "elapsed_time",
        "data_transferred",
        "response_time",
        "transaction_rate",
        "throughput",
        "concurrency",
        "longest_transaction",
        "shortest_transaction",
        "response_time_p50",
        "response_time_p90",
        "response_time_p99",
    ] {
        assert!(report[field].is_number(), "{field} missing in {report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_clear_error() {
    let server = TestServer::start(Behaviour::default()).await;
    let cases: [(&[&str], &str); 6] = [
        (&["-c", "2"], "-t (e.g. -t 10S"),
        (&["-r", "1", "--threads", "0"], "--threads"),
        (&["-c", "1001", "-r", "1"], "between 1 and 1000"),
        (&["-t", "10"], "S, M or H"),
        (&["-r", "1", "--delay=-1"], "delay"),
        (&["-r", "1", "-H", "no-colon"], "Name: value"),
    ];
    for (args, expected) in cases {
        let mut all: Vec<&str> = args.to_vec();
        all.push(&server.url);
        let output = load(&all).await;
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(
            stderr.contains(expected),
            "{args:?}: {stderr:?} lacks {expected:?}"
        );
    }
    assert_eq!(server.request_count(), 0, "refused runs sent requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_prints_the_report_so_far() {
    let server = TestServer::start(Behaviour {
        latency: Duration::from_millis(5),
        ..Behaviour::default()
    })
    .await;
    let child = hk8s()
        .args(["load", "-c", "2", "-t", "1H", &server.url])
        .spawn()
        .expect("start hk8s");
    let pid = child.id().expect("running child has a pid");
    tokio::time::timeout(LIMIT, async {
        while server.request_count() < 10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the load reached the server");
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let output = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("hk8s load stopped after Ctrl-C")
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(stdout.contains("Transactions:"), "{stdout}");
    assert!(stdout.contains("Interrupted:"), "{stdout}");
    assert!(text(&output.stderr).contains("Lifting the server siege"));
}
