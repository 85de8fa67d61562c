//! The WebSocket API and what hangs off it: the AWS_PROXY integration, the `$connect`,
//! `$disconnect` and `$default` routes, the stage, and the Lambda permission that lets API
//! Gateway invoke the function.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use aws_sdk_apigatewayv2::types::{IntegrationType, ProtocolType};
use serde::Serialize;
use serde_json::Value;

mod stage;

use stage::{apply_stage, stage};
pub use stage::{diff_stage, AccessLog, StageObs};

use super::{
    send_unrepeated, statements, string_list, tag_changes, tags_to_set, Action, AwsContext, Change,
};
use crate::aws::Clients;
use crate::config::{Config, LogLevel};
use crate::naming::{self, Names, PERMISSION_SID};

pub const ROUTE_KEYS: [&str; 3] = ["$connect", "$disconnect", "$default"];
pub const APIGATEWAY_PRINCIPAL: &str = "apigateway.amazonaws.com";

#[derive(Debug, Clone, Serialize)]
pub struct ApiObs {
    pub id: String,
    pub name: String,
    pub route_selection_expression: String,
    pub endpoint: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IntegrationObs {
    pub id: String,
    pub integration_type: String,
    pub uri: String,
    pub method: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RouteObs {
    pub id: String,
    pub key: String,
    pub target: Option<String>,
}

/// The API and everything under it.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub api: ApiObs,
    pub integrations: Vec<IntegrationObs>,
    pub routes: Vec<RouteObs>,
    pub stage: Option<StageObs>,
}

/// One statement of the function's resource policy.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Statement {
    pub sid: String,
    pub principal: String,
    pub action: Vec<String>,
    pub source_arn: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub name: String,
    pub route_selection_expression: String,
    pub stage: String,
    pub burst_limit: i32,
    pub rate_limit: f64,
    pub integration_uri: String,
    pub function_arn: String,
    /// Where and how the stage's access log is written (`[api] access_log`), or none.
    pub access_log: Option<AccessLog>,
    pub logging_level: LogLevel,
    pub tags: BTreeMap<String, String>,
}

pub fn desired(config: &Config, names: &Names, tags: BTreeMap<String, String>) -> Desired {
    Desired {
        name: names.api.clone(),
        route_selection_expression: config.api.route_selection_expression.clone(),
        stage: names.stage.clone(),
        burst_limit: config.api.throttling_burst_limit,
        rate_limit: config.api.throttling_rate_limit,
        integration_uri: names.integration_uri(),
        function_arn: names.function_arn(),
        access_log: config.api.logging.access_log.then(|| AccessLog {
            destination_arn: names.log_group_arn(&names.access_log_group),
            format: config.api.logging.access_log_format.clone(),
        }),
        logging_level: config.api.logging.execution_log_level,
        tags,
    }
}

/// Every WebSocket API named `name`.
pub async fn candidates(c: &Clients, name: &str) -> Result<Vec<ApiObs>> {
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let out = c
            .apigw
            .get_apis()
            .set_next_token(token)
            .send()
            .await
            .aws("GetApis")?;
        for api in out.items() {
            if api.name.as_deref() == Some(name)
                && api.protocol_type == Some(ProtocolType::Websocket)
            {
                found.push(ApiObs {
                    id: api.api_id.clone().unwrap_or_default(),
                    name: name.to_owned(),
                    route_selection_expression: api
                        .route_selection_expression
                        .clone()
                        .unwrap_or_default(),
                    endpoint: api.api_endpoint.clone(),
                    tags: api
                        .tags
                        .clone()
                        .map(|t| t.into_iter().collect())
                        .unwrap_or_default(),
                });
            }
        }
        token = out.next_token;
        if token.is_none() {
            return Ok(found);
        }
    }
}

