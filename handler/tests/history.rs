//! Streams, history and resume through the handler's events, with its in-memory ports: a
//! client dropped while messages are broadcast gets exactly those on resume, in order, then
//! live ones; a gap when the history no longer reaches back; one order for concurrent
//! broadcasts; no resume of what the client may not hear.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use handler::history::MemoryHistory;
use handler::topics::Rules;
use handler::{
    ConnectionStore, Event, Handler, InProcessPusher, MemoryStore, Outcome, RequestContext,
    Settings,
};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

type H = Handler<MemoryStore, InProcessPusher>;

fn handler(retention: Duration, cap: u32) -> H {
    Handler::new(
        Settings {
            api_id: Some("abc123".into()),
            region: Some("us-east-1".into()),
            ..Settings::default()
        },
        Arc::new(MemoryStore::default()),
        Arc::new(InProcessPusher::new()),
    )
    .with_history(Arc::new(MemoryHistory::new(retention, cap)), cap)
}

fn ctx(id: &str) -> RequestContext {
    RequestContext {
        connection_id: id.into(),
        domain_name: Some("abc123.execute-api.us-east-1.amazonaws.com".into()),
        stage: Some("prod".into()),
        ..RequestContext::default()
    }
}

async fn open(h: &H, id: &str, ctx: RequestContext) -> UnboundedReceiver<Vec<u8>> {
    let rx = h.pusher().register(id);
    h.handle(Event::Connect {
        ctx,
        query: BTreeMap::new(),
        headers: BTreeMap::new(),
    })
    .await
    .unwrap();
    rx
}

async fn say(h: &H, ctx: RequestContext, frame: Value) {
    h.handle(Event::Message {
        ctx,
        body: Some(frame.to_string()),
    })
    .await
    .unwrap();
}

fn drain(rx: &mut UnboundedReceiver<Vec<u8>>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(data) = rx.try_recv() {
        out.push(serde_json::from_slice(&data).unwrap());
    }
    out
}

async fn broadcast(h: &H, topic: &str, n: u64) {
    let out = h
        .handle(Event::Invoke(
            json!({"action": "broadcast", "topic": topic, "message": {"type": "claim_status_update", "data": {"n": n}}}),
        ))
        .await
        .unwrap();
    assert!(
        matches!(out, Outcome::Report(ref r) if r.complete),
        "{out:?}"
    );
}

fn seq(m: &Value) -> u64 {
    m["wsctl"]["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no position: {m}"))
}

