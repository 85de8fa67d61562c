//! The delivery engine: posts one message to every id a [`Source`] yields, and loses none of
//! them to a throttle.
//!
//! - Retries are the engine's own: a throttled (429), 5xx, timed-out or lost post is tried
//!   again after a full-jitter backoff, until it is delivered or the invocation's deadline
//!   (minus a margin to answer in) comes. 410 Gone deletes the row; 403, 413 and other 4xx are
//!   not retried. Each attempt has a hard timeout. Delivery is at-least-once: a post whose
//!   answer was lost may have reached its client and is sent again.
//! - Posts in flight follow an AIMD window ([`super::pacing`]) bounded by the configured
//!   concurrency, so the send rate settles at the account's throttle.
//! - Table pages are read ahead: the next page is requested as soon as the previous one
//!   arrives (while fewer than [`PREFETCH_BELOW`] ids are unsettled), so posting never waits
//!   for one, and a throttle or an outage never piles up more than that in memory.
//! - What was not delivered by the deadline is reported by id, with the scan cursor to resume
//!   from, so the caller (or a fresh invocation) can finish the job.
//!
//! A worker that delivers one part of a table (a parallel-scan segment, or the ids another
//! invocation handed over) runs this same engine with another [`Source`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt;

use super::pacing::Pacer;
use crate::chain::error_chain;
use crate::delivered::DeliveryReport;
use crate::error::HandlerError;
use crate::push::{PushError, Pusher};
use crate::store::{ConnectionStore, IdPage};
use crate::store::{Rows, StoreError};

/// Ids read ahead of posting at most (a DynamoDB page of ids holds up to about 25,000).
pub const PREFETCH_BELOW: usize = 10_000;
/// The margin kept before the deadline to answer in, at most (a tenth of the time left when
/// that is shorter).
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(1);
/// Backoff of a retried post: full jitter over `BACKOFF_BASE * 2^(attempt-1)`, capped.
pub const BACKOFF_BASE: Duration = Duration::from_millis(25);
pub const BACKOFF_CAP: Duration = Duration::from_secs(2);
/// A table read that fails is retried this many times before the delivery stops reading.
const PAGE_ATTEMPTS: u32 = 5;

/// Where the ids come from.
#[derive(Clone, Debug)]
pub enum Source<'f> {
    /// The ids `rows` names (a scan, a scan segment, a topic's subscribers), from the start or
    /// after a cursor.
    Scan {
        rows: Rows<'f>,
        after: Option<String>,
        /// Ids to post before the first page (handed over with the cursor).
        queued: Vec<String>,
    },
    /// These ids (a single send, or ids handed over by another invocation).
    Ids(Vec<String>),
}

/// How one delivery runs.
#[derive(Clone, Copy, Debug)]
pub struct Run<'a> {
    /// The management endpoint (`https://{domain}/{stage}`).
    pub endpoint: &'a str,
    /// The encoded message.
    pub data: &'a [u8],
    /// When the invocation must have answered (from the Lambda context).
    pub deadline: Instant,
    /// Upper bound of posts in flight.
    pub max_in_flight: usize,
    /// Hard timeout of one attempt.
    pub attempt_timeout: Duration,
    /// The next page is read while fewer ids than this wait to be posted.
    pub prefetch_below: usize,
    /// Rows examined per page read (the store's page size when `None`).
    pub page_limit: Option<u32>,
    /// Where the running totals are published, about every [`PROGRESS_EVERY`].
    pub progress: Option<&'a tokio::sync::watch::Sender<Snapshot>>,
}

/// Running totals are published this often at most.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A delivery's totals so far, and where reading the table stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub delivered: u64,
    pub gone: u64,
    pub failed: u64,
    pub throttled: u64,
    pub retried: u64,
    /// The cursor of the next page to read (`None` before the first page and at the end).
    pub cursor: Option<String>,
}

