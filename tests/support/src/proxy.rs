//! A recording, fault-injecting HTTP proxy between wsctl and moto. It names every AWS call
//! (service from the SigV4 scope; operation from X-Amz-Target, the query protocol's Action, or
//! the REST method and path), so tests can count writes; and it can answer chosen calls with
//! errors AWS gives but moto never does.

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
        is_write(&self.method, &self.operation)
    }

    /// Whether the call is on a stack lock's table (`{project}_wsctl_lock`): every `up` and
    /// `down` takes and releases the lock, which is not a change to the stack.
    pub fn on_lock_table(&self) -> bool {
        self.body.contains("_wsctl_lock\"")
    }
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} -> {}", self.service, self.operation, self.status)
    }
}

/// A fault the chaos mode injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The service's throttling error (400 ThrottlingException / Throttling, or 429
    /// TooManyRequestsException for REST services).
    Throttle,
    Status500,
    Status503,
    /// The connection closes before the request reaches the service.
    DropBefore,
    /// The service handles the request, then the connection closes before the answer: the
    /// caller cannot know that its call took effect.
    DropAfter,
    /// 50 to 500 ms before forwarding.
    Delay,
    /// CreateFunction refused as on AWS while a new role propagates (not drawn at random:
    /// every CreateFunction within the propagation window after a CreateRole).
    RoleNotAssumable,
}

const DRAWN: [Fault; 6] = [
    Fault::Throttle,
    Fault::Status500,
    Fault::Status503,
    Fault::DropBefore,
    Fault::DropAfter,
    Fault::Delay,
];

struct Chaos {
    seed: u64,
    rate: f64,
    role_propagation: std::time::Duration,
    role_created: Option<std::time::Instant>,
    /// Calls seen per operation: the draw for a call depends on the seed, the operation and
    /// its ordinal, so a seed reproduces the same faults whatever the interleaving.
    seen: std::collections::HashMap<String, u64>,
    injected: std::collections::BTreeMap<Fault, u64>,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Chaos {
    fn draw(&mut self, operation: &str) -> Option<(Fault, u64)> {
        // CreateFunction, as the REST naming of Lambda calls has it.
        if operation == "POST /2015-03-31/functions"
            && self
                .role_created
                .is_some_and(|t| t.elapsed() < self.role_propagation)
        {
            *self.injected.entry(Fault::RoleNotAssumable).or_default() += 1;
            return Some((Fault::RoleNotAssumable, 0));
        }
        let n = self.seen.entry(operation.to_owned()).or_default();
        *n += 1;
        let op_hash = operation.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        let h = splitmix(self.seed ^ splitmix(op_hash ^ splitmix(*n)));
        let u = (h >> 11) as f64 / (1u64 << 53) as f64;
        if u >= self.rate {
            return None;
        }
        let fault = DRAWN[(splitmix(h) % DRAWN.len() as u64) as usize];
        *self.injected.entry(fault).or_default() += 1;
        Some((fault, 50 + splitmix(h ^ 1) % 451))
    }
}

/// Closes the connection without an answer (hyper drops it when the service fails).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the test proxy")
    }
}

impl std::error::Error for Dropped {}

/// Whether a call (`operation` as [`Call::operation`] names it) changes anything.
fn is_write(method: &str, operation: &str) -> bool {
    if operation.contains(' ') {
        // REST: "METHOD /path"
        return !matches!(method, "GET" | "HEAD");
    }
    let reads = [
        "Get", "List", "Describe", "Scan", "Query", "BatchGet", "Filter",
    ];
    !reads.iter().any(|r| operation.starts_with(r))
}

#[derive(Default)]
struct State {
    chaos: Mutex<Option<Chaos>>,
    /// A process to SIGKILL once the service has answered this many writes (the answer is
    /// then never relayed): (pid, writes to let through).
    kill: Mutex<Option<(u32, usize)>>,
    writes_answered: Mutex<usize>,
    calls: Mutex<Vec<Call>>,
    /// Operations answered with a 400 error: the operation, how many more times, the error's
    /// code and its message.
    failures: Mutex<Vec<(String, usize, &'static str, &'static str)>>,
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

