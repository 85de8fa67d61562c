//! The function's direct invocations (not through API Gateway) as typed payloads, shared by the
//! function, which parses them, and the CLI, which builds them: the runbook's Step 6
//! `{"action":"broadcast","message":{...}}` (optionally to a topic, with the caller's broadcast
//! id), `send` to one connection or to every connection of a user, one part of a fanned-out
//! broadcast (the function's invocations of itself), a broadcast's status record; and what a
//! trusted backend does to connections whatever the topic rules say: put them into a topic or
//! take them out (`subscribe`, `unsubscribe`), and disconnect them (`close`).
//!
//! Building is serde ([`Invocation::payload`]); parsing ([`Invocation::parse`]) is serde for the
//! parts and checks the rest field by field, so that a bad payload from a person's script is
//! answered with a message naming the field.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest topic name a client may subscribe to (and a broadcast may name).
pub const MAX_TOPIC_CHARS: usize = 128;

/// A direct invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Invocation {
    /// Every connection, or a topic's subscribers.
    Broadcast {
        message: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        /// Given by the caller (`wsctl broadcast`, so that a retried invocation finds the
        /// broadcast started), or made by the coordinator.
        #[serde(skip_serializing_if = "Option::is_none")]
        broadcast_id: Option<String>,
    },
    /// One part of a fanned-out broadcast (a worker, or a hand-over to a fresh invocation).
    #[serde(rename = "broadcast_part")]
    Part(Box<Part>),
    /// A broadcast's status record.
    #[serde(rename = "broadcast_status")]
    Status { broadcast_id: String },
    /// One connection, or every connection of an authenticated subject.
    Send {
        #[serde(flatten)]
        to: Recipient,
        message: Value,
    },
    /// Puts one connection, or every connection of a subject, into a topic.
    Subscribe {
        topic: String,
        #[serde(flatten)]
        to: Recipient,
    },
    /// Takes one connection, or every connection of a subject, out of a topic.
    Unsubscribe {
        topic: String,
        #[serde(flatten)]
        to: Recipient,
    },
    /// Disconnects connections through the management API (`DELETE @connections/{id}`).
    Close {
        #[serde(flatten)]
        who: Audience,
    },
}

/// Which connections a `close` is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    ConnectionId(String),
    /// Every connection of this subject.
    User(String),
    /// Every connection subscribed to this topic.
    Topic(String),
    /// Every connection (`"all": true`).
    All(bool),
}

/// Whom a `send` is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// `"connection_id"`: one connection.
    ConnectionId(String),
    /// `"user"`: every connection whose token's `sub` is this.
    User(String),
}

/// One part of a broadcast, as a worker invocation's payload carries it
/// (`{"action":"broadcast_part", ...}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub broadcast_id: String,
    pub segment: u32,
    pub segments: u32,
    pub generation: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The management endpoint the coordinator posted to.
    pub endpoint: String,
    /// Whether rows are still to be read (after `after`, or from the start).
    pub read: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Ids read by the previous generation and not yet posted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ids: Vec<String>,
    pub message: Value,
}

/// Why a payload is not an invocation the function knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadInvocation(pub String);

impl Invocation {
    /// The JSON the function is invoked with.
    pub fn payload(&self) -> Value {
        serde_json::to_value(self).expect("an invocation is plain JSON")
    }