/// The one API this stack uses: by name, preferring the one carrying wsctl's tag. Two
/// candidates that cannot be told apart is an error listing both.
pub fn choose(candidates: Vec<ApiObs>, name: &str) -> Result<Option<ApiObs>> {
    if candidates.len() <= 1 {
        return Ok(candidates.into_iter().next());
    }
    let managed: Vec<&ApiObs> = candidates
        .iter()
        .filter(|a| naming::is_managed(&a.tags))
        .collect();
    if managed.len() == 1 {
        return Ok(Some(managed[0].clone()));
    }
    let ids: Vec<String> = candidates
        .iter()
        .map(|a| {
            format!(
                "{}{}",
                a.id,
                if naming::is_managed(&a.tags) {
                    " (tagged ManagedBy=wsctl)"
                } else {
                    ""
                }
            )
        })
        .collect();
    bail!(
        "{} WebSocket APIs are named {name}: {}. Delete the extra one(s) (aws apigatewayv2 delete-api --api-id ID) so that one remains",
        candidates.len(),
        ids.join(", ")
    )
}

pub async fn observe(c: &Clients, names: &Names) -> Result<Option<Observed>> {
    let Some(api) = choose(candidates(c, &names.api).await?, &names.api)? else {
        return Ok(None);
    };
    let (integrations, routes, stage) = tokio::try_join!(
        integrations(c, &api.id),
        routes(c, &api.id),
        stage(c, &api.id, &names.stage)
    )?;
    Ok(Some(Observed {
        api,
        integrations,
        routes,
        stage,
    }))
}

async fn integrations(c: &Clients, api_id: &str) -> Result<Vec<IntegrationObs>> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let out = c
            .apigw
            .get_integrations()
            .api_id(api_id)
            .set_next_token(token)
            .send()
            .await
            .aws(format!("GetIntegrations {api_id}"))?;
        all.extend(out.items().iter().map(|i| {
            IntegrationObs {
                id: i.integration_id.clone().unwrap_or_default(),
                integration_type: i
                    .integration_type
                    .as_ref()
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
                uri: i.integration_uri.clone().unwrap_or_default(),
                method: i.integration_method.clone(),
            }
        }));
        token = out.next_token;
        if token.is_none() {
            return Ok(all);
        }
    }
}

async fn routes(c: &Clients, api_id: &str) -> Result<Vec<RouteObs>> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let out = c
            .apigw
            .get_routes()
            .api_id(api_id)
            .set_next_token(token)
            .send()
            .await
            .aws(format!("GetRoutes {api_id}"))?;
        all.extend(out.items().iter().map(|r| RouteObs {
            id: r.route_id.clone().unwrap_or_default(),
            key: r.route_key.clone().unwrap_or_default(),
            target: r.target.clone(),
        }));
        token = out.next_token;
        if token.is_none() {
            return Ok(all);
        }
    }
}

