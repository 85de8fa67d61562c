//! What each event does: one [`Event`] in, its effects on the two ports (the connection store
//! and the pusher), one [`Outcome`] out. Generic over the ports so the Lambda and `wsctl dev`
//! share it. Broadcasts too large for one invocation go to the fan-out component
//! ([`crate::fanout::FanOut`]), which the handler calls with its ports.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};

use crate::auth;
use crate::authorizer::{AuthorizeRequest, AuthorizerAnswer};
use crate::catalogue::Catalogue;
use crate::clock::{iso8601, now_iso8601};
use crate::delivered::DeliveryReport;
use crate::delivery::{encode_message, Deliverer};
use crate::error::HandlerError;
use crate::fanout::{BroadcastStatus, FanOut};
use crate::history::{stamp, topic_stream, user_stream, HistoryPort, Stream, ALL_STREAM};
use crate::inbound::{parse_client_message, ClientMessage, Event, RequestContext};
use crate::invocation::{new_broadcast_id, Invocation, Recipient};
use crate::membership::{Membership, MembershipReport};
use crate::push::{PushError, Pusher};
use crate::replay::Access;
use crate::settings::Settings;
use crate::store::{Connection, ConnectionStore, Filter};
use crate::store::{Rows, WHOLE};
use crate::topics::{keep_claims, Identity, Policy, Verb};

/// Lambda's longest invocation: the time a delivery gets when its caller names no deadline.
pub const MAX_INVOCATION: Duration = Duration::from_secs(15 * 60);

/// The function's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    /// For API Gateway: a non-2xx answer to `$connect` rejects the handshake.
    Http {
        #[serde(rename = "statusCode")]
        status: u16,
        body: String,
        /// Response headers: on `$connect`, the subprotocol chosen (`Sec-WebSocket-Protocol`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, String>,
    },
    /// For direct invocations.
    Report(DeliveryReport),
    /// A broadcast's status record (`{"action":"broadcast_status"}`).
    Status(Box<BroadcastStatus>),
    /// What a backend's `subscribe`, `unsubscribe` or `close` did.
    Membership(MembershipReport),
    /// The `$connect` authorizer's answer (see [`crate::authorizer`]).
    Authorized(AuthorizerAnswer),
}

impl Outcome {
    fn http(status: u16, body: &str) -> Self {
        Outcome::Http {
            status,
            body: body.to_owned(),
            headers: BTreeMap::new(),
        }
    }
}

/// The handler: generic over its two ports so the Lambda and `wsctl dev` share it.
pub struct Handler<S: ?Sized, P: ?Sized> {
    settings: Settings,
    store: Arc<S>,
    pusher: Arc<P>,
    auth: Option<Arc<auth::Auth>>,
    fanout: Option<Arc<FanOut>>,
    /// Streams' history, and how many entries a resume replays at most per stream.
    history: Option<(Arc<dyn HistoryPort>, u32)>,
    /// The project's catalogue: messages that break it are refused.
    catalogue: Option<Arc<Catalogue>>,
}

impl<S: ?Sized, P: ?Sized> Clone for Handler<S, P> {
    fn clone(&self) -> Self {
        Handler {
            settings: self.settings.clone(),
            store: self.store.clone(),
            pusher: self.pusher.clone(),
            auth: self.auth.clone(),
            fanout: self.fanout.clone(),
            history: self.history.clone(),
            catalogue: self.catalogue.clone(),
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
            fanout: None,
            history: None,
            catalogue: None,
        }
    }

    /// Lets broadcasts keep a status record and split over invocations of the function (see
    /// [`crate::fanout`]).
    /// Gives every broadcast and `send --user` a position in its stream, kept in `history`,
    /// and lets clients `resume` (at most `cap` entries per stream); see [`crate::history`].
    pub fn with_history(mut self, history: Arc<dyn HistoryPort>, cap: u32) -> Self {
        self.history = Some((history, cap.max(1)));
        self
    }

    /// Refuses messages that break `catalogue` (see [`crate::catalogue`]).
    pub fn with_catalogue(mut self, catalogue: Arc<Catalogue>) -> Self {
        self.catalogue = Some(catalogue);
        self
    }

    /// Whether a message may be sent, by the catalogue.
    fn check(&self, message: &Value) -> Result<(), HandlerError> {
        match &self.catalogue {
            Some(c) => c.check_event(message).map_err(HandlerError::InvalidMessage),
            None => Ok(()),
        }
    }

    pub fn with_fanout(mut self, fanout: FanOut) -> Self {
        self.fanout = Some(Arc::new(fanout));
        self
    }

