//! The Lambda function: runtime `provided.al2023`, handler `bootstrap`, architecture, memory,
//! timeout and environment from the config; code uploaded only when it changed.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};
use futures::future::BoxFuture;
use handler::env::{self as contract, AuthEnv, AuthKeysEnv, FunctionEnv};
use serde::Serialize;

use super::shape::{
    check, down_item, ready, tag_changes, tags_to_set, Action, Change, Check, Ctx, DownItem, Ids,
    Kind, Observation, Plan, PlanItem, Resource, Teardown, KNOWN_AFTER_APPLY,
};
use crate::aws::{aws_error, waited, AwsContext, Clients};
use crate::config::{AuthKeys, Config, FunctionConfig};
use crate::error::{Error, Result};
use crate::naming::{Names, SOURCE_TAG};
use crate::package::{CodeSpec, Zip};

pub const RUNTIME: &str = "provided.al2023";
pub const HANDLER: &str = "bootstrap";
/// How long a new role may take to become assumable by Lambda before `up` gives up.
const ROLE_PROPAGATION_DEADLINE: Duration = Duration::from_secs(120);
const WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub name: String,
    pub arn: String,
    pub runtime: String,
    pub handler: String,
    pub role: String,
    pub architecture: String,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub environment: BTreeMap<String, String>,
    pub code_sha256: String,
    pub state: String,
    pub last_update_status: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub name: String,
    pub role_arn: String,
    pub architecture: String,
    pub memory_mb: i32,
    pub timeout_seconds: i32,
    pub environment: BTreeMap<String, String>,
    pub code: CodeSpec,
    pub tags: BTreeMap<String, String>,
}

/// The handler's settings from `[function]`, as the Lambda and `wsctl dev` both run them.
pub fn settings(f: &FunctionConfig, stage: &str) -> handler::Settings {
    handler::Settings {
        ttl_seconds: f.connection_ttl_seconds,
        allow_client_broadcast: f.allow_client_broadcast,
        max_client_message_bytes: f.max_client_message_bytes as usize,
        broadcast_concurrency: f.broadcast_concurrency as usize,
        broadcast_workers: f.broadcast_workers as u32,
        allowed_origins: f.allowed_origins.clone(),
        max_messages_per_second: f.max_messages_per_second as u32,
        stage: stage.to_owned(),
        ..handler::Settings::default()
    }
}

/// The handler's environment (the contract of `handler::env`): what the runbook set, plus the
/// handler's settings, `[auth]` and `[topics]`. The HS256 secret itself never goes here: only the name of
/// its parameter.
pub fn environment(config: &Config, names: &Names, api_id: Option<&str>) -> FunctionEnv {
    let mut settings = settings(&config.function, &names.stage);
    settings.api_id = Some(api_id.unwrap_or(KNOWN_AFTER_APPLY).to_owned());
    settings.topics = config.topics.as_ref().map(|t| t.rules.clone());
    FunctionEnv {
        connections_table: names.table.clone(),
        subscriptions_table: Some(names.subscriptions_table.clone()),
        broadcasts_table: Some(names.broadcasts_table.clone()),
        auth: config.auth.as_ref().map(|auth| AuthEnv {
            keys: match &auth.keys {
                AuthKeys::Jwks { url } => AuthKeysEnv::Jwks(url.clone()),
                AuthKeys::SsmSecret { parameter, .. } => {
                    AuthKeysEnv::SecretParameter(parameter.clone())
                }
            },
            issuer: auth.issuer.clone(),
            audience: auth.audience.clone(),
            query_param: auth.token_query_param.clone(),
            token_source: auth.token_source,
            claims: auth.claims.clone(),
        }),
        history: config.history.as_ref().map(|h| handler::env::HistoryEnv {
            table: names.history_table.clone(),
            retention_seconds: h.retention.as_secs(),
            max_per_stream: h.max_per_stream,
        }),
        scan_page_size: None,
        settings,
    }
}

/// The handler's Lambda function.
pub struct Function;

impl Resource for Function {
    type Desired = Desired;
    type Observed = Option<Observed>;

    fn desired(cx: &Ctx) -> Desired {
        desired(
            &cx.stack.config,
            &cx.stack.names,
            cx.ids.api_id.as_deref(),
            cx.code.clone(),
            cx.stack.tags.clone(),
        )
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(observe(&cx.stack.clients, &cx.stack.names.function))
    }

