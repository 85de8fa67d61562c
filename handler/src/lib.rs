//! The WebSocket connection handler's logic: events in, effects on two ports out.
//!
//! The Lambda binary (`src/main.rs`) turns API Gateway events into [`Event`]s and runs them
//! against a DynamoDB [`store::DynamoStore`] and the management API
//! [`push::ManagementApiPusher`]; `wsctl dev` runs the same [`Handler`] against a
//! [`store::MemoryStore`] and an [`push::InProcessPusher`]. Nothing here names an AWS type.

#[cfg(feature = "aws")]
pub mod apigw;
pub mod auth;
pub mod push;
pub mod store;

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Map, Value};

pub use push::{Closed, InProcessPusher, Outlet, PushError, Pusher};
pub use store::{Connection, ConnectionStore, Filter, IdPage, MemoryStore, Page, StoreError};

/// API Gateway's limit for one message (and so for one `post_to_connection`).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// Longest topic name a client may subscribe to.
pub const MAX_TOPIC_CHARS: usize = 128;

/// The function's settings, read from its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Seconds a row lives before DynamoDB's TTL may remove it (`CONNECTION_TTL_SECONDS`).
    pub ttl_seconds: i64,
    /// Whether clients may send `{"action":"broadcast"}` (`ALLOW_CLIENT_BROADCAST`).
    pub allow_client_broadcast: bool,
    /// Largest client message body accepted (`MAX_CLIENT_MESSAGE_BYTES`).
    pub max_client_message_bytes: usize,
    /// Posts in flight at once during a broadcast (`BROADCAST_CONCURRENCY`).
    pub broadcast_concurrency: usize,
    /// `WEBSOCKET_API_ID`: used for direct invocations, which carry no domain name.
    pub api_id: Option<String>,
    /// `WEBSOCKET_STAGE`.
    pub stage: String,
    /// `AWS_REGION` (set by Lambda) or the runbook's `REGION_NAME`.
    pub region: Option<String>,
    /// `WEBSOCKET_MANAGEMENT_ENDPOINT`: overrides the management endpoint for every push
    /// (a local gateway, an emulator).
    pub endpoint_override: Option<String>,
    /// `ALLOWED_ORIGINS` (comma-separated): browser origins allowed to connect; empty allows
    /// every origin.
    pub allowed_origins: Vec<String>,
    /// `MAX_MESSAGES_PER_SECOND`: messages one connection may send per second; more are
    /// answered `rate_limited` and not processed. 0 turns the limit off.
    pub max_messages_per_second: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ttl_seconds: 24 * 60 * 60,
            allow_client_broadcast: false,
            max_client_message_bytes: 32 * 1024,
            broadcast_concurrency: 64,
            api_id: None,
            stage: "prod".to_owned(),
            region: None,
            endpoint_override: None,
            allowed_origins: Vec::new(),
            max_messages_per_second: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: {expected}")]
pub struct SettingsError {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl Settings {
    /// Whether a browser `Origin` may connect.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.is_empty()
            || self
                .allowed_origins
                .iter()
                .any(|o| o == "*" || o == origin.trim_end_matches('/'))
    }