/// The function's resource policy statements (none when it has no policy or does not exist).
pub async fn observe_permission(c: &Clients, function: &str) -> Result<Vec<Statement>> {
    let out = match c.lambda.get_policy().function_name(function).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(vec![])
        }
        Err(e) => return Err(e).aws(format!("GetPolicy {function}")),
    };
    let policy: Value = out
        .policy
        .as_deref()
        .map(|p| serde_json::from_str(p).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    Ok(statements(&policy)
        .iter()
        .map(|s| Statement {
            sid: s
                .get("Sid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            principal: match s.get("Principal") {
                Some(Value::Object(p)) => {
                    string_list(p.get("Service").or_else(|| p.get("AWS"))).join(",")
                }
                Some(Value::String(p)) => p.clone(),
                _ => String::new(),
            },
            action: string_list(s.get("Action")),
            source_arn: s
                .get("Condition")
                .and_then(|c| c.get("ArnLike").or_else(|| c.get("ArnEquals")))
                .and_then(|c| c.get("AWS:SourceArn"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
        .collect())
}

pub fn diff_api(o: Option<&ApiObs>, d: &Desired) -> Action {
    let Some(o) = o else {
        return Action::Create;
    };
    let mut changes = Vec::new();
    if o.route_selection_expression != d.route_selection_expression {
        changes.push(Change::new(
            "route_selection_expression",
            &o.route_selection_expression,
            &d.route_selection_expression,
        ));
    }
    changes.extend(tag_changes(&o.tags, &d.tags));
    Action::from_changes(changes)
}

fn targets_function(i: &IntegrationObs, d: &Desired) -> bool {
    i.integration_type == "AWS_PROXY"
        && (i.uri == d.integration_uri
            || i.uri == d.function_arn
            || i.uri.contains(&format!("{}/", d.function_arn)))
}

/// The integration the routes should use: one the routes already target, else one that
/// invokes the function.
pub fn chosen_integration<'a>(o: &'a Observed, d: &Desired) -> Option<&'a IntegrationObs> {
    let targeted = |i: &&IntegrationObs| {
        o.routes.iter().any(|r| {
            ROUTE_KEYS.contains(&r.key.as_str())
                && r.target.as_deref() == Some(&format!("integrations/{}", i.id))
        })
    };
    o.integrations
        .iter()
        .filter(|i| i.integration_type == "AWS_PROXY")
        .find(targeted)
        .or_else(|| o.integrations.iter().find(|i| targets_function(i, d)))
}

/// Integrations that invoke the function but that no route uses (left by an interrupted run).
pub fn orphan_integrations<'a>(o: &'a Observed, d: &Desired) -> Vec<&'a IntegrationObs> {
    let chosen = chosen_integration(o, d).map(|i| i.id.clone());
    o.integrations
        .iter()
        .filter(|i| Some(&i.id) != chosen.as_ref() && targets_function(i, d))
        .filter(|i| {
            !o.routes
                .iter()
                .any(|r| r.target.as_deref() == Some(&format!("integrations/{}", i.id)))
        })
        .collect()
}

pub fn diff_integration(o: Option<&Observed>, d: &Desired) -> Action {
    let Some(i) = o.and_then(|o| chosen_integration(o, d)) else {
        return Action::Create;
    };
    let mut changes = Vec::new();
    if i.uri != d.integration_uri {
        changes.push(Change::new("integration_uri", &i.uri, &d.integration_uri));
    }
    if i.method.as_deref() != Some("POST") {
        changes.push(Change::new(
            "integration_method",
            i.method.as_deref().unwrap_or("(none)"),
            "POST",
        ));
    }
    for orphan in o.map(|o| orphan_integrations(o, d)).unwrap_or_default() {
        changes.push(Change::new(
            format!("orphan_integration.{}", orphan.id),
            "present",
            "(deleted)",
        ));
    }
    Action::from_changes(changes)
}

pub fn diff_route(o: Option<&Observed>, d: &Desired, key: &str) -> Action {
    let Some(o) = o else {
        return Action::Create;
    };
    let mine: Vec<&RouteObs> = o.routes.iter().filter(|r| r.key == key).collect();
    let Some(first) = mine.first() else {
        return Action::Create;
    };
    let mut changes = Vec::new();
    let want = chosen_integration(o, d).map(|i| format!("integrations/{}", i.id));
    match &want {
        Some(w) if first.target.as_ref() != Some(w) => changes.push(Change::new(
            "target",
            first.target.as_deref().unwrap_or("(none)"),
            w,
        )),
        None => changes.push(Change::new(
            "target",
            first.target.as_deref().unwrap_or("(none)"),
            "(the new integration)",
        )),
        _ => {}
    }
    for extra in &mine[1..] {
        changes.push(Change::new(
            format!("duplicate.{}", extra.id),
            "present",
            "(deleted)",
        ));
    }
    Action::from_changes(changes)
}