#[tokio::test]
async fn a_dropped_client_resumes_exactly_what_it_missed_in_order_then_live_ones() {
    let h = handler(Duration::from_secs(600), 1000);
    let mut a = open(&h, "A=", ctx("A=")).await;
    say(
        &h,
        ctx("A="),
        json!({"action": "subscribe", "topic": "claims"}),
    )
    .await;
    broadcast(&h, "claims", 0).await;
    let got = drain(&mut a);
    let last = got.last().unwrap().clone();
    assert_eq!(
        last["wsctl"],
        json!({"id": last["wsctl"]["id"], "stream": "topic:claims", "seq": 1})
    );
    assert_eq!(
        (last["type"].as_str(), &last["data"]),
        (Some("claim_status_update"), &json!({"n": 0}))
    );

    // Dropped: API Gateway runs $disconnect; 20 messages are broadcast meanwhile.
    h.handle(Event::Disconnect { ctx: ctx("A=") })
        .await
        .unwrap();
    h.pusher().unregister("A=");
    for n in 1..=20 {
        broadcast(&h, "claims", n).await;
    }
    // Back, as a new connection: subscribe, then resume from the last position it had.
    let mut b = open(&h, "B=", ctx("B=")).await;
    say(
        &h,
        ctx("B="),
        json!({"action": "subscribe", "topic": "claims"}),
    )
    .await;
    say(
        &h,
        ctx("B="),
        json!({"action": "resume", "streams": {"topic:claims": 1}}),
    )
    .await;
    let got = drain(&mut b);
    assert_eq!(got[0]["type"], "subscribed");
    let replayed: Vec<u64> = got[1..21]
        .iter()
        .map(|m| m["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(replayed, (1..=20).collect::<Vec<_>>());
    assert_eq!(
        got[1..21].iter().map(seq).collect::<Vec<_>>(),
        (2..=21).collect::<Vec<_>>()
    );
    assert_eq!(
        got[21],
        json!({"type": "resumed", "data": {"streams": {"topic:claims": {"replayed": 20, "head": 21}}}})
    );
    assert_eq!(got.len(), 22);
    broadcast(&h, "claims", 21).await;
    let live = drain(&mut b);
    assert_eq!((seq(&live[0]), &live[0]["data"]["n"]), (22, &json!(21)));
    // Nothing new: an empty replay.
    say(
        &h,
        ctx("B="),
        json!({"action": "resume", "streams": {"topic:claims": 22}}),
    )
    .await;
    assert_eq!(
        drain(&mut b)[0]["data"]["streams"]["topic:claims"]["replayed"],
        0
    );
}

#[tokio::test]
async fn a_history_that_no_longer_reaches_back_is_a_gap_and_nothing_stale_is_replayed() {
    // Retention shorter than the absence.
    let h = handler(Duration::from_millis(50), 1000);
    for n in 1..=5 {
        broadcast(&h, "claims", n).await;
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    broadcast(&h, "claims", 6).await;
    let mut b = open(&h, "B=", ctx("B=")).await;
    say(
        &h,
        ctx("B="),
        json!({"action": "resume", "streams": {"topic:claims": 2}}),
    )
    .await;
    let got = drain(&mut b);
    assert_eq!(
        got[0],
        json!({"type": "gap", "data": {"stream": "topic:claims", "after": 2, "head": 6}})
    );
    assert_eq!(
        got[1]["data"]["streams"]["topic:claims"],
        json!({"gap": true, "head": 6})
    );
    assert_eq!(got.len(), 2, "no stale replay: {got:?}");

    // A cap smaller than what was missed is a gap too.
    let h = handler(Duration::from_secs(600), 5);
    for n in 1..=10 {
        broadcast(&h, "claims", n).await;
    }
    let mut c = open(&h, "C=", ctx("C=")).await;
    say(
        &h,
        ctx("C="),
        json!({"action": "resume", "streams": {"topic:claims": 2}}),
    )
    .await;
    assert_eq!(drain(&mut c)[0]["type"], "gap");
    // Within the cap: replayed.
    say(
        &h,
        ctx("C="),
        json!({"action": "resume", "streams": {"topic:claims": 7}}),
    )
    .await;
    let got = drain(&mut c);
    assert_eq!(
        got.iter()
            .filter(|m| m.get("wsctl").is_some())
            .map(seq)
            .collect::<Vec<_>>(),
        [8, 9, 10]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_broadcasts_to_one_topic_replay_in_one_order() {
    let h = handler(Duration::from_secs(600), 1000);
    let mut live = open(&h, "L=", ctx("L=")).await;
    say(
        &h,
        ctx("L="),
        json!({"action": "subscribe", "topic": "claims"}),
    )
    .await;
    drain(&mut live);
    let mut tasks = Vec::new();
    for writer in 0..2u64 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                broadcast(&h, "claims", writer * 100 + n).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let delivered: BTreeMap<u64, Value> = drain(&mut live)
        .into_iter()
        .map(|m| (seq(&m), m["data"].clone()))
        .collect();
    assert_eq!(
        delivered.keys().copied().collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    let mut r = open(&h, "R=", ctx("R=")).await;
    say(
        &h,
        ctx("R="),
        json!({"action": "resume", "streams": {"topic:claims": 0}}),
    )
    .await;
    let replayed: Vec<Value> = drain(&mut r)
        .into_iter()
        .filter(|m| m.get("wsctl").is_some())
        .collect();
    let order: Vec<(u64, Value)> = replayed
        .iter()
        .map(|m| (seq(m), m["data"].clone()))
        .collect();
    // The replay's order is the positions', and each position holds what was delivered live.
    assert_eq!(order, delivered.into_iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_resume_of_a_stream_the_client_may_not_hear_is_refused() {
    let secret = b"history-resume-secret".to_vec();
    let h = handler(Duration::from_secs(600), 1000);
    let rules = Rules::parse(&["user:{sub}".into()], &[]).unwrap();
    let h: H = Handler::new(
        Settings {
            api_id: Some("abc123".into()),
            region: Some("us-east-1".into()),
            topics: Some(rules),
            ..h.settings().clone()
        },
        h.store().clone(),
        h.pusher().clone(),
    )
    .with_history(
        Arc::new(MemoryHistory::new(Duration::from_secs(600), 100)),
        100,
    )
    .with_auth(handler::auth::Auth::hs256(secret));
    let alice = RequestContext {
        caller: Some(handler::authorizer::Caller {
            sub: "alice".into(),
            claims: BTreeMap::new(),
        }),
        ..ctx("A=")
    };
    let mut a = open(&h, "A=", alice.clone()).await;
    assert_eq!(
        h.store().get("A=").await.unwrap().unwrap().user.as_deref(),
        Some("alice")
    );
    h.handle(Event::Invoke(
        json!({"action": "send", "user": "bob", "message": {"type": "secret"}}),
    ))
    .await
    .unwrap();
    say(
        &h,
        alice,
        json!({"action": "resume", "streams": {"topic:user:bob": 0, "user:bob": 0, "user:alice": 0}}),
    )
    .await;
    let got = drain(&mut a);
    let refused: Vec<&str> = got
        .iter()
        .filter(|m| m["data"]["code"] == "forbidden")
        .map(|m| m["data"]["stream"].as_str().unwrap())
        .collect();
    assert_eq!(refused, ["topic:user:bob", "user:bob"]);
    assert!(
        !got.iter().any(|m| m["type"] == "secret"),
        "nothing of bob's: {got:?}"
    );
    let summary = &got.last().unwrap()["data"]["streams"];
    assert_eq!(summary["user:alice"], json!({"replayed": 0, "head": 0}));
}