    /// Reads settings from a variable lookup (`std::env::var` in the Lambda).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let defaults = Settings::default();
        let nonempty = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        fn number<T: std::str::FromStr + PartialOrd + Copy>(
            name: &'static str,
            raw: Option<String>,
            default: T,
            min: T,
            expected: &'static str,
        ) -> Result<T, SettingsError> {
            match raw {
                None => Ok(default),
                Some(v) => match v.parse::<T>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(SettingsError {
                        name,
                        value: v,
                        expected,
                    }),
                },
            }
        }
        let allow_client_broadcast = match nonempty("ALLOW_CLIENT_BROADCAST").as_deref() {
            None => defaults.allow_client_broadcast,
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                return Err(SettingsError {
                    name: "ALLOW_CLIENT_BROADCAST",
                    value: other.to_owned(),
                    expected: "true or false",
                })
            }
        };
        let max_client_message_bytes = number(
            "MAX_CLIENT_MESSAGE_BYTES",
            nonempty("MAX_CLIENT_MESSAGE_BYTES"),
            defaults.max_client_message_bytes,
            1,
            "a positive number of bytes",
        )?;
        if max_client_message_bytes > MAX_MESSAGE_BYTES {
            return Err(SettingsError {
                name: "MAX_CLIENT_MESSAGE_BYTES",
                value: max_client_message_bytes.to_string(),
                expected: "at most 131072 (API Gateway's message limit)",
            });
        }
        Ok(Settings {
            ttl_seconds: number(
                "CONNECTION_TTL_SECONDS",
                nonempty("CONNECTION_TTL_SECONDS"),
                defaults.ttl_seconds,
                1,
                "a positive number of seconds",
            )?,
            allow_client_broadcast,
            max_client_message_bytes,
            broadcast_concurrency: number(
                "BROADCAST_CONCURRENCY",
                nonempty("BROADCAST_CONCURRENCY"),
                defaults.broadcast_concurrency,
                1,
                "a positive whole number",
            )?,
            api_id: nonempty("WEBSOCKET_API_ID"),
            stage: nonempty("WEBSOCKET_STAGE").unwrap_or(defaults.stage),
            region: nonempty("AWS_REGION").or_else(|| nonempty("REGION_NAME")),
            endpoint_override: nonempty("WEBSOCKET_MANAGEMENT_ENDPOINT"),
            allowed_origins: nonempty("ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().trim_end_matches('/').to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            max_messages_per_second: number(
                "MAX_MESSAGES_PER_SECOND",
                nonempty("MAX_MESSAGES_PER_SECOND"),
                defaults.max_messages_per_second,
                0,
                "a whole number of messages per second (0: no limit)",
            )?,
        })
    }
}

/// What API Gateway tells the function about the connection an event belongs to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub connection_id: String,
    /// `{api-id}.execute-api.{region}.amazonaws.com` or a custom domain.
    pub domain_name: Option<String>,
    pub stage: Option<String>,
    pub source_ip: Option<String>,
    /// Epoch milliseconds of the request.
    pub request_time_epoch_ms: i64,
}

/// The library's view of one invocation.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Connect {
        ctx: RequestContext,
        /// The handshake's query string (first value of each key).
        query: BTreeMap<String, String>,
        /// The handshake's headers, names lower-cased.
        headers: BTreeMap<String, String>,
    },
    Disconnect {
        ctx: RequestContext,
    },
    /// Any message route (`$default` or a custom route key).
    Message {
        ctx: RequestContext,
        body: Option<String>,
    },
    /// A direct invocation of the function (not through API Gateway), e.g. the runbook's
    /// `{"action":"broadcast","message":{...}}`.
    Invoke(Value),
}

/// The function's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// For API Gateway: a non-2xx answer to `$connect` rejects the handshake.
    Http {
        #[serde(rename = "statusCode")]
        status: u16,
        body: String,
    },
    /// For direct invocations.
    Report(DeliveryReport),
}

impl Outcome {
    fn http(status: u16, body: &str) -> Self {
        Outcome::Http {
            status,
            body: body.to_owned(),
        }
    }
}

/// What a broadcast or send did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DeliveryReport {
    /// Posts the endpoint accepted.
    pub delivered: u64,
    /// Connections that answered 410 Gone; their rows were deleted.
    pub gone: u64,
    /// Posts that failed otherwise (throttled, forbidden, network...).
    pub failed: u64,
    /// Up to [`DeliveryReport::MAX_ERRORS`] descriptions of the failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl DeliveryReport {
    pub const MAX_ERRORS: usize = 10;

    fn note_error(&mut self, message: String) {
        if self.errors.len() < Self::MAX_ERRORS {
            self.errors.push(message);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("connection store failed")]
    Store(#[from] StoreError),
    #[error("could not reply to connection {connection_id}")]
    Reply {
        connection_id: String,
        #[source]
        source: PushError,
    },
    #[error("message is {size} bytes; API Gateway accepts at most {limit} bytes per message")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("invalid invocation payload: {0}")]
    BadInvocation(String),
    #[error(
        "no management endpoint for a direct invocation: set WEBSOCKET_API_ID and AWS_REGION \
         (or WEBSOCKET_MANAGEMENT_ENDPOINT) in the function's environment"
    )]
    NoEndpoint,
    #[error("broadcast stopped after {} delivered, {} gone, {} failed", report.delivered, report.gone, report.failed)]
    BroadcastIncomplete {
        report: DeliveryReport,
        #[source]
        source: StoreError,
    },
}

