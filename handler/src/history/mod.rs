//! Streams with positions, and their history: what lets a client that dropped for a while get
//! what it missed.
//!
//! A *stream* is what one delivery reaches: a topic (`topic:{name}`), every connection
//! (`all`), or one user's connections (`user:{sub}`). When the stack keeps history, every
//! message a broadcast or a `send --user` delivers gets, once (before any post, so fan-out
//! workers, hand-overs and retries all deliver the same bytes), a position in its stream,
//! and the message is kept for a window ([`HistoryPort::append`]: one write per message per
//! stream, never per connection). On the wire a message keeps its shape and gains one field:
//! `{"type":...,"data":...,"wsctl":{"id":"...","stream":"topic:claims","seq":42}}` (an object
//! message only; positions are 1, 2, 3... per stream, in the order the messages were kept).
//!
//! A client that comes back sends `{"action":"resume","streams":{"topic:claims":41}}` (the
//! last position it has of each stream); the handler replays each stream after that
//! position, in order, then answers `resumed`, or `gap` for a stream whose history no longer
//! reaches back that far (nothing is replayed for it: the app refetches). See
//! [`crate::events`] for the checks: a client may resume only streams it may hear.

mod memory;
pub use memory::MemoryHistory;

#[cfg(feature = "aws")]
mod dynamo;
#[cfg(feature = "aws")]
pub use dynamo::DynamoHistory;

use std::error::Error as StdError;

use async_trait::async_trait;
use serde_json::{json, Value};

/// The field a stamped message carries its identity in.
pub const FIELD: &str = "wsctl";

/// Streams are named by what they reach.
pub fn topic_stream(topic: &str) -> String {
    format!("topic:{topic}")
}
pub const ALL_STREAM: &str = "all";
pub fn user_stream(sub: &str) -> String {
    format!("user:{sub}")
}

/// What a stream name says it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stream<'a> {
    Topic(&'a str),
    All,
    User(&'a str),
}

impl<'a> Stream<'a> {
    pub fn parse(name: &'a str) -> Option<Stream<'a>> {
        match name {
            ALL_STREAM => Some(Stream::All),
            _ => match name.split_once(':') {
                Some(("topic", t)) if !t.is_empty() => Some(Stream::Topic(t)),
                Some(("user", u)) if !u.is_empty() => Some(Stream::User(u)),
                _ => None,
            },
        }
    }
}

/// One kept message.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub seq: u64,
    pub id: String,
    /// The message as it was delivered (stamped), encoded.
    pub message: Vec<u8>,
}

/// What a read of a stream after a position found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Replay {
    /// The entries after the position, in order (empty with a gap).
    pub entries: Vec<Entry>,
    /// The stream's last position (0: nothing kept yet).
    pub head: u64,
    /// The history does not reach back to the position: entries were dropped (expired, or
    /// beyond the cap) or never kept.
    pub gap: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{operation} on history table {table} failed")]
    Backend {
        operation: &'static str,
        table: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("history table {table} holds a malformed item: {reason}")]
    Malformed { table: String, reason: String },
    #[error("could not give a message a position in stream {stream}: {tries} writers in a row took the next one")]
    Contended { stream: String, tries: u32 },
}

/// Where streams are kept.
#[async_trait]
pub trait HistoryPort: Send + Sync {
    /// Keeps `message` (already stamped with `id` but not yet with its position) as the next
    /// entry of `stream`, and returns the position it got: one conditional write, tried again
    /// when another writer took the position first.
    async fn append(&self, stream: &str, id: &str, message: &Value) -> Result<u64, HistoryError>;
    /// The entries of `stream` after position `after`, at most `cap` of them, or a gap.
    async fn after(&self, stream: &str, after: u64, cap: u32) -> Result<Replay, HistoryError>;
}

/// `message` with its identity: `{...,"wsctl":{"id","stream","seq"}}`. Messages that are not
/// objects are returned unchanged (they carry no position).
pub fn stamp(message: &Value, id: &str, stream: &str, seq: u64) -> Value {
    let mut out = message.clone();
    if let Value::Object(o) = &mut out {
        o.insert(
            FIELD.into(),
            json!({"id": id, "stream": stream, "seq": seq}),
        );
    }
    out
}

/// How a stamped message says where it is (None for an unstamped one).
pub fn position_of(message: &Value) -> Option<(&str, u64)> {
    let f = message.get(FIELD)?;
    Some((f.get("stream")?.as_str()?, f.get("seq")?.as_u64()?))
}

/// Tries of one append before giving up ([`HistoryError::Contended`]).
pub const APPEND_TRIES: u32 = 50;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_say_what_they_reach() {
        assert_eq!(Stream::parse("topic:claims"), Some(Stream::Topic("claims")));
        assert_eq!(Stream::parse("topic:a:b"), Some(Stream::Topic("a:b")));
        assert_eq!(Stream::parse("all"), Some(Stream::All));
        assert_eq!(Stream::parse("user:alice"), Some(Stream::User("alice")));
        for bad in ["", "topic:", "user:", "room:x", "everyone"] {
            assert_eq!(Stream::parse(bad), None, "{bad}");
        }
        let m = stamp(&json!({"type": "t", "data": 1}), "b1", "topic:claims", 7);
        assert_eq!(
            m,
            json!({"type": "t", "data": 1, "wsctl": {"id": "b1", "stream": "topic:claims", "seq": 7}})
        );
        assert_eq!(position_of(&m), Some(("topic:claims", 7)));
        assert_eq!(stamp(&json!("plain"), "b1", "all", 1), json!("plain"));
    }
}
