//! `wsctl asyncapi`: the stack as an AsyncAPI 3.0 document: the server (the stage's wss URL,
//! or `wsctl dev`'s), one channel (the connection), the messages the bundled handler sends and
//! the actions it answers (ping/pong, subscribe, resume and the catch-up fields, errors), and
//! every event and action the catalogue declares with its schema and examples. Operations are
//! the server's: it `send`s events and `receive`s actions.
//!
//! The catalogue's schemas are JSON Schema 2020-12; AsyncAPI's default schema format is its
//! draft-07 superset, so each is carried over: `$defs` become `components/schemas` entries
//! (their `$ref`s rewritten to point there) and `prefixItems` become draft-07 tuples (`items`
//! as an array, `additionalItems`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// Where clients connect: a `ws://` or `wss://` URL.
pub struct Server<'a> {
    pub url: &'a str,
    pub description: &'a str,
}

/// A 2020-12 schema as draft-07: `$defs` refs to `#/components/schemas/{prefix}_{name}`.
fn draft7(schema: &Value, prefix: &str) -> Value {
    match schema {
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, v) in o {
                match k.as_str() {
                    "$defs" | "$schema" | "$id" => {}
                    "$ref" => {
                        let name = v
                            .as_str()
                            .and_then(|r| r.strip_prefix("#/$defs/"))
                            .unwrap_or_default();
                        out.insert(
                            k.clone(),
                            json!(format!("#/components/schemas/{prefix}_{name}")),
                        );
                    }
                    "prefixItems" => {
                        let items: Vec<Value> = v
                            .as_array()
                            .map(|a| a.iter().map(|s| draft7(s, prefix)).collect())
                            .unwrap_or_default();
                        out.insert("items".into(), Value::Array(items));
                        if let Some(rest) = o.get("items") {
                            out.insert("additionalItems".into(), draft7(rest, prefix));
                        }
                    }
                    "items" if o.contains_key("prefixItems") => {}
                    "properties" | "patternProperties" => {
                        let m: Map<String, Value> = v
                            .as_object()
                            .map(|m| {
                                m.iter()
                                    .map(|(n, s)| (n.clone(), draft7(s, prefix)))
                                    .collect()
                            })
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(m));
                    }
                    "items" | "additionalProperties" | "not" => {
                        out.insert(k.clone(), draft7(v, prefix));
                    }
                    "allOf" | "anyOf" | "oneOf" => {
                        let l: Vec<Value> = v
                            .as_array()
                            .map(|a| a.iter().map(|s| draft7(s, prefix)).collect())
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Array(l));
                    }
                    _ => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// `name` as a component key (letters, digits, `.`, `_`, `-`).
fn component(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

struct Doc {
    messages: Map<String, Value>,
    schemas: Map<String, Value>,
    operations: Map<String, Value>,
    channel_messages: Map<String, Value>,
}

impl Doc {
    /// Adds a message the server sends (`send`) or receives (`receive`).
    fn add(&mut self, key: &str, action: &str, message: Value) {
        let key = component(key);
        self.messages.insert(key.clone(), message);
        self.channel_messages.insert(
            key.clone(),
            json!({"$ref": format!("#/components/messages/{key}")}),
        );
        self.operations.insert(
            format!("{action}_{key}"),
            json!({
                "action": action,
                "channel": {"$ref": "#/channels/connection"},
                "messages": [{"$ref": format!("#/channels/connection/messages/{key}")}],
            }),
        );
    }
}

/// The `wsctl` field positioned messages carry (with `[history]`).
fn stamp_schema() -> Value {
    json!({
        "type": "object",
        "description": "The message's position in its stream (a stack with [history]): what a client resumes from.",
        "required": ["id", "stream", "seq"],
        "properties": {
            "id": {"type": "string"},
            "stream": {"type": "string", "description": "topic:NAME, all, or user:SUB"},
            "seq": {"type": "integer", "minimum": 1}
        }
    })
}

/// One catalogue entry as an AsyncAPI message: its `$defs` become components named under
/// `prefix`, its description the summary, and each of its examples, made a whole frame by
/// `frame`, an example payload.
fn catalogue_message(
    doc: &mut Doc,
    name: &str,
    schema: &Value,
    prefix: &str,
    payload: Value,
    frame: impl Fn(&Value) -> Value,
) -> Value {
    for (d, s) in schema
        .get("$defs")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        doc.schemas
            .insert(format!("{prefix}_{d}"), draft7(s, prefix));
    }
    let mut message = json!({"name": name, "title": name, "payload": payload});
    if let Some(d) = schema.get("description") {
        message["summary"] = d.clone();
    }
    if let Some(Value::Array(examples)) = schema.get("examples") {
        message["examples"] = Value::Array(
            examples
                .iter()
                .map(|e| json!({"payload": frame(e)}))
                .collect(),
        );
    }
    message
}

fn event_payload(kind: &str, data: Value) -> Value {
    json!({
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"const": kind}, "data": data, "wsctl": {"$ref": "#/components/schemas/wsctl_position"}}
    })
}

