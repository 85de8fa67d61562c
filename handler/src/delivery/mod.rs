//! What goes out: a message encoded once, then delivered by the [`posting`] to one connection
//! or to every connection a filter selects, paced by [`pacing`].

pub mod pacing;
pub mod posting;

use std::time::{Duration, Instant};

use serde_json::Value;

pub use posting::{deliver_part, PartOutcome, Run, Snapshot, Source, PREFETCH_BELOW};

use crate::delivered::DeliveryReport;
use crate::error::HandlerError;
use crate::push::Pusher;
use crate::settings::MAX_MESSAGE_BYTES;
use crate::store::ConnectionStore;
use crate::store::Rows;

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
/// row); borrowed from the [`crate::events::Handler`] for one send or broadcast.
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

impl<S: ?Sized, P: ?Sized> Clone for Deliverer<'_, S, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: ?Sized, P: ?Sized> Copy for Deliverer<'_, S, P> {}

impl<S: ?Sized, P: ?Sized> Deliverer<'_, S, P> {
    /// The same deliverer, answering by `deadline` instead.
    pub fn until(&self, deadline: Instant) -> Self {
        Deliverer { deadline, ..*self }
    }
}

impl<'a, S, P> Deliverer<'a, S, P>
where
    S: ConnectionStore + ?Sized,
    P: Pusher + ?Sized,
{
    /// How a delivery of `data` runs: the engine's defaults, this deliverer's bounds.
    pub fn run<'p>(&self, endpoint: &'p str, data: &'p [u8]) -> Run<'p> {
        Run {
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
        match posting::deliver(self.store, self.pusher, &self.run(endpoint, data), source).await {
            Ok(report) => report,
            Err(HandlerError::BroadcastIncomplete { report, .. }) => *report,
            // Only reading the table can fail, and a send reads none; counted all the same.
            Err(e) => {
                let mut report = DeliveryReport::default();
                report.note_error(crate::chain::error_chain(&e));
                report.note_undelivered(connection_id.to_owned());
                report
            }
        }
    }

    /// Delivers `message` to the connections `rows` names; see [`posting`].
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
        posting::deliver(self.store, self.pusher, &self.run(endpoint, &data), source).await
    }
}
