//! What a trusted backend does to connections, whatever the topic rules say (they bind
//! clients only): put connections into a topic or take them out (`subscribe`, `unsubscribe`,
//! each telling the client with the frame it would have got for its own request), and
//! disconnect them (`close`: `DELETE @connections/{id}`, after which API Gateway runs
//! `$disconnect`). One [`MembershipReport`] says what was done.

use std::time::Instant;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::chain::error_chain;
use crate::delivery::{encode_message, Deliverer};
use crate::error::HandlerError;
use crate::invocation::{Audience, Recipient};
use crate::push::{PushError, Pusher};
use crate::retry::retry;
use crate::store::{ConnectionStore, Filter, Rows, WHOLE};

/// Tries of one `DELETE @connections/{id}` that is throttled or fails in a way that may pass.
pub const CLOSE_TRIES: u32 = 5;

/// What a `subscribe`, `unsubscribe` or `close` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipReport {
    /// `subscribe`, `unsubscribe` or `close`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Connections subscribed, unsubscribed or closed.
    pub done: u64,
    /// Connections that were not there (no row, or API Gateway answered 410 Gone).
    pub gone: u64,
    /// Connections the action failed for (see `errors`).
    pub failed: u64,
    /// The ids of the connections counted in `done`, up to [`MembershipReport::MAX_IDS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connections: Vec<String>,
    /// Connections done beyond the `connections` list.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub connections_more: u64,
    /// False when the invocation's deadline came before every connection was handled.
    #[serde(default = "yes")]
    pub complete: bool,
    /// Up to [`MembershipReport::MAX_ERRORS`] descriptions of the failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

fn yes() -> bool {
    true
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl MembershipReport {
    pub const MAX_IDS: usize = 1000;
    pub const MAX_ERRORS: usize = 20;

    fn new(action: &str, topic: Option<&str>) -> Self {
        MembershipReport {
            action: action.to_owned(),
            topic: topic.map(str::to_owned),
            complete: true,
            ..Default::default()
        }
    }

    fn note_done(&mut self, id: String) {
        self.done += 1;
        if self.connections.len() < Self::MAX_IDS {
            self.connections.push(id);
        } else {
            self.connections_more += 1;
        }
    }

    fn note_failed(&mut self, error: String) {
        self.failed += 1;
        if self.errors.len() < Self::MAX_ERRORS {
            self.errors.push(error);
        }
    }
}

/// Membership changes, borrowed from the handler for one invocation.
pub struct Membership<'a, S: ?Sized, P: ?Sized> {
    pub deliverer: Deliverer<'a, S, P>,
    pub endpoint: &'a str,
}

impl<S, P> Membership<'_, S, P>
where
    S: ConnectionStore + ?Sized,
    P: Pusher + ?Sized,
{
    /// Puts the connection, or every connection of the subject, into `topic` (`join`) or takes
    /// it out, then tells each client (`subscribed` / `unsubscribed`).
    pub async fn change(
        &self,
        join: bool,
        topic: &str,
        to: &Recipient,
    ) -> Result<MembershipReport, HandlerError> {
        let action = if join { "subscribe" } else { "unsubscribe" };
        let mut report = MembershipReport::new(action, Some(topic));
        let frame = encode_message(&json!({
            "type": if join { "subscribed" } else { "unsubscribed" },
            "data": {"topic": topic},
        }))?;
        let store = self.deliverer.store;
        let mut ids = Ids::new(match to {
            Recipient::ConnectionId(id) => Err(id.clone()),
            Recipient::User(user) => Ok(Rows::Scan(Filter::User(user))),
        });
        while let Some(page) = ids.next(store).await? {
            for id in page {
                if self.past_deadline() {
                    report.complete = false;
                    return Ok(report);
                }
                let changed = if join {
                    store.subscribe(&id, topic).await?
                } else {
                    store.unsubscribe(&id, topic).await?
                };
                if !changed {
                    report.gone += 1;
                    continue;
                }
                // The change stands whether or not the client hears of it; a client that has
                // left is counted gone (its row is deleted by the send).
                let told = self.deliverer.send(self.endpoint, &id, &frame).await;
                if told.gone > 0 {
                    report.gone += 1;
                } else {
                    if told.failed > 0 {
                        let why = told.errors.first().cloned().unwrap_or_default();
                        if report.errors.len() < MembershipReport::MAX_ERRORS {
                            report
                                .errors
                                .push(format!("{id}: {action}d, but not told: {why}"));
                        }
                    }
                    report.note_done(id);
                }
            }
        }
        Ok(report)
    }

    /// Disconnects the connections `who` names, several at a time (the broadcast's
    /// concurrency), each retried while API Gateway throttles it.
    pub async fn close(&self, who: &Audience) -> Result<MembershipReport, HandlerError> {
        let topic = match who {
            Audience::Topic(t) => Some(t.as_str()),
            _ => None,
        };
        let mut report = MembershipReport::new("close", topic);
        let store = self.deliverer.store;
        let mut ids = Ids::new(match who {
            Audience::ConnectionId(id) => Err(id.clone()),
            Audience::User(user) => Ok(Rows::Scan(Filter::User(user))),
            Audience::Topic(topic) => Ok(Rows::Topic(topic, WHOLE)),
            Audience::All(_) => Ok(Rows::Scan(Filter::All)),
        });
        while let Some(page) = ids.next(store).await? {
            if self.past_deadline() {
                report.complete = false;
                return Ok(report);
            }
            let mut closing = stream::iter(page)
                .map(|id| async move {
                    let result = retry(
                        CLOSE_TRIES,
                        |e: &PushError| e.is_retryable(),
                        || self.deliverer.pusher.close(self.endpoint, &id),
                    )
                    .await;
                    (id, result)
                })
                .buffer_unordered(self.deliverer.concurrency.max(1));
            while let Some((id, result)) = closing.next().await {
                match result {
                    Ok(()) => report.note_done(id),
                    // Already gone: its row is stale, and goes (as a broadcast's would).
                    Err(PushError::Gone(_)) => {
                        store.delete(&id).await?;
                        report.gone += 1;
                    }
                    Err(e) => report.note_failed(error_chain(&e)),
                }
            }
        }
        Ok(report)
    }

    fn past_deadline(&self) -> bool {
        Instant::now() + crate::delivery::posting::DEADLINE_MARGIN >= self.deliverer.deadline
    }
}

/// The ids an action is for, page by page: one named connection, or the rows a scan or a
/// topic's index selects.
struct Ids<'r> {
    source: Result<Rows<'r>, String>,
    cursor: Option<String>,
    done: bool,
}

impl<'r> Ids<'r> {
    fn new(source: Result<Rows<'r>, String>) -> Self {
        Ids {
            source,
            cursor: None,
            done: false,
        }
    }

    async fn next<S: ConnectionStore + ?Sized>(
        &mut self,
        store: &S,
    ) -> Result<Option<Vec<String>>, HandlerError> {
        if self.done {
            return Ok(None);
        }
        match &self.source {
            Err(id) => {
                self.done = true;
                Ok(Some(vec![id.clone()]))
            }
            Ok(rows) => {
                let page = store.ids(*rows, self.cursor.take(), None).await?;
                self.cursor = page.next;
                self.done = self.cursor.is_none();
                Ok(Some(page.items))
            }
        }
    }
}
