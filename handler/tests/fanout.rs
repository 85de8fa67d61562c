//! Fan-out against the in-memory ports: a broadcast split over worker invocations, hand-overs
//! near an invocation's deadline, and repeated invocations (Lambda's asynchronous invocations
//! are at-least-once), each checked by counting what every connection received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use handler::fanout::{InvokeError, MemoryBroadcastLog};
use handler::{
    BroadcastLog, BroadcastStatus, Connection, ConnectionStore, DeliveryReport, Event, FanOut,
    Handler, Invoker, MemoryStore, Outcome, PushError, Pusher, Settings,
};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Counts the posts each connection received; each post takes `delay`.
#[derive(Default)]
struct Counter {
    received: Mutex<HashMap<String, u32>>,
    delay: Option<Duration>,
    /// Every post answers 500 (the management API down).
    down: std::sync::atomic::AtomicBool,
    /// The distinct messages posted.
    payloads: Mutex<std::collections::HashSet<Vec<u8>>>,
}

#[async_trait]
impl Pusher for Counter {
    async fn post(&self, _endpoint: &str, id: &str, data: &[u8]) -> Result<(), PushError> {
        self.payloads.lock().unwrap().insert(data.to_vec());
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(PushError::Failed {
                connection_id: id.to_owned(),
                retryable: true,
                source: "500 InternalServerError".into(),
            });
        }
        *self
            .received
            .lock()
            .unwrap()
            .entry(id.to_owned())
            .or_default() += 1;
        Ok(())
    }

    async fn close(&self, _endpoint: &str, id: &str) -> Result<(), PushError> {
        Err(PushError::Gone(id.to_owned()))
    }
}

/// Lambda's `InvocationType=Event`: the payload is queued; the test's driver runs it. With
/// `copies` 2 every invocation is delivered twice, as Lambda may.
struct Queue {
    tx: mpsc::UnboundedSender<Value>,
    copies: usize,
}

#[async_trait]
impl Invoker for Queue {
    async fn invoke_event(&self, payload: &Value) -> Result<(), InvokeError> {
        for _ in 0..self.copies {
            self.tx.send(payload.clone()).map_err(|e| InvokeError {
                message: e.to_string(),
                retryable: false,
            })?;
        }
        Ok(())
    }
}

type H = Handler<MemoryStore, Counter>;

struct Rig {
    handler: H,
    store: Arc<MemoryStore>,
    pusher: Arc<Counter>,
    log: Arc<MemoryBroadcastLog>,
    queue: mpsc::UnboundedReceiver<Value>,
    /// How long each invocation may run.
    invocation: Duration,
}

