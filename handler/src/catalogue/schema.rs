//! JSON Schema (2020-12) for the catalogue's messages: compiled once, then checked against
//! each message. A subset, chosen for what event payloads use and for the size of the Lambda
//! binary (the full validators weigh a megabyte): `type`, `properties`, `required`,
//! `additionalProperties`, `patternProperties`, `items`, `prefixItems`, `enum`, `const`,
//! `minLength`, `maxLength`, `pattern`, `minimum`, `maximum`, `exclusiveMinimum`,
//! `exclusiveMaximum`, `multipleOf`, `minItems`, `maxItems`, `uniqueItems`, `minProperties`,
//! `maxProperties`, `allOf`, `anyOf`, `oneOf`, `not`, `$ref` to the file's own `$defs`
//! (`#/$defs/NAME`), and `true` / `false`; annotations (`title`, `description`, `examples`,
//! `default`, `format`, `deprecated`, `readOnly`, `writeOnly`, `$comment`, `$schema`, `$id`)
//! are kept for documents and never checked (`format` is an annotation in 2020-12). Any other
//! keyword is refused when the schema compiles, naming it, so nothing is silently unchecked.
//! Patterns are regular expressions as the `regex-lite` crate reads them (no Unicode classes).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Why a schema does not compile: where in it, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct SchemaError {
    /// JSON pointer into the schema (`""` for its root).
    pub pointer: String,
    pub message: String,
}

/// Why a value does not match: where in the value, and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {rule}")]
pub struct Violation {
    /// JSON pointer into the value (`""` for the whole value).
    pub pointer: String,
    pub rule: String,
}

const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$defs",
    "title",
    "description",
    "examples",
    "default",
    "format",
    "deprecated",
    "readOnly",
    "writeOnly",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Null,
    Boolean,
    Object,
    Array,
    Number,
    Integer,
    String,
}

impl Type {
    fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "null" => Type::Null,
            "boolean" => Type::Boolean,
            "object" => Type::Object,
            "array" => Type::Array,
            "number" => Type::Number,
            "integer" => Type::Integer,
            "string" => Type::String,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Type::Null => "null",
            Type::Boolean => "boolean",
            Type::Object => "object",
            Type::Array => "array",
            Type::Number => "number",
            Type::Integer => "integer",
            Type::String => "string",
        }
    }

    fn holds(self, v: &Value) -> bool {
        match (self, v) {
            (Type::Null, Value::Null) | (Type::Boolean, Value::Bool(_)) => true,
            (Type::Object, Value::Object(_)) | (Type::Array, Value::Array(_)) => true,
            (Type::String, Value::String(_)) | (Type::Number, Value::Number(_)) => true,
            (Type::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        }
    }
}

/// A compiled schema.
#[derive(Debug, Clone)]
pub struct Schema {
    root: Node,
    defs: BTreeMap<String, Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Bool(bool),
    Rules(Box<Rules>),
}

#[derive(Debug, Clone, Default)]
struct Rules {
    types: Option<Vec<Type>>,
    properties: BTreeMap<String, Node>,
    pattern_properties: Vec<(regex_lite::Regex, Node)>,
    additional: Option<Node>,
    required: Vec<String>,
    items: Option<Node>,
    prefix_items: Vec<Node>,
    enumeration: Option<Vec<Value>>,
    constant: Option<Value>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    pattern: Option<(String, regex_lite::Regex)>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    multiple_of: Option<f64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    all_of: Vec<Node>,
    any_of: Vec<Node>,
    one_of: Vec<Node>,
    not: Option<Node>,
    reference: Option<String>,
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

struct Compiler<'a> {
    defs: &'a Map<String, Value>,
}

