//! A broadcast's status record: the [`BroadcastLog`] port, what it holds, and the in-memory
//! implementation (`wsctl dev`, tests). The DynamoDB one is [`super::dynamo`].
//!
//! One record per broadcast id. Each segment is owned by one invocation at a time, its
//! *generation* (1 for the first worker, one more at every hand-over): an invocation claims
//! its generation before it posts, and every write it makes to the record is conditional on
//! still owning it. A duplicate delivery of the same invocation (Lambda's asynchronous
//! invocations are at-least-once) therefore finds its generation taken and posts nothing.
//! Flushes are numbered, so a flush retried after a lost answer is recognised as applied and
//! counted once.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// Counts a worker adds to the record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub delivered: u64,
    pub gone: u64,
    pub failed: u64,
    pub throttled: u64,
    pub retried: u64,
}

impl Totals {
    /// `self - before`, field by field (totals only grow).
    pub fn since(&self, before: &Totals) -> Totals {
        Totals {
            delivered: self.delivered.saturating_sub(before.delivered),
            gone: self.gone.saturating_sub(before.gone),
            failed: self.failed.saturating_sub(before.failed),
            throttled: self.throttled.saturating_sub(before.throttled),
            retried: self.retried.saturating_sub(before.retried),
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Totals::default()
    }

    /// Adds `other`, field by field.
    pub fn add(&mut self, other: &Totals) {
        self.delivered += other.delivered;
        self.gone += other.gone;
        self.failed += other.failed;
        self.throttled += other.throttled;
        self.retried += other.retried;
    }
}

/// A new broadcast's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    pub id: String,
    pub segments: u32,
    pub topic: Option<String>,
    pub message_bytes: u64,
    /// Epoch milliseconds.
    pub started_ms: u64,
    /// Epoch seconds after which the record may be removed (DynamoDB TTL).
    pub expires: i64,
}

/// How a flush ends its generation's part, if it does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The segment is delivered; `undelivered` are (some of) the ids it failed.
    Done {
        undelivered: Vec<String>,
        error: Option<String>,
    },
    /// The rest is handed to the next generation.
    HandedOver,
    /// The segment stopped short: `error` says why; what was not read is after the cursor.
    Failed {
        error: String,
        undelivered: Vec<String>,
    },
}

/// One write of a worker to the record: what it did since its last flush.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flush {
    /// 1 for a generation's first flush, then one more each time.
    pub seq: u32,
    pub delta: Totals,
    /// Epoch milliseconds of the flush: a segment whose beat gets old has stalled.
    pub beat_ms: u64,
    /// Where reading stands (the next page's cursor).
    pub cursor: Option<String>,
    pub end: Option<End>,
}

/// One segment, as the record has it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentStatus {
    pub index: u32,
    /// The generation that owns it (0: not started).
    pub generation: u32,
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// Epoch milliseconds of its last flush.
    #[serde(default)]
    pub beat_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undelivered: Vec<String>,
}

/// A broadcast's record: what `wsctl broadcast status` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastStatus {
    pub broadcast_id: String,
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    pub message_bytes: u64,
    pub segments: u32,
    pub segments_done: u32,
    pub segments_failed: u32,
    #[serde(flatten)]
    pub totals: Totals,
    /// Hand-overs from one invocation to the next.
    pub handovers: u64,
    /// Segments taken over from a worker that stopped answering (by Lambda's retry of its
    /// invocation, which starts the segment's part again).
    #[serde(default)]
    pub takeovers: u64,
    /// The segments, by index.
    pub segment: Vec<SegmentStatus>,
}

impl BroadcastStatus {
    /// Every segment is done or failed.
    pub fn finished(&self) -> bool {
        self.segments_done + self.segments_failed >= self.segments
    }

    /// Finished, nothing failed, no segment stopped short.
    pub fn complete(&self) -> bool {
        self.finished() && self.segments_failed == 0 && self.totals.failed == 0
    }
}

/// Undelivered ids a segment keeps in the record at most (the record stays far below
/// DynamoDB's 400 KB item limit with [`crate::settings::MAX_WORKERS`] segments).
pub const MAX_UNDELIVERED_PER_SEGMENT: usize = 20;
/// Characters of a segment's error kept in the record.
pub const MAX_ERROR_CHARS: usize = 300;

/// Where broadcasts' records live.
#[async_trait]
pub trait BroadcastLog: Send + Sync {
    /// Creates the record; `false` when a record with this id exists (a repeated invocation).
    async fn start(&self, start: &Start) -> Result<bool, StoreError>;
    /// Takes `segment` for `generation` (1 from nothing, n from n - 1), its beat set to
    /// `now_ms`. `false` when another invocation has it (or had it).
    async fn claim(
        &self,
        id: &str,
        segment: u32,
        generation: u32,
        now_ms: u64,
    ) -> Result<bool, StoreError>;
    /// Takes `segment` from `generation` for `generation + 1` when that generation's last
    /// beat is before `stale_before_ms` and the segment is neither done nor failed: its worker
    /// stopped answering. `false` otherwise.
    async fn take_over(
        &self,
        id: &str,
        segment: u32,
        generation: u32,
        stale_before_ms: u64,
        now_ms: u64,
    ) -> Result<bool, StoreError>;
    /// Adds `flush` to the record as `generation`'s flush number `flush.seq`. `false` when the
    /// segment is no longer this generation's. A flush already applied (its answer was lost)
    /// is `true` and not counted twice.
    async fn flush(
        &self,
        id: &str,
        segment: u32,
        generation: u32,
        flush: &Flush,
    ) -> Result<bool, StoreError>;
    /// Marks a segment that never started as failed (its worker could not be invoked).
    async fn fail_unstarted(&self, id: &str, segment: u32, error: &str)
        -> Result<bool, StoreError>;
    async fn get(&self, id: &str) -> Result<Option<BroadcastStatus>, StoreError>;
}

