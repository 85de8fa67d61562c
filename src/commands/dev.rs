//! `wsctl dev`: the local gateway's options from the flags and the project file (which is
//! optional here: without one, the handler runs with its defaults).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use handler::auth::{Auth, HttpsFetcher};
use handler::topics::Rules;

use super::Context;
use crate::cli::{DevAction, DevArgs, DropArgs};
use crate::config::{AuthConfig, AuthKeys, Config, RouteTarget, TopicAccess, TopicsConfig};
use crate::dev::targets::{DevRoute, Target};
use crate::dev::{self, DevOptions, Throttle};
use crate::error::{Error, Result};
use crate::resources::function;

pub async fn dev(cx: &Context, args: &DevArgs) -> Result<ExitCode> {
    if let Some(DevAction::Drop(drop)) = &args.action {
        return drop_connections(cx, drop).await;
    }
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
    let user_routes = dev_routes(args, config.as_ref())?;
    let backend_secret = match &args.backend_secret_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => {
                crate::redact::add(v.clone());
                Some(v)
            }
            _ => crate::fail!(
                Usage,
                "--backend-secret-env {var}: that environment variable is not set"
            ),
        },
    };
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
        user_routes: user_routes.clone(),
        lambda_endpoint: args.lambda_endpoint.clone(),
        backend_secret: backend_secret.clone(),
        history: match (
            args.history,
            config.as_ref().and_then(|c| c.history.as_ref()),
        ) {
            (Some(retention), h) => Some((retention, h.map_or(1000, |h| h.max_per_stream))),
            (None, Some(h)) => Some((h.retention, h.max_per_stream)),
            (None, None) => None,
        },
        drop_every: args.drop_every.map(|every| (every, args.drop_mode)),
        catalogue: config
            .as_ref()
            .and_then(|c| c.catalogue.as_ref())
            .map(|c| Arc::new(c.compiled.clone())),
        quiet: cx.quiet(),
        throttle: Throttle::new(
            args.management_rate,
            args.management_burst,
            args.management_latency,
        ),
        function_timeout: Duration::from_secs(f.timeout_seconds.max(1) as u64),
    };
    let sends_secret = backend_secret.is_some();
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
            for r in &user_routes {
                let target = match &r.target {
                    Target::Http(url) => format!("POST {url}"),
                    Target::Function(f) => format!("function {f} at the Lambda endpoint"),
                };
                let way = if r.two_way { "two way" } else { "one way" };
                eprintln!("wsctl dev: route {} -> {target} ({way}, {} ms)", r.key, r.timeout.as_millis());
            }
            if user_routes.iter().any(|r| matches!(r.target, Target::Http(_))) && !sends_secret {
                eprintln!("wsctl dev: HTTP backends get no X-Wsctl-Secret (--backend-secret-env VAR sends one)");
            }
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

/// `wsctl dev drop`: asks a running gateway to drop connections (`POST /_dev/drop`).
async fn drop_connections(cx: &Context, args: &DropArgs) -> Result<ExitCode> {
    use http_body_util::{BodyExt, Empty};
    let base = args
        .url
        .replacen("ws://", "http://", 1)
        .replacen("wss://", "https://", 1);
    let base = match base.find("://").map(|i| i + 3) {
        Some(start) => match base[start..].find('/') {
            Some(end) => base[..start + end].to_owned(),
            None => base,
        },
        None => crate::fail!(
            Usage,
            "--url {:?} is not a URL (e.g. http://127.0.0.1:3002)",
            args.url
        ),
    };
    let mut uri = format!("{base}/_dev/drop?mode={}", args.mode.as_str());
    if let Some(id) = &args.connection {
        uri.push_str("&connection=");
        uri.push_str(
            &percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<axum::body::Bytes>>();
    let request = axum::http::Request::post(&uri)
        .body(Empty::new())
        .map_err(|e| Error::Usage(format!("{uri}: {e}")))?;
    let response = client
        .request(request)
        .await
        .map_err(|e| Error::Failed(format!("POST {uri}: {e} (is wsctl dev running there?)")))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    if !status.is_success() {
        crate::fail!(Failed, "POST {uri}: {status}: {body}");
    }
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    cx.print(&Dropped {
        dropped: answer["dropped"].as_u64().unwrap_or(0),
        mode: args.mode.as_str(),
    });
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct Dropped {
    dropped: u64,
    mode: &'static str,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "dropped {} connection(s) ({})", self.dropped, self.mode)
    }
}

/// `[[route]]` as dev runs it: the file's routes, their HTTP URLs replaced by `--route-url`;
/// a function route needs a Lambda endpoint to be invoked at.
fn dev_routes(args: &DevArgs, config: Option<&Config>) -> Result<Vec<DevRoute>> {
    let routes: Vec<DevRoute> = config
        .map(|c| c.routes.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|r| DevRoute {
            key: r.key.clone(),
            target: match &r.target {
                RouteTarget::Http(url) => Target::Http(
                    args.route_urls
                        .iter()
                        .find(|(k, _)| k == &r.key)
                        .map_or(url.clone(), |(_, u)| u.clone()),
                ),
                RouteTarget::Function(f) => Target::Function(f.clone()),
            },
            two_way: r.two_way,
            timeout: Duration::from_millis(r.timeout_ms as u64),
        })
        .collect();
    if let Some((key, _)) = args.route_urls.iter().find(|(k, _)| {
        !routes
            .iter()
            .any(|r| &r.key == k && matches!(r.target, Target::Http(_)))
    }) {
        crate::fail!(
            Usage,
            "--route-url {key}=...: the project file has no [[route]] with key {key:?} and an http target"
        );
    }
    if let (Some(r), None) = (
        routes
            .iter()
            .find(|r| matches!(r.target, Target::Function(_))),
        &args.lambda_endpoint,
    ) {
        crate::fail!(
            Usage,
            "route {:?} invokes a Lambda function: pass --lambda-endpoint URL (or set AWS_ENDPOINT_URL_LAMBDA) where it runs locally, e.g. cargo lambda watch's http://localhost:9000",
            r.key
        );
    }
    Ok(routes)
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
    auth.claims = config.map(|c| c.claims.clone()).unwrap_or_default();
    Ok(Some(Arc::new(auth)))
}
