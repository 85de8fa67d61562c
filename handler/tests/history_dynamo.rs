//! The history table in DynamoDB (moto, through the recording proxy): one conditional write
//! per message (positions 1, 2, 3... even with writers racing), reads with Query and never
//! Scan, gaps for expired entries and for more than the cap; and a resume through the handler
//! against it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use handler::history::{DynamoHistory, HistoryPort};
use handler::{Event, Handler, InProcessPusher, MemoryStore, RequestContext, Settings};
use serde_json::{json, Value};
use support::proxy::Proxy;
use support::Moto;

const TABLE: &str = "chat_ws_history";

async fn history(proxy: &Proxy, retention: Duration) -> DynamoHistory {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&proxy.url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let _ = client
        .create_table()
        .table_name(TABLE)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("stream")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("seq")
                .attribute_type(ScalarAttributeType::N)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("stream")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("seq")
                .key_type(KeyType::Range)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await;
    DynamoHistory::new(client, TABLE, retention)
}

fn operations(proxy: &Proxy) -> Vec<String> {
    proxy
        .calls()
        .into_iter()
        .filter(|c| c.service == "dynamodb")
        .map(|c| c.operation)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn positions_are_one_write_per_message_and_reads_are_queries() {
    let moto = Moto::start(false);
    let proxy = Proxy::start(&moto.url());
    let h = Arc::new(history(&proxy, Duration::from_secs(600)).await);
    proxy.clear();
    // Two writers racing on one stream: every message gets its own position, 1 to 20.
    let mut tasks = Vec::new();
    for w in 0..2 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for n in 0..10 {
                let id = format!("m{w}-{n}");
                got.push(
                    h.append("topic:claims", &id, &json!({"type": "t", "data": n}))
                        .await
                        .unwrap(),
                );
            }
            got
        }));
    }
    let mut positions: Vec<u64> = Vec::new();
    for t in tasks {
        positions.extend(t.await.unwrap());
    }
    positions.sort();
    assert_eq!(positions, (1..=20).collect::<Vec<_>>());
    let ops = operations(&proxy);
    let written = ops.iter().filter(|o| *o == "PutItem").count();
    let refused = proxy
        .calls()
        .iter()
        .filter(|c| c.operation == "PutItem" && c.status == 400)
        .count();
    assert_eq!(
        written - refused,
        20,
        "one write per message (plus the ones a racing writer refused): {ops:?}"
    );
    assert!(
        !ops.iter().any(|o| o == "UpdateItem" || o == "Scan"),
        "{ops:?}"
    );

    proxy.clear();
    let replay = h.after("topic:claims", 15, 100).await.unwrap();
    assert_eq!(
        replay.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [16, 17, 18, 19, 20]
    );
    assert_eq!(replay.head, 20);
    assert!(!replay.gap);
    let kept: Value = serde_json::from_slice(&replay.entries[0].message).unwrap();
    assert_eq!(kept["wsctl"]["seq"], 16);
    assert_eq!(kept["wsctl"]["stream"], "topic:claims");
    let ops = operations(&proxy);
    assert!(
        ops.iter().all(|o| o == "Query"),
        "reads are queries: {ops:?}"
    );
    // More missed than the cap: a gap, nothing replayed.
    let capped = h.after("topic:claims", 2, 10).await.unwrap();
    assert!(capped.gap && capped.entries.is_empty());
    // A stream never written, asked from a position: a gap; from 0: nothing to replay.
    assert!(h.after("topic:other", 3, 10).await.unwrap().gap);
    assert_eq!(
        h.after("topic:other", 0, 10).await.unwrap(),
        Default::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entries_are_a_gap_before_ttl_removes_them() {
    let moto = Moto::start(false);
    let proxy = Proxy::start(&moto.url());
    // Kept for no time at all: expired as soon as written.
    let h = history(&proxy, Duration::from_secs(0)).await;
    for n in 0..3 {
        h.append("all", &format!("m{n}"), &json!({"type": "t"}))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let replay = h.after("all", 1, 100).await.unwrap();
    assert!(replay.gap, "{replay:?}");
    assert_eq!(replay.head, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_through_the_handler_replays_from_the_table() {
    let moto = Moto::start(false);
    let proxy = Proxy::start(&moto.url());
    let h: Handler<MemoryStore, InProcessPusher> = Handler::new(
        Settings {
            api_id: Some("abc123".into()),
            region: Some("us-east-1".into()),
            ..Settings::default()
        },
        Arc::new(MemoryStore::default()),
        Arc::new(InProcessPusher::new()),
    )
    .with_history(
        Arc::new(history(&proxy, Duration::from_secs(600)).await),
        100,
    );
    for n in 1..=3 {
        h.handle(Event::Invoke(
            json!({"action": "broadcast", "topic": "claims", "message": {"type": "t", "data": n}}),
        ))
        .await
        .unwrap();
    }
    let mut rx = h.pusher().register("B=");
    let ctx = RequestContext {
        connection_id: "B=".into(),
        ..RequestContext::default()
    };
    h.handle(Event::Connect {
        ctx: ctx.clone(),
        query: BTreeMap::new(),
        headers: BTreeMap::new(),
    })
    .await
    .unwrap();
    h.handle(Event::Message {
        ctx,
        body: Some(json!({"action": "resume", "streams": {"topic:claims": 1}}).to_string()),
    })
    .await
    .unwrap();
    let mut got = Vec::new();
    while let Ok(m) = rx.try_recv() {
        got.push(serde_json::from_slice::<Value>(&m).unwrap());
    }
    assert_eq!(
        got.iter()
            .filter_map(|m| m["data"].as_u64())
            .collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(got.last().unwrap()["type"], "resumed");
}
