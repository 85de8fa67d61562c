//! The project file (`wsctl.toml`): what a validated configuration is ([`Config`] and its
//! sections, with the defaults `config.example.toml` documents) and how it is loaded. Reading
//! the TOML is in [`raw`], validating it into a `Config` in [`check`] with one file per
//! section's checks ([`auth`], [`topics`], [`routes`], [`history`], [`alarm`], [`logging`], [`grants`], [`domain`]) and their shared
//! toolkit ([`checker`]), the file `wsctl init` writes in [`starter`]. Errors name the file,
//! the key and the line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod alarm;
mod auth;
mod catalogue;
mod check;
mod checker;
mod domain;
mod grants;
mod history;
mod logging;
mod raw;
mod routes;
mod starter;
mod topics;

pub use catalogue::CatalogueConfig;
pub use history::HistoryConfig;
pub use routes::{RouteConfig, RouteTarget};
pub use starter::starter;
pub use topics::{TopicAccess, TopicsConfig};

/// Longest project name: `{project}-websocket-lambda-role` must fit IAM's 64 characters.
pub const MAX_PROJECT_LEN: usize = 64 - "-websocket-lambda-role".len();

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, unknown keys and wrong types; `message` already names line and key.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// `--env NAME` (or `WSCTL_ENV`) names no `[env.NAME]` table of the file.
    #[error("{path}: no environment {env:?} (no [env.{env}] table): {known}")]
    UnknownEnv {
        path: PathBuf,
        env: String,
        known: String,
    },
    /// A file of the catalogue that cannot be used.
    #[error("{file}: {message}")]
    Catalogue { file: PathBuf, message: String },
    /// A value that parsed but is not allowed.
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    /// Lambda's name for it.
    pub fn as_lambda(&self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64",
            Architecture::Arm64 => "arm64",
        }
    }

    /// The Rust target triple that builds for it.
    pub fn rust_target(&self) -> &'static str {
        match self {
            Architecture::X86_64 => "x86_64-unknown-linux-gnu",
            Architecture::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_lambda())
    }
}

impl std::str::FromStr for Architecture {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "x86_64" | "amd64" => Ok(Architecture::X86_64),
            "arm64" | "aarch64" => Ok(Architecture::Arm64),
            other => Err(format!(
                "unknown architecture {other:?}: expected x86_64 or arm64"
            )),
        }
    }
}

/// A validated project configuration. Defaults are those `config.example.toml` documents.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    pub project: String,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub function: FunctionConfig,
    pub api: ApiConfig,
    pub auth: Option<AuthConfig>,
    /// `[topics]`: which topics clients may subscribe and broadcast to.
    pub topics: Option<TopicsConfig>,
    /// `[history]`: streams kept for clients that come back (None: off).
    pub history: Option<HistoryConfig>,
    /// `[catalogue]`: the declared messages (None: any message goes).
    pub catalogue: Option<CatalogueConfig>,
    pub alarm: Option<AlarmConfig>,
    pub dashboard: DashboardConfig,
    /// `[[grant]]`: IAM roles outside the stack that may broadcast or manage connections.
    pub grants: Vec<Grant>,
    /// `[domain]`: the API's custom domain name.
    pub domain: Option<DomainConfig>,
    /// `[[route]]`: route keys to the team's own functions and HTTP backends.
    pub routes: Vec<RouteConfig>,
    pub tags: BTreeMap<String, String>,
    /// The environment (`--env`, `WSCTL_ENV`) whose `[env.NAME]` overrides were applied; it is
    /// part of every resource's name.
    pub env: Option<String>,
}

/// `[domain]`: a custom domain name (regional, TLS 1.2) mapped to the stage at its root.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DomainConfig {
    pub name: String,
    /// An ACM certificate in the stack's region covering `name`.
    pub certificate_arn: String,
    /// The Route 53 hosted zone where `up` keeps the alias record; None: print the target.
    pub hosted_zone_id: Option<String>,
}

/// What a `[[grant]]` lets its principal do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Allow {
    /// Invoke the function (`{"action":"broadcast"}`, `send`...): a statement of the
    /// function's resource policy.
    Broadcast,
    /// Call the management API (`@connections`) of this API and stage: a policy the role's
    /// owner attaches (`wsctl grant --print ROLE`).
    ManageConnections,
}

/// One `[[grant]]`: an IAM role and what it may do.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Grant {
    /// The role's ARN.
    pub principal: String,
    pub allow: Vec<Allow>,
}

impl Grant {
    /// The role's account (the ARN's fifth field).
    pub fn account(&self) -> &str {
        self.principal.split(':').nth(4).unwrap_or_default()
    }

