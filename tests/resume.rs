//! A client that comes back gets what it missed, against `wsctl dev` with real sockets: it is
//! dropped without a close frame (`wsctl dev drop`) while 20 messages are broadcast, comes back
//! with `resume`, and gets exactly those 20 in order, then live ones; a retention shorter than
//! its absence is a gap and no stale replay; two concurrent broadcasts to one topic are replayed
//! in the one order their positions give; a stream it may not hear is refused; the drops a
//! team tests reconnection with behave as the internet's and API Gateway's.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::dev::{Dev, Ws};
use tokio_tungstenite::tungstenite::Message;

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// Subscribes to `topic` and waits for the answer `subscribed`.
async fn subscribe(ws: &mut Ws, topic: &str) {
    send(ws, json!({"action": "subscribe", "topic": topic})).await;
    assert_eq!(recv(ws).await["type"], "subscribed");
}

/// A client coming back: a new connection, subscribed to `claims` again, asking for what
/// came after position `last`.
async fn back_after(dev: &Dev, last: u64) -> Ws {
    let (mut ws, _) = dev.connect().await;
    subscribe(&mut ws, "claims").await;
    send(
        &mut ws,
        json!({"action": "resume", "streams": {"topic:claims": last}}),
    )
    .await;
    ws
}

fn broadcast(dev: &Dev, topic: &str, n: u64) {
    let (status, body) = dev.http(
        "POST",
        "/2015-03-31/functions/demo-websocket-handler/invocations",
        &json!({"action": "broadcast", "topic": topic, "message": {"type": "claim_status_update", "data": {"n": n}}})
            .to_string(),
    );
    assert_eq!(status, 200, "{body}");
}

/// `wsctl dev drop --url URL --connection ID --mode MODE`, as a team runs it against its dev.
fn dev_drop(dev: &Dev, url: &str, id: &str, mode: &str) -> support::project::Out {
    let dir = tempfile::tempdir().unwrap();
    dev.wsctl(
        dir.path(),
        &[
            "dev",
            "drop",
            "--url",
            url,
            "--connection",
            id,
            "--mode",
            mode,
        ],
    )
}

