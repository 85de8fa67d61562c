//! `wsctl types`: a TypeScript module of the catalogue, for the React client's type
//! parameters (`useWebSocket<Events, Actions>(url)`): `Events` maps each event type to its
//! `data`, `Actions` each action to the fields its message carries besides `action`. The same
//! catalogue always gives the same bytes (names and properties sorted), under a header naming
//! the source.
//!
//! Schemas map to types as a client reads them: `properties` are the object's fields (those in
//! `required` without `?`), an object declares no other field unless `additionalProperties` or
//! `patternProperties` gives a schema (so a misspelt field is a compile error), `enum` and
//! `const` are literal unions, `anyOf` / `oneOf` unions, `allOf` intersections, `$ref` the
//! named type of a `$defs` entry, `items` / `prefixItems` arrays and tuples; what narrows values
//! without changing their type (`minimum`, `pattern`...) is left to the checks.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

/// `claim_submitted` -> `ClaimSubmitted`.
fn pascal(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A property name as TypeScript writes it: bare when it is an identifier, quoted otherwise.
fn key(name: &str) -> String {
    let ident = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ident {
        name.to_owned()
    } else {
        serde_json::to_string(name).unwrap_or_default()
    }
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => v.to_string(),
        // Structured constants are typed by their shape only.
        Value::Array(_) => "unknown[]".into(),
        Value::Object(_) => "Record<string, unknown>".into(),
    }
}

fn union(parts: Vec<String>, glue: &str) -> String {
    let mut unique: Vec<String> = Vec::new();
    for p in parts {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    match unique.len() {
        0 => "never".into(),
        1 => unique.remove(0),
        _ => unique
            .into_iter()
            .map(|p| if p.contains(' ') { format!("({p})") } else { p })
            .collect::<Vec<_>>()
            .join(glue),
    }
}

/// The TypeScript type of `schema`; `defs` names the type of each `$defs` entry.
fn ts(schema: &Value, defs: &str, indent: usize) -> String {
    let o = match schema {
        Value::Bool(true) => return "unknown".into(),
        Value::Bool(false) => return "never".into(),
        Value::Object(o) => o,
        _ => return "unknown".into(),
    };
    if let Some(r) = o.get("$ref").and_then(Value::as_str) {
        if let Some(name) = r.strip_prefix("#/$defs/") {
            return format!("{defs}_{}", pascal(name));
        }
    }
    if let Some(c) = o.get("const") {
        return literal(c);
    }
    if let Some(Value::Array(values)) = o.get("enum") {
        return union(values.iter().map(literal).collect(), " | ");
    }
    for (k, glue) in [("anyOf", " | "), ("oneOf", " | "), ("allOf", " & ")] {
        if let Some(Value::Array(list)) = o.get(k) {
            let mut parts: Vec<String> = list.iter().map(|s| ts(s, defs, indent)).collect();
            // Keywords beside the combination narrow it further: kept as an intersection.
            let rest: serde_json::Map<String, Value> = o
                .iter()
                .filter(|(key, _)| {
                    *key != k
                        && !matches!(
                            key.as_str(),
                            "title"
                                | "description"
                                | "examples"
                                | "$defs"
                                | "$schema"
                                | "$id"
                                | "$comment"
                                | "default"
                        )
                })
                .map(|(a, b)| (a.clone(), b.clone()))
                .collect();
            let combined = union(std::mem::take(&mut parts), glue);
            return if rest.is_empty() {
                combined
            } else {
                format!("({combined}) & {}", ts(&Value::Object(rest), defs, indent))
            };
        }
    }
    let types: Vec<&str> = match o.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ if o.contains_key("properties") => vec!["object"],
        _ if o.contains_key("items") || o.contains_key("prefixItems") => vec!["array"],
        _ => return "unknown".into(),
    };
    union(
        types
            .into_iter()
            .map(|t| match t {
                "string" => "string".into(),
                "number" | "integer" => "number".into(),
                "boolean" => "boolean".into(),
                "null" => "null".into(),
                "array" => array(o, defs, indent),
                "object" => object(o, defs, indent),
                _ => "unknown".into(),
            })
            .collect(),
        " | ",
    )
}

fn array(o: &serde_json::Map<String, Value>, defs: &str, indent: usize) -> String {
    let items = o.get("items").map(|s| ts(s, defs, indent));
    match o.get("prefixItems") {
        Some(Value::Array(prefix)) => {
            let mut parts: Vec<String> = prefix.iter().map(|s| ts(s, defs, indent)).collect();
            match items {
                Some(rest) if rest != "never" => parts.push(format!("...{rest}[]")),
                Some(_) => {}
                None => parts.push("...unknown[]".into()),
            }
            format!("[{}]", parts.join(", "))
        }
        _ => match items {
            Some(t) if t.contains(' ') => format!("Array<{t}>"),
            Some(t) => format!("{t}[]"),
            None => "unknown[]".into(),
        },
    }
}