impl Compiler<'_> {
    fn fail(at: &str, message: impl Into<String>) -> SchemaError {
        SchemaError {
            pointer: at.to_owned(),
            message: message.into(),
        }
    }

    fn node(&self, v: &Value, at: &str) -> Result<Node, SchemaError> {
        let o = match v {
            Value::Bool(b) => return Ok(Node::Bool(*b)),
            Value::Object(o) => o,
            _ => return Err(Self::fail(at, "a schema is an object or a boolean")),
        };
        let mut r = Rules::default();
        let count = |k: &str, v: &Value| -> Result<u64, SchemaError> {
            v.as_u64().ok_or_else(|| {
                Self::fail(
                    &format!("{at}/{k}"),
                    format!("{k} is a whole number of 0 or more"),
                )
            })
        };
        let number = |k: &str, v: &Value| -> Result<f64, SchemaError> {
            v.as_f64()
                .ok_or_else(|| Self::fail(&format!("{at}/{k}"), format!("{k} is a number")))
        };
        let list = |k: &str, v: &Value| -> Result<Vec<Node>, SchemaError> {
            let items = v.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                Self::fail(
                    &format!("{at}/{k}"),
                    format!("{k} is a non-empty array of schemas"),
                )
            })?;
            items
                .iter()
                .enumerate()
                .map(|(i, s)| self.node(s, &format!("{at}/{k}/{i}")))
                .collect()
        };
        for (k, val) in o {
            let here = format!("{at}/{}", escape(k));
            match k.as_str() {
                "type" => {
                    let names: Vec<&Value> = match val {
                        Value::Array(a) => a.iter().collect(),
                        one => vec![one],
                    };
                    let types = names
                        .iter()
                        .map(|n| n.as_str().and_then(Type::parse))
                        .collect::<Option<Vec<_>>>()
                        .filter(|t| !t.is_empty())
                        .filter(|t| t.iter().enumerate().all(|(i, x)| !t[..i].contains(x)))
                        .ok_or_else(|| Self::fail(&here, "type is one of null, boolean, object, array, number, integer, string, or an array of them, each once"))?;
                    r.types = Some(types);
                }
                "properties" => {
                    let props = val
                        .as_object()
                        .ok_or_else(|| Self::fail(&here, "properties is an object of schemas"))?;
                    for (name, s) in props {
                        r.properties
                            .insert(name.clone(), self.node(s, &format!("{here}/{}", escape(name)))?);
                    }
                }
                "patternProperties" => {
                    let props = val
                        .as_object()
                        .ok_or_else(|| Self::fail(&here, "patternProperties is an object of schemas"))?;
                    for (pattern, s) in props {
                        let at = format!("{here}/{}", escape(pattern));
                        let re = regex_lite::Regex::new(pattern)
                            .map_err(|e| Self::fail(&at, format!("{pattern:?} is not a regular expression: {e}")))?;
                        r.pattern_properties.push((re, self.node(s, &at)?));
                    }
                }
                "additionalProperties" => r.additional = Some(self.node(val, &here)?),
                "required" => {
                    r.required = val
                        .as_array()
                        .and_then(|a| a.iter().map(|n| n.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
                        .filter(|names| names.iter().enumerate().all(|(i, n)| !names[..i].contains(n)))
                        .ok_or_else(|| Self::fail(&here, "required is an array of property names, each once"))?;
                }
                "items" => r.items = Some(self.node(val, &here)?),
                "prefixItems" => r.prefix_items = list(k, val)?,
                "enum" => {
                    r.enumeration = Some(
                        val.as_array()
                            .cloned()
                            .ok_or_else(|| Self::fail(&here, "enum is an array of values"))?,
                    )
                }
                "const" => r.constant = Some(val.clone()),
                "minLength" => r.min_length = Some(count(k, val)?),
                "maxLength" => r.max_length = Some(count(k, val)?),
                "pattern" => {
                    let p = val
                        .as_str()
                        .ok_or_else(|| Self::fail(&here, "pattern is a string"))?;
                    let re = regex_lite::Regex::new(p)
                        .map_err(|e| Self::fail(&here, format!("{p:?} is not a regular expression: {e}")))?;
                    r.pattern = Some((p.to_owned(), re));
                }
                "minimum" => r.minimum = Some(number(k, val)?),
                "maximum" => r.maximum = Some(number(k, val)?),
                "exclusiveMinimum" => r.exclusive_minimum = Some(number(k, val)?),
                "exclusiveMaximum" => r.exclusive_maximum = Some(number(k, val)?),
                "multipleOf" => {
                    let m = number(k, val)?;
                    if m <= 0.0 {
                        return Err(Self::fail(&here, "multipleOf is greater than 0"));
                    }
                    r.multiple_of = Some(m);
                }
                "minItems" => r.min_items = Some(count(k, val)?),
                "maxItems" => r.max_items = Some(count(k, val)?),
                "uniqueItems" => {
                    r.unique_items = val
                        .as_bool()
                        .ok_or_else(|| Self::fail(&here, "uniqueItems is a boolean"))?
                }
                "minProperties" => r.min_properties = Some(count(k, val)?),
                "maxProperties" => r.max_properties = Some(count(k, val)?),
                "allOf" => r.all_of = list(k, val)?,
                "anyOf" => r.any_of = list(k, val)?,
                "oneOf" => r.one_of = list(k, val)?,
                "not" => r.not = Some(self.node(val, &here)?),
                "$ref" => {
                    let name = val
                        .as_str()
                        .and_then(|s| s.strip_prefix("#/$defs/"))
                        .filter(|n| !n.is_empty() && !n.contains('/'))
                        .ok_or_else(|| Self::fail(&here, "$ref names one of the file's own definitions: \"#/$defs/NAME\""))?;
                    if !self.defs.contains_key(name) {
                        return Err(Self::fail(&here, format!("no definition {name:?} in $defs")));
                    }
                    r.reference = Some(name.to_owned());
                }
                k if ANNOTATIONS.contains(&k) => {}
                other => {
                    return Err(Self::fail(
                        &here,
                        format!("{other} is not a keyword wsctl checks; the catalogue's schemas use type, properties, required, additionalProperties, patternProperties, items, prefixItems, enum, const, minLength, maxLength, pattern, minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, minItems, maxItems, uniqueItems, minProperties, maxProperties, allOf, anyOf, oneOf, not, $ref to #/$defs, and annotations"),
                    ))
                }
            }
        }
        Ok(Node::Rules(Box::new(r)))
    }
}