    fn ids(observed: &Self::Observed, _desired: &Self::Desired) -> Ids {
        Ids {
            function_arn: observed.as_ref().map(|f| f.arn.clone()),
            ..Ids::default()
        }
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        Ok(vec![PlanItem::new(
            Kind::Function,
            &desired.name,
            diff(observed.as_ref(), desired),
        )])
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Desired,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            let note = |m: String| cx.progress.note(format!("function: {m}"));
            let arn = apply(
                &cx.stack.clients,
                observed.as_ref(),
                desired,
                plan.action(&Kind::Function),
                cx.zip,
                &note,
            )
            .await?;
            Ok(Ids {
                function_arn: Some(arn),
                ..Ids::default()
            })
        })
    }

    fn teardown(_cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        if let Some(f) = obs.get::<Function>() {
            t.consider(down_item(Kind::Function, &f.name, &f.name), &f.tags, adopt);
        }
        t
    }

    /// The function goes with its resource policy.
    fn delete<'a>(
        cx: &'a Ctx,
        _obs: &'a Observation,
        items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for item in items {
                delete(&cx.stack.clients, &item.id).await?;
            }
            Ok(())
        })
    }

    /// `function_environment`: the function names this stack's tables, API and stage.
    fn checks<'a>(cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        let n = &cx.stack.names;
        let api_id = cx.ids.api_id.as_deref();
        ready(vec![match obs.get::<Function>() {
            None => check("function_environment", false, "the function does not exist"),
            Some(f) => {
                let mut wrong = Vec::new();
                let want = [
                    (contract::CONNECTIONS_TABLE, Some(n.table.as_str())),
                    (
                        contract::SUBSCRIPTIONS_TABLE,
                        Some(n.subscriptions_table.as_str()),
                    ),
                    (
                        contract::BROADCASTS_TABLE,
                        Some(n.broadcasts_table.as_str()),
                    ),
                    (contract::WEBSOCKET_API_ID, api_id),
                    (contract::WEBSOCKET_STAGE, Some(n.stage.as_str())),
                ];
                for (k, v) in want {
                    let actual = f.environment.get(k).map(String::as_str);
                    if actual != v {
                        wrong.push(format!(
                            "{k}={} (expected {})",
                            actual.unwrap_or("unset"),
                            v.unwrap_or("the API id")
                        ));
                    }
                }
                check(
                    "function_environment",
                    wrong.is_empty(),
                    if wrong.is_empty() {
                        "names this stack's tables, API and stage".to_owned()
                    } else {
                        wrong.join("; ")
                    },
                )
            }
        }])
    }
}

pub fn desired(
    config: &Config,
    names: &Names,
    api_id: Option<&str>,
    code: CodeSpec,
    tags: BTreeMap<String, String>,
) -> Desired {
    Desired {
        name: names.function.clone(),
        role_arn: names.role_arn(),
        architecture: config.function.architecture.as_lambda().to_owned(),
        memory_mb: config.function.memory_mb,
        timeout_seconds: config.function.timeout_seconds,
        environment: environment(config, names, api_id).vars(),
        code,
        tags,
    }
}

pub async fn observe(c: &Clients, name: &str) -> Result<Option<Observed>> {
    let out = match c.lambda.get_function().function_name(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(aws_error(format!("GetFunction {name}"), &e).into()),
    };
    let Some(f) = out.configuration else {
        return Ok(None);
    };
    Ok(Some(Observed {
        name: name.to_owned(),
        arn: f.function_arn.clone().unwrap_or_default(),
        runtime: f
            .runtime
            .as_ref()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default(),
        handler: f.handler.clone().unwrap_or_default(),
        role: f.role.clone().unwrap_or_default(),
        architecture: f
            .architectures()
            .first()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_else(|| "x86_64".into()),
        memory_mb: f.memory_size.unwrap_or_default(),
        timeout_seconds: f.timeout.unwrap_or_default(),
        environment: f
            .environment
            .as_ref()
            .and_then(|e| e.variables.clone())
            .map(|v| v.into_iter().collect())
            .unwrap_or_default(),
        code_sha256: f.code_sha256.clone().unwrap_or_default(),
        state: f
            .state
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        last_update_status: f
            .last_update_status
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        tags: out
            .tags
            .map(|t| t.into_iter().collect())
            .unwrap_or_default(),
    }))
}