/// What a delivery that may be continued elsewhere came to: its report, and the ids it read
/// but did not get to by the deadline (not counted as failed: the caller hands them on).
#[derive(Debug)]
pub struct PartOutcome {
    pub report: DeliveryReport,
    pub leftover: Vec<String>,
    /// Reading the table failed for good (the report says how far it got).
    pub read_error: Option<StoreError>,
    /// The last error of a left-over id that had failed at least once.
    pub last_error: Option<String>,
}

impl Run<'_> {
    /// When the engine stops starting attempts: the deadline less the margin.
    pub fn stop_at(&self, now: Instant) -> Instant {
        let left = self.deadline.saturating_duration_since(now);
        now + left.saturating_sub(DEADLINE_MARGIN.min(left / 10))
    }
}

/// The full-jitter backoff before attempt `attempt + 1` (AWS's "exponential backoff and
/// jitter"): uniform in `[0, min(cap, base * 2^(attempt-1))]`.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    Duration::from_micros(fastrand::u64(0..=ceiling.as_micros() as u64))
}

struct Pending {
    id: String,
    attempts: u32,
    last_error: Option<String>,
}

/// A retry waiting for its time, earliest first.
struct Due {
    at: Instant,
    seq: u64,
    pending: Pending,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered { rtt: Duration },
    Gone { problem: Option<String> },
    Retry { throttled: bool, problem: String },
    Refused { problem: String },
}

type PageFuture<'a> = Pin<Box<dyn Future<Output = Result<IdPage, StoreError>> + Send + 'a>>;

/// Where reading the table stands.
enum Reading<'a> {
    /// A page is to be read, after this cursor (`None`: from the start).
    Next(Option<String>),
    /// The page after `cursor` is being read.
    InFlight {
        cursor: Option<String>,
        page: PageFuture<'a>,
    },
    /// Read to the end, or nothing to read.
    Done,
}

/// Delivers `run.data` to every id of `source`; see the module's documentation. What was
/// not delivered by the deadline is counted as failed.
pub async fn deliver<'a, S, P>(
    store: &'a S,
    pusher: &P,
    run: &Run<'_>,
    source: Source<'a>,
) -> Result<DeliveryReport, HandlerError>
where
    S: ConnectionStore + ?Sized,
    P: Pusher + ?Sized,
{
    let mut part = deliver_part(store, pusher, run, source).await;
    let mut noted = false;
    for id in std::mem::take(&mut part.leftover) {
        if !noted {
            if let Some(e) = part.last_error.take() {
                part.report
                    .note_error(format!("still failing at the deadline: {e}"));
                noted = true;
            }
        }
        part.report.note_undelivered(id);
    }
    match part.read_error {
        Some(source) => Err(HandlerError::BroadcastIncomplete {
            report: Box::new(part.report),
            source,
        }),
        None => Ok(part.report),
    }
}

