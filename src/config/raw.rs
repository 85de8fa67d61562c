//! The project file as TOML gives it: serde structs with every key optional and spanned (so
//! that a later check can name the line), unknown keys refused; and toml's parse errors turned
//! into one line that names the line and the key.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::Architecture;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) project: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) aws: RawAws,
    #[serde(default)]
    pub(super) function: RawFunction,
    #[serde(default)]
    pub(super) api: RawApi,
    #[serde(default)]
    pub(super) auth: RawAuth,
    /// `[topics]`: absent and empty are not the same (see [`super::topics`]).
    pub(super) topics: Option<Spanned<RawTopics>>,
    /// `[history]`: present means on.
    pub(super) history: Option<Spanned<RawHistory>>,
    /// `[catalogue]`: present means on.
    pub(super) catalogue: Option<Spanned<RawCatalogue>>,
    #[serde(default)]
    pub(super) alarm: RawAlarm,
    #[serde(default)]
    pub(super) dashboard: RawDashboard,
    pub(super) domain: Option<Spanned<RawDomain>>,
    #[serde(default)]
    pub(super) tags: BTreeMap<String, Spanned<String>>,
    /// `[[grant]]`: backends (IAM roles) that may broadcast or manage connections.
    #[serde(default, rename = "grant")]
    pub(super) grants: Vec<Spanned<RawGrant>>,
    /// `[[route]]`: route keys to the team's own Lambda functions and HTTP backends.
    #[serde(default, rename = "route")]
    pub(super) routes: Vec<Spanned<RawRoute>>,
    /// `[env.NAME]` tables: overrides of any key of the sections above for one environment.
    #[serde(default)]
    pub(super) env: BTreeMap<String, Spanned<RawEnv>>,
}

/// One `[env.NAME]` table: the same sections, every key optional, overriding the file's.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEnv {
    pub(super) aws: Option<RawAws>,
    pub(super) function: Option<RawFunction>,
    pub(super) api: Option<RawApi>,
    pub(super) auth: Option<RawAuth>,
    pub(super) topics: Option<Spanned<RawTopics>>,
    pub(super) history: Option<Spanned<RawHistory>>,
    pub(super) alarm: Option<RawAlarm>,
    pub(super) dashboard: Option<RawDashboard>,
    pub(super) domain: Option<Spanned<RawDomain>>,
    pub(super) tags: Option<BTreeMap<String, Spanned<String>>>,
    /// `[[env.NAME.grant]]`: the environment's grants, instead of the file's.
    #[serde(rename = "grant")]
    pub(super) grants: Option<Vec<Spanned<RawGrant>>>,
    /// `[[env.NAME.route]]`: the environment's routes, instead of the file's.
    #[serde(rename = "route")]
    pub(super) routes: Option<Vec<Spanned<RawRoute>>>,
}

/// `[domain]`: a custom domain name for the API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDomain {
    pub(super) name: Spanned<String>,
    pub(super) certificate_arn: Spanned<String>,
    pub(super) hosted_zone_id: Option<Spanned<String>>,
}

/// `[topics]`: patterns, each spanned so that a bad one is named by its own line.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopics {
    pub(super) subscribe: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) publish: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[catalogue]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatalogue {
    pub(super) dir: Option<Spanned<String>>,
    pub(super) open: Option<bool>,
}

/// `[history]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHistory {
    pub(super) retention: Option<Spanned<String>>,
    pub(super) max_per_stream: Option<Spanned<i64>>,
}

/// One `[[route]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) key: Spanned<String>,
    pub(super) function: Option<Spanned<String>>,
    pub(super) http: Option<Spanned<String>>,
    pub(super) two_way: Option<bool>,
    pub(super) timeout_ms: Option<Spanned<i64>>,
}

/// One `[[grant]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrant {
    pub(super) principal: Spanned<String>,
    pub(super) allow: Spanned<Vec<String>>,
}

/// Replaces each field of `$base` that `$over` sets.
macro_rules! overlay {
    ($base:expr, $over:expr; $($field:ident),+ $(,)?) => {
        $(
            if $over.$field.is_some() {
                $base.$field = $over.$field;
            }
        )+
    };
}

