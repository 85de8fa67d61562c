//! What comes in through API Gateway: its events as the library sees them, and client messages
//! and their route, each parsed without panics. Direct invocations (the runbook's Step 6
//! payloads) are [`crate::invocation`]'s.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::authorizer::{AuthorizeRequest, Caller};
use crate::invocation::{json_kind, valid_topic, MAX_TOPIC_CHARS};

/// What API Gateway tells the function about the connection an event belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub connection_id: String,
    /// `{api-id}.execute-api.{region}.amazonaws.com` or a custom domain.
    pub domain_name: Option<String>,
    pub stage: Option<String>,
    pub source_ip: Option<String>,
    /// Epoch milliseconds of the request.
    pub request_time_epoch_ms: i64,
    /// Who is talking, from the `$connect` authorizer's context (`requestContext.authorizer`),
    /// which API Gateway sets and a client cannot.
    pub caller: Option<Caller>,
}

/// The library's view of one invocation.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Connect {
        ctx: RequestContext,
        /// The handshake's query string (first value of each key).
        query: BTreeMap<String, String>,
        /// The handshake's headers, names lower-cased.
        headers: BTreeMap<String, String>,
    },
    Disconnect {
        ctx: RequestContext,
    },
    /// Any message route (`$default` or a custom route key).
    Message {
        ctx: RequestContext,
        body: Option<String>,
    },
    /// A direct invocation of the function (not through API Gateway), e.g. the runbook's
    /// `{"action":"broadcast","message":{...}}`.
    Invoke(Value),
    /// API Gateway asking the `$connect` authorizer (see [`crate::authorizer`]).
    Authorize(AuthorizeRequest),
}

/// Why a client's message was refused with `bad_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    #[error("message body is empty")]
    Empty,
    #[error("message is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("message is not valid JSON: {0}")]
    NotJson(String),
    #[error("message must be a JSON object, got {0}")]
    NotObject(&'static str),
    #[error("\"action\" must be a string")]
    ActionNotString,
    #[error("\"{action}\" needs a \"topic\": a non-empty string of at most {MAX_TOPIC_CHARS} characters without control characters")]
    BadTopic { action: &'static str },
    #[error("\"broadcast\" needs a \"message\"")]
    MissingMessage,
    #[error("\"resume\" needs \"streams\": an object of at most {MAX_RESUMED} stream names (\"topic:NAME\", \"all\", \"user:SUB\") to the last position the client has (a whole number)")]
    BadResume,
}

/// A client message, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Ping,
    Subscribe(String),
    Unsubscribe(String),
    Broadcast {
        message: Value,
        topic: Option<String>,
    },
    /// `{"action":"resume","streams":{"topic:claims":41}}`: replay each stream after the
    /// position the client has (see [`crate::history`]).
    Resume(std::collections::BTreeMap<String, u64>),
    /// Any other action (or none): echoed back, as the runbook does.
    Other(Value),
}

