//! The handler library against its in-memory ports: every behaviour issue #2 lists.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use handler::store::Page;
use handler::{
    Connection, ConnectionStore, DeliveryReport, Event, Handler, HandlerError, InProcessPusher,
    MemoryStore, Outcome, PushError, Pusher, RequestContext, Settings, StoreError,
};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

/// Wraps the in-process pusher: records endpoints, fails chosen ids, measures concurrency.
#[derive(Default)]
struct Probe {
    inner: InProcessPusher,
    endpoints: Mutex<Vec<String>>,
    failing: Mutex<HashSet<String>>,
    delay: Option<Duration>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[async_trait]
impl Pusher for Probe {
    async fn post(&self, endpoint: &str, id: &str, data: &[u8]) -> Result<(), PushError> {
        self.endpoints.lock().unwrap().push(endpoint.to_owned());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.failing.lock().unwrap().contains(id) {
            return Err(PushError::Failed {
                connection_id: id.to_owned(),
                retryable: false,
                source: "400 BadRequestException".into(),
            });
        }
        self.inner.post(endpoint, id, data).await
    }

    async fn close(&self, endpoint: &str, id: &str) -> Result<(), PushError> {
        self.inner.close(endpoint, id).await
    }
}

type H = Handler<MemoryStore, Probe>;

fn handler_with(settings: Settings, page_size: usize, probe: Probe) -> H {
    Handler::new(
        settings,
        Arc::new(MemoryStore::with_page_size(page_size)),
        Arc::new(probe),
    )
}

fn settings() -> Settings {
    Settings {
        api_id: Some("abc123".into()),
        region: Some("us-east-1".into()),
        ..Settings::default()
    }
}

fn handler() -> H {
    handler_with(settings(), 1000, Probe::default())
}

fn ctx(id: &str) -> RequestContext {
    RequestContext {
        connection_id: id.into(),
        domain_name: Some("abc123.execute-api.us-east-1.amazonaws.com".into()),
        stage: Some("prod".into()),
        source_ip: Some("203.0.113.7".into()),
        request_time_epoch_ms: 0,
        caller: None,
    }
}

/// Opens a connection: `$connect` plus a registered socket.
async fn open(h: &H, id: &str) -> UnboundedReceiver<Vec<u8>> {
    let rx = h.pusher().inner.register(id);
    let out = h
        .handle(Event::Connect {
            ctx: ctx(id),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        out,
        Outcome::Http {
            status: 200,
            body: "Connected".into(),
            headers: Default::default(),
        }
    );
    rx
}

async fn send(h: &H, id: &str, body: &str) -> Outcome {
    h.handle(Event::Message {
        ctx: ctx(id),
        body: Some(body.into()),
    })
    .await
    .unwrap()
}

fn next(rx: &mut UnboundedReceiver<Vec<u8>>) -> Value {
    let data = rx.try_recv().expect("a message was pushed");
    serde_json::from_slice(&data).expect("pushed JSON")
}

fn report(out: Outcome) -> DeliveryReport {
    match out {
        Outcome::Report(r) => r,
        other => panic!("expected a report, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_stores_id_time_and_ttl() {
    let h = handler_with(
        Settings {
            ttl_seconds: 3600,
            ..settings()
        },
        10,
        Probe::default(),
    );
    let _rx = open(&h, "TWegAcC4EowCHnA=").await;
    let row = h
        .store()
        .get("TWegAcC4EowCHnA=")
        .await
        .unwrap()
        .expect("row stored");
    let connected = time::OffsetDateTime::parse(
        &row.connected_at,
        &time::format_description::well_known::Rfc3339,
    )
    .expect("connected_at is ISO-8601");
    assert!(row.connected_at.ends_with('Z'), "UTC: {}", row.connected_at);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - connected.unix_timestamp()).abs() < 5);
    assert!(
        (row.ttl - (now + 3600)).abs() < 5,
        "ttl {} vs now+1h {}",
        row.ttl,
        now + 3600
    );
    assert_eq!(row.source_ip.as_deref(), Some("203.0.113.7"));
}

#[tokio::test]
async fn default_ttl_is_24_hours() {
    let h = handler();
    let _rx = open(&h, "a").await;
    let row = h.store().get("a").await.unwrap().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((row.ttl - (now + 86400)).abs() < 5);
}

#[tokio::test]
async fn disconnect_deletes_and_is_idempotent() {
    let h = handler();
    let _rx = open(&h, "a").await;
    for _ in 0..2 {
        let out = h.handle(Event::Disconnect { ctx: ctx("a") }).await.unwrap();
        assert_eq!(
            out,
            Outcome::Http {
                status: 200,
                body: "Disconnected".into(),
                headers: Default::default(),
            }
        );
        assert!(h.store().get("a").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn missing_connection_id_is_400_not_a_panic() {
    let h = handler();
    for event in [
        Event::Connect {
            ctx: ctx(""),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
        },
        Event::Disconnect { ctx: ctx("") },
    ] {
        match h.handle(event).await.unwrap() {
            Outcome::Http { status, .. } => assert_eq!(status, 400),
            other => panic!("{other:?}"),
        }
    }
    assert!(h.store().is_empty());
}

#[tokio::test]
async fn ping_answers_pong_to_the_sender_only() {
    let h = handler();
    let mut a = open(&h, "a").await;
    let mut b = open(&h, "b").await;
    send(&h, "a", r#"{"action":"ping"}"#).await;
    let pong = next(&mut a);
    assert_eq!(pong["type"], "pong");
    let ts = pong["data"]["timestamp"].as_str().expect("timestamp");
    time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .expect("ISO timestamp");
    assert!(b.try_recv().is_err(), "only the sender gets the pong");
    // The reply went to the endpoint built from the event's domainName and stage.
    assert_eq!(
        h.pusher().endpoints.lock().unwrap().last().unwrap(),
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    );
}

#[tokio::test]
async fn unknown_actions_and_no_action_are_echoed() {
    let h = handler();
    let mut a = open(&h, "a").await;
    send(&h, "a", r#"{"action":"hello","n":[1,2]}"#).await;
    assert_eq!(
        next(&mut a),
        json!({"type":"echo","data":{"action":"hello","n":[1,2]}})
    );
    send(&h, "a", r#"{"just":"data"}"#).await;
    assert_eq!(next(&mut a), json!({"type":"echo","data":{"just":"data"}}));
}

#[tokio::test]
async fn subscribe_and_unsubscribe_keep_topics_on_the_row() {
    let h = handler();
    let mut a = open(&h, "a").await;
    send(&h, "a", r#"{"action":"subscribe","topic":"claims"}"#).await;
    assert_eq!(
        next(&mut a),
        json!({"type":"subscribed","data":{"topic":"claims"}})
    );
    send(&h, "a", r#"{"action":"subscribe","topic":"news"}"#).await;
    next(&mut a);
    let topics: Vec<_> = h
        .store()
        .get("a")
        .await
        .unwrap()
        .unwrap()
        .topics
        .into_iter()
        .collect();
    assert_eq!(topics, ["claims", "news"]);
    send(&h, "a", r#"{"action":"unsubscribe","topic":"claims"}"#).await;
    assert_eq!(
        next(&mut a),
        json!({"type":"unsubscribed","data":{"topic":"claims"}})
    );
    let topics: Vec<_> = h
        .store()
        .get("a")
        .await
        .unwrap()
        .unwrap()
        .topics
        .into_iter()
        .collect();
    assert_eq!(topics, ["news"]);
}

#[tokio::test]
async fn malformed_bodies_get_bad_request_and_the_connection_stays() {
    let h = handler_with(
        Settings {
            max_client_message_bytes: 64,
            ..settings()
        },
        10,
        Probe::default(),
    );
    let mut a = open(&h, "a").await;
    for body in [
        "not json",
        "[1,2,3]",
        "\"a string\"",
        "42",
        "",
        r#"{"action":7}"#,
        r#"{"action":"subscribe"}"#,
        r#"{"action":"subscribe","topic":""}"#,
        &format!(r#"{{"action":"echo","pad":"{}"}}"#, "x".repeat(100)),
    ] {
        let out = send(&h, "a", body).await;
        assert_eq!(
            out,
            Outcome::Http {
                status: 200,
                body: "Message processed".into(),
                headers: Default::default(),
            },
            "body {body:?}"
        );
        let reply = next(&mut a);
        assert_eq!(reply["type"], "error", "body {body:?}");
        assert_eq!(reply["data"]["code"], "bad_request", "body {body:?}");
        assert!(!reply["data"]["message"].as_str().unwrap().is_empty());
    }
    assert!(
        h.store().get("a").await.unwrap().is_some(),
        "the connection is still registered"
    );
    send(&h, "a", r#"{"action":"ping"}"#).await;
    assert_eq!(next(&mut a)["type"], "pong");
}

#[tokio::test]
async fn client_broadcast_is_forbidden_by_default() {
    let h = handler();
    let mut a = open(&h, "a").await;
    let mut b = open(&h, "b").await;
    send(
        &h,
        "a",
        r#"{"action":"broadcast","message":{"type":"x","data":1}}"#,
    )
    .await;
    let reply = next(&mut a);
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["data"]["code"], "forbidden");
    assert!(b.try_recv().is_err());
}

#[tokio::test]
async fn client_broadcast_when_allowed_reaches_everyone() {
    let h = handler_with(
        Settings {
            allow_client_broadcast: true,
            ..settings()
        },
        10,
        Probe::default(),
    );
    let mut a = open(&h, "a").await;
    let mut b = open(&h, "b").await;
    send(
        &h,
        "a",
        r#"{"action":"broadcast","message":{"type":"x","data":1}}"#,
    )
    .await;
    assert_eq!(next(&mut b), json!({"type":"x","data":1}));
    assert_eq!(next(&mut a), json!({"type":"x","data":1}));
    let ack = next(&mut a);
    assert_eq!(ack["type"], "broadcast_report");
    assert_eq!(ack["data"]["delivered"], 2);
}

#[tokio::test]
async fn direct_broadcast_reads_every_page() {
    // 3 rows per page and 10 connections: the runbook's single scan would reach 3.
    let h = handler_with(settings(), 3, Probe::default());
    let mut sockets = Vec::new();
    for i in 0..10 {
        sockets.push(open(&h, &format!("c{i:02}")).await);
    }
    let message = json!({"type":"claim_status_update","data":{"id":7}});
    let out = h
        .handle(Event::Invoke(
            json!({"action":"broadcast","message":message,"broadcast_id":"b-10"}),
        ))
        .await
        .unwrap();
    assert_eq!(
        report(out),
        DeliveryReport {
            delivered: 10,
            broadcast_id: Some("b-10".into()),
            ..Default::default()
        }
    );
    for rx in &mut sockets {
        assert_eq!(next(rx), message);
    }
    // Direct invocations carry no domain name: the endpoint comes from the settings.
    assert!(h
        .pusher()
        .endpoints
        .lock()
        .unwrap()
        .iter()
        .all(|e| e == "https://abc123.execute-api.us-east-1.amazonaws.com/prod"));
}

#[tokio::test]
async fn broadcast_to_a_topic_reaches_only_its_subscribers() {
    let h = handler_with(settings(), 2, Probe::default());
    let mut a = open(&h, "a").await;
    let mut b = open(&h, "b").await;
    let mut c = open(&h, "c").await;
    for id in ["a", "c"] {
        send(&h, id, r#"{"action":"subscribe","topic":"claims"}"#).await;
    }
    next(&mut a);
    next(&mut c);
    let out = h
        .handle(Event::Invoke(
            json!({"action":"broadcast","topic":"claims","message":{"type":"t","data":null}}),
        ))
        .await
        .unwrap();
    assert_eq!(report(out).delivered, 2);
    assert_eq!(next(&mut a)["type"], "t");
    assert_eq!(next(&mut c)["type"], "t");
    assert!(b.try_recv().is_err());
}

#[tokio::test]
async fn gone_connections_are_counted_and_their_rows_deleted() {
    let h = handler();
    let mut live = open(&h, "live").await;
    for id in ["stale1", "stale2"] {
        // Rows left behind by connections that dropped without $disconnect.
        h.store()
            .put(Connection {
                connection_id: id.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let out = h
        .handle(Event::Invoke(
            json!({"action":"broadcast","message":{"type":"t"},"broadcast_id":"b-gone"}),
        ))
        .await
        .unwrap();
    assert_eq!(
        report(out),
        DeliveryReport {
            delivered: 1,
            gone: 2,
            broadcast_id: Some("b-gone".into()),
            ..Default::default()
        }
    );
    next(&mut live);
    let ids: Vec<_> = h
        .store()
        .all()
        .into_iter()
        .map(|c| c.connection_id)
        .collect();
    assert_eq!(ids, ["live"]);
}

#[tokio::test]
async fn other_failures_are_counted_without_stopping() {
    let probe = Probe::default();
    probe
        .failing
        .lock()
        .unwrap()
        .extend(["c03".to_owned(), "c07".to_owned()]);
    let h = handler_with(settings(), 4, probe);
    let mut sockets = Vec::new();
    for i in 0..10 {
        sockets.push(open(&h, &format!("c{i:02}")).await);
    }
    let r = report(
        h.handle(Event::Invoke(
            json!({"action":"broadcast","message":{"type":"t"}}),
        ))
        .await
        .unwrap(),
    );
    assert_eq!((r.delivered, r.gone, r.failed), (8, 0, 2));
    assert_eq!(r.errors.len(), 2);
    let mut missed = r.undelivered.clone();
    missed.sort();
    assert_eq!(
        missed,
        ["c03", "c07"],
        "the report names the connections it missed"
    );
    assert_eq!(r.retried, 0, "a 4xx is not retried");
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains("c03") && e.contains("BadRequest")),
        "{:?}",
        r.errors
    );
    // Failed connections keep their rows: only 410 removes one.
    assert_eq!(h.store().len(), 10);
}

#[tokio::test]
async fn broadcast_concurrency_is_bounded() {
    let probe = Probe {
        delay: Some(Duration::from_millis(5)),
        ..Probe::default()
    };
    let h = handler_with(
        Settings {
            broadcast_concurrency: 8,
            ..settings()
        },
        16,
        probe,
    );
    let mut sockets = Vec::new();
    for i in 0..100 {
        sockets.push(open(&h, &format!("c{i:03}")).await);
    }
    let r = h
        .invoke(&json!({"action":"broadcast","message":{"type":"t"}}))
        .await
        .unwrap();
    assert_eq!(r.delivered, 100);
    let max = h.pusher().max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 8, "at most 8 posts in flight, saw {max}");
    assert!(max > 1, "posts run concurrently, saw {max}");
}

#[tokio::test]
async fn a_message_over_128_kb_is_refused_up_front() {
    let h = handler();
    let mut a = open(&h, "a").await;
    let big = "x".repeat(128 * 1024);
    let err = h
        .handle(Event::Invoke(
            json!({"action":"broadcast","message":{"type":"t","data":big}}),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, HandlerError::MessageTooLarge { limit: 131072, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("131072"), "{err}");
    assert!(a.try_recv().is_err(), "nothing was delivered");
    assert!(
        h.pusher().endpoints.lock().unwrap().is_empty(),
        "no post was attempted"
    );
}

#[tokio::test]
async fn send_reaches_one_connection_and_reports_gone() {
    let h = handler();
    let mut a = open(&h, "a").await;
    let mut b = open(&h, "b").await;
    let r = h
        .invoke(
            &json!({"action":"send","connection_id":"a","message":{"type":"direct","data":"hi"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        r,
        DeliveryReport {
            delivered: 1,
            ..Default::default()
        }
    );
    assert_eq!(next(&mut a), json!({"type":"direct","data":"hi"}));
    assert!(b.try_recv().is_err());
    let r = h
        .invoke(&json!({"action":"send","connection_id":"nobody","message":{"type":"direct"}}))
        .await
        .unwrap();
    assert_eq!(
        r,
        DeliveryReport {
            gone: 1,
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn bad_invocations_are_typed_errors() {
    let h = handler();
    for payload in [
        json!({"action":"broadcast"}),
        json!({"action":"nope"}),
        json!({"message":{}}),
        json!("broadcast"),
        json!({"action":"send","message":{}}),
        json!({"action":"broadcast","topic":"","message":{}}),
    ] {
        let err = h.handle(Event::Invoke(payload.clone())).await.unwrap_err();
        assert!(
            matches!(err, HandlerError::BadInvocation(_)),
            "{payload}: {err}"
        );
        assert_eq!(err.kind(), "BadInvocation");
    }
}

#[tokio::test]
async fn endpoint_resolution() {
    let h = handler();
    assert_eq!(
        h.endpoint(Some(&ctx("a"))).unwrap(),
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    );
    let custom = RequestContext {
        domain_name: Some("ws.example.com".into()),
        stage: Some("v1".into()),
        ..ctx("a")
    };
    // A custom domain's event names the domain, whose mapping hides the stage: posts go
    // through the API's own host (not the runbook's https://{domain}/{stage}).
    assert_eq!(
        h.endpoint(Some(&custom)).unwrap(),
        "https://abc123.execute-api.us-east-1.amazonaws.com/v1"
    );
    assert_eq!(
        h.endpoint(None).unwrap(),
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    );

    let staged = handler_with(
        Settings {
            stage: "dev".into(),
            ..settings()
        },
        10,
        Probe::default(),
    );
    assert_eq!(
        staged.endpoint(None).unwrap(),
        "https://abc123.execute-api.us-east-1.amazonaws.com/dev"
    );

    let local = handler_with(
        Settings {
            endpoint_override: Some("http://127.0.0.1:3002/prod/".into()),
            ..settings()
        },
        10,
        Probe::default(),
    );
    assert_eq!(
        local.endpoint(Some(&ctx("a"))).unwrap(),
        "http://127.0.0.1:3002/prod"
    );
    assert_eq!(local.endpoint(None).unwrap(), "http://127.0.0.1:3002/prod");

    let bare = handler_with(Settings::default(), 10, Probe::default());
    let err = bare
        .invoke(&json!({"action":"broadcast","message":{}}))
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::NoEndpoint), "{err}");
    assert!(err.to_string().contains("WEBSOCKET_API_ID"), "{err}");
}

/// A store whose scans fail after the first page, and whose writes fail on demand.
struct BrokenStore {
    inner: MemoryStore,
    fail_writes: bool,
}

#[async_trait]
impl ConnectionStore for BrokenStore {
    async fn put(&self, c: Connection) -> Result<(), StoreError> {
        if self.fail_writes {
            return Err(StoreError::Backend {
                operation: "PutItem",
                table: "t".into(),
                source: "ProvisionedThroughputExceededException".into(),
            });
        }
        self.inner.put(c).await
    }
    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    async fn get(&self, id: &str) -> Result<Option<Connection>, StoreError> {
        self.inner.get(id).await
    }
    async fn subscribe(&self, id: &str, topic: &str) -> Result<bool, StoreError> {
        self.inner.subscribe(id, topic).await
    }
    async fn unsubscribe(&self, id: &str, topic: &str) -> Result<bool, StoreError> {
        self.inner.unsubscribe(id, topic).await
    }
    async fn scan(
        &self,
        filter: handler::Filter<'_>,
        cursor: Option<String>,
    ) -> Result<Page, StoreError> {
        if cursor.is_some() {
            return Err(StoreError::Backend {
                operation: "Scan",
                table: "t".into(),
                source: "connection reset".into(),
            });
        }
        self.inner.scan(filter, cursor).await
    }
    async fn count_message(&self, id: &str, window: i64, limit: u32) -> Result<bool, StoreError> {
        self.inner.count_message(id, window, limit).await
    }
}

#[tokio::test]
async fn store_failures_are_typed_with_their_cause() {
    let pusher = Arc::new(InProcessPusher::new());
    let broken = Handler::new(
        settings(),
        Arc::new(BrokenStore {
            inner: MemoryStore::new(),
            fail_writes: true,
        }),
        pusher.clone(),
    );
    let err = broken
        .handle(Event::Connect {
            ctx: ctx("a"),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "StoreError");
    let chain = handler::error_chain(&err);
    assert!(
        chain.contains("PutItem") && chain.contains("ProvisionedThroughputExceeded"),
        "{chain}"
    );

    // A scan that fails on page 2 stops the broadcast with the counts so far.
    let store = Arc::new(BrokenStore {
        inner: MemoryStore::with_page_size(2),
        fail_writes: false,
    });
    let h = Handler::new(settings(), store.clone(), pusher.clone());
    let mut rx = Vec::new();
    for id in ["a", "b", "c"] {
        rx.push(pusher.register(id));
        store
            .put(Connection {
                connection_id: id.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let err = h
        .invoke(&json!({"action":"broadcast","message":{}}))
        .await
        .unwrap_err();
    match &err {
        HandlerError::BroadcastIncomplete { report, .. } => assert_eq!(report.delivered, 2),
        other => panic!("{other}"),
    }
    assert!(handler::error_chain(&err).contains("connection reset"));
}

#[tokio::test]
async fn browser_origins_outside_the_allowed_list_get_403() {
    let h = handler_with(
        Settings {
            allowed_origins: vec!["https://app.example.com".into()],
            ..settings()
        },
        10,
        Probe::default(),
    );
    let connect = |origin: Option<&str>| Event::Connect {
        ctx: ctx("a"),
        query: BTreeMap::new(),
        headers: origin
            .map(|o| BTreeMap::from([("origin".to_owned(), o.to_owned())]))
            .unwrap_or_default(),
    };
    let status = |o: Outcome| match o {
        Outcome::Http { status, .. } => status,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        status(
            h.handle(connect(Some("https://evil.example.net")))
                .await
                .unwrap()
        ),
        403
    );
    assert!(h.store().is_empty(), "a refused connection stores nothing");
    assert_eq!(
        status(
            h.handle(connect(Some("https://app.example.com")))
                .await
                .unwrap()
        ),
        200
    );
    assert_eq!(
        status(h.handle(connect(None)).await.unwrap()),
        200,
        "non-browser clients send no Origin"
    );
}

#[tokio::test]
async fn a_verified_token_puts_its_subject_on_the_row_and_a_bad_one_gets_401() {
    let h = handler().with_auth(handler::auth::Auth::hs256(b"k".to_vec()));
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 60}),
        &jsonwebtoken::EncodingKey::from_secret(b"k"),
    )
    .unwrap();
    let connect = |id: &str, token: Option<&str>| Event::Connect {
        ctx: ctx(id),
        query: token
            .map(|t| BTreeMap::from([("token".to_owned(), t.to_owned())]))
            .unwrap_or_default(),
        headers: BTreeMap::new(),
    };
    let out = h.handle(connect("a", Some(&token))).await.unwrap();
    assert_eq!(
        out,
        Outcome::Http {
            status: 200,
            body: "Connected".into(),
            headers: Default::default(),
        }
    );
    assert_eq!(
        h.store().get("a").await.unwrap().unwrap().user.as_deref(),
        Some("alice")
    );
    match h.handle(connect("b", None)).await.unwrap() {
        Outcome::Http { status, body, .. } => {
            assert_eq!(status, 401);
            assert!(body.contains("token"), "{body}");
        }
        other => panic!("{other:?}"),
    }
    assert!(h.store().get("b").await.unwrap().is_none());
}

#[tokio::test]
async fn a_token_in_the_subprotocol_header_is_read_and_the_subprotocol_chosen() {
    let mut auth = handler::auth::Auth::hs256(b"k".to_vec());
    auth.source = handler::auth::TokenSource::Protocol;
    let h = handler().with_auth(auth);
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "bob", "exp": time::OffsetDateTime::now_utc().unix_timestamp() + 60}),
        &jsonwebtoken::EncodingKey::from_secret(b"k"),
    )
    .unwrap();
    let connect = |id: &str, protocols: Option<String>| Event::Connect {
        ctx: ctx(id),
        query: BTreeMap::from([("token".to_owned(), token.clone())]),
        headers: protocols
            .map(|p| BTreeMap::from([("sec-websocket-protocol".to_owned(), p)]))
            .unwrap_or_default(),
    };
    let out = h
        .handle(connect("a", Some(format!("wsctl, {token}"))))
        .await
        .unwrap();
    // What the Lambda answers API Gateway: the chosen subprotocol as a response header.
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!({"statusCode": 200, "body": "Connected", "headers": {"Sec-WebSocket-Protocol": "wsctl"}})
    );
    assert_eq!(
        h.store().get("a").await.unwrap().unwrap().user.as_deref(),
        Some("bob")
    );
    // The query string is not read with token_source "protocol", and says where to look.
    match h.handle(connect("b", None)).await.unwrap() {
        Outcome::Http {
            status,
            body,
            headers,
        } => {
            assert_eq!(status, 401);
            assert!(body.contains("Sec-WebSocket-Protocol"), "{body}");
            assert!(headers.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // Without an offer, no header: a plain answer is what it was.
    let plain = handler().handle(connect("c", None)).await.unwrap();
    assert_eq!(
        serde_json::to_value(&plain).unwrap(),
        json!({"statusCode": 200, "body": "Connected"})
    );
}

#[tokio::test]
async fn send_to_a_user_reaches_every_connection_of_that_subject() {
    let h = handler();
    let mut rx = Vec::new();
    for (id, user) in [
        ("a", Some("alice")),
        ("b", Some("bob")),
        ("c", Some("alice")),
        ("d", None),
    ] {
        rx.push(h.pusher().inner.register(id));
        h.store()
            .put(Connection {
                connection_id: id.into(),
                user: user.map(str::to_owned),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let r = h
        .invoke(&json!({"action":"send","user":"alice","message":{"type":"hi"}}))
        .await
        .unwrap();
    assert_eq!(r.delivered, 2);
    assert_eq!(next(&mut rx[0]), json!({"type":"hi"}));
    assert_eq!(next(&mut rx[2]), json!({"type":"hi"}));
    assert!(rx[1].try_recv().is_err() && rx[3].try_recv().is_err());
    let err = h
        .invoke(&json!({"action":"send","user":"","message":{}}))
        .await
        .unwrap_err();
    assert!(matches!(err, HandlerError::BadInvocation(_)));
}

#[tokio::test]
async fn messages_over_the_per_connection_rate_are_answered_rate_limited() {
    let h = handler_with(
        Settings {
            max_messages_per_second: 3,
            ..settings()
        },
        1000,
        Probe::default(),
    );
    let mut a = open(&h, "a").await;
    let mut b = open(&h, "b").await;
    // Start early in a second so that the burst below stays in one window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    if now.subsec_millis() > 500 {
        tokio::time::sleep(std::time::Duration::from_millis(
            1001 - now.subsec_millis() as u64,
        ))
        .await;
    }
    let mut kinds = Vec::new();
    for _ in 0..5 {
        send(&h, "a", r#"{"action":"ping"}"#).await;
        let reply = next(&mut a);
        kinds.push(match reply["type"].as_str().unwrap() {
            "error" => reply["data"]["code"].as_str().unwrap().to_owned(),
            other => other.to_owned(),
        });
    }
    assert_eq!(
        kinds,
        ["pong", "pong", "pong", "rate_limited", "rate_limited"]
    );
    // Another connection is not affected, and the limited one is still connected.
    send(&h, "b", r#"{"action":"ping"}"#).await;
    assert_eq!(next(&mut b)["type"], "pong");
    assert!(h.store().get("a").await.unwrap().is_some());
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    send(&h, "a", r#"{"action":"ping"}"#).await;
    assert_eq!(
        next(&mut a)["type"],
        "pong",
        "the next second starts afresh"
    );
}
