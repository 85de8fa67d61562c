//! The DynamoDB [`BroadcastLog`] (the `aws` feature): one item per broadcast in the broadcasts
//! table (hash key `broadcast_id` (S), TTL on `ttl`).
//!
//! The item: `started_ms`, `topic`, `message_bytes`, `segments`, `segments_done`,
//! `segments_failed`, the totals (`delivered`, `gone`, `failed`, `throttled`, `retried`) and
//! `handovers` and `takeovers` as atomic counters; per segment `n`: `g_n` (the generation that owns it),
//! `f_n` (its last flush number), `b_n` (the last flush's epoch ms), `c_n` (the cursor),
//! `d_n` (done), `x_n` (why it failed), `e_n` (an error), `u_n` (undelivered ids, a sample).
//! Every write is one UpdateItem conditional on the owner and the flush number.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::log::{
    clip, sample, BroadcastLog, BroadcastStatus, End, Flush, SegmentStatus, Start, Totals,
};
use crate::store::StoreError;

/// The broadcasts table's hash key.
pub const KEY: &str = "broadcast_id";

#[derive(Clone, Debug)]
pub struct DynamoBroadcastLog {
    client: Client,
    table: String,
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn list(ids: &[String]) -> AttributeValue {
    AttributeValue::L(sample(ids).into_iter().map(s).collect())
}

/// One UpdateItem's pieces.
#[derive(Default)]
struct Update {
    set: Vec<String>,
    add: Vec<String>,
    remove: Vec<String>,
    values: HashMap<String, AttributeValue>,
}

impl Update {
    fn set(&mut self, attribute: &str, value: AttributeValue) {
        let name = format!(":{}", attribute.replace('_', "x"));
        self.set.push(format!("{attribute} = {name}"));
        self.values.insert(name, value);
    }

    fn add(&mut self, attribute: &str, by: u64) {
        let name = format!(":add{}", attribute.replace('_', "x"));
        self.add.push(format!("{attribute} {name}"));
        self.values.insert(name, n(by));
    }

    fn value(&mut self, name: &str, value: AttributeValue) {
        self.values.insert(name.to_owned(), value);
    }

    fn expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        parts.join(" ")
    }
}

impl DynamoBroadcastLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoBroadcastLog {
            client,
            table: table.into(),
        }
    }

    fn fail<E>(&self, operation: &'static str, source: E) -> StoreError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        StoreError::Backend {
            operation,
            table: self.table.clone(),
            source: Box::new(source),
        }
    }

    /// One conditional UpdateItem; `Ok(false)` when the condition failed.
    async fn update(&self, id: &str, update: Update, condition: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(id))
            .update_expression(update.expression())
            .condition_expression(condition)
            .set_expression_attribute_values(Some(update.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.fail("UpdateItem", e)),
        }
    }

    async fn item(&self, id: &str) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.fail("GetItem", e))?;
        Ok(out.item)
    }
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0),
        _ => 0,
    }
}

