//! The function's environment contract: every variable `wsctl up` sets on the function (and
//! the few Lambda sets), its name and its format, in one place. The CLI builds a
//! [`FunctionEnv`] from the project file and writes [`FunctionEnv::vars`]; the Lambda reads one
//! back with [`FunctionEnv::read`]; `wsctl dev` takes its [`Settings`] from the same struct.

use std::collections::BTreeMap;

use crate::auth::TokenSource;
use crate::settings::MAX_MESSAGE_BYTES;
use crate::settings::{Settings, MAX_WORKERS};

/// The connections table (required).
pub const CONNECTIONS_TABLE: &str = "CONNECTIONS_TABLE";
/// The topic subscriptions index (hash `topic_shard`, range `connection_id`).
pub const SUBSCRIPTIONS_TABLE: &str = "SUBSCRIPTIONS_TABLE";
/// The broadcasts' status records; without it a broadcast never fans out.
pub const BROADCASTS_TABLE: &str = "BROADCASTS_TABLE";
/// `[history]`: the streams' table, how long entries are kept, and how many a resume replays
/// at most per stream.
pub const HISTORY_TABLE: &str = "HISTORY_TABLE";
pub const HISTORY_RETENTION_SECONDS: &str = "HISTORY_RETENTION_SECONDS";
pub const HISTORY_MAX_PER_STREAM: &str = "HISTORY_MAX_PER_STREAM";
pub const WEBSOCKET_API_ID: &str = "WEBSOCKET_API_ID";
pub const WEBSOCKET_STAGE: &str = "WEBSOCKET_STAGE";
pub const CONNECTION_TTL_SECONDS: &str = "CONNECTION_TTL_SECONDS";
/// `true` or `false`.
pub const ALLOW_CLIENT_BROADCAST: &str = "ALLOW_CLIENT_BROADCAST";
pub const MAX_CLIENT_MESSAGE_BYTES: &str = "MAX_CLIENT_MESSAGE_BYTES";
pub const BROADCAST_CONCURRENCY: &str = "BROADCAST_CONCURRENCY";
pub const BROADCAST_WORKERS: &str = "BROADCAST_WORKERS";
/// Comma-separated origins; unset: any.
pub const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";
/// Unset or 0: no limit.
pub const MAX_MESSAGES_PER_SECOND: &str = "MAX_MESSAGES_PER_SECOND";
pub const AUTH_JWKS_URL: &str = "AUTH_JWKS_URL";
/// The SSM SecureString parameter holding the HS256 secret (its name, never the secret).
pub const AUTH_SECRET_PARAMETER: &str = "AUTH_SECRET_PARAMETER";
pub const AUTH_ISSUER: &str = "AUTH_ISSUER";
/// Comma-separated.
pub const AUTH_AUDIENCE: &str = "AUTH_AUDIENCE";
pub const AUTH_QUERY_PARAM: &str = "AUTH_QUERY_PARAM";
/// `query` (unset), `protocol` or `either`.
pub const AUTH_TOKEN_SOURCE: &str = "AUTH_TOKEN_SOURCE";
/// `[auth] claims`: a JSON list of the claims the `$connect` authorizer passes on to every
/// route (besides those the topic rules name).
pub const AUTH_CLAIMS: &str = "AUTH_CLAIMS";
/// `[topics]`: JSON lists of patterns ([`crate::topics`]).
pub const TOPICS_SUBSCRIBE: &str = "TOPICS_SUBSCRIBE";
pub const TOPICS_PUBLISH: &str = "TOPICS_PUBLISH";
/// Not set by wsctl: tuning and local endpoints.
pub const POST_TIMEOUT_MS: &str = "POST_TIMEOUT_MS";
pub const SCAN_PAGE_SIZE: &str = "SCAN_PAGE_SIZE";
pub const WEBSOCKET_MANAGEMENT_ENDPOINT: &str = "WEBSOCKET_MANAGEMENT_ENDPOINT";
/// Set by Lambda; `REGION_NAME` is the runbook handler's name for it.
pub const AWS_REGION: &str = "AWS_REGION";
pub const REGION_NAME: &str = "REGION_NAME";
/// Set by Lambda: the function invokes itself by this name (a broadcast's workers).
pub const AWS_LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// A variable with a value the function cannot use.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: {expected}")]
pub struct SettingsError {
    pub name: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// Why the function's environment cannot start it.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error(transparent)]
    Invalid(#[from] SettingsError),
    #[error("environment variable {CONNECTIONS_TABLE} is not set: the function needs its DynamoDB table name")]
    NoTable,
    #[error("authentication is configured but cannot start: set {AUTH_JWKS_URL} or {AUTH_SECRET_PARAMETER}, not both")]
    TwoKeySources,
    #[error("environment variable {name}={value:?} is invalid: expected a JSON list of topic patterns ({reason})")]
    Topics {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Where the function finds the keys that verify tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthKeysEnv {
    /// RS256 / ES256 keys at a JWKS URL (`AUTH_JWKS_URL`).
    Jwks(String),
    /// An HS256 secret in this SSM SecureString parameter (`AUTH_SECRET_PARAMETER`).
    SecretParameter(String),
}

/// `[auth]` as the function's environment carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEnv {
    pub keys: AuthKeysEnv,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub query_param: String,
    pub token_source: TokenSource,
    /// Claims passed on to routes (`AUTH_CLAIMS`).
    pub claims: Vec<String>,
}

/// `[history]` as the function's environment carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEnv {
    pub table: String,
    pub retention_seconds: u64,
    pub max_per_stream: u32,
}

/// The function's configuration as its environment carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionEnv {
    pub connections_table: String,
    pub subscriptions_table: Option<String>,
    pub broadcasts_table: Option<String>,
    pub history: Option<HistoryEnv>,
    pub auth: Option<AuthEnv>,
    /// Rows per Scan call (`SCAN_PAGE_SIZE`); None: DynamoDB's 1 MB pages.
    pub scan_page_size: Option<i32>,
    pub settings: Settings,
}