    /// The role's name (after the last `/`).
    pub fn role_name(&self) -> &str {
        self.principal.rsplit('/').next().unwrap_or_default()
    }
}

/// `[dashboard]`: the CloudWatch dashboard `{project}-websocket`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DashboardConfig {
    pub enabled: bool,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig { enabled: true }
    }
}

/// The level of API Gateway's execution logs (`[api] execution_log_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Off,
    Error,
    Info,
}

impl LogLevel {
    /// API Gateway's name for it (a stage's `loggingLevel`).
    pub fn as_api(&self) -> &'static str {
        match self {
            LogLevel::Off => "OFF",
            LogLevel::Error => "ERROR",
            LogLevel::Info => "INFO",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_api())
    }
}

/// API Gateway's logs of the stage (`[api] access_log`, `execution_log_level`...).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiLogging {
    /// Access logs into `/aws/apigateway/{project}-websocket`.
    pub access_log: bool,
    pub access_log_format: String,
    pub execution_log_level: LogLevel,
    /// Retention of the access log group, in days.
    pub log_retention_days: i32,
    /// Whether `up` may set the account's CloudWatch role for API Gateway without asking.
    pub manage_account_log_role: bool,
}

impl ApiLogging {
    /// Whether API Gateway writes any log for the stage (and so needs the account's role).
    pub fn any(&self) -> bool {
        self.access_log || self.execution_log_level != LogLevel::Off
    }
}

/// One JSON object per request: who, what, the outcome, and the integration's latency.
pub const DEFAULT_ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","requestTime":"$context.requestTimeEpoch","connectionId":"$context.connectionId","eventType":"$context.eventType","routeKey":"$context.routeKey","status":"$context.status","integrationStatus":"$context.integration.status","integrationLatency":"$context.integration.latency","errorMessage":"$context.error.message","integrationError":"$context.integration.error","sourceIp":"$context.identity.sourceIp"}"#;

impl Default for ApiLogging {
    fn default() -> Self {
        ApiLogging {
            access_log: false,
            access_log_format: DEFAULT_ACCESS_LOG_FORMAT.to_owned(),
            execution_log_level: LogLevel::Off,
            log_retention_days: 30,
            manage_account_log_role: false,
        }
    }
}

/// `[auth]`: a JWT required on `$connect`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuthConfig {
    pub keys: AuthKeys,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub token_query_param: String,
    /// Where `$connect` reads the token: the query string, `Sec-WebSocket-Protocol`, or either.
    #[serde(serialize_with = "token_source_name")]
    pub token_source: TokenSource,
    /// Claims the `$connect` authorizer passes on to every route, besides `sub`.
    pub claims: Vec<String>,
}

pub use handler::auth::TokenSource;

/// The config's name of a token source (`query`, `protocol`, `either`).
pub fn token_source_str(t: TokenSource) -> &'static str {
    match t {
        TokenSource::Query => "query",
        TokenSource::Protocol => "protocol",
        TokenSource::Either => "either",
    }
}

