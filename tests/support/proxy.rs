#![allow(dead_code)] // shared by several test binaries, each using part of it
//! A recording, fault-injecting HTTP proxy between wsctl and moto. It names every AWS call
//! (service from the SigV4 scope; operation from X-Amz-Target, the query protocol's Action, or
//! the REST method and path), so tests can count writes; and it can answer chosen calls with
//! errors AWS gives but moto never does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[derive(Debug, Clone)]
pub struct Call {
    pub service: String,
    pub operation: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The request body (first 64 KB).
    pub body: String,
}

impl Call {
    /// Whether the call changes anything.
    pub fn is_write(&self) -> bool {
        if self.operation.contains(' ') {
            // REST: "METHOD /path"
            return !matches!(self.method.as_str(), "GET" | "HEAD");
        }
        let reads = [
            "Get", "List", "Describe", "Scan", "Query", "BatchGet", "Filter",
        ];
        !reads.iter().any(|r| self.operation.starts_with(r))
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.service, self.operation, self.status)
    }
}

#[derive(Default)]
struct State {
    calls: Mutex<Vec<Call>>,
    /// Operations answered with a 400 InvalidParameterValueException: the operation, how many
    /// more times, and the error message.
    failures: Mutex<Vec<(String, usize, &'static str)>>,
}

pub struct Proxy {
    pub url: String,
    state: Arc<State>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (e.g. moto's URL) on its own thread.
    pub fn start(upstream: &str) -> Proxy {
        let state = Arc::new(State::default());
        let upstream = upstream.to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread_state = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let client: Client<_, Full<Bytes>> =
                    Client::builder(TokioExecutor::new()).build_http();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = thread_state.clone();
                    let client = client.clone();
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            handle(req, state.clone(), client.clone(), upstream.clone())
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        let addr: SocketAddr = rx.recv().unwrap();
        Proxy {
            url: format!("http://{addr}"),
            state,
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    pub fn writes(&self) -> Vec<Call> {
        self.calls().into_iter().filter(Call::is_write).collect()
    }

    pub fn clear(&self) {
        self.state.calls.lock().unwrap().clear();
    }

    /// The next `n` calls of `operation` (as `Call::operation` names it) answer a
    /// non-retryable 400 error.
    pub fn fail(&self, operation: &str, n: usize) {
        self.fail_with(operation, n, "injected by the test proxy");
    }

    fn fail_with(&self, operation: &str, n: usize, message: &'static str) {
        self.state
            .failures
            .lock()
            .unwrap()
            .push((operation.to_owned(), n, message));
    }

    /// The next `n` calls of `operation` fail with a message that quotes the request's session
    /// token, as a careless endpoint or proxy might: what wsctl prints must mask it.
    pub fn fail_echoing_session_token(&self, operation: &str, n: usize) {
        self.fail_with(
            operation,
            n,
            "request with token {session-token} was refused",
        );
    }

    /// The next `n` CreateFunction calls fail as they do on AWS while a new role propagates.
    pub fn fail_create_function_role(&self, n: usize) {
        self.fail_with(
            "POST /2015-03-31/functions",
            n,
            "The role defined for the function cannot be assumed by Lambda.",
        );
    }
}

fn name_call(
    method: &str,
    path: &str,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> (String, String) {
    let service = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(3))
        .unwrap_or("?")
        .to_owned();
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return (
            service,
            target.rsplit('.').next().unwrap_or(target).to_owned(),
        );
    }
    let form = String::from_utf8_lossy(body);
    if let Some(action) = form.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        return (service, action.to_owned());
    }
    (service, format!("{method} {path}"))
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let (service, operation) = name_call(&method, &path, &parts.headers, &body);
    let recorded_body = String::from_utf8_lossy(&body[..body.len().min(65536)]).into_owned();
    let record = |status: u16| {
        state.calls.lock().unwrap().push(Call {
            service: service.clone(),
            operation: operation.clone(),
            method: method.clone(),
            path: path.clone(),
            status,
            body: recorded_body.clone(),
        })
    };

    let injected = {
        let mut failures = state.failures.lock().unwrap();
        failures
            .iter_mut()
            .find(|(op, n, _)| {
                op.trim_end_matches('/') == operation.trim_end_matches('/') && *n > 0
            })
            .map(|(_, n, message)| {
                *n -= 1;
                *message
            })
    };
    if let Some(message) = injected {
        let token = parts
            .headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(none)");
        let message = message.replace("{session-token}", token);
        record(400);
        return Ok(Response::builder()
            .status(400)
            .header("x-amzn-ErrorType", "InvalidParameterValueException")
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(
                serde_json::json!({"Type": "User", "message": message}).to_string(),
            )))
            .unwrap());
    }

    let uri = format!(
        "{upstream}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut forward = Request::builder().method(parts.method.clone()).uri(uri);
    for (k, v) in &parts.headers {
        if k != "host" {
            forward = forward.header(k, v);
        }
    }
    let forward = forward.body(Full::new(body)).unwrap();
    match client.request(forward).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            record(parts.status.as_u16());
            Ok(Response::from_parts(parts, Full::new(body)))
        }
        Err(e) => {
            record(502);
            Ok(Response::builder()
                .status(502)
                .body(Full::new(Bytes::from(format!("proxy: {e}"))))
                .unwrap())
        }
    }
}
