//! The project's catalogue of messages: each server-to-client event type with a JSON Schema of
//! its `data`, and each client action the stack's routes accept with a schema of the message.
//! The CLI compiles it from the project's files and bundles it into the function's zip as
//! `catalogue.json` ([`Catalogue::to_json`]); the function, `wsctl dev`, `wsctl broadcast` and
//! `wsctl send` all check messages against it the same way ([`Catalogue::check_event`]).

pub mod schema;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

pub use schema::{Schema, SchemaError, Violation};

/// The file the catalogue is bundled as, next to `bootstrap`.
pub const BUNDLED: &str = "catalogue.json";

/// Event types the bundled handler sends itself, and names the React client gives its own
/// events: a catalogue may not declare them.
pub const BUILT_IN_EVENTS: &[&str] = &[
    "pong",
    "subscribed",
    "unsubscribed",
    "error",
    "echo",
    "broadcast_report",
    "resumed",
    "gap",
    "connect",
    "disconnect",
    "forbidden",
    "gateway_error",
];

/// Actions the bundled handler answers.
pub const BUILT_IN_ACTIONS: &[&str] = &["ping", "subscribe", "unsubscribe", "broadcast", "resume"];

/// Whether a name can be an event type or an action: letters, digits, `_`, `-`, `.` and `:`,
/// 1 to 128 characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
}

/// One declared message: its schema, compiled, and as written.
#[derive(Debug, Clone)]
pub struct Declared {
    pub schema: Schema,
    pub source: Value,
}

/// Why a catalogue cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("{kind} {name:?}: {error}")]
    Schema {
        kind: &'static str,
        name: String,
        error: SchemaError,
    },
    #[error("{kind} {name:?}: {why}")]
    Name {
        kind: &'static str,
        name: String,
        why: String,
    },
    #[error("the bundled catalogue is not what wsctl writes: {0}")]
    Malformed(String),
}

/// Why a message is refused: where in it, and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {rule}")]
pub struct Refused {
    /// JSON pointer into the whole message (`/data/claimId`).
    pub pointer: String,
    pub rule: String,
}

/// The compiled catalogue.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub events: BTreeMap<String, Declared>,
    pub actions: BTreeMap<String, Declared>,
    /// Undeclared event types pass (declared ones are still checked).
    pub open: bool,
}