fn code_change(o: &Observed, code: &CodeSpec) -> Option<Change> {
    match code {
        CodeSpec::Zip(z) if o.code_sha256 != z.sha256_b64 => {
            Some(Change::new("code", &o.code_sha256, &z.sha256_b64))
        }
        CodeSpec::Source { fingerprint } if o.tags.get(SOURCE_TAG) != Some(fingerprint) => {
            Some(Change::new(
                "code",
                o.tags
                    .get(SOURCE_TAG)
                    .map_or(format!("sha256 {}", o.code_sha256), |t| {
                        format!("source {t}")
                    }),
                format!("source {fingerprint} (build and upload)"),
            ))
        }
        _ => None,
    }
}

pub fn diff(observed: Option<&Observed>, desired: &Desired) -> Action {
    let Some(o) = observed else {
        return Action::Create;
    };
    let mut changes = Vec::new();
    changes.extend(code_change(o, &desired.code));
    if o.architecture != desired.architecture {
        changes.push(Change::new(
            "architecture",
            &o.architecture,
            &desired.architecture,
        ));
    }
    if o.runtime != RUNTIME {
        changes.push(Change::new("runtime", &o.runtime, RUNTIME));
    }
    if o.handler != HANDLER {
        changes.push(Change::new("handler", &o.handler, HANDLER));
    }
    if o.role != desired.role_arn {
        changes.push(Change::new("role", &o.role, &desired.role_arn));
    }
    if o.memory_mb != desired.memory_mb {
        changes.push(Change::new("memory_mb", o.memory_mb, desired.memory_mb));
    }
    if o.timeout_seconds != desired.timeout_seconds {
        changes.push(Change::new(
            "timeout_seconds",
            o.timeout_seconds,
            desired.timeout_seconds,
        ));
    }
    let keys: std::collections::BTreeSet<_> = o
        .environment
        .keys()
        .chain(desired.environment.keys())
        .collect();
    for k in keys {
        let (from, to) = (o.environment.get(k), desired.environment.get(k));
        if from != to {
            changes.push(Change::new(
                format!("environment.{k}"),
                from.map_or("(unset)".to_owned(), |v| v.clone()),
                to.map_or("(unset)".to_owned(), |v| v.clone()),
            ));
        }
    }
    changes.extend(tag_changes(&o.tags, &desired.tags));
    Action::from_changes(changes)
}

/// Whether `apply` will need the zip (so the caller builds it only then).
pub fn needs_code(action: &Action) -> bool {
    matches!(action, Action::Create) || action.has("code") || action.has("architecture")
}

fn architecture(name: &str) -> Architecture {
    Architecture::from(name)
}