/// How the connection ended: the close frame's code, or 1006 when the TCP connection ended
/// without one.
async fn ended(ws: &mut Ws) -> u16 {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("the connection ends within 5 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map_or(1005, |f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return 1006,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_client_resumes_the_20_messages_it_missed_in_order_then_live_ones() {
    let dev = Dev::start_with_config(
        Some("project = \"demo\"\n\n[history]\nretention = \"10m\"\n"),
        &[],
    );
    let (mut a, a_id) = dev.connect().await;
    subscribe(&mut a, "claims").await;
    broadcast(&dev, "claims", 0);
    let first = recv(&mut a).await;
    assert_eq!(first["wsctl"]["stream"], "topic:claims");
    let last = first["wsctl"]["seq"].as_u64().unwrap();

    // The network fails: no close frame; API Gateway's $disconnect runs.
    let out = dev_drop(&dev, &dev.base, &a_id, "abrupt");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("dropped 1 connection(s) (abrupt)"),
        "{}",
        out.stdout
    );
    assert_eq!(ended(&mut a).await, 1006);
    dev.wait_log(&format!("$disconnect  {a_id} 200")).await;
    for n in 1..=20 {
        broadcast(&dev, "claims", n);
    }

    let mut b = back_after(&dev, last).await;
    let mut replayed = Vec::new();
    for _ in 0..20 {
        replayed.push(recv(&mut b).await);
    }
    assert_eq!(
        replayed
            .iter()
            .map(|m| m["data"]["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    assert_eq!(
        replayed
            .iter()
            .map(|m| m["wsctl"]["seq"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        (last + 1..=last + 20).collect::<Vec<_>>()
    );
    let resumed = recv(&mut b).await;
    assert_eq!(resumed["type"], "resumed");
    assert_eq!(resumed["data"]["streams"]["topic:claims"]["replayed"], 20);
    broadcast(&dev, "claims", 21);
    let live = recv(&mut b).await;
    assert_eq!(
        (live["data"]["n"].as_u64(), live["wsctl"]["seq"].as_u64()),
        (Some(21), Some(last + 21))
    );
}

/// A message as a client orders it: (position, id, the broadcaster's counter).
fn placed(m: &Value) -> (u64, String, u64) {
    (
        m["wsctl"]["seq"].as_u64().expect("a position"),
        m["wsctl"]["id"].as_str().expect("an id").to_string(),
        m["data"]["n"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_broadcasts_to_one_topic_replay_in_the_one_order_live_clients_got() {
    let dev = Dev::start_with_config(
        Some("project = \"demo\"\n\n[history]\nretention = \"10m\"\n"),
        &[],
    );
    let (mut live, _) = dev.connect().await;
    let (mut gone, gone_id) = dev.connect().await;
    for ws in [&mut live, &mut gone] {
        subscribe(ws, "claims").await;
    }
    broadcast(&dev, "claims", 0);
    let last = placed(&recv(&mut gone).await).0;
    assert_eq!(placed(&recv(&mut live).await).0, last);
    let out = dev_drop(&dev, &dev.base, &gone_id, "abrupt");
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(ended(&mut gone).await, 1006);

    // Two backends broadcast to the topic at once, ten messages each.
    std::thread::scope(|s| {
        for first in [100, 200] {
            let dev = &dev;
            s.spawn(move || (first..first + 10).for_each(|n| broadcast(dev, "claims", n)));
        }
    });
    let mut got = Vec::new();
    for _ in 0..20 {
        got.push(placed(&recv(&mut live).await));
    }
    got.sort();
    assert_eq!(
        got.iter().map(|m| m.0).collect::<Vec<_>>(),
        (last + 1..=last + 20).collect::<Vec<_>>(),
        "twenty messages, twenty positions, each once"
    );
    for first in [100, 200] {
        let own: Vec<u64> = got
            .iter()
            .map(|m| m.2)
            .filter(|n| (first..first + 10).contains(n))
            .collect();
        assert_eq!(own, (first..first + 10).collect::<Vec<_>>(), "{got:?}");
    }

    // The client that comes back is replayed the same messages at the same positions.
    let mut back = back_after(&dev, last).await;
    let mut replayed = Vec::new();
    for _ in 0..20 {
        replayed.push(placed(&recv(&mut back).await));
    }
    assert_eq!(replayed, got, "the replay is in the order of the positions");
    assert_eq!(recv(&mut back).await["type"], "resumed");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_absence_longer_than_the_retention_is_a_gap_and_nothing_stale() {
    let dev = Dev::start(&["--history", "300ms"]);
    for n in 1..=3 {
        broadcast(&dev, "claims", n);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    broadcast(&dev, "claims", 4);
    let (mut b, _) = dev.connect().await;
    send(
        &mut b,
        json!({"action": "resume", "streams": {"topic:claims": 1}}),
    )
    .await;
    assert_eq!(
        recv(&mut b).await,
        json!({"type": "gap", "data": {"stream": "topic:claims", "after": 1, "head": 4}})
    );
    assert_eq!(recv(&mut b).await["type"], "resumed");
    send(&mut b, json!({"action": "ping"})).await;
    assert_eq!(
        recv(&mut b).await["type"],
        "pong",
        "nothing stale was replayed in between"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_of_a_topic_the_client_may_not_hear_is_refused() {
    let dev = Dev::start(&["--history", "10m", "--topics-subscribe", "public:*"]);
    broadcast(&dev, "private", 1);
    broadcast(&dev, "public:news", 2);
    let (mut ws, _) = dev.connect().await;
    send(
        &mut ws,
        json!({"action": "resume", "streams": {"topic:private": 0, "topic:public:news": 0}}),
    )
    .await;
    let first = recv(&mut ws).await;
    assert_eq!(first["data"]["code"], "forbidden", "{first}");
    assert_eq!(first["data"]["stream"], "topic:private");
    let replayed = recv(&mut ws).await;
    assert_eq!(replayed["data"]["n"], 2);
    let resumed = recv(&mut ws).await;
    assert_eq!(
        resumed["data"]["streams"]["topic:private"],
        json!({"forbidden": true})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drops_look_like_the_internets_and_api_gateways() {
    let dev = Dev::start(&[]);
    for (mode, code) in [("going-away", 1001), ("idle", 1001), ("abrupt", 1006)] {
        let (mut ws, id) = dev.connect().await;
        let out = dev_drop(&dev, &dev.url, &id, mode);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
        assert_eq!(ended(&mut ws).await, code, "{mode}");
    }
    let out = dev_drop(&dev, &dev.base, "NOPE=", "abrupt");
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("no connection NOPE="), "{}", out.stderr);

    // On a timer: every connection dropped again and again.
    let dev = Dev::start(&["--drop-every", "300ms", "--drop-mode", "going-away"]);
    let (mut ws, _) = dev.connect().await;
    assert_eq!(ended(&mut ws).await, 1001);
    let (mut again, _) = dev.connect().await;
    assert_eq!(ended(&mut again).await, 1001);
}

#[tokio::test(flavor = "multi_thread")]
async fn wsctl_listen_stays_and_comes_back_with_what_it_missed() {
    let dev = Dev::start(&["--history", "10m"]);
    let child = std::process::Command::new(support::wsctl_bin())
        .args([
            "listen",
            "--url",
            &dev.url,
            "--topic",
            "demo",
            "--count",
            "3",
            "--timeout",
            "20s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Subscribed: its $default line is in the gateway's log.
    for _ in 0..100 {
        if dev.stderr().contains("$default") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broadcast(&dev, "demo", 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = dev.http("POST", "/_dev/drop?mode=abrupt", "");
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    broadcast(&dev, "demo", 2);
    broadcast(&dev, "demo", 3);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let got: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["data"]["n"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, [1, 2, 3], "{stderr}");
    assert!(stderr.contains("reconnected"), "{stderr}");
}
