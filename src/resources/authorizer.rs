//! The `$connect` authorizer (with `[auth]`): a Lambda REQUEST authorizer served by the stack's
//! own function, so that the token is verified at the handshake and the caller's identity
//! reaches every later route in `requestContext.authorizer` (the bundled handler's, and a
//! team's own Lambda functions and HTTP backends). Its identity source is where the token
//! travels (`route.request.querystring.{param}` or `route.request.header.Sec-WebSocket-Protocol`;
//! none for `token_source = "either"`, which can be either), so a handshake without a token gets
//! 401 from API Gateway without invoking the function. No result caching: API Gateway
//! supports none for WebSocket authorizers. The `$connect` route points at it (`route.rs`);
//! the statement letting API Gateway invoke the function as it is `permission.rs`'s.
//! Removing `[auth]` detaches it from `$connect`, then deletes it.

use aws_sdk_apigatewayv2::types::{AuthorizationType, AuthorizerType};
use futures::future::BoxFuture;
use serde::Serialize;

use super::shape::{
    Action, Change, Ctx, DownItem, Ids, Kind, Observation, Plan, PlanItem, Resource, Teardown,
};
use crate::aws::{apigw_no_retries as no_retries, aws_error, send_unrepeated, AwsContext, Clients};
use crate::config::TokenSource;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthorizerObs {
    pub id: String,
    pub name: String,
    pub authorizer_type: String,
    pub uri: String,
    pub identity_source: Vec<String>,
}

/// The API's authorizers of wsctl's name, and the API's `$connect` route (id and authorizer).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub api_id: String,
    pub authorizers: Vec<AuthorizerObs>,
    /// `$connect`'s route id and authorizer id, when it has one.
    pub connect_route: Option<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    /// None without `[auth]`: no authorizer.
    pub spec: Option<Spec>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub uri: String,
    pub identity_source: Vec<String>,
}

/// Where the token travels, as API Gateway's identity source: checked present before the
/// function is invoked.
pub fn identity_source(source: TokenSource, query_param: &str) -> Vec<String> {
    match source {
        TokenSource::Query => vec![format!("route.request.querystring.{query_param}")],
        TokenSource::Protocol => vec!["route.request.header.Sec-WebSocket-Protocol".into()],
        // Either place: API Gateway would require both, so the function looks itself.
        TokenSource::Either => vec![],
    }
}

/// The `$connect` authorizer.
pub struct Authorizer;

impl Resource for Authorizer {
    type Desired = Desired;
    /// None while there is no API.
    type Observed = Option<Observed>;

    fn desired(cx: &Ctx) -> Desired {
        let n = &cx.stack.names;
        Desired {
            name: n.authorizer.clone(),
            spec: cx.stack.config.auth.as_ref().map(|a| Spec {
                uri: n.integration_uri(),
                identity_source: identity_source(a.token_source, &a.token_query_param),
            }),
        }
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(async move {
            let Some(api_id) = &cx.ids.api_id else {
                return Ok(None);
            };
            let c = &cx.stack.clients;
            let name = &cx.stack.names.authorizer;
            let (authorizers, routes) =
                tokio::try_join!(observe(c, api_id, name), super::route::observe(c, api_id))?;
            Ok(Some(Observed {
                api_id: api_id.clone(),
                authorizers,
                connect_route: routes
                    .into_iter()
                    .find(|r| r.key == "$connect")
                    .map(|r| (r.id, r.authorizer_id)),
            }))
        })
    }

    fn ids(observed: &Self::Observed, desired: &Desired) -> Ids {
        Ids {
            authorizer_id: desired
                .spec
                .as_ref()
                .and(observed.as_ref())
                .and_then(|o| o.authorizers.first())
                .map(|a| a.id.clone()),
            ..Ids::default()
        }
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        let action = diff(observed.as_ref(), desired);
        if action == Action::NoChange && desired.spec.is_none() {
            return Ok(vec![]);
        }
        Ok(vec![PlanItem::new(Kind::Authorizer, &desired.name, action)])
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Desired,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            let api_id = cx.ids.api_id.as_deref().expect("the API exists by now");
            let o = observed.as_ref().filter(|o| o.api_id == api_id);
            let action = plan.action(&Kind::Authorizer);
            let id = apply(&cx.stack.clients, api_id, o, desired, action).await?;
            Ok(Ids {
                authorizer_id: id,
                ..Ids::default()
            })
        })
    }

    /// The authorizer goes with the API.
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

/// The API's authorizers named `name` (GetAuthorizers, every page).
async fn observe(c: &Clients, api_id: &str, name: &str) -> Result<Vec<AuthorizerObs>> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let out = c
            .apigw
            .get_authorizers()
            .api_id(api_id)
            .set_next_token(token)
            .send()
            .await
            .aws(format!("GetAuthorizers {api_id}"))?;
        all.extend(
            out.items()
                .iter()
                .filter(|a| a.name.as_deref() == Some(name))
                .map(|a| AuthorizerObs {
                    id: a.authorizer_id.clone().unwrap_or_default(),
                    name: name.to_owned(),
                    authorizer_type: a
                        .authorizer_type
                        .as_ref()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    uri: a.authorizer_uri.clone().unwrap_or_default(),
                    identity_source: a.identity_source.clone().unwrap_or_default(),
                }),
        );
        token = out.next_token;
        if token.is_none() {
            return Ok(all);
        }
    }
}

