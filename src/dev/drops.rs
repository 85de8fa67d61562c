//! Connections dropped the way the internet and API Gateway drop them, so a team can try its
//! app's reconnection locally: without a close frame (a network failure: the client sees
//! 1006), with API Gateway's 1001 "Going away" (its 2-hour cut, a deployment), or as its idle
//! cut. On demand (`POST /_dev/drop?mode=abrupt&connection=ID`, what `wsctl dev drop` calls)
//! and on a timer (`wsctl dev --drop-every 30s --drop-mode abrupt`). Not an AWS API: on a
//! deployed stage, `wsctl connections close` disconnects through `DELETE @connections`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::socket::Ending;
use super::{lock, Gateway};

/// Ends `connection` (every connection when None) as `how` says; returns how many.
pub(super) fn drop_now(gw: &Gateway, how: Ending, connection: Option<&str>) -> usize {
    let conns = lock(&gw.conns);
    let mut dropped = 0;
    for (id, c) in conns.iter() {
        if connection.is_none_or(|want| want == id) {
            c.outlet.end(how);
            dropped += 1;
        }
    }
    dropped
}

/// `POST /_dev/drop?mode=abrupt|going-away|idle[&connection=ID]`.
pub(super) async fn drop_connections(
    State(gw): State<Arc<Gateway>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let how = match Ending::parse_drop(params.get("mode").map_or("abrupt", String::as_str)) {
        Ok(how) => how,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, json!({"message": e}).to_string()).into_response()
        }
    };
    let connection = params.get("connection").map(String::as_str);
    let dropped = drop_now(&gw, how, connection);
    if let (Some(id), 0) = (connection, dropped) {
        return (
            StatusCode::GONE,
            json!({"message": format!("no connection {id}")}).to_string(),
        )
            .into_response();
    }
    gw.logger
        .line(format!("drop: {dropped} connection(s), {how:?}"));
    (
        [("Content-Type", "application/json")],
        json!({"dropped": dropped}).to_string(),
    )
        .into_response()
}

/// Drops every connection every `every`, until the gateway stops.
pub(super) fn drop_every(gw: Arc<Gateway>, every: Duration, how: Ending) {
    let mut shutdown = gw.shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let n = drop_now(&gw, how, None);
                    if n > 0 {
                        gw.logger.line(format!("drop: {n} connection(s), {how:?} (--drop-every)"));
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    });
}
