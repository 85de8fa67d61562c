//! Topics indexed by topic, against moto over HTTP through the recording proxy: a topic
//! broadcast queries its subscribers and reads no other row of the connections table; the
//! index follows subscribe, unsubscribe and `$disconnect`.

use support::proxy;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use handler::store::DynamoStore;
use handler::{ConnectionStore, Handler, PushError, Pusher, Rows, Segment, Settings};
use proxy::Proxy;
use serde_json::json;
use support::{create_connections_table, create_table, Moto};

const ROWS: usize = 5_000;
const SUBSCRIBERS: usize = 10;

/// Counts the posts each connection received.
#[derive(Default)]
struct Counter(Mutex<HashMap<String, u32>>);

#[async_trait]
impl Pusher for Counter {
    async fn post(&self, _endpoint: &str, id: &str, _data: &[u8]) -> Result<(), PushError> {
        *self.0.lock().unwrap().entry(id.to_owned()).or_default() += 1;
        Ok(())
    }

    async fn close(&self, _endpoint: &str, id: &str) -> Result<(), PushError> {
        Err(PushError::Gone(id.to_owned()))
    }
}

fn id(i: usize) -> String {
    format!("Conn{i:05}AbC=")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_broadcast_reads_its_subscribers_not_the_table() {
    let moto = Moto::start(false);
    let proxy = Proxy::start(&moto.url());
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&proxy.url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    create_connections_table(&client, "t_ws_connections").await;
    create_table(
        &client,
        "t_ws_subscriptions",
        "topic_shard",
        Some("connection_id"),
    )
    .await;
    // 5,000 connections, 25 to a BatchWriteItem.
    let rows: Vec<usize> = (0..ROWS).collect();
    for chunk in rows.chunks(25) {
        let writes = chunk
            .iter()
            .map(|i| {
                let item = HashMap::from([
                    ("connection_id".to_owned(), AttributeValue::S(id(*i))),
                    ("ttl".to_owned(), AttributeValue::N("1900000000".into())),
                ]);
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                    .build()
            })
            .collect();
        let out = client
            .batch_write_item()
            .request_items("t_ws_connections", writes)
            .send()
            .await
            .unwrap();
        assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()));
    }
    let store = Arc::new(
        DynamoStore::new(client.clone(), "t_ws_connections")
            .with_subscriptions(Some("t_ws_subscriptions".into())),
    );
    // Ten subscribers, plus one that leaves the topic and one that disconnects.
    let subscribers: Vec<String> = (0..SUBSCRIBERS + 2).map(|k| id(k * 400 + 7)).collect();
    for s in &subscribers {
        assert!(store.subscribe(s, "claims").await.unwrap());
    }
    assert!(store.subscribe(&id(3), "other").await.unwrap());
    assert!(store
        .unsubscribe(&subscribers[SUBSCRIBERS], "claims")
        .await
        .unwrap());
    store.delete(&subscribers[SUBSCRIBERS + 1]).await.unwrap();
    // A connection that is gone gets no subscription.
    assert!(!store.subscribe("NoSuchConn0=", "claims").await.unwrap());

    let pusher = Arc::new(Counter::default());
    let settings = Settings {
        api_id: Some("abc123".into()),
        region: Some("us-east-1".into()),
        ..Settings::default()
    };
    let handler = Handler::new(settings, store.clone(), pusher.clone());
    proxy.clear();
    let report = handler
        .invoke_until(
            &json!({"action": "broadcast", "topic": "claims", "message": {"type": "t"}}),
            Instant::now() + Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(
        (report.delivered, report.failed),
        (SUBSCRIBERS as u64, 0),
        "{report:?}"
    );
    let received = pusher.0.lock().unwrap().clone();
    let expected: HashMap<String, u32> = subscribers[..SUBSCRIBERS]
        .iter()
        .map(|s| (s.clone(), 1))
        .collect();
    assert_eq!(received, expected);

    // What the broadcast read: Queries of the topic's shards, nothing else.
    let calls = proxy.calls();
    let reads: Vec<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.operation, c.body))
        .collect();
    assert!(
        calls
            .iter()
            .all(|c| c.operation == "Query" && c.body.contains("t_ws_subscriptions")),
        "only Query on the subscriptions table: {reads:#?}"
    );
    assert!(
        (8..=16).contains(&calls.len()),
        "one Query per shard of the topic (8), a second page at most: {} calls",
        calls.len()
    );
    // A large topic's workers each read a group of its shards: together every subscriber,
    // each once (pages of 3 to cross the shards' own pages).
    let mut seen = Vec::new();
    for index in 0..4 {
        let part = Rows::Topic("claims", Segment { index, total: 4 });
        let mut cursor = None;
        loop {
            let page = store.ids(part, cursor, Some(3)).await.unwrap();
            seen.extend(page.items);
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
    }
    seen.sort();
    let mut want = subscribers[..SUBSCRIBERS].to_vec();
    want.sort();
    assert_eq!(seen, want);
    // The index holds the ten subscribers of "claims" and the one of "other", nothing else.
    let indexed = client
        .scan()
        .table_name("t_ws_subscriptions")
        .send()
        .await
        .unwrap();
    assert_eq!(indexed.count(), SUBSCRIBERS as i32 + 1);
}
