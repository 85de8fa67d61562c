//! Making a plan's changes to the routes to the team's code. A new route gets its function's
//! permission first (so that its first message can be delivered), then its integration, the
//! route, and its route response; a route that left the file loses its route response, route,
//! integration (when no other route uses it) and permission.

use std::collections::HashMap;

use aws_sdk_apigatewayv2::types::IntegrationType;

use super::model::{Observed, RouteSpec};
use super::plan::{custom_routes, function_of_route, parameters};
use crate::aws::{apigw_no_retries as no_retries, aws_error, send_unrepeated, AwsContext, Clients};
use crate::error::{Error, Result};
use crate::naming::Names;
use crate::resources::permission::{add_invoke_statement, remove_statement, APIGATEWAY_PRINCIPAL};
use crate::resources::route::RouteObs;
use crate::resources::shape::Action;

fn integration_type(spec: &RouteSpec) -> IntegrationType {
    match spec.integration_type {
        "HTTP_PROXY" => IntegrationType::HttpProxy,
        _ => IntegrationType::AwsProxy,
    }
}

/// The full parameter map for an update: wanted values, and "" for those to remove (API
/// Gateway removes a mapping set to an empty value).
fn parameter_update(
    has: &std::collections::BTreeMap<String, String>,
    want: &std::collections::BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = want.clone().into_iter().collect();
    for k in has.keys() {
        out.entry(k.clone()).or_default();
    }
    out
}

/// Creates or converges one configured route.
pub async fn apply_route(
    c: &Clients,
    api_id: &str,
    o: Option<&Observed>,
    spec: &RouteSpec,
    action: &Action,
) -> Result<()> {
    if !action.is_change() {
        return Ok(());
    }
    let empty = Observed::default();
    let o = o.unwrap_or(&empty);
    if let Some(f) = &spec.function {
        if action == &Action::Create || action.has(&format!("permission.{}", f.sid)) {
            let source = f.source_arn.as_deref().ok_or_else(|| {
                Error::Failed("internal: a route's permission needs the API's id".into())
            })?;
            // A statement of the Sid with another source is replaced.
            remove_statement(c, &f.arn, &f.sid).await?;
            add_invoke_statement(c, &f.arn, &f.sid, APIGATEWAY_PRINCIPAL, Some(source)).await?;
        }
    }
    let want = parameters(spec, o);
    let route = custom_routes(o).find(|r| r.key == spec.key);
    // A route deleted by hand, or an interrupted run, leaves its integration: taken again.
    let orphan = || {
        o.integrations.iter().find(|i| {
            i.integration_type == spec.integration_type
                && i.uri == spec.uri
                && !o
                    .routes
                    .iter()
                    .any(|r| r.target.as_deref() == Some(format!("integrations/{}", i.id).as_str()))
        })
    };
    let integration = route.and_then(|r| o.integration(r)).or_else(orphan);
    let integration_id = match integration {
        None => send_unrepeated(format!("CreateIntegration {api_id} {}", spec.key), || {
            c.apigw
                .create_integration()
                .api_id(api_id)
                .integration_type(integration_type(spec))
                .integration_method("POST")
                .integration_uri(&spec.uri)
                .timeout_in_millis(spec.timeout_ms as i32)
                .set_request_parameters(
                    (!want.is_empty()).then(|| want.clone().into_iter().collect()),
                )
                .customize()
                .config_override(no_retries())
                .send()
        })
        .await?
        .integration_id
        .unwrap_or_default(),
        Some(i) => {
            let touched = [
                "integration_type",
                "integration_uri",
                "integration_method",
                "timeout_ms",
                "request_parameters",
            ]
            .iter()
            .any(|f| action.has(f));
            if touched || route.is_none() {
                c.apigw
                    .update_integration()
                    .api_id(api_id)
                    .integration_id(&i.id)
                    .integration_type(integration_type(spec))
                    .integration_method("POST")
                    .integration_uri(&spec.uri)
                    .timeout_in_millis(spec.timeout_ms as i32)
                    .set_request_parameters(Some(parameter_update(&i.request_parameters, &want)))
                    .send()
                    .await
                    .aws(format!(
                        "UpdateIntegration {api_id}/{} ({})",
                        i.id, spec.key
                    ))?;
            }
            i.id.clone()
        }
    };
    let target = format!("integrations/{integration_id}");
    let selection = spec.two_way.then(|| "$default".to_owned());
    let route_id = match route {
        None => send_unrepeated(format!("CreateRoute {api_id} {}", spec.key), || {
            c.apigw
                .create_route()
                .api_id(api_id)
                .route_key(&spec.key)
                .target(&target)
                .set_route_response_selection_expression(selection.clone())
                .customize()
                .config_override(no_retries())
                .send()
        })
        .await?
        .route_id
        .unwrap_or_default(),
        Some(r) => {
            if r.target.as_deref() != Some(target.as_str()) || action.has("two_way") {
                c.apigw
                    .update_route()
                    .api_id(api_id)
                    .route_id(&r.id)
                    .target(&target)
                    // "" clears it: the route becomes one way.
                    .route_response_selection_expression(selection.clone().unwrap_or_default())
                    .send()
                    .await
                    .aws(format!("UpdateRoute {api_id} {}", spec.key))?;
            }
            r.id.clone()
        }
    };
    let responses = o.responses.get(&route_id).cloned().unwrap_or_default();
    let has_default = responses.iter().any(|(_, k)| k == "$default");
    if spec.two_way && !has_default {
        send_unrepeated(format!("CreateRouteResponse {api_id} {}", spec.key), || {
            c.apigw
                .create_route_response()
                .api_id(api_id)
                .route_id(&route_id)
                .route_response_key("$default")
                .customize()
                .config_override(no_retries())
                .send()
        })
        .await?;
    }
    if !spec.two_way {
        for (id, _) in &responses {
            delete_route_response(c, api_id, &route_id, id).await?;
        }
    }
    Ok(())
}