    /// Requires a valid token on `$connect` (401 otherwise); the token's `sub`, and the claims
    /// the topic rules name, are stored on the connection's row.
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

    /// Handles `event` with Lambda's longest time, [`MAX_INVOCATION`], to answer in.
    pub async fn handle(&self, event: Event) -> Result<Outcome, HandlerError> {
        self.handle_until(event, Instant::now() + MAX_INVOCATION)
            .await
    }

    /// Handles `event`, answering by `deadline` (the invocation's, from the Lambda context):
    /// a delivery still going then stops and reports what it did not deliver.
    pub async fn handle_until(
        &self,
        event: Event,
        deadline: Instant,
    ) -> Result<Outcome, HandlerError> {
        match event {
            Event::Connect {
                ctx,
                headers,
                query,
            } => self.connect(&ctx, &headers, &query).await,
            Event::Disconnect { ctx } => self.disconnect(&ctx).await,
            Event::Authorize(request) => self.authorize(&request).await.map(Outcome::Authorized),
            Event::Message { ctx, body } => self.message(&ctx, body.as_deref(), deadline).await,
            Event::Invoke(payload) => match Invocation::parse(&payload)? {
                Invocation::Status { broadcast_id } => Ok(Outcome::Status(Box::new(
                    self.broadcast_status(&broadcast_id).await?,
                ))),
                invocation @ (Invocation::Subscribe { .. }
                | Invocation::Unsubscribe { .. }
                | Invocation::Close { .. }) => self
                    .membership(invocation, deadline)
                    .await
                    .map(Outcome::Membership),
                invocation => self
                    .run_invocation(invocation, deadline)
                    .await
                    .map(Outcome::Report),
            },
        }
    }

    /// The claims a connection keeps of its token: those the topic rules name (on its row,
    /// and in the authorizer's context with those `[auth] claims` names for routes).
    fn kept_claims(&self) -> std::collections::BTreeSet<String> {
        let mut names = self
            .settings
            .topics
            .as_ref()
            .map(|r| r.claim_names())
            .unwrap_or_default();
        if let Some(auth) = &self.auth {
            names.extend(auth.claims.iter().cloned());
        }
        names
    }

