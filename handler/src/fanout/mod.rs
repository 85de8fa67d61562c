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

#[cfg(feature = "aws")]
pub use dynamo::DynamoBroadcastLog;
#[cfg(feature = "aws")]
pub use lambda::LambdaInvoker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use invoker::{InvokeError, Invoker};
pub use log::{
    BroadcastLog, BroadcastStatus, End, Flush, MemoryBroadcastLog, SegmentStatus, Start, Totals,
};

use crate::delivery::{deliver_part, encode_message, Snapshot, Source};
use crate::error::{error_chain, HandlerError};
use crate::handler::Handler;
use crate::report::DeliveryReport;
use crate::store::{Rows, Segment, StoreError, TOPIC_SHARDS, WHOLE};
use crate::{ConnectionStore, Filter, Pusher};

/// A table with at most this many rows (one probe page) is broadcast by the invocation that
/// receives the broadcast: no fan-out, no extra latency.
pub const INLINE_MAX: u32 = 2_000;
/// Rows per worker when sizing a fan-out (up to the worker bound): about a second and a half
/// of posting for one 256 MB invocation (0.145 vCPU at about 35 µs of CPU per post on a full
/// core: about 4,000 posts/s), so a table is spread over workers long before one would cap it.
pub const SEGMENT_ROWS: u64 = 5_000;
/// The default bound of workers per broadcast (`BROADCAST_WORKERS`), and the largest accepted.
pub const DEFAULT_WORKERS: u32 = 10;
pub const MAX_WORKERS: u32 = 100;
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
/// Tries of a part's final flush.
const FLUSH_ATTEMPTS: u32 = 5;

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

/// One part of a broadcast, as a worker invocation's payload carries it
/// (`{"action":"broadcast_part", ...}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub broadcast_id: String,
    pub segment: u32,
    pub segments: u32,
    pub generation: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The management endpoint the coordinator posted to.
    pub endpoint: String,
    /// Whether rows are still to be read (after `after`, or from the start).
    pub read: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Ids read by the previous generation and not yet posted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    pub message: Value,
}

impl Part {
    pub fn payload(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(o) = &mut v {
            o.insert("action".into(), Value::String("broadcast_part".into()));
        }
        v
    }

    fn rows(&self) -> Rows<'_> {
        let segment = Segment {
            index: self.segment,
            total: self.segments.max(1),
        };
        match &self.topic {
            Some(topic) => Rows::Topic(topic, segment),
            None => Rows::Segment(segment),
        }
    }
}

/// How many segments a table of about `rows` rows gets: one per [`SEGMENT_ROWS`], at least 2
/// (it is over [`INLINE_MAX`]), at most `workers`.
pub fn segments_for(rows: u64, workers: u32) -> u32 {
    let wanted = rows.div_ceil(SEGMENT_ROWS).max(2);
    wanted.min(u64::from(workers.clamp(1, MAX_WORKERS))) as u32
}

/// A new broadcast id: the UTC time, then random hex (sortable, and unique enough).
pub fn new_broadcast_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:08x}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        fastrand::u32(..)
    )
}

/// Whether `id` may name a broadcast: 1 to 64 of `A-Z a-z 0-9 - _ .`.
pub fn valid_broadcast_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn totals(report: &DeliveryReport) -> Totals {
    Totals {
        delivered: report.delivered,
        gone: report.gone,
        failed: report.failed,
        throttled: report.throttled,
        retried: report.retried,
    }
}

