//! A Lambda Runtime API emulator for the processes of one function (the `bootstrap` binary run
//! as Lambda runs it): invocations queued by the caller are handed out on `next` to whichever
//! process asks, and each response or error a process posts comes back on a channel with the
//! time it arrived. It also serves Lambda's Invoke API for `InvocationType=Event`, so that the
//! function's invocations of itself (a broadcast's workers) are queued the same way.
//! Included with `#[path]` by the benchmarks that run the release `bootstrap`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{mpsc, Notify};

/// What the function posted for one invocation.
#[allow(dead_code)]
pub struct Answer {
    pub id: String,
    pub body: String,
    pub at: Instant,
    /// Posted to `/error` rather than `/response`.
    pub error: bool,
}

#[derive(Default)]
struct Shared {
    /// Event invocations queued through the Invoke API, for request ids.
    events: std::sync::atomic::AtomicU64,
    queue: Mutex<VecDeque<(String, String, u128)>>,
    queued: Notify,
    answers: Mutex<Option<mpsc::UnboundedSender<Answer>>>,
}

/// The emulator, serving on a free loopback port until the process ends.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    pub addr: SocketAddr,
    pub answers: mpsc::UnboundedReceiver<Answer>,
}

#[allow(dead_code)]
impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let shared = Arc::new(Shared::default());
        let (tx, answers) = mpsc::unbounded_channel();
        *shared.answers.lock().unwrap() = Some(tx);
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(|s: State<Arc<Shared>>, p: Path<String>, b: Bytes| answer(s, p, b, false)),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(|s: State<Arc<Shared>>, p: Path<String>, b: Bytes| answer(s, p, b, true)),
            )
            .route(
                "/2015-03-31/functions/{name}/invocations",
                post(invoke_event),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        RuntimeApi {
            shared,
            addr,
            answers,
        }
    }

    /// Queues one invocation whose deadline is `timeout` from now, as Lambda's context gives it.
    pub fn invoke(&self, id: &str, body: String, timeout: Duration) {
        self.shared.queue(id, body, timeout);
    }

    /// The next answer the function posts.
    pub async fn answer(&mut self) -> Answer {
        self.answers
            .recv()
            .await
            .expect("the runtime API emulator is running")
    }
}

impl Shared {
    fn queue(&self, id: &str, body: String, timeout: Duration) {
        let deadline = (SystemTime::now() + timeout)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        self.queue
            .lock()
            .unwrap()
            .push_back((id.to_owned(), body, deadline));
        self.queued.notify_waiters();
    }
}

/// Lambda's Invoke API, `InvocationType=Event` only: queued with Lambda's longest timeout,
/// answered 202 at once. Its answers come back on the channel like any other.
async fn invoke_event(
    State(shared): State<Arc<Shared>>,
    Path(_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok());
    if kind != Some("Event") {
        return (
            StatusCode::BAD_REQUEST,
            "this emulator queues Event invocations only",
        )
            .into_response();
    }
    let n = shared
        .events
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared.queue(
        &format!("event-{n}"),
        String::from_utf8_lossy(&body).into_owned(),
        Duration::from_secs(900),
    );
    StatusCode::ACCEPTED.into_response()
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    loop {
        let notified = shared.queued.notified();
        if let Some((id, body, deadline)) = shared.queue.lock().unwrap().pop_front() {
            let mut h = HeaderMap::new();
            h.insert("Lambda-Runtime-Aws-Request-Id", id.parse().unwrap());
            h.insert(
                "Lambda-Runtime-Deadline-Ms",
                deadline.to_string().parse().unwrap(),
            );
            h.insert(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench"
                    .parse()
                    .unwrap(),
            );
            h.insert(
                "Lambda-Runtime-Trace-Id",
                "Root=1-00000000-000000000000000000000000".parse().unwrap(),
            );
            return (StatusCode::OK, h, body).into_response();
        }
        notified.await;
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
    error: bool,
) -> StatusCode {
    let at = Instant::now();
    if let Some(tx) = shared.answers.lock().unwrap().as_ref() {
        let _ = tx.send(Answer {
            id,
            body: String::from_utf8_lossy(&body).into_owned(),
            at,
            error,
        });
    }
    StatusCode::ACCEPTED
}
