//! The handler's settings: read once from the function's environment ([`crate::env`]) by the
//! Lambda, or built by `wsctl dev` from the project file.

/// API Gateway's limit for one message (and so for one `post_to_connection`).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// The default bound of workers per broadcast (`BROADCAST_WORKERS`), and the largest accepted.
pub const DEFAULT_WORKERS: u32 = 10;
pub const MAX_WORKERS: u32 = 100;

/// The function's settings, read from its environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Seconds a row lives before DynamoDB's TTL may remove it (`CONNECTION_TTL_SECONDS`).
    pub ttl_seconds: i64,
    /// Whether clients may send `{"action":"broadcast"}` (`ALLOW_CLIENT_BROADCAST`).
    pub allow_client_broadcast: bool,
    /// Largest client message body accepted (`MAX_CLIENT_MESSAGE_BYTES`).
    pub max_client_message_bytes: usize,
    /// Upper bound of posts in flight during a broadcast (`BROADCAST_CONCURRENCY`); the
    /// delivery engine's window finds the throttle below it.
    pub broadcast_concurrency: usize,
    /// Hard timeout of one post to the management API (`POST_TIMEOUT_MS`).
    pub post_timeout: std::time::Duration,
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
    /// `TOPICS_SUBSCRIBE` / `TOPICS_PUBLISH`: which topics a client may subscribe and
    /// broadcast to. None: no rules, and then topics are open without `[auth]` and closed to
    /// clients with it (see [`crate::events`]).
    pub topics: Option<crate::topics::Rules>,
    /// `BROADCAST_WORKERS`: the most invocations one broadcast is split over (see
    /// [`crate::fanout`]), 1 to [`MAX_WORKERS`].
    pub broadcast_workers: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ttl_seconds: 24 * 60 * 60,
            allow_client_broadcast: false,
            max_client_message_bytes: 32 * 1024,
            broadcast_concurrency: 256,
            post_timeout: std::time::Duration::from_secs(3),
            api_id: None,
            stage: "prod".to_owned(),
            region: None,
            endpoint_override: None,
            allowed_origins: Vec::new(),
            max_messages_per_second: 0,
            broadcast_workers: DEFAULT_WORKERS,
            topics: None,
        }
    }
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
}
