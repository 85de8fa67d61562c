//! `wsctl dev`: the bundled handler behind a local gateway that behaves like API Gateway's
//! WebSocket APIs, with an in-memory connection store. One port serves the WebSocket endpoint,
//! the management API (`/@connections/{id}`) and Lambda's invoke API, so clients, backends
//! using an AWS SDK, and the runbook's scripts all work against it unchanged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::{SinkExt, StreamExt};
use handler::{FanOut, Handler, MemoryBroadcastLog, MemoryStore, Outcome, Settings};

use crate::error::{Error, Result};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

mod connect;
mod drops;
mod events;
mod invoke;
mod management;
mod socket;
pub mod targets;
mod throttle;
use events::{now_ms, ConnInfo, Events};
pub use socket::Ending;
use socket::Outlet;
use throttle::DevPusher;
pub use throttle::Throttle;

/// Close codes API Gateway uses.
const GOING_AWAY: u16 = 1001;
const MESSAGE_TOO_BIG: u16 = 1009;
const NORMAL: u16 = 1000;
const UNSUPPORTED_DATA: u16 = 1003;

#[derive(Debug, Clone)]
pub struct DevOptions {
    pub host: String,
    pub port: u16,
    pub path: String,
    pub stage: String,
    pub route_selection_expression: String,
    /// Route keys besides `$connect`, `$disconnect` and `$default` (they reach the same handler
    /// with their own routeKey, as custom routes to one integration do on AWS).
    pub routes: Vec<String>,
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    pub frame_limit: usize,
    pub message_limit: usize,
    pub settings: Settings,
    /// Print every event sent to the handler (API Gateway's JSON) on stderr.
    pub print_events: bool,
    /// Token verification on $connect.
    pub auth: Option<Arc<handler::auth::Auth>>,
    /// `[[route]]`: route keys to the team's HTTP backends and Lambda functions.
    pub user_routes: Vec<targets::DevRoute>,
    /// The Lambda Invoke API endpoint function routes are invoked at.
    pub lambda_endpoint: Option<String>,
    /// Sent to HTTP backends in `X-Wsctl-Secret`.
    pub backend_secret: Option<String>,
    /// `[history]`: streams kept this long, at most this many replayed per stream.
    pub history: Option<(Duration, u32)>,
    /// Every connection dropped this often, this way (`--drop-every`, `--drop-mode`).
    pub drop_every: Option<(Duration, Ending)>,
    /// `[catalogue]`: messages that break it are refused, as the function refuses them.
    pub catalogue: Option<Arc<handler::catalogue::Catalogue>>,
    pub quiet: bool,
    /// API Gateway's account throttle and latency on the management API and the handler's
    /// posts (`None`: neither).
    pub throttle: Option<Arc<Throttle>>,
    /// The function's timeout: how long a direct invocation may run before it must answer.
    pub function_timeout: Duration,
}

type DevHandler = Handler<MemoryStore, DevPusher>;

struct Conn {
    connected_at_ms: u64,
    source_ip: String,
    user_agent: Option<String>,
    last_active_ms: Arc<AtomicU64>,
    /// Where pushes and DELETE go.
    outlet: Arc<Outlet>,
}

/// Event lines go to stderr from one writer task, in batches: a busy gateway then makes one
/// write call per batch instead of one per event, and handlers never block on the terminal.
#[derive(Clone)]
struct Logger {
    tx: mpsc::UnboundedSender<String>,
}

impl Logger {
    fn start() -> (Logger, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let task = tokio::spawn(async move {
            use std::io::Write;
            let mut batch = String::new();
            while let Some(first) = rx.recv().await {
                batch.clear();
                batch.push_str(&first);
                batch.push('\n');
                while let Ok(next) = rx.try_recv() {
                    batch.push_str(&next);
                    batch.push('\n');
                    if batch.len() > 64 * 1024 {
                        break;
                    }
                }
                let _ = std::io::stderr().lock().write_all(batch.as_bytes());
            }
        });
        (Logger { tx }, task)
    }

    fn line(&self, line: String) {
        let _ = self.tx.send(line);
    }
}

