//! One module per AWS resource, all with the same shape:
//! `observe` (read; not-found is `None`), `diff` (pure: what would change), `apply` (make the
//! changes `diff` found, and only those), `delete` (not-found is success).

pub mod account;
pub mod alarm;
pub mod api;
pub mod dashboard;
pub mod domain;
pub mod function;
pub mod grant;
pub mod logs;
pub mod role;
pub mod secret;
pub mod table;

use std::collections::BTreeMap;
use std::fmt::Display;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::Serialize;
use serde_json::Value;

/// One field that differs between what exists and what the config asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub field: String,
    pub from: String,
    pub to: String,
}

impl Change {
    pub fn new(field: impl Into<String>, from: impl Display, to: impl Display) -> Change {
        Change {
            field: field.into(),
            from: from.to_string(),
            to: to.to_string(),
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.field, self.from, self.to)
    }
}

/// What `up` will do (or did) to one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", content = "changes", rename_all = "snake_case")]
pub enum Action {
    Create,
    Update(Vec<Change>),
    /// Exists but the config no longer asks for it (an optional resource turned off).
    Delete,
    NoChange,
}

impl Action {
    pub fn from_changes(changes: Vec<Change>) -> Action {
        if changes.is_empty() {
            Action::NoChange
        } else {
            Action::Update(changes)
        }
    }

    pub fn is_change(&self) -> bool {
        !matches!(self, Action::NoChange)
    }

    pub fn changes(&self) -> &[Change] {
        match self {
            Action::Update(c) => c,
            _ => &[],
        }
    }

    pub fn has(&self, field: &str) -> bool {
        self.changes()
            .iter()
            .any(|c| c.field == field || c.field.starts_with(&format!("{field}.")))
    }
}

/// Placeholder for values only known once an earlier resource exists.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// Tags to add or change so that `actual` carries every `desired` tag (extra tags are kept).
pub fn tag_changes(
    actual: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> Vec<Change> {
    desired
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .map(|(k, v)| {
            Change::new(
                format!("tags.{k}"),
                actual
                    .get(k)
                    .map_or("(none)".to_owned(), |a| format!("{a:?}")),
                format!("{v:?}"),
            )
        })
        .collect()
}

/// The desired tags that `tag_changes` found missing or different.
pub fn tags_to_set(
    actual: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    desired
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Wraps an SDK error with what was being done, keeping the service's error code and message
/// (the SDK's own Display says only "service error").
pub trait AwsContext<T> {
    fn aws(self, what: impl Display) -> anyhow::Result<T>;
}

impl<T, E> AwsContext<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn aws(self, what: impl Display) -> anyhow::Result<T> {
        self.map_err(|e| {
            anyhow::Error::new(AwsError {
                what: what.to_string(),
                detail: describe_sdk_error(&e),
                retryable: is_transient(&e),
            })
        })
    }
}

/// An AWS call that failed: what was being done and what AWS said.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct AwsError {
    pub what: String,
    pub detail: String,
    /// Whether observing again and re-applying may succeed: throttling, 5xx, a lost
    /// connection or timeout (the SDK's own retries ran out), or a conflict with a change that
    /// landed although its answer was lost.
    pub retryable: bool,
}

/// Error codes by which AWS says it did not perform a call (throttled, or unavailable).
const REFUSAL_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// Further error codes after which a fresh observe-and-apply can converge: a failure that may
/// have done some of the work, or a conflict with work whose answer was lost.
const OTHER_TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "InternalFailure",
    "InternalServerError",
    "ConflictException",
    "ResourceConflictException",
    "ResourceInUseException",
    "ResourceAlreadyExistsException",
    "EntityAlreadyExists",
    "ConcurrentModification",
    "ConcurrentModificationException",
    "OperationAbortedException",
];

/// Classifies by the error's kind and AWS error code (never by message text). Every
/// [`refused`] call is transient.
pub fn is_transient<E>(e: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => {
            refused(e)
                || se.raw().status().as_u16() >= 500
                || se
                    .err()
                    .code()
                    .is_some_and(|c| OTHER_TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    }
}

/// Whether AWS answered that it did not perform the call (throttled, or unavailable), so that
/// sending it again cannot do the work twice.
pub fn refused<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            status == 429
                || status == 503
                || se.err().code().is_some_and(|c| REFUSAL_CODES.contains(&c))
        }
        _ => false,
    }
}

/// Sends a call that is not idempotent (a create that a blind retry could repeat), with the
/// SDK's retries turned off by the caller. Refusals ([`refused`]) are retried here with
/// backoff and jitter; an ambiguous failure (a lost connection, a timeout, a 500: the call may
/// have taken effect) is returned at once, for the engine to observe again.
pub async fn send_unrepeated<T, E, F, Fut>(what: impl Display, mut call: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut delay = std::time::Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(e) if refused(&e) && attempt < 8 => {
                let jittered = delay.mul_f64(rand::random_range(0.5..1.0));
                tokio::time::sleep(jittered).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
                attempt += 1;
            }
            result => return result.aws(what),
        }
    }
}

/// Whether an error (anywhere in its chain) is an AWS failure worth another convergence pass.
pub fn is_retryable(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<AwsError>().is_some_and(|a| a.retryable))
}

/// `Code: message (HTTP status)` for service errors; the transport problem otherwise.
pub fn describe_sdk_error<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let status = se.raw().status().as_u16();
            match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
                (Some(code), None) => format!("{code} (HTTP {status})"),
                _ => {
                    let body = se
                        .raw()
                        .body()
                        .bytes()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    let body: String = body.chars().filter(|c| !c.is_control()).take(200).collect();
                    format!("HTTP {status} without an AWS error code: {body}")
                }
            }
        }
        other => DisplayErrorContext(other).to_string(),
    }
}

/// Wraps a waiter's error with what was awaited.
pub fn waited<T, E: std::error::Error + Send + Sync + 'static>(
    r: Result<T, E>,
    what: impl Display,
) -> anyhow::Result<T> {
    r.map_err(|e| anyhow::anyhow!("{what}: {}", DisplayErrorContext(&e)))
}

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
}
