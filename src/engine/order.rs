//! The engine's order: every resource module of the stack, one line each, with what it must
//! follow when `up` applies it. The list's order is the plan's (what `up --dry-run` and
//! `status` show, in that order); `down` deletes in the order of each line's rank.
//!
//! Adding a resource: its module in `src/resources/`, then one line here.

use std::any::TypeId;
use std::marker::PhantomData;

use futures::future::BoxFuture;

use crate::error::Result;
use crate::resources::account::AccountLogRole;
use crate::resources::alarm::Alarm;
use crate::resources::api::Api;
use crate::resources::authorizer::Authorizer;
use crate::resources::dashboard::Dashboard;
use crate::resources::domain::Domains;
use crate::resources::function::Function;
use crate::resources::grant::Grants;
use crate::resources::history_table::HistoryTable;
use crate::resources::integration::Integration;
use crate::resources::logs::{AccessLogGroup, LogGroup};
use crate::resources::permission::Permission;
use crate::resources::role::Role;
use crate::resources::route::Routes;
use crate::resources::secret::JwtSecret;
use crate::resources::shape::{
    Check, Ctx, DownItem, Ids, Observation, Plan, PlanItem, Resource, Teardown,
};
use crate::resources::stage::Stage;
use crate::resources::table::Tables;
use crate::resources::user_routes::UserRoutes;

/// The resources a step follows.
macro_rules! after {
    ($($r:ty),* $(,)?) => {
        vec![$(std::any::TypeId::of::<$r>()),*]
    };
}

/// The stack's resources, in the plan's order.
pub fn order() -> Vec<Step> {
    vec![
        Step::of::<JwtSecret>(after![]).down(99),
        Step::of::<AccountLogRole>(after![]).down(99),
        Step::of::<AccessLogGroup>(after![]).down(5),
        Step::of::<Tables>(after![]).down(8),
        Step::of::<HistoryTable>(after![]).down(8),
        // Its inline policy names the API.
        Step::of::<Role>(after![Api]).down(7),
        Step::of::<LogGroup>(after![]).down(3),
        // The environment names the API; the role must exist (Lambda assumes it).
        Step::of::<Function>(after![Role, LogGroup, Api, HistoryTable]).down(2),
        Step::of::<Api>(after![]).down(1),
        // The API goes live with these: the function and its tables must be there first.
        Step::of::<Integration>(after![Api, Function, Tables])
            .under_api()
            .down(99),
        // $connect points at the authorizer; the authorizer detaches itself before it goes.
        Step::of::<Authorizer>(after![Api, Function])
            .under_api()
            .down(99),
        Step::of::<Routes>(after![Integration, Authorizer])
            .under_api()
            .down(99),
        // The team's functions must let API Gateway invoke them before their routes exist.
        Step::of::<UserRoutes>(after![Api, Routes])
            .under_api()
            .down(11),
        Step::of::<Stage>(after![Api, AccessLogGroup, AccountLogRole])
            .under_api()
            .down(99),
        Step::of::<Permission>(after![Function, Api, Authorizer]).down(10),
        // The mapping names the stage.
        Step::of::<Domains>(after![Stage]).down(0),
        Step::of::<Grants>(after![Function]).down(9),
        Step::of::<Alarm>(after![Function]).down(4),
        Step::of::<Dashboard>(after![Api, Tables, Function]).down(6),
    ]
}

/// One resource module in the engine's order, its operations erased so that one list holds
/// them all.
pub struct Step {
    pub id: TypeId,
    /// What must be applied before it.
    pub after: Vec<TypeId>,
    /// Observed once the API's id is known (what lives under the API).
    pub under_api: bool,
    /// Its place in `down`'s order (lower first).
    pub down_rank: u8,
    ops: Box<dyn Ops>,
}

impl Step {
    fn of<R: Resource>(after: Vec<TypeId>) -> Step {
        Step {
            id: TypeId::of::<R>(),
            after,
            under_api: false,
            down_rank: 99,
            ops: Box::new(Of::<R>(PhantomData)),
        }
    }

    fn under_api(mut self) -> Step {
        self.under_api = true;
        self
    }

    fn down(mut self, rank: u8) -> Step {
        self.down_rank = rank;
        self
    }

    /// Reads what exists into `obs`.
    pub async fn observe(&self, cx: &Ctx<'_>) -> Result<Observed> {
        self.ops.observe(cx).await
    }

    /// What observing finds when nothing exists.
    #[cfg(test)]
    pub fn absent(&self) -> Observed {
        self.ops.absent()
    }

    pub fn ids(&self, cx: &Ctx, obs: &Observation) -> Ids {
        self.ops.ids(cx, obs)
    }

    pub fn plan(&self, cx: &Ctx, obs: &Observation) -> Result<Vec<PlanItem>> {
        self.ops.plan(cx, obs)
    }

    pub fn refuse(&self, cx: &Ctx, obs: &Observation) -> Option<String> {
        self.ops.refuse(cx, obs)
    }

