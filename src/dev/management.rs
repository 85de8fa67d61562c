//! The management API of `wsctl dev`: `POST|GET|DELETE /@connections/{id}` (also under the
//! stage path), answering as API Gateway does (410 GoneException for unknown ids, 413 for a
//! message over 128 KB, and, under the emulated account throttle, 429 LimitExceededException
//! `{"message":"Rate exceeded"}`, every answer after the emulated latency).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::events::iso;
use super::{lock, Gateway};

/// API Gateway's answer over the account throttle.
fn rate_exceeded() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            ("x-amzn-ErrorType", "LimitExceededException"),
            ("Content-Type", "application/json"),
        ],
        json!({"message": "Rate exceeded"}).to_string(),
    )
        .into_response()
}

/// The emulated throttle's verdict on a call, after its latency: `Some(429)` when refused.
async fn throttled(gw: &Gateway) -> Option<Response> {
    match &gw.opts.throttle {
        Some(t) if !t.pass().await => Some(rate_exceeded()),
        _ => None,
    }
}

fn gone(id: &str) -> Response {
    (
        StatusCode::GONE,
        [
            ("x-amzn-ErrorType", "GoneException"),
            ("Content-Type", "application/json"),
        ],
        json!({"message": format!("connection {id} is gone")}).to_string(),
    )
        .into_response()
}

pub(super) async fn post_connection(
    State(gw): State<Arc<Gateway>>,
    Path(params): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let id = params.get("id").cloned().unwrap_or_default();
    if let Some(refused) = throttled(&gw).await {
        return refused;
    }
    if body.len() > handler::MAX_MESSAGE_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [("x-amzn-ErrorType", "PayloadTooLargeException"), ("Content-Type", "application/json")],
            json!({"message": format!("{} bytes; the limit is {}", body.len(), handler::MAX_MESSAGE_BYTES)}).to_string(),
        )
            .into_response();
    }
    match gw.handler.pusher().send(&id, &body) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(_) => gone(&id),
    }
}

pub(super) async fn get_connection(
    State(gw): State<Arc<Gateway>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let id = params.get("id").cloned().unwrap_or_default();
    if let Some(refused) = throttled(&gw).await {
        return refused;
    }
    let conns = lock(&gw.conns);
    match conns.get(&id) {
        Some(c) => (
            [("Content-Type", "application/json")],
            json!({
                "connectedAt": iso(c.connected_at_ms),
                "identity": {"sourceIp": c.source_ip, "userAgent": c.user_agent},
                "lastActiveAt": iso(c.last_active_ms.load(Ordering::Relaxed)),
            })
            .to_string(),
        )
            .into_response(),
        None => gone(&id),
    }
}

pub(super) async fn delete_connection(
    State(gw): State<Arc<Gateway>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let id = params.get("id").cloned().unwrap_or_default();
    if let Some(refused) = throttled(&gw).await {
        return refused;
    }
    let outlet = lock(&gw.conns).get(&id).map(|c| c.outlet.clone());
    match outlet {
        Some(outlet) => {
            // The request stays set, so a close asked for between two loop turns is kept.
            outlet.request_close();
            StatusCode::NO_CONTENT.into_response()
        }
        _ => gone(&id),
    }
}
