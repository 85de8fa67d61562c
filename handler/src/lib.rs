//! The WebSocket connection handler's logic: events in, effects on two ports out.
//!
//! The Lambda binary (`src/main.rs`) turns API Gateway events into [`Event`]s and runs them
//! against a DynamoDB [`store::DynamoStore`] and the management API
//! [`push::ManagementApiPusher`]; `wsctl dev` runs the same [`Handler`] against a
//! [`store::MemoryStore`] and an [`push::InProcessPusher`]. Nothing here names an AWS type.
//!
//! The modules, in the order a message travels: [`settings`] (the function's environment),
//! [`inbound`] (events, client messages, route selection, direct invocations), [`handler`]
//! (what each event does), [`delivery`] (encoding, then the delivery engine: retries, pacing,
//! read-ahead) and
//! [`report`] (what a delivery did); the ports are [`store`] and [`push`].

#[cfg(feature = "aws")]
pub mod apigw;
pub mod auth;
mod clock;
pub mod delivery;
mod error;
pub mod fanout;
pub mod handler;
pub mod inbound;
pub mod push;
pub mod report;
pub mod settings;
pub mod store;

pub use clock::now_iso8601;
pub use delivery::encode_message;
pub use error::{error_chain, HandlerError};
pub use fanout::{BroadcastLog, BroadcastStatus, FanOut, Invoker, MemoryBroadcastLog};
pub use handler::{error_message, Handler, Outcome, MAX_INVOCATION};
pub use inbound::{
    parse_client_message, parse_invocation, select_route, BadRequest, ClientMessage, Event,
    Invocation, RequestContext, MAX_TOPIC_CHARS,
};
pub use push::{Closed, InProcessPusher, Outlet, PushError, Pusher};
pub use report::DeliveryReport;
pub use settings::{Settings, SettingsError};
pub use store::{
    Connection, ConnectionStore, Filter, IdPage, MemoryStore, Page, Rows, Segment, StoreError,
};

/// API Gateway's limit for one message (and so for one `post_to_connection`).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