/// The document.
pub fn document(
    title: &str,
    server: &Server<'_>,
    events: &BTreeMap<String, Value>,
    actions: &BTreeMap<String, Value>,
) -> Value {
    let mut doc = Doc {
        messages: Map::new(),
        schemas: Map::new(),
        operations: Map::new(),
        channel_messages: Map::new(),
    };
    doc.schemas.insert("wsctl_position".into(), stamp_schema());
    let topic = json!({"type": "string", "minLength": 1, "maxLength": 128});
    let builtin_send: [(&str, Value, &str); 8] = [
        ("pong", json!({"type": "object", "properties": {"timestamp": {"type": "string"}}}), "The answer to ping."),
        ("subscribed", json!({"type": "object", "required": ["topic"], "properties": {"topic": topic}}), "The connection is in the topic (its own subscribe, or its backend's)."),
        ("unsubscribed", json!({"type": "object", "required": ["topic"], "properties": {"topic": topic}}), "The connection left the topic."),
        ("error", json!({"type": "object", "required": ["code", "message"], "properties": {
            "code": {"enum": ["bad_request", "forbidden", "rate_limited", "not_connected", "not_kept"]},
            "message": {"type": "string"},
            "action": {"type": "string"},
            "topic": {"type": "string"},
            "stream": {"type": "string"}
        }}), "A refused message: bad_request (malformed, too large, breaks the catalogue), forbidden (the topic rules), rate_limited, not_connected, not_kept (no history)."),
        ("echo", json!(true), "Any other message without a route, sent back."),
        ("broadcast_report", json!({"type": "object", "properties": {"delivered": {"type": "integer"}, "gone": {"type": "integer"}, "failed": {"type": "integer"}}}), "What a client's own broadcast did (with allow_client_broadcast)."),
        ("resumed", json!({"type": "object", "required": ["streams"], "properties": {"streams": {"type": "object"}}}), "The end of a resume: per stream, what was replayed and the stream's head."),
        ("gap", json!({"type": "object", "required": ["stream", "after", "head"], "properties": {"stream": {"type": "string"}, "after": {"type": "integer"}, "head": {"type": "integer"}}}), "The history no longer reaches back to where the client stopped: refetch."),
    ];
    for (name, data, about) in builtin_send {
        doc.add(
            &format!("wsctl.{name}"),
            "send",
            json!({"name": name, "title": name, "summary": about, "payload": event_payload(name, data)}),
        );
    }
    let builtin_receive: [(&str, Value, &str); 5] = [
        ("ping", json!({}), "Keeps the connection alive; answered with pong."),
        ("subscribe", json!({"topic": topic}), "Joins a topic, if the topic rules allow it."),
        ("unsubscribe", json!({"topic": topic}), "Leaves a topic."),
        ("broadcast", json!({"topic": topic, "message": true}), "Sends a message to a topic's subscribers (with allow_client_broadcast and the publish rules)."),
        ("resume", json!({"streams": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}}), "After a reconnect: replays each stream after the position the client has."),
    ];
    for (name, props, about) in builtin_receive {
        let mut properties = json!({"action": {"const": name}});
        for (k, v) in props.as_object().into_iter().flatten() {
            properties[k] = v.clone();
        }
        doc.add(
            &format!("wsctl.{name}"),
            "receive",
            json!({"name": name, "title": name, "summary": about, "payload": {"type": "object", "required": ["action"], "properties": properties}}),
        );
    }
    for (kind, schema) in events {
        let prefix = format!("event_{}", component(kind));
        let payload = event_payload(kind, draft7(schema, &prefix));
        let message = catalogue_message(
            &mut doc,
            kind,
            schema,
            &prefix,
            payload,
            |e| json!({"type": kind, "data": e}),
        );
        doc.add(kind, "send", message);
    }
    for (name, schema) in actions {
        let prefix = format!("action_{}", component(name));
        let payload = json!({
            "allOf": [
                {"type": "object", "required": ["action"], "properties": {"action": {"const": name}}},
                draft7(schema, &prefix),
            ]
        });
        let message = catalogue_message(&mut doc, name, schema, &prefix, payload, |e| {
            let mut frame = e.clone();
            if let Value::Object(o) = &mut frame {
                o.insert("action".into(), json!(name));
            }
            frame
        });
        doc.add(name, "receive", message);
    }
    let (scheme, rest) = server.url.split_once("://").unwrap_or(("wss", server.url));
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": "1.0.0",
            "description": "Messages are JSON text frames. The server sends {\"type\": ..., \"data\": ...}; clients send {\"action\": ..., ...}, routed by the route selection expression $request.body.action. Written by `wsctl asyncapi` from the project's catalogue.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "stage": {
                "host": host,
                "pathname": path,
                "protocol": scheme,
                "description": server.description,
            }
        },
        "channels": {
            "connection": {
                "address": "/",
                "title": "The WebSocket connection",
                "description": "One channel: every message of a connection, both ways.",
                "servers": [{"$ref": "#/servers/stage"}],
                "messages": doc.channel_messages,
            }
        },
        "operations": doc.operations,
        "components": {"messages": doc.messages, "schemas": doc.schemas},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_carry_over_to_draft_07_with_their_definitions() {
        let s = json!({
            "type": "object",
            "properties": {"pair": {"prefixItems": [{"type": "string"}], "items": {"type": "integer"}}, "owner": {"$ref": "#/$defs/person"}},
            "$defs": {"person": {"type": "object"}}
        });
        assert_eq!(
            draft7(&s, "event_x"),
            json!({
                "type": "object",
                "properties": {
                    "pair": {"items": [{"type": "string"}], "additionalItems": {"type": "integer"}},
                    "owner": {"$ref": "#/components/schemas/event_x_person"}
                }
            })
        );
        let events = BTreeMap::from([("claim.submitted".to_owned(), s)]);
        let d = document(
            "demo",
            &Server {
                url: "wss://abc.execute-api.us-east-1.amazonaws.com/prod",
                description: "the prod stage",
            },
            &events,
            &BTreeMap::new(),
        );
        assert_eq!(
            d["servers"]["stage"]["host"],
            "abc.execute-api.us-east-1.amazonaws.com"
        );
        assert_eq!(d["servers"]["stage"]["pathname"], "/prod");
        assert_eq!(
            d["components"]["schemas"]["event_claim.submitted_person"],
            json!({"type": "object"})
        );
        assert_eq!(d["operations"]["send_claim.submitted"]["action"], "send");
        assert_eq!(d["operations"]["receive_wsctl.resume"]["action"], "receive");
    }
}