    /// Parses a direct invocation payload. Never panics, whatever the input.
    pub fn parse(payload: &Value) -> Result<Invocation, BadInvocation> {
        let bad = |m: &str| BadInvocation(m.to_owned());
        let obj = payload.as_object().ok_or_else(|| {
            BadInvocation(format!(
                "expected a JSON object, got {}",
                json_kind(payload)
            ))
        })?;
        let message = |obj: &Map<String, Value>| {
            obj.get("message").cloned().ok_or_else(|| {
                bad("\"message\" is missing (the runbook's shape is {\"type\":...,\"data\":...})")
            })
        };
        match obj.get("action").and_then(Value::as_str) {
            Some("broadcast") => {
                let topic = match obj.get("topic") {
                    None | Some(Value::Null) => None,
                    t => Some(valid_topic(t).ok_or_else(|| {
                        bad("\"topic\" must be a non-empty string of at most 128 characters")
                    })?),
                };
                let broadcast_id = match obj.get("broadcast_id") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(id)) if valid_broadcast_id(id) => Some(id.clone()),
                    Some(_) => {
                        return Err(bad(
                            "\"broadcast_id\" must be 1 to 64 letters, digits, '-', '_' or '.'",
                        ))
                    }
                };
                Ok(Invocation::Broadcast {
                    message: message(obj)?,
                    topic,
                    broadcast_id,
                })
            }
            Some("broadcast_part") => serde_json::from_value::<Part>(payload.clone())
                .map(|p| Invocation::Part(Box::new(p)))
                .map_err(|e| BadInvocation(format!("a broadcast_part payload: {e}"))),
            Some("broadcast_status") => match obj.get("broadcast_id") {
                Some(Value::String(id)) if valid_broadcast_id(id) => Ok(Invocation::Status {
                    broadcast_id: id.clone(),
                }),
                _ => Err(bad("\"broadcast_status\" needs a \"broadcast_id\"")),
            },
            Some(verb @ ("subscribe" | "unsubscribe")) => {
                let topic = valid_topic(obj.get("topic")).ok_or_else(|| {
                    BadInvocation(format!(
                        "\"{verb}\" needs a \"topic\": a non-empty string of at most 128 characters"
                    ))
                })?;
                let to = match (obj.get("connection_id"), obj.get("user")) {
                    (Some(Value::String(id)), None) if !id.is_empty() => {
                        Recipient::ConnectionId(id.clone())
                    }
                    (None, Some(Value::String(user))) if !user.is_empty() => {
                        Recipient::User(user.clone())
                    }
                    _ => {
                        return Err(BadInvocation(format!(
                            "\"{verb}\" needs either \"connection_id\" or \"user\" (the token's sub): a non-empty string"
                        )))
                    }
                };
                Ok(match verb {
                    "subscribe" => Invocation::Subscribe { topic, to },
                    _ => Invocation::Unsubscribe { topic, to },
                })
            }
            Some("close") => {
                let text = |k: &str| match obj.get(k) {
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                };
                let given: Vec<&str> = ["connection_id", "user", "topic", "all"]
                    .into_iter()
                    .filter(|k| obj.contains_key(*k))
                    .collect();
                let who = match given.as_slice() {
                    ["connection_id"] => text("connection_id").map(Audience::ConnectionId),
                    ["user"] => text("user").map(Audience::User),
                    ["topic"] => valid_topic(obj.get("topic")).map(Audience::Topic),
                    ["all"] => (obj.get("all") == Some(&Value::Bool(true))).then_some(Audience::All(true)),
                    _ => None,
                };
                who.map(|who| Invocation::Close { who }).ok_or_else(|| {
                    bad("\"close\" needs exactly one of \"connection_id\", \"user\", \"topic\" (non-empty strings) or \"all\": true")
                })
            }
            Some("send") => match (obj.get("connection_id"), obj.get("user")) {
                (Some(Value::String(id)), None) if !id.is_empty() => Ok(Invocation::Send {
                    to: Recipient::ConnectionId(id.clone()),
                    message: message(obj)?,
                }),
                (None, Some(Value::String(user))) if !user.is_empty() => Ok(Invocation::Send {
                    to: Recipient::User(user.clone()),
                    message: message(obj)?,
                }),
                _ => Err(bad(
                    "\"send\" needs either \"connection_id\" or \"user\" (the token's sub): a non-empty string",
                )),
            },
            Some(other) => Err(BadInvocation(format!(
                "unknown action {other:?}; expected \"broadcast\", \"send\", \"subscribe\", \"unsubscribe\", \"close\" or \"broadcast_status\""
            ))),
            None => Err(bad(
                "\"action\" is missing; expected \"broadcast\" or \"send\"",
            )),
        }
    }
}

