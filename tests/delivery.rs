//! Broadcast delivery under API Gateway's account throttle, through the running `wsctl dev`
//! with its throttle emulation on: nothing lost, a 429 like AWS's for backends, and a deadline
//! that leaves connections undelivered reports them by id (`wsctl broadcast` exits 1).

use support::dev as devkit;

use devkit::{Dev, Ws};

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Opens `n` clients and waits until the gateway has logged each `$connect`; returns the
/// clients and the ids the gateway gave them.
async fn open_clients(dev: &Dev, n: usize) -> (Vec<Ws>, HashSet<String>) {
    let clients = open_many(dev, n).await;
    let ids = dev
        .stderr()
        .lines()
        .filter(|l| l.contains("$connect "))
        .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
        .collect();
    (clients, ids)
}

/// The text messages each client receives until `quiet` passes with nothing new.
async fn received(clients: &mut [Ws], quiet: Duration) -> Vec<usize> {
    let reads = clients.iter_mut().map(|ws| async move {
        let mut count = 0;
        while let Ok(Some(Ok(msg))) = tokio::time::timeout(quiet, ws.next()).await {
            if let Message::Text(_) = msg {
                count += 1;
            }
        }
        count
    });
    futures::future::join_all(reads).await
}

/// `wsctl --config FILE ARGS...` with its Lambda endpoint at `dev`, as a backend would run it.
fn wsctl(dev: &Dev, file: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_wsctl"))
        .arg("--config")
        .arg(file)
        .args(args)
        .env("AWS_ENDPOINT_URL_LAMBDA", &dev.base)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "dev")
        .env("AWS_SECRET_ACCESS_KEY", "dev")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