    /// The `$connect` authorizer: the token verified once, its subject and the named claims in
    /// the context API Gateway hands every later event. A refused token is `Unauthorized`
    /// (401), keys that cannot be fetched a function error (500).
    pub async fn authorize(
        &self,
        request: &AuthorizeRequest,
    ) -> Result<AuthorizerAnswer, HandlerError> {
        let auth = self.auth.as_ref().ok_or(HandlerError::NoAuth)?;
        let (_, protocol_token) = auth::offered_protocol(&request.headers);
        let verified = match auth.token(&request.query, protocol_token) {
            Err(e) => Err(e),
            Ok(token) => auth.verify(token).await,
        };
        match verified {
            Ok(v) => Ok(AuthorizerAnswer::allow(
                &request.method_arn,
                &v,
                &self.kept_claims(),
            )),
            Err(e) if e.is_server_error() => {
                tracing::error!(error = %e, "cannot verify tokens");
                Err(HandlerError::AuthUnavailable(e))
            }
            Err(e) => {
                tracing::info!(reason = %e, "token refused");
                Err(HandlerError::Unauthorized(e))
            }
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
        // A client that offers wsctl's subprotocol must get it back, or its browser fails the
        // handshake (API Gateway passes the header on only when $connect's answer has it).
        let (offered, protocol_token) = auth::offered_protocol(headers);
        let user = match (&ctx.caller, &self.auth) {
            // The authorizer verified the token (API Gateway, or wsctl dev, set the context).
            (Some(caller), _) => Some(auth::Verified {
                sub: caller.sub.clone(),
                claims: caller
                    .claims
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            }),
            (None, None) => None,
            // No authorizer in front (a stack deployed before it had one): verified here.
            (None, Some(auth)) => {
                let verified = match auth.token(query, protocol_token) {
                    Err(e) => Err(e),
                    Ok(token) => auth.verify(token).await,
                };
                match verified {
                    Ok(verified) => Some(verified),
                    Err(e) if e.is_server_error() => {
                        tracing::error!(connection_id = %ctx.connection_id, error = %e, "cannot verify tokens");
                        return Ok(Outcome::http(500, "Internal server error"));
                    }
                    Err(e) => {
                        return Ok(Outcome::http(401, &format!("Unauthorized: {e}")));
                    }
                }
            }
        };
        // Of the token, only its subject and the claims the topic rules name are kept.
        let (user, claims) = match (user, &self.settings.topics) {
            (None, _) => (None, BTreeMap::new()),
            (Some(v), None) => (Some(v.sub), BTreeMap::new()),
            (Some(v), Some(rules)) => {
                let claims = keep_claims(&v.claims, &rules.claim_names());
                (Some(v.sub), claims)
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
                claims,
            })
            .await?;
        let mut connected = Outcome::http(200, "Connected");
        if let (true, Outcome::Http { headers, .. }) = (offered, &mut connected) {
            headers.insert("Sec-WebSocket-Protocol".into(), auth::SUBPROTOCOL.into());
        }
        Ok(connected)
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
            if is_execute_api_host(domain) {
                return Ok(format!("https://{domain}/{stage}"));
            }
            // A custom domain: its API mapping hides the stage (the runbook's
            // https://{domain}/{stage} is wrong there), so post through the API's own host.
            return Ok(match (&self.settings.api_id, &self.settings.region) {
                (Some(api), Some(region)) => {
                    format!("https://{api}.execute-api.{region}.amazonaws.com/{stage}")
                }
                // Without the API's id: the domain itself, mapped at its root as wsctl maps it.
                _ => format!("https://{domain}"),
            });
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
        deadline: Instant,
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
                match self.may(Verb::Subscribe, ctx, &topic).await? {
                    Some(false) => forbidden(Verb::Subscribe, &topic),
                    Some(true) if self.store.subscribe(id, &topic).await? => {
                        json!({"type": "subscribed", "data": {"topic": topic}})
                    }
                    _ => error_message("not_connected", "this connection is not registered"),
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
            Ok(ClientMessage::Broadcast { topic: None, .. })
                if !self.policy().allows_untopiced() =>
            {
                error_message(
                    "forbidden",
                    "a client's broadcast must name a topic the [topics] publish rules allow",
                )
            }
            Ok(ClientMessage::Broadcast {
                topic: Some(topic), ..
            }) if self.may(Verb::Publish, ctx, &topic).await? != Some(true) => {
                forbidden(Verb::Publish, &topic)
            }
            Ok(ClientMessage::Broadcast { message, topic }) => match self.check(&message) {
                Err(refused) => error_message("bad_request", &refused.to_string()),
                Ok(()) => match self
                    .broadcast(&endpoint, &message, topic.as_deref(), deadline)
                    .await
                {
                    Ok(report) => json!({"type": "broadcast_report", "data": report}),
                    Err(HandlerError::MessageTooLarge { size, limit }) => error_message(
                        "bad_request",
                        &format!("message is {size} bytes; the limit is {limit}"),
                    ),
                    Err(e) => return Err(e),
                },
            },
            Ok(ClientMessage::Resume(streams)) => {
                self.resume(&endpoint, ctx, streams, deadline).await?
            }
            Ok(ClientMessage::Other(body)) => json!({"type": "echo", "data": body}),
        };
        self.reply(&endpoint, id, reply).await?;
        Ok(Outcome::http(200, "Message processed"))
    }

    /// What clients may do with topics here.
    fn policy(&self) -> Policy<'_> {
        Policy::of(self.settings.topics.as_ref(), self.auth.is_some())
    }

    /// Whether the connection of `ctx` may do `verb` with `topic`: None when the check needs
    /// the connection's row and there is none. Who it is comes from the authorizer's context
    /// when the event has one, else from the row. A refusal is logged (who, what, which topic).
    async fn may(
        &self,
        verb: Verb,
        ctx: &RequestContext,
        topic: &str,
    ) -> Result<Option<bool>, HandlerError> {
        let id = ctx.connection_id.as_str();
        let policy = self.policy();
        let row = match (&ctx.caller, policy.needs_identity()) {
            (None, true) => match self.store.get(id).await? {
                Some(row) => Some(row),
                None => return Ok(None),
            },
            _ => None,
        };
        let who = match (&ctx.caller, &row) {
            (Some(caller), _) => Identity {
                sub: Some(&caller.sub),
                claims: Some(&caller.claims),
            },
            (None, Some(r)) => Identity {
                sub: r.user.as_deref(),
                claims: Some(&r.claims),
            },
            (None, None) => Identity::default(),
        };
        let allowed = policy.allows(verb, topic, &who);
        if !allowed {
            tracing::info!(
                connection_id = id,
                user = who.sub.unwrap_or(""),
                topic,
                "not allowed to {} the topic",
                verb.as_str()
            );
        }
        Ok(Some(allowed))
    }

