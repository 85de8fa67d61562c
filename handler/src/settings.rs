//! The function's settings: read once from its environment (the Lambda) or built by `wsctl dev`.

use crate::MAX_MESSAGE_BYTES;

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
    /// `BROADCAST_WORKERS`: the most invocations one broadcast is split over (see
    /// [`crate::fanout`]), 1 to [`crate::fanout::MAX_WORKERS`].
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
            broadcast_workers: crate::fanout::DEFAULT_WORKERS,
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
        let broadcast_workers = number(
            "BROADCAST_WORKERS",
            nonempty("BROADCAST_WORKERS"),
            defaults.broadcast_workers,
            1,
            "a whole number from 1 to 100",
        )?;
        if broadcast_workers > crate::fanout::MAX_WORKERS {
            return Err(SettingsError {
                name: "BROADCAST_WORKERS",
                value: broadcast_workers.to_string(),
                expected: "a whole number from 1 to 100",
            });
        }
        Ok(Settings {
            broadcast_workers,
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
            post_timeout: std::time::Duration::from_millis(number(
                "POST_TIMEOUT_MS",
                nonempty("POST_TIMEOUT_MS"),
                defaults.post_timeout.as_millis() as u64,
                1,
                "a positive number of milliseconds",
            )?),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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
}
