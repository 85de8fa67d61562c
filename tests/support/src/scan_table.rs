//! An in-memory DynamoDB connections table for benchmarks, on DynamoDB's JSON 1.0 wire
//! protocol: `Scan` (Limit, ExclusiveStartKey, 1 MB pages, Segment / TotalSegments, no
//! filter), `DeleteItem` and `DescribeTable` (ItemCount), as fast as loopback allows. Calls
//! on any other table (a broadcast's status records) go to an upstream DynamoDB (moto) when
//! one is given. The broadcast benchmark needs the function, not the emulator, to
//! set the pace: moto's Scan reads the whole table for every page, so with tens of thousands of
//! rows in moto a broadcast runs at moto's speed. Anything else is answered with DynamoDB's
//! `UnknownOperationException` / `ValidationException` so that a change to what the handler
//! asks for fails loudly instead of being measured wrongly.

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

/// The connections table's name; calls naming another table go upstream.
pub const TABLE: &str = "bench_ws_connections";

struct Shared {
    rows: Arc<Mutex<Rows>>,
    upstream: Option<String>,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >,
}

impl ScanTable {
    pub async fn start() -> ScanTable {
        Self::start_with_upstream(None).await
    }

    /// With `upstream` (a DynamoDB endpoint URL), calls on other tables are forwarded there.
    pub async fn start_with_upstream(upstream: Option<String>) -> ScanTable {
        let rows = Arc::new(Mutex::new(Rows::new()));
        let shared = Arc::new(Shared {
            rows: rows.clone(),
            upstream,
            client: hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build_http(),
        });
        let app = Router::new().route("/", post(call)).with_state(shared);
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

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

/// The same call, sent to the upstream DynamoDB.
async fn forward(shared: &Shared, upstream: &str, headers: HeaderMap, body: Bytes) -> Response {
    use http_body_util::BodyExt;
    let mut request = axum::http::Request::post(upstream);
    for (name, value) in &headers {
        if name != "host" {
            request = request.header(name, value);
        }
    }
    let request = request
        .body(http_body_util::Full::new(body))
        .expect("a request");
    match shared.client.request(request).await {
        Ok(answer) => {
            let status = answer.status();
            let content_type = answer.headers().get("content-type").cloned();
            let bytes = answer
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut response = (status, bytes).into_response();
            if let Some(c) = content_type {
                response.headers_mut().insert("content-type", c);
            }
            response
        }
        Err(e) => error("InternalServerError", format!("upstream {upstream}: {e}")),
    }
}

async fn call(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error("SerializationException", e.to_string()),
    };
    let table = request.get("TableName").and_then(Value::as_str);
    if let (Some(upstream), Some(t)) = (&shared.upstream, table) {
        if t != TABLE {
            return forward(&shared, upstream, headers, body).await;
        }
    }
    let rows = &shared.rows;
    match target.as_str() {
        "DynamoDB_20120810.DescribeTable" => ok(json!({"Table": {
            "TableName": TABLE,
            "TableStatus": "ACTIVE",
            "ItemCount": rows.lock().unwrap().len(),
        }})),
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
    // A parallel scan's segment: every row is in exactly one (FNV-1a of its key).
    let segment = match (
        request.get("Segment").and_then(Value::as_u64),
        request.get("TotalSegments").and_then(Value::as_u64),
    ) {
        (Some(s), Some(t)) if s < t => Some((s, t)),
        (None, None) => None,
        _ => {
            return error(
                "ValidationException",
                format!("Segment and TotalSegments: {request}"),
            )
        }
    };
    let in_segment = |id: &String| {
        segment.is_none_or(|(s, t)| {
            let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
            hash % t == s
        })
    };
    let range = match &after {
        Some(k) => rows.range::<String, _>((Bound::Excluded(k), Bound::Unbounded)),
        None => rows.range::<String, _>(..),
    };
    let (mut items, mut bytes, mut last) = (Vec::new(), 0, None);
    for (id, item) in range.filter(|(id, _)| in_segment(id)) {
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
            .any(|(id, _)| in_segment(id))
    });
    let mut page = json!({"Items": items, "Count": items.len(), "ScannedCount": items.len()});
    if more {
        page["LastEvaluatedKey"] = json!({"connection_id": {"S": last.unwrap()}});
    }
    ok(page)
}
