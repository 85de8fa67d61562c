//! A Lambda Runtime API emulator for the processes of one function (the `bootstrap` binary run
//! as Lambda runs it): invocations queued by the caller are handed out on `next` to whichever
//! process asks, with Lambda's headers (request id, deadline, function ARN, trace id); each
//! response or error a process posts is kept with the time it arrived, to be awaited by
//! request id ([`RuntimeApi::invoke`]) or in arrival order ([`RuntimeApi::next_answer`]); an
//! `/init/error` report is kept too. It also serves Lambda's Invoke API for
//! `InvocationType=Event`, so that the function's invocations of itself (a broadcast's workers)
//! are queued the same way.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::Notify;

/// The ARN the emulator gives the function in `Lambda-Runtime-Invoked-Function-Arn`.
pub const FUNCTION_ARN: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:demo-websocket-handler";

/// What the function posted for one invocation.
#[derive(Debug, Clone)]
pub struct Answer {
    pub id: String,
    pub body: String,
    pub at: Instant,
    /// Posted to `/error` rather than `/response`.
    pub error: bool,
}

impl Answer {
    /// The posted body as JSON (Null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The response of a successful invocation; panics with the error otherwise.
    pub fn response(&self) -> Value {
        assert!(!self.error, "the function failed: {}", self.body);
        self.json()
    }
}

#[derive(Default)]
struct Shared {
    /// Event invocations queued through the Invoke API, for request ids.
    events: AtomicU64,
    queue: Mutex<VecDeque<(String, String, u128)>>,
    queued: Notify,
    answers: Mutex<VecDeque<Answer>>,
    answered: Notify,
    init_error: Mutex<Option<Value>>,
    /// How many times a process asked for its next invocation.
    next_requests: AtomicU32,
}

/// The emulator, serving on a free loopback port until the process ends.
pub struct RuntimeApi {
    shared: Arc<Shared>,
    pub addr: SocketAddr,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let shared = Arc::new(Shared::default());
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
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .route(
                "/2015-03-31/functions/{name}/invocations",
                post(invoke_event),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        RuntimeApi { shared, addr }
    }

    /// Queues one invocation whose deadline is `timeout` from now, as Lambda's context gives it.
    pub fn queue(&self, id: &str, body: String, timeout: Duration) {
        self.shared.queue(id, body, timeout);
    }

    /// Queues `payload` with a 30 s deadline and waits (up to 30 s) for the function's answer.
    pub async fn invoke(&self, payload: Value) -> Answer {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let id = format!("req-{}", COUNTER.fetch_add(1, Ordering::SeqCst));
        self.queue(&id, payload.to_string(), Duration::from_secs(30));
        let wait = async {
            loop {
                let notified = self.shared.answered.notified();
                {
                    let mut answers = self.shared.answers.lock().unwrap();
                    if let Some(i) = answers.iter().position(|a| a.id == id) {
                        return answers.remove(i).expect("found above");
                    }
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .expect("the function answered within 30 s")
    }

    /// The next answer the function posts, in the order they arrive.
    pub async fn next_answer(&self) -> Answer {
        loop {
            let notified = self.shared.answered.notified();
            if let Some(a) = self.shared.answers.lock().unwrap().pop_front() {
                return a;
            }
            notified.await;
        }
    }

    /// What the function reported to `/init/error`, if it did.
    pub fn init_error(&self) -> Option<Value> {
        self.shared.init_error.lock().unwrap().clone()
    }

    /// How many times a process asked for its next invocation.
    pub fn next_requests(&self) -> u32 {
        self.shared.next_requests.load(Ordering::SeqCst)
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
/// answered 202 at once. Its answers are kept like any other.
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
    let n = shared.events.fetch_add(1, Ordering::Relaxed);
    shared.queue(
        &format!("event-{n}"),
        String::from_utf8_lossy(&body).into_owned(),
        Duration::from_secs(900),
    );
    StatusCode::ACCEPTED.into_response()
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.next_requests.fetch_add(1, Ordering::SeqCst);
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
                FUNCTION_ARN.parse().unwrap(),
            );
            h.insert(
                "Lambda-Runtime-Trace-Id",
                format!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage={id}")
                    .parse()
                    .unwrap(),
            );
            h.insert("Content-Type", "application/json".parse().unwrap());
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
    shared.answers.lock().unwrap().push_back(Answer {
        id,
        body: String::from_utf8_lossy(&body).into_owned(),
        at,
        error,
    });
    shared.answered.notify_waiters();
    StatusCode::ACCEPTED
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    *shared.init_error.lock().unwrap() = Some(serde_json::from_slice(&body).unwrap_or(Value::Null));
    shared.answered.notify_waiters();
    StatusCode::ACCEPTED
}
