//! The DynamoDB store against moto in server mode, over HTTP.

use std::collections::BTreeSet;
use std::sync::Arc;

use handler::store::DynamoStore;
use handler::{Connection, ConnectionStore, DeliveryReport, Handler, InProcessPusher, Settings};
use serde_json::json;
use support::{create_connections_table, Moto};

async fn store(moto: &Moto, table: &str, page_size: Option<i32>) -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_connections_table(&client, table).await;
    DynamoStore::new(client, table).with_page_size(page_size)
}

fn row(id: &str) -> Connection {
    Connection {
        connection_id: id.into(),
        connected_at: "2026-11-27T13:00:00.000Z".into(),
        ttl: 1_900_000_000,
        source_ip: Some("203.0.113.7".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn rows_round_trip_and_delete_is_idempotent() {
    let moto = Moto::start(false);
    let s = store(&moto, "rt_ws_connections", None).await;
    s.put(row("TWegAcC4EowCHnA=")).await.unwrap();
    let got = s.get("TWegAcC4EowCHnA=").await.unwrap().expect("stored");
    assert_eq!(got, row("TWegAcC4EowCHnA="));
    s.delete("TWegAcC4EowCHnA=").await.unwrap();
    assert!(s.get("TWegAcC4EowCHnA=").await.unwrap().is_none());
    s.delete("TWegAcC4EowCHnA=").await.unwrap();
}

#[tokio::test]
async fn topics_are_a_set_on_the_row_and_never_create_rows() {
    let moto = Moto::start(false);
    let s = store(&moto, "topics_ws_connections", None).await;
    s.put(row("a")).await.unwrap();
    assert!(s.subscribe("a", "claims").await.unwrap());
    assert!(s.subscribe("a", "news").await.unwrap());
    assert!(s.subscribe("a", "claims").await.unwrap());
    let topics = s.get("a").await.unwrap().unwrap().topics;
    assert_eq!(
        topics,
        BTreeSet::from(["claims".to_owned(), "news".to_owned()])
    );
    assert!(s.unsubscribe("a", "claims").await.unwrap());
    assert_eq!(
        s.get("a").await.unwrap().unwrap().topics,
        BTreeSet::from(["news".to_owned()])
    );
    // A connection that is gone gets no row back through subscribe.
    assert!(!s.subscribe("ghost", "claims").await.unwrap());
    assert!(s.get("ghost").await.unwrap().is_none());
}

#[tokio::test]
async fn scan_reads_every_page() {
    let moto = Moto::start(false);
    let s = store(&moto, "pages_ws_connections", Some(25)).await;
    for i in 0..130 {
        s.put(row(&format!("conn-{i:03}"))).await.unwrap();
        if i % 3 == 0 {
            s.subscribe(&format!("conn-{i:03}"), "odd").await.unwrap();
        }
    }
    let mut seen = BTreeSet::new();
    let mut pages = 0;
    let mut cursor = None;
    loop {
        let page = s.scan(handler::Filter::All, cursor).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 25);
        seen.extend(page.items.into_iter().map(|c| c.connection_id));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 130);
    assert!(
        pages >= 6,
        "130 rows at 25 per page take at least 6 pages, got {pages}"
    );

    let mut subscribed = 0;
    let mut cursor = None;
    loop {
        let page = s.scan(handler::Filter::Topic("odd"), cursor).await.unwrap();
        subscribed += page.items.len();
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(subscribed, 44);

    // By subject: `user` is a reserved word in DynamoDB expressions.
    s.put(Connection {
        user: Some("alice".into()),
        ..row("with-user")
    })
    .await
    .unwrap();
    let mut cursor = None;
    let mut found = Vec::new();
    loop {
        let page = s
            .scan(handler::Filter::User("alice"), cursor)
            .await
            .unwrap();
        found.extend(page.items.into_iter().map(|c| c.connection_id));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(found, ["with-user"]);

    // The ids a broadcast reads (scan_ids, projected to the key) page the same way and are
    // the same ids, filters included.
    for (filter, count) in [
        (handler::Filter::All, 131),
        (handler::Filter::Topic("odd"), 44),
        (handler::Filter::User("alice"), 1),
    ] {
        let mut from_rows = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.scan(filter, cursor).await.unwrap();
            from_rows.extend(page.items.into_iter().map(|c| c.connection_id));
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        let mut from_ids = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.scan_ids(filter, cursor).await.unwrap();
            assert!(page.items.len() <= 25);
            from_ids.extend(page.items);
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(from_rows.len(), count, "{filter:?}");
        assert_eq!(from_ids, from_rows, "{filter:?}");
    }
}

#[tokio::test]
async fn broadcast_over_dynamodb_pages_removes_gone_rows() {
    let moto = Moto::start(false);
    let s = Arc::new(store(&moto, "bc_ws_connections", Some(10)).await);
    let pusher = Arc::new(InProcessPusher::new());
    let mut live = Vec::new();
    for i in 0..45 {
        let id = format!("c{i:02}");
        s.put(row(&id)).await.unwrap();
        // Every fifth connection dropped without $disconnect: its row is stale.
        if i % 5 != 0 {
            live.push(pusher.register(&id));
        }
    }
    let settings = Settings {
        endpoint_override: Some("http://local".into()),
        ..Settings::default()
    };
    let h = Handler::new(settings, s.clone(), pusher);
    let r = h
        .invoke(&json!({"action":"broadcast","broadcast_id":"b-1","message":{"type":"t","data":1}}))
        .await
        .unwrap();
    assert_eq!(
        r,
        DeliveryReport {
            delivered: 36,
            gone: 9,
            broadcast_id: Some("b-1".into()),
            ..Default::default()
        }
    );
    for rx in &mut live {
        let got: serde_json::Value = serde_json::from_slice(&rx.try_recv().unwrap()).unwrap();
        assert_eq!(got, json!({"type":"t","data":1}));
    }
    let mut remaining = 0;
    let mut cursor = None;
    loop {
        let page = s.scan(handler::Filter::All, cursor).await.unwrap();
        assert!(page
            .items
            .iter()
            .all(|c| c.connection_id[1..].parse::<u32>().unwrap() % 5 != 0));
        remaining += page.items.len();
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(remaining, 36);
}

#[tokio::test]
async fn a_missing_table_is_a_typed_error_naming_it() {
    let moto = Moto::start(false);
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let s = DynamoStore::new(client, "no_such_table");
    let err = s.put(row("a")).await.unwrap_err();
    let chain = handler::error_chain(&err);
    assert!(
        chain.contains("PutItem") && chain.contains("no_such_table"),
        "{chain}"
    );
    assert!(
        chain.contains("ResourceNotFound") || chain.contains("not found"),
        "{chain}"
    );
}

#[tokio::test]
async fn message_counts_are_per_connection_and_window() {
    let moto = Moto::start(false);
    let s = store(&moto, "rate_ws_connections", None).await;
    s.put(row("a")).await.unwrap();
    s.put(row("b")).await.unwrap();
    let w = 1_900_000_000;
    assert!(s.count_message("a", w, 2).await.unwrap());
    assert!(s.count_message("a", w, 2).await.unwrap());
    assert!(
        !s.count_message("a", w, 2).await.unwrap(),
        "third in the window"
    );
    assert!(!s.count_message("a", w, 2).await.unwrap());
    assert!(
        s.count_message("b", w, 2).await.unwrap(),
        "b has its own count"
    );
    assert!(
        s.count_message("a", w + 1, 2).await.unwrap(),
        "a new window"
    );
    assert!(
        !s.count_message("a", w, 2).await.unwrap(),
        "an older window never reopens"
    );
    assert!(
        !s.count_message("ghost", w, 2).await.unwrap(),
        "no row: not counted"
    );
    assert!(
        s.get("ghost").await.unwrap().is_none(),
        "and no row is made"
    );
    // The row is still a connection.
    assert_eq!(s.get("a").await.unwrap().unwrap(), row("a"));
}

/// The broadcasts table's record in DynamoDB: the same conditions as the in-memory one, so a
/// repeated or late invocation cannot post or count twice.
#[tokio::test]
async fn a_broadcast_record_takes_claims_and_flushes_once() {
    use handler::fanout::{DynamoBroadcastLog, End, Flush, Start, Totals};
    use handler::BroadcastLog;
    let moto = Moto::start(false);
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    support::create_table(&client, "b_ws_broadcasts", "broadcast_id", None).await;
    let log = DynamoBroadcastLog::new(client, "b_ws_broadcasts");
    let start = Start {
        id: "20261206T070000Z-0000abcd".into(),
        segments: 2,
        topic: None,
        message_bytes: 42,
        started_ms: 1_000,
        expires: 1_900_000_000,
    };
    let id = start.id.clone();
    assert!(log.start(&start).await.unwrap());
    assert!(!log.start(&start).await.unwrap(), "a repeated start");
    assert!(log.claim(&id, 0, 1, 1_500).await.unwrap());
    assert!(
        !log.claim(&id, 0, 1, 1_500).await.unwrap(),
        "a duplicate worker"
    );
    assert!(
        !log.claim(&id, 1, 2, 1_500).await.unwrap(),
        "a generation out of turn"
    );
    let delta = |delivered| Totals {
        delivered,
        ..Totals::default()
    };
    let flush = |seq, delivered, end| Flush {
        seq,
        delta: delta(delivered),
        beat_ms: 2_000,
        cursor: Some("c".into()),
        end,
    };
    assert!(log.flush(&id, 0, 1, &flush(1, 100, None)).await.unwrap());
    // The same flush again (its answer was lost): applied once.
    assert!(log.flush(&id, 0, 1, &flush(1, 100, None)).await.unwrap());
    assert!(
        !log.flush(&id, 0, 1, &flush(3, 5, None)).await.unwrap(),
        "a flush out of order"
    );
    assert!(log
        .flush(&id, 0, 1, &flush(2, 50, Some(End::HandedOver)))
        .await
        .unwrap());
    // Generation 2 takes over; generation 1 can no longer write.
    assert!(log.claim(&id, 0, 2, 2_500).await.unwrap());
    assert!(!log.flush(&id, 0, 1, &flush(3, 7, None)).await.unwrap());
    // Generation 2 is alive (its beat is after 2,000): a retry of it cannot take over.
    assert!(!log.take_over(&id, 0, 2, 2_000, 3_000).await.unwrap());
    // Stopped (no beat since 2,500, the cut-off now 2,600): taken over as generation 3, and
    // generation 2 can no longer write.
    assert!(log.take_over(&id, 0, 2, 2_600, 3_000).await.unwrap());
    assert!(
        !log.take_over(&id, 0, 2, 9_000, 9_000).await.unwrap(),
        "taken once"
    );
    assert!(!log.flush(&id, 0, 2, &flush(1, 9, None)).await.unwrap());
    let done = End::Done {
        undelivered: vec![],
        error: None,
    };
    assert!(log
        .flush(&id, 0, 3, &flush(1, 25, Some(done)))
        .await
        .unwrap());
    assert!(
        !log.take_over(&id, 0, 3, 9_000, 9_000).await.unwrap(),
        "a done segment is not taken over"
    );
    assert!(log
        .fail_unstarted(&id, 1, "could not invoke")
        .await
        .unwrap());
    assert!(!log.fail_unstarted(&id, 1, "again").await.unwrap());
    let status = log.get(&id).await.unwrap().expect("the record");
    assert_eq!(status.totals.delivered, 175);
    assert_eq!(
        (
            status.segments,
            status.segments_done,
            status.segments_failed,
            status.handovers,
            status.takeovers
        ),
        (2, 1, 1, 1, 1)
    );
    assert!(status.finished() && !status.complete());
    assert_eq!(
        status.segment[1].failed.as_deref(),
        Some("could not invoke")
    );
    assert!(log
        .get("20990101T000000Z-00000000")
        .await
        .unwrap()
        .is_none());
}
