//! `bootstrap`: the Lambda (custom runtime `provided.al2023`) around the handler library.
//!
//! Converts `ApiGatewayWebsocketProxyRequest`s into [`handler::Event`]s, treats any other
//! payload as a direct invocation (`{"action":"broadcast",...}`), builds the SDK clients once,
//! and logs one JSON line per invocation.

use std::sync::Arc;
use std::time::Instant;

use handler::push::ManagementApiPusher;
use handler::store::DynamoStore;
use handler::{error_chain, Event, Handler, Outcome, Settings};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

type Live = Handler<DynamoStore, ManagementApiPusher>;

#[derive(Debug, thiserror::Error)]
enum InitError {
    #[error(transparent)]
    Settings(#[from] handler::SettingsError),
    #[error("environment variable CONNECTIONS_TABLE is not set: the function needs its DynamoDB table name")]
    NoTable,
    #[error("authentication is configured but cannot start: {0}")]
    Auth(String),
    #[error(transparent)]
    Pusher(#[from] handler::push::PusherInitError),
}

// One thread: Lambda hands a function one event at a time, and below 1,769 MB it gets less
// than one vCPU, so worker threads would only add cross-thread wake-ups to every post of a
// broadcast (measured in docs/BENCHMARKS.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let handler = match build().await {
        Ok(h) => h,
        Err(e) => {
            let message = error_chain(&e);
            tracing::error!(error = %message, "initialisation failed");
            report_init_error(&message).await;
            std::process::exit(1);
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let handler = handler.clone();
        async move { invoke(&handler, event).await }
    }))
    .await
}

async fn build() -> Result<Live, InitError> {
    let get = |k: &str| std::env::var(k).ok();
    let settings = Settings::from_lookup(get)?;
    let table = get("CONNECTIONS_TABLE")
        .filter(|t| !t.trim().is_empty())
        .ok_or(InitError::NoTable)?;
    let page_size = match get("SCAN_PAGE_SIZE").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<i32>().ok().filter(|n| *n > 0).ok_or(
            handler::SettingsError {
                name: "SCAN_PAGE_SIZE",
                value: v,
                expected: "a positive whole number",
            },
        )?),
    };
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    let store =
        DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table).with_page_size(page_size);
    let secret = match get("AUTH_SECRET_PARAMETER").filter(|p| !p.trim().is_empty()) {
        Some(name) => Some(read_secret(&sdk, name.trim()).await?),
        None => None,
    };
    let pusher = ManagementApiPusher::new(&sdk, settings.region.as_deref())?;
    let mut handler = Handler::new(settings, Arc::new(store), Arc::new(pusher));
    let jwks = get("AUTH_JWKS_URL").filter(|u| !u.trim().is_empty());
    match (jwks, secret) {
        (Some(_), Some(_)) => {
            return Err(InitError::Auth(
                "set AUTH_JWKS_URL or AUTH_SECRET_PARAMETER, not both".into(),
            ))
        }
        (Some(url), None) => {
            let fetcher = handler::auth::HttpsFetcher::new().map_err(InitError::Auth)?;
            handler = handler.with_auth(
                handler::auth::Auth::jwks(url.trim(), Box::new(fetcher)).configured(get),
            );
        }
        (None, Some(secret)) => {
            handler = handler.with_auth(handler::auth::Auth::hs256(secret).configured(get));
        }
        (None, None) => {}
    }
    Ok(handler)
}

/// The HS256 secret, from an SSM parameter (a SecureString, decrypted), once per cold start.
/// Errors name the parameter, never its value.
async fn read_secret(sdk: &aws_config::SdkConfig, name: &str) -> Result<Vec<u8>, InitError> {
    let out = aws_sdk_ssm::Client::new(sdk)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            InitError::Auth(format!(
                "reading the JWT secret from SSM parameter {name}: {}",
                error_chain(&e)
            ))
        })?;
    match out
        .parameter
        .and_then(|p| p.value)
        .filter(|v| !v.is_empty())
    {
        Some(value) => Ok(value.into_bytes()),
        None => Err(InitError::Auth(format!(
            "SSM parameter {name} has no value"
        ))),
    }
}