struct Gateway {
    handler: DevHandler,
    logger: Logger,
    opts: DevOptions,
    events: Events,
    /// The `[[route]]` targets.
    targets: targets::Targets,
    conns: Mutex<HashMap<String, Conn>>,
    shutdown: watch::Receiver<bool>,
    /// The writers every push goes through.
    lanes: socket::Lanes,
    open: AtomicUsize,
    drained: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Gateway {
    fn log(&self, route: &str, id: &str, status: impl std::fmt::Display, started: Instant) {
        if !self.opts.quiet {
            let t = time::OffsetDateTime::now_utc();
            self.logger.line(format!(
                "{:02}:{:02}:{:02}.{:03} {route:<12} {id} {status} {:.2}ms",
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond(),
                started.elapsed().as_secs_f64() * 1000.0
            ));
        }
    }

    /// Runs one event through the same conversion and handler the Lambda uses.
    async fn invoke(&self, event: Value) -> Result<Outcome, invoke::Failure> {
        if self.opts.print_events {
            // Tokens travel in the query string: never print them.
            let param = self
                .opts
                .auth
                .as_ref()
                .map_or("token", |a| a.query_param.as_str());
            let mut shown = event.clone();
            if let Some(v) = shown.pointer_mut(&format!("/queryStringParameters/{param}")) {
                *v = json!("***");
            }
            if let Some(v) = shown.pointer_mut(&format!("/multiValueQueryStringParameters/{param}"))
            {
                *v = json!(["***"]);
            }
            self.logger.line(format!("event: {shown}"));
        }
        let event = handler::apigw::to_event(event).map_err(|e| invoke::Failure {
            kind: "BadEvent",
            message: e.to_string(),
        })?;
        // As in Lambda, every invocation answers within the function's timeout.
        self.handler
            .handle_until(event, Instant::now() + self.opts.function_timeout)
            .await
            .map_err(|e| invoke::Failure {
                kind: e.kind(),
                message: handler::error_chain(&e),
            })
    }

    /// The route key for a message, by the route selection expression.
    fn route_for(&self, body: &str) -> String {
        let path = self
            .opts
            .route_selection_expression
            .strip_prefix("$request.body.")
            .unwrap_or("action");
        handler::select_route(path, &self.opts.routes, body)
    }
}

fn internal_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("Content-Type", "application/json")],
        r#"{"message": "Internal server error"}"#,
    )
        .into_response()
}

fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: reason.into(),
    }))
}

