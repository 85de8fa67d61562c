//! Validation of the project file: each raw value checked against what AWS accepts (names,
//! ranges, ARNs, the auth and alarm sections' rules), defaults filled in, and a
//! [`ConfigError::Invalid`] naming the key and its line for the first value refused.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::raw::{parse_message, RawAlarm, RawAuth, RawConfig};
use super::*;

pub(super) struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Checker<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    pub(super) fn invalid(
        &self,
        key: &str,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: self.line(span),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    /// The first of `keys` that is set (with its span), refused with `why`.
    fn no_stray<const N: usize>(
        &self,
        keys: [(&str, Option<Range<usize>>); N],
        why: &str,
    ) -> Result<(), ConfigError> {
        match keys.into_iter().find_map(|(k, span)| Some((k, span?))) {
            Some((key, span)) => Err(self.invalid(key, span, why)),
            None => Ok(()),
        }
    }

    fn int_in(
        &self,
        key: &str,
        value: &Option<Spanned<i64>>,
        default: i64,
        range: std::ops::RangeInclusive<i64>,
        unit: &str,
    ) -> Result<i64, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref()),
            Some(v) => Err(self.invalid(
                key,
                v.span(),
                format!(
                    "{} is out of range: expected {} to {} {unit}",
                    v.get_ref(),
                    range.start(),
                    range.end()
                ),
            )),
        }
    }
}

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

fn valid_region(region: &str) -> bool {
    // e.g. us-east-1, eu-central-2, ap-southeast-3, us-gov-west-1, cn-north-1
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
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
        };

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
        let alarm = check_alarm(&c, &raw.alarm)?;

        Ok(Config {
            project,
            region,
            profile,
            function,
            api,
            auth,
            alarm,
            dashboard: super::logging::check_dashboard(&raw.dashboard),
            grants: super::logging::check_grants(&c, &raw.grants)?,
            domain: super::logging::check_domain(&c, &raw.domain)?,
            tags,
            env: env.map(str::to_owned),
        })
    }
}

/// Where an optional key was written, if it was.
fn span_of<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
    v.as_ref().map(Spanned::span)
}

fn nonempty(v: &Option<Spanned<String>>) -> Option<&Spanned<String>> {
    v.as_ref().filter(|s| !s.get_ref().trim().is_empty())
}

/// An ARN of `service` (`arn:{partition}:{service}:{region}:{account}:{resource}`).
fn valid_arn(arn: &str, service: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && valid_region(parts[3])
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && !parts[5].is_empty()
        && !parts[5].contains(|c: char| c.is_whitespace() || c == '*')
}

