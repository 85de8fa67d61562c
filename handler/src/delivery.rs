//! What goes out: a message encoded once, posted to one connection or to every connection a
//! filter selects (the broadcast loop), and each post's outcome counted into the report.

use futures::StreamExt;
use serde_json::Value;

use crate::error::{error_chain, HandlerError};
use crate::report::DeliveryReport;
use crate::{ConnectionStore, Filter, PushError, Pusher, MAX_MESSAGE_BYTES};

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
    /// Posts in flight at once during a broadcast.
    pub concurrency: usize,
}

impl<S, P> Deliverer<'_, S, P>
where
    S: ConnectionStore + ?Sized,
    P: Pusher + ?Sized,
{
    /// Posts `data` to one connection and counts the outcome.
    pub async fn send(&self, endpoint: &str, connection_id: &str, data: &[u8]) -> DeliveryReport {
        let mut report = DeliveryReport::default();
        let outcome = self
            .post_one(endpoint, connection_id.to_owned(), data)
            .await;
        tally(&mut report, outcome);
        report
    }

    async fn post_one(&self, endpoint: &str, connection_id: String, data: &[u8]) -> Delivery {
        let connection_id = connection_id.as_str();
        match self.pusher.post(endpoint, connection_id, data).await {
            Ok(()) => Delivery::Delivered,
            Err(PushError::Gone(_)) => match self.store.delete(connection_id).await {
                Ok(()) => Delivery::Gone(None),
                Err(e) => Delivery::Gone(Some(format!(
                    "deleting stale connection {connection_id}: {}",
                    error_chain(&e)
                ))),
            },
            Err(e) => Delivery::Failed(error_chain(&e)),
        }
    }

    /// Delivers `message` to the connections `filter` selects: reads every page of the
    /// store, keeps up to `concurrency` posts in flight (fetching the next page while they
    /// run), deletes the rows of connections that are gone, and counts other failures without
    /// stopping.
    pub async fn deliver_to(
        &self,
        endpoint: &str,
        message: &Value,
        filter: Filter<'_>,
    ) -> Result<DeliveryReport, HandlerError> {
        use futures::stream::FuturesUnordered;
        let data = encode_message(message)?;
        let limit = self.concurrency.max(1);
        let mut report = DeliveryReport::default();
        let mut queue: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let mut in_flight = FuturesUnordered::new();
        let mut next_page = Some(self.store.scan_ids(filter, None));
        loop {
            while in_flight.len() < limit {
                match queue.pop_front() {
                    Some(id) => in_flight.push(self.post_one(endpoint, id, &data)),
                    None => break,
                }
            }
            if in_flight.is_empty() && queue.is_empty() && next_page.is_none() {
                return Ok(report);
            }
            let want_page = next_page.is_some() && queue.len() < limit;
            tokio::select! {
                Some(outcome) = in_flight.next(), if !in_flight.is_empty() => {
                    tally(&mut report, outcome);
                    // A post to an in-process outlet is ready at once, so without this the
                    // loop would keep its worker thread for the whole broadcast: the tasks
                    // that write the frames out (`wsctl dev`'s lanes), woken on this thread,
                    // would wait for it to end. Yields every so often (tokio's task budget).
                    tokio::task::coop::consume_budget().await;
                }
                page = async { next_page.as_mut().expect("guarded").await }, if want_page => {
                    next_page = None;
                    match page {
                        Ok(page) => {
                            queue.extend(page.items);
                            if let Some(cursor) = page.next {
                                next_page = Some(self.store.scan_ids(filter, Some(cursor)));
                            }
                        }
                        Err(source) => {
                            // Let the posts already in flight finish so the report is exact.
                            while let Some(outcome) = in_flight.next().await {
                                tally(&mut report, outcome);
                            }
                            return Err(HandlerError::BroadcastIncomplete { report, source });
                        }
                    }
                }
            }
        }
    }
}

enum Delivery {
    Delivered,
    Gone(Option<String>),
    Failed(String),
}

fn tally(report: &mut DeliveryReport, outcome: Delivery) {
    match outcome {
        Delivery::Delivered => report.delivered += 1,
        Delivery::Gone(None) => report.gone += 1,
        Delivery::Gone(Some(problem)) => {
            report.gone += 1;
            report.note_error(problem);
        }
        Delivery::Failed(problem) => {
            report.failed += 1;
            report.note_error(problem);
        }
    }
}
