//! The streams' history table (with `[history]`): on-demand, hash key `stream` (S), range key
//! `seq` (N), TTL on `ttl`, tagged. `up` creates it when `[history]` is on and deletes it (when
//! it is wsctl's) when the section goes; `down` deletes it; `status` checks its TTL.

use futures::future::BoxFuture;

use super::shape::{
    check, down_item, ready, Action, Check, Ctx, DownItem, Ids, Kind, Observation, Plan, PlanItem,
    Resource, TableKind, Teardown,
};
use super::table::{self, Desired as TableDesired, Observed as TableObserved};
use crate::error::{Error, Result};

/// The history table.
pub struct HistoryTable;

/// The table's name, and what `[history]` asks of it (None: off).
pub struct Desired {
    pub name: String,
    pub table: Option<TableDesired>,
}

impl Resource for HistoryTable {
    type Desired = Desired;
    type Observed = Option<TableObserved>;

    fn desired(cx: &Ctx) -> Desired {
        let name = cx.stack.names.history_table.clone();
        Desired {
            table: cx.stack.config.history.as_ref().map(|_| TableDesired {
                name: name.clone(),
                kind: TableKind::History,
                tags: cx.stack.tags.clone(),
            }),
            name,
        }
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(table::observe(
            &cx.stack.clients,
            &cx.stack.names.history_table,
        ))
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        let kind = Kind::Table(TableKind::History);
        Ok(match (&desired.table, observed) {
            (Some(d), o) => vec![PlanItem::new(kind, &d.name, table::diff(o.as_ref(), d)?)],
            // Turned off: wsctl's table goes; another's is left alone (and named by `down`).
            (None, Some(o)) if crate::naming::is_managed(&o.tags) => {
                vec![PlanItem::new(kind, &o.name, Action::Delete)]
            }
            (None, _) => vec![],
        })
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Desired,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            let c = &cx.stack.clients;
            let action = plan.action(&Kind::Table(TableKind::History));
            match (&desired.table, action) {
                (_, Action::NoChange) => {}
                (None, Action::Delete) => {
                    if table::delete(c, &desired.name).await? {
                        table::wait_deleted(c, &desired.name).await?;
                    }
                }
                (Some(d), action) => {
                    table::apply(c, observed.as_ref(), d, action).await?;
                }
                (None, _) => {
                    return Err(Error::Failed(
                        "internal: the history table is off but planned to change".into(),
                    ))
                }
            }
            Ok(Ids::default())
        })
    }

    fn teardown(_cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        if let Some(o) = obs.get::<HistoryTable>() {
            t.consider(
                down_item(Kind::Table(TableKind::History), &o.name, &o.name),
                &o.tags,
                adopt,
            );
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
                if table::delete(&cx.stack.clients, &item.id).await? {
                    table::wait_deleted(&cx.stack.clients, &item.id).await?;
                }
            }
            Ok(())
        })
    }

    /// `history_kept` (with `[history]`): the table exists and expires its entries.
    fn checks<'a>(cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        let Some(h) = &cx.stack.config.history else {
            return ready(vec![]);
        };
        ready(vec![match obs.get::<HistoryTable>() {
            None => check("history_kept", false, "the history table does not exist"),
            Some(t) if t.ttl_ok() => check(
                "history_kept",
                true,
                format!(
                    "{} keeps each stream {} (at most {} replayed per stream)",
                    t.name,
                    humantime::format_duration(h.retention),
                    h.max_per_stream
                ),
            ),
            Some(t) => check(
                "history_kept",
                false,
                format!(
                    "{}: TTL is {} (entries would never expire)",
                    t.name, t.ttl_status
                ),
            ),
        }])
    }
}