/// Whether a statement lets API Gateway invoke the function.
pub fn is_apigateway_invoke(s: &Statement) -> bool {
    s.principal.split(',').any(|p| p == APIGATEWAY_PRINCIPAL)
        && s.action
            .iter()
            .any(|a| a == "lambda:InvokeFunction" || a == "lambda:*")
}

/// Whether `source_arn` (an ARN pattern) covers invocations through `api_id`'s `stage`.
pub fn covers(source_arn: Option<&str>, names: &Names, api_id: &str) -> bool {
    let Some(pattern) = source_arn else {
        return true; // no condition: any API may invoke (too broad, but it works)
    };
    let probe = format!("{}/{}/$connect", names.execute_api_arn(api_id), names.stage);
    arn_like(pattern, &probe)
}

/// IAM's ArnLike: `*` matches any run of characters, `?` one character.
pub fn arn_like(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

/// Statements that grant API Gateway this API but are not wsctl's (the runbook's, scoped to
/// the whole API): replaced by wsctl's scoped one.
pub fn stray_statements<'a>(
    statements: &'a [Statement],
    api_id: Option<&str>,
) -> Vec<&'a Statement> {
    statements
        .iter()
        .filter(|s| s.sid != PERMISSION_SID && is_apigateway_invoke(s))
        .filter(|s| match (api_id, &s.source_arn) {
            (Some(id), Some(arn)) => arn.contains(&format!(":{id}/")),
            _ => false,
        })
        .collect()
}

pub fn diff_permission(statements: &[Statement], names: &Names, api_id: Option<&str>) -> Action {
    let mine: Vec<&Statement> = statements
        .iter()
        .filter(|s| s.sid == PERMISSION_SID)
        .collect();
    let want = api_id.map(|id| names.permission_source_arn(id));
    let strays = stray_statements(statements, api_id);
    let mut changes = Vec::new();
    match (mine.first(), &want) {
        (None, _) if strays.is_empty() => return Action::Create,
        (None, w) => changes.push(Change::new(
            format!("statement.{PERMISSION_SID}"),
            "(none)",
            w.as_deref().unwrap_or(super::KNOWN_AFTER_APPLY),
        )),
        (Some(s), Some(w)) if s.source_arn.as_ref() != Some(w) || !is_apigateway_invoke(s) => {
            changes.push(Change::new(
                "source_arn",
                s.source_arn.as_deref().unwrap_or("(any)"),
                w,
            ))
        }
        (Some(_), None) => changes.push(Change::new(
            "source_arn",
            "(another API)",
            super::KNOWN_AFTER_APPLY,
        )),
        _ => {}
    }
    if mine.len() > 1 {
        changes.push(Change::new("duplicate_statements", mine.len(), 1));
    }
    for s in strays {
        changes.push(Change::new(
            format!("statement.{}", s.sid),
            s.source_arn.as_deref().unwrap_or("(any)"),
            "(removed)",
        ));
    }
    Action::from_changes(changes)
}

/// For the creates that are not idempotent (a retry after a lost answer makes a second API
/// or integration; AWS refuses a second route or stage with a ConflictException, emulators
/// may make one): no SDK retry. A failure goes back to the engine, which observes again
/// and finds what the lost call created before it tries anything else.
pub(super) fn no_retries() -> aws_sdk_apigatewayv2::config::Builder {
    aws_sdk_apigatewayv2::config::Builder::default()
        .retry_config(aws_config::retry::RetryConfig::disabled())
}