impl Gateway {
    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        read_ahead: Vec<u8>,
        outlet: Arc<Outlet>,
        id: String,
        conn: Arc<ConnInfo>,
        last_active: Arc<AtomicU64>,
    ) {
        let read = outlet.connect(stream);
        let config = WebSocketConfig::default()
            .max_frame_size(Some(self.opts.frame_limit))
            .max_message_size(Some(self.opts.message_limit))
            .read_buffer_size(1024)
            .write_buffer_size(0);
        let mut ws = WebSocketStream::from_partially_read(
            socket::Io::new(read, outlet.clone()),
            read_ahead,
            Role::Server,
            Some(config),
        )
        .await;
        let mut shutdown = self.shutdown.clone();
        // Two timers per connection, created once and reset on activity (creating them per loop
        // turn would register timer entries for every message).
        let max_end = tokio::time::sleep(self.opts.max_duration);
        tokio::pin!(max_end);
        let idle = tokio::time::sleep(self.opts.idle_timeout);
        tokio::pin!(idle);
        // How the connection ends: the code and reason `$disconnect` reports, and the close frame
        // the gateway sends first, if it is the one closing.
        let mut abrupt = false;
        let (code, reason, close): (u16, String, Option<(u16, &str)>) = loop {
            tokio::select! {
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        last_active.store(now_ms(), Ordering::Relaxed);
                        idle.as_mut().reset(tokio::time::Instant::now() + self.opts.idle_timeout);
                        Box::pin(self.message(&id, &conn, text.as_str().to_owned())).await;
                    }
                    // API Gateway takes text frames only: "If a client app sends a binary frame,
                    // API Gateway rejects it and disconnects the client with code 1003."
                    // (https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-binary-media-types.html)
                    Some(Ok(Message::Binary(_))) => {
                        let reason = "Binary frames are not supported";
                        break (UNSUPPORTED_DATA, reason.into(), Some((UNSUPPORTED_DATA, reason)));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                        idle.as_mut().reset(tokio::time::Instant::now() + self.opts.idle_timeout);
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                        break (code, frame.map(|f| f.reason.to_string()).unwrap_or_else(|| "Client-side close frame status not set".into()), None);
                    }
                    Some(Err(e)) => {
                        if matches!(e, tungstenite::Error::Capacity(_)) {
                            break (MESSAGE_TOO_BIG, "Message too big".into(), Some((MESSAGE_TOO_BIG, "Message too big")));
                        }
                        break (1006, "Connection dropped".into(), None);
                    }
                    None => break (1006, "Connection dropped".into(), None),
                },
                () = outlet.woken() => {
                    match outlet.ending() {
                        Some(Ending::Deleted) => {
                            let reason = "Closed by the @connections API";
                            break (NORMAL, reason.into(), Some((NORMAL, reason)));
                        }
                        Some(Ending::Abrupt) => {
                            abrupt = true;
                            break (1006, "Connection dropped".into(), None);
                        }
                        Some(Ending::GoingAway) => {
                            break (GOING_AWAY, "Going away".into(), Some((GOING_AWAY, "Going away")));
                        }
                        Some(Ending::Idle) => {
                            break (GOING_AWAY, "Idle timeout".into(), Some((GOING_AWAY, "Going away")));
                        }
                        None => {}
                    }
                    if outlet.drain().await.is_err() {
                        break (1006, "Connection dropped".into(), None);
                    }
                }
                _ = &mut idle => break (GOING_AWAY, "Idle timeout".into(), Some((GOING_AWAY, "Going away"))),
                _ = &mut max_end => {
                    break (GOING_AWAY, "Maximum connection duration reached".into(), Some((GOING_AWAY, "Going away")));
                }
                _ = shutdown.changed() => {
                    break (GOING_AWAY, "Server shutting down".into(), Some((GOING_AWAY, "Going away")));
                }
            }
        };
        // No push may follow a close frame: pushes answer Gone from here on.
        outlet.close();
        if abrupt {
            // As a network failure: the TCP connection ends, no close frame, no handshake.
            outlet.abort();
            drop(ws);
        } else {
            if let Some((code, reason)) = close {
                let _ = ws.send(close_frame(code, reason)).await;
            }
            let _ = ws.close(None).await;
        }
        self.finish(&id, &conn, code, &reason).await;
    }

    /// A text frame: to a `[[route]]` target when its route key has one (see [`targets`]),
    /// else to the bundled handler.
    async fn message(&self, id: &str, conn: &ConnInfo, body: String) {
        let started = Instant::now();
        let route = self.route_for(&body);
        let event = self.events.event(
            "MESSAGE",
            &route,
            id,
            conn,
            Some((body.clone(), false)),
            None,
            None,
        );
        if let Some(target) = self.targets.route(&route) {
            let request_id = event["requestContext"]["requestId"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let from = targets::Sender {
                connection_id: id,
                request_id: &request_id,
                caller: conn.caller.as_ref(),
            };
            let (status, reply) = match self.targets.call(target, &from, &body, &event).await {
                targets::Outcome::Answered { status, body } => {
                    (status.to_string(), body.filter(|_| target.two_way))
                }
                targets::Outcome::Failed(why) => (
                    format!("500 ({why})"),
                    Some(targets::gateway_error(
                        "Internal server error",
                        id,
                        &request_id,
                    )),
                ),
                targets::Outcome::TimedOut => (
                    "504 (timed out)".to_owned(),
                    Some(targets::gateway_error(
                        "Endpoint request timed out",
                        id,
                        &request_id,
                    )),
                ),
            };
            if let Some(reply) = reply {
                // A route response is not a post to @connections: no throttle.
                let _ = self.handler.pusher().send(id, reply.as_bytes());
            }
            self.log(&route, id, status, started);
            return;
        }
        match self.invoke(event).await {
            Ok(Outcome::Http { status, .. }) => self.log(&route, id, status, started),
            Ok(_) => self.log(&route, id, 200, started),
            Err(e) => self.log(&route, id, format!("500 ({e})"), started),
        }
    }

    /// `$disconnect` and bookkeeping, once per connection.
    async fn finish(&self, id: &str, conn: &ConnInfo, code: u16, reason: &str) {
        self.handler.pusher().unregister(id);
        if lock(&self.conns).remove(id).is_none() {
            return;
        }
        let started = Instant::now();
        let mut event = self
            .events
            .event("DISCONNECT", "$disconnect", id, conn, None, None, None);
        event["requestContext"]["disconnectStatusCode"] = json!(code);
        event["requestContext"]["disconnectReason"] = json!(reason);
        match self.invoke(event).await {
            Ok(Outcome::Http { status, .. }) => self.log("$disconnect", id, status, started),
            Ok(_) => self.log("$disconnect", id, 200, started),
            Err(e) => self.log("$disconnect", id, format!("500 ({e})"), started),
        }
        if self.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.drained.notify_waiters();
        }
    }
}

