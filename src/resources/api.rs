//! The WebSocket API itself (its name, route selection expression and tags). What hangs off
//! it has modules of its own: the integration, the routes, the stage, the permission.

use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::types::ProtocolType;
use futures::future::BoxFuture;
use serde::Serialize;

use super::shape::{
    down_item, tag_changes, tags_to_set, Action, Change, Ctx, DownItem, Ids, Kind, Observation,
    Plan, PlanItem, Resource, Teardown,
};
use crate::aws::{apigw_no_retries as no_retries, aws_error, send_unrepeated, AwsContext, Clients};
use crate::error::{Error, Result};
use crate::naming;

#[derive(Debug, Clone, Serialize)]
pub struct ApiObs {
    pub id: String,
    pub name: String,
    pub route_selection_expression: String,
    pub endpoint: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub name: String,
    pub route_selection_expression: String,
    pub tags: BTreeMap<String, String>,
}

/// The stack's WebSocket API, found by its name.
pub struct Api;

impl Resource for Api {
    type Desired = Desired;
    /// Every WebSocket API of the stack's name: one, or none; two or more is a state `up`
    /// refuses ([`choose`]) and `down` deletes whole.
    type Observed = Vec<ApiObs>;

    fn desired(cx: &Ctx) -> Desired {
        Desired {
            name: cx.stack.names.api.clone(),
            route_selection_expression: cx.stack.config.api.route_selection_expression.clone(),
            tags: cx.stack.tags.clone(),
        }
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(candidates(&cx.stack.clients, &cx.stack.names.api))
    }

    fn ids(observed: &Self::Observed, _desired: &Desired) -> Ids {
        Ids {
            api_id: chosen(observed).map(|a| a.id.clone()),
            ..Ids::default()
        }
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        let o = choose(observed, &desired.name)?;
        Ok(vec![PlanItem::new(
            Kind::Api,
            &desired.name,
            diff(o, desired),
        )])
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Desired,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            let o = choose(observed, &desired.name)?;
            let id = apply(cx, o, desired, plan.action(&Kind::Api)).await?;
            Ok(Ids {
                api_id: Some(id),
                ..Ids::default()
            })
        })
    }

    fn teardown(_cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        for a in obs.get::<Api>() {
            let item = down_item(Kind::Api, format!("{} ({})", a.name, a.id), &a.id);
            t.consider(item, &a.tags, adopt);
        }
        t
    }

    /// The API goes with its routes, integrations and stages; API Gateway's own execution log
    /// group of the stage goes with it.
    fn delete<'a>(
        cx: &'a Ctx,
        _obs: &'a Observation,
        items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let c = &cx.stack.clients;
            for item in items {
                delete(c, &item.id).await?;
                let execution_logs =
                    format!("/aws/apigateway/{}/{}", item.id, cx.stack.names.stage);
                if super::logs::delete(c, &execution_logs).await? {
                    cx.progress
                        .note(format!("api: deleted {execution_logs} with {}", item.id));
                }
            }
            Ok(())
        })
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

/// The one API this stack uses: the only candidate, or the only one carrying wsctl's tag;
/// None when there is none or they cannot be told apart.
pub fn chosen(candidates: &[ApiObs]) -> Option<&ApiObs> {
    if candidates.len() <= 1 {
        return candidates.first();
    }
    let mut managed = candidates.iter().filter(|a| naming::is_managed(&a.tags));
    match (managed.next(), managed.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// [`chosen`], where two candidates that cannot be told apart are an error listing both.
pub fn choose<'a>(candidates: &'a [ApiObs], name: &str) -> Result<Option<&'a ApiObs>> {
    if candidates.is_empty() {
        return Ok(None);
    }
    if let Some(one) = chosen(candidates) {
        return Ok(Some(one));
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
    Err(Error::Refused(format!(
        "{} WebSocket APIs are named {name}: {}. Delete the extra one(s) (aws apigatewayv2 delete-api --api-id ID) so that one remains",
        candidates.len(),
        ids.join(", ")
    )))
}

pub fn diff(o: Option<&ApiObs>, d: &Desired) -> Action {
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

/// Creates or converges the API itself. Returns its id.
async fn apply(cx: &Ctx<'_>, o: Option<&ApiObs>, d: &Desired, action: &Action) -> Result<String> {
    let c = &cx.stack.clients;
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
            .ok_or_else(|| Error::Failed("CreateApi returned no id".into()));
    };
    if action.has("route_selection_expression") {
        c.apigw
            .update_api()
            .api_id(&o.id)
            .route_selection_expression(&d.route_selection_expression)
            .send()
            .await
            .aws(format!("UpdateApi {}", o.id))?;
    }
    if action.has("tags") {
        c.apigw
            .tag_resource()
            .resource_arn(cx.stack.names.api_tag_arn(&o.id))
            .set_tags(Some(tags_to_set(&o.tags, &d.tags).into_iter().collect()))
            .send()
            .await
            .aws(format!("TagResource {}", o.id))?;
    }
    Ok(o.id.clone())
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
        Err(e) => Err(aws_error(format!("DeleteApi {api_id}"), &e).into()),
    }
}