/// Delivers as [`deliver`] does, but returns the ids left at the deadline instead of counting
/// them as failed, so that another invocation can carry on from them and the report's cursor.
pub async fn deliver_part<'a, S, P>(
    store: &'a S,
    pusher: &P,
    run: &Run<'_>,
    source: Source<'a>,
) -> PartOutcome
where
    S: ConnectionStore + ?Sized,
    P: Pusher + ?Sized,
{
    let started = Instant::now();
    let stop_at = run.stop_at(started);
    let max = run.max_in_flight.max(1);
    let mut report = DeliveryReport::default();
    let mut pacer = Pacer::new(max);
    let mut ready: VecDeque<Pending> = VecDeque::new();
    let mut later: BinaryHeap<Reverse<Due>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut in_flight = FuturesUnordered::new();
    let (rows, mut reading): (Rows<'a>, Reading<'a>) = match source {
        Source::Scan {
            rows,
            after,
            queued,
        } => {
            ready.extend(queued.into_iter().map(|id| Pending {
                id,
                attempts: 0,
                last_error: None,
            }));
            (rows, Reading::Next(after))
        }
        Source::Ids(ids) => {
            ready.extend(ids.into_iter().map(|id| Pending {
                id,
                attempts: 0,
                last_error: None,
            }));
            (Rows::Scan(crate::store::Filter::All), Reading::Done)
        }
    };
    let mut published = started;
    let publish = |report: &DeliveryReport, reading: &Reading<'_>| {
        if let Some(tx) = run.progress {
            let cursor = match reading {
                Reading::Next(c) | Reading::InFlight { cursor: c, .. } => c.clone(),
                Reading::Done => None,
            };
            tx.send_replace(Snapshot {
                delivered: report.delivered,
                gone: report.gone,
                failed: report.failed,
                throttled: report.throttled,
                retried: report.retried,
                cursor,
            });
        }
    };
    let mut page_failures = 0u32;
    let mut page_retry_at: Option<Instant> = None;
    let mut read_error: Option<StoreError> = None;

    loop {
        let now = Instant::now();
        while later.peek().is_some_and(|d| d.0.at <= now) {
            let Reverse(due) = later.pop().expect("peeked");
            ready.push_front(due.pending);
        }
        let stopping = now >= stop_at;
        if !stopping {
            let window = pacer.window().min(max);
            while in_flight.len() < window {
                let Some(pending) = ready.pop_front() else {
                    break;
                };
                let timeout = run.attempt_timeout.min(stop_at - now);
                in_flight.push(attempt(store, pusher, run, pending, timeout));
            }
            let page_due = read_error.is_none() && page_retry_at.is_none_or(|at| at <= now);
            if let Reading::Next(cursor) = &reading {
                // Read ahead while fewer than prefetch_below ids are unsettled (waiting, in
                // flight or backing off): a throttle or an outage cannot pile up the table.
                let unsettled = ready.len() + later.len() + in_flight.len();
                if page_due && unsettled < run.prefetch_below {
                    let cursor = cursor.clone();
                    let page = Box::pin(store.ids(rows, cursor.clone(), run.page_limit));
                    reading = Reading::InFlight { cursor, page };
                }
            }
        } else if let Reading::InFlight { cursor, .. } = reading {
            // Not waiting for a page that could no longer be sent to.
            reading = Reading::Next(cursor);
        }
        let idle =
            ready.is_empty() && later.is_empty() && !matches!(reading, Reading::InFlight { .. });
        let nothing_to_read = matches!(reading, Reading::Done) || read_error.is_some();
        if in_flight.is_empty() && (stopping || (idle && nothing_to_read)) {
            break;
        }
        let mut wake = stop_at;
        if let Some(d) = later.peek() {
            wake = wake.min(d.0.at);
        }
        if let (Some(at), Reading::Next(_)) = (page_retry_at, &reading) {
            wake = wake.min(at);
        }
        let reading_page = matches!(reading, Reading::InFlight { .. });
        if run.progress.is_some() && now.duration_since(published) >= PROGRESS_EVERY {
            published = now;
            publish(&report, &reading);
        }
        tokio::select! {
            Some((mut pending, result)) = in_flight.next(), if !in_flight.is_empty() => {
                let now = Instant::now();
                match result {
                    Attempt::Delivered { rtt } => {
                        report.delivered += 1;
                        pacer.on_success(now, rtt);
                    }
                    Attempt::Gone { problem } => {
                        report.gone += 1;
                        if let Some(problem) = problem {
                            report.note_error(problem);
                        }
                    }
                    Attempt::Refused { problem } => {
                        report.note_error(problem);
                        report.note_undelivered(pending.id);
                    }
                    Attempt::Retry { throttled, problem } => {
                        if throttled {
                            report.throttled += 1;
                        }
                        pacer.on_congestion(now);
                        report.retried += 1;
                        pending.last_error = Some(problem);
                        seq += 1;
                        later.push(Reverse(Due {
                            at: now + backoff(pending.attempts),
                            seq,
                            pending,
                        }));
                    }
                }
                // A post to an in-process outlet is ready at once, so without this the loop
                // would keep its worker thread for the whole broadcast: the tasks that write
                // the frames out (`wsctl dev`'s lanes), woken on this thread, would wait for
                // it to end. Yields every so often (tokio's task budget).
                tokio::task::coop::consume_budget().await;
            }
            page = async {
                match &mut reading {
                    Reading::InFlight { page, .. } => page.await,
                    _ => unreachable!("guarded"),
                }
            }, if reading_page => {
                let cursor = match std::mem::replace(&mut reading, Reading::Done) {
                    Reading::InFlight { cursor, .. } => cursor,
                    _ => None,
                };
                match page {
                    Ok(page) => {
                        page_failures = 0;
                        page_retry_at = None;
                        ready.extend(page.items.into_iter().map(|id| Pending {
                            id,
                            attempts: 0,
                            last_error: None,
                        }));
                        reading = match page.next {
                            Some(next) => Reading::Next(Some(next)),
                            None => Reading::Done,
                        };
                    }
                    Err(e) => {
                        page_failures += 1;
                        reading = Reading::Next(cursor);
                        if page_failures >= PAGE_ATTEMPTS {
                            read_error = Some(e);
                        } else {
                            page_retry_at = Some(Instant::now() + backoff(page_failures));
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }

    // The deadline came (or nothing is left): what was read and not delivered is left over.
    let mut leftover = Vec::with_capacity(ready.len() + later.len());
    let mut last_error = None;
    for pending in ready
        .into_iter()
        .chain(later.into_iter().map(|Reverse(d)| d.pending))
    {
        if last_error.is_none() {
            last_error = pending.last_error;
        }
        leftover.push(pending.id);
    }
    if let Reading::Next(cursor) = &reading {
        report.complete = false;
        report.resume_after = cursor.clone();
    }
    publish(&report, &reading);
    PartOutcome {
        report,
        leftover,
        read_error,
        last_error,
    }
}

/// One post, with its timeout; a Gone answer deletes the row.
async fn attempt<S, P>(
    store: &S,
    pusher: &P,
    run: &Run<'_>,
    mut pending: Pending,
    timeout: Duration,
) -> (Pending, Attempt)
where
    S: ConnectionStore + ?Sized,
    P: Pusher + ?Sized,
{
    pending.attempts += 1;
    let started = Instant::now();
    let id = pending.id.as_str();
    let posted = tokio::time::timeout(timeout, pusher.post(run.endpoint, id, run.data)).await;
    let outcome = match posted {
        Ok(Ok(())) => Attempt::Delivered {
            rtt: started.elapsed(),
        },
        Ok(Err(PushError::Gone(_))) => match store.delete(id).await {
            Ok(()) => Attempt::Gone { problem: None },
            Err(e) => Attempt::Gone {
                problem: Some(format!(
                    "deleting stale connection {id}: {}",
                    error_chain(&e)
                )),
            },
        },
        Ok(Err(e)) if e.is_retryable() => Attempt::Retry {
            throttled: matches!(e, PushError::Throttled { .. }),
            problem: error_chain(&e),
        },
        Ok(Err(e)) => Attempt::Refused {
            problem: error_chain(&e),
        },
        Err(_) => Attempt::Retry {
            throttled: false,
            problem: format!(
                "posting to connection {id} timed out after {} ms",
                timeout.as_millis()
            ),
        },
    };
    (pending, outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_under_a_growing_cap() {
        for attempt in 1..20 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(BACKOFF_CAP);
            for _ in 0..100 {
                assert!(backoff(attempt) <= ceiling);
            }
        }
        let spread: std::collections::BTreeSet<_> = (0..50).map(|_| backoff(6)).collect();
        assert!(spread.len() > 10, "jittered, not fixed: {spread:?}");
    }

    #[test]
    fn the_margin_is_kept_before_the_deadline() {
        let now = Instant::now();
        let run = |left: Duration| Run {
            endpoint: "",
            data: b"",
            deadline: now + left,
            max_in_flight: 1,
            attempt_timeout: Duration::from_secs(1),
            prefetch_below: PREFETCH_BELOW,
            page_limit: None,
            progress: None,
        };
        assert_eq!(
            run(Duration::from_secs(30)).stop_at(now),
            now + Duration::from_secs(29)
        );
        assert_eq!(
            run(Duration::from_secs(2)).stop_at(now),
            now + Duration::from_millis(1800)
        );
    }
}
