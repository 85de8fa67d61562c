//! Streams in DynamoDB: the history table, hash key `stream` (S), range key `seq` (N), with
//! `id` (S), `message` (S, the stamped message as delivered) and `ttl` (N, DynamoDB's TTL
//! attribute). Appending is one conditional `PutItem` (the position after the stream's last,
//! read with a consistent `Query` of one item); reading is `Query`, never `Scan`. Entries
//! past their `ttl` are skipped even before TTL deletes them (which can take days).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde_json::Value;

use super::{stamp, Entry, HistoryError, HistoryPort, Replay, APPEND_TRIES};

pub struct DynamoHistory {
    client: Client,
    table: String,
    retention: Duration,
}

impl DynamoHistory {
    pub fn new(client: Client, table: impl Into<String>, retention: Duration) -> Self {
        DynamoHistory {
            client,
            table: table.into(),
            retention,
        }
    }

    fn fail<E>(&self, operation: &'static str, source: E) -> HistoryError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        HistoryError::Backend {
            operation,
            table: self.table.clone(),
            source: Box::new(source),
        }
    }

    /// The stream's last position (0 when nothing was kept).
    async fn head(&self, stream: &str) -> Result<u64, HistoryError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#s = :s")
            .expression_attribute_names("#s", "stream")
            .expression_attribute_values(":s", AttributeValue::S(stream.to_owned()))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .projection_expression("seq")
            .send()
            .await
            .map_err(|e| self.fail("Query", e))?;
        match out.items().first() {
            None => Ok(0),
            Some(item) => self.seq_of(item),
        }
    }

    fn seq_of(
        &self,
        item: &std::collections::HashMap<String, AttributeValue>,
    ) -> Result<u64, HistoryError> {
        item.get("seq")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| HistoryError::Malformed {
                table: self.table.clone(),
                reason: "an item without a numeric seq".into(),
            })
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[async_trait]
impl HistoryPort for DynamoHistory {
    async fn append(&self, stream: &str, id: &str, message: &Value) -> Result<u64, HistoryError> {
        for attempt in 0..APPEND_TRIES {
            let seq = self.head(stream).await? + 1;
            let text = serde_json::to_string(&stamp(message, id, stream, seq)).unwrap_or_default();
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("stream", AttributeValue::S(stream.to_owned()))
                .item("seq", AttributeValue::N(seq.to_string()))
                .item("id", AttributeValue::S(id.to_owned()))
                .item("message", AttributeValue::S(text))
                .item(
                    "ttl",
                    AttributeValue::N((now_s() + self.retention.as_secs() as i64).to_string()),
                )
                .condition_expression("attribute_not_exists(#s)")
                .expression_attribute_names("#s", "stream")
                .send()
                .await;
            match put {
                Ok(_) => return Ok(seq),
                // Another writer took the position: read the head again and take the next.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    let pause = fastrand::u64(0..=(5 + 5 * u64::from(attempt.min(10))));
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(self.fail("PutItem", e)),
            }
        }
        Err(HistoryError::Contended {
            stream: stream.to_owned(),
            tries: APPEND_TRIES,
        })
    }

    async fn after(&self, stream: &str, after: u64, cap: u32) -> Result<Replay, HistoryError> {
        let head = self.head(stream).await?;
        let missed = head.saturating_sub(after);
        if after > head || missed > u64::from(cap) {
            return Ok(Replay {
                head,
                gap: true,
                ..Replay::default()
            });
        }
        let mut entries = Vec::new();
        let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
        let now = now_s();
        while missed > 0 && entries.last().is_none_or(|e: &Entry| e.seq < head) {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#s = :s AND seq > :after")
                .expression_attribute_names("#s", "stream")
                .expression_attribute_values(":s", AttributeValue::S(stream.to_owned()))
                .expression_attribute_values(":after", AttributeValue::N(after.to_string()))
                .consistent_read(true)
                .limit(missed.min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.fail("Query", e))?;
            for item in out.items() {
                let seq = self.seq_of(item)?;
                if seq > head {
                    break;
                }
                let expires: i64 = item
                    .get("ttl")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(i64::MAX);
                if expires <= now {
                    continue;
                }
                let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                entries.push(Entry {
                    seq,
                    id: text("id").unwrap_or_default(),
                    message: text("message").unwrap_or_default().into_bytes(),
                });
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let gap = missed > 0 && entries.first().map(|e| e.seq) != Some(after + 1);
        Ok(Replay {
            entries: if gap { vec![] } else { entries },
            head,
            gap,
        })
    }
}