fn token_source_name<S: serde::Serializer>(t: &TokenSource, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(token_source_str(*t))
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKeys {
    /// RS256/ES256 against a JWKS URL.
    Jwks { url: String },
    /// HS256 with the secret in an SSM SecureString parameter, read by the function at cold
    /// start. `kms_key_arn`: the customer-managed key encrypting it, if not `aws/ssm`.
    SsmSecret {
        parameter: String,
        kms_key_arn: Option<String>,
    },
}

/// `[alarm]`: a CloudWatch alarm on the function's Errors metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlarmConfig {
    pub sns_topic_arn: String,
    pub errors_threshold: i64,
    pub period_seconds: i64,
    pub evaluation_periods: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FunctionConfig {
    pub architecture: Architecture,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub connection_ttl_seconds: i64,
    pub allow_client_broadcast: bool,
    pub max_client_message_bytes: i64,
    pub broadcast_concurrency: i64,
    /// The most invocations one broadcast is split over (`BROADCAST_WORKERS`).
    pub broadcast_workers: i64,
    pub log_retention_days: i32,
    pub allowed_origins: Vec<String>,
    pub max_messages_per_second: i64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiConfig {
    pub stage: String,
    pub route_selection_expression: String,
    pub throttling_burst_limit: i32,
    pub throttling_rate_limit: f64,
    pub logging: ApiLogging,
    /// The SSM SecureString whose value HTTP route backends receive in `X-Wsctl-Secret`.
    pub backend_secret_parameter: Option<String>,
}

impl Default for FunctionConfig {
    fn default() -> Self {
        FunctionConfig {
            architecture: Architecture::X86_64,
            memory_mb: 256,
            timeout_seconds: 30,
            connection_ttl_seconds: 86_400,
            allow_client_broadcast: false,
            max_client_message_bytes: 32_768,
            broadcast_concurrency: 256,
            broadcast_workers: 10,
            log_retention_days: 30,
            allowed_origins: Vec::new(),
            max_messages_per_second: 0,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            stage: "prod".into(),
            route_selection_expression: "$request.body.action".into(),
            throttling_burst_limit: 500,
            throttling_rate_limit: 1000.0,
            logging: ApiLogging::default(),
            backend_secret_parameter: None,
        }
    }
}

/// CloudWatch Logs' accepted retention periods.
pub const RETENTION_DAYS: &[i64] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// Tag keys wsctl sets itself; the `[tags]` table may not override them.
pub const RESERVED_TAGS: &[&str] = &["Project", "Component", "ManagedBy"];

impl Config {
    /// What the stack's clients may do with topics.
    pub fn topic_access(&self) -> TopicAccess {
        TopicAccess::of(
            self.topics.as_ref(),
            self.auth.is_some(),
            self.function.allow_client_broadcast,
        )
    }

    /// Reads and validates a project file, with environment `env`'s overrides applied.
    pub fn load(path: &Path, env: Option<&str>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse_for(path, &text, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// config.example.toml is valid, gives the documented defaults, and its commented-out
    /// keys are valid too once uncommented.
    #[test]
    fn the_example_file_parses_to_the_defaults_and_documents_valid_keys() {
        let text = include_str!("../../config.example.toml");
        let c = Config::parse(Path::new("config.example.toml"), text).unwrap();
        assert_eq!(c.project, "demo");
        assert_eq!(c.function, FunctionConfig::default());
        assert_eq!(c.api, ApiConfig::default());
        assert_eq!((c.auth, c.alarm, c.topics), (None, None, None));
        assert_eq!(c.dashboard, DashboardConfig::default());
        // Uncomment every `# key = value` line (keeping one of the two [auth] key sources), and
        // turn the access log on (its other keys are refused without it).
        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                None if l == "access_log = false" => "access_log = true".to_owned(),
                Some(header)
                    if header.starts_with("[env.")
                        || header == "[[grant]]"
                        || header == "[domain]"
                        || header == "[topics]"
                        || header == "[history]"
                        || header == "[catalogue]"
                        || header == "[[route]]" =>
                {
                    header.to_owned()
                }
                Some(kv)
                    if kv.contains(" = ")
                        && toml::from_str::<toml::Table>(kv).is_ok()
                        && !kv.starts_with("jwks_url") =>
                {
                    kv.to_owned()
                }
                _ => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        // The catalogue's directory, relative to the file.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("catalogue/events")).unwrap();
        std::fs::write(dir.path().join("catalogue/events/claim_paid.json"), "true").unwrap();
        let c = Config::parse(&dir.path().join("wsctl.toml"), &uncommented).unwrap();
        assert_eq!(
            c.catalogue
                .as_ref()
                .map(|k| (k.compiled.events.len(), k.open)),
            Some((1, false))
        );
        assert!(c.auth.is_some() && c.alarm.is_some(), "{c:?}");
        assert_eq!(
            c.topics.as_ref().map(|t| t.subscribe.len()),
            Some(4),
            "{:?}",
            c.topics
        );
        assert_eq!(c.region.as_deref(), Some("us-east-1"));
        assert_eq!(c.tags.get("Team").map(String::as_str), Some("platform"));
        assert!(c.api.logging.access_log);
        assert_eq!(c.grants.len(), 1);
        assert_eq!(c.routes.len(), 2);
        assert_eq!(
            c.history
                .as_ref()
                .map(|h| (h.retention.as_secs(), h.max_per_stream)),
            Some((600, 1000))
        );
        assert_eq!(
            c.api.backend_secret_parameter.as_deref(),
            Some("/demo/ws-backend-secret")
        );
        assert_eq!(c.auth.as_ref().unwrap().claims, ["org_id", "email"]);
        assert_eq!(
            c.domain.as_ref().map(|d| d.name.as_str()),
            Some("ws.example.com")
        );
        assert_eq!(
            c.grants[0].allow,
            [Allow::Broadcast, Allow::ManageConnections]
        );
        let staging = Config::parse_for(
            &dir.path().join("wsctl.toml"),
            &uncommented,
            Some("staging"),
        )
        .unwrap();
        assert_eq!(staging.function.memory_mb, 512);
        assert_eq!(staging.env.as_deref(), Some("staging"));
        assert!(c
            .api
            .logging
            .access_log_format
            .contains("$context.routeKey"));
        assert_eq!(c.api.logging.log_retention_days, 30);
    }
}
