//! `bootstrap`: the Lambda (custom runtime `provided.al2023`) around the handler library.
//!
//! Converts `ApiGatewayWebsocketProxyRequest`s into [`handler::Event`]s, treats any other
//! payload as a direct invocation (`{"action":"broadcast",...}`), builds the SDK clients once,
//! and logs one JSON line per invocation.

use std::sync::Arc;
use std::time::Instant;

use handler::auth::{Auth, HttpsFetcher};
use handler::env::{AuthKeysEnv, EnvError, FunctionEnv};
use handler::fanout::{DynamoBroadcastLog, LambdaInvoker};
use handler::history::DynamoHistory;
use handler::push::ManagementApiPusher;
use handler::signed::{ClientInitError, SignedClient};
use handler::store::DynamoStore;
use handler::{error_chain, Event, FanOut, Handler, Outcome};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;

type Live = Handler<DynamoStore, ManagementApiPusher>;

#[derive(Debug, thiserror::Error)]
enum InitError {
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error("authentication is configured but cannot start: {0}")]
    Secret(String),
    #[error(transparent)]
    Client(#[from] ClientInitError),
    #[error("broadcast fan-out cannot start: {0}")]
    FanOut(&'static str),
    #[error("the bundled catalogue cannot be read: {0}")]
    Catalogue(String),
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
    let env = FunctionEnv::read(get)?;
    let settings = env.settings.clone();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &settings.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let sdk = loader.load().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let store = DynamoStore::new(dynamodb.clone(), env.connections_table.clone())
        .with_page_size(env.scan_page_size)
        .with_subscriptions(env.subscriptions_table.clone());
    // One signed client (one credentials cache) for the management API and Lambda's Invoke.
    let client = Arc::new(SignedClient::new(&sdk)?);
    let region = settings
        .region
        .clone()
        .or_else(|| sdk.region().map(|r| r.to_string()));
    let pusher = ManagementApiPusher::new(client.clone(), region.as_deref());
    let history = env.history.as_ref().map(|h| {
        let port = DynamoHistory::new(
            dynamodb.clone(),
            h.table.clone(),
            std::time::Duration::from_secs(h.retention_seconds),
        );
        (Arc::new(port), h.max_per_stream)
    });
    let fanout = match &env.broadcasts_table {
        Some(table) => Some(fan_out(client, region, &settings, dynamodb, table, &get)?),
        None => None,
    };
    let mut handler = Handler::new(settings, Arc::new(store), Arc::new(pusher));
    if let Some((port, cap)) = history {
        handler = handler.with_history(port, cap);
    }
    if let Some(catalogue) = bundled_catalogue()? {
        handler = handler.with_catalogue(Arc::new(catalogue));
    }
    if let Some(fanout) = fanout {
        handler = handler.with_fanout(fanout);
    }
    if let Some(a) = &env.auth {
        let mut auth = match &a.keys {
            AuthKeysEnv::Jwks(url) => Auth::jwks(url, Box::new(HttpsFetcher::new()?)),
            AuthKeysEnv::SecretParameter(name) => Auth::hs256(read_secret(&sdk, name).await?),
        };
        auth.issuer = a.issuer.clone();
        auth.audience = a.audience.clone();
        auth.query_param = a.query_param.clone();
        auth.source = a.token_source;
        auth.claims = a.claims.clone();
        handler = handler.with_auth(auth);
    }
    Ok(handler)
}

/// The catalogue `wsctl up` bundled next to `bootstrap` (`$LAMBDA_TASK_ROOT/catalogue.json`),
/// if the project has one.
fn bundled_catalogue() -> Result<Option<handler::catalogue::Catalogue>, InitError> {
    // Lambda sets LAMBDA_TASK_ROOT to where the zip was unpacked (/var/task).
    let Some(dir) = std::env::var_os("LAMBDA_TASK_ROOT") else {
        return Ok(None);
    };
    let path = std::path::Path::new(&dir).join(handler::catalogue::BUNDLED);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(InitError::Catalogue(format!("{}: {e}", path.display()))),
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| InitError::Catalogue(format!("{}: {e}", path.display())))?;
    handler::catalogue::Catalogue::from_json(&value)
        .map(Some)
        .map_err(|e| InitError::Catalogue(format!("{}: {e}", path.display())))
}

/// Broadcast records in `table`, and invocations of this function (`AWS_LAMBDA_FUNCTION_NAME`,
/// set by Lambda) for the workers of a broadcast and their hand-overs.
fn fan_out(
    client: Arc<SignedClient>,
    region: Option<String>,
    settings: &handler::Settings,
    dynamodb: aws_sdk_dynamodb::Client,
    table: &str,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<FanOut, InitError> {
    let function = get(handler::env::AWS_LAMBDA_FUNCTION_NAME)
        .filter(|f| !f.trim().is_empty())
        .ok_or(InitError::FanOut(
            "AWS_LAMBDA_FUNCTION_NAME is not set: a broadcast's workers are invocations of this function",
        ))?;
    let region = region.ok_or(InitError::FanOut(
        "no region (AWS_REGION): the function cannot invoke itself",
    ))?;
    let invoker = LambdaInvoker::new(
        client,
        &region,
        &function,
        LambdaInvoker::endpoint_from_env(get).as_deref(),
    );
    Ok(FanOut::new(
        Arc::new(invoker),
        Arc::new(DynamoBroadcastLog::new(dynamodb, table.to_owned())),
        settings.broadcast_workers,
    ))
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
            InitError::Secret(format!(
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
        None => Err(InitError::Secret(format!(
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
            error_message: e.to_string(),
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
            broadcast_id = r.broadcast_id.as_deref().unwrap_or(""),
            segments = r.segments.unwrap_or(1),
            elapsed_ms,
            "handled"
        ),
        Ok(Outcome::Authorized(a)) => tracing::info!(
            request_id,
            route,
            user = a.principal_id,
            elapsed_ms,
            "handled"
        ),
        Ok(Outcome::Membership(m)) => tracing::info!(
            request_id,
            route,
            action = m.action,
            topic = m.topic.as_deref().unwrap_or(""),
            done = m.done,
            gone = m.gone,
            failed = m.failed,
            complete = m.complete,
            elapsed_ms,
            "handled"
        ),
        Ok(Outcome::Status(s)) => tracing::info!(
            request_id,
            route,
            broadcast_id = s.broadcast_id,
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

fn describe(event: &Result<Event, handler::apigw::BadEvent>) -> (String, String) {
    match event {
        Ok(Event::Connect { ctx, .. }) => ("$connect".into(), ctx.connection_id.clone()),
        Ok(Event::Disconnect { ctx }) => ("$disconnect".into(), ctx.connection_id.clone()),
        Ok(Event::Message { ctx, .. }) => ("$default".into(), ctx.connection_id.clone()),
        Ok(Event::Authorize(_)) => ("authorizer".into(), String::new()),
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