/// "a string", "an array"...: what a JSON value is, for messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A topic name from a payload: a non-empty string of at most [`MAX_TOPIC_CHARS`] characters
/// without control characters.
pub fn valid_topic(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(t))
            if !t.is_empty()
                && t.chars().count() <= MAX_TOPIC_CHARS
                && !t.chars().any(char::is_control) =>
        {
            Some(t.clone())
        }
        _ => None,
    }
}

/// A new broadcast id: the UTC time, then random hex (sortable, and unique enough).
pub fn new_broadcast_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{:08x}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        fastrand::u32(..)
    )
}

/// Whether `id` may name a broadcast: 1 to 64 of `A-Z a-z 0-9 - _ .`.
pub fn valid_broadcast_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn invocations_parse() {
        assert_eq!(
            Invocation::parse(&json!({"action":"broadcast","message":{"type":"t","data":1}}))
                .unwrap(),
            Invocation::Broadcast {
                message: json!({"type":"t","data":1}),
                topic: None,
                broadcast_id: None
            }
        );
        for bad in [
            json!({"action":"broadcast"}),
            json!({"action":"explode"}),
            json!([1]),
            json!({"action":"send","message":1}),
        ] {
            assert!(Invocation::parse(&bad).is_err(), "{bad}");
        }
    }

    /// What the CLI builds is what the function parses, field for field.
    #[test]
    fn built_payloads_parse_back() {
        let part = Part {
            broadcast_id: "b1".into(),
            segment: 1,
            segments: 4,
            generation: 2,
            topic: Some("news".into()),
            endpoint: "https://x/prod".into(),
            read: true,
            after: Some("c".into()),
            ids: vec!["a=".into()],
            message: json!({"type": "t"}),
        };
        for invocation in [
            Invocation::Broadcast {
                message: json!({"type": "t", "data": {"n": 1}}),
                topic: Some("news".into()),
                broadcast_id: Some(new_broadcast_id()),
            },
            Invocation::Broadcast {
                message: json!({"type": "t"}),
                topic: None,
                broadcast_id: None,
            },
            Invocation::Part(Box::new(part)),
            Invocation::Status {
                broadcast_id: "20261207T000000Z-0000abcd".into(),
            },
            Invocation::Send {
                to: Recipient::ConnectionId("AAAA1111=".into()),
                message: json!({"type": "t"}),
            },
            Invocation::Send {
                to: Recipient::User("alice".into()),
                message: json!({"type": "t"}),
            },
            Invocation::Subscribe {
                topic: "user:bob".into(),
                to: Recipient::ConnectionId("AAAA1111=".into()),
            },
            Invocation::Unsubscribe {
                topic: "user:bob".into(),
                to: Recipient::User("alice".into()),
            },
            Invocation::Close {
                who: Audience::User("alice".into()),
            },
            Invocation::Close {
                who: Audience::Topic("news".into()),
            },
            Invocation::Close {
                who: Audience::All(true),
            },
        ] {
            let payload = invocation.payload();
            assert_eq!(Invocation::parse(&payload), Ok(invocation), "{payload}");
        }
        assert_eq!(
            Invocation::Send {
                to: Recipient::User("alice".into()),
                message: json!(1),
            }
            .payload(),
            json!({"action": "send", "user": "alice", "message": 1})
        );
        assert_eq!(
            Invocation::Close {
                who: Audience::All(true)
            }
            .payload(),
            json!({"action": "close", "all": true})
        );
        for bad in [
            json!({"action": "close"}),
            json!({"action": "close", "all": false}),
            json!({"action": "close", "user": "a", "topic": "t"}),
            json!({"action": "subscribe", "topic": "t"}),
            json!({"action": "subscribe", "connection_id": "a"}),
        ] {
            assert!(Invocation::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_checked() {
        assert!(valid_broadcast_id(&new_broadcast_id()));
        assert!(!valid_broadcast_id(""));
        assert!(!valid_broadcast_id("a b"));
        assert!(!valid_broadcast_id(&"x".repeat(65)));
    }
}
