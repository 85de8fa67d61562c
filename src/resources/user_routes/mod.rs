//! `[[route]]`: routes to the team's own code, each one integration (`AWS_PROXY` to a Lambda
//! function, `HTTP_PROXY` to an HTTP backend), one route, a `$default` route response when two
//! way, and for a function the statement letting API Gateway invoke it for that route of this
//! stage only (Sid `wsctl-{stack}-route-...`; wsctl changes nothing else of a function it does
//! not own). Routes that leave the file are removed with what only they used; `down` removes
//! the statements (the API takes the rest). The pieces: [`model`] (types), [`observe`],
//! [`plan`] (pure: desired, diff, refuse, checks) and [`apply`].

mod apply;
mod model;
mod observe;
mod plan;

use futures::future::BoxFuture;

pub use model::{
    HEADER_CLAIMS, HEADER_CONNECTION_ID, HEADER_REQUEST_ID, HEADER_ROUTE_KEY, HEADER_SECRET,
    HEADER_USER,
};

use super::shape::{
    down_item, ready, Action, Check, Ctx, DownItem, Ids, Kind, Observation, Plan, PlanItem,
    Resource, Teardown,
};
use crate::error::Result;
use model::{Desired, Observed};

/// The routes to the team's code.
pub struct UserRoutes;

impl Resource for UserRoutes {
    type Desired = Desired;
    /// None while there is no API.
    type Observed = Option<Observed>;

    fn desired(cx: &Ctx) -> Desired {
        plan::desired(&cx.stack.config, &cx.stack.names, cx.ids.api_id.as_deref())
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(async move {
            let d = Self::desired(cx);
            if d.routes.is_empty() && cx.ids.api_id.is_none() {
                return Ok(None);
            }
            let secret = cx.stack.config.api.backend_secret_parameter.as_deref();
            Ok(Some(
                observe::observe(&cx.stack.clients, cx.ids.api_id.as_deref(), &d, secret).await?,
            ))
        })
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        Ok(plan::diff(observed.as_ref(), desired))
    }

    fn refuse(cx: &Ctx, observed: &Self::Observed) -> Option<String> {
        plan::refuse(observed.as_ref(), &Self::desired(cx))
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
            // Observed under another API (one this run replaced), or before the API existed:
            // none of its routes are ours; the functions and the secret still hold.
            let outside;
            let o = match observed {
                Some(o) if o.api_id == api_id => Some(o),
                Some(o) => {
                    outside = o.without_api(api_id);
                    Some(&outside)
                }
                None => None,
            };
            futures::future::try_join_all(desired.routes.iter().map(|spec| {
                let action = plan.action(&Kind::Route(spec.key.clone()));
                apply::apply_route(c, api_id, o, spec, action)
            }))
            .await?;
            if let Some(o) = o {
                for item in &plan.items {
                    if let (Kind::Route(key), Action::Delete) = (&item.kind, &item.action) {
                        apply::delete_route(c, &cx.stack.names, api_id, o, key).await?;
                    }
                }
            }
            Ok(Ids::default())
        })
    }

    /// The routes go with the API; the statements on the team's functions are removed.
    fn teardown(cx: &Ctx, obs: &Observation, _adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        let prefix = cx.stack.names.route_sid_prefix();
        if let Some(o) = obs.get::<UserRoutes>() {
            for (arn, f) in &o.functions {
                for s in f.statements.iter().filter(|s| s.sid.starts_with(&prefix)) {
                    t.delete.push(down_item(
                        Kind::RoutePermission(s.sid.clone()),
                        format!("{} on {arn}", s.sid),
                        format!("{arn} {}", s.sid),
                    ));
                }
            }
            if !o.functions.is_empty() || plan::custom_routes(o).next().is_some() {
                t.notes.push(
                    "the functions and HTTP backends [[route]] names are yours: down removes only the permissions it gave API Gateway on them".into(),
                );
            }
        }
        t
    }

    fn delete<'a>(
        cx: &'a Ctx,
        _obs: &'a Observation,
        items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for item in items {
                if let Some((arn, sid)) = item.id.split_once(' ') {
                    crate::resources::permission::remove_statement(&cx.stack.clients, arn, sid)
                        .await?;
                }
            }
            Ok(())
        })
    }

    fn checks<'a>(cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        ready(plan::checks(
            obs.get::<UserRoutes>().as_ref(),
            &Self::desired(cx),
        ))
    }
}