/// Runs the gateway until Ctrl-C / SIGTERM; then closes every client with 1001 and runs
/// `$disconnect` for each. `ready` receives the bound address.
pub async fn run(mut opts: DevOptions, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    // A [[route]]'s key is a route of the API: the selection expression picks it.
    let user_keys: Vec<String> = opts.user_routes.iter().map(|r| r.key.clone()).collect();
    opts.routes.extend(user_keys);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let listening = format!("cannot listen on {}:{}", opts.host, opts.port);
    let listener = socket::listen(&opts.host, opts.port)
        .await
        .map_err(Error::io(listening.clone()))?;
    let addr = listener.local_addr().map_err(Error::io(listening))?;
    let mut settings = opts.settings.clone();
    settings.endpoint_override = Some(format!("http://{addr}/{}", opts.stage));
    settings.api_id = Some("local".into());
    settings.stage = opts.stage.clone();
    let (logger, log_task) = Logger::start();
    let invoker = Arc::new(invoke::DevInvoker::default());
    let workers = settings.broadcast_workers;
    let mut dev_handler = Handler::new(
        settings,
        Arc::new(MemoryStore::new()),
        Arc::new(DevPusher::new(opts.throttle.clone())),
    )
    .with_fanout(FanOut::new(
        invoker.clone(),
        Arc::new(MemoryBroadcastLog::new()),
        workers,
    ));
    if let Some(auth) = opts.auth.clone() {
        dev_handler = dev_handler.with_auth(auth);
    }
    if let Some(catalogue) = opts.catalogue.clone() {
        dev_handler = dev_handler.with_catalogue(catalogue);
    }
    if let Some((retention, cap)) = opts.history {
        dev_handler = dev_handler.with_history(
            Arc::new(handler::history::MemoryHistory::new(retention, cap)),
            cap,
        );
    }
    let gw = Arc::new(Gateway {
        logger,
        handler: dev_handler,
        events: Events::new(opts.stage.clone(), format!("localhost:{}", addr.port())),
        targets: targets::Targets::new(
            opts.user_routes.clone(),
            opts.lambda_endpoint.clone(),
            opts.backend_secret.clone(),
        )
        .map_err(Error::Failed)?,
        opts: opts.clone(),
        conns: Mutex::new(HashMap::new()),
        shutdown: shutdown_rx,
        lanes: socket::Lanes::start(
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        ),
        open: AtomicUsize::new(0),
        drained: Notify::new(),
    });
    invoker.attach(&gw);
    let mut app = Router::new()
        .route(&opts.path, get(connect::upgrade))
        .route(
            "/@connections/{id}",
            post(management::post_connection)
                .get(management::get_connection)
                .delete(management::delete_connection),
        )
        .route(
            "/{stage}/@connections/{id}",
            post(management::post_connection)
                .get(management::get_connection)
                .delete(management::delete_connection),
        )
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invoke::invoke_function),
        )
        .route("/_dev/drop", post(drops::drop_connections));
    if let Some((every, how)) = opts.drop_every {
        drops::drop_every(gw.clone(), every, how);
    }
    let stage_path = format!("/{}", opts.stage);
    if stage_path != opts.path {
        app = app.route(&stage_path, get(connect::upgrade));
    }
    let app = app.with_state(gw.clone());
    ready(addr);
    let mut signal_rx = shutdown_tx.subscribe();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = shutdown_tx.send(true);
    });
    // Connections close themselves on the shutdown signal; wait for their $disconnect.
    socket::serve(listener, app, async move {
        let _ = signal_rx.changed().await;
    })
    .await;
    let wait = async {
        loop {
            let drained = gw.drained.notified();
            if gw.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            drained.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
    // Flush the log: dropping the gateway closes the channel, and the writer drains it.
    drop(gw);
    let _ = tokio::time::timeout(Duration::from_secs(2), log_task).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_api_gateway_ids() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| events::connection_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids {
            assert_eq!(id.len(), 16);
            assert!(id.ends_with('='));
        }
    }
}