impl RawConfig {
    /// The file with environment `name`'s overrides applied; None when it has no such
    /// environment.
    pub(super) fn for_env(mut self, name: &str) -> Option<RawConfig> {
        let env = self.env.remove(name)?.into_inner();
        if let Some(o) = env.aws {
            overlay!(self.aws, o; region, profile);
        }
        if let Some(o) = env.function {
            overlay!(self.function, o; architecture, memory_mb, timeout_seconds,
                connection_ttl_seconds, allow_client_broadcast, max_client_message_bytes,
                broadcast_concurrency, broadcast_workers, log_retention_days, allowed_origins,
                max_messages_per_second);
        }
        if let Some(o) = env.api {
            overlay!(self.api, o; stage, route_selection_expression, throttling_burst_limit,
                throttling_rate_limit, access_log, access_log_format, execution_log_level,
                log_retention_days, manage_account_log_role, backend_secret_parameter);
        }
        if let Some(o) = env.auth {
            overlay!(self.auth, o; jwks_url, secret_parameter, secret_kms_key_arn, issuer,
                audience, token_query_param, token_source, claims);
        }
        if let Some(o) = env.topics {
            let span = o.span();
            let o = o.into_inner();
            match &mut self.topics {
                Some(base) => {
                    let base = base.get_mut();
                    overlay!(base, o; subscribe, publish);
                }
                None => self.topics = Some(Spanned::new(span, o)),
            }
        }
        if let Some(o) = env.history {
            let span = o.span();
            let o = o.into_inner();
            match &mut self.history {
                Some(base) => {
                    let base = base.get_mut();
                    overlay!(base, o; retention, max_per_stream);
                }
                None => self.history = Some(Spanned::new(span, o)),
            }
        }
        if let Some(o) = env.alarm {
            overlay!(self.alarm, o; sns_topic_arn, errors_threshold, period_seconds,
                evaluation_periods);
        }
        if let Some(o) = env.dashboard {
            overlay!(self.dashboard, o; enabled);
        }
        self.tags.extend(env.tags.unwrap_or_default());
        if env.domain.is_some() {
            self.domain = env.domain;
        }
        if let Some(grants) = env.grants {
            self.grants = grants;
        }
        if let Some(routes) = env.routes {
            self.routes = routes;
        }
        Some(self)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuth {
    pub(super) jwks_url: Option<Spanned<String>>,
    pub(super) secret_parameter: Option<Spanned<String>>,
    pub(super) secret_kms_key_arn: Option<Spanned<String>>,
    pub(super) issuer: Option<Spanned<String>>,
    pub(super) audience: Option<Spanned<Vec<String>>>,
    pub(super) token_query_param: Option<Spanned<String>>,
    pub(super) token_source: Option<Spanned<String>>,
    /// Claims passed on to every route (besides `sub`).
    pub(super) claims: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlarm {
    pub(super) sns_topic_arn: Option<Spanned<String>>,
    pub(super) errors_threshold: Option<Spanned<i64>>,
    pub(super) period_seconds: Option<Spanned<i64>>,
    pub(super) evaluation_periods: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAws {
    pub(super) region: Option<Spanned<String>>,
    pub(super) profile: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFunction {
    pub(super) architecture: Option<Spanned<Architecture>>,
    pub(super) memory_mb: Option<Spanned<i64>>,
    pub(super) timeout_seconds: Option<Spanned<i64>>,
    pub(super) connection_ttl_seconds: Option<Spanned<i64>>,
    pub(super) allow_client_broadcast: Option<bool>,
    pub(super) max_client_message_bytes: Option<Spanned<i64>>,
    pub(super) broadcast_concurrency: Option<Spanned<i64>>,
    pub(super) broadcast_workers: Option<Spanned<i64>>,
    pub(super) log_retention_days: Option<Spanned<i64>>,
    pub(super) allowed_origins: Option<Spanned<Vec<String>>>,
    pub(super) max_messages_per_second: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) stage: Option<Spanned<String>>,
    pub(super) route_selection_expression: Option<Spanned<String>>,
    pub(super) throttling_burst_limit: Option<Spanned<i64>>,
    pub(super) throttling_rate_limit: Option<Spanned<f64>>,
    pub(super) access_log: Option<Spanned<bool>>,
    pub(super) access_log_format: Option<Spanned<String>>,
    pub(super) execution_log_level: Option<Spanned<String>>,
    pub(super) log_retention_days: Option<Spanned<i64>>,
    pub(super) manage_account_log_role: Option<Spanned<bool>>,
    /// The SSM SecureString whose value HTTP route backends receive in `X-Wsctl-Secret`.
    pub(super) backend_secret_parameter: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDashboard {
    pub(super) enabled: Option<bool>,
}

/// toml's message, reduced to one line that starts with the line number and names the key.
pub(super) fn parse_message(text: &str, e: &toml::de::Error) -> String {
    let detail = e.message().trim().to_owned();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let snippet = text.lines().nth(line - 1).unwrap_or("").trim();
            match key_at(text, line) {
                Some(key) => format!("line {line}: {key}: {detail} (at `{snippet}`)"),
                None => format!("line {line}: {detail} (at `{snippet}`)"),
            }
        }
        None => detail,
    }
}

/// The dotted key assigned on `line` (1-based), qualified by the table header above it.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let this = lines.get(line - 1)?.trim();
    if this.starts_with('[') {
        return Some(
            this.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned(),
        );
    }
    let key = this.split_once('=')?.0.trim().trim_matches('"');
    if key.is_empty() {
        return None;
    }
    let section = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    Some(match section {
        Some(s) => format!("{s}.{key}"),
        None => key.to_owned(),
    })
}
