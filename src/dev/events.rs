//! The JSON API Gateway sends integrations, built for `wsctl dev`: one event per connection
//! event or message, with the connection's context (its time, source, user agent, and the
//! `$connect` authorizer's context, which every later event of the connection carries, as on
//! AWS); and the ids, times and query strings it is made of.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use base64::Engine as _;
use handler::authorizer::Caller;
use serde_json::{json, Value};

/// What API Gateway knows of a connection, for its events.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub connected_at: u64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    /// Who it is, from the `$connect` authorizer (with `[auth]`).
    pub caller: Option<Caller>,
}

/// Builds events for one gateway: its stage, its domain, and a message counter.
pub struct Events {
    pub stage: String,
    pub domain: String,
    counter: AtomicU64,
}

impl Events {
    pub fn new(stage: String, domain: String) -> Events {
        Events {
            stage,
            domain,
            counter: AtomicU64::new(1),
        }
    }

    /// The JSON API Gateway sends the integration for one event of connection `id`.
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &self,
        event_type: &str,
        route_key: &str,
        id: &str,
        conn: &ConnInfo,
        body: Option<(String, bool)>,
        query: Option<&BTreeMap<String, Vec<String>>>,
        headers: Option<&HeaderMap>,
    ) -> Value {
        let now = now_ms();
        let (connected_at, source_ip, user_agent) = (
            conn.connected_at,
            conn.source_ip.as_str(),
            conn.user_agent.as_deref(),
        );
        let mut ctx = json!({
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id(),
            "requestTime": request_time(now),
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": connected_at,
            "requestTimeEpoch": now,
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
            "requestId": request_id(),
            "domainName": self.domain,
            "connectionId": id,
            "apiId": "local",
        });
        // The `$connect` authorizer's context, on every event of the connection, as on AWS.
        if let Some(caller) = &conn.caller {
            ctx["authorizer"] = caller.context();
        }
        if event_type == "MESSAGE" {
            ctx["messageId"] = json!(format!("{}=", self.counter.fetch_add(1, Ordering::Relaxed)));
        }
        let mut event = json!({"requestContext": ctx, "isBase64Encoded": false});
        if let Some(headers) = headers {
            let mut single = serde_json::Map::new();
            let mut multi = serde_json::Map::new();
            for (k, v) in headers {
                let v = v.to_str().unwrap_or_default().to_owned();
                let name = canonical_header(k.as_str());
                single.insert(name.clone(), json!(v));
                if let Some(list) = multi
                    .entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                {
                    list.push(json!(v));
                }
            }
            event["headers"] = Value::Object(single);
            event["multiValueHeaders"] = Value::Object(multi);
        }
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            event["queryStringParameters"] = json!(query
                .iter()
                .map(|(k, v)| (k.clone(), v.last().cloned().unwrap_or_default()))
                .collect::<BTreeMap<_, _>>());
            event["multiValueQueryStringParameters"] = json!(query);
        }
        if let Some((body, base64)) = body {
            event["body"] = json!(body);
            event["isBase64Encoded"] = json!(base64);
        }
        event
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub fn iso(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// API Gateway's `requestTime` format: `09/Feb/2024:18:23:28 +0000`.
fn request_time(ms: u64) -> String {
    let format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// An id shaped like API Gateway's: 16 characters of base64 ending in `=` (11 random bytes).
pub fn connection_id() -> String {
    let bytes: [u8; 11] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn request_id() -> String {
    let bytes: [u8; 6] = rand::random();
    format!(
        "{}=",
        &base64::engine::general_purpose::STANDARD.encode(bytes)[..7]
    )
}

fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

pub fn parse_query(raw: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        out.entry(decode(k)).or_default().push(decode(v));
    }
    out
}
