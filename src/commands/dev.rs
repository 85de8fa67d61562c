//! `wsctl dev`: the local gateway's options from the flags and the project file (which is
//! optional here: without one, the handler runs with its defaults).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use handler::auth::{Auth, HttpsFetcher};
use handler::topics::Rules;

use super::Context;
use crate::cli::DevArgs;
use crate::config::{AuthConfig, AuthKeys, Config, TopicAccess, TopicsConfig};
use crate::dev::{self, DevOptions, Throttle};
use crate::error::{Error, Result};
use crate::resources::function;

pub async fn dev(cx: &Context, args: &DevArgs) -> Result<ExitCode> {
    let config = match cx.cli.config.exists() {
        true => Some(cx.config()?),
        false => None,
    };
    if !args.path.starts_with('/') || args.path.len() < 2 {
        crate::fail!(
            Usage,
            "--path {:?} must start with / and name a path, e.g. /ws",
            args.path
        );
    }
    if args.frame_limit == 0 || args.message_limit < args.frame_limit {
        crate::fail!(
            Usage,
            "--frame-limit must be positive and at most --message-limit"
        );
    }
    let f = config
        .as_ref()
        .map(|c| c.function.clone())
        .unwrap_or_default();
    let api = config.as_ref().map(|c| c.api.clone()).unwrap_or_default();
    let stage = args.stage.clone().unwrap_or(api.stage);
    // The settings the function would run with, the flags over them.
    let mut settings = function::settings(&f, &stage);
    settings.allow_client_broadcast |= args.allow_client_broadcast;
    if !args.allowed_origins.is_empty() {
        settings.allowed_origins = args.allowed_origins.clone();
    }
    if let Some(limit) = args.max_messages_per_second {
        settings.max_messages_per_second = limit;
    }
    let auth = dev_auth(args, config.as_ref().and_then(|c| c.auth.as_ref()))?;
    let topics = dev_topics(args, config.as_ref())?;
    settings.topics = topics.as_ref().map(|t| t.rules.clone());
    let access = TopicAccess::of(
        topics.as_ref(),
        auth.is_some(),
        settings.allow_client_broadcast,
    );
    let opts = DevOptions {
        host: args.host.clone(),
        port: args.port,
        path: args.path.clone(),
        stage,
        route_selection_expression: api.route_selection_expression,
        routes: args.routes.clone(),
        idle_timeout: args.idle_timeout,
        max_duration: args.max_duration,
        frame_limit: args.frame_limit,
        message_limit: args.message_limit,
        settings,
        print_events: args.print_events,
        auth,
        quiet: cx.quiet(),
        throttle: Throttle::new(
            args.management_rate,
            args.management_burst,
            args.management_latency,
        ),
        function_timeout: Duration::from_secs(f.timeout_seconds.max(1) as u64),
    };
    let path = opts.path.clone();
    let stage = opts.stage.clone();
    let throttle = opts.throttle.clone();
    let quiet = cx.quiet();
    dev::run(opts, |addr| {
        let host = if addr.ip().is_loopback() { "localhost".to_owned() } else { addr.ip().to_string() };
        let url = format!("ws://{host}:{}{path}", addr.port());
        println!("{url}");
        let _ = std::io::stdout().flush();
        if !quiet {
            eprintln!("wsctl dev: WebSocket {url}  (also ws://{host}:{}/{stage})", addr.port());
            eprintln!("wsctl dev: management API http://{host}:{}/{stage}/@connections/{{id}}", addr.port());
            eprintln!("wsctl dev: Lambda invoke  http://{host}:{}/2015-03-31/functions/{{name}}/invocations", addr.port());
            eprintln!("wsctl dev: topics: {access}");
            if let Some(w) = &access.warning {
                eprintln!("wsctl dev: warning: {w}");
            }
            if let Some(t) = &throttle {
                eprintln!("wsctl dev: management API throttled like API Gateway's account: {t}");
            }
            eprintln!("wsctl dev: Ctrl-C closes every client (1001) and runs $disconnect");
        }
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The topic rules: the flags' lists, else the project's `[topics]`.
fn dev_topics(args: &DevArgs, config: Option<&Config>) -> Result<Option<TopicsConfig>> {
    if args.topics_subscribe.is_empty() && args.topics_publish.is_empty() {
        return Ok(config.and_then(|c| c.topics.clone()));
    }
    let rules = Rules::parse(&args.topics_subscribe, &args.topics_publish)
        .map_err(|e| Error::Usage(format!("--topics-subscribe / --topics-publish: {e}")))?;
    Ok(Some(TopicsConfig {
        subscribe: args.topics_subscribe.clone(),
        publish: args.topics_publish.clone(),
        rules,
    }))
}

/// Token checks for `wsctl dev`: the flags, else the project's `[auth]` (a JWKS URL works
/// locally; an SSM secret needs `--jwt-secret-env`, since dev reads nothing from AWS).
fn dev_auth(args: &DevArgs, config: Option<&AuthConfig>) -> Result<Option<Arc<Auth>>> {
    if args.no_auth {
        return Ok(None);
    }
    let from_secret_env = |var: &str| match std::env::var(var) {
        Ok(secret) if !secret.is_empty() => {
            crate::redact::add(secret.clone());
            Ok(Auth::hs256(secret.into_bytes()))
        }
        _ => Err(Error::Usage(format!(
            "--jwt-secret-env {var}: that environment variable is not set"
        ))),
    };
    let jwks = |url: &str| -> Result<Auth> {
        let fetcher = HttpsFetcher::new().map_err(|e| Error::Failed(e.to_string()))?;
        Ok(Auth::jwks(url, Box::new(fetcher)))
    };
    let mut auth = match (&args.jwks_url, &args.jwt_secret_env, config.map(|c| &c.keys)) {
        (Some(url), _, _) => jwks(url)?,
        (None, Some(var), _) => from_secret_env(var)?,
        (None, None, Some(AuthKeys::Jwks { url })) => jwks(url)?,
        (None, None, Some(AuthKeys::SsmSecret { parameter, .. })) => crate::fail!(
            Usage,
            "[auth] secret_parameter = {parameter:?} is an SSM parameter, which wsctl dev does not read: \
             pass --jwt-secret-env VAR with a local secret in VAR, or --no-auth"
        ),
        (None, None, None) => return Ok(None),
    };
    auth.issuer = args
        .jwt_issuer
        .clone()
        .or_else(|| config.and_then(|c| c.issuer.clone()));
    auth.audience = if args.jwt_audiences.is_empty() {
        config.map(|c| c.audience.clone()).unwrap_or_default()
    } else {
        args.jwt_audiences.clone()
    };
    auth.query_param = args
        .token_param
        .clone()
        .or_else(|| config.map(|c| c.token_query_param.clone()))
        .unwrap_or_else(|| "token".into());
    auth.source = args
        .token_source
        .or_else(|| config.map(|c| c.token_source))
        .unwrap_or_default();
    auth.jwks_refetch_min = args.jwks_min_refetch;
    Ok(Some(Arc::new(auth)))
}
