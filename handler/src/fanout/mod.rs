//! Fan-out: one broadcast across many invocations of the function.
//!
//! The invocation that receives a broadcast is its *coordinator*. It gives the broadcast an id
//! and a status record ([`log`]), then sizes it:
//! - at most [`INLINE_MAX`] connections or subscribers (read in one probe page) are delivered
//!   by the coordinator itself, as the one part of one segment, and its report is the answer;
//! - a larger table is split into parallel-scan segments, one per row-count share of
//!   [`SEGMENT_ROWS`], at least 2 and at most the function's `BROADCAST_WORKERS`; a larger
//!   topic into groups of its [`TOPIC_SHARDS`] shards, one per worker up to that bound; the
//!   coordinator invokes the function once per segment (`InvocationType=Event`) and answers
//!   with the id at once.
//!
//! Each *part* (a segment's worker, or the coordinator's own delivery) claims its generation
//! in the record, delivers with the delivery engine, and flushes its totals to the record
//! every [`FLUSH_EVERY`]. When the invocation's deadline nears ([`HANDOVER_MARGIN`]), it stops
//! posting, flushes, and hands the rest (the scan cursor and the ids it read but did not
//! post) to a fresh invocation of itself: generation + 1. Claims and numbered flushes make a
//! repeated or duplicated invocation harmless: an id is posted by one generation only.

#[cfg(feature = "aws")]
mod dynamo;
pub mod invoker;
#[cfg(feature = "aws")]
mod lambda;
pub mod log;
mod part;

#[cfg(feature = "aws")]
pub use dynamo::DynamoBroadcastLog;
#[cfg(feature = "aws")]
pub use lambda::LambdaInvoker;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

pub use invoker::{InvokeError, Invoker};
pub use log::{
    BroadcastLog, BroadcastStatus, End, Flush, MemoryBroadcastLog, SegmentStatus, Start, Totals,
};

use crate::delivered::DeliveryReport;
use crate::delivery::{encode_message, Deliverer};
use crate::error::HandlerError;
use crate::invocation::{Invocation, Part};
use crate::push::Pusher;
use crate::settings::MAX_WORKERS;
use crate::store::ConnectionStore;
use crate::store::{Rows, Segment, TOPIC_SHARDS, WHOLE};

/// A table with at most this many rows (one probe page) is broadcast by the invocation that
/// receives the broadcast: no fan-out, no extra latency.
pub const INLINE_MAX: u32 = 2_000;
/// Rows per worker when sizing a fan-out (up to the worker bound): about a second and a half
/// of posting for one 256 MB invocation (0.145 vCPU at about 35 µs of CPU per post on a full
/// core: about 4,000 posts/s), so a table is spread over workers long before one would cap it.
pub const SEGMENT_ROWS: u64 = 5_000;
/// Rows a worker reads per page, and reads ahead below: few ids are in hand at a hand-over,
/// so they fit in the next invocation's payload.
pub const WORKER_PAGE: u32 = 1_000;
/// Totals reach the status record this often during a part.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// A part stops posting this long before its invocation's deadline, to flush and hand over.
pub const HANDOVER_MARGIN: Duration = Duration::from_secs(3);
/// A segment whose worker has not written to the record for this long has stopped (a live
/// one writes every [`FLUSH_EVERY`]): Lambda's retry of that worker's invocation (a minute or
/// more later) takes the segment over.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// Status records live this long (DynamoDB TTL).
pub const RECORD_SECONDS: i64 = 7 * 24 * 60 * 60;
/// Tries to queue one invocation (a throttled or failed Invoke is tried again).
const INVOKE_ATTEMPTS: u32 = 4;
/// Segments' invocations queued at a time by the coordinator.
const INVOKE_PARALLEL: usize = 16;

/// What a handler needs to fan out: a way to invoke itself, and the status records.
pub struct FanOut {
    pub invoker: Arc<dyn Invoker>,
    pub log: Arc<dyn BroadcastLog>,
    /// Upper bound of workers per broadcast.
    pub workers: u32,
    /// A part stops posting this long before its invocation's deadline ([`HANDOVER_MARGIN`]).
    pub handover_margin: Duration,
    /// When a segment's worker counts as stopped ([`STALE_AFTER`]).
    pub stale_after: Duration,
}

impl FanOut {
    pub fn new(invoker: Arc<dyn Invoker>, log: Arc<dyn BroadcastLog>, workers: u32) -> Self {
        FanOut {
            invoker,
            log,
            workers,
            handover_margin: HANDOVER_MARGIN,
            stale_after: STALE_AFTER,
        }
    }

    pub fn with_stale_after(mut self, after: Duration) -> Self {
        self.stale_after = after;
        self
    }

    pub fn with_handover_margin(mut self, margin: Duration) -> Self {
        self.handover_margin = margin;
        self
    }
}

/// The rows a part reads: its segment of the table, or of the topic's shards.
fn rows(part: &Part) -> Rows<'_> {
    let segment = Segment {
        index: part.segment,
        total: part.segments.max(1),
    };
    match &part.topic {
        Some(topic) => Rows::Topic(topic, segment),
        None => Rows::Segment(segment),
    }
}

/// The payload of the invocation that runs `part`.
fn payload(part: &Part) -> Value {
    Invocation::Part(Box::new(part.clone())).payload()
}

