//! Day-two commands end to end: against `wsctl dev` with real WebSocket clients, and the
//! AWS-side calls (scan pages, invoke request shape, log filtering) against moto.

use support::dev as devkit;
use support::project;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use devkit::{Dev, Ws};
use futures::{SinkExt, StreamExt};
use project::{Out, Project};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

async fn recv_json(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    }
}

/// Runs wsctl in `dir` with the Lambda endpoint pointed at a dev gateway.
fn wsctl_at(dir: &std::path::Path, dev: &Dev, args: &[&str], stdin: Option<&str>) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsctl"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AWS_ENDPOINT_URL_LAMBDA", &dev.base)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broadcast_send_smoke_and_env_against_wsctl_dev() {
    let dev = Dev::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wsctl.toml"), "project = \"demo\"\n").unwrap();
    let (mut a, a_id) = dev.connect().await;
    let (mut b, _) = dev.connect().await;
    b.send(Message::text(r#"{"action":"subscribe","topic":"claims"}"#))
        .await
        .unwrap();
    assert_eq!(recv_json(&mut b).await["type"], "subscribed");

    // --type/--data build the runbook's {type, data}.
    let out = wsctl_at(
        dir.path(),
        &dev,
        &[
            "broadcast",
            "--type",
            "claim_status_update",
            "--data",
            r#"{"id":42}"#,
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("delivered 2"), "{out:?}");
    let expected = json!({"type":"claim_status_update","data":{"id":42}});
    assert_eq!(recv_json(&mut a).await, expected);
    assert_eq!(recv_json(&mut b).await, expected);

    // From an argument, a file and stdin; --topic reaches only subscribers.
    let out = wsctl_at(
        dir.path(),
        &dev,
        &[
            "broadcast",
            r#"{"type":"arg"}"#,
            "--topic",
            "claims",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["delivered"], 1);
    assert_eq!(recv_json(&mut b).await["type"], "arg");
    std::fs::write(dir.path().join("m.json"), r#"{"type":"file"}"#).unwrap();
    assert_eq!(
        wsctl_at(dir.path(), &dev, &["broadcast", "--file", "m.json"], None).code,
        0
    );
    assert_eq!(recv_json(&mut a).await["type"], "file");
    assert_eq!(
        wsctl_at(
            dir.path(),
            &dev,
            &["broadcast"],
            Some(r#"{"type":"stdin"}"#)
        )
        .code,
        0
    );
    assert_eq!(recv_json(&mut a).await["type"], "stdin");

    // send reaches one connection; an unknown one is reported gone.
    let out = wsctl_at(dir.path(), &dev, &["send", &a_id, "--type", "direct"], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("delivered 1"), "{out:?}");
    assert_eq!(
        recv_json(&mut a).await,
        json!({"type":"direct","data":null})
    );
    let out = wsctl_at(
        dir.path(),
        &dev,
        &["send", "nobody123456789=", r#"{"type":"x"}"#, "-o", "json"],
        None,
    );
    assert_eq!(out.json()["gone"], 1, "{out:?}");

    // Bad input: exit 2, named.
    let out = wsctl_at(dir.path(), &dev, &["broadcast", "not json"], None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--type"), "{out:?}");

    // smoke: a pong means exit 0; nothing listening means exit 1.
    let out = wsctl_at(
        dir.path(),
        &dev,
        &[
            "smoke",
            "--url",
            &dev.url,
            "--query",
            "token=s3cr3t",
            "-o",
            "json",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["ok"], true);
    assert!(
        !out.stdout.contains("s3cr3t"),
        "the token is not printed: {out:?}"
    );
    let dead = format!("ws://127.0.0.1:{}/ws", support::free_port());
    let out = wsctl_at(
        dir.path(),
        &dev,
        &["smoke", "--url", &dead, "--timeout", "2s"],
        None,
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("FAILED"), "{out:?}");

    // env replaces only its line.
    let env = dir.path().join(".env.production");
    std::fs::write(&env, "A=1\nVITE_SOCKET_URL=wss://old/prod\nB=2\n").unwrap();
    let out = wsctl_at(
        dir.path(),
        &dev,
        &[
            "env",
            "--url",
            "wss://abc.execute-api.us-east-1.amazonaws.com/prod",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        "A=1\nVITE_SOCKET_URL=wss://abc.execute-api.us-east-1.amazonaws.com/prod\nB=2\n"
    );
}

async fn put_rows(p: &Project, ids: &[String]) {
    let ddb = aws_sdk_dynamodb::Client::new(&p.sdk().await);
    for id in ids {
        ddb.put_item()
            .table_name(format!("{}_ws_connections", "ops"))
            .item(
                "connection_id",
                aws_sdk_dynamodb::types::AttributeValue::S(id.clone()),
            )
            .item(
                "connected_at",
                aws_sdk_dynamodb::types::AttributeValue::S("2026-11-27T10:00:00.000Z".into()),
            )
            .item(
                "ttl",
                aws_sdk_dynamodb::types::AttributeValue::N("1900000000".into()),
            )
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_read_every_page_and_prune_removes_only_the_gone() {
    let p = Project::new("ops");
    p.up(&[]);
    let dev = Dev::start(&[]);
    let (_a, a_id) = dev.connect().await;
    let (_b, b_id) = dev.connect().await;
    let mut ids: Vec<String> = (0..28).map(|i| format!("stale{i:02}AAAAAAAAA=")).collect();
    ids.push(a_id.clone());
    ids.push(b_id.clone());
    put_rows(&p, &ids).await;

    p.proxy.clear();
    let out = p.wsctl(&["connections", "--page-size", "7", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let list = out.json();
    assert_eq!(list["count"], 30);
    assert_eq!(list["connections"].as_array().unwrap().len(), 30);
    let scans = p
        .proxy
        .calls()
        .iter()
        .filter(|c| c.operation == "Scan")
        .count();
    assert!(
        scans >= 5,
        "30 rows at 7 per page take 5 pages, saw {scans} Scan calls"
    );
    assert_eq!(list["pages"], scans);
    let out = p.wsctl(&["connections", "--count"]);
    assert_eq!(out.stdout.trim(), "30", "{out:?}");

    // prune asks the management API (here wsctl dev's) about each row.
    let endpoint = format!("{}/prod", dev.base);
    let out = p.wsctl(&[
        "connections",
        "prune",
        "--management-endpoint",
        &endpoint,
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["removed"], 28, "{report}");
    assert_eq!(report["alive"], 2, "{report}");
    let out = p.wsctl(&["connections", "-o", "json"]);
    let mut left: Vec<String> = out.json()["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connection_id"].as_str().unwrap().to_owned())
        .collect();
    left.sort();
    let mut want = vec![a_id, b_id];
    want.sort();
    assert_eq!(left, want);
}

#[test]
fn broadcast_invokes_the_function_with_the_runbooks_payload() {
    let p = Project::new("ops");
    p.up(&[]);
    p.proxy.clear();
    // moto does not run the code (it echoes the payload), so the answer is not a report;
    // what matters here is the request wsctl makes.
    let out = p.wsctl(&[
        "broadcast",
        "--type",
        "claim_status_update",
        "--data",
        r#"{"claim":9}"#,
        "--topic",
        "claims",
    ]);
    let invoke = p
        .proxy
        .calls()
        .into_iter()
        .find(|c| c.operation == "POST /2015-03-31/functions/ops-websocket-handler/invocations")
        .unwrap_or_else(|| panic!("no invoke: {:#?}", p.proxy.calls()));
    let mut payload: Value = serde_json::from_str(&invoke.body).unwrap();
    // wsctl names the broadcast, so that a retried invocation finds it started.
    let id = payload.as_object_mut().unwrap().remove("broadcast_id");
    assert!(
        id.as_ref()
            .and_then(Value::as_str)
            .is_some_and(|id| id.len() == 25 && id.as_bytes()[8] == b'T'),
        "{id:?}"
    );
    assert_eq!(
        payload,
        json!({"action":"broadcast","topic":"claims","message":{"type":"claim_status_update","data":{"claim":9}}})
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("delivery report"),
        "a clear message: {out:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_filter_and_follow_the_functions_log_group() {
    let p = Project::new("ops");
    p.up(&[]);
    let logs = aws_sdk_cloudwatchlogs::Client::new(&p.sdk().await);
    let group = "/aws/lambda/ops-websocket-handler";
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name("s1")
        .send()
        .await
        .unwrap();
    let now = || time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
    let put = |message: &'static str| {
        let logs = logs.clone();
        async move {
            logs.put_log_events()
                .log_group_name(group)
                .log_stream_name("s1")
                .log_events(
                    aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                        .timestamp(now())
                        .message(message)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
        }
    };
    put(r#"{"level":"INFO","message":"handled $connect"}"#).await;
    put(r#"{"level":"ERROR","message":"store failed"}"#).await;

    let out = p.wsctl(&["logs", "--since", "1h"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("handled $connect") && out.stdout.contains("store failed"),
        "{out:?}"
    );
    let out = p.wsctl(&["logs", "--since", "1h", "--filter", "ERROR"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        !out.stdout.contains("handled $connect") && out.stdout.contains("store failed"),
        "{out:?}"
    );

    // --follow picks up what is logged after it started.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_wsctl"))
        .args(["logs", "--since", "1h", "--follow", "--interval", "200ms"])
        .current_dir(p.path())
        .env("AWS_ENDPOINT_URL", &p.proxy.url)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let wait_for = |needle: &str, seen: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                seen.push(line);
            }
            if seen.iter().any(|l| l.contains(needle)) {
                return;
            }
        }
        panic!("{needle:?} never appeared: {seen:?}");
    };
    wait_for("store failed", &mut seen);
    put(r#"{"level":"INFO","message":"a later event"}"#).await;
    wait_for("a later event", &mut seen);
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(
        seen.iter().filter(|l| l.contains("store failed")).count(),
        1,
        "no duplicates: {seen:?}"
    );
}