/// Creates or converges the API itself. Returns its id.
pub async fn apply_api(
    c: &Clients,
    names: &Names,
    o: Option<&ApiObs>,
    d: &Desired,
) -> Result<String> {
    let Some(o) = o else {
        let out = send_unrepeated(format!("CreateApi {}", d.name), || {
            c.apigw
                .create_api()
                .name(&d.name)
                .protocol_type(ProtocolType::Websocket)
                .route_selection_expression(&d.route_selection_expression)
                .description("WebSocket API managed by wsctl")
                .set_tags(Some(d.tags.clone().into_iter().collect()))
                .customize()
                .config_override(no_retries())
                .send()
        })
        .await?;
        return out
            .api_id
            .ok_or_else(|| anyhow::anyhow!("CreateApi returned no id"));
    };
    let action = diff_api(Some(o), d);
    if action.has("route_selection_expression") {
        c.apigw
            .update_api()
            .api_id(&o.id)
            .route_selection_expression(&d.route_selection_expression)
            .send()
            .await
            .aws(format!("UpdateApi {}", o.id))?;
    }
    let tags = tags_to_set(&o.tags, &d.tags);
    if !tags.is_empty() {
        c.apigw
            .tag_resource()
            .resource_arn(names.api_tag_arn(&o.id))
            .set_tags(Some(tags.into_iter().collect()))
            .send()
            .await
            .aws(format!("TagResource {}", o.id))?;
    }
    Ok(o.id.clone())
}

