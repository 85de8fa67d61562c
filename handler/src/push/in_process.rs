//! The in-process pusher of `wsctl dev` and the tests: each open connection registers a
//! [`Sink`], and a post hands the message to it.

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use tokio::sync::mpsc;

use super::{PushError, Pusher};

/// What the in-process pusher hands to a connection's writer.
pub type Outbound = Vec<u8>;

/// The connection is closing or gone: nothing more can be sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection is closed")]
pub struct Closed;

/// A connection's way out (its sink), provided by whatever holds its socket. `wsctl dev` hands the frame
/// to a writer that serves many sockets (no task of the connection's own is woken per message,
/// which keeps a broadcast to thousands of clients cheap); a channel sender is the sink the
/// tests use.
pub trait Sink: Send + Sync {
    /// Hands `data` (one message) to the client, in order with earlier messages.
    fn deliver(&self, data: &[u8]) -> Result<(), Closed>;

    /// Closes the connection (after what was handed before).
    fn close(&self) -> Result<(), Closed>;
}

/// A channel: what the tests use. Closing it sends an empty message, which no message is.
impl Sink for mpsc::UnboundedSender<Outbound> {
    fn deliver(&self, data: &[u8]) -> Result<(), Closed> {
        self.send(data.to_vec()).map_err(|_| Closed)
    }

    fn close(&self) -> Result<(), Closed> {
        self.send(Vec::new()).map_err(|_| Closed)
    }
}

type Peers = HashMap<String, std::sync::Arc<dyn Sink>>;

/// Delivers to connections held by this process: each open connection registers an
/// [`Sink`]. Unknown ids answer [`PushError::Gone`] exactly as API Gateway does.
#[derive(Default)]
pub struct InProcessPusher {
    peers: RwLock<Peers>,
}

impl std::fmt::Debug for InProcessPusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessPusher")
            .field("connections", &self.read().len())
            .finish()
    }
}

impl InProcessPusher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a connection whose messages arrive on the returned channel.
    pub fn register(&self, connection_id: &str) -> mpsc::UnboundedReceiver<Outbound> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.attach(connection_id, std::sync::Arc::new(tx));
        rx
    }

    /// Registers a connection with its own sink.
    pub fn attach(&self, connection_id: &str, sink: std::sync::Arc<dyn Sink>) {
        self.write().insert(connection_id.to_owned(), sink);
    }

    /// Forgets a connection; later posts to it answer Gone.
    pub fn unregister(&self, connection_id: &str) -> bool {
        self.write().remove(connection_id).is_some()
    }

    /// Sends without the async trait machinery (the dev gateway's @connections endpoint).
    pub fn send(&self, connection_id: &str, data: &[u8]) -> Result<(), PushError> {
        // The sink may write to a socket: do that outside the lock.
        let sink = self.read().get(connection_id).cloned();
        match sink {
            Some(sink) => sink
                .deliver(data)
                .map_err(|Closed| PushError::Gone(connection_id.to_owned())),
            None => Err(PushError::Gone(connection_id.to_owned())),
        }
    }

    /// Closes a connection without the async trait machinery; unknown ids are Gone.
    pub fn close_now(&self, connection_id: &str) -> Result<(), PushError> {
        let sink = self.read().get(connection_id).cloned();
        match sink {
            Some(sink) => sink
                .close()
                .map_err(|Closed| PushError::Gone(connection_id.to_owned())),
            None => Err(PushError::Gone(connection_id.to_owned())),
        }
    }

    // Each critical section is one map operation, so a poisoned lock is still consistent.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Peers> {
        self.peers.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Peers> {
        self.peers.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Pusher for InProcessPusher {
    async fn post(
        &self,
        _endpoint: &str,
        connection_id: &str,
        data: &[u8],
    ) -> Result<(), PushError> {
        self.send(connection_id, data)
    }

    async fn close(&self, _endpoint: &str, connection_id: &str) -> Result<(), PushError> {
        self.close_now(connection_id)
    }
}