impl HandlerError {
    /// A short stable name for the error kind (the Lambda `errorType`).
    pub fn kind(&self) -> &'static str {
        match self {
            HandlerError::Store(_) => "StoreError",
            HandlerError::Reply { .. } => "ReplyError",
            HandlerError::MessageTooLarge { .. } => "MessageTooLarge",
            HandlerError::BadInvocation(_) => "BadInvocation",
            HandlerError::NoEndpoint => "NoEndpoint",
            HandlerError::BroadcastIncomplete { .. } => "BroadcastIncomplete",
        }
    }
}

/// `error: cause: cause...`, the way errors are reported to Lambda and in logs.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        // The SDK's outer error often repeats its inner one; skip exact repeats.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// Why a client's message was refused with `bad_request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    #[error("message body is empty")]
    Empty,
    #[error("message is {size} bytes; the limit is {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("message is not valid JSON: {0}")]
    NotJson(String),
    #[error("message must be a JSON object, got {0}")]
    NotObject(&'static str),
    #[error("\"action\" must be a string")]
    ActionNotString,
    #[error("\"{action}\" needs a \"topic\": a non-empty string of at most {MAX_TOPIC_CHARS} characters without control characters")]
    BadTopic { action: &'static str },
    #[error("\"broadcast\" needs a \"message\"")]
    MissingMessage,
}

/// A client message, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Ping,
    Subscribe(String),
    Unsubscribe(String),
    Broadcast {
        message: Value,
        topic: Option<String>,
    },
    /// Any other action (or none): echoed back, as the runbook does.
    Other(Value),
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn valid_topic(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(t))
            if !t.is_empty()
                && t.chars().count() <= MAX_TOPIC_CHARS
                && !t.chars().any(char::is_control) =>
        {
            Some(t.clone())
        }
        _ => None,
    }
}

/// Parses a client's message body. Never panics, whatever the input.
pub fn parse_client_message(body: Option<&str>, limit: usize) -> Result<ClientMessage, BadRequest> {
    let body = body.unwrap_or_default();
    if body.len() > limit {
        return Err(BadRequest::TooLarge {
            size: body.len(),
            limit,
        });
    }
    if body.trim().is_empty() {
        return Err(BadRequest::Empty);
    }
    let value: Value =
        serde_json::from_str(body).map_err(|e| BadRequest::NotJson(e.to_string()))?;
    let obj = match &value {
        Value::Object(o) => o,
        other => return Err(BadRequest::NotObject(json_kind(other))),
    };
    let action = match obj.get("action") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) => Some(a.as_str()),
        Some(_) => return Err(BadRequest::ActionNotString),
    };
    Ok(match action {
        Some("ping") => ClientMessage::Ping,
        Some("subscribe") => {
            ClientMessage::Subscribe(valid_topic(obj.get("topic")).ok_or(BadRequest::BadTopic {
                action: "subscribe",
            })?)
        }
        Some("unsubscribe") => ClientMessage::Unsubscribe(valid_topic(obj.get("topic")).ok_or(
            BadRequest::BadTopic {
                action: "unsubscribe",
            },
        )?),
        Some("broadcast") => {
            let message = obj
                .get("message")
                .cloned()
                .ok_or(BadRequest::MissingMessage)?;
            let topic = match obj.get("topic") {
                None | Some(Value::Null) => None,
                t => Some(valid_topic(t).ok_or(BadRequest::BadTopic {
                    action: "broadcast",
                })?),
            };
            ClientMessage::Broadcast { message, topic }
        }
        _ => ClientMessage::Other(value),
    })
}