async fn rig(rows: usize, workers: u32, copies: usize, delay: Option<Duration>) -> Rig {
    let store = Arc::new(MemoryStore::with_page_size(500));
    for i in 0..rows {
        store
            .put(Connection {
                connection_id: format!("c{i:06}="),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let pusher = Arc::new(Counter {
        delay,
        ..Default::default()
    });
    let log = Arc::new(MemoryBroadcastLog::new());
    let (tx, queue) = mpsc::unbounded_channel();
    let settings = Settings {
        api_id: Some("abc123".into()),
        region: Some("us-east-1".into()),
        broadcast_concurrency: 16,
        ..Settings::default()
    };
    let handler = Handler::new(settings, store.clone(), pusher.clone()).with_fanout(
        FanOut::new(Arc::new(Queue { tx, copies }), log.clone(), workers)
            .with_handover_margin(Duration::from_millis(30))
            .with_stale_after(Duration::from_millis(200)),
    );
    Rig {
        handler,
        store,
        pusher,
        log,
        queue,
        invocation: Duration::from_secs(60),
    }
}

fn report(outcome: Outcome) -> DeliveryReport {
    match outcome {
        Outcome::Report(r) => r,
        other => panic!("expected a delivery report, got {other:?}"),
    }
}

impl Rig {
    async fn invoke(&self, payload: Value) -> DeliveryReport {
        let deadline = Instant::now() + self.invocation;
        report(
            self.handler
                .handle_until(Event::Invoke(payload), deadline)
                .await
                .unwrap(),
        )
    }

    /// Runs every queued invocation (and those they queue) concurrently, as Lambda would,
    /// until none is left; returns how many ran.
    async fn drain(&mut self) -> usize {
        let mut running = tokio::task::JoinSet::new();
        let mut ran = 0;
        let limit = Instant::now() + Duration::from_secs(60);
        loop {
            while let Ok(payload) = self.queue.try_recv() {
                ran += 1;
                let handler = self.handler.clone();
                let deadline = Instant::now() + self.invocation;
                running.spawn(async move {
                    handler
                        .handle_until(Event::Invoke(payload), deadline)
                        .await
                        .unwrap()
                });
            }
            match running.join_next().await {
                Some(done) => {
                    done.unwrap();
                }
                None => break,
            }
            assert!(Instant::now() < limit, "the fan-out did not settle in 60 s");
        }
        ran
    }

    async fn status(&self, id: &str) -> BroadcastStatus {
        self.log.get(id).await.unwrap().expect("a status record")
    }

    fn assert_each_once(&self, rows: usize) {
        let received = self.pusher.received.lock().unwrap();
        assert_eq!(received.len(), rows, "connections reached");
        let twice: Vec<_> = received.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "posted more than once: {twice:?}");
    }
}

fn broadcast() -> Value {
    json!({"action": "broadcast", "message": {"type": "t", "data": 1}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_table_is_delivered_by_the_invocation_that_receives_the_broadcast() {
    let mut rig = rig(300, 10, 1, None).await;
    let r = rig.invoke(broadcast()).await;
    assert_eq!((r.delivered, r.failed, r.segments), (300, 0, None));
    assert!(r.complete);
    let id = r.broadcast_id.clone().expect("a broadcast id");
    assert_eq!(rig.drain().await, 0, "no worker was invoked");
    let status = rig.status(&id).await;
    assert_eq!((status.segments, status.totals.delivered), (1, 300));
    assert!(status.complete());
    rig.assert_each_once(300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_table_is_split_over_workers_and_each_connection_gets_one_message() {
    let rows = 5_000;
    let mut rig = rig(rows, 4, 1, None).await;
    let r = rig.invoke(broadcast()).await;
    // The coordinator posts nothing itself: it answers with the id and the segments.
    assert_eq!((r.delivered, r.segments), (0, Some(2)));
    let id = r.broadcast_id.clone().unwrap();
    assert_eq!(rig.drain().await, 2, "one invocation per segment");
    let status = rig.status(&id).await;
    assert!(status.complete(), "{status:?}");
    assert_eq!(
        (
            status.segments_done,
            status.totals.delivered,
            status.handovers
        ),
        (2, rows as u64, 0)
    );
    rig.assert_each_once(rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_near_its_deadline_hands_over_and_nothing_is_posted_twice() {
    let rows = 5_000;
    let mut rig = rig(rows, 2, 1, Some(Duration::from_millis(2))).await;
    // 16 posts in flight at 2 ms each: about 8,000 posts/s, so a segment of 2,500 needs
    // about 0.3 s, and invocations of 0.1 s must hand over several times.
    rig.invocation = Duration::from_millis(100);
    let id = rig.invoke(broadcast()).await.broadcast_id.unwrap();
    let ran = rig.drain().await;
    let status = rig.status(&id).await;
    assert!(status.complete(), "{status:?}");
    assert!(status.handovers >= 2, "hand-overs: {}", status.handovers);
    assert_eq!(ran as u64, 2 + status.handovers);
    assert_eq!(status.totals.delivered, rows as u64);
    rig.assert_each_once(rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_delivered_twice_posts_once() {
    let rows = 5_000;
    let mut rig = rig(rows, 4, 2, Some(Duration::from_millis(1))).await;
    rig.invocation = Duration::from_millis(150);
    let first = rig.invoke(broadcast()).await;
    let id = first.broadcast_id.clone().unwrap();
    rig.drain().await;
    let status = rig.status(&id).await;
    assert!(status.complete(), "{status:?}");
    assert_eq!(status.totals.delivered, rows as u64);
    rig.assert_each_once(rows);
    // The coordinator's own invocation repeated with the same id answers from the record.
    let again = rig
        .invoke(json!({"action": "broadcast", "broadcast_id": id, "message": {"type": "t"}}))
        .await;
    assert_eq!((again.delivered, again.complete), (rows as u64, true));
    assert_eq!(rig.drain().await, 0);
    rig.assert_each_once(rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_reaches_its_subscribers_only() {
    let mut rig = rig(3_000, 4, 1, None).await;
    for i in (0..3_000).step_by(300) {
        assert!(rig
            .store
            .subscribe(&format!("c{i:06}="), "news")
            .await
            .unwrap());
    }
    // One of them leaves the topic again, another leaves altogether.
    assert!(rig.store.unsubscribe("c000300=", "news").await.unwrap());
    rig.store.delete("c000600=").await.unwrap();
    let r = rig
        .invoke(json!({"action": "broadcast", "topic": "news", "message": {"type": "n"}}))
        .await;
    assert_eq!((r.delivered, r.segments), (8, None));
    assert_eq!(rig.drain().await, 0);
    rig.assert_each_once(8);
    let received = rig.pusher.received.lock().unwrap();
    assert!(!received.contains_key("c000300=") && !received.contains_key("c000600="));
}

#[tokio::test]
async fn the_status_of_a_broadcast_is_an_invocation() {
    let rig = rig(10, 4, 1, None).await;
    let id = rig.invoke(broadcast()).await.broadcast_id.unwrap();
    let out = rig
        .handler
        .handle_until(
            Event::Invoke(json!({"action": "broadcast_status", "broadcast_id": id})),
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap();
    let v = serde_json::to_value(out).unwrap();
    assert_eq!(v["broadcast_id"], json!(id));
    assert_eq!(v["delivered"], json!(10));
    let missing = rig
        .handler
        .handle_until(
            Event::Invoke(json!({"action": "broadcast_status", "broadcast_id": "nope"})),
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("no broadcast with id"),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_that_cannot_post_fails_instead_of_handing_over_forever() {
    let rows = 5_000;
    let mut rig = rig(rows, 2, 1, Some(Duration::from_millis(1))).await;
    rig.pusher
        .down
        .store(true, std::sync::atomic::Ordering::Relaxed);
    rig.invocation = Duration::from_millis(150);
    let id = rig.invoke(broadcast()).await.broadcast_id.unwrap();
    let ran = rig.drain().await;
    let status = rig.status(&id).await;
    assert!(status.finished() && !status.complete(), "{status:?}");
    assert_eq!(
        (status.segments_failed, status.handovers),
        (2, 0),
        "{status:?}"
    );
    assert_eq!(ran, 2, "one invocation per segment, none handed over");
    assert!(
        status.segment.iter().all(|s| s
            .failed
            .as_deref()
            .is_some_and(|e| e.contains("posted to no connection"))),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambdas_retry_of_a_worker_that_stopped_takes_its_segment_over() {
    let rows = 5_000;
    let mut rig = rig(rows, 2, 1, None).await;
    let id = rig.invoke(broadcast()).await.broadcast_id.unwrap();
    // The first segment's worker claims its part and dies before posting anything.
    let first = rig.queue.recv().await.unwrap();
    assert_eq!(first["segment"], 0, "{first}");
    assert!(rig.log.claim(&id, 0, 1, now_ms()).await.unwrap());
    // A retry while the record is fresh posts nothing (the worker may still be alive).
    let early = rig.invoke(first.clone()).await;
    assert_eq!(early.delivered, 0);
    assert!(early.errors[0].contains("duplicate"), "{early:?}");
    // Lambda's retry after the worker's silence: it takes the segment over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let retry = rig.invoke(first).await;
    assert!(retry.delivered > 2_000, "{retry:?}");
    rig.drain().await;
    let status = rig.status(&id).await;
    assert!(status.complete(), "{status:?}");
    assert_eq!(
        (status.takeovers, status.totals.delivered),
        (1, rows as u64)
    );
    rig.assert_each_once(rows);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_topic_is_split_over_workers_by_its_shards() {
    let rows = 5_000;
    let mut rig = rig(rows, 4, 1, None).await;
    // 3,000 subscribers: more than one invocation delivers inline.
    for i in 0..3_000 {
        assert!(rig
            .store
            .subscribe(&format!("c{i:06}="), "big")
            .await
            .unwrap());
    }
    let r = rig
        .invoke(json!({"action": "broadcast", "topic": "big", "message": {"type": "b"}}))
        .await;
    assert_eq!((r.delivered, r.segments), (0, Some(4)), "{r:?}");
    assert_eq!(rig.drain().await, 4, "one worker per group of shards");
    let status = rig.status(&r.broadcast_id.unwrap()).await;
    assert!(status.complete(), "{status:?}");
    assert_eq!(status.totals.delivered, 3_000);
    rig.assert_each_once(3_000);
    let received = rig.pusher.received.lock().unwrap();
    assert!(received.keys().all(|id| id.as_str() < "c003000="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_history_a_fanned_out_broadcast_has_one_position_through_workers_retries_and_hand_overs(
) {
    use handler::history::{HistoryPort, MemoryHistory};
    let rows = 5_000;
    // Every invocation delivered twice (as Lambda may), and hand-overs.
    let mut rig = rig(rows, 2, 2, Some(Duration::from_millis(2))).await;
    let history = Arc::new(MemoryHistory::new(Duration::from_secs(600), 100));
    rig.handler = rig.handler.clone().with_history(history.clone(), 100);
    rig.invocation = Duration::from_millis(100);
    let payload = json!({"action": "broadcast", "broadcast_id": "b-once", "message": {"type": "t", "data": 1}});
    let id = rig.invoke(payload.clone()).await.broadcast_id.unwrap();
    // The caller's SDK retries the same broadcast.
    rig.invoke(payload).await;
    rig.drain().await;
    let status = rig.status(&id).await;
    assert!(status.complete(), "{status:?}");
    assert!(status.handovers >= 1, "hand-overs: {}", status.handovers);
    let payloads = rig.pusher.payloads.lock().unwrap().clone();
    assert_eq!(payloads.len(), 1, "one message, one position: {payloads:?}");
    let posted: Value = serde_json::from_slice(payloads.iter().next().unwrap()).unwrap();
    assert_eq!(
        posted["wsctl"],
        json!({"id": "b-once", "stream": "all", "seq": 1})
    );
    let kept = history.after("all", 0, 100).await.unwrap();
    assert_eq!(kept.entries.len(), 1, "kept once");
    assert_eq!(kept.head, 1);
}
