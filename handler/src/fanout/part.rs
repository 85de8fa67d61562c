//! One part of a broadcast: a segment's worker (or the coordinator's own delivery) claims its
//! generation in the status record, delivers with the delivery engine while a [`Flusher`]
//! writes its totals to the record every [`FLUSH_EVERY`], and hands what is left to a fresh
//! invocation of the function when its deadline nears.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::log::{BroadcastLog, End, Flush, Totals};
use super::{invoke_with_retries, now_ms, payload, rows, FanOut, FLUSH_EVERY, WORKER_PAGE};
use crate::chain::error_chain;
use crate::delivered::DeliveryReport;
use crate::delivery::{deliver_part, encode_message, Deliverer, Snapshot, Source};
use crate::error::HandlerError;
use crate::invocation::Part;
use crate::push::Pusher;
use crate::store::ConnectionStore;
use crate::store::StoreError;

/// Tries of a part's final flush.
const FLUSH_ATTEMPTS: u32 = 5;

impl FanOut {
    /// Delivers one part of a broadcast (see the module's documentation) by `deliverer`'s
    /// deadline (the invocation's), hands the rest over when the deadline nears, and reports
    /// what this invocation did. Without `hand_over` (a broadcast the coordinator delivers
    /// itself, whose caller waits for the report) what the deadline leaves is failed and named
    /// by id.
    pub async fn run_part<S, P>(
        &self,
        deliverer: &Deliverer<'_, S, P>,
        part: Part,
        hand_over: bool,
    ) -> Result<DeliveryReport, HandlerError>
    where
        S: ConnectionStore + ?Sized,
        P: Pusher + ?Sized,
    {
        let fan = self;
        let deadline = deliverer.deadline;
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
        let deliverer = deliverer.until(work_until);
        let (tx, rx) = tokio::sync::watch::channel(Snapshot::default());
        let mut run = deliverer.run(&part.endpoint, &data);
        run.prefetch_below = WORKER_PAGE as usize;
        run.page_limit = Some(WORKER_PAGE);
        run.progress = Some(&tx);
        let source = match part.read {
            true => Source::Scan {
                rows: rows(&part),
                after: part.after.clone(),
                queued: part.ids.clone(),
            },
            false => Source::Ids(part.ids.clone()),
        };
        let outcome = {
            let engine = deliver_part(deliverer.store, deliverer.pusher, &run, source);
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
            done.note_error(e.to_string());
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
        match invoke_with_retries(&*fan.invoker, &payload(&next)).await {
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
                    done.note_error(e.to_string());
                }
            }
        }
        Ok(done)
    }
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

/// Whether a part's invocation got anywhere: settled (delivered, gone or failed for good) at
/// least one connection. One that did not would hand the same work over again and again.
fn progressed(done: &DeliveryReport) -> bool {
    done.delivered + done.gone + done.failed > 0
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
    fn applied(
        &mut self,
        flush: &Flush,
        result: Result<bool, StoreError>,
    ) -> Result<(), FlushError> {
        match result {
            Ok(true) => {
                self.seq = flush.seq;
                self.flushed.add(&flush.delta);
                Ok(())
            }
            Ok(false) => {
                self.lost = true;
                Err(FlushError::TakenOver {
                    id: self.id.clone(),
                    segment: self.segment,
                })
            }
            Err(cause) => Err(FlushError::Write {
                id: self.id.clone(),
                cause,
            }),
        }
    }

    /// The last flush of a part, tried until it is applied or the segment is lost.
    async fn finish(
        &mut self,
        now: &Totals,
        cursor: Option<String>,
        end: End,
    ) -> Result<(), FlushError> {
        let flush = self.next(now, cursor, Some(end));
        let (log, id) = (self.log.clone(), self.id.clone());
        let (segment, generation) = (self.segment, self.generation);
        let result = crate::retry::retry(
            FLUSH_ATTEMPTS,
            |_: &StoreError| true,
            || log.flush(&id, segment, generation, &flush),
        )
        .await;
        self.applied(&flush, result)
    }
}

/// Why a part's flush was not applied.
#[derive(Debug, thiserror::Error)]
enum FlushError {
    /// Another invocation took the segment over: this one must stop.
    #[error("segment {segment} of broadcast {id} was taken over by another invocation")]
    TakenOver { id: String, segment: u32 },
    #[error("writing the status of broadcast {id}: {}", error_chain(.cause))]
    Write { id: String, cause: StoreError },
}
