//! The API's AWS_PROXY integration that invokes the function: the one the routes target (or
//! else one that invokes the function), with the integrations an interrupted run left behind
//! (orphans no route uses) removed.

use futures::future::BoxFuture;
use serde::Serialize;

use super::route::{RouteObs, ROUTE_KEYS};
use super::shape::{
    check, Action, Change, Check, Ctx, DownItem, Ids, Kind, Observation, Plan, PlanItem, Resource,
    Teardown,
};
use crate::aws::{apigw_no_retries as no_retries, aws_error, send_unrepeated, AwsContext, Clients};
use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct IntegrationObs {
    pub id: String,
    pub integration_type: String,
    pub uri: String,
    pub method: Option<String>,
}

/// The API's integrations, and its routes (which say which integration is in use).
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub api_id: String,
    pub integrations: Vec<IntegrationObs>,
    pub routes: Vec<RouteObs>,
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub integration_uri: String,
    pub function_arn: String,
    /// The function's name, for `status`.
    pub function: String,
}

/// The integration that invokes the function.
pub struct Integration;

impl Resource for Integration {
    type Desired = Desired;
    /// None while there is no API.
    type Observed = Option<Observed>;

    fn desired(cx: &Ctx) -> Desired {
        let n = &cx.stack.names;
        Desired {
            integration_uri: n.integration_uri(),
            function_arn: n.function_arn(),
            function: n.function.clone(),
        }
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(async move {
            let Some(api_id) = &cx.ids.api_id else {
                return Ok(None);
            };
            let c = &cx.stack.clients;
            let (integrations, routes) =
                tokio::try_join!(integrations(c, api_id), super::route::observe(c, api_id))?;
            Ok(Some(Observed {
                api_id: api_id.clone(),
                integrations,
                routes,
            }))
        })
    }

    fn ids(observed: &Self::Observed, desired: &Desired) -> Ids {
        Ids {
            integration_id: observed
                .as_ref()
                .and_then(|o| chosen(o, Some(desired)))
                .map(|i| i.id.clone()),
            ..Ids::default()
        }
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        Ok(vec![PlanItem::new(
            Kind::Integration,
            "AWS_PROXY",
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
            let api_id = cx.ids.api_id.as_deref().expect("the API exists by now");
            // Observed under another API (one this run replaced): nothing of it is ours.
            let o = observed.as_ref().filter(|o| o.api_id == api_id);
            let id = apply(
                &cx.stack.clients,
                api_id,
                o,
                desired,
                plan.action(&Kind::Integration),
            )
            .await?;
            Ok(Ids {
                integration_id: Some(id),
                ..Ids::default()
            })
        })
    }

    /// The integrations go with the API.
    fn teardown(_cx: &Ctx, _obs: &Observation, _adopt: bool) -> Teardown {
        Teardown::default()
    }

    fn delete<'a>(
        _cx: &'a Ctx,
        _obs: &'a Observation,
        _items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// `routes_target_integration` and `integration_targets_function`: the wiring without
    /// which clients see "Internal server error".
    fn checks<'a>(cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        Box::pin(async move {
            Ok(checks(
                obs.get::<Integration>().as_ref(),
                &Self::desired(cx),
            ))
        })
    }
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

fn targets_function(i: &IntegrationObs, d: &Desired) -> bool {
    i.integration_type == "AWS_PROXY"
        && (i.uri == d.integration_uri
            || i.uri == d.function_arn
            || i.uri.contains(&format!("{}/", d.function_arn)))
}

/// The integration the routes should use: an AWS_PROXY one the bundled routes already target,
/// else (with `d`) one that invokes the function.
pub fn chosen<'a>(o: &'a Observed, d: Option<&Desired>) -> Option<&'a IntegrationObs> {
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
        .or_else(|| {
            let d = d?;
            o.integrations.iter().find(|i| targets_function(i, d))
        })
}