/// Deletes a route that left the file, with what only it used.
pub async fn delete_route(
    c: &Clients,
    names: &Names,
    api_id: &str,
    o: &Observed,
    key: &str,
) -> Result<()> {
    let mine: Vec<&RouteObs> = custom_routes(o).filter(|r| r.key == key).collect();
    for route in &mine {
        for (id, _) in o.responses.get(&route.id).into_iter().flatten() {
            delete_route_response(c, api_id, &route.id, id).await?;
        }
        match c
            .apigw
            .delete_route()
            .api_id(api_id)
            .route_id(&route.id)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) => {}
            Err(e) => return Err(aws_error(format!("DeleteRoute {api_id} {key}"), &e).into()),
        }
        if let Some(i) = o.integration(route) {
            let shared = o
                .routes
                .iter()
                .any(|r| r.id != route.id && r.target == route.target);
            if !shared {
                match c
                    .apigw
                    .delete_integration()
                    .api_id(api_id)
                    .integration_id(&i.id)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_not_found_exception()) => {}
                    Err(e) => {
                        return Err(
                            aws_error(format!("DeleteIntegration {api_id}/{}", i.id), &e).into(),
                        )
                    }
                }
            }
        }
        if let Some(arn) = function_of_route(o, route) {
            if o.functions.get(arn).is_some_and(|f| f.exists) {
                remove_statement(c, arn, &names.route_permission_sid(key)).await?;
            }
        }
    }
    Ok(())
}

async fn delete_route_response(c: &Clients, api_id: &str, route_id: &str, id: &str) -> Result<()> {
    match c
        .apigw
        .delete_route_response()
        .api_id(api_id)
        .route_id(route_id)
        .route_response_id(id)
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
        Err(e) => {
            Err(aws_error(format!("DeleteRouteResponse {api_id}/{route_id}/{id}"), &e).into())
        }
    }
}