    pub fn apply<'a>(
        &'a self,
        cx: &'a Ctx,
        obs: &'a Observation,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        self.ops.apply(cx, obs, plan)
    }

    pub fn teardown(&self, cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        self.ops.teardown(cx, obs, adopt)
    }

    pub fn delete<'a>(
        &'a self,
        cx: &'a Ctx,
        obs: &'a Observation,
        items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        self.ops.delete(cx, obs, items)
    }

    pub fn checks<'a>(
        &'a self,
        cx: &'a Ctx,
        obs: &'a Observation,
    ) -> BoxFuture<'a, Result<Vec<Check>>> {
        self.ops.checks(cx, obs)
    }
}

/// What one resource observed, ready to go into an [`Observation`].
pub struct Observed(Box<dyn FnOnce(&mut Observation) + Send>);

impl Observed {
    pub fn store(self, obs: &mut Observation) {
        (self.0)(obs)
    }
}

/// A [`Resource`]'s operations behind one object-safe trait.
trait Ops: Send + Sync {
    fn observe<'a>(&'a self, cx: &'a Ctx) -> BoxFuture<'a, Result<Observed>>;
    #[cfg(test)]
    fn absent(&self) -> Observed;
    fn ids(&self, cx: &Ctx, obs: &Observation) -> Ids;
    fn plan(&self, cx: &Ctx, obs: &Observation) -> Result<Vec<PlanItem>>;
    fn refuse(&self, cx: &Ctx, obs: &Observation) -> Option<String>;
    fn apply<'a>(
        &'a self,
        cx: &'a Ctx,
        obs: &'a Observation,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>>;
    fn teardown(&self, cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown;
    fn delete<'a>(
        &'a self,
        cx: &'a Ctx,
        obs: &'a Observation,
        items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>>;
    fn checks<'a>(&'a self, cx: &'a Ctx, obs: &'a Observation)
        -> BoxFuture<'a, Result<Vec<Check>>>;
}

struct Of<R>(PhantomData<fn() -> R>);

impl<R: Resource> Ops for Of<R> {
    fn observe<'a>(&'a self, cx: &'a Ctx) -> BoxFuture<'a, Result<Observed>> {
        Box::pin(async move {
            let o = R::observe(cx).await?;
            Ok(Observed(Box::new(move |obs: &mut Observation| {
                obs.insert::<R>(o)
            })))
        })
    }

    #[cfg(test)]
    fn absent(&self) -> Observed {
        Observed(Box::new(|obs: &mut Observation| {
            obs.insert::<R>(R::Observed::default())
        }))
    }

    fn ids(&self, cx: &Ctx, obs: &Observation) -> Ids {
        R::ids(obs.get::<R>(), &R::desired(cx))
    }

    fn plan(&self, cx: &Ctx, obs: &Observation) -> Result<Vec<PlanItem>> {
        R::diff(obs.get::<R>(), &R::desired(cx))
    }

    fn refuse(&self, cx: &Ctx, obs: &Observation) -> Option<String> {
        R::refuse(cx, obs.get::<R>())
    }

    fn apply<'a>(
        &'a self,
        cx: &'a Ctx,
        obs: &'a Observation,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            let desired = R::desired(cx);
            R::apply(cx, obs.get::<R>(), &desired, plan).await
        })
    }

    fn teardown(&self, cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        R::teardown(cx, obs, adopt)
    }

    fn delete<'a>(
        &'a self,
        cx: &'a Ctx,
        obs: &'a Observation,
        items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        R::delete(cx, obs, items)
    }

    fn checks<'a>(
        &'a self,
        cx: &'a Ctx,
        obs: &'a Observation,
    ) -> BoxFuture<'a, Result<Vec<Check>>> {
        R::checks(cx, obs)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Whether every step follows only steps of the order, and no step follows itself through
    /// others (so that applying can never wait forever).
    fn is_a_graph(steps: &[Step]) -> bool {
        let ids: HashSet<TypeId> = steps.iter().map(|s| s.id).collect();
        if steps
            .iter()
            .any(|s| s.after.iter().any(|d| !ids.contains(d)))
        {
            return false;
        }
        // Kahn: repeatedly take the steps whose predecessors are all taken.
        let mut taken = HashSet::new();
        while taken.len() < steps.len() {
            let ready: Vec<TypeId> = steps
                .iter()
                .filter(|s| !taken.contains(&s.id) && s.after.iter().all(|d| taken.contains(d)))
                .map(|s| s.id)
                .collect();
            if ready.is_empty() {
                return false;
            }
            taken.extend(ready);
        }
        true
    }

    #[test]
    fn the_order_is_a_graph_with_one_step_per_resource() {
        let steps = order();
        assert!(is_a_graph(&steps));
        let ids: HashSet<TypeId> = steps.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), steps.len(), "each resource once");
    }

    #[test]
    fn a_cycle_or_a_missing_step_is_refused() {
        let mut steps = order();
        let api = steps
            .iter()
            .position(|s| s.id == TypeId::of::<Api>())
            .unwrap();
        steps[api].after = after![Role];
        assert!(!is_a_graph(&steps), "Role follows Api follows Role");
        let mut steps = order();
        steps.retain(|s| s.id != TypeId::of::<Api>());
        assert!(!is_a_graph(&steps), "Role follows a step that is not there");
    }
}
