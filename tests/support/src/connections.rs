//! A stand-in for API Gateway's management API, `POST` and `DELETE [/{stage}]/@connections/{id}`,
//! on a local port: it answers as API Gateway does (410 GoneException for ids it does not know
//! or has closed, the throttle's 429 LimitExceededException...), scripted per connection and
//! attempt, and keeps what each connection received, which were closed, every request's path
//! and its `authorization` header.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// What the endpoint answers one post.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    Ok,
    /// Never answers (an hour).
    Hang,
    Throttle,
    ServerError,
    Forbidden,
    TooLarge,
    Gone,
}

#[derive(Default)]
struct Shared {
    /// The connections that exist; None: every id does.
    open: Option<HashSet<String>>,
    /// Replies per connection, attempt by attempt (the last repeats).
    script: HashMap<String, Vec<Reply>>,
    attempts: Mutex<HashMap<String, usize>>,
    received: Mutex<Vec<(String, Bytes)>>,
    /// Connections a DELETE closed, in order.
    closed: Mutex<Vec<String>>,
    authorizations: Mutex<Vec<String>>,
    paths: Mutex<Vec<String>>,
}

/// The running stand-in.
pub struct Connections {
    shared: Arc<Shared>,
    pub addr: SocketAddr,
}

impl Connections {
    /// Every id exists and every post succeeds.
    pub async fn start() -> Connections {
        Self::serve(Shared::default()).await
    }

    /// Only `open` exist: posts to other ids answer 410 GoneException.
    pub async fn with_open(open: &[&str]) -> Connections {
        Self::serve(Shared {
            open: Some(open.iter().map(|s| (*s).to_owned()).collect()),
            ..Shared::default()
        })
        .await
    }

    /// Every id exists; the ids of `script` get its replies, attempt by attempt.
    pub async fn scripted(script: HashMap<String, Vec<Reply>>) -> Connections {
        Self::serve(Shared {
            script,
            ..Shared::default()
        })
        .await
    }

    async fn serve(shared: Shared) -> Connections {
        let shared = Arc::new(shared);
        let app = Router::new()
            .route("/@connections/{id}", post(post_connection))
            .route(
                "/{stage}/@connections/{id}",
                post(post_staged).delete(delete_staged),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Connections { shared, addr }
    }

    /// The management endpoint of stage `prod`: `http://{addr}/prod`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/prod", self.addr)
    }

    /// The messages `id` received, as JSON, in order.
    pub fn received_by(&self, id: &str) -> Vec<Value> {
        self.shared
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|(to, _)| to == id)
            .map(|(_, body)| serde_json::from_slice(body).unwrap_or(Value::Null))
            .collect()
    }

    /// How many posts every connection got.
    pub fn received(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }

    /// How many posts to `id` were attempted, answered or not.
    pub fn attempts(&self, id: &str) -> usize {
        self.shared
            .attempts
            .lock()
            .unwrap()
            .get(id)
            .copied()
            .unwrap_or(0)
    }

    /// The connections closed by `DELETE @connections/{id}`, in order.
    pub fn closed(&self) -> Vec<String> {
        self.shared.closed.lock().unwrap().clone()
    }

    /// The `authorization` header of every post.
    pub fn authorizations(&self) -> Vec<String> {
        self.shared.authorizations.lock().unwrap().clone()
    }

    /// The path of every post, as sent (percent-encoded).
    pub fn paths(&self) -> Vec<String> {
        self.shared.paths.lock().unwrap().clone()
    }
}

async fn post_staged(
    state: State<Arc<Shared>>,
    Path((_stage, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    post_connection(state, Path(id), headers, uri, body).await
}

/// `DELETE @connections/{id}`: 204 and the connection closed, or what the script says.
async fn delete_staged(
    state: State<Arc<Shared>>,
    Path((_stage, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    answer(state, id, headers, uri, None).await
}

async fn post_connection(
    state: State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    answer(state, id, headers, uri, Some(body)).await
}

/// One call: a post (`body`) or a delete (None).
async fn answer(
    State(shared): State<Arc<Shared>>,
    id: String,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Option<Bytes>,
) -> Response {
    shared.paths.lock().unwrap().push(uri.path().to_owned());
    if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        shared.authorizations.lock().unwrap().push(auth.to_owned());
    }
    let n = {
        let mut attempts = shared.attempts.lock().unwrap();
        let n = attempts.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    let known = shared.open.as_ref().is_none_or(|open| open.contains(&id))
        && !shared.closed.lock().unwrap().contains(&id);
    let script = shared.script.get(&id);
    let reply = match (known, script) {
        (false, _) => Reply::Gone,
        (true, Some(s)) => s.get(n - 1).or(s.last()).copied().unwrap_or(Reply::Ok),
        (true, None) => Reply::Ok,
    };
    let error = |status: StatusCode, kind: &str| {
        (
            status,
            [
                ("x-amzn-ErrorType", kind.to_owned()),
                ("Content-Type", "application/json".to_owned()),
            ],
            json!({"message": kind}).to_string(),
        )
            .into_response()
    };
    match reply {
        Reply::Ok => match body {
            Some(body) => {
                shared.received.lock().unwrap().push((id, body));
                StatusCode::OK.into_response()
            }
            None => {
                shared.closed.lock().unwrap().push(id);
                StatusCode::NO_CONTENT.into_response()
            }
        },
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
        Reply::Throttle => error(StatusCode::TOO_MANY_REQUESTS, "LimitExceededException"),
        Reply::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        Reply::Forbidden => error(StatusCode::FORBIDDEN, "ForbiddenException"),
        Reply::TooLarge => error(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeException"),
        Reply::Gone => error(StatusCode::GONE, "GoneException"),
    }
}