/// Makes the changes `diff` found. `zip` must be given when [`needs_code`] says so.
/// Returns the function ARN.
pub async fn apply(
    c: &Clients,
    observed: Option<&Observed>,
    desired: &Desired,
    action: &Action,
    zip: Option<&Zip>,
    progress: &(dyn Fn(String) + Sync),
) -> Result<String> {
    let name = &desired.name;
    let env = Environment::builder()
        .set_variables(Some(desired.environment.clone().into_iter().collect()))
        .build();
    if needs_code(action) && zip.is_none() {
        crate::fail!(
            Failed,
            "internal: function {name} needs code but none was built"
        );
    }
    let Some(o) = observed.filter(|_| *action != Action::Create) else {
        let zip = zip.expect("checked above");
        let mut tags = desired.tags.clone();
        tags.insert(SOURCE_TAG.into(), zip.source_tag.clone());
        let created = crate::retry::propagating(
            ROLE_PROPAGATION_DEADLINE,
            (Duration::from_millis(250), Duration::from_secs(5)),
            role_not_ready,
            |_, delay| {
                progress(format!(
                    "role not yet assumable by Lambda (IAM propagation); retrying in {delay:?}"
                ))
            },
            || {
                c.lambda
                    .create_function()
                    .function_name(name)
                    .runtime(Runtime::from(RUNTIME))
                    .handler(HANDLER)
                    .role(&desired.role_arn)
                    .architectures(architecture(&desired.architecture))
                    .memory_size(desired.memory_mb)
                    .timeout(desired.timeout_seconds)
                    .environment(env.clone())
                    .code(
                        FunctionCode::builder()
                            .zip_file(Blob::new(zip.bytes.as_slice()))
                            .build(),
                    )
                    .description("WebSocket connection handler deployed by wsctl")
                    .set_tags(Some(tags.clone().into_iter().collect()))
                    .send()
            },
        )
        .await;
        let arn = match created {
            Ok(out) => out.function_arn.unwrap_or_default(),
            Err(e) if role_not_ready(&e) => {
                return Err(aws_error(
                    format!(
                        "CreateFunction {name}: the role was still not assumable after {ROLE_PROPAGATION_DEADLINE:?}"
                    ),
                    &e,
                )
                .into())
            }
            // A concurrent run created it: converge what is there.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_conflict_exception()) =>
            {
                let o = observe(c, name)
                    .await?
                    .ok_or_else(|| Error::Failed(format!("function {name} vanished")))?;
                let action = diff(Some(&o), desired);
                return Box::pin(apply(c, Some(&o), desired, &action, Some(zip), progress)).await;
            }
            Err(e) => return Err(aws_error(format!("CreateFunction {name}"), &e).into()),
        };
        wait_active(c, name).await?;
        return Ok(arn);
    };

    if !action.is_change() {
        return Ok(o.arn.clone());
    }
    if o.last_update_status == "InProgress" || o.state == "Pending" {
        // An earlier (interrupted) run left an update in flight.
        wait_updated(c, name).await?;
    }
    let mut source_tag = None;
    if needs_code(action) {
        let zip = zip.expect("checked above");
        c.lambda
            .update_function_code()
            .function_name(name)
            .zip_file(Blob::new(zip.bytes.as_slice()))
            .architectures(architecture(&desired.architecture))
            .send()
            .await
            .aws(format!("UpdateFunctionCode {name}"))?;
        wait_updated(c, name).await?;
        source_tag = Some(zip.source_tag.clone());
    }
    let config_fields = [
        "runtime",
        "handler",
        "role",
        "memory_mb",
        "timeout_seconds",
        "environment",
    ];
    if config_fields.iter().any(|f| action.has(f)) {
        let mut req = c.lambda.update_function_configuration().function_name(name);
        if action.has("runtime") {
            req = req.runtime(Runtime::from(RUNTIME));
        }
        if action.has("handler") {
            req = req.handler(HANDLER);
        }
        if action.has("role") {
            req = req.role(&desired.role_arn);
        }
        if action.has("memory_mb") {
            req = req.memory_size(desired.memory_mb);
        }
        if action.has("timeout_seconds") {
            req = req.timeout(desired.timeout_seconds);
        }
        if action.has("environment") {
            req = req.environment(env);
        }
        req.send()
            .await
            .aws(format!("UpdateFunctionConfiguration {name}"))?;
        wait_updated(c, name).await?;
    }
    let mut tags = tags_to_set(&o.tags, &desired.tags);
    if let Some(t) = source_tag.filter(|t| o.tags.get(SOURCE_TAG) != Some(t)) {
        tags.insert(SOURCE_TAG.into(), t);
    }
    if !tags.is_empty() {
        c.lambda
            .tag_resource()
            .resource(&o.arn)
            .set_tags(Some(tags.into_iter().collect()))
            .send()
            .await
            .aws(format!("TagResource {}", o.arn))?;
    }
    Ok(o.arn.clone())
}

/// Lambda's answer while a new role has not propagated: InvalidParameterValueException whose
/// message says the role cannot be assumed.
fn role_not_ready(
    e: &aws_sdk_lambda::error::SdkError<
        aws_sdk_lambda::operation::create_function::CreateFunctionError,
    >,
) -> bool {
    e.as_service_error().is_some_and(|s| {
        s.is_invalid_parameter_value_exception()
            && aws_sdk_lambda::error::ProvideErrorMetadata::message(s)
                .is_some_and(|m| m.contains("cannot be assumed"))
    })
}

async fn wait_active(c: &Clients, name: &str) -> Result<()> {
    waited(
        c.lambda
            .wait_until_function_active_v2()
            .function_name(name)
            .wait(WAIT)
            .await,
        format!("waiting for function {name} to become Active"),
    )?;
    Ok(())
}

async fn wait_updated(c: &Clients, name: &str) -> Result<()> {
    waited(
        c.lambda
            .wait_until_function_updated_v2()
            .function_name(name)
            .wait(WAIT)
            .await,
        format!("waiting for the update of function {name}"),
    )?;
    Ok(())
}

/// Deletes the function (its resource policy goes with it). Already gone is success.
pub async fn delete(c: &Clients, name: &str) -> Result<bool> {
    match c.lambda.delete_function().function_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(aws_error(format!("DeleteFunction {name}"), &e).into()),
    }
}