/// The route key API Gateway picks for a message body: the string at `path` (the part of the
/// route selection expression after `$request.body.`, dotted for nested fields) when it names
/// one of `routes`; `$default` otherwise (not JSON, no such field, not a string, no such
/// route). Never panics, whatever the input.
pub fn select_route(path: &str, routes: &[String], body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return "$default".into();
    };
    let selected = path.split('.').try_fold(&value, |v, key| v.get(key));
    match selected.and_then(Value::as_str) {
        Some(key) if routes.iter().any(|r| r == key) => key.to_owned(),
        _ => "$default".into(),
    }
}

/// A direct invocation, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    Broadcast {
        message: Value,
        topic: Option<String>,
    },
    Send {
        connection_id: String,
        message: Value,
    },
    /// Every connection of an authenticated subject.
    SendToUser { user: String, message: Value },
}

/// Parses a direct invocation payload.
pub fn parse_invocation(payload: &Value) -> Result<Invocation, HandlerError> {
    let bad = |m: &str| HandlerError::BadInvocation(m.to_owned());
    let obj = payload.as_object().ok_or_else(|| {
        HandlerError::BadInvocation(format!(
            "expected a JSON object, got {}",
            json_kind(payload)
        ))
    })?;
    let message = |obj: &Map<String, Value>| {
        obj.get("message").cloned().ok_or_else(|| {
            bad("\"message\" is missing (the runbook's shape is {\"type\":...,\"data\":...})")
        })
    };
    match obj.get("action").and_then(Value::as_str) {
        Some("broadcast") => {
            let topic = match obj.get("topic") {
                None | Some(Value::Null) => None,
                t => Some(valid_topic(t).ok_or_else(|| {
                    bad("\"topic\" must be a non-empty string of at most 128 characters")
                })?),
            };
            Ok(Invocation::Broadcast {
                message: message(obj)?,
                topic,
            })
        }
        Some("send") => match (obj.get("connection_id"), obj.get("user")) {
            (Some(Value::String(id)), None) if !id.is_empty() => Ok(Invocation::Send {
                connection_id: id.clone(),
                message: message(obj)?,
            }),
            (None, Some(Value::String(user))) if !user.is_empty() => Ok(Invocation::SendToUser {
                user: user.clone(),
                message: message(obj)?,
            }),
            _ => Err(bad(
                "\"send\" needs either \"connection_id\" or \"user\" (the token's sub): a non-empty string",
            )),
        },
        Some(other) => Err(HandlerError::BadInvocation(format!(
            "unknown action {other:?}; expected \"broadcast\" or \"send\""
        ))),
        None => Err(bad(
            "\"action\" is missing; expected \"broadcast\" or \"send\"",
        )),
    }
}

/// Serializes a message for posting, refusing one over API Gateway's limit.
pub fn encode_message(message: &Value) -> Result<Vec<u8>, HandlerError> {
    let data =
        serde_json::to_vec(message).map_err(|e| HandlerError::BadInvocation(e.to_string()))?;
    if data.len() > MAX_MESSAGE_BYTES {
        return Err(HandlerError::MessageTooLarge {
            size: data.len(),
            limit: MAX_MESSAGE_BYTES,
        });
    }
    Ok(data)
}

/// Now as ISO-8601 UTC with milliseconds, e.g. `2026-11-27T13:21:17.123Z`.
pub fn now_iso8601() -> String {
    iso8601(time::OffsetDateTime::now_utc())
}

fn iso8601(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&format)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The handler: generic over its two ports so the Lambda and `wsctl dev` share it.
pub struct Handler<S: ?Sized, P: ?Sized> {
    settings: Settings,
    store: Arc<S>,
    pusher: Arc<P>,
    auth: Option<Arc<auth::Auth>>,
}

