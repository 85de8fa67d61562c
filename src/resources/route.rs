//! The API's routes: `$connect`, `$disconnect` and `$default`, each targeting the integration
//! that invokes the function, `$connect` behind the authorizer with `[auth]`; duplicates
//! (which emulators accept) removed.

use aws_sdk_apigatewayv2::types::AuthorizationType;
use futures::future::BoxFuture;
use serde::Serialize;

use super::shape::{
    Action, Change, Ctx, DownItem, Ids, Kind, Observation, Plan, PlanItem, Resource, Teardown,
};
use crate::aws::{apigw_no_retries as no_retries, aws_error, send_unrepeated, AwsContext, Clients};
use crate::error::{Error, Result};

/// The routes of the bundled handler.
pub const ROUTE_KEYS: [&str; 3] = ["$connect", "$disconnect", "$default"];

#[derive(Debug, Clone, Default, Serialize)]
pub struct RouteObs {
    pub id: String,
    pub key: String,
    pub target: Option<String>,
    /// `NONE`, `CUSTOM` (an authorizer), `AWS_IAM`.
    pub authorization_type: Option<String>,
    pub authorizer_id: Option<String>,
    /// `$default` on a two-way route.
    pub route_response_selection_expression: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Desired {
    /// `integrations/{id}` once the integration exists.
    pub target: Option<String>,
    /// `$connect`'s authorizer: None without `[auth]`; `Some(None)` while it is to be created.
    pub authorizer: Option<Option<String>>,
}

/// The bundled handler's routes.
pub struct Routes;

impl Resource for Routes {
    type Desired = Desired;
    /// The API's routes (every key); None while there is no API.
    type Observed = Option<(String, Vec<RouteObs>)>;

    fn desired(cx: &Ctx) -> Desired {
        Desired {
            target: cx
                .ids
                .integration_id
                .as_ref()
                .map(|id| format!("integrations/{id}")),
            authorizer: cx
                .stack
                .config
                .auth
                .as_ref()
                .map(|_| cx.ids.authorizer_id.clone()),
        }
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(async move {
            match &cx.ids.api_id {
                Some(id) => Ok(Some((id.clone(), observe(&cx.stack.clients, id).await?))),
                None => Ok(None),
            }
        })
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        Ok(ROUTE_KEYS
            .iter()
            .map(|key| {
                let action = match observed {
                    None => Action::Create,
                    Some((_, routes)) => diff(routes, desired, key),
                };
                PlanItem::new(Kind::Route((*key).to_owned()), *key, action)
            })
            .collect())
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Desired,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            let c = &cx.stack.clients;
            let api_id = cx.ids.api_id.as_deref().expect("the API exists by now");
            let target = desired.target.as_deref().ok_or_else(|| {
                Error::Failed("internal: the routes need the integration's id".into())
            })?;
            let routes = match observed {
                Some((id, routes)) if id == api_id => routes.as_slice(),
                _ => &[],
            };
            let connect_authorizer = match &desired.authorizer {
                Some(id) => Some(id.as_deref().ok_or_else(|| {
                    Error::Failed("internal: $connect needs the authorizer's id".into())
                })?),
                None => None,
            };
            futures::future::try_join_all(ROUTE_KEYS.iter().map(|key| {
                let action = plan.action(&Kind::Route((*key).to_owned()));
                let authorizer = connect_authorizer.filter(|_| *key == "$connect");
                apply(c, api_id, routes, key, target, authorizer, action)
            }))
            .await?;
            Ok(Ids::default())
        })
    }

    /// The routes go with the API.
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
}

/// Every route of the API.
pub async fn observe(c: &Clients, api_id: &str) -> Result<Vec<RouteObs>> {
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
            authorization_type: r.authorization_type.as_ref().map(|t| t.as_str().to_owned()),
            authorizer_id: r.authorizer_id.clone(),
            route_response_selection_expression: r.route_response_selection_expression.clone(),
        }));
        token = out.next_token;
        if token.is_none() {
            return Ok(all);
        }
    }
}