    /// A backend's `subscribe`, `unsubscribe` or `close`: not bound by the topic rules.
    async fn membership(
        &self,
        invocation: Invocation,
        deadline: Instant,
    ) -> Result<MembershipReport, HandlerError> {
        let endpoint = self.endpoint(None)?;
        let membership = Membership {
            deliverer: self.deliverer(deadline),
            endpoint: &endpoint,
        };
        match invocation {
            Invocation::Subscribe { topic, to } => membership.change(true, &topic, &to).await,
            Invocation::Unsubscribe { topic, to } => membership.change(false, &topic, &to).await,
            Invocation::Close { who } => membership.close(&who).await,
            other => Err(HandlerError::BadInvocation(format!(
                "{} is not a membership change",
                other.payload()["action"]
            ))),
        }
    }

    /// A direct invocation that delivers: `broadcast` or `send`.
    pub async fn invoke(&self, payload: &Value) -> Result<DeliveryReport, HandlerError> {
        self.invoke_until(payload, Instant::now() + MAX_INVOCATION)
            .await
    }

    /// A direct invocation, answered by `deadline`.
    pub async fn invoke_until(
        &self,
        payload: &Value,
        deadline: Instant,
    ) -> Result<DeliveryReport, HandlerError> {
        self.run_invocation(Invocation::parse(payload)?, deadline)
            .await
    }

    async fn run_invocation(
        &self,
        invocation: Invocation,
        deadline: Instant,
    ) -> Result<DeliveryReport, HandlerError> {
        let endpoint = self.endpoint(None)?;
        match invocation {
            Invocation::Broadcast {
                message,
                topic,
                broadcast_id,
            } => {
                self.check(&message)?;
                self.start_broadcast(
                    &endpoint,
                    &message,
                    topic.as_deref(),
                    broadcast_id,
                    deadline,
                )
                .await
            }
            Invocation::Part(part) => match &self.fanout {
                Some(fan) => fan.run_part(&self.deliverer(deadline), *part, true).await,
                None => Err(HandlerError::BadInvocation(
                    "this function has no broadcasts table (BROADCASTS_TABLE): it cannot run a part of a broadcast".into(),
                )),
            },
            Invocation::Status { broadcast_id } => Err(HandlerError::BadInvocation(format!(
                "broadcast_status ({broadcast_id}) answers with a status, not a delivery report"
            ))),
            Invocation::Subscribe { .. } | Invocation::Unsubscribe { .. } | Invocation::Close { .. } => {
                Err(HandlerError::BadInvocation(
                    "subscribe, unsubscribe and close answer with a membership report, not a delivery report".into(),
                ))
            }
            Invocation::Send {
                to: Recipient::ConnectionId(connection_id),
                message,
            } => {
                self.check(&message)?;
                let data = encode_message(&message)?;
                Ok(self
                    .deliverer(deadline)
                    .send(&endpoint, &connection_id, &data)
                    .await)
            }
            Invocation::Send {
                to: Recipient::User(user),
                message,
            } => {
                self.check(&message)?;
                let message = self
                    .kept(&user_stream(&user), &new_broadcast_id(), &message)
                    .await?;
                self.deliver_to(
                    &endpoint,
                    &message,
                    Rows::Scan(Filter::User(&user)),
                    deadline,
                )
                .await
            }
        }
    }

    /// Starts a broadcast (by `deadline`): split over invocations by the fan-out component when
    /// the handler has one and the broadcast is large, delivered here otherwise.
    async fn start_broadcast(
        &self,
        endpoint: &str,
        message: &Value,
        topic: Option<&str>,
        id: Option<String>,
        deadline: Instant,
    ) -> Result<DeliveryReport, HandlerError> {
        let id = id.unwrap_or_else(new_broadcast_id);
        let deliverer = self.deliverer(deadline);
        if let (Some(fan), Some(_)) = (&self.fanout, &self.history) {
            // A repeated invocation of a broadcast already under way keeps its one position.
            if let Some(status) = fan.log.get(&id).await? {
                return Ok(crate::fanout::report_of(&status));
            }
        }
        let stream = topic.map_or(ALL_STREAM.to_owned(), topic_stream);
        let kept = self.kept(&stream, &id, message).await?;
        let message = &kept;
        if let Some(fan) = &self.fanout {
            return fan.start(&deliverer, endpoint, message, topic, id).await;
        }
        let rows = topic.map_or(Rows::Scan(Filter::All), |t| Rows::Topic(t, WHOLE));
        let mut report = deliverer.deliver_to(endpoint, message, rows).await?;
        report.broadcast_id = Some(id);
        Ok(report)
    }