impl<S: ?Sized, P: ?Sized> Clone for Handler<S, P> {
    fn clone(&self) -> Self {
        Handler {
            settings: self.settings.clone(),
            store: self.store.clone(),
            pusher: self.pusher.clone(),
            auth: self.auth.clone(),
        }
    }
}

impl<S, P> Handler<S, P>
where
    S: ConnectionStore + ?Sized,
    P: Pusher + ?Sized,
{
    pub fn new(settings: Settings, store: Arc<S>, pusher: Arc<P>) -> Self {
        Handler {
            settings,
            store,
            pusher,
            auth: None,
        }
    }

    /// Requires a valid token on `$connect` (401 otherwise); the token's `sub` is stored on
    /// the connection's row.
    pub fn with_auth(mut self, auth: impl Into<Arc<auth::Auth>>) -> Self {
        self.auth = Some(auth.into());
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    pub fn pusher(&self) -> &Arc<P> {
        &self.pusher
    }

    pub async fn handle(&self, event: Event) -> Result<Outcome, HandlerError> {
        match event {
            Event::Connect {
                ctx,
                headers,
                query,
            } => self.connect(&ctx, &headers, &query).await,
            Event::Disconnect { ctx } => self.disconnect(&ctx).await,
            Event::Message { ctx, body } => self.message(&ctx, body.as_deref()).await,
            Event::Invoke(payload) => self.invoke(&payload).await.map(Outcome::Report),
        }
    }

    async fn connect(
        &self,
        ctx: &RequestContext,
        headers: &BTreeMap<String, String>,
        query: &BTreeMap<String, String>,
    ) -> Result<Outcome, HandlerError> {
        if ctx.connection_id.is_empty() {
            return Ok(Outcome::http(400, "Missing connection ID"));
        }
        // CORS does not apply to WebSockets: a browser sends Origin, and only the handshake
        // can refuse it. Clients that are not browsers send none and are not affected.
        if let Some(origin) = headers.get("origin") {
            if !self.settings.origin_allowed(origin) {
                return Ok(Outcome::http(403, "Forbidden: origin not allowed"));
            }
        }
        let user = match &self.auth {
            None => None,
            Some(auth) => {
                let verified = match query.get(&auth.query_param).filter(|t| !t.is_empty()) {
                    None => Err(auth::AuthError::Missing(auth.query_param.clone())),
                    Some(token) => auth.verify(token).await,
                };
                match verified {
                    Ok(sub) => Some(sub),
                    Err(e) if e.is_server_error() => {
                        tracing::error!(connection_id = %ctx.connection_id, error = %e, "cannot verify tokens");
                        return Ok(Outcome::http(500, "Internal server error"));
                    }
                    Err(e) => {
                        return Ok(Outcome::Http {
                            status: 401,
                            body: format!("Unauthorized: {e}"),
                        })
                    }
                }
            }
        };
        let now = time::OffsetDateTime::now_utc();
        self.store
            .put(Connection {
                connection_id: ctx.connection_id.clone(),
                connected_at: iso8601(now),
                ttl: now.unix_timestamp() + self.settings.ttl_seconds,
                topics: Default::default(),
                source_ip: ctx.source_ip.clone(),
                user,
            })
            .await?;
        Ok(Outcome::http(200, "Connected"))
    }

    async fn disconnect(&self, ctx: &RequestContext) -> Result<Outcome, HandlerError> {
        if ctx.connection_id.is_empty() {
            return Ok(Outcome::http(400, "Missing connection ID"));
        }
        self.store.delete(&ctx.connection_id).await?;
        Ok(Outcome::http(200, "Disconnected"))
    }

    /// The management endpoint for an event, or for a direct invocation when `ctx` is None.
    pub fn endpoint(&self, ctx: Option<&RequestContext>) -> Result<String, HandlerError> {
        if let Some(url) = &self.settings.endpoint_override {
            return Ok(url.trim_end_matches('/').to_owned());
        }
        if let Some(RequestContext {
            domain_name: Some(domain),
            stage: Some(stage),
            ..
        }) = ctx
        {
            return Ok(format!("https://{domain}/{stage}"));
        }
        match (&self.settings.api_id, &self.settings.region) {
            (Some(api), Some(region)) => Ok(format!(
                "https://{api}.execute-api.{region}.amazonaws.com/{}",
                self.settings.stage
            )),
            _ => Err(HandlerError::NoEndpoint),
        }
    }

    async fn reply(
        &self,
        endpoint: &str,
        connection_id: &str,
        message: Value,
    ) -> Result<(), HandlerError> {
        let data = encode_message(&message)?;
        match self.pusher.post(endpoint, connection_id, &data).await {
            Ok(()) => Ok(()),
            // The sender left before the reply: nothing to deliver, and its row goes too.
            Err(PushError::Gone(_)) => {
                self.store.delete(connection_id).await?;
                Ok(())
            }
            Err(source) => Err(HandlerError::Reply {
                connection_id: connection_id.to_owned(),
                source,
            }),
        }
    }

    async fn message(
        &self,
        ctx: &RequestContext,
        body: Option<&str>,
    ) -> Result<Outcome, HandlerError> {
        let endpoint = self.endpoint(Some(ctx))?;
        let id = ctx.connection_id.as_str();
        let limit = self.settings.max_messages_per_second;
        if limit > 0 {
            let window = time::OffsetDateTime::now_utc().unix_timestamp();
            if !self.store.count_message(id, window, limit).await? {
                let reply = error_message(
                    "rate_limited",
                    &format!("at most {limit} messages per second per connection"),
                );
                self.reply(&endpoint, id, reply).await?;
                return Ok(Outcome::http(429, "Too many messages"));
            }
        }
        let parsed = parse_client_message(body, self.settings.max_client_message_bytes);
        let reply = match parsed {
            Err(bad) => error_message("bad_request", &bad.to_string()),
            Ok(ClientMessage::Ping) => {
                json!({"type": "pong", "data": {"timestamp": now_iso8601()}})
            }
            Ok(ClientMessage::Subscribe(topic)) => {
                if self.store.subscribe(id, &topic).await? {
                    json!({"type": "subscribed", "data": {"topic": topic}})
                } else {
                    error_message("not_connected", "this connection is not registered")
                }
            }
            Ok(ClientMessage::Unsubscribe(topic)) => {
                if self.store.unsubscribe(id, &topic).await? {
                    json!({"type": "unsubscribed", "data": {"topic": topic}})
                } else {
                    error_message("not_connected", "this connection is not registered")
                }
            }
            Ok(ClientMessage::Broadcast { .. }) if !self.settings.allow_client_broadcast => {
                error_message(
                    "forbidden",
                    "clients may not broadcast; backends invoke the function instead",
                )
            }
            Ok(ClientMessage::Broadcast { message, topic }) => {
                match self.broadcast(&endpoint, &message, topic.as_deref()).await {
                    Ok(report) => json!({"type": "broadcast_report", "data": report}),
                    Err(HandlerError::MessageTooLarge { size, limit }) => error_message(
                        "bad_request",
                        &format!("message is {size} bytes; the limit is {limit}"),
                    ),
                    Err(e) => return Err(e),
                }
            }
            Ok(ClientMessage::Other(body)) => json!({"type": "echo", "data": body}),
        };
        self.reply(&endpoint, id, reply).await?;
        Ok(Outcome::http(200, "Message processed"))
    }

    /// A direct invocation: `broadcast` or `send`.
    pub async fn invoke(&self, payload: &Value) -> Result<DeliveryReport, HandlerError> {
        let invocation = parse_invocation(payload)?;
        let endpoint = self.endpoint(None)?;
        match invocation {
            Invocation::Broadcast { message, topic } => {
                self.broadcast(&endpoint, &message, topic.as_deref()).await
            }
            Invocation::Send {
                connection_id,
                message,
            } => {
                let data = encode_message(&message)?;
                let mut report = DeliveryReport::default();
                self.deliver(&endpoint, &connection_id, &data, &mut report)
                    .await;
                Ok(report)
            }
            Invocation::SendToUser { user, message } => {
                self.deliver_to(&endpoint, &message, Filter::User(&user))
                    .await
            }
        }
    }

    async fn deliver(
        &self,
        endpoint: &str,
        connection_id: &str,
        data: &[u8],
        report: &mut DeliveryReport,
    ) {
        let outcome = self
            .post_one(endpoint, connection_id.to_owned(), data)
            .await;
        tally(report, outcome);
    }

    async fn post_one(&self, endpoint: &str, connection_id: String, data: &[u8]) -> Delivery {
        let connection_id = connection_id.as_str();
        match self.pusher.post(endpoint, connection_id, data).await {
            Ok(()) => Delivery::Delivered,
            Err(PushError::Gone(_)) => match self.store.delete(connection_id).await {
                Ok(()) => Delivery::Gone(None),
                Err(e) => Delivery::Gone(Some(format!(
                    "deleting stale connection {connection_id}: {}",
                    error_chain(&e)
                ))),
            },
            Err(e) => Delivery::Failed(error_chain(&e)),
        }
    }

    /// Delivers `message` to every connection (or those subscribed to `topic`): reads every
    /// page of the store, keeps up to `broadcast_concurrency` posts in flight (fetching the next
    /// page while they run), deletes the rows of connections that are gone, and counts other
    /// failures without stopping.
    pub async fn broadcast(
        &self,
        endpoint: &str,
        message: &Value,
        topic: Option<&str>,
    ) -> Result<DeliveryReport, HandlerError> {
        let filter = topic.map_or(Filter::All, Filter::Topic);
        self.deliver_to(endpoint, message, filter).await
    }

    /// Delivers `message` to the connections `filter` selects (see [`Handler::broadcast`]).
    pub async fn deliver_to(
        &self,
        endpoint: &str,
        message: &Value,
        filter: Filter<'_>,
    ) -> Result<DeliveryReport, HandlerError> {
        use futures::stream::FuturesUnordered;
        let data = encode_message(message)?;
        let limit = self.settings.broadcast_concurrency.max(1);
        let mut report = DeliveryReport::default();
        let mut queue: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let mut in_flight = FuturesUnordered::new();
        let mut next_page = Some(self.store.scan_ids(filter, None));
        loop {
            while in_flight.len() < limit {
                match queue.pop_front() {
                    Some(id) => in_flight.push(self.post_one(endpoint, id, &data)),
                    None => break,
                }
            }
            if in_flight.is_empty() && queue.is_empty() && next_page.is_none() {
                return Ok(report);
            }
            let want_page = next_page.is_some() && queue.len() < limit;
            tokio::select! {
                Some(outcome) = in_flight.next(), if !in_flight.is_empty() => {
                    tally(&mut report, outcome);
                    // A post to an in-process outlet is ready at once, so without this the
                    // loop would keep its worker thread for the whole broadcast: the tasks
                    // that write the frames out (`wsctl dev`'s lanes), woken on this thread,
                    // would wait for it to end. Yields every so often (tokio's task budget).
                    tokio::task::coop::consume_budget().await;
                }
                page = async { next_page.as_mut().expect("guarded").await }, if want_page => {
                    next_page = None;
                    match page {
                        Ok(page) => {
                            queue.extend(page.items);
                            if let Some(cursor) = page.next {
                                next_page = Some(self.store.scan_ids(filter, Some(cursor)));
                            }
                        }
                        Err(source) => {
                            // Let the posts already in flight finish so the report is exact.
                            while let Some(outcome) = in_flight.next().await {
                                tally(&mut report, outcome);
                            }
                            return Err(HandlerError::BroadcastIncomplete { report, source });
                        }
                    }
                }
            }
        }
    }
}

enum Delivery {
    Delivered,
    Gone(Option<String>),
    Failed(String),
}

fn tally(report: &mut DeliveryReport, outcome: Delivery) {
    match outcome {
        Delivery::Delivered => report.delivered += 1,
        Delivery::Gone(None) => report.gone += 1,
        Delivery::Gone(Some(problem)) => {
            report.gone += 1;
            report.note_error(problem);
        }
        Delivery::Failed(problem) => {
            report.failed += 1;
            report.note_error(problem);
        }
    }
}

/// `{"type":"error","data":{"code":...,"message":...}}`
pub fn error_message(code: &str, message: &str) -> Value {
    json!({"type": "error", "data": {"code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_reject_bad_numbers_by_name() {
        let err = Settings::from_lookup(|k| (k == "CONNECTION_TTL_SECONDS").then(|| "soon".into()))
            .unwrap_err();
        assert_eq!(err.name, "CONNECTION_TTL_SECONDS");
        assert!(err.to_string().contains("soon"), "{err}");
        let err = Settings::from_lookup(|k| (k == "BROADCAST_CONCURRENCY").then(|| "0".into()))
            .unwrap_err();
        assert_eq!(err.name, "BROADCAST_CONCURRENCY");
    }

    #[test]
    fn settings_read_runbook_variables() {
        let env = BTreeMap::from([
            ("REGION_NAME", "eu-west-1"),
            ("WEBSOCKET_API_ID", "abc123"),
            ("WEBSOCKET_STAGE", "dev"),
            ("CONNECTIONS_TABLE", "p_ws_connections"),
        ]);
        let s = Settings::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.api_id.as_deref(), Some("abc123"));
        assert_eq!(s.stage, "dev");
        assert_eq!(s.ttl_seconds, 86400);
        assert!(!s.allow_client_broadcast);
    }

    #[test]
    fn iso8601_is_utc_with_millis() {
        let t = time::macros::datetime!(2026-01-09 12:34:56.789 UTC);
        assert_eq!(iso8601(t), "2026-01-09T12:34:56.789Z");
    }

    #[test]
    fn client_messages_parse() {
        let p = |s: &str| parse_client_message(Some(s), 1000);
        assert_eq!(p(r#"{"action":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(
            p(r#"{"action":"subscribe","topic":"t"}"#),
            Ok(ClientMessage::Subscribe("t".into()))
        );
        assert_eq!(
            p(r#"{"action":"subscribe"}"#),
            Err(BadRequest::BadTopic {
                action: "subscribe"
            })
        );
        assert_eq!(
            p(r#"{"action":"subscribe","topic":""}"#),
            Err(BadRequest::BadTopic {
                action: "subscribe"
            })
        );
        assert_eq!(p("[1]"), Err(BadRequest::NotObject("an array")));
        assert_eq!(p(r#"{"action":5}"#), Err(BadRequest::ActionNotString));
        assert!(matches!(p("{nope"), Err(BadRequest::NotJson(_))));
        assert_eq!(parse_client_message(None, 10), Err(BadRequest::Empty));
        assert_eq!(
            parse_client_message(Some(&"x".repeat(11)), 10),
            Err(BadRequest::TooLarge {
                size: 11,
                limit: 10
            })
        );
        assert_eq!(
            p(r#"{"hello":1}"#),
            Ok(ClientMessage::Other(json!({"hello":1})))
        );
    }

    #[test]
    fn invocations_parse() {
        assert_eq!(
            parse_invocation(&json!({"action":"broadcast","message":{"type":"t","data":1}}))
                .unwrap(),
            Invocation::Broadcast {
                message: json!({"type":"t","data":1}),
                topic: None
            }
        );
        assert!(matches!(
            parse_invocation(&json!({"action":"broadcast"})),
            Err(HandlerError::BadInvocation(_))
        ));
        assert!(matches!(
            parse_invocation(&json!({"action":"explode"})),
            Err(HandlerError::BadInvocation(_))
        ));
        assert!(matches!(
            parse_invocation(&json!([1])),
            Err(HandlerError::BadInvocation(_))
        ));
        assert!(matches!(
            parse_invocation(&json!({"action":"send","message":1})),
            Err(HandlerError::BadInvocation(_))
        ));
    }
}