/// Parses a client's message body. Never panics, whatever the input.
pub fn parse_client_message(body: Option<&str>, limit: usize) -> Result<ClientMessage, BadRequest> {
    let body = body.unwrap_or_default();
    if body.len() > limit {
        return Err(BadRequest::TooLarge {
            size: body.len(),
            limit,
        });
    }
    if body.trim().is_empty() {
        return Err(BadRequest::Empty);
    }
    let value: Value =
        serde_json::from_str(body).map_err(|e| BadRequest::NotJson(e.to_string()))?;
    let obj = match &value {
        Value::Object(o) => o,
        other => return Err(BadRequest::NotObject(json_kind(other))),
    };
    let action = match obj.get("action") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) => Some(a.as_str()),
        Some(_) => return Err(BadRequest::ActionNotString),
    };
    Ok(match action {
        Some("ping") => ClientMessage::Ping,
        Some("subscribe") => {
            ClientMessage::Subscribe(valid_topic(obj.get("topic")).ok_or(BadRequest::BadTopic {
                action: "subscribe",
            })?)
        }
        Some("unsubscribe") => ClientMessage::Unsubscribe(valid_topic(obj.get("topic")).ok_or(
            BadRequest::BadTopic {
                action: "unsubscribe",
            },
        )?),
        Some("broadcast") => {
            let message = obj
                .get("message")
                .cloned()
                .ok_or(BadRequest::MissingMessage)?;
            let topic = match obj.get("topic") {
                None | Some(Value::Null) => None,
                t => Some(valid_topic(t).ok_or(BadRequest::BadTopic {
                    action: "broadcast",
                })?),
            };
            ClientMessage::Broadcast { message, topic }
        }
        Some("resume") => {
            let streams = obj
                .get("streams")
                .and_then(Value::as_object)
                .filter(|s| s.len() <= MAX_RESUMED)
                .ok_or(BadRequest::BadResume)?;
            let mut out = std::collections::BTreeMap::new();
            for (name, at) in streams {
                let valid = crate::history::Stream::parse(name).is_some()
                    && name.chars().count() <= MAX_TOPIC_CHARS + 6;
                match (valid, at.as_u64()) {
                    (true, Some(at)) => out.insert(name.clone(), at),
                    _ => return Err(BadRequest::BadResume),
                };
            }
            ClientMessage::Resume(out)
        }
        _ => ClientMessage::Other(value),
    })
}

/// Streams one `resume` may name.
pub const MAX_RESUMED: usize = 100;

/// The route key API Gateway picks for a message body: the string at `path` (the part of the
/// route selection expression after `$request.body.`, dotted for nested fields) when it names
/// one of `routes`; `$default` otherwise (not JSON, no such field, not a string, no such
/// route). Never panics, whatever the input.
pub fn select_route(path: &str, routes: &[String], body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return "$default".into();
    };
    let selected = path.split('.').try_fold(&value, |v, key| v.get(key));
    match selected.and_then(Value::as_str) {
        Some(key) if routes.iter().any(|r| r == key) => key.to_owned(),
        _ => "$default".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn client_messages_parse() {
        let p = |s: &str| parse_client_message(Some(s), 1000);
        assert_eq!(p(r#"{"action":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(
            p(r#"{"action":"subscribe","topic":"t"}"#),
            Ok(ClientMessage::Subscribe("t".into()))
        );
        assert_eq!(
            p(r#"{"action":"subscribe"}"#),
            Err(BadRequest::BadTopic {
                action: "subscribe"
            })
        );
        assert_eq!(
            p(r#"{"action":"subscribe","topic":""}"#),
            Err(BadRequest::BadTopic {
                action: "subscribe"
            })
        );
        assert_eq!(p("[1]"), Err(BadRequest::NotObject("an array")));
        assert_eq!(p(r#"{"action":5}"#), Err(BadRequest::ActionNotString));
        assert!(matches!(p("{nope"), Err(BadRequest::NotJson(_))));
        assert_eq!(parse_client_message(None, 10), Err(BadRequest::Empty));
        assert_eq!(
            parse_client_message(Some(&"x".repeat(11)), 10),
            Err(BadRequest::TooLarge {
                size: 11,
                limit: 10
            })
        );
        assert_eq!(
            p(r#"{"hello":1}"#),
            Ok(ClientMessage::Other(json!({"hello":1})))
        );
        assert_eq!(
            p(r#"{"action":"resume","streams":{"topic:claims":41,"all":0}}"#),
            Ok(ClientMessage::Resume(
                [("all".to_owned(), 0), ("topic:claims".to_owned(), 41)].into()
            ))
        );
        for bad in [
            r#"{"action":"resume"}"#,
            r#"{"action":"resume","streams":[1]}"#,
            r#"{"action":"resume","streams":{"topic:claims":-1}}"#,
            r#"{"action":"resume","streams":{"room:x":1}}"#,
            r#"{"action":"resume","streams":{"all":"1"}}"#,
        ] {
            assert_eq!(p(bad), Err(BadRequest::BadResume), "{bad}");
        }
    }
}