impl FunctionEnv {
    /// The variables `wsctl up` sets on the function. Region, endpoint override, post timeout
    /// and scan page size are not among them: Lambda sets the region, and the rest are for
    /// local gateways and tuning.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let s = &self.settings;
        let mut env = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
        set(CONNECTIONS_TABLE, self.connections_table.clone());
        if let Some(id) = &s.api_id {
            set(WEBSOCKET_API_ID, id.clone());
        }
        set(WEBSOCKET_STAGE, s.stage.clone());
        set(CONNECTION_TTL_SECONDS, s.ttl_seconds.to_string());
        set(ALLOW_CLIENT_BROADCAST, s.allow_client_broadcast.to_string());
        set(
            MAX_CLIENT_MESSAGE_BYTES,
            s.max_client_message_bytes.to_string(),
        );
        set(BROADCAST_CONCURRENCY, s.broadcast_concurrency.to_string());
        set(BROADCAST_WORKERS, s.broadcast_workers.to_string());
        if let Some(t) = &self.subscriptions_table {
            set(SUBSCRIPTIONS_TABLE, t.clone());
        }
        if let Some(t) = &self.broadcasts_table {
            set(BROADCASTS_TABLE, t.clone());
        }
        if let Some(h) = &self.history {
            set(HISTORY_TABLE, h.table.clone());
            set(HISTORY_RETENTION_SECONDS, h.retention_seconds.to_string());
            set(HISTORY_MAX_PER_STREAM, h.max_per_stream.to_string());
        }
        if !s.allowed_origins.is_empty() {
            set(ALLOWED_ORIGINS, s.allowed_origins.join(","));
        }
        if s.max_messages_per_second > 0 {
            set(
                MAX_MESSAGES_PER_SECOND,
                s.max_messages_per_second.to_string(),
            );
        }
        if let Some(rules) = &s.topics {
            let list = |l: &[crate::topics::Pattern]| {
                serde_json::to_string(&crate::topics::Rules::texts(l)).expect("strings")
            };
            set(TOPICS_SUBSCRIBE, list(&rules.subscribe));
            set(TOPICS_PUBLISH, list(&rules.publish));
        }
        if let Some(auth) = &self.auth {
            match &auth.keys {
                AuthKeysEnv::Jwks(url) => set(AUTH_JWKS_URL, url.clone()),
                AuthKeysEnv::SecretParameter(name) => set(AUTH_SECRET_PARAMETER, name.clone()),
            }
            if let Some(iss) = &auth.issuer {
                set(AUTH_ISSUER, iss.clone());
            }
            if !auth.audience.is_empty() {
                set(AUTH_AUDIENCE, auth.audience.join(","));
            }
            set(AUTH_QUERY_PARAM, auth.query_param.clone());
            if auth.token_source != TokenSource::Query {
                set(AUTH_TOKEN_SOURCE, auth.token_source.to_string());
            }
            if !auth.claims.is_empty() {
                set(
                    AUTH_CLAIMS,
                    serde_json::to_string(&auth.claims).expect("strings"),
                );
            }
        }
        env
    }

    /// Reads the environment through a variable lookup (`std::env::var` in the Lambda).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Result<FunctionEnv, EnvError> {
        let nonempty = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut settings = read_settings(&nonempty)?;
        settings.topics = read_topics(&nonempty)?;
        let connections_table = nonempty(CONNECTIONS_TABLE).ok_or(EnvError::NoTable)?;
        let scan_page_size = match nonempty(SCAN_PAGE_SIZE) {
            None => None,
            Some(v) => Some(
                v.parse::<i32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(SettingsError {
                        name: SCAN_PAGE_SIZE,
                        value: v,
                        expected: "a positive whole number",
                    })?,
            ),
        };
        let keys = match (nonempty(AUTH_JWKS_URL), nonempty(AUTH_SECRET_PARAMETER)) {
            (Some(_), Some(_)) => return Err(EnvError::TwoKeySources),
            (Some(url), None) => Some(AuthKeysEnv::Jwks(url)),
            (None, Some(name)) => Some(AuthKeysEnv::SecretParameter(name)),
            (None, None) => None,
        };
        let claims: Vec<String> = match nonempty(AUTH_CLAIMS) {
            None => Vec::new(),
            Some(value) => serde_json::from_str(&value).map_err(|_| SettingsError {
                name: AUTH_CLAIMS,
                value,
                expected: "a JSON list of claim names",
            })?,
        };
        let auth = keys.map(|keys| AuthEnv {
            claims,
            keys,
            issuer: nonempty(AUTH_ISSUER),
            audience: nonempty(AUTH_AUDIENCE)
                .map(|a| {
                    a.split(',')
                        .map(|a| a.trim().to_owned())
                        .filter(|a| !a.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            query_param: nonempty(AUTH_QUERY_PARAM).unwrap_or_else(|| "token".into()),
            // An unknown value keeps the default (the query string): the function's
            // environment is written by wsctl, which accepts only the three.
            token_source: nonempty(AUTH_TOKEN_SOURCE)
                .and_then(|s| s.parse().ok())
                .unwrap_or_default(),
        });
        let number = |name: &'static str, default: u64, max: u64| -> Result<u64, SettingsError> {
            match nonempty(name) {
                None => Ok(default),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or(SettingsError {
                        name,
                        value: v,
                        expected: "a positive whole number",
                    }),
            }
        };
        let history = match nonempty(HISTORY_TABLE) {
            None => None,
            Some(table) => Some(HistoryEnv {
                table,
                retention_seconds: number(HISTORY_RETENTION_SECONDS, 600, 366 * 86_400)?,
                max_per_stream: number(HISTORY_MAX_PER_STREAM, 1000, 100_000)? as u32,
            }),
        };
        Ok(FunctionEnv {
            connections_table,
            subscriptions_table: nonempty(SUBSCRIPTIONS_TABLE),
            broadcasts_table: nonempty(BROADCASTS_TABLE),
            history,
            auth,
            scan_page_size,
            settings,
        })
    }
}

