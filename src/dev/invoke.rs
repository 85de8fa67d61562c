//! Lambda's invoke API on `wsctl dev`: `POST /2015-03-31/functions/{name}/invocations`
//! (RequestResponse, Event, DryRun), running the bundled handler in process; and the function's
//! own asynchronous invocations of itself (a broadcast's workers and hand-overs, [`DevInvoker`]),
//! which run the same way as an `Event` invocation sent to that API.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use async_trait::async_trait;
use handler::fanout::{InvokeError, Invoker};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::Gateway;

/// Lambda's `Invoke`: the runbook's Step 6 (`lambda_client.invoke(...)`) with the Lambda
/// endpoint pointed here.
pub(super) async fn invoke_function(
    State(gw): State<Arc<Gateway>>,
    Path(_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                [("x-amzn-ErrorType", "InvalidRequestContentException"), ("Content-Type", "application/json")],
                json!({"Type": "User", "message": format!("Could not parse request body into json: {e}")}).to_string(),
            )
                .into_response()
        }
    };
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    let action = payload
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let run = run(gw, payload, format!("invoke:{action}"), started);
    match kind.as_str() {
        "DryRun" => StatusCode::NO_CONTENT.into_response(),
        "Event" => {
            tokio::spawn(run);
            StatusCode::ACCEPTED.into_response()
        }
        _ => match run.await {
            Ok(v) => ([("Content-Type", "application/json")], v.to_string()).into_response(),
            Err(e) => {
                let mut resp = (
                    [("Content-Type", "application/json")],
                    json!({"errorType": e.kind, "errorMessage": e.message}).to_string(),
                )
                    .into_response();
                resp.headers_mut().insert(
                    "X-Amz-Function-Error",
                    HeaderValue::from_static("Unhandled"),
                );
                resp
            }
        },
    }
}

/// A failed invocation: its kind (Lambda's `errorType`, as the bootstrap reports it) and
/// message.
#[derive(Debug)]
pub(super) struct Failure {
    pub kind: &'static str,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One invocation of the handler with a direct payload, logged as the gateway logs events.
async fn run(
    gw: Arc<Gateway>,
    payload: Value,
    label: String,
    started: Instant,
) -> Result<Value, Failure> {
    let result = match gw.invoke(payload).await {
        Ok(outcome) => Ok(serde_json::to_value(outcome).unwrap_or(Value::Null)),
        Err(e) => Err(e),
    };
    match &result {
        Ok(v) => gw.log(&label, "-", v.to_string(), started),
        Err(e) => gw.log(&label, "-", format!("error ({e})"), started),
    }
    result
}

/// The function invoking itself with `InvocationType=Event`, as the Lambda does through
/// Lambda's Invoke API: the invocation is queued (a task of its own, with the function's
/// timeout) and this returns at once.
#[derive(Default)]
pub(super) struct DevInvoker {
    gateway: OnceLock<Weak<Gateway>>,
}

impl DevInvoker {
    /// Set once the gateway that runs the invocations exists.
    pub(super) fn attach(&self, gateway: &Arc<Gateway>) {
        let _ = self.gateway.set(Arc::downgrade(gateway));
    }
}

#[async_trait]
impl Invoker for DevInvoker {
    async fn invoke_event(&self, payload: &Value) -> Result<(), InvokeError> {
        let gw = self
            .gateway
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| InvokeError {
                message: "wsctl dev is shutting down: no invocation can start".into(),
                retryable: false,
            })?;
        let action = payload
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let payload = payload.clone();
        tokio::spawn(async move {
            let _ = run(gw, payload, format!("invoke:{action}"), Instant::now()).await;
        });
        Ok(())
    }
}