/// Integration, routes and stage. `o` is what was observed under this API (None for an API
/// created in this run). Returns the integration id.
pub async fn apply_wiring(
    c: &Clients,
    api_id: &str,
    o: Option<&Observed>,
    d: &Desired,
) -> Result<String> {
    let integration_id = match o.and_then(|o| chosen_integration(o, d)) {
        None => send_unrepeated(format!("CreateIntegration {api_id}"), || {
            c.apigw
                .create_integration()
                .api_id(api_id)
                .integration_type(IntegrationType::AwsProxy)
                .integration_method("POST")
                .integration_uri(&d.integration_uri)
                .customize()
                .config_override(no_retries())
                .send()
        })
        .await?
        .integration_id
        .unwrap_or_default(),
        Some(i) => {
            if i.uri != d.integration_uri || i.method.as_deref() != Some("POST") {
                c.apigw
                    .update_integration()
                    .api_id(api_id)
                    .integration_id(&i.id)
                    .integration_type(IntegrationType::AwsProxy)
                    .integration_method("POST")
                    .integration_uri(&d.integration_uri)
                    .send()
                    .await
                    .aws(format!("UpdateIntegration {api_id}/{}", i.id))?;
            }
            i.id.clone()
        }
    };
    let target = format!("integrations/{integration_id}");
    let routes = futures::future::try_join_all(ROUTE_KEYS.iter().map(|key| {
        let target = &target;
        async move {
            let mine: Vec<&RouteObs> = o
                .map(|o| o.routes.iter().filter(|r| r.key == *key).collect())
                .unwrap_or_default();
            match mine.first() {
                None => {
                    send_unrepeated(format!("CreateRoute {api_id} {key}"), || {
                        c.apigw
                            .create_route()
                            .api_id(api_id)
                            .route_key(*key)
                            .target(target)
                            .customize()
                            .config_override(no_retries())
                            .send()
                    })
                    .await?;
                }
                Some(r) => {
                    if r.target.as_ref() != Some(target) {
                        c.apigw
                            .update_route()
                            .api_id(api_id)
                            .route_id(&r.id)
                            .target(target)
                            .send()
                            .await
                            .aws(format!("UpdateRoute {api_id} {key}"))?;
                    }
                    for extra in &mine[1..] {
                        delete_route(c, api_id, &extra.id).await?;
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        }
    }));
    let stage = apply_stage(c, api_id, o.and_then(|o| o.stage.as_ref()), d);
    tokio::try_join!(routes, stage)?;
    // Orphans go last, once no route can point at them.
    if let Some(o) = o {
        for orphan in orphan_integrations(o, d) {
            if orphan.id != integration_id {
                match c
                    .apigw
                    .delete_integration()
                    .api_id(api_id)
                    .integration_id(&orphan.id)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_not_found_exception()) => {}
                    Err(e) => {
                        return Err(e).aws(format!("DeleteIntegration {api_id}/{}", orphan.id))
                    }
                }
            }
        }
    }
    Ok(integration_id)
}

async fn delete_route(c: &Clients, api_id: &str, route_id: &str) -> Result<()> {
    match c
        .apigw
        .delete_route()
        .api_id(api_id)
        .route_id(route_id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(e).aws(format!("DeleteRoute {api_id}/{route_id}")),
    }
}

/// Leaves exactly one statement letting API Gateway invoke the function: wsctl's, scoped to
/// this API's stage. Returns whether anything was written.
pub async fn apply_permission(
    c: &Clients,
    names: &Names,
    statements: &[Statement],
    api_id: &str,
) -> Result<bool> {
    let action = diff_permission(statements, names, Some(api_id));
    if !action.is_change() {
        return Ok(false);
    }
    let function = &names.function;
    let mine: Vec<&Statement> = statements
        .iter()
        .filter(|s| s.sid == PERMISSION_SID)
        .collect();
    let want = names.permission_source_arn(api_id);
    let mine_ok = mine.len() == 1
        && mine[0].source_arn.as_deref() == Some(&want)
        && is_apigateway_invoke(mine[0]);
    for s in stray_statements(statements, Some(api_id)) {
        remove_statement(c, function, &s.sid).await?;
    }
    if !mine_ok {
        if !mine.is_empty() {
            remove_statement(c, function, PERMISSION_SID).await?;
        }
        add_invoke_statement(
            c,
            function,
            PERMISSION_SID,
            APIGATEWAY_PRINCIPAL,
            Some(&want),
        )
        .await?;
    }
    Ok(true)
}

/// Adds a statement letting `principal` invoke `function` (from `source_arn`, when given).
/// AWS refuses a second statement with the same Sid; emulators may add one. Either way the
/// engine's next pass, not a blind retry, deals with a lost answer.
pub async fn add_invoke_statement(
    c: &Clients,
    function: &str,
    sid: &str,
    principal: &str,
    source_arn: Option<&str>,
) -> Result<()> {
    send_unrepeated(format!("AddPermission {function} {sid}"), || {
        c.lambda
            .add_permission()
            .function_name(function)
            .statement_id(sid)
            .action("lambda:InvokeFunction")
            .principal(principal)
            .set_source_arn(source_arn.map(str::to_owned))
            .customize()
            .config_override(
                aws_sdk_lambda::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
    })
    .await?;
    Ok(())
}

pub async fn remove_statement(c: &Clients, function: &str, sid: &str) -> Result<()> {
    match c
        .lambda
        .remove_permission()
        .function_name(function)
        .statement_id(sid)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(e).aws(format!("RemovePermission {function} {sid}")),
    }
}

/// Deletes the API with its routes, integrations and stages. Already gone is success.
pub async fn delete(c: &Clients, api_id: &str) -> Result<bool> {
    match c.apigw.delete_api().api_id(api_id).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(e).aws(format!("DeleteApi {api_id}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arn_like_matches_iam_wildcards() {
        assert!(arn_like(
            "arn:aws:execute-api:us-east-1:1:abc/*",
            "arn:aws:execute-api:us-east-1:1:abc/prod/$connect"
        ));
        assert!(arn_like(
            "arn:aws:execute-api:us-east-1:1:abc/prod/*",
            "arn:aws:execute-api:us-east-1:1:abc/prod/$connect"
        ));
        assert!(!arn_like(
            "arn:aws:execute-api:us-east-1:1:abc/dev/*",
            "arn:aws:execute-api:us-east-1:1:abc/prod/$connect"
        ));
        assert!(!arn_like(
            "arn:aws:execute-api:us-east-1:1:xyz/*",
            "arn:aws:execute-api:us-east-1:1:abc/prod/$connect"
        ));
        assert!(arn_like(
            "arn:aws:execute-api:*:*:*/*",
            "arn:aws:execute-api:us-east-1:1:abc/prod/$connect"
        ));
    }
}