fn invoke(dev: &Dev, payload: &Value) -> Value {
    let (status, body) = dev.http(
        "POST",
        "/2015-03-31/functions/demo-websocket-handler/invocations",
        &payload.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_broadcast_through_dev_loses_nothing() {
    // 500 posts/s after a burst of 100, 5 ms per answer: 600 clients cannot all be posted to
    // at once, and the engine's first window overshoots the bucket.
    let dev = Dev::start(&[
        "--management-rate",
        "500",
        "--management-burst",
        "100",
        "--management-latency",
        "5ms",
    ]);
    let (mut clients, _) = open_clients(&dev, 600).await;
    let report = invoke(
        &dev,
        &json!({"action":"broadcast","message":{"type":"tick","data":1}}),
    );
    assert_eq!(report["delivered"], 600, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert!(
        report["throttled"].as_u64().unwrap() > 0,
        "the throttle refused some attempts, which were retried: {report}"
    );
    let counts = received(&mut clients, Duration::from_millis(500)).await;
    let missing = counts.iter().filter(|c| **c == 0).count();
    let doubled = counts.iter().filter(|c| **c > 1).count();
    assert_eq!(
        (missing, doubled),
        (0, 0),
        "each client got the message once"
    );
}

#[test]
fn the_management_api_answers_429_like_aws_over_the_throttle() {
    let dev = Dev::start(&[
        "--management-rate",
        "2",
        "--management-burst",
        "3",
        "--management-latency",
        "50ms",
    ]);
    let started = Instant::now();
    let answers: Vec<String> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..10)
            .map(|_| {
                s.spawn(|| {
                    let out = Command::new("curl")
                        .args(["-s", "-i", "-X", "POST", "--data", "x"])
                        .arg(format!("{}/prod/@connections/nobodyhome1234=", dev.base))
                        .output()
                        .unwrap();
                    String::from_utf8_lossy(&out.stdout).into_owned()
                })
            })
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let throttled: Vec<&String> = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 429"))
        .collect();
    let gone = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 410"))
        .count();
    // The bucket holds 3 and refills at 2/s: 3 or 4 calls pass within the first half second.
    assert!((3..=4).contains(&gone), "{answers:#?}");
    assert_eq!(throttled.len(), 10 - gone, "{answers:#?}");
    let sample = throttled[0].to_ascii_lowercase();
    assert!(
        sample.contains("x-amzn-errortype: limitexceededexception"),
        "{sample}"
    );
    assert!(
        sample.ends_with(r#"{"message":"rate exceeded"}"#),
        "{sample}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "every answer comes after the emulated latency"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_leaves_connections_undelivered_reports_them_by_id() {
    // A 2-second function against a throttle of 20 posts/s: about 50 of 200 can be delivered
    // before the deadline; the report must name the others.
    let config = "project = \"demo\"\n[function]\ntimeout_seconds = 2\n";
    let dev = Dev::start_with_config(
        Some(config),
        &["--management-rate", "20", "--management-burst", "10"],
    );
    let (mut clients, ids) = open_clients(&dev, 200).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsctl.toml");
    std::fs::write(&file, config).unwrap();
    let out = wsctl(
        &dev,
        &file,
        &[
            "--output",
            "json",
            "broadcast",
            "--type",
            "late",
            "--data",
            "1",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "undelivered connections fail the command\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("a JSON report");
    let delivered = report["delivered"].as_u64().unwrap();
    let failed = report["failed"].as_u64().unwrap();
    assert!(delivered > 0 && failed > 0, "{report}");
    assert_eq!(delivered + failed, 200, "{report}");
    let undelivered: HashSet<String> = report["undelivered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        undelivered.len() as u64,
        failed,
        "every missed id is named: {report}"
    );
    assert!(
        undelivered.is_subset(&ids),
        "the ids are the gateway's connections"
    );
    let counts = received(&mut clients, Duration::from_millis(500)).await;
    let reached = counts.iter().filter(|c| **c > 0).count() as u64;
    assert_eq!(
        reached, delivered,
        "the clients that got it are those reported delivered"
    );

    // The text report names them too.
    let out = wsctl(&dev, &file, &["broadcast", "--type", "late", "--data", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("undelivered: "), "{text}");
    assert!(text.contains(" more (--output json lists"), "{text}");
}

/// Opens `n` clients in batches of 500 (the gateway's accept queue and this process's files
/// stay comfortable) and waits for every `$connect`.
async fn open_many(dev: &Dev, n: usize) -> Vec<Ws> {
    let mut clients = Vec::with_capacity(n);
    for start in (0..n).step_by(500) {
        let batch =
            (start..n.min(start + 500)).map(|_| tokio_tungstenite::connect_async(dev.url.clone()));
        for r in futures::future::join_all(batch).await {
            clients.push(r.expect("connect").0);
        }
    }
    let logged = dev
        .wait_log_lines("$connect ", n, Duration::from_secs(60))
        .await;
    assert_eq!(logged, n, "every client connected");
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_to_ten_thousand_clients_is_split_over_workers_and_each_gets_it_once() {
    const CLIENTS: usize = 10_000;
    // API Gateway's throttle scaled down: 5,000 posts/s after a burst of 1,000, 2 ms a post.
    let dev = Dev::start(&[
        "--management-rate",
        "5000",
        "--management-burst",
        "1000",
        "--management-latency",
        "2ms",
    ]);
    let mut clients = open_many(&dev, CLIENTS).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wsctl.toml");
    std::fs::write(&file, "project = \"demo\"\n").unwrap();
    let out = wsctl(
        &dev,
        &file,
        &[
            "--output",
            "json",
            "broadcast",
            "--type",
            "tick",
            "--data",
            "1",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    // More than one worker, each segment done, every client reached.
    assert_eq!(report["segments"], 2, "{report}");
    assert_eq!(
        (&report["segments_done"], &report["segments_failed"]),
        (&json!(2), &json!(0)),
        "{report}"
    );
    assert_eq!(report["delivered"], CLIENTS, "{report}");
    assert_eq!(
        (&report["failed"], &report["complete"]),
        (&json!(0), &json!(true))
    );
    let id = report["broadcast_id"].as_str().unwrap().to_owned();
    // The coordinator and one worker per segment ran as invocations of the function.
    assert_eq!(
        dev.wait_log_lines("invoke:broadcast_part ", 2, Duration::from_secs(5))
            .await,
        2
    );
    let counts = received(&mut clients, Duration::from_millis(500)).await;
    let missing = counts.iter().filter(|c| **c == 0).count();
    let doubled = counts.iter().filter(|c| **c > 1).count();
    assert_eq!(
        (missing, doubled),
        (0, 0),
        "each client got the message once"
    );

    // The record answers later, by id, in text and JSON.
    let text = wsctl(&dev, &file, &["broadcast", "status", &id]);
    let text_out = String::from_utf8_lossy(&text.stdout);
    assert!(text.status.success(), "{text:?}");
    assert!(text_out.contains(&format!("broadcast {id}")), "{text_out}");
    assert!(
        text_out.contains("delivered 10000, gone 0 (rows removed), failed 0"),
        "{text_out}"
    );
    assert!(
        text_out.contains("segments: 2 done, 0 failed, of 2"),
        "{text_out}"
    );

    // --no-wait prints the id at once; `status --wait` follows it to its end.
    let started = wsctl(&dev, &file, &["broadcast", "--no-wait", "--type", "tock"]);
    assert!(started.status.success(), "{started:?}");
    let second = String::from_utf8_lossy(&started.stdout).trim().to_owned();
    assert_ne!(second, id);
    let waited = wsctl(
        &dev,
        &file,
        &["--output", "json", "broadcast", "status", &second, "--wait"],
    );
    assert!(waited.status.success(), "{waited:?}");
    let record: Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(
        (&record["delivered"], &record["complete"]),
        (&json!(CLIENTS), &json!(true)),
        "{record}"
    );
    let counts = received(&mut clients, Duration::from_millis(500)).await;
    assert!(
        counts.iter().all(|c| *c == 1),
        "each client got the second message once"
    );

    // An id that names nothing is an error that says so; waiting for it gives up when the
    // stall timeout passes without a record.
    let waited = wsctl(
        &dev,
        &file,
        &[
            "broadcast",
            "status",
            "20990101T000000Z-00000000",
            "--wait",
            "--stall-timeout",
            "2s",
        ],
    );
    assert_eq!(waited.status.code(), Some(1), "{waited:?}");
    assert!(
        String::from_utf8_lossy(&waited.stderr).contains("has no record after 2 s"),
        "{waited:?}"
    );
    let none = wsctl(
        &dev,
        &file,
        &["broadcast", "status", "20990101T000000Z-00000000"],
    );
    assert_eq!(none.status.code(), Some(1), "{none:?}");
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no broadcast with id"),
        "{none:?}"
    );
    // The function's error has its kind, as the Lambda reports it (errorType).
    let (status, body) = dev.http(
        "POST",
        "/2015-03-31/functions/demo-websocket-handler/invocations",
        r#"{"action":"broadcast_status","broadcast_id":"nope"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["errorType"], "NoSuchBroadcast", "{error}");
}
