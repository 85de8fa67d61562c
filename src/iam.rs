//! IAM policy documents as wsctl reads and compares them: decoded (IAM returns them
//! URL-encoded), in a canonical form, statement by statement, and whether one allows an action
//! on a resource (IAM's ArnLike wildcards).

use serde_json::Value;

/// IAM returns policy documents URL-encoded; this decodes and parses one.
pub fn decode_policy(doc: &str) -> Value {
    let decoded = percent_encoding::percent_decode_str(doc).decode_utf8_lossy();
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded.into_owned()))
}

/// A policy in a canonical form for comparison: `Statement` always a list, `Action` and
/// `Resource` always sorted lists, keys sorted (serde_json maps are ordered).
pub fn normalize_policy(policy: &Value) -> Value {
    let mut p = policy.clone();
    if let Some(obj) = p.as_object_mut() {
        if let Some(s) = obj.get_mut("Statement") {
            if !s.is_array() {
                *s = Value::Array(vec![s.take()]);
            }
            if let Some(list) = s.as_array_mut() {
                for st in list.iter_mut() {
                    if let Some(st) = st.as_object_mut() {
                        for key in ["Action", "Resource", "NotAction", "NotResource"] {
                            if let Some(v) = st.get_mut(key) {
                                let mut items: Vec<Value> = match v.take() {
                                    Value::Array(a) => a,
                                    other => vec![other],
                                };
                                items.sort_by_key(|a| a.to_string());
                                *v = Value::Array(items);
                            }
                        }
                    }
                }
            }
        }
    }
    p
}

/// The statements of a policy document as a list.
pub fn statements(policy: &Value) -> Vec<Value> {
    match policy.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
        None => vec![],
    }
}

/// A string or list-of-strings field of a statement, as a list.
pub fn string_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    }
}

/// IAM's ArnLike: `*` matches any run of characters, `?` one character.
pub fn arn_like(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

/// Whether an identity policy allows `action` on `resource` (Allow statements only; wsctl's
/// roles have no Deny).
pub fn allows(policy: &Value, action: &str, resource: &str) -> bool {
    statements(policy).iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && string_list(s.get("Action"))
                .iter()
                .any(|a| arn_like(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && string_list(s.get("Resource"))
                .iter()
                .any(|r| arn_like(r, resource))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_compare_in_canonical_form() {
        let a = json!({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":["b","a"]}});
        let b = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["a","b"]}]});
        assert_eq!(normalize_policy(&a), normalize_policy(&b));
    }

    #[test]
    fn iam_documents_are_url_decoded() {
        let v = decode_policy("%7B%22Version%22%3A%222012-10-17%22%7D");
        assert_eq!(v, json!({"Version":"2012-10-17"}));
    }

    #[test]
    fn arn_like_matches_iam_wildcards() {
        let probe = "arn:aws:execute-api:us-east-1:1:abc/prod/$connect";
        assert!(arn_like("arn:aws:execute-api:us-east-1:1:abc/*", probe));
        assert!(arn_like(
            "arn:aws:execute-api:us-east-1:1:abc/prod/*",
            probe
        ));
        assert!(!arn_like(
            "arn:aws:execute-api:us-east-1:1:abc/dev/*",
            probe
        ));
        assert!(!arn_like("arn:aws:execute-api:us-east-1:1:xyz/*", probe));
        assert!(arn_like("arn:aws:execute-api:*:*:*/*", probe));
    }

    #[test]
    fn allows_reads_allow_statements_with_wildcards() {
        let p = json!({"Statement":[{"Effect":"Allow","Action":["dynamodb:*"],"Resource":"arn:aws:dynamodb:*:*:table/t"}]});
        assert!(allows(
            &p,
            "dynamodb:PutItem",
            "arn:aws:dynamodb:us-east-1:1:table/t"
        ));
        assert!(!allows(
            &p,
            "dynamodb:PutItem",
            "arn:aws:dynamodb:us-east-1:1:table/u"
        ));
        assert!(!allows(
            &p,
            "lambda:InvokeFunction",
            "arn:aws:dynamodb:us-east-1:1:table/t"
        ));
    }
}
