//! Validation of the project file: each raw value checked against what AWS accepts (names,
//! ranges, ARNs, the auth and alarm sections' rules), defaults filled in, and a
//! [`ConfigError::Invalid`] naming the key and its line for the first value refused.

use std::collections::BTreeMap;
use std::path::Path;

use super::alarm::check_alarm;
use super::auth::check_auth;
use super::checker::{span_of, valid_region, Checker};
use super::domain::check_domain;
use super::grants::check_grants;
use super::raw::{parse_message, RawConfig};
use super::*;

fn valid_project_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_PROJECT_LEN {
        return Err(format!(
            "{name:?} is {} characters; at most {MAX_PROJECT_LEN} fit in the IAM role name \"{name}-websocket-lambda-role\" (64 characters)",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{name:?} contains {bad:?}; use letters, digits, '-' and '_' only (the names of the table, function, role and API derive from it)"
        ));
    }
    if !name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return Err(format!("{name:?} must start with a letter or digit"));
    }
    Ok(())
}

fn valid_stage(stage: &str) -> Result<(), String> {
    if stage.is_empty() || stage.len() > 128 {
        return Err("must be 1 to 128 characters".into());
    }
    if let Some(bad) = stage
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{stage:?} contains {bad:?}; stage names use letters, digits, '-' and '_'"
        ));
    }
    if stage == "$default" {
        return Err("a WebSocket API cannot use the $default stage".into());
    }
    Ok(())
}