impl Schema {
    /// Compiles a schema; `$defs` at its root are what `$ref` may name.
    pub fn compile(v: &Value) -> Result<Schema, SchemaError> {
        let empty = Map::new();
        let defs = match v.get("$defs") {
            None => &empty,
            Some(Value::Object(d)) => d,
            Some(_) => return Err(Compiler::fail("/$defs", "$defs is an object of schemas")),
        };
        let c = Compiler { defs };
        let mut compiled = BTreeMap::new();
        for (name, s) in defs {
            compiled.insert(
                name.clone(),
                c.node(s, &format!("/$defs/{}", escape(name)))?,
            );
        }
        Ok(Schema {
            root: c.node(v, "")?,
            defs: compiled,
        })
    }

    /// The first rule `v` breaks, if any.
    pub fn check(&self, v: &Value) -> Result<(), Violation> {
        self.node(&self.root, v, "", 0)
    }

    fn node(&self, n: &Node, v: &Value, at: &str, depth: u32) -> Result<(), Violation> {
        let fail = |rule: String| {
            Err(Violation {
                pointer: at.to_owned(),
                rule,
            })
        };
        // $ref cycles end here instead of overflowing the stack.
        if depth > 64 {
            return fail("nested deeper than 64 schemas ($ref cycle?)".into());
        }
        let r = match n {
            Node::Bool(true) => return Ok(()),
            Node::Bool(false) => return fail("no value is allowed here".into()),
            Node::Rules(r) => r,
        };
        if let Some(name) = &r.reference {
            if let Some(def) = self.defs.get(name) {
                self.node(def, v, at, depth + 1)?;
            }
        }
        if let Some(types) = &r.types {
            if !types.iter().any(|t| t.holds(v)) {
                let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
                return fail(format!("must be {}", names.join(" or ")));
            }
        }
        if let Some(values) = &r.enumeration {
            if !values.iter().any(|e| same(e, v)) {
                return fail(format!("must be one of {}", Value::Array(values.clone())));
            }
        }
        if let Some(c) = &r.constant {
            if !same(c, v) {
                return fail(format!("must be {c}"));
            }
        }
        match v {
            Value::String(s) => {
                let len = s.chars().count() as u64;
                if let Some(rule) = outside(len, r.min_length, r.max_length, "be", "characters") {
                    return fail(rule);
                }
                if let Some((p, re)) = &r.pattern {
                    if !re.is_match(s) {
                        return fail(format!("must match the pattern {p:?}"));
                    }
                }
            }
            Value::Number(num) => {
                let x = num.as_f64().unwrap_or(f64::NAN);
                if let Some(m) = r.minimum.filter(|m| x < *m) {
                    return fail(format!("must be at least {m}"));
                }
                if let Some(m) = r.maximum.filter(|m| x > *m) {
                    return fail(format!("must be at most {m}"));
                }
                if let Some(m) = r.exclusive_minimum.filter(|m| x <= *m) {
                    return fail(format!("must be greater than {m}"));
                }
                if let Some(m) = r.exclusive_maximum.filter(|m| x >= *m) {
                    return fail(format!("must be less than {m}"));
                }
                if let Some(m) = r.multiple_of {
                    let q = x / m;
                    if !q.is_finite() || (q - q.round()).abs() > 1e-9 {
                        return fail(format!("must be a multiple of {m}"));
                    }
                }
            }
            Value::Array(items) => {
                let len = items.len() as u64;
                if let Some(rule) = outside(len, r.min_items, r.max_items, "have", "items") {
                    return fail(rule);
                }
                if r.unique_items {
                    for (i, a) in items.iter().enumerate() {
                        if items[..i].iter().any(|b| same(a, b)) {
                            return fail(format!("item {i} repeats an earlier one (uniqueItems)"));
                        }
                    }
                }
                for (i, item) in items.iter().enumerate() {
                    let schema = r.prefix_items.get(i).or(if i >= r.prefix_items.len() {
                        r.items.as_ref()
                    } else {
                        None
                    });
                    if let Some(s) = schema {
                        self.node(s, item, &format!("{at}/{i}"), depth + 1)?;
                    }
                }
            }
            Value::Object(o) => {
                let len = o.len() as u64;
                let (min, max) = (r.min_properties, r.max_properties);
                if let Some(rule) = outside(len, min, max, "have", "properties") {
                    return fail(rule);
                }
                for name in &r.required {
                    if !o.contains_key(name) {
                        return fail(format!("{name:?} is required"));
                    }
                }
                for (k, item) in o {
                    let here = format!("{at}/{}", escape(k));
                    let mut matched = false;
                    if let Some(s) = r.properties.get(k) {
                        matched = true;
                        self.node(s, item, &here, depth + 1)?;
                    }
                    for (re, s) in &r.pattern_properties {
                        if re.is_match(k) {
                            matched = true;
                            self.node(s, item, &here, depth + 1)?;
                        }
                    }
                    if !matched {
                        match &r.additional {
                            Some(Node::Bool(false)) => {
                                return Err(Violation {
                                    pointer: here,
                                    rule: format!("{k:?} is not a property this message has (additionalProperties is false)"),
                                })
                            }
                            Some(s) => self.node(s, item, &here, depth + 1)?,
                            None => {}
                        }
                    }
                }
            }
            _ => {}
        }
        for s in &r.all_of {
            self.node(s, v, at, depth + 1)?;
        }
        if !r.any_of.is_empty()
            && !r
                .any_of
                .iter()
                .any(|s| self.node(s, v, at, depth + 1).is_ok())
        {
            return fail("must match at least one schema of anyOf".into());
        }
        if !r.one_of.is_empty() {
            let n = r
                .one_of
                .iter()
                .filter(|s| self.node(s, v, at, depth + 1).is_ok())
                .count();
            if n != 1 {
                return fail(format!(
                    "must match exactly one schema of oneOf (matches {n})"
                ));
            }
        }
        if let Some(s) = &r.not {
            if self.node(s, v, at, depth + 1).is_ok() {
                return fail("must not match the schema of not".into());
            }
        }
        Ok(())
    }
}

/// The count bound `len` breaks, if any, as the rule: "must {verb} at least/at most N {noun}"
/// (minLength/maxLength, minItems/maxItems, minProperties/maxProperties).
fn outside(len: u64, min: Option<u64>, max: Option<u64>, verb: &str, noun: &str) -> Option<String> {
    if let Some(m) = min.filter(|m| len < *m) {
        return Some(format!("must {verb} at least {m} {noun}"));
    }
    max.filter(|m| len > *m)
        .map(|m| format!("must {verb} at most {m} {noun}"))
}

/// JSON equality, with 1 and 1.0 the same number (as JSON Schema says).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| same(p, q)))
        }
        _ => a == b,
    }
}
