//! `hk8s::load::run` against a local server with known behaviour: counts, availability,
//! percentiles, failure causes, pacing, redirects and cancellation.

mod load_support;

use hk8s::load::{
    CancellationToken, LoadConfig, LoadError, MAX_CONCURRENCY, Progress, Report, run,
};
use load_support::{Behaviour, TestServer, closed_port_url};
use std::collections::BTreeMap;
use std::time::Duration;

/// Every test's run must end well within this, whatever the machine's load.
const RUN_LIMIT: Duration = Duration::from_secs(60);

async fn load(config: LoadConfig) -> Result<Report, LoadError> {
    tokio::time::timeout(RUN_LIMIT, run(config, None, CancellationToken::new()))
        .await
        .expect("the load run ended in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_availability_and_percentiles_follow_the_servers_behaviour() {
    // Of every 10 requests: #3 gets an immediate 500, #7 a closed connection, the other 8
    // a 200 with 1000 bytes after 100 ms.
    let latency = Duration::from_millis(100);
    let server = TestServer::start(Behaviour {
        latency,
        body: vec![b'x'; 1000],
        fail_500: vec![3],
        drop: vec![7],
        ..Behaviour::default()
    })
    .await;
    let report = load(LoadConfig {
        concurrency: 5,
        repetitions: Some(20),
        ..LoadConfig::new(&server.url)
    })
    .await
    .unwrap();

    assert_eq!(server.request_count(), 100, "5 users x 20 repetitions");
    assert_eq!(report.transactions, 80);
    assert_eq!(report.successful_transactions, 80);
    assert_eq!(report.failed_transactions, 20);
    assert_eq!(report.failures.server_error, 10);
    assert_eq!(report.failures.dropped, 10);
    assert_eq!(report.failures.connect + report.failures.timeout, 0);
    assert_eq!(report.availability, 80.0);
    assert_eq!(report.status_codes, BTreeMap::from([(200, 80), (500, 10)]));
    assert_eq!(report.bytes, 80 * 1000 + 10 * 5);
    assert_eq!(report.users, 5);
    assert!(!report.interrupted);

    // 80 of the 90 responses took at least the latency, the 10 500s none: p50/p90/p99 and
    // the longest are at least the latency, the shortest (a 500) below it.
    let secs = latency.as_secs_f64();
    for (name, value) in [
        ("p50", report.response_time_p50),
        ("p90", report.response_time_p90),
        ("p99", report.response_time_p99),
        ("longest", report.longest_transaction),
    ] {
        assert!(
            value >= secs,
            "{name} {value} below the server's {secs} s latency"
        );
        assert!(value < secs + 5.0, "{name} {value} is implausibly slow");
    }
    assert!(report.shortest_transaction < secs, "{report:?}");
    // siege's response time: all response time / transactions >= 80 * latency / 80.
    assert!(report.response_time >= secs, "{report:?}");
    assert!(report.transaction_rate > 0.0 && report.concurrency > 0.0);
    assert!(
        report.elapsed_time >= 4.0 * secs,
        "each user waited 16 x latency"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repetitions_give_exactly_users_times_reps_transactions() {
    let server = TestServer::start(Behaviour::default()).await;
    let report = load(LoadConfig {
        concurrency: 7,
        repetitions: Some(13),
        ..LoadConfig::new(&server.url)
    })
    .await
    .unwrap();
    assert_eq!(report.transactions, 91);
    assert_eq!(report.failed_transactions, 0);
    assert_eq!(report.availability, 100.0);
    assert_eq!(server.request_count(), 91);
    assert_eq!(report.bytes, 91 * 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_delay_paces_each_user() {
    // -d 0.2 -c 10 -t 2S: a user waits 0.1 s on average after each (fast) request, so about
    // 10 / 0.1 = 100 tx/s; the bounds are wide so a busy machine does not fail the test.
    let server = TestServer::start(Behaviour::default()).await;
    let report = load(LoadConfig {
        concurrency: 10,
        duration: Some(Duration::from_secs(2)),
        delay: Some(Duration::from_millis(200)),
        ..LoadConfig::new(&server.url)
    })
    .await
    .unwrap();
    assert!(
        (50.0..=150.0).contains(&report.transaction_rate),
        "expected about 100 tx/s, got {report:?}"
    );
    assert!(report.elapsed_time >= 2.0, "{report:?}");
    assert_eq!(report.failed_transactions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_caps_requests_per_second() {
    // --rate 40 over 2 s: at most 40 * 2 requests plus one per user at the start.
    let server = TestServer::start(Behaviour::default()).await;
    let report = load(LoadConfig {
        concurrency: 4,
        duration: Some(Duration::from_secs(2)),
        rate: Some(40.0),
        ..LoadConfig::new(&server.url)
    })
    .await
    .unwrap();
    assert!(
        (40..=84).contains(&report.transactions),
        "expected about 80 transactions, got {report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_and_timeouts_are_failures() {
    let refused = load(LoadConfig {
        concurrency: 3,
        repetitions: Some(4),
        ..LoadConfig::new(closed_port_url().await)
    })
    .await
    .unwrap();
    assert_eq!(refused.failures.connect, 12);
    assert_eq!(refused.failed_transactions, 12);
    assert_eq!((refused.transactions, refused.availability), (0, 0.0));

    let slow = TestServer::start(Behaviour {
        latency: Duration::from_secs(10),
        ..Behaviour::default()
    })
    .await;
    let timed_out = load(LoadConfig {
        concurrency: 2,
        repetitions: Some(1),
        timeout: Duration::from_millis(200),
        ..LoadConfig::new(&slow.url)
    })
    .await
    .unwrap();
    assert_eq!(timed_out.failures.timeout, 2);
    assert_eq!((timed_out.transactions, timed_out.availability), (0, 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let elsewhere = TestServer::start(Behaviour::default()).await;
    let redirecting = TestServer::start(Behaviour {
        redirect_to: Some(elsewhere.url.clone()),
        ..Behaviour::default()
    })
    .await;
    let report = load(LoadConfig {
        concurrency: 2,
        repetitions: Some(5),
        ..LoadConfig::new(&redirecting.url)
    })
    .await
    .unwrap();
    assert_eq!(report.status_codes, BTreeMap::from([(302, 10)]));
    assert_eq!(report.successful_transactions, 10);
    assert_eq!(
        elsewhere.request_count(),
        0,
        "the redirect target got requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_bodies_and_headers_are_sent() {
    let server = TestServer::start(Behaviour::default()).await;
    let mut headers = http::HeaderMap::new();
    headers.insert("x-lesson", "4".parse().unwrap());
    let report = load(LoadConfig {
        concurrency: 1,
        repetitions: Some(2),
        method: http::Method::POST,
        body: Some("msg=hi".into()),
        headers,
        ..LoadConfig::new(&server.url)
    })
    .await
    .unwrap();
    assert_eq!(report.transactions, 2);
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let head = seen[0].head.to_ascii_lowercase();
    assert!(head.starts_with("post /test http/1.1"), "{head}");
    assert!(
        head.contains("content-type: application/x-www-form-urlencoded"),
        "{head}"
    );
    assert!(head.contains("x-lesson: 4"), "{head}");
    assert_eq!(seen[0].body, b"msg=hi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_returns_the_report_so_far() {
    let server = TestServer::start(Behaviour {
        latency: Duration::from_millis(5),
        ..Behaviour::default()
    })
    .await;
    let cancel = CancellationToken::new();
    let on_progress = {
        let cancel = cancel.clone();
        move |progress: &Progress| {
            assert_eq!(progress.planned_duration, Some(Duration::from_secs(3600)));
            if progress.transactions >= 10 {
                cancel.cancel();
            }
        }
    };
    let config = LoadConfig {
        concurrency: 4,
        duration: Some(Duration::from_secs(3600)),
        ..LoadConfig::new(&server.url)
    };
    let report = tokio::time::timeout(RUN_LIMIT, run(config, Some(&on_progress), cancel))
        .await
        .expect("cancellation ended the run")
        .unwrap();
    assert!(report.interrupted);
    assert!(report.transactions >= 10, "{report:?}");
    assert!(report.elapsed_time < RUN_LIMIT.as_secs_f64());
}

#[tokio::test]
async fn a_run_without_an_end_or_with_too_many_users_is_refused() {
    let server = TestServer::start(Behaviour::default()).await;
    let unbounded = load(LoadConfig::new(&server.url)).await.unwrap_err();
    assert!(matches!(unbounded, LoadError::NoEnd));
    assert!(unbounded.to_string().contains("-t"), "{unbounded}");
    assert!(unbounded.to_string().contains("-r"), "{unbounded}");

    let crowded = load(LoadConfig {
        concurrency: MAX_CONCURRENCY + 1,
        repetitions: Some(1),
        ..LoadConfig::new(&server.url)
    })
    .await
    .unwrap_err();
    assert!(
        matches!(
            crowded,
            LoadError::Concurrency {
                given: 1001,
                max: 1000
            }
        ),
        "{crowded:?}"
    );
    assert_eq!(server.request_count(), 0, "a refused run sent requests");

    let https = load(LoadConfig {
        repetitions: Some(1),
        ..LoadConfig::new("https://127.0.0.1:1/")
    })
    .await
    .unwrap_err();
    assert!(
        matches!(https, LoadError::UnsupportedScheme { .. }),
        "{https:?}"
    );
}