impl Config {
    /// Validates TOML text; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_for(path, text, None)
    }

    /// Validates TOML text with environment `env`'s overrides (`[env.NAME]`) applied.
    pub fn parse_for(path: &Path, text: &str, env: Option<&str>) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: parse_message(text, &e),
        })?;
        let c = Checker { path, text };
        let known: Vec<String> = raw.env.keys().cloned().collect();
        for (name, table) in &raw.env {
            valid_project_name(name).map_err(|m| {
                c.invalid(
                    &format!("env.{name}"),
                    table.span(),
                    format!("environment name: {m}"),
                )
            })?;
        }
        let raw = match env {
            None => raw,
            Some(name) => raw.for_env(name).ok_or_else(|| ConfigError::UnknownEnv {
                path: path.to_path_buf(),
                env: name.to_owned(),
                known: if known.is_empty() {
                    "the file has no [env.NAME] table".to_owned()
                } else {
                    format!("its environments are {}", known.join(", "))
                },
            })?,
        };
        let project = match &raw.project {
            None => {
                return Err(ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line: 1,
                    key: "project".into(),
                    message: "is required: the name every resource is derived from, e.g. project = \"petinsure360\"".into(),
                })
            }
            Some(p) => {
                valid_project_name(p.get_ref()).map_err(|m| c.invalid("project", p.span(), m))?;
                if let Some(env) = env {
                    // `{project}-{env}-websocket-lambda-role` must fit IAM's 64 characters.
                    if p.get_ref().len() + 1 + env.len() > MAX_PROJECT_LEN {
                        return Err(c.invalid(
                            "project",
                            p.span(),
                            format!(
                                "with environment {env:?}, \"{}-{env}\" is longer than {MAX_PROJECT_LEN} characters (IAM's limit on the role's name)",
                                p.get_ref()
                            ),
                        ));
                    }
                }
                p.get_ref().clone()
            }
        };
        let region = match &raw.aws.region {
            None => None,
            Some(r) if valid_region(r.get_ref()) => Some(r.get_ref().clone()),
            Some(r) => {
                return Err(c.invalid(
                    "aws.region",
                    r.span(),
                    format!(
                        "{:?} is not an AWS region name (e.g. us-east-1)",
                        r.get_ref()
                    ),
                ))
            }
        };
        let profile = match &raw.aws.profile {
            Some(p) if p.get_ref().trim().is_empty() => {
                return Err(c.invalid("aws.profile", p.span(), "must not be empty"))
            }
            p => p.as_ref().map(|p| p.get_ref().clone()),
        };

        let d = FunctionConfig::default();
        let f = &raw.function;
        let log_retention_days = c.int_in(
            "function.log_retention_days",
            &f.log_retention_days,
            d.log_retention_days as i64,
            1..=3653,
            "days",
        )?;
        if !RETENTION_DAYS.contains(&log_retention_days) {
            let span = span_of(&f.log_retention_days).unwrap_or(0..0);
            return Err(c.invalid(
                "function.log_retention_days",
                span,
                format!("{log_retention_days} is not a CloudWatch Logs retention period; use one of {RETENTION_DAYS:?}"),
            ));
        }
        let function = FunctionConfig {
            architecture: f
                .architecture
                .as_ref()
                .map_or(d.architecture, |a| *a.get_ref()),
            memory_mb: c.int_in(
                "function.memory_mb",
                &f.memory_mb,
                d.memory_mb as i64,
                128..=10_240,
                "MB",
            )? as i32,
            timeout_seconds: c.int_in(
                "function.timeout_seconds",
                &f.timeout_seconds,
                d.timeout_seconds as i64,
                1..=900,
                "seconds",
            )? as i32,
            connection_ttl_seconds: c.int_in(
                "function.connection_ttl_seconds",
                &f.connection_ttl_seconds,
                d.connection_ttl_seconds,
                60..=366 * 86_400,
                "seconds",
            )?,
            allow_client_broadcast: f.allow_client_broadcast.unwrap_or(d.allow_client_broadcast),
            max_client_message_bytes: c.int_in(
                "function.max_client_message_bytes",
                &f.max_client_message_bytes,
                d.max_client_message_bytes,
                1..=131_072,
                "bytes",
            )?,
            broadcast_concurrency: c.int_in(
                "function.broadcast_concurrency",
                &f.broadcast_concurrency,
                d.broadcast_concurrency,
                1..=1000,
                "posts in flight",
            )?,
            broadcast_workers: c.int_in(
                "function.broadcast_workers",
                &f.broadcast_workers,
                d.broadcast_workers,
                1..=100,
                "worker invocations per broadcast",
            )?,
            log_retention_days: log_retention_days as i32,
            max_messages_per_second: c.int_in(
                "function.max_messages_per_second",
                &f.max_messages_per_second,
                d.max_messages_per_second,
                0..=10_000,
                "messages per second (0: no limit)",
            )?,
            allowed_origins: match &f.allowed_origins {
                None => Vec::new(),
                Some(list) => {
                    for o in list.get_ref() {
                        let ok = o == "*"
                            || ((o.starts_with("https://") || o.starts_with("http://"))
                                && !o
                                    .trim_end_matches('/')
                                    .contains(|c: char| c.is_whitespace() || c == ',')
                                && o.splitn(4, '/').nth(3).is_none_or(str::is_empty));
                        if !ok {
                            return Err(c.invalid(
                                "function.allowed_origins",
                                list.span(),
                                format!("{o:?} is not an origin: use scheme://host[:port], e.g. \"https://app.example.com\""),
                            ));
                        }
                    }
                    list.get_ref()
                        .iter()
                        .map(|o| o.trim_end_matches('/').to_owned())
                        .collect()
                }
            },
        };

        let d = ApiConfig::default();
        let a = &raw.api;
        let stage = match &a.stage {
            None => d.stage,
            Some(s) => {
                valid_stage(s.get_ref()).map_err(|m| c.invalid("api.stage", s.span(), m))?;
                s.get_ref().clone()
            }
        };
        let route_selection_expression = match &a.route_selection_expression {
            None => d.route_selection_expression,
            Some(e) => {
                let ok = e
                    .get_ref()
                    .strip_prefix("$request.body.")
                    .is_some_and(|p| !p.is_empty() && p.split('.').all(|s| !s.is_empty()));
                if !ok {
                    return Err(c.invalid(
                        "api.route_selection_expression",
                        e.span(),
                        format!("{:?} is not supported: use $request.body.<field>, e.g. $request.body.action", e.get_ref()),
                    ));
                }
                e.get_ref().clone()
            }
        };
        let throttling_rate_limit = match &a.throttling_rate_limit {
            None => d.throttling_rate_limit,
            Some(r) if r.get_ref().is_finite() && *r.get_ref() > 0.0 && *r.get_ref() <= 1_000_000.0 => *r.get_ref(),
            Some(r) => {
                return Err(c.invalid(
                    "api.throttling_rate_limit",
                    r.span(),
                    format!("{} is out of range: expected more than 0 and at most 1000000 requests per second", r.get_ref()),
                ))
            }
        };
        let api = ApiConfig {
            stage,
            route_selection_expression,
            throttling_burst_limit: c.int_in(
                "api.throttling_burst_limit",
                &a.throttling_burst_limit,
                d.throttling_burst_limit as i64,
                1..=1_000_000,
                "requests",
            )? as i32,
            throttling_rate_limit,
            logging: super::logging::check_logging(&c, a)?,
            backend_secret_parameter: None,
        };
        let routes = super::routes::check_routes(&c, &raw.routes)?;
        let mut api = api;
        api.backend_secret_parameter =
            super::routes::check_backend_secret(&c, a, &routes, &raw.routes)?;

        let mut tags = BTreeMap::new();
        for (k, v) in &raw.tags {
            let key = format!("tags.{k}");
            if RESERVED_TAGS.contains(&k.as_str()) {
                return Err(c.invalid(
                    &key,
                    v.span(),
                    format!("{k} is set by wsctl and cannot be overridden"),
                ));
            }
            if k.is_empty() || k.len() > 128 || k.starts_with("aws:") {
                return Err(c.invalid(
                    &key,
                    v.span(),
                    "tag keys are 1 to 128 characters and may not start with aws:",
                ));
            }
            if v.get_ref().len() > 256 {
                return Err(c.invalid(&key, v.span(), "tag values are at most 256 characters"));
            }
            tags.insert(k.clone(), v.get_ref().clone());
        }
        if tags.len() > 40 {
            return Err(c.invalid(
                "tags",
                0..0,
                "at most 40 tags (AWS allows 50 per resource; wsctl sets 3)",
            ));
        }

        let auth = check_auth(&c, &raw.auth)?;
        let topics = super::topics::check_topics(
            &c,
            raw.topics.as_ref(),
            auth.is_some(),
            function.allow_client_broadcast,
        )?;
        let alarm = check_alarm(&c, &raw.alarm)?;
        let history = super::history::check_history(&c, raw.history.as_ref())?;
        let catalogue = super::catalogue::check_catalogue(&c, raw.catalogue.as_ref(), &routes)?;

        Ok(Config {
            project,
            region,
            profile,
            function,
            api,
            auth,
            topics,
            history,
            catalogue,
            alarm,
            dashboard: super::logging::check_dashboard(&raw.dashboard),
            grants: check_grants(&c, &raw.grants)?,
            domain: check_domain(&c, &raw.domain)?,
            routes,
            tags,
            env: env.map(str::to_owned),
        })
    }
}
