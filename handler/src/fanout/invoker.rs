//! The [`Invoker`] port: how the function starts another invocation of itself, without waiting
//! for it (Lambda's `InvocationType=Event`). `wsctl dev` runs the invocation in process; the
//! Lambda posts to Lambda's Invoke API ([`super::lambda`]).

use async_trait::async_trait;
use serde_json::Value;

/// Why an invocation could not be started.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InvokeError {
    pub message: String,
    /// A throttle, a 5xx or a lost connection: trying again may work.
    pub retryable: bool,
}

#[async_trait]
pub trait Invoker: Send + Sync {
    /// Queues one invocation of this function with `payload` and returns once it is accepted.
    async fn invoke_event(&self, payload: &Value) -> Result<(), InvokeError>;
}