/// Tells the Runtime API why this function cannot start (`/runtime/init/error`), so the
/// invoker sees the cause rather than a bare "Runtime exited".
async fn report_init_error(message: &str) {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return;
    }
    let body = serde_json::json!({"errorType": "InitError", "errorMessage": message}).to_string();
    let request = lambda_runtime_api_client::build_request()
        .method("POST")
        .uri("/2018-06-01/runtime/init/error")
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
        .header("Content-Type", "application/json")
        .body(lambda_runtime_api_client::body::Body::from(body));
    let sent = match (
        lambda_runtime_api_client::Client::builder().build(),
        request,
    ) {
        (Ok(client), Ok(request)) => client
            .call(request)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        (Err(e), _) => Err(e.to_string()),
        (_, Err(e)) => Err(e.to_string()),
    };
    if let Err(e) = sent {
        tracing::error!(error = %e, "could not report the initialisation error to the Runtime API");
    }
}

async fn invoke(handler: &Live, event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let started = Instant::now();
    let request_id = event.context.request_id.clone();
    let event_context = event.context;
    let converted = handler::apigw::to_event(event.payload);
    let (route, connection_id) = describe(&converted);
    let result = match converted {
        Ok(event) => handler
            .handle_until(event, deadline(&event_context))
            .await
            .map_err(|e| Diagnostic {
                error_type: e.kind().to_owned(),
                error_message: error_chain(&e),
            }),
        Err(e) => Err(Diagnostic {
            error_type: "BadEvent".to_owned(),
            error_message: e,
        }),
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match &result {
        Ok(Outcome::Http { status, .. }) => tracing::info!(
            request_id,
            route,
            connection_id,
            status,
            elapsed_ms,
            "handled"
        ),
        Ok(Outcome::Report(r)) => tracing::info!(
            request_id,
            route,
            delivered = r.delivered,
            gone = r.gone,
            failed = r.failed,
            throttled = r.throttled,
            retried = r.retried,
            complete = r.complete,
            elapsed_ms,
            "handled"
        ),
        Err(d) => tracing::error!(
            request_id,
            route,
            connection_id,
            error_type = d.error_type,
            error = d.error_message,
            elapsed_ms,
            "failed"
        ),
    }
    result.and_then(|outcome| {
        serde_json::to_value(outcome).map_err(|e| Diagnostic {
            error_type: "SerializeError".to_owned(),
            error_message: e.to_string(),
        })
    })
}

/// The invocation's deadline (`Lambda-Runtime-Deadline-Ms`, milliseconds since the epoch) as
/// an instant on this process's clock. A runtime that sends none (0) gets Lambda's longest.
fn deadline(context: &lambda_runtime::Context) -> Instant {
    if context.deadline == 0 {
        return Instant::now() + handler::MAX_INVOCATION;
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = std::time::Duration::from_millis(context.deadline.saturating_sub(now_ms));
    Instant::now() + left.min(handler::MAX_INVOCATION)
}

fn describe(event: &Result<Event, String>) -> (String, String) {
    match event {
        Ok(Event::Connect { ctx, .. }) => ("$connect".into(), ctx.connection_id.clone()),
        Ok(Event::Disconnect { ctx }) => ("$disconnect".into(), ctx.connection_id.clone()),
        Ok(Event::Message { ctx, .. }) => ("$default".into(), ctx.connection_id.clone()),
        Ok(Event::Invoke(v)) => (
            format!(
                "invoke:{}",
                v.get("action").and_then(Value::as_str).unwrap_or("?")
            ),
            String::new(),
        ),
        Err(_) => ("?".into(), String::new()),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .init();
}
