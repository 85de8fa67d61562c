//! An in-memory DynamoDB connections table for benchmarks, on DynamoDB's JSON 1.0 wire
//! protocol: `Scan` (Limit, ExclusiveStartKey, 1 MB pages, no filter) and `DeleteItem`, as
//! fast as loopback allows. The broadcast benchmark needs the function, not the emulator, to
//! set the pace: moto's Scan reads the whole table for every page, so with tens of thousands of
//! rows in moto a broadcast runs at moto's speed. Anything else is answered with DynamoDB's
//! `UnknownOperationException` / `ValidationException` so that a change to what the handler
//! asks for fails loudly instead of being measured wrongly. Included with `#[path]`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Map, Value};

/// DynamoDB ends a Scan page at 1 MB of items read.
const PAGE_BYTES: usize = 1 << 20;

/// Rows by connection id, each an item in DynamoDB's JSON (`{"connection_id": {"S": ..}, ..}`).
type Rows = BTreeMap<String, Map<String, Value>>;

/// The table, serving on a free loopback port until the process ends.
pub struct ScanTable {
    rows: Arc<Mutex<Rows>>,
    pub addr: SocketAddr,
}

#[allow(dead_code)]
impl ScanTable {
    pub async fn start() -> ScanTable {
        let rows = Arc::new(Mutex::new(Rows::new()));
        let app = Router::new()
            .route("/", post(call))
            .with_state(rows.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        ScanTable { rows, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the rows with one connection row per id (connected now, expiring in 2100).
    pub fn fill(&self, ids: &[String]) {
        let mut rows = self.rows.lock().unwrap();
        rows.clear();
        for id in ids {
            let item = json!({
                "connection_id": {"S": id},
                "connected_at": {"S": "2026-12-02T00:00:00.000Z"},
                "ttl": {"N": "4102444800"},
            });
            let Value::Object(item) = item else {
                unreachable!()
            };
            rows.insert(id.clone(), item);
        }
    }

    pub fn len(&self) -> usize {
        self.rows.lock().unwrap().len()
    }
}

fn error(kind: &str, message: String) -> Response {
    eprintln!("scan table: {kind}: {message}");
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.0")],
        json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message})
            .to_string(),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.0")],
        body.to_string(),
    )
        .into_response()
}

fn key_of(v: &Value) -> Option<String> {
    v.get("connection_id")?
        .get("S")?
        .as_str()
        .map(str::to_owned)
}

/// The approximate size DynamoDB counts for an item: attribute names and values.
fn size(item: &Map<String, Value>) -> usize {
    item.iter()
        .map(|(name, v)| name.len() + v.to_string().len())
        .sum()
}

async fn call(State(rows): State<Arc<Mutex<Rows>>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error("SerializationException", e.to_string()),
    };
    match target.as_str() {
        "DynamoDB_20120810.Scan" => scan(&rows.lock().unwrap(), &request),
        "DynamoDB_20120810.DeleteItem" => match request.get("Key").and_then(key_of) {
            Some(id) => {
                rows.lock().unwrap().remove(&id);
                ok(json!({}))
            }
            None => error("ValidationException", format!("no key in {request}")),
        },
        other => error(
            "UnknownOperationException",
            format!("the benchmark's table does not serve {other}"),
        ),
    }
}

fn scan(rows: &Rows, request: &Value) -> Response {
    if let Some(f) = request.get("FilterExpression") {
        return error(
            "ValidationException",
            format!("the benchmark's table serves unfiltered scans only, not {f}"),
        );
    }
    let limit = request
        .get("Limit")
        .and_then(Value::as_u64)
        .map_or(usize::MAX, |l| l as usize);
    let projection: Option<Vec<&str>> = request
        .get("ProjectionExpression")
        .and_then(Value::as_str)
        .map(|p| p.split(',').map(str::trim).collect());
    let after = request.get("ExclusiveStartKey").and_then(key_of);
    let range = match &after {
        Some(k) => rows.range::<String, _>((Bound::Excluded(k), Bound::Unbounded)),
        None => rows.range::<String, _>(..),
    };
    let (mut items, mut bytes, mut last) = (Vec::new(), 0, None);
    for (id, item) in range {
        if items.len() == limit || bytes >= PAGE_BYTES {
            break;
        }
        bytes += size(item);
        last = Some(id.clone());
        items.push(match &projection {
            Some(names) => Value::Object(
                item.iter()
                    .filter(|(n, _)| names.contains(&n.as_str()))
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect(),
            ),
            None => Value::Object(item.clone()),
        });
    }
    let more = last.as_ref().is_some_and(|l| {
        rows.range::<String, _>((Bound::Excluded(l), Bound::Unbounded))
            .next()
            .is_some()
    });
    let mut page = json!({"Items": items, "Count": items.len(), "ScannedCount": items.len()});
    if more {
        page["LastEvaluatedKey"] = json!({"connection_id": {"S": last.unwrap()}});
    }
    ok(page)
}