    /// The calls that changed the stack (the lock's own calls left out).
    pub fn writes(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.is_write() && !c.on_lock_table())
            .collect()
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
        self.answer_with(operation, n, "InvalidParameterValueException", message);
    }

    fn answer_with(&self, operation: &str, n: usize, code: &'static str, message: &'static str) {
        self.state
            .failures
            .lock()
            .unwrap()
            .push((operation.to_owned(), n, code, message));
    }

    /// The next `n` calls of `operation` are refused as AWS refuses an identity without the
    /// permission: 400 AccessDeniedException (JSON protocols).
    pub fn deny(&self, operation: &str, n: usize) {
        self.answer_with(
            operation,
            n,
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/deployer/ci is not authorized to perform this action because no identity-based policy allows it",
        );
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

    /// From now on, each call fails with probability `rate` (a fault drawn from [`Fault`],
    /// reproducibly from `seed`), and CreateFunction answers as AWS does while a role is new
    /// for `role_propagation` after each CreateRole.
    pub fn chaos(&self, seed: u64, rate: f64, role_propagation: std::time::Duration) {
        *self.state.chaos.lock().unwrap() = Some(Chaos {
            seed,
            rate,
            role_propagation,
            role_created: None,
            seen: Default::default(),
            injected: Default::default(),
        });
    }

    /// Stops injecting faults; returns how many of each were injected.
    pub fn calm(&self) -> std::collections::BTreeMap<Fault, u64> {
        self.state
            .chaos
            .lock()
            .unwrap()
            .take()
            .map(|c| c.injected)
            .unwrap_or_default()
    }

    /// SIGKILLs `pid` as soon as the service has answered `after` more write calls, before
    /// that answer reaches the caller.
    pub fn kill_after_writes(&self, pid: u32, after: usize) {
        *self.state.writes_answered.lock().unwrap() = 0;
        *self.state.kill.lock().unwrap() = Some((pid, after));
    }

    /// Whether the kill armed by [`Proxy::kill_after_writes`] happened.
    pub fn killed(&self) -> bool {
        self.state.kill.lock().unwrap().is_none()
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

fn fault_response(fault: Fault, headers: &hyper::HeaderMap, form: &str) -> Response<Full<Bytes>> {
    let (status, kind, body) = match fault {
        Fault::Status500 => (500, "InternalFailure", "We encountered an internal error."),
        Fault::Status503 => (503, "ServiceUnavailable", "Service unavailable."),
        Fault::RoleNotAssumable => (
            400,
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.",
        ),
        _ => (400, "Throttling", "Rate exceeded"),
    };
    let json_target = headers.contains_key("x-amz-target");
    let query = form.contains("Action=");
    let builder = Response::builder();
    if query {
        let code = if kind == "Throttling" {
            "Throttling"
        } else {
            kind
        };
        let xml = format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{body}</Message></Error><RequestId>chaos</RequestId></ErrorResponse>"
        );
        return builder
            .status(status)
            .header("Content-Type", "text/xml")
            .body(Full::new(Bytes::from(xml)))
            .unwrap();
    }
    let (status, code) = match (fault, json_target) {
        (Fault::Throttle, true) => (400, "ThrottlingException"),
        (Fault::Throttle, false) => (429, "TooManyRequestsException"),
        _ => (status, kind),
    };
    builder
        .status(status)
        .header("x-amzn-ErrorType", code)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::json!({"__type": code, "message": body}).to_string(),
        )))
        .unwrap()
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Dropped> {
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
    let is_write = is_write(&method, &operation);
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

    let drawn = state
        .chaos
        .lock()
        .unwrap()
        .as_mut()
        .and_then(|c| c.draw(&operation));
    let mut drop_after = false;
    match drawn {
        Some((Fault::DropBefore, _)) => {
            record(0);
            return Err(Dropped);
        }
        Some((Fault::DropAfter, _)) => drop_after = true,
        Some((Fault::Delay, ms)) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
        Some((fault, _)) => {
            let response = fault_response(fault, &parts.headers, &String::from_utf8_lossy(&body));
            record(response.status().as_u16());
            return Ok(response);
        }
        None => {}
    }

    let injected = {
        let mut failures = state.failures.lock().unwrap();
        failures
            .iter_mut()
            .find(|(op, n, _, _)| {
                op.trim_end_matches('/') == operation.trim_end_matches('/') && *n > 0
            })
            .map(|(_, n, code, message)| {
                *n -= 1;
                (*code, *message)
            })
    };
    if let Some((code, message)) = injected {
        let token = parts
            .headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(none)");
        let message = message.replace("{session-token}", token);
        record(400);
        return Ok(Response::builder()
            .status(400)
            .header("x-amzn-ErrorType", code)
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
            let status = parts.status.as_u16();
            record(status);
            if status < 300 && (operation == "CreateRole") {
                if let Some(c) = state.chaos.lock().unwrap().as_mut() {
                    c.role_created = Some(std::time::Instant::now());
                }
            }
            if status < 300 && is_write {
                let mut answered = state.writes_answered.lock().unwrap();
                *answered += 1;
                let mut kill = state.kill.lock().unwrap();
                if let Some((pid, after)) = *kill {
                    if *answered >= after {
                        let _ = std::process::Command::new("kill")
                            .args(["-9", &pid.to_string()])
                            .status();
                        *kill = None;
                        return Err(Dropped);
                    }
                }
            }
            if drop_after {
                return Err(Dropped);
            }
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