impl Catalogue {
    /// Compiles events and actions (name to schema), refusing built-in names and schemas that
    /// do not compile.
    pub fn compile(
        events: &BTreeMap<String, Value>,
        actions: &BTreeMap<String, Value>,
        open: bool,
    ) -> Result<Catalogue, CatalogueError> {
        let build = |kind: &'static str, all: &BTreeMap<String, Value>, reserved: &[&str]| {
            let mut out = BTreeMap::new();
            for (name, source) in all {
                if !valid_name(name) {
                    return Err(CatalogueError::Name {
                        kind,
                        name: name.clone(),
                        why: "a name is 1 to 128 letters, digits, _, -, . or :".into(),
                    });
                }
                if reserved.contains(&name.as_str()) {
                    return Err(CatalogueError::Name {
                        kind,
                        name: name.clone(),
                        why: format!(
                            "is wsctl's own ({}): choose another name",
                            reserved.join(", ")
                        ),
                    });
                }
                let schema = Schema::compile(source).map_err(|error| CatalogueError::Schema {
                    kind,
                    name: name.clone(),
                    error,
                })?;
                out.insert(
                    name.clone(),
                    Declared {
                        schema,
                        source: source.clone(),
                    },
                );
            }
            Ok(out)
        };
        Ok(Catalogue {
            events: build("event", events, BUILT_IN_EVENTS)?,
            actions: build("action", actions, BUILT_IN_ACTIONS)?,
            open,
        })
    }

    /// The bundled form: `{"open":...,"events":{...},"actions":{...}}`.
    pub fn to_json(&self) -> Value {
        let sources = |m: &BTreeMap<String, Declared>| -> Map<String, Value> {
            m.iter()
                .map(|(k, d)| (k.clone(), d.source.clone()))
                .collect()
        };
        json!({"open": self.open, "events": sources(&self.events), "actions": sources(&self.actions)})
    }

    /// Reads the bundled form.
    pub fn from_json(v: &Value) -> Result<Catalogue, CatalogueError> {
        let part = |key: &str| -> Result<BTreeMap<String, Value>, CatalogueError> {
            match v.get(key) {
                None => Ok(BTreeMap::new()),
                Some(Value::Object(m)) => {
                    Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                }
                Some(_) => Err(CatalogueError::Malformed(format!(
                    "{key:?} is not an object"
                ))),
            }
        };
        let open = v.get("open").and_then(Value::as_bool).unwrap_or(false);
        Catalogue::compile(&part("events")?, &part("actions")?, open)
    }

    /// Whether a server-to-client message may be sent: `{"type": T, "data": ...}` with `T`
    /// declared (or the catalogue open) and `data` matching `T`'s schema.
    pub fn check_event(&self, message: &Value) -> Result<(), Refused> {
        let refused = |pointer: &str, rule: String| {
            Err(Refused {
                pointer: pointer.to_owned(),
                rule,
            })
        };
        let Some(kind) = message.get("type").and_then(Value::as_str) else {
            if self.open {
                return Ok(());
            }
            return refused(
                "/type",
                "a message needs a \"type\" the catalogue declares (an object {\"type\", \"data\"})".into(),
            );
        };
        let Some(declared) = self.events.get(kind) else {
            if self.open {
                return Ok(());
            }
            let known: Vec<&str> = self.events.keys().map(String::as_str).take(20).collect();
            return refused(
                "/type",
                format!(
                    "{kind:?} is not an event type the catalogue declares ({})",
                    if known.is_empty() {
                        "none is".into()
                    } else {
                        known.join(", ")
                    }
                ),
            );
        };
        let data = message.get("data").unwrap_or(&Value::Null);
        declared.schema.check(data).map_err(|v| Refused {
            pointer: format!("/data{}", v.pointer),
            rule: v.rule,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        let events = BTreeMap::from([(
            "claim_submitted".to_owned(),
            json!({
                "type": "object",
                "required": ["claimId", "amount"],
                "additionalProperties": false,
                "properties": {
                    "claimId": {"type": "string", "pattern": "^C-[0-9]+$"},
                    "amount": {"type": "number", "minimum": 0},
                    "status": {"enum": ["new", "review"]},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                    "owner": {"$ref": "#/$defs/person"}
                },
                "$defs": {"person": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}},
                "examples": [{"claimId": "C-1", "amount": 10}]
            }),
        )]);
        Catalogue::compile(&events, &BTreeMap::new(), false).unwrap()
    }

    #[test]
    fn messages_are_checked_and_refusals_name_the_pointer_and_the_rule() {
        let c = catalogue();
        let ok = json!({"type": "claim_submitted", "data": {"claimId": "C-7", "amount": 2.5, "owner": {"id": 3}}});
        assert_eq!(c.check_event(&ok), Ok(()));
        for (message, pointer, rule) in [
            (
                json!({"type": "claim_submited", "data": {}}),
                "/type",
                "\"claim_submited\" is not an event type the catalogue declares (claim_submitted)",
            ),
            (
                json!({"type": "claim_submitted", "data": {"amount": 1}}),
                "/data",
                "\"claimId\" is required",
            ),
            (
                json!({"type": "claim_submitted", "data": {"claimId": 7, "amount": 1}}),
                "/data/claimId",
                "must be string",
            ),
            (
                json!({"type": "claim_submitted", "data": {"claimId": "X", "amount": 1}}),
                "/data/claimId",
                "must match the pattern \"^C-[0-9]+$\"",
            ),
            (
                json!({"type": "claim_submitted", "data": {"claimId": "C-1", "amount": -1}}),
                "/data/amount",
                "must be at least 0",
            ),
            (
                json!({"type": "claim_submitted", "data": {"claimId": "C-1", "amount": 1, "claimID": "x"}}),
                "/data/claimID",
                "\"claimID\" is not a property this message has (additionalProperties is false)",
            ),
            (
                json!({"type": "claim_submitted", "data": {"claimId": "C-1", "amount": 1, "tags": ["a", 2]}}),
                "/data/tags/1",
                "must be string",
            ),
            (
                json!({"type": "claim_submitted", "data": {"claimId": "C-1", "amount": 1, "owner": {"id": 1.5}}}),
                "/data/owner/id",
                "must be integer",
            ),
            (
                json!({"type": "claim_submitted", "data": {"claimId": "C-1", "amount": 1, "status": "done"}}),
                "/data/status",
                "must be one of [\"new\",\"review\"]",
            ),
            (json!("plain"), "/type", "a message needs a \"type\""),
        ] {
            let refused = c.check_event(&message).unwrap_err();
            assert_eq!(refused.pointer, pointer, "{message}");
            assert!(refused.rule.contains(rule), "{message}: {}", refused.rule);
        }
        let open = Catalogue {
            open: true,
            ..catalogue()
        };
        assert_eq!(open.check_event(&json!({"type": "anything"})), Ok(()));
        assert!(open
            .check_event(&json!({"type": "claim_submitted", "data": {}}))
            .is_err());
    }

    #[test]
    fn bad_catalogues_are_refused_naming_the_message_and_the_place() {
        let one = |name: &str, schema: Value| BTreeMap::from([(name.to_owned(), schema)]);
        let none = BTreeMap::new();
        for (events, actions, want) in [
            (
                one("pong", json!({})),
                none.clone(),
                "event \"pong\": is wsctl's own",
            ),
            (
                none.clone(),
                one("resume", json!({})),
                "action \"resume\": is wsctl's own",
            ),
            (one("a b", json!({})), none.clone(), "a name is 1 to 128"),
            (
                one("e", json!({"type": "text"})),
                none.clone(),
                "event \"e\": /type: type is one of",
            ),
            (
                one("e", json!({"properties": {"x": {"if": {}}}})),
                none.clone(),
                "event \"e\": /properties/x/if: if is not a keyword wsctl checks",
            ),
            (
                one("e", json!({"$ref": "#/$defs/nope"})),
                none.clone(),
                "no definition \"nope\"",
            ),
            (
                one("e", json!({"$ref": "https://example.com/s.json"})),
                none.clone(),
                "$ref names one of the file's own definitions",
            ),
            (
                one("e", json!({"pattern": "("})),
                none.clone(),
                "/pattern: \"(\" is not a regular expression",
            ),
            (
                one("e", json!(3)),
                none.clone(),
                "a schema is an object or a boolean",
            ),
        ] {
            let e = Catalogue::compile(&events, &actions, false)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}\nwanted {want}");
        }
        // The bundled form reads back to the same checks.
        let c = catalogue();
        let back = Catalogue::from_json(&c.to_json()).unwrap();
        assert_eq!(back.to_json(), c.to_json());
        assert!(back
            .check_event(&json!({"type": "claim_submitted", "data": {}}))
            .is_err());
    }
}
