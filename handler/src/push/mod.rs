//! How messages reach clients: the [`Pusher`] port and what a post can answer; an in-process
//! implementation for `wsctl dev` ([`in_process`]) and, with the `aws` feature, the API
//! Gateway management API through the function's signed client ([`management`]).

use std::error::Error as StdError;

use async_trait::async_trait;

mod in_process;
#[cfg(feature = "aws")]
mod management;

pub use in_process::{Closed, InProcessPusher, Outbound, Sink};
#[cfg(feature = "aws")]
pub use management::ManagementApiPusher;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The connection is closed or never existed (API Gateway's 410 GoneException).
    #[error("connection {0} is gone")]
    Gone(String),
    /// The endpoint refused the call (403 ForbiddenException, usually a missing
    /// `execute-api:ManageConnections` permission).
    #[error("not allowed to post to connection {connection_id}")]
    Forbidden {
        connection_id: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The message is over the endpoint's limit (413 PayloadTooLargeException).
    #[error("the message is too large for connection {connection_id}")]
    TooLarge { connection_id: String },
    /// The account's throttle refused the post (429 LimitExceededException or
    /// TooManyRequestsException); worth retrying later.
    #[error("posting to connection {connection_id} was throttled")]
    Throttled { connection_id: String },
    /// Anything else: 5xx, a lost connection, a timeout, another 4xx. `retryable` says whether
    /// the same post may succeed later (5xx and transport errors) or never will (4xx).
    #[error("posting to connection {connection_id} failed")]
    Failed {
        connection_id: String,
        retryable: bool,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

impl PushError {
    /// Whether the same post may succeed if tried again: throttling, 5xx and transport errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            PushError::Throttled { .. } => true,
            PushError::Failed { retryable, .. } => *retryable,
            PushError::Gone(_) | PushError::Forbidden { .. } | PushError::TooLarge { .. } => false,
        }
    }
}

#[async_trait]
pub trait Pusher: Send + Sync {
    /// Sends `data` to one connection through the management endpoint `endpoint`
    /// (`https://{domain}/{stage}`; implementations that do not need it ignore it).
    async fn post(&self, endpoint: &str, connection_id: &str, data: &[u8])
        -> Result<(), PushError>;

    /// Disconnects one connection (`DELETE @connections/{id}`): API Gateway closes it and
    /// runs `$disconnect`. An unknown or closed one answers [`PushError::Gone`].
    async fn close(&self, endpoint: &str, connection_id: &str) -> Result<(), PushError>;
}
