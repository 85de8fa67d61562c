//! The WebSocket connection handler's logic: events in, effects on two ports out.
//!
//! The Lambda binary (`src/main.rs`) turns API Gateway events into [`Event`]s and runs them
//! against a DynamoDB [`store::DynamoStore`] and the management API
//! [`push::ManagementApiPusher`]; `wsctl dev` runs the same [`Handler`] against a
//! [`store::MemoryStore`] and an [`push::InProcessPusher`]. Nothing here names an AWS type.
//!
//! The modules, in the order a message travels: [`env`] (the function's environment contract,
//! shared with the CLI) and [`settings`]; [`inbound`] (events, client messages, route
//! selection) and [`invocation`] (direct invocations, shared with the CLI); [`events`] (what
//! each event does, checking topics against [`topics`]), which calls [`fanout`] (one broadcast
//! over many invocations), [`membership`] (a backend's subscribe, unsubscribe and close) and
//! [`delivery`] (encoding, then the delivery engine: retries, pacing, read-ahead), whose
//! [`delivered`] says what a delivery did; the ports are [`store`] and [`push`]. Below them all,
//! [`signed`] (the one SigV4-signed HTTP client) and [`retry`].

#[cfg(feature = "aws")]
pub mod apigw;
pub mod auth;
pub mod authorizer;
pub mod catalogue;
mod chain;
mod clock;
pub mod delivered;
pub mod delivery;
pub mod env;
mod error;
pub mod events;
pub mod fanout;
pub mod glibc;
pub mod history;
pub mod inbound;
pub mod invocation;
pub mod membership;
pub mod push;
pub mod replay;
mod retry;
pub mod settings;
#[cfg(feature = "aws")]
pub mod signed;
pub mod store;
pub mod topics;

pub use chain::error_chain;
pub use clock::now_iso8601;
pub use delivered::DeliveryReport;
pub use delivery::encode_message;
pub use error::HandlerError;
pub use events::{error_message, Handler, Outcome, MAX_INVOCATION};
pub use fanout::{BroadcastLog, BroadcastStatus, FanOut, Invoker, MemoryBroadcastLog};
pub use inbound::{
    parse_client_message, select_route, BadRequest, ClientMessage, Event, RequestContext,
};
pub use invocation::{Audience, Invocation, Recipient, MAX_TOPIC_CHARS};
pub use membership::MembershipReport;
pub use push::{Closed, InProcessPusher, PushError, Pusher, Sink};
pub use settings::{Settings, MAX_MESSAGE_BYTES};
pub use store::{
    Connection, ConnectionStore, Filter, IdPage, MemoryStore, Page, Rows, Segment, StoreError,
};