pub fn diff(o: Option<&Observed>, d: &Desired) -> Action {
    let existing = o.and_then(|o| o.authorizers.first());
    let Some(spec) = &d.spec else {
        return match existing {
            Some(_) => Action::Delete,
            None => Action::NoChange,
        };
    };
    let Some(a) = existing else {
        return Action::Create;
    };
    let mut changes = Vec::new();
    if a.authorizer_type != "REQUEST" {
        changes.push(Change::new(
            "authorizer_type",
            &a.authorizer_type,
            "REQUEST",
        ));
    }
    if a.uri != spec.uri {
        changes.push(Change::new("authorizer_uri", &a.uri, &spec.uri));
    }
    if a.identity_source != spec.identity_source {
        let show = |l: &[String]| {
            if l.is_empty() {
                "(none)".to_owned()
            } else {
                l.join(", ")
            }
        };
        changes.push(Change::new(
            "identity_source",
            show(&a.identity_source),
            show(&spec.identity_source),
        ));
    }
    for extra in o.map(|o| &o.authorizers[1..]).unwrap_or_default() {
        changes.push(Change::new(
            format!("duplicate.{}", extra.id),
            "present",
            "(deleted)",
        ));
    }
    Action::from_changes(changes)
}

/// Makes `action`'s changes; returns the authorizer's id (None once deleted).
async fn apply(
    c: &Clients,
    api_id: &str,
    o: Option<&Observed>,
    d: &Desired,
    action: &Action,
) -> Result<Option<String>> {
    let existing = o.map(|o| o.authorizers.as_slice()).unwrap_or_default();
    let Some(spec) = &d.spec else {
        if action == &Action::Delete {
            // API Gateway refuses to delete an authorizer a route still uses.
            if let Some((route_id, Some(_))) = o.and_then(|o| o.connect_route.as_ref()) {
                c.apigw
                    .update_route()
                    .api_id(api_id)
                    .route_id(route_id)
                    .authorization_type(AuthorizationType::None)
                    .send()
                    .await
                    .aws(format!("UpdateRoute {api_id} $connect"))?;
            }
            for a in existing {
                delete(c, api_id, &a.id).await?;
            }
        }
        return Ok(None);
    };
    let id = match existing.first() {
        None => send_unrepeated(format!("CreateAuthorizer {api_id} {}", d.name), || {
            c.apigw
                .create_authorizer()
                .api_id(api_id)
                .name(&d.name)
                .authorizer_type(AuthorizerType::Request)
                .authorizer_uri(&spec.uri)
                .set_identity_source(Some(spec.identity_source.clone()))
                .customize()
                .config_override(no_retries())
                .send()
        })
        .await?
        .authorizer_id
        .unwrap_or_default(),
        Some(a) => {
            if action.has("authorizer_type")
                || action.has("authorizer_uri")
                || action.has("identity_source")
            {
                c.apigw
                    .update_authorizer()
                    .api_id(api_id)
                    .authorizer_id(&a.id)
                    .authorizer_type(AuthorizerType::Request)
                    .authorizer_uri(&spec.uri)
                    .set_identity_source(Some(spec.identity_source.clone()))
                    .send()
                    .await
                    .aws(format!("UpdateAuthorizer {api_id}/{}", a.id))?;
            }
            for extra in &existing[1..] {
                if action.has(&format!("duplicate.{}", extra.id)) {
                    delete(c, api_id, &extra.id).await?;
                }
            }
            a.id.clone()
        }
    };
    Ok(Some(id))
}

async fn delete(c: &Clients, api_id: &str, id: &str) -> Result<()> {
    match c
        .apigw
        .delete_authorizer()
        .api_id(api_id)
        .authorizer_id(id)
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
        Err(e) => Err(aws_error(format!("DeleteAuthorizer {api_id}/{id}"), &e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(identity: &[&str]) -> Observed {
        Observed {
            api_id: "abc".into(),
            authorizers: vec![AuthorizerObs {
                id: "au1".into(),
                name: "shop-websocket-authorizer".into(),
                authorizer_type: "REQUEST".into(),
                uri: "uri".into(),
                identity_source: identity.iter().map(|s| s.to_string()).collect(),
            }],
            connect_route: Some(("r1".into(), Some("au1".into()))),
        }
    }

    #[test]
    fn the_authorizer_follows_the_token_source_and_goes_with_auth() {
        let want = |source| Desired {
            name: "shop-websocket-authorizer".into(),
            spec: Some(Spec {
                uri: "uri".into(),
                identity_source: identity_source(source, "token"),
            }),
        };
        let o = obs(&["route.request.querystring.token"]);
        assert_eq!(diff(Some(&o), &want(TokenSource::Query)), Action::NoChange);
        assert_eq!(
            diff(Some(&o), &want(TokenSource::Protocol)).changes()[0],
            Change::new(
                "identity_source",
                "route.request.querystring.token",
                "route.request.header.Sec-WebSocket-Protocol"
            )
        );
        assert_eq!(
            diff(Some(&o), &want(TokenSource::Either)).changes()[0].to,
            "(none)"
        );
        assert_eq!(diff(None, &want(TokenSource::Query)), Action::Create);
        let off = Desired {
            name: "shop-websocket-authorizer".into(),
            spec: None,
        };
        assert_eq!(diff(Some(&o), &off), Action::Delete);
        assert_eq!(diff(None, &off), Action::NoChange);
    }
}
