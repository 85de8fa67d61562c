//! A client's handshake, as API Gateway runs it: with `[auth]`, the `$connect` authorizer first
//! (a refused token is 401 and the function's `$connect` never runs; keys that cannot be read
//! are 500), then `$connect` with the authorizer's context; a non-2xx answer rejects the
//! handshake, and the 101 carries a subprotocol only when `$connect`'s answer names one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use handler::authorizer::{AuthorizeRequest, Caller};
use handler::{HandlerError, Outcome};
use serde_json::Value;

use super::events::{connection_id, now_ms, parse_query, ConnInfo};
use super::socket::{Outlet, Upgrade};
use super::{internal_error, lock, Conn, Gateway};

pub(super) async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    if *gw.shutdown.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let started = Instant::now();
    let id = connection_id();
    let connected_at = now_ms();
    let source_ip = peer.ip().to_string();
    let user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let query = parse_query(query.as_deref());
    let caller = match authorize(&gw, &headers, &query).await {
        Ok(caller) => caller,
        Err(refused) => {
            gw.log("$connect", &id, refused.status().as_u16(), started);
            return refused;
        }
    };
    let info = ConnInfo {
        connected_at,
        source_ip: source_ip.clone(),
        user_agent: user_agent.clone(),
        caller,
    };
    let event = gw.events.event(
        "CONNECT",
        "$connect",
        &id,
        &info,
        None,
        Some(&query),
        Some(&headers),
    );
    let protocol = match gw.invoke(event).await {
        Ok(Outcome::Http {
            status, headers, ..
        }) if (200..300).contains(&status) => {
            gw.log("$connect", &id, status, started);
            headers
                .into_iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
                .map(|(_, v)| v)
        }
        Ok(Outcome::Http { status, body, .. }) => {
            gw.log("$connect", &id, status, started);
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (code, body).into_response();
        }
        Ok(_) => {
            gw.log("$connect", &id, 500, started);
            return internal_error();
        }
        Err(e) => {
            gw.log("$connect", &id, format!("500 ({e})"), started);
            return internal_error();
        }
    };
    let last_active = Arc::new(AtomicU64::new(connected_at));
    // The connection takes pushes from now on, before the client has read the 101.
    let outlet = Outlet::new();
    gw.handler
        .pusher()
        .attach(&id, Arc::new(gw.lanes.route(outlet.clone())));
    lock(&gw.conns).insert(
        id.clone(),
        Conn {
            connected_at_ms: connected_at,
            source_ip,
            user_agent,
            last_active_ms: last_active.clone(),
            outlet: outlet.clone(),
        },
    );
    gw.open.fetch_add(1, Ordering::SeqCst);
    let info = Arc::new(info);
    let on_fail = {
        let gw = gw.clone();
        let id = id.clone();
        let info = info.clone();
        move |_e: std::io::Error| {
            tokio::spawn(async move { gw.finish(&id, &info, 1006, "Upgrade failed").await });
        }
    };
    let mut response = ws.accept(
        move |stream, read_ahead| async move {
            gw.serve(stream, read_ahead, outlet, id, info, last_active)
                .await
        },
        on_fail,
    );
    if let Some(value) = protocol.and_then(|p| axum::http::HeaderValue::from_str(&p).ok()) {
        response
            .headers_mut()
            .insert(axum::http::header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    response
}

/// The `$connect` authorizer, with `[auth]`: who is connecting (None without `[auth]`), or the
/// response that refuses the handshake (401 `{"message":"Unauthorized"}` for a refused token,
/// as API Gateway answers; 500 when the keys cannot be read).
async fn authorize(
    gw: &Gateway,
    headers: &HeaderMap,
    query: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<Option<Caller>, Response> {
    if gw.opts.auth.is_none() {
        return Ok(None);
    }
    let request = AuthorizeRequest {
        method_arn: format!(
            "arn:aws:execute-api:local:000000000000:local/{}/$connect",
            gw.events.stage
        ),
        headers: headers
            .iter()
            .filter_map(|(k, v)| {
                Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned()))
            })
            .collect(),
        query: query
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.last()?.clone())))
            .collect(),
    };
    match gw.handler.authorize(&request).await {
        Ok(answer) => {
            let mut fields: std::collections::HashMap<String, Value> = answer
                .context
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            fields.insert("principalId".into(), Value::String(answer.principal_id));
            Ok(Caller::from_context(&fields))
        }
        Err(HandlerError::Unauthorized(reason)) => {
            if gw.opts.print_events {
                gw.logger.line(format!("authorizer: refused ({reason})"));
            }
            Err((
                StatusCode::UNAUTHORIZED,
                [("Content-Type", "application/json")],
                r#"{"message":"Unauthorized"}"#,
            )
                .into_response())
        }
        Err(e) => {
            gw.logger
                .line(format!("authorizer: {}", handler::error_chain(&e)));
            Err(internal_error())
        }
    }
}