/// How many segments a table of about `rows` rows gets: one per [`SEGMENT_ROWS`], at least 2
/// (it is over [`INLINE_MAX`]), at most `workers`.
pub fn segments_for(rows: u64, workers: u32) -> u32 {
    let wanted = rows.div_ceil(SEGMENT_ROWS).max(2);
    wanted.min(u64::from(workers.clamp(1, MAX_WORKERS))) as u32
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The report of a broadcast whose record already exists (a repeated coordinator).
pub fn report_of(status: &BroadcastStatus) -> DeliveryReport {
    DeliveryReport {
        delivered: status.totals.delivered,
        gone: status.totals.gone,
        failed: status.totals.failed,
        throttled: status.totals.throttled,
        retried: status.totals.retried,
        complete: status.complete(),
        broadcast_id: Some(status.broadcast_id.clone()),
        segments: (status.segments > 1).then_some(status.segments),
        ..Default::default()
    }
}

/// Queues one invocation, trying again after a throttle or failure.
async fn invoke_with_retries(invoker: &dyn Invoker, payload: &Value) -> Result<(), InvokeError> {
    crate::retry::retry(
        INVOKE_ATTEMPTS,
        |e: &InvokeError| e.retryable,
        || invoker.invoke_event(payload),
    )
    .await
}

impl FanOut {
    /// Starts broadcast `id` as its coordinator: delivered here, by `deliverer`'s deadline,
    /// when it is small, otherwise split over workers (see the module's documentation).
    pub async fn start<S, P>(
        &self,
        deliverer: &Deliverer<'_, S, P>,
        endpoint: &str,
        message: &Value,
        topic: Option<&str>,
        id: String,
    ) -> Result<DeliveryReport, HandlerError>
    where
        S: ConnectionStore + ?Sized,
        P: Pusher + ?Sized,
    {
        let fan = self;
        let data = encode_message(message)?;
        // One page of at most INLINE_MAX ids says whether the broadcast is small.
        let everyone = match topic {
            Some(t) => Rows::Topic(t, WHOLE),
            None => Rows::Segment(WHOLE),
        };
        let probe = deliverer
            .store
            .ids(everyone, None, Some(INLINE_MAX))
            .await?;
        let (segments, inline) = match (probe.next, topic) {
            (None, _) => (1, Some(probe.items)),
            // A large topic: its shards split over the workers.
            (Some(_), Some(_)) => (TOPIC_SHARDS.min(fan.workers.clamp(1, MAX_WORKERS)), None),
            (Some(_), None) => {
                let rows = deliverer.store.approximate_count().await?.unwrap_or(0);
                (segments_for(rows, fan.workers), None)
            }
        };
        let started_ms = now_ms();
        let start = Start {
            id: id.clone(),
            segments,
            topic: topic.map(str::to_owned),
            message_bytes: data.len() as u64,
            started_ms,
            expires: (started_ms / 1000) as i64 + RECORD_SECONDS,
        };
        if !fan.log.start(&start).await? {
            // A repeated invocation of a broadcast already under way: its record answers.
            return Ok(match fan.log.get(&id).await? {
                Some(status) => report_of(&status),
                None => DeliveryReport {
                    broadcast_id: Some(id),
                    complete: false,
                    ..Default::default()
                },
            });
        }
        let part = |segment: u32| Part {
            broadcast_id: id.clone(),
            segment,
            segments,
            generation: 1,
            topic: topic.map(str::to_owned),
            endpoint: endpoint.to_owned(),
            read: true,
            after: None,
            ids: Vec::new(),
            message: message.clone(),
        };
        // A small one is delivered here, within this invocation: its caller waits for the
        // report. A large one goes to workers (even one), which can hand over.
        if let Some(ids) = inline {
            let small = Part {
                read: false,
                ids,
                ..part(0)
            };
            let mut report = self.run_part(deliverer, small, false).await?;
            report.broadcast_id = Some(id);
            return Ok(report);
        }
        let queued: Vec<(u32, Result<(), InvokeError>)> = futures::stream::iter(0..segments)
            .map(|segment| {
                let payload = payload(&part(segment));
                let invoker = fan.invoker.clone();
                async move { (segment, invoke_with_retries(&*invoker, &payload).await) }
            })
            .buffer_unordered(INVOKE_PARALLEL)
            .collect()
            .await;
        let mut report = DeliveryReport {
            broadcast_id: Some(id.clone()),
            segments: Some(segments),
            complete: false,
            ..Default::default()
        };
        for (segment, result) in queued {
            if let Err(e) = result {
                let error = format!("could not invoke the worker of segment {segment}: {e}");
                tracing::error!(broadcast_id = %id, segment, error = %error, "fan-out");
                report.note_error(error.clone());
                fan.log.fail_unstarted(&id, segment, &error).await?;
            }
        }
        tracing::info!(broadcast_id = %id, segments, "fanned out");
        Ok(report)
    }

    /// The status record of broadcast `id`.
    pub async fn status(&self, id: &str) -> Result<BroadcastStatus, HandlerError> {
        self.log
            .get(id)
            .await?
            .ok_or_else(|| HandlerError::NoSuchBroadcast(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_the_rows_within_the_bound() {
        assert_eq!(segments_for(0, 10), 2);
        assert_eq!(segments_for(10_000, 10), 2);
        assert_eq!(segments_for(18_000, 10), 4);
        assert_eq!(segments_for(30_000, 10), 6);
        assert_eq!(segments_for(1_000_000, 10), 10);
        assert_eq!(segments_for(1_000_000, 1), 1);
        assert_eq!(segments_for(100_000_000, 1_000), MAX_WORKERS);
    }
}