/// Integrations that invoke the function but that no route uses (left by an interrupted run).
pub fn orphans<'a>(o: &'a Observed, d: &Desired) -> Vec<&'a IntegrationObs> {
    let chosen = chosen(o, Some(d)).map(|i| i.id.clone());
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

pub fn diff(o: Option<&Observed>, d: &Desired) -> Action {
    let Some(i) = o.and_then(|o| chosen(o, Some(d))) else {
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
    for orphan in o.map(|o| orphans(o, d)).unwrap_or_default() {
        changes.push(Change::new(
            format!("orphan_integration.{}", orphan.id),
            "present",
            "(deleted)",
        ));
    }
    Action::from_changes(changes)
}

/// Makes the changes of `action`; returns the integration's id. Orphans go too: no route
/// targets them, and none will (the routes are pointed at the chosen one).
async fn apply(
    c: &Clients,
    api_id: &str,
    o: Option<&Observed>,
    d: &Desired,
    action: &Action,
) -> Result<String> {
    let id = match o.and_then(|o| chosen(o, Some(d))) {
        None => send_unrepeated(format!("CreateIntegration {api_id}"), || {
            c.apigw
                .create_integration()
                .api_id(api_id)
                .integration_type(aws_sdk_apigatewayv2::types::IntegrationType::AwsProxy)
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
            if action.has("integration_uri") || action.has("integration_method") {
                c.apigw
                    .update_integration()
                    .api_id(api_id)
                    .integration_id(&i.id)
                    .integration_type(aws_sdk_apigatewayv2::types::IntegrationType::AwsProxy)
                    .integration_method("POST")
                    .integration_uri(&d.integration_uri)
                    .send()
                    .await
                    .aws(format!("UpdateIntegration {api_id}/{}", i.id))?;
            }
            i.id.clone()
        }
    };
    for orphan in o.map(|o| orphans(o, d)).unwrap_or_default() {
        if orphan.id != id && action.has(&format!("orphan_integration.{}", orphan.id)) {
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
                    return Err(
                        aws_error(format!("DeleteIntegration {api_id}/{}", orphan.id), &e).into(),
                    )
                }
            }
        }
    }
    Ok(id)
}

fn checks(o: Option<&Observed>, d: &Desired) -> Vec<Check> {
    let Some(o) = o else {
        return vec![
            check("routes_target_integration", false, "the API does not exist"),
            check(
                "integration_targets_function",
                false,
                "no integration invokes the function",
            ),
        ];
    };
    let integration = chosen(o, Some(d));
    let want = integration.map(|i| format!("integrations/{}", i.id));
    let bad: Vec<String> = ROUTE_KEYS
        .iter()
        .filter_map(|key| {
            let route = o.routes.iter().find(|r| r.key == *key);
            match (route, &want) {
                (None, _) => Some(format!("{key} is missing")),
                (Some(r), Some(w)) if r.target.as_ref() == Some(w) => None,
                (Some(r), _) => Some(format!(
                    "{key} targets {}",
                    r.target.as_deref().unwrap_or("nothing")
                )),
            }
        })
        .collect();
    let routes_ok = bad.is_empty() && want.is_some();
    vec![
        check(
            "routes_target_integration",
            routes_ok,
            if routes_ok {
                format!(
                    "$connect, $disconnect and $default target {}",
                    want.unwrap_or_default()
                )
            } else if want.is_none() {
                "no AWS_PROXY integration invokes the function".into()
            } else {
                bad.join("; ")
            },
        ),
        match integration {
            Some(i) if i.uri == d.integration_uri => check(
                "integration_targets_function",
                true,
                format!("integration {} invokes {}", i.id, d.function),
            ),
            Some(i) => check(
                "integration_targets_function",
                false,
                format!(
                    "integration {} has URI {}; expected {}",
                    i.id, i.uri, d.integration_uri
                ),
            ),
            None => check(
                "integration_targets_function",
                false,
                "no integration invokes the function",
            ),
        },
    ]
}