fn string(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn parse(item: &HashMap<String, AttributeValue>) -> BroadcastStatus {
    let segments = number(item, "segments") as u32;
    let segment = (0..segments)
        .map(|i| SegmentStatus {
            index: i,
            generation: number(item, &format!("g_{i}")) as u32,
            done: matches!(
                item.get(&format!("d_{i}")),
                Some(AttributeValue::Bool(true))
            ),
            failed: string(item, &format!("x_{i}")),
            beat_ms: number(item, &format!("b_{i}")),
            cursor: string(item, &format!("c_{i}")),
            error: string(item, &format!("e_{i}")),
            undelivered: match item.get(&format!("u_{i}")) {
                Some(AttributeValue::L(l)) => {
                    l.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
                }
                _ => Vec::new(),
            },
        })
        .collect();
    BroadcastStatus {
        broadcast_id: string(item, KEY).unwrap_or_default(),
        started_ms: number(item, "started_ms"),
        topic: string(item, "topic"),
        message_bytes: number(item, "message_bytes"),
        segments,
        segments_done: number(item, "segments_done") as u32,
        segments_failed: number(item, "segments_failed") as u32,
        totals: Totals {
            delivered: number(item, "delivered"),
            gone: number(item, "gone"),
            failed: number(item, "failed"),
            throttled: number(item, "throttled"),
            retried: number(item, "retried"),
        },
        handovers: number(item, "handovers"),
        takeovers: number(item, "takeovers"),
        segment,
    }
}

#[async_trait]
impl BroadcastLog for DynamoBroadcastLog {
    async fn start(&self, start: &Start) -> Result<bool, StoreError> {
        let mut item = HashMap::from([
            (KEY.to_owned(), s(start.id.clone())),
            ("started_ms".to_owned(), n(start.started_ms)),
            ("message_bytes".to_owned(), n(start.message_bytes)),
            ("segments".to_owned(), n(start.segments)),
            ("ttl".to_owned(), n(start.expires)),
        ]);
        for counter in [
            "segments_done",
            "segments_failed",
            "delivered",
            "gone",
            "failed",
            "throttled",
            "retried",
            "handovers",
            "takeovers",
        ] {
            item.insert(counter.to_owned(), n(0));
        }
        if let Some(topic) = &start.topic {
            item.insert("topic".to_owned(), s(topic.clone()));
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(broadcast_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.fail("PutItem", e)),
        }
    }

    async fn claim(
        &self,
        id: &str,
        segment: u32,
        generation: u32,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let i = segment;
        let mut u = Update::default();
        u.set(&format!("g_{i}"), n(generation));
        u.set(&format!("f_{i}"), n(0));
        u.set(&format!("b_{i}"), n(now_ms));
        let condition = if generation <= 1 {
            format!("attribute_exists(broadcast_id) AND attribute_not_exists(g_{i}) AND attribute_not_exists(x_{i})")
        } else {
            u.add("handovers", 1);
            u.value(":prev", n(generation - 1));
            format!("g_{i} = :prev AND attribute_not_exists(d_{i}) AND attribute_not_exists(x_{i})")
        };
        self.update(id, u, &condition).await
    }

    async fn take_over(
        &self,
        id: &str,
        segment: u32,
        generation: u32,
        stale_before_ms: u64,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let i = segment;
        let mut u = Update::default();
        u.set(&format!("g_{i}"), n(generation + 1));
        u.set(&format!("f_{i}"), n(0));
        u.set(&format!("b_{i}"), n(now_ms));
        u.add("takeovers", 1);
        u.value(":owner", n(generation));
        u.value(":stale", n(stale_before_ms));
        let condition = format!(
            "g_{i} = :owner AND (attribute_not_exists(b_{i}) OR b_{i} < :stale) AND attribute_not_exists(d_{i}) AND attribute_not_exists(x_{i})"
        );
        self.update(id, u, &condition).await
    }

    async fn flush(
        &self,
        id: &str,
        segment: u32,
        generation: u32,
        flush: &Flush,
    ) -> Result<bool, StoreError> {
        let i = segment;
        let mut u = Update::default();
        u.set(&format!("f_{i}"), n(flush.seq));
        u.set(&format!("b_{i}"), n(flush.beat_ms));
        match &flush.cursor {
            Some(c) => u.set(&format!("c_{i}"), s(c.clone())),
            None => u.remove.push(format!("c_{i}")),
        }
        let d = &flush.delta;
        for (name, by) in [
            ("delivered", d.delivered),
            ("gone", d.gone),
            ("failed", d.failed),
            ("throttled", d.throttled),
            ("retried", d.retried),
        ] {
            if by > 0 {
                u.add(name, by);
            }
        }
        match &flush.end {
            None | Some(End::HandedOver) => {}
            Some(End::Done { undelivered, error }) => {
                u.set(&format!("d_{i}"), AttributeValue::Bool(true));
                u.add("segments_done", 1);
                if !undelivered.is_empty() {
                    u.set(&format!("u_{i}"), list(undelivered));
                }
                if let Some(e) = error {
                    u.set(&format!("e_{i}"), s(clip(e)));
                }
            }
            Some(End::Failed { error, undelivered }) => {
                u.set(&format!("x_{i}"), s(clip(error)));
                u.add("segments_failed", 1);
                if !undelivered.is_empty() {
                    u.set(&format!("u_{i}"), list(undelivered));
                }
            }
        }
        u.value(":gen", n(generation));
        u.value(":prevseq", n(flush.seq.saturating_sub(1)));
        let condition = format!("g_{i} = :gen AND f_{i} = :prevseq");
        if self.update(id, u, &condition).await? {
            return Ok(true);
        }
        // Refused: applied already (a retry after a lost answer), or the segment is not ours.
        Ok(self.item(id).await?.is_some_and(|item| {
            number(&item, &format!("g_{i}")) == u64::from(generation)
                && number(&item, &format!("f_{i}")) >= u64::from(flush.seq)
        }))
    }

    async fn fail_unstarted(
        &self,
        id: &str,
        segment: u32,
        error: &str,
    ) -> Result<bool, StoreError> {
        let i = segment;
        let mut u = Update::default();
        u.set(&format!("x_{i}"), s(clip(error)));
        u.add("segments_failed", 1);
        let condition = format!(
            "attribute_exists(broadcast_id) AND attribute_not_exists(g_{i}) AND attribute_not_exists(x_{i})"
        );
        self.update(id, u, &condition).await
    }

    async fn get(&self, id: &str) -> Result<Option<BroadcastStatus>, StoreError> {
        Ok(self.item(id).await?.as_ref().map(parse))
    }
}