pub fn diff(routes: &[RouteObs], d: &Desired, key: &str) -> Action {
    let mine: Vec<&RouteObs> = routes.iter().filter(|r| r.key == key).collect();
    let Some(first) = mine.first() else {
        return Action::Create;
    };
    let mut changes = Vec::new();
    match &d.target {
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
    if key == "$connect" {
        let has = (
            first.authorization_type.as_deref().unwrap_or("NONE"),
            first.authorizer_id.as_deref(),
        );
        let show = |(kind, id): (&str, Option<&str>)| match id {
            Some(id) if kind == "CUSTOM" => format!("CUSTOM ({id})"),
            _ => kind.to_owned(),
        };
        match &d.authorizer {
            None if has.0 != "NONE" => {
                changes.push(Change::new("authorization", show(has), "NONE"))
            }
            Some(None) => changes.push(Change::new(
                "authorization",
                show(has),
                "CUSTOM (the new authorizer)",
            )),
            Some(Some(id)) if has != ("CUSTOM", Some(id.as_str())) => changes.push(Change::new(
                "authorization",
                show(has),
                format!("CUSTOM ({id})"),
            )),
            _ => {}
        }
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

async fn apply(
    c: &Clients,
    api_id: &str,
    routes: &[RouteObs],
    key: &str,
    target: &str,
    authorizer: Option<&str>,
    action: &Action,
) -> Result<()> {
    let mine: Vec<&RouteObs> = routes.iter().filter(|r| r.key == key).collect();
    let (authorization, authorizer_id) = match authorizer {
        Some(id) => (AuthorizationType::Custom, Some(id.to_owned())),
        None => (AuthorizationType::None, None),
    };
    match mine.first() {
        None => {
            send_unrepeated(format!("CreateRoute {api_id} {key}"), || {
                c.apigw
                    .create_route()
                    .api_id(api_id)
                    .route_key(key)
                    .target(target)
                    .authorization_type(authorization.clone())
                    .set_authorizer_id(authorizer_id.clone())
                    .customize()
                    .config_override(no_retries())
                    .send()
            })
            .await?;
        }
        Some(r) => {
            if action.has("target") || action.has("authorization") {
                c.apigw
                    .update_route()
                    .api_id(api_id)
                    .route_id(&r.id)
                    .target(target)
                    .authorization_type(authorization)
                    .set_authorizer_id(authorizer_id)
                    .send()
                    .await
                    .aws(format!("UpdateRoute {api_id} {key}"))?;
            }
            for extra in &mine[1..] {
                if action.has(&format!("duplicate.{}", extra.id)) {
                    delete(c, api_id, &extra.id).await?;
                }
            }
        }
    }
    Ok(())
}

async fn delete(c: &Clients, api_id: &str, route_id: &str) -> Result<()> {
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
        Err(e) => Err(aws_error(format!("DeleteRoute {api_id}/{route_id}"), &e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(id: &str, key: &str, target: &str) -> RouteObs {
        RouteObs {
            id: id.into(),
            key: key.into(),
            target: Some(target.into()),
            ..RouteObs::default()
        }
    }

    #[test]
    fn routes_are_pointed_at_the_integration_and_duplicates_go() {
        let d = Desired {
            target: Some("integrations/i1".into()),
            authorizer: None,
        };
        let routes = [
            route("r1", "$connect", "integrations/i1"),
            route("r2", "$connect", "integrations/i1"),
            route("r3", "$default", "integrations/old"),
        ];
        assert_eq!(
            diff(&routes, &d, "$connect").changes()[0].field,
            "duplicate.r2"
        );
        assert_eq!(
            diff(&routes, &d, "$default").changes()[0].to,
            "integrations/i1"
        );
        assert_eq!(diff(&routes, &d, "$disconnect"), Action::Create);
        let new_integration = Desired {
            target: None,
            authorizer: None,
        };
        assert_eq!(
            diff(&routes, &new_integration, "$default").changes()[0].to,
            "(the new integration)"
        );
    }
}

#[cfg(test)]
mod authorization {
    use super::*;

    #[test]
    fn connect_is_put_behind_the_authorizer_and_taken_out_with_auth() {
        let open = RouteObs {
            id: "r1".into(),
            key: "$connect".into(),
            target: Some("integrations/i1".into()),
            authorization_type: Some("NONE".into()),
            ..RouteObs::default()
        };
        let with = |authorizer| Desired {
            target: Some("integrations/i1".into()),
            authorizer,
        };
        assert_eq!(
            diff(
                std::slice::from_ref(&open),
                &with(Some(Some("au1".into()))),
                "$connect"
            )
            .changes(),
            [Change::new("authorization", "NONE", "CUSTOM (au1)")]
        );
        assert_eq!(
            diff(std::slice::from_ref(&open), &with(Some(None)), "$connect").changes()[0].to,
            "CUSTOM (the new authorizer)"
        );
        let guarded = RouteObs {
            authorization_type: Some("CUSTOM".into()),
            authorizer_id: Some("au1".into()),
            ..open
        };
        let both = [guarded.clone()];
        assert_eq!(
            diff(&both, &with(Some(Some("au1".into()))), "$connect"),
            Action::NoChange
        );
        assert_eq!(
            diff(&both, &with(None), "$connect").changes(),
            [Change::new("authorization", "CUSTOM (au1)", "NONE")]
        );
        // Only $connect takes an authorizer (API Gateway's rule).
        let default = RouteObs {
            key: "$default".into(),
            ..guarded
        };
        assert_eq!(
            diff(&[default], &with(Some(Some("au1".into()))), "$default"),
            Action::NoChange
        );
    }
}
