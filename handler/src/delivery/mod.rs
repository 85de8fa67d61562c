//! What goes out: a message encoded once, then delivered by the [`engine`] to one connection
//! or to every connection a filter selects, paced by [`pacing`].

pub mod engine;
pub mod pacing;

use std::time::{Duration, Instant};

use serde_json::Value;

pub use engine::{deliver_part, PartOutcome, Plan, Snapshot, Source, PREFETCH_BELOW};

use crate::error::HandlerError;
use crate::report::DeliveryReport;
use crate::store::Rows;
use crate::{ConnectionStore, Pusher, MAX_MESSAGE_BYTES};

/// Serializes a message for posting, refusing one over API Gateway's limit.
pub fn encode_message(message: &Value) -> Result<Vec<u8>, HandlerError> {
    let data =
        serde_json::to_vec(message).map_err(|e| HandlerError::BadInvocation(e.to_string()))?;
    if data.len() > MAX_MESSAGE_BYTES {
        return Err(HandlerError::MessageTooLarge {
            size: data.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    Ok(data)
}

/// Posts through a pusher and keeps the store in step (a connection that is gone loses its
/// row); borrowed from the [`crate::Handler`] for one send or broadcast.
pub struct Deliverer<'a, S: ?Sized, P: ?Sized> {
    pub store: &'a S,
    pub pusher: &'a P,
    /// Upper bound of posts in flight during a broadcast.
    pub concurrency: usize,
    /// Hard timeout of one post.
    pub attempt_timeout: Duration,
    /// When the invocation must have answered.
    pub deadline: Instant,
}

impl<'a, S, P> Deliverer<'a, S, P>
where
    S: ConnectionStore + ?Sized,
    P: Pusher + ?Sized,
{
    /// How a delivery of `data` runs: the engine's defaults, this deliverer's bounds.
    pub fn plan<'p>(&self, endpoint: &'p str, data: &'p [u8]) -> Plan<'p> {
        Plan {
            endpoint,
            data,
            deadline: self.deadline,
            max_in_flight: self.concurrency,
            attempt_timeout: self.attempt_timeout,
            prefetch_below: PREFETCH_BELOW,
            page_limit: None,
            progress: None,
        }
    }

    /// Posts `data` to one connection (retried as a broadcast's posts are) and counts the
    /// outcome.
    pub async fn send(&self, endpoint: &str, connection_id: &str, data: &[u8]) -> DeliveryReport {
        let source = Source::Ids(vec![connection_id.to_owned()]);
        match engine::deliver(self.store, self.pusher, &self.plan(endpoint, data), source).await {
            Ok(report) => report,
            Err(HandlerError::BroadcastIncomplete { report, .. }) => *report,
            // Only reading the table can fail, and a send reads none; counted all the same.
            Err(e) => {
                let mut report = DeliveryReport::default();
                report.note_error(crate::error_chain(&e));
                report.note_undelivered(connection_id.to_owned());
                report
            }
        }
    }

    /// Delivers `message` to the connections `rows` names; see [`engine`].
    pub async fn deliver_to(
        &self,
        endpoint: &str,
        message: &Value,
        rows: Rows<'a>,
    ) -> Result<DeliveryReport, HandlerError> {
        let data = encode_message(message)?;
        let source = Source::Scan {
            rows,
            after: None,
            queued: Vec::new(),
        };
        engine::deliver(self.store, self.pusher, &self.plan(endpoint, &data), source).await
    }
}