fn object(o: &serde_json::Map<String, Value>, defs: &str, indent: usize) -> String {
    let pad = "  ".repeat(indent + 1);
    let required: Vec<&str> = o
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields = Vec::new();
    if let Some(Value::Object(props)) = o.get("properties") {
        let sorted: BTreeMap<&String, &Value> = props.iter().collect();
        for (name, s) in sorted {
            let optional = if required.contains(&name.as_str()) {
                ""
            } else {
                "?"
            };
            let doc = s
                .get("description")
                .and_then(Value::as_str)
                .map(|d| format!("{pad}/** {} */\n", d.replace("*/", "* /")))
                .unwrap_or_default();
            fields.push(format!(
                "{doc}{pad}{}{optional}: {};",
                key(name),
                ts(s, defs, indent + 1)
            ));
        }
    }
    let extra: Vec<String> = [o.get("additionalProperties"), None]
        .into_iter()
        .flatten()
        .filter(|s| s.is_object())
        .map(|s| ts(s, defs, indent + 1))
        .chain(
            o.get("patternProperties")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|p| p.values().map(|s| ts(s, defs, indent + 1))),
        )
        .collect();
    if !extra.is_empty()
        || o.get("additionalProperties") == Some(&Value::Bool(true)) && fields.is_empty()
    {
        // TypeScript wants every declared field to fit the index signature's type.
        let t = if extra.is_empty() || !fields.is_empty() {
            "unknown".into()
        } else {
            union(extra, " | ")
        };
        fields.push(format!("{pad}[key: string]: {t};"));
    }
    if fields.is_empty() {
        return "Record<string, never>".into();
    }
    format!("{{\n{}\n{}}}", fields.join("\n"), "  ".repeat(indent))
}

/// The module: a header, `Events`, `Actions`, and one type per message and definition.
pub fn module(
    source: &str,
    events: &BTreeMap<String, Value>,
    actions: &BTreeMap<String, Value>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// Generated by `wsctl types` from {source}. Do not edit: change the catalogue and run\n// `wsctl types` again. Use: useWebSocket<Events, Actions>(url) from @wsctl/react.\n"
    );
    let section = |title: &str, prefix: &str, all: &BTreeMap<String, Value>, out: &mut String| {
        let _ = writeln!(out, "/** {title} */");
        let _ = writeln!(out, "export interface {prefix}s {{");
        for name in all.keys() {
            let _ = writeln!(out, "  {}: {prefix}{};", key(name), pascal(name));
        }
        let _ = writeln!(out, "}}\n");
        for (name, schema) in all {
            let ty = format!("{prefix}{}", pascal(name));
            if let Some(d) = schema.get("description").and_then(Value::as_str) {
                let _ = writeln!(out, "/** {} */", d.replace("*/", "* /"));
            }
            let _ = writeln!(out, "export type {ty} = {};\n", ts(schema, &ty, 0));
            if let Some(Value::Object(defs)) = schema.get("$defs") {
                let sorted: BTreeMap<&String, &Value> = defs.iter().collect();
                for (d, s) in sorted {
                    let _ = writeln!(out, "export type {ty}_{} = {};\n", pascal(d), ts(s, &ty, 0));
                }
            }
        }
    };
    section(
        "Each server-to-client event type, to the type of its `data`.",
        "Event",
        events,
        &mut out,
    );
    section(
        "Each client action, to the fields its message carries besides `action`.",
        "Action",
        actions,
        &mut out,
    );
    out.trim_end().to_owned() + "\n"
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn schemas_become_the_types_a_client_reads() {
        let events = BTreeMap::from([(
            "claim_submitted".to_owned(),
            json!({
                "description": "A claim was filed.",
                "type": "object",
                "required": ["claimId", "amount"],
                "properties": {
                    "claimId": {"type": "string", "description": "The claim's id."},
                    "amount": {"type": "number"},
                    "status": {"enum": ["new", "review"]},
                    "tags": {"type": "array", "items": {"type": ["string", "null"]}},
                    "pair": {"prefixItems": [{"type": "string"}, {"type": "integer"}], "items": false},
                    "owner": {"$ref": "#/$defs/person"},
                    "extra-field": {"const": 1}
                },
                "$defs": {"person": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}, "additionalProperties": {"type": "string"}}}
            }),
        )]);
        let actions = BTreeMap::from([(
            "sendmessage".to_owned(),
            json!({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}),
        )]);
        let m = module("catalogue/", &events, &actions);
        let want = r#"// Generated by `wsctl types` from catalogue/. Do not edit: change the catalogue and run
// `wsctl types` again. Use: useWebSocket<Events, Actions>(url) from @wsctl/react.

/** Each server-to-client event type, to the type of its `data`. */
export interface Events {
  claim_submitted: EventClaimSubmitted;
}

/** A claim was filed. */
export type EventClaimSubmitted = {
  amount: number;
  /** The claim's id. */
  claimId: string;
  "extra-field"?: 1;
  owner?: EventClaimSubmitted_Person;
  pair?: [string, number];
  status?: "new" | "review";
  tags?: Array<string | null>;
};

export type EventClaimSubmitted_Person = {
  id: number;
  [key: string]: unknown;
};

/** Each client action, to the fields its message carries besides `action`. */
export interface Actions {
  sendmessage: ActionSendmessage;
}

export type ActionSendmessage = {
  text: string;
};
"#;
        assert_eq!(m, want);
        assert_eq!(
            module("catalogue/", &events, &actions),
            m,
            "the same bytes every time"
        );
    }
}
