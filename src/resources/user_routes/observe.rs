//! Reading what routes to the team's code exist: the API's integrations, routes and route
//! responses; each routed function (in the stack's account) and its resource policy; the
//! backend secret's value (SSM, decrypted: it goes into the HTTP integrations' mapping).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ssm::types::ParameterType;

use super::model::{function_of_uri, Desired, FunctionObs, IntegrationObs, Observed};
use crate::aws::{aws_error, AwsContext, Clients};
use crate::error::Result;
use crate::resources::permission;
use crate::resources::route::{self, ROUTE_KEYS};

/// Everything, on the API `api_id`; with no API yet (a first `up`), the functions the config
/// names and the secret only, so that the first `up` refuses what it would refuse later and
/// creates the routes whole.
pub async fn observe(
    c: &Clients,
    api_id: Option<&str>,
    d: &Desired,
    secret_parameter: Option<&str>,
) -> Result<Observed> {
    let (integrations, routes) = match api_id {
        Some(api_id) => tokio::try_join!(integrations(c, api_id), route::observe(c, api_id))?,
        None => (Vec::new(), Vec::new()),
    };
    let api_id = api_id.unwrap_or_default();
    let mut responses = BTreeMap::new();
    for r in routes
        .iter()
        .filter(|r| !ROUTE_KEYS.contains(&r.key.as_str()))
    {
        responses.insert(r.id.clone(), route_responses(c, api_id, &r.id).await?);
    }
    // The functions the config routes to, and those the API's routes invoke now.
    let mut arns: BTreeSet<String> = d
        .routes
        .iter()
        .filter_map(|r| r.function.as_ref().map(|f| f.arn.clone()))
        .collect();
    for r in routes
        .iter()
        .filter(|r| !ROUTE_KEYS.contains(&r.key.as_str()))
    {
        let uri = r
            .target
            .as_deref()
            .and_then(|t| t.strip_prefix("integrations/"))
            .and_then(|id| integrations.iter().find(|i| i.id == id))
            .filter(|i| i.integration_type == "AWS_PROXY")
            .and_then(|i| function_of_uri(&i.uri));
        if let Some(arn) = uri {
            arns.insert(arn.to_owned());
        }
    }
    let mut functions = BTreeMap::new();
    for arn in arns {
        if !in_stack_account(&arn, d) {
            continue;
        }
        functions.insert(arn.clone(), function(c, &arn).await?);
    }
    let secret = match secret_parameter {
        Some(name) => Some(secret(c, name).await?),
        None => None,
    };
    Ok(Observed {
        api_id: api_id.to_owned(),
        integrations,
        routes,
        responses,
        functions,
        secret,
    })
}

/// Whether a function ARN is in the stack's account and region (the only ones wsctl can
/// give API Gateway a permission on).
pub fn in_stack_account(arn: &str, d: &Desired) -> bool {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    parts.len() >= 7 && parts[3] == d.region && parts[4] == d.account
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
                timeout_ms: i.timeout_in_millis.map(i64::from),
                request_parameters: i
                    .request_parameters
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            }
        }));
        token = out.next_token;
        if token.is_none() {
            return Ok(all);
        }
    }
}

async fn route_responses(
    c: &Clients,
    api_id: &str,
    route_id: &str,
) -> Result<Vec<(String, String)>> {
    let out = c
        .apigw
        .get_route_responses()
        .api_id(api_id)
        .route_id(route_id)
        .send()
        .await
        .aws(format!("GetRouteResponses {api_id}/{route_id}"))?;
    Ok(out
        .items()
        .iter()
        .map(|r| {
            (
                r.route_response_id.clone().unwrap_or_default(),
                r.route_response_key.clone().unwrap_or_default(),
            )
        })
        .collect())
}

/// Whether the function exists, and its policy's statements.
async fn function(c: &Clients, arn: &str) -> Result<FunctionObs> {
    let exists = match c.lambda.get_function().function_name(arn).send().await {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            false
        }
        Err(e) => return Err(aws_error(format!("GetFunction {arn}"), &e).into()),
    };
    let statements = match exists {
        true => permission::observe(c, arn).await?,
        false => Vec::new(),
    };
    Ok(FunctionObs { exists, statements })
}

/// The backend secret: its value, or why it cannot be used (missing, not a SecureString, a
/// value a header mapping cannot hold).
async fn secret(c: &Clients, name: &str) -> Result<std::result::Result<String, String>> {
    let out = match c
        .ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            return Ok(Err(format!(
                "{name} does not exist: create it (aws ssm put-parameter --name {name} --type SecureString --value '<a long random secret>') and give your backend the same value"
            )))
        }
        Err(e) => return Err(aws_error(format!("GetParameter {name}"), &e).into()),
    };
    let Some(p) = out.parameter else {
        return Ok(Err(format!("{name} has no value")));
    };
    if p.r#type != Some(ParameterType::SecureString) {
        return Ok(Err(format!(
            "{name} is not a SecureString: store the secret encrypted (--type SecureString)"
        )));
    }
    let value = p.value.unwrap_or_default();
    crate::redact::add(value.clone());
    if value.len() < 16 || value.contains('\'') || value.chars().any(|ch| ch.is_control()) {
        return Ok(Err(format!(
            "{name}'s value must be at least 16 characters, without quotes (') or control characters"
        )));
    }
    Ok(Ok(value))
}