fn check_auth(c: &Checker<'_>, a: &RawAuth) -> Result<Option<AuthConfig>, ConfigError> {
    let keys = match (nonempty(&a.jwks_url), nonempty(&a.secret_parameter)) {
        (Some(_), Some(p)) => {
            return Err(c.invalid(
                "auth.secret_parameter",
                p.span(),
                "set either auth.jwks_url (RS256/ES256) or auth.secret_parameter (HS256), not both",
            ))
        }
        (Some(u), None) => {
            let url = u.get_ref().trim();
            // https, or plain http to this machine (a local issuer for `wsctl dev`).
            let host = url.strip_prefix("https://").or_else(|| {
                url.strip_prefix("http://").filter(|h| {
                    ["localhost", "127.0.0.1", "[::1]"].iter().any(|l| {
                        h.strip_prefix(l)
                            .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
                    })
                })
            });
            if host.is_none_or(|h| h.is_empty() || h.starts_with('/'))
                || url.contains(char::is_whitespace)
            {
                return Err(c.invalid(
                    "auth.jwks_url",
                    u.span(),
                    format!("{url:?} is not an https:// URL (e.g. https://cognito-idp.us-east-1.amazonaws.com/<pool>/.well-known/jwks.json; http:// only for localhost)"),
                ));
            }
            AuthKeys::Jwks {
                url: url.to_owned(),
            }
        }
        (None, Some(p)) => {
            let name = p.get_ref().trim();
            let ok = name.len() <= 1011
                && name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_.-/".contains(ch))
                && !name
                    .to_ascii_lowercase()
                    .trim_start_matches('/')
                    .starts_with("aws")
                && !name
                    .to_ascii_lowercase()
                    .trim_start_matches('/')
                    .starts_with("ssm");
            if !ok {
                return Err(c.invalid(
                    "auth.secret_parameter",
                    p.span(),
                    format!("{name:?} is not an SSM parameter name: letters, digits and _.-/ only, not starting with aws or ssm, e.g. \"/myapp/ws-jwt-secret\""),
                ));
            }
            let kms_key_arn = match nonempty(&a.secret_kms_key_arn) {
                None => None,
                Some(k) if valid_arn(k.get_ref().trim(), "kms") => {
                    Some(k.get_ref().trim().to_owned())
                }
                Some(k) => {
                    return Err(c.invalid(
                        "auth.secret_kms_key_arn",
                        k.span(),
                        format!(
                            "{:?} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)",
                            k.get_ref()
                        ),
                    ))
                }
            };
            AuthKeys::SsmSecret {
                parameter: name.to_owned(),
                kms_key_arn,
            }
        }
        (None, None) => {
            // Keys that only mean something with a key source.
            c.no_stray(
                [
                    ("auth.issuer", span_of(&a.issuer)),
                    ("auth.audience", span_of(&a.audience)),
                    ("auth.token_query_param", span_of(&a.token_query_param)),
                    ("auth.token_source", span_of(&a.token_source)),
                    ("auth.secret_kms_key_arn", span_of(&a.secret_kms_key_arn)),
                ],
                "has no effect without auth.jwks_url or auth.secret_parameter",
            )?;
            return Ok(None);
        }
    };
    if let (AuthKeys::Jwks { .. }, Some(k)) = (&keys, &a.secret_kms_key_arn) {
        return Err(c.invalid(
            "auth.secret_kms_key_arn",
            k.span(),
            "only applies to auth.secret_parameter",
        ));
    }
    let issuer = nonempty(&a.issuer).map(|i| i.get_ref().trim().to_owned());
    let audience = match &a.audience {
        None => Vec::new(),
        Some(list) => {
            if list
                .get_ref()
                .iter()
                .any(|x| x.trim().is_empty() || x.contains(','))
            {
                return Err(c.invalid(
                    "auth.audience",
                    list.span(),
                    "audiences are non-empty strings without commas",
                ));
            }
            list.get_ref().iter().map(|x| x.trim().to_owned()).collect()
        }
    };
    let token_query_param = match &a.token_query_param {
        None => "token".to_owned(),
        Some(p) => {
            let v = p.get_ref();
            if v.is_empty()
                || v.len() > 64
                || !v
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                return Err(c.invalid(
                    "auth.token_query_param",
                    p.span(),
                    format!(
                        "{v:?} is not a query parameter name: 1 to 64 letters, digits, '_' or '-'"
                    ),
                ));
            }
            v.clone()
        }
    };
    let token_source = match &a.token_source {
        None => TokenSource::Query,
        Some(t) => t
            .get_ref()
            .parse()
            .map_err(|e: handler::auth::UnknownTokenSource| {
                c.invalid("auth.token_source", t.span(), e.to_string())
            })?,
    };
    Ok(Some(AuthConfig {
        keys,
        issuer,
        audience,
        token_query_param,
        token_source,
    }))
}

/// CloudWatch's alarm periods: 10, 30 or a multiple of 60 seconds.
fn valid_period(p: i64) -> bool {
    p == 10 || p == 30 || (p >= 60 && p % 60 == 0 && p <= 86_400)
}

fn check_alarm(c: &Checker<'_>, a: &RawAlarm) -> Result<Option<AlarmConfig>, ConfigError> {
    let Some(topic) = nonempty(&a.sns_topic_arn) else {
        c.no_stray(
            [
                ("alarm.errors_threshold", span_of(&a.errors_threshold)),
                ("alarm.period_seconds", span_of(&a.period_seconds)),
                ("alarm.evaluation_periods", span_of(&a.evaluation_periods)),
            ],
            "has no effect without alarm.sns_topic_arn (the alarm is off)",
        )?;
        return Ok(None);
    };
    let arn = topic.get_ref().trim();
    if !valid_arn(arn, "sns") {
        return Err(c.invalid(
            "alarm.sns_topic_arn",
            topic.span(),
            format!("{arn:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)"),
        ));
    }
    let period_seconds = c.int_in(
        "alarm.period_seconds",
        &a.period_seconds,
        300,
        10..=86_400,
        "seconds",
    )?;
    if !valid_period(period_seconds) {
        let span = a.period_seconds.as_ref().map_or(0..0, |v| v.span());
        return Err(c.invalid(
            "alarm.period_seconds",
            span,
            format!("{period_seconds} is not a CloudWatch period: use 10, 30 or a multiple of 60"),
        ));
    }
    Ok(Some(AlarmConfig {
        sns_topic_arn: arn.to_owned(),
        errors_threshold: c.int_in(
            "alarm.errors_threshold",
            &a.errors_threshold,
            1,
            1..=1_000_000,
            "errors",
        )?,
        period_seconds,
        evaluation_periods: c.int_in(
            "alarm.evaluation_periods",
            &a.evaluation_periods,
            1,
            1..=100,
            "periods",
        )?,
    }))
}