/// `[topics]` from `TOPICS_SUBSCRIBE` and `TOPICS_PUBLISH` (None when neither is set).
fn read_topics(
    nonempty: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<crate::topics::Rules>, EnvError> {
    use crate::topics::{Pattern, Rules};
    let list = |name: &'static str| -> Result<Vec<Pattern>, EnvError> {
        let Some(value) = nonempty(name) else {
            return Ok(Vec::new());
        };
        let bad = |reason: String| EnvError::Topics {
            name,
            value: value.clone(),
            reason,
        };
        let texts: Vec<String> = serde_json::from_str(&value).map_err(|e| bad(e.to_string()))?;
        texts
            .iter()
            .map(|t| Pattern::parse(t).map_err(|e| bad(e.to_string())))
            .collect()
    };
    if nonempty(TOPICS_SUBSCRIBE).is_none() && nonempty(TOPICS_PUBLISH).is_none() {
        return Ok(None);
    }
    Ok(Some(Rules {
        subscribe: list(TOPICS_SUBSCRIBE)?,
        publish: list(TOPICS_PUBLISH)?,
    }))
}

/// The handler's [`Settings`] from the variables (absent ones take their defaults).
pub(crate) fn read_settings(
    nonempty: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, SettingsError> {
    let defaults = Settings::default();
    fn number<T: std::str::FromStr + PartialOrd + Copy>(
        name: &'static str,
        raw: Option<String>,
        default: T,
        range: (T, T),
        expected: &'static str,
    ) -> Result<T, SettingsError> {
        match raw {
            None => Ok(default),
            Some(v) => match v.parse::<T>() {
                Ok(n) if n >= range.0 && n <= range.1 => Ok(n),
                _ => Err(SettingsError {
                    name,
                    value: v,
                    expected,
                }),
            },
        }
    }
    let allow_client_broadcast = match nonempty(ALLOW_CLIENT_BROADCAST).as_deref() {
        None => defaults.allow_client_broadcast,
        Some("true" | "1" | "yes") => true,
        Some("false" | "0" | "no") => false,
        Some(other) => {
            return Err(SettingsError {
                name: ALLOW_CLIENT_BROADCAST,
                value: other.to_owned(),
                expected: "true or false",
            })
        }
    };
    let max_client_message_bytes = number(
        MAX_CLIENT_MESSAGE_BYTES,
        nonempty(MAX_CLIENT_MESSAGE_BYTES),
        defaults.max_client_message_bytes,
        (1, usize::MAX),
        "a positive number of bytes",
    )?;
    if max_client_message_bytes > MAX_MESSAGE_BYTES {
        return Err(SettingsError {
            name: MAX_CLIENT_MESSAGE_BYTES,
            value: max_client_message_bytes.to_string(),
            expected: "at most 131072 (API Gateway's message limit)",
        });
    }
    Ok(Settings {
        broadcast_workers: number(
            BROADCAST_WORKERS,
            nonempty(BROADCAST_WORKERS),
            defaults.broadcast_workers,
            (1, MAX_WORKERS),
            "a whole number from 1 to 100",
        )?,
        ttl_seconds: number(
            CONNECTION_TTL_SECONDS,
            nonempty(CONNECTION_TTL_SECONDS),
            defaults.ttl_seconds,
            (1, i64::MAX),
            "a positive number of seconds",
        )?,
        allow_client_broadcast,
        max_client_message_bytes,
        broadcast_concurrency: number(
            BROADCAST_CONCURRENCY,
            nonempty(BROADCAST_CONCURRENCY),
            defaults.broadcast_concurrency,
            (1, usize::MAX),
            "a positive whole number",
        )?,
        post_timeout: std::time::Duration::from_millis(number(
            POST_TIMEOUT_MS,
            nonempty(POST_TIMEOUT_MS),
            defaults.post_timeout.as_millis() as u64,
            (1, u64::MAX),
            "a positive number of milliseconds",
        )?),
        api_id: nonempty(WEBSOCKET_API_ID),
        stage: nonempty(WEBSOCKET_STAGE).unwrap_or(defaults.stage),
        region: nonempty(AWS_REGION).or_else(|| nonempty(REGION_NAME)),
        endpoint_override: nonempty(WEBSOCKET_MANAGEMENT_ENDPOINT),
        allowed_origins: nonempty(ALLOWED_ORIGINS)
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_owned())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default(),
        max_messages_per_second: number(
            MAX_MESSAGES_PER_SECOND,
            nonempty(MAX_MESSAGES_PER_SECOND),
            defaults.max_messages_per_second,
            (0, u32::MAX),
            "a whole number of messages per second (0: no limit)",
        )?,
        topics: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<FunctionEnv, EnvError> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        FunctionEnv::read(|k| map.get(k).cloned())
    }

    #[test]
    fn what_wsctl_writes_the_function_reads_back() {
        let env = FunctionEnv {
            connections_table: "shop_ws_connections".into(),
            subscriptions_table: Some("shop_ws_subscriptions".into()),
            broadcasts_table: Some("shop_ws_broadcasts".into()),
            history: Some(HistoryEnv {
                table: "shop_ws_history".into(),
                retention_seconds: 900,
                max_per_stream: 500,
            }),
            auth: Some(AuthEnv {
                keys: AuthKeysEnv::SecretParameter("/shop/jwt".into()),
                issuer: Some("https://issuer".into()),
                audience: vec!["a".into(), "b".into()],
                query_param: "access_token".into(),
                token_source: TokenSource::Either,
                claims: vec!["org_id".into(), "https://example.com/roles".into()],
            }),
            scan_page_size: None,
            settings: Settings {
                api_id: Some("abc123".into()),
                stage: "live".into(),
                ttl_seconds: 3600,
                allow_client_broadcast: true,
                max_client_message_bytes: 1000,
                broadcast_concurrency: 64,
                broadcast_workers: 7,
                allowed_origins: vec!["https://a.example".into(), "https://b.example".into()],
                max_messages_per_second: 5,
                topics: Some(
                    crate::topics::Rules::parse(
                        &[
                            "news".into(),
                            "user:{sub}".into(),
                            "org:{claims.org, x}:*".into(),
                        ],
                        &[],
                    )
                    .unwrap(),
                ),
                ..Settings::default()
            },
        };
        let vars = env.vars();
        assert_eq!(vars[AUTH_TOKEN_SOURCE], "either");
        assert_eq!(vars[ALLOWED_ORIGINS], "https://a.example,https://b.example");
        assert!(!vars.contains_key(AUTH_JWKS_URL));
        let back = FunctionEnv::read(|k| vars.get(k).cloned()).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let err = read(&[(CONNECTIONS_TABLE, "t"), (CONNECTION_TTL_SECONDS, "soon")]).unwrap_err();
        assert!(matches!(&err, EnvError::Invalid(e) if e.name == CONNECTION_TTL_SECONDS));
        assert!(err.to_string().contains("soon"), "{err}");
        let err = read(&[(CONNECTIONS_TABLE, "t"), (BROADCAST_CONCURRENCY, "0")]).unwrap_err();
        assert!(matches!(&err, EnvError::Invalid(e) if e.name == BROADCAST_CONCURRENCY));
        let err = read(&[(CONNECTIONS_TABLE, "t"), (BROADCAST_WORKERS, "101")]).unwrap_err();
        assert!(matches!(&err, EnvError::Invalid(e) if e.name == BROADCAST_WORKERS));
        assert!(matches!(read(&[]), Err(EnvError::NoTable)));
        assert!(matches!(
            read(&[
                (CONNECTIONS_TABLE, "t"),
                (AUTH_JWKS_URL, "u"),
                (AUTH_SECRET_PARAMETER, "p")
            ]),
            Err(EnvError::TwoKeySources)
        ));
    }

    #[test]
    fn the_runbook_handlers_variables_are_read() {
        let env = read(&[
            (REGION_NAME, "eu-west-1"),
            (WEBSOCKET_API_ID, "abc123"),
            (WEBSOCKET_STAGE, "dev"),
            (CONNECTIONS_TABLE, "p_ws_connections"),
        ])
        .unwrap();
        let s = env.settings;
        assert_eq!(s.region.as_deref(), Some("eu-west-1"));
        assert_eq!(s.api_id.as_deref(), Some("abc123"));
        assert_eq!(s.stage, "dev");
        assert_eq!(s.ttl_seconds, 86400);
        assert!(!s.allow_client_broadcast);
        assert_eq!(env.auth, None);
    }
}