    /// `message` with its position in `stream`, kept in the history, when the handler keeps
    /// history and the message is an object; as it is otherwise.
    async fn kept(&self, stream: &str, id: &str, message: &Value) -> Result<Value, HandlerError> {
        match &self.history {
            Some((history, _)) if message.is_object() => {
                let seq = history
                    .append(stream, id, message)
                    .await
                    .map_err(|e| HandlerError::History(Box::new(e)))?;
                Ok(stamp(message, id, stream, seq))
            }
            _ => Ok(message.clone()),
        }
    }

    /// A client's `resume`: the streams it may hear replayed, the others refused.
    async fn resume(
        &self,
        endpoint: &str,
        ctx: &RequestContext,
        streams: std::collections::BTreeMap<String, u64>,
        deadline: Instant,
    ) -> Result<Value, HandlerError> {
        let Some((history, cap)) = &self.history else {
            return Ok(error_message(
                "not_kept",
                "this stack keeps no history ([history] is off): there is nothing to resume",
            ));
        };
        let mut decided = std::collections::BTreeMap::new();
        for (name, after) in streams {
            let allowed = match Stream::parse(&name) {
                Some(Stream::All) => true,
                Some(Stream::Topic(t)) => self.may(Verb::Subscribe, ctx, t).await? == Some(true),
                Some(Stream::User(u)) => self.subject(ctx).await?.as_deref() == Some(u),
                None => false,
            };
            let access = if allowed {
                Access::Allowed
            } else {
                Access::Forbidden
            };
            decided.insert(name, (after, access));
        }
        crate::replay::resume(
            &self.deliverer(deadline),
            endpoint,
            &ctx.connection_id,
            history.as_ref(),
            *cap,
            &decided,
        )
        .await
    }

    /// The connection's subject: the authorizer's, else its row's.
    async fn subject(&self, ctx: &RequestContext) -> Result<Option<String>, HandlerError> {
        if let Some(caller) = &ctx.caller {
            return Ok(Some(caller.sub.clone()));
        }
        Ok(self
            .store
            .get(&ctx.connection_id)
            .await?
            .and_then(|row| row.user))
    }

    /// The status record of broadcast `id`.
    async fn broadcast_status(&self, id: &str) -> Result<BroadcastStatus, HandlerError> {
        match &self.fanout {
            Some(fan) => fan.status(id).await,
            None => Err(HandlerError::BadInvocation(
                "this function keeps no broadcast records (BROADCASTS_TABLE is not set)".into(),
            )),
        }
    }

    fn deliverer(&self, deadline: Instant) -> Deliverer<'_, S, P> {
        Deliverer {
            store: &*self.store,
            pusher: &*self.pusher,
            concurrency: self.settings.broadcast_concurrency,
            attempt_timeout: self.settings.post_timeout,
            deadline,
        }
    }

    /// Delivers `message` to every connection (or those subscribed to `topic`), fanning out
    /// when the handler can; see [`Handler::start_broadcast`].
    pub async fn broadcast(
        &self,
        endpoint: &str,
        message: &Value,
        topic: Option<&str>,
        deadline: Instant,
    ) -> Result<DeliveryReport, HandlerError> {
        self.start_broadcast(endpoint, message, topic, None, deadline)
            .await
    }

    /// Delivers `message` to the connections `rows` names, by `deadline`, in this invocation.
    pub async fn deliver_to(
        &self,
        endpoint: &str,
        message: &Value,
        rows: Rows<'_>,
        deadline: Instant,
    ) -> Result<DeliveryReport, HandlerError> {
        self.deliverer(deadline)
            .deliver_to(endpoint, message, rows)
            .await
    }
}

/// `{"type":"error","data":{"code":...,"message":...}}`
pub fn error_message(code: &str, message: &str) -> Value {
    json!({"type": "error", "data": {"code": code, "message": message}})
}

/// `{"type":"error","data":{"code":"forbidden","action":...,"topic":...,"message":...}}`: the
/// topic rules refuse. The reply names the action and the topic (a client may have several
/// requests in flight), not the rules.
pub fn forbidden(verb: Verb, topic: &str) -> Value {
    json!({"type": "error", "data": {
        "code": "forbidden",
        "action": verb.action(),
        "topic": topic,
        "message": format!("not allowed to {} {topic:?}", verb.as_str()),
    }})
}

/// Whether `host` is an API's own `{api-id}.execute-api.{region}.amazonaws.com[.cn]`.
fn is_execute_api_host(host: &str) -> bool {
    host.contains(".execute-api.")
        && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"))
}
