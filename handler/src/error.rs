//! The handler's error type: what an invocation can fail with, and its Lambda `errorType`.

use crate::delivered::DeliveryReport;
use crate::push::PushError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("connection store failed")]
    Store(#[from] StoreError),
    #[error("could not reply to connection {connection_id}")]
    Reply {
        connection_id: String,
        #[source]
        source: PushError,
    },
    #[error("message is {size} bytes; API Gateway accepts at most {limit} bytes per message")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("invalid invocation payload: {0}")]
    BadInvocation(String),
    #[error("no broadcast with id {0:?} (records are kept 7 days; a broadcast just started with --no-wait may not have begun yet)")]
    NoSuchBroadcast(String),
    #[error(
        "no management endpoint for a direct invocation: set WEBSOCKET_API_ID and AWS_REGION \
         (or WEBSOCKET_MANAGEMENT_ENDPOINT) in the function's environment"
    )]
    NoEndpoint,
    /// The `$connect` authorizer refuses the token: the message must be exactly
    /// `Unauthorized`, which API Gateway answers with 401 (the reason is logged).
    #[error("Unauthorized")]
    Unauthorized(crate::auth::AuthError),
    /// The authorizer cannot verify tokens (keys unreachable): API Gateway answers 500.
    #[error("cannot verify tokens")]
    AuthUnavailable(#[source] crate::auth::AuthError),
    /// The message breaks the project's catalogue (an undeclared type, or `data` not matching
    /// its schema).
    #[error("invalid message: {0}")]
    InvalidMessage(crate::catalogue::Refused),
    /// The history table could not be read or written.
    #[error("history failed")]
    History(#[source] Box<crate::history::HistoryError>),
    /// An authorizer event reached a function without `[auth]`.
    #[error("this function has no [auth] configuration (AUTH_JWKS_URL or AUTH_SECRET_PARAMETER): it cannot authorize")]
    NoAuth,
    #[error("broadcast stopped after {} delivered, {} gone, {} failed", report.delivered, report.gone, report.failed)]
    BroadcastIncomplete {
        report: Box<DeliveryReport>,
        #[source]
        source: StoreError,
    },
}

impl From<crate::invocation::BadInvocation> for HandlerError {
    fn from(e: crate::invocation::BadInvocation) -> Self {
        HandlerError::BadInvocation(e.0)
    }
}

impl HandlerError {
    /// A short stable name for the error kind (the Lambda `errorType`).
    pub fn kind(&self) -> &'static str {
        match self {
            HandlerError::Store(_) => "StoreError",
            HandlerError::Reply { .. } => "ReplyError",
            HandlerError::MessageTooLarge { .. } => "MessageTooLarge",
            HandlerError::BadInvocation(_) => "BadInvocation",
            HandlerError::NoSuchBroadcast(_) => "NoSuchBroadcast",
            HandlerError::NoEndpoint => "NoEndpoint",
            HandlerError::BroadcastIncomplete { .. } => "BroadcastIncomplete",
            HandlerError::Unauthorized(_) => "Unauthorized",
            HandlerError::AuthUnavailable(_) => "AuthUnavailable",
            HandlerError::NoAuth => "NoAuth",
            HandlerError::History(_) => "HistoryError",
            HandlerError::InvalidMessage(_) => "InvalidMessage",
        }
    }
}