fn snapshot_totals(s: &Snapshot) -> Totals {
    Totals {
        delivered: s.delivered,
        gone: s.gone,
        failed: s.failed,
        throttled: s.throttled,
        retried: s.retried,
    }
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

/// Whether a part's invocation got anywhere: settled (delivered, gone or failed for good) at
/// least one connection. One that did not would hand the same work over again and again.
fn progressed(done: &DeliveryReport) -> bool {
    done.delivered + done.gone + done.failed > 0
}

/// Queues one invocation, trying again after a throttle or failure.
async fn invoke_with_retries(invoker: &dyn Invoker, payload: &Value) -> Result<(), InvokeError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match invoker.invoke_event(payload).await {
            Ok(()) => return Ok(()),
            Err(e) if e.retryable && attempt < INVOKE_ATTEMPTS => {
                tokio::time::sleep(crate::delivery::engine::backoff(attempt + 2)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

type FlushFuture = Pin<Box<dyn Future<Output = (Flush, Result<bool, StoreError>)> + Send>>;

/// A part's writes to the record: numbered, each the totals since the last one applied.
struct Flusher {
    log: Arc<dyn BroadcastLog>,
    id: String,
    segment: u32,
    generation: u32,
    seq: u32,
    flushed: Totals,
    /// Another invocation took the segment: stop.
    lost: bool,
}

impl Flusher {
    fn next(&self, now: &Totals, cursor: Option<String>, end: Option<End>) -> Flush {
        Flush {
            seq: self.seq + 1,
            delta: now.since(&self.flushed),
            beat_ms: now_ms(),
            cursor,
            end,
        }
    }

    fn send(&self, flush: Flush) -> FlushFuture {
        let log = self.log.clone();
        let (id, segment, generation) = (self.id.clone(), self.segment, self.generation);
        Box::pin(async move {
            let result = log.flush(&id, segment, generation, &flush).await;
            (flush, result)
        })
    }

    /// Takes in the answer to `flush`.
    fn applied(&mut self, flush: &Flush, result: Result<bool, StoreError>) -> Result<(), String> {
        match result {
            Ok(true) => {
                self.seq = flush.seq;
                self.flushed.add(&flush.delta);
                Ok(())
            }
            Ok(false) => {
                self.lost = true;
                Err(format!(
                    "segment {} of broadcast {} was taken over by another invocation",
                    self.segment, self.id
                ))
            }
            Err(e) => Err(format!(
                "writing the status of broadcast {}: {}",
                self.id,
                error_chain(&e)
            )),
        }
    }

    /// The last flush of a part, tried until it is applied or the segment is lost.
    async fn finish(
        &mut self,
        now: &Totals,
        cursor: Option<String>,
        end: End,
    ) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 1..=FLUSH_ATTEMPTS {
            let flush = self.next(now, cursor.clone(), Some(end.clone()));
            let (flush, result) = self.send(flush).await;
            match self.applied(&flush, result) {
                Ok(()) => return Ok(()),
                Err(e) if self.lost => return Err(e),
                Err(e) => last = e,
            }
            tokio::time::sleep(crate::delivery::engine::backoff(attempt + 2)).await;
        }
        Err(last)
    }
}

impl<S, P> Handler<S, P>
where
    S: ConnectionStore + ?Sized,
    P: Pusher + ?Sized,
{
    /// Starts a broadcast: delivered here when it is small, otherwise split over workers (see
    /// the module's documentation). Without fan-out configured, delivered here.
    pub async fn start_broadcast(
        &self,
        endpoint: &str,
        message: &Value,
        topic: Option<&str>,
        id: Option<String>,
        deadline: Instant,
    ) -> Result<DeliveryReport, HandlerError> {
        let data = encode_message(message)?;
        let id = id.unwrap_or_else(new_broadcast_id);
        let Some(fan) = self.fanout.clone() else {
            let rows = topic.map_or(Rows::Scan(Filter::All), |t| Rows::Topic(t, WHOLE));
            let mut report = self
                .deliverer(deadline)
                .deliver_to(endpoint, message, rows)
                .await?;
            report.broadcast_id = Some(id);
            return Ok(report);
        };
        // One page of at most INLINE_MAX ids says whether the broadcast is small.
        let everyone = match topic {
            Some(t) => Rows::Topic(t, WHOLE),
            None => Rows::Segment(WHOLE),
        };
        let probe = self.store.ids(everyone, None, Some(INLINE_MAX)).await?;
        let (segments, inline) = match (probe.next, topic) {
            (None, _) => (1, Some(probe.items)),
            // A large topic: its shards split over the workers.
            (Some(_), Some(_)) => (TOPIC_SHARDS.min(fan.workers.clamp(1, MAX_WORKERS)), None),
            (Some(_), None) => {
                let rows = self.store.approximate_count().await?.unwrap_or(0);
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
            let mut report = self.run_part_until(small, deadline, false).await?;
            report.broadcast_id = Some(id);
            return Ok(report);
        }
        let queued: Vec<(u32, Result<(), InvokeError>)> = futures::stream::iter(0..segments)
            .map(|segment| {
                let payload = part(segment).payload();
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

    /// Delivers one part of a broadcast (see the module's documentation), hands the rest over
    /// when the deadline nears, and reports what this invocation did.
    pub async fn run_part(
        &self,
        part: Part,
        deadline: Instant,
    ) -> Result<DeliveryReport, HandlerError> {
        self.run_part_until(part, deadline, true).await
    }

    /// [`Handler::run_part`]; without `hand_over` (a broadcast the coordinator delivers itself,
    /// whose caller waits for the report) what the deadline leaves is failed and named by id.
    async fn run_part_until(
        &self,
        part: Part,
        deadline: Instant,
        hand_over: bool,
    ) -> Result<DeliveryReport, HandlerError> {
        let fan = self.fanout.clone().ok_or_else(|| {
            HandlerError::BadInvocation(
                "this function has no broadcasts table (BROADCASTS_TABLE): it cannot run a part of a broadcast".into(),
            )
        })?;
        let id = part.broadcast_id.clone();
        let mut report = DeliveryReport {
            broadcast_id: Some(id.clone()),
            ..Default::default()
        };
        let now = now_ms();
        let stale_before = now.saturating_sub(fan.stale_after.as_millis() as u64);
        let part = if fan
            .log
            .claim(&id, part.segment, part.generation, now)
            .await?
        {
            part
        } else if fan
            .log
            .take_over(&id, part.segment, part.generation, stale_before, now)
            .await?
        {
            // Lambda's retry of a worker that stopped: this part starts again as the next
            // generation (what the stopped one posted may be posted again: at-least-once).
            tracing::warn!(broadcast_id = %id, segment = part.segment, generation = part.generation, "the segment's worker stopped answering: taken over");
            Part {
                generation: part.generation + 1,
                ..part
            }
        } else {
            tracing::info!(broadcast_id = %id, segment = part.segment, generation = part.generation, "part already taken: skipped");
            report.note_error(format!(
                "segment {} generation {} of broadcast {id} is taken: this invocation is a duplicate and posted nothing",
                part.segment, part.generation
            ));
            return Ok(report);
        };
        let data = encode_message(&part.message)?;
        let mut flusher = Flusher {
            log: fan.log.clone(),
            id: id.clone(),
            segment: part.segment,
            generation: part.generation,
            seq: 0,
            flushed: Totals::default(),
            lost: false,
        };
        // The margin to flush and hand over in; at most a fifth of a short invocation, so that
        // every generation has time to post.
        let left = deadline.saturating_duration_since(Instant::now());
        let margin = match hand_over {
            true => fan.handover_margin.min(left / 5),
            false => Duration::ZERO,
        };
        let work_until = Instant::now() + left.saturating_sub(margin);
        let deliverer = self.deliverer(work_until);
        let (tx, rx) = tokio::sync::watch::channel(Snapshot::default());
        let mut plan = deliverer.plan(&part.endpoint, &data);
        plan.prefetch_below = WORKER_PAGE as usize;
        plan.page_limit = Some(WORKER_PAGE);
        plan.progress = Some(&tx);
        let source = match part.read {
            true => Source::Scan {
                rows: part.rows(),
                after: part.after.clone(),
                queued: part.ids.clone(),
            },
            false => Source::Ids(part.ids.clone()),
        };
        let outcome = {
            let engine = deliver_part(&*self.store, &*self.pusher, &plan, source);
            tokio::pin!(engine);
            let mut ticker = tokio::time::interval(FLUSH_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            let mut pending: Option<FlushFuture> = None;
            loop {
                tokio::select! {
                    outcome = &mut engine => break Some(outcome),
                    _ = ticker.tick(), if pending.is_none() => {
                        let snapshot = rx.borrow().clone();
                        let flush = flusher.next(&snapshot_totals(&snapshot), snapshot.cursor, None);
                        pending = Some(flusher.send(flush));
                    }
                    (flush, result) = async { pending.as_mut().expect("guarded").await }, if pending.is_some() => {
                        pending = None;
                        if let Err(e) = flusher.applied(&flush, result) {
                            tracing::warn!(broadcast_id = %id, error = %e, "status flush");
                            if flusher.lost {
                                break None;
                            }
                        }
                    }
                }
            }
        };
        let Some(outcome) = outcome else {
            report.note_error(format!(
                "segment {} of broadcast {id} was taken over by another invocation: this one stopped",
                part.segment
            ));
            return Ok(report);
        };
        let crate::delivery::PartOutcome {
            report: mut done,
            leftover,
            read_error,
            last_error,
        } = outcome;
        done.broadcast_id = Some(id.clone());
        let cursor = done.resume_after.clone();
        let end = if let Some(e) = read_error {
            for left in &leftover {
                done.note_undelivered(left.clone());
            }
            let error = format!("reading the table failed: {}", error_chain(&e));
            done.note_error(error.clone());
            End::Failed {
                error,
                undelivered: done.undelivered.clone(),
            }
        } else if (!leftover.is_empty() || !done.complete) && hand_over && progressed(&done) {
            End::HandedOver
        } else if !leftover.is_empty() || !done.complete {
            // Nobody carries on: what is in hand is failed, by id, and so is what was not read.
            if let Some(e) = &last_error {
                done.note_error(format!("still failing at the deadline: {e}"));
            }
            for left in &leftover {
                done.note_undelivered(left.clone());
            }
            let unread = match &done.resume_after {
                Some(c) => format!("; rows after {c} were not read"),
                None => String::new(),
            };
            let error = match hand_over {
                true => format!("an invocation posted to no connection before its deadline: the segment is stopped rather than handed over again{unread}"),
                false => format!("the deadline came before every connection was posted to{unread}"),
            };
            if hand_over {
                done.note_error(error.clone());
                End::Failed {
                    error,
                    undelivered: done.undelivered.clone(),
                }
            } else {
                End::Done {
                    undelivered: done.undelivered.clone(),
                    error: Some(error),
                }
            }
        } else {
            End::Done {
                undelivered: done.undelivered.clone(),
                error: done.errors.first().cloned(),
            }
        };
        let handing_over = end == End::HandedOver;
        if let Err(e) = flusher.finish(&totals(&done), cursor.clone(), end).await {
            done.note_error(e);
            return Ok(done);
        }
        if !handing_over {
            return Ok(done);
        }
        let next = Part {
            generation: part.generation + 1,
            read: !done.complete,
            after: cursor.clone(),
            ids: leftover.clone(),
            ..part
        };
        match invoke_with_retries(&*fan.invoker, &next.payload()).await {
            Ok(()) => {
                tracing::info!(broadcast_id = %id, segment = next.segment, generation = next.generation, ids = leftover.len(), "handed over");
            }
            Err(e) => {
                // Nobody will carry on: the ids in hand and the rows after the cursor are failed.
                let error = format!(
                    "could not hand segment {} over to a new invocation ({e}); {} ids read were not posted{}",
                    next.segment,
                    leftover.len(),
                    match &cursor {
                        Some(c) => format!(" and rows after {c} were not read"),
                        None => String::new(),
                    }
                );
                if let Some(last) = last_error {
                    done.note_error(last);
                }
                for left in leftover {
                    done.note_undelivered(left);
                }
                done.note_error(error.clone());
                let end = End::Failed {
                    error,
                    undelivered: done.undelivered.clone(),
                };
                if let Err(e) = flusher.finish(&totals(&done), cursor, end).await {
                    done.note_error(e);
                }
            }
        }
        Ok(done)
    }

    /// The status record of broadcast `id`.
    pub async fn broadcast_status(&self, id: &str) -> Result<BroadcastStatus, HandlerError> {
        let fan = self.fanout.clone().ok_or_else(|| {
            HandlerError::BadInvocation(
                "this function keeps no broadcast records (BROADCASTS_TABLE is not set)".into(),
            )
        })?;
        fan.log
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

    #[test]
    fn ids_are_checked() {
        assert!(valid_broadcast_id(&new_broadcast_id()));
        assert!(!valid_broadcast_id(""));
        assert!(!valid_broadcast_id("a b"));
        assert!(!valid_broadcast_id(&"x".repeat(65)));
    }
}
