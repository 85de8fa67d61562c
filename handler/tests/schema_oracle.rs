//! The catalogue's schema checks against a full JSON Schema 2020-12 validator (the
//! `jsonschema` crate) as an oracle: for random schemas of the keywords wsctl supports and
//! random values, both say the same.

use handler::catalogue::Schema;
use proptest::prelude::*;
use serde_json::{json, Value};

fn leaf_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..6).prop_map(|n| json!(n)),
        prop::sample::select(vec![0.5f64, -1.5, 2.0, 3.25]).prop_map(|f| json!(f)),
        prop::sample::select(vec!["", "a", "ab", "abc", "C-1", "x y", "é"]).prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf_value().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec!["a", "b", "c", "x1"]).prop_map(str::to_owned),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn leaf_schema() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![
            "null", "boolean", "object", "array", "number", "integer", "string"
        ])
        .prop_map(|t| json!({"type": t})),
        prop::collection::btree_set(
            prop::sample::select(vec!["string", "integer", "null"]),
            1..3
        )
        .prop_map(|t| json!({"type": t.into_iter().collect::<Vec<_>>()})),
        (0u64..4).prop_map(|n| json!({"minLength": n})),
        (0u64..4).prop_map(|n| json!({"maxLength": n})),
        prop::sample::select(vec!["^a", "b$", "^C-[0-9]+$", "[xy]"])
            .prop_map(|p| json!({"pattern": p})),
        (-3i64..4).prop_map(|n| json!({"minimum": n})),
        (-3i64..4).prop_map(|n| json!({"maximum": n})),
        (-3i64..4).prop_map(|n| json!({"exclusiveMinimum": n})),
        (-3i64..4).prop_map(|n| json!({"exclusiveMaximum": n})),
        prop::sample::select(vec![1i64, 2, 3]).prop_map(|n| json!({"multipleOf": n})),
        (0u64..3).prop_map(|n| json!({"minItems": n})),
        (0u64..3).prop_map(|n| json!({"maxItems": n})),
        any::<bool>().prop_map(|b| json!({"uniqueItems": b})),
        (0u64..3).prop_map(|n| json!({"minProperties": n})),
        (0u64..3).prop_map(|n| json!({"maxProperties": n})),
        leaf_value().prop_map(|v| json!({"const": v})),
        prop::collection::vec(leaf_value(), 1..4).prop_map(|v| json!({"enum": v})),
        prop::collection::btree_set(
            prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned),
            0..3
        )
        .prop_map(|r| json!({"required": r.into_iter().collect::<Vec<_>>()})),
    ]
}

fn schema() -> impl Strategy<Value = Value> {
    leaf_schema().prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::btree_map(
                prop::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned),
                inner.clone(),
                1..3
            )
            .prop_map(|m| json!({"properties": m})),
            (inner.clone(), any::<bool>()).prop_map(|(s, extra)| {
                if extra {
                    json!({"properties": {"a": s}, "additionalProperties": false})
                } else {
                    json!({"additionalProperties": s})
                }
            }),
            inner.clone().prop_map(|s| json!({"items": s})),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| json!({"prefixItems": [a], "items": b})),
            inner
                .clone()
                .prop_map(|s| json!({"patternProperties": {"^x": s}})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|l| json!({"allOf": l})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|l| json!({"anyOf": l})),
            prop::collection::vec(inner.clone(), 1..3).prop_map(|l| json!({"oneOf": l})),
            inner.prop_map(|s| json!({"not": s})),
        ]
    })
}

/// A schema, sometimes with a root `$defs` entry that a part of it refers to.
fn document() -> impl Strategy<Value = Value> {
    (schema(), schema(), any::<bool>()).prop_map(|(s, d, with_ref)| match with_ref {
        true => {
            json!({"$defs": {"d": d}, "anyOf": [s, {"properties": {"a": {"$ref": "#/$defs/d"}}}]})
        }
        false => s,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_catalogues_checks_agree_with_a_full_validator(schema in document(), value in value()) {
        let ours = Schema::compile(&schema).expect("the generator writes supported schemas");
        let oracle = jsonschema::validator_for(&schema).expect("a valid schema");
        prop_assert_eq!(
            ours.check(&value).is_ok(),
            oracle.is_valid(&value),
            "schema {} value {}", schema, value
        );
    }
}