/// The undelivered ids a record keeps: the first [`MAX_UNDELIVERED_PER_SEGMENT`].
pub fn sample(undelivered: &[String]) -> Vec<String> {
    undelivered
        .iter()
        .take(MAX_UNDELIVERED_PER_SEGMENT)
        .cloned()
        .collect()
}

/// Keeps at most `max` characters of an error.
pub fn clip(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

struct MemoryRecord {
    status: BroadcastStatus,
    /// The last flush number applied, per segment.
    flushes: Vec<u32>,
}

/// Records in memory, with the same conditions as the DynamoDB table.
#[derive(Default)]
pub struct MemoryBroadcastLog {
    records: Mutex<HashMap<String, MemoryRecord>>,
}

impl MemoryBroadcastLog {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, MemoryRecord>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `change` on record `id` for its segment `segment` (an index that exists), and
    /// answers what it answers; `false` when there is no such record or segment.
    fn with_segment(
        &self,
        id: &str,
        segment: u32,
        change: impl FnOnce(&mut MemoryRecord, usize) -> bool,
    ) -> bool {
        match self.lock().get_mut(id) {
            Some(record) if (segment as usize) < record.status.segment.len() => {
                change(record, segment as usize)
            }
            _ => false,
        }
    }
}

#[async_trait]
impl BroadcastLog for MemoryBroadcastLog {
    async fn start(&self, start: &Start) -> Result<bool, StoreError> {
        let mut records = self.lock();
        if records.contains_key(&start.id) {
            return Ok(false);
        }
        let segment = (0..start.segments)
            .map(|index| SegmentStatus {
                index,
                ..Default::default()
            })
            .collect();
        records.insert(
            start.id.clone(),
            MemoryRecord {
                status: BroadcastStatus {
                    broadcast_id: start.id.clone(),
                    started_ms: start.started_ms,
                    topic: start.topic.clone(),
                    message_bytes: start.message_bytes,
                    segments: start.segments,
                    segment,
                    ..Default::default()
                },
                flushes: vec![0; start.segments as usize],
            },
        );
        Ok(true)
    }

    async fn claim(
        &self,
        id: &str,
        segment: u32,
        generation: u32,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        Ok(self.with_segment(id, segment, |record, i| {
            let s = &mut record.status.segment[i];
            if s.generation + 1 != generation || s.done || s.failed.is_some() {
                return false;
            }
            s.generation = generation;
            s.beat_ms = now_ms;
            record.flushes[i] = 0;
            if generation > 1 {
                record.status.handovers += 1;
            }
            true
        }))
    }

    async fn take_over(
        &self,
        id: &str,
        segment: u32,
        generation: u32,
        stale_before_ms: u64,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        Ok(self.with_segment(id, segment, |record, i| {
            let s = &mut record.status.segment[i];
            if s.generation != generation
                || s.beat_ms >= stale_before_ms
                || s.done
                || s.failed.is_some()
            {
                return false;
            }
            s.generation = generation + 1;
            s.beat_ms = now_ms;
            record.flushes[i] = 0;
            record.status.takeovers += 1;
            true
        }))
    }

    async fn flush(
        &self,
        id: &str,
        segment: u32,
        generation: u32,
        flush: &Flush,
    ) -> Result<bool, StoreError> {
        Ok(self.with_segment(id, segment, |record, i| {
            let s = &mut record.status.segment[i];
            if s.generation != generation {
                return false;
            }
            if record.flushes[i] >= flush.seq {
                return true;
            }
            if record.flushes[i] + 1 != flush.seq {
                return false;
            }
            record.flushes[i] = flush.seq;
            s.beat_ms = flush.beat_ms;
            s.cursor = flush.cursor.clone();
            record.status.totals.add(&flush.delta);
            match &flush.end {
                None | Some(End::HandedOver) => {}
                Some(End::Done { undelivered, error }) => {
                    s.done = true;
                    s.error = error.as_deref().map(clip);
                    s.undelivered = sample(undelivered);
                    record.status.segments_done += 1;
                }
                Some(End::Failed { error, undelivered }) => {
                    s.failed = Some(clip(error));
                    s.undelivered = sample(undelivered);
                    record.status.segments_failed += 1;
                }
            }
            true
        }))
    }

    async fn fail_unstarted(
        &self,
        id: &str,
        segment: u32,
        error: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.with_segment(id, segment, |record, i| {
            let s = &mut record.status.segment[i];
            if s.generation != 0 || s.failed.is_some() {
                return false;
            }
            s.failed = Some(clip(error));
            record.status.segments_failed += 1;
            true
        }))
    }

    async fn get(&self, id: &str) -> Result<Option<BroadcastStatus>, StoreError> {
        Ok(self.lock().get(id).map(|r| r.status.clone()))
    }
}
