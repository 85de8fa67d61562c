//! The one shape every resource module has ([`Resource`]), and the types its operations speak:
//! what a plan holds ([`Plan`] of [`PlanItem`]s, each a typed [`Kind`] with an [`Action`] of
//! field [`Change`]s), what `status` checks ([`Check`]), what `down` deletes ([`DownItem`]),
//! what applying teaches the resources after it ([`Ids`]), and what exists ([`Observation`]).

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Display};

use futures::future::BoxFuture;
use serde::{Serialize, Serializer};

use crate::error::Result;
use crate::package::{CodeSpec, Zip};
use crate::report::Progress;
use crate::stack::Stack;

/// One field that differs between what exists and what the config asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub field: String,
    pub from: String,
    pub to: String,
}

impl Change {
    pub fn new(field: impl Into<String>, from: impl Display, to: impl Display) -> Change {
        Change {
            field: field.into(),
            from: from.to_string(),
            to: to.to_string(),
        }
    }
}

impl Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.field, self.from, self.to)
    }
}

/// What `up` will do (or did) to one resource.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", content = "changes", rename_all = "snake_case")]
pub enum Action {
    Create,
    Update(Vec<Change>),
    /// Exists but the config no longer asks for it (an optional resource turned off).
    Delete,
    NoChange,
}

impl Action {
    pub fn from_changes(changes: Vec<Change>) -> Action {
        if changes.is_empty() {
            Action::NoChange
        } else {
            Action::Update(changes)
        }
    }

    pub fn is_change(&self) -> bool {
        !matches!(self, Action::NoChange)
    }

    pub fn changes(&self) -> &[Change] {
        match self {
            Action::Update(c) => c,
            _ => &[],
        }
    }

    /// Whether the action changes `field` or a field under it (`environment` covers
    /// `environment.X`).
    pub fn has(&self, field: &str) -> bool {
        self.changes().iter().any(|c| {
            c.field == field
                || c.field
                    .strip_prefix(field)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }

    /// created / unchanged / updated (fields): one line for progress.
    pub fn describe(&self) -> String {
        match self {
            Action::Create => "created".into(),
            Action::Delete => "deleted".into(),
            Action::NoChange => "unchanged".into(),
            Action::Update(changes) => format!(
                "updated ({})",
                changes
                    .iter()
                    .map(|c| c.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Placeholder for values only known once an earlier resource exists.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

/// Which of the stack's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    Connections,
    Subscriptions,
    Broadcasts,
    /// Streams' history (`[history]`).
    History,
}

/// Which resource a plan item or a deletion is about: typed (a misspelling does not compile),
/// rendered as the name the plan and `down` show (`table`, `route $connect`...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Kind {
    /// API Gateway's account-wide CloudWatch role setting.
    AccountLogRole,
    AccessLogGroup,
    Table(TableKind),
    Role,
    LogGroup,
    Function,
    Api,
    Integration,
    /// A route, by its key.
    Route(String),
    Stage,
    /// The statement letting API Gateway invoke the function.
    Permission,
    /// The `$connect` authorizer.
    Authorizer,
    /// A statement letting API Gateway invoke a team's function for a route, by Sid.
    RoutePermission(String),
    /// A custom domain name, by name.
    Domain(String),
    ApiMapping,
    DnsRecord,
    /// A `[[grant]]`'s statement, by principal.
    Grant(String),
    Alarm,
    Dashboard,
}

impl Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::AccountLogRole => "account_log_role",
            Kind::AccessLogGroup => "access_log_group",
            Kind::Table(TableKind::Connections) => "table",
            Kind::Table(TableKind::Subscriptions) => "subscriptions",
            Kind::Table(TableKind::Broadcasts) => "broadcasts",
            Kind::Table(TableKind::History) => "history",
            Kind::Role => "role",
            Kind::LogGroup => "log_group",
            Kind::Function => "function",
            Kind::Api => "api",
            Kind::Integration => "integration",
            Kind::Route(key) => return write!(f, "route {key}"),
            Kind::Stage => "stage",
            Kind::Permission => "permission",
            Kind::Authorizer => "authorizer",
            Kind::RoutePermission(_) => "route_permission",
            Kind::Domain(_) => "domain",
            Kind::ApiMapping => "api_mapping",
            Kind::DnsRecord => "dns_record",
            Kind::Grant(_) => "grant",
            Kind::Alarm => "alarm",
            Kind::Dashboard => "dashboard",
        })
    }
}

fn as_label<S: Serializer>(kind: &Kind, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(kind)
}

/// What `up` does to one resource.
#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    #[serde(rename = "resource", serialize_with = "as_label")]
    pub kind: Kind,
    pub name: String,
    #[serde(flatten)]
    pub action: Action,
}

impl PlanItem {
    pub fn new(kind: Kind, name: impl Into<String>, action: Action) -> PlanItem {
        PlanItem {
            kind,
            name: name.into(),
            action,
        }
    }
}

/// The whole plan, in the engine's order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub items: Vec<PlanItem>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.items.iter().all(|i| !i.action.is_change())
    }

    /// What the plan does to `kind` (no change when it has no item for it).
    pub fn action(&self, kind: &Kind) -> &Action {
        self.items
            .iter()
            .find(|i| &i.kind == kind)
            .map(|i| &i.action)
            .unwrap_or(&Action::NoChange)
    }

    /// Whether the plan changes anything `wanted` selects.
    pub fn changes_any(&self, wanted: impl Fn(&Kind) -> bool) -> bool {
        self.items
            .iter()
            .any(|i| wanted(&i.kind) && i.action.is_change())
    }
}

/// One named check `status` shows (a route's checks carry its key: `route_can_invoke_target:KEY`).
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: std::borrow::Cow<'static, str>,
    pub ok: bool,
    pub detail: String,
}

pub fn check(
    name: impl Into<std::borrow::Cow<'static, str>>,
    ok: bool,
    detail: impl Into<String>,
) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// One resource `down` deletes, or leaves.
#[derive(Debug, Clone, Serialize)]
pub struct DownItem {
    #[serde(rename = "resource", serialize_with = "as_label")]
    pub kind: Kind,
    pub name: String,
    /// What the delete call needs (an API's id, a statement's Sid, a table's name).
    #[serde(skip)]
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What `down` does with one resource module's resources.
#[derive(Debug, Clone, Default)]
pub struct Teardown {
    pub delete: Vec<DownItem>,
    /// Found with a matching name but not wsctl's: left alone.
    pub leave: Vec<DownItem>,
    /// What `down` leaves on purpose, and why.
    pub notes: Vec<String>,
}

impl Teardown {
    /// Deletes `item` when it carries wsctl's tag or `adopt` is set; leaves it otherwise.
    pub fn consider(&mut self, item: DownItem, tags: &BTreeMap<String, String>, adopt: bool) {
        if crate::naming::is_managed(tags) || adopt {
            self.delete.push(item);
        } else {
            self.leave.push(DownItem {
                reason: Some(
                    "no ManagedBy=wsctl tag; `wsctl down --adopt` deletes resources the runbook made"
                        .into(),
                ),
                ..item
            });
        }
    }
}

/// A resource `down` deletes (its name and the id its delete call needs).
pub fn down_item(kind: Kind, name: impl Into<String>, id: impl Into<String>) -> DownItem {
    DownItem {
        kind,
        name: name.into(),
        id: id.into(),
        reason: None,
    }
}

/// What resources learn from each other: ids and ARNs that exist once a resource does.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ids {
    pub table_arn: Option<String>,
    pub role_arn: Option<String>,
    pub function_arn: Option<String>,
    pub api_id: Option<String>,
    pub integration_id: Option<String>,
    /// The `$connect` authorizer's id, with `[auth]`.
    pub authorizer_id: Option<String>,
    /// The custom domain's regional target (`d-....execute-api...`).
    #[serde(skip)]
    pub dns_target: Option<String>,
}

impl Ids {
    /// Takes every id `other` knows.
    pub fn merge(&mut self, other: Ids) {
        let take = |mine: &mut Option<String>, theirs: Option<String>| {
            if theirs.is_some() {
                *mine = theirs;
            }
        };
        take(&mut self.table_arn, other.table_arn);
        take(&mut self.role_arn, other.role_arn);
        take(&mut self.function_arn, other.function_arn);
        take(&mut self.api_id, other.api_id);
        take(&mut self.integration_id, other.integration_id);
        take(&mut self.authorizer_id, other.authorizer_id);
        take(&mut self.dns_target, other.dns_target);
    }
}

/// What one run of `up`, `status` or `down` hands every resource: the stack, the ids known so
/// far, the handler's code, progress.
pub struct Ctx<'a> {
    pub stack: &'a Stack,
    pub ids: Ids,
    /// Where the function's code comes from (`status`: what is deployed).
    pub code: &'a CodeSpec,
    /// The zip to upload, when the plan changes the function's code.
    pub zip: Option<&'a Zip>,
    pub progress: &'a Progress,
}

impl<'a> Ctx<'a> {
    /// The same run with `ids` known.
    pub fn with_ids(&self, ids: Ids) -> Ctx<'a> {
        Ctx {
            stack: self.stack,
            ids,
            code: self.code,
            zip: self.zip,
            progress: self.progress,
        }
    }
}

/// Everything that exists, by resource module.
#[derive(Default)]
pub struct Observation {
    by_resource: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

impl Observation {
    /// What `R` observed. Every resource of the engine's order is observed by every run.
    pub fn get<R: Resource>(&self) -> &R::Observed {
        self.by_resource
            .get(&TypeId::of::<R>())
            .and_then(|o| o.downcast_ref())
            .unwrap_or_else(|| panic!("{} was not observed", std::any::type_name::<R>()))
    }

    pub fn insert<R: Resource>(&mut self, observed: R::Observed) {
        self.by_resource
            .insert(TypeId::of::<R>(), Box::new(observed));
    }
}

/// The one shape of every resource module: the engine calls these, and nothing else, in its
/// order.
pub trait Resource: 'static {
    /// What the config asks for, given the ids known so far.
    type Desired: Send + Sync;
    /// What exists (not-found is `None`, or empty; its `Default` is nothing at all).
    type Observed: Default + Send + Sync + 'static;

    /// What the config asks for.
    fn desired(cx: &Ctx) -> Self::Desired;

    /// Reads what exists. `cx.ids` has the API's id when the API exists.
    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>>;

    /// The ids an existing resource gives the others.
    fn ids(_observed: &Self::Observed, _desired: &Self::Desired) -> Ids {
        Ids::default()
    }

    /// Pure: this resource's plan items, field by field. An error is a state `up` cannot
    /// converge from (the message says what to do).
    fn diff(observed: &Self::Observed, desired: &Self::Desired) -> Result<Vec<PlanItem>>;

    /// Why `up` must write nothing at all (checked before the first write), if anything.
    fn refuse(_cx: &Ctx, _observed: &Self::Observed) -> Option<String> {
        None
    }

    /// Makes exactly this resource's changes in `plan`; returns the ids it learned.
    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Self::Desired,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>>;

    /// What `down` deletes (what carries wsctl's tag, or with `adopt` what the stack's names
    /// identify) and leaves, from everything observed.
    fn teardown(cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown;

    /// Deletes `items` (this resource's, from [`Resource::teardown`]). Not-found is success.
    fn delete<'a>(
        cx: &'a Ctx,
        obs: &'a Observation,
        items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>>;

    /// The named checks `status` shows, from everything observed (and, where a check needs
    /// more, what it reads; never a write).
    fn checks<'a>(_cx: &'a Ctx, _obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// The checks of a resource that need nothing beyond what was observed.
pub fn ready<'a>(checks: Vec<Check>) -> BoxFuture<'a, Result<Vec<Check>>> {
    Box::pin(std::future::ready(Ok(checks)))
}

/// Tags to add or change so that `actual` carries every `desired` tag (extra tags are kept).
pub fn tag_changes(
    actual: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> Vec<Change> {
    desired
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .map(|(k, v)| {
            Change::new(
                format!("tags.{k}"),
                actual
                    .get(k)
                    .map_or("(none)".to_owned(), |a| format!("{a:?}")),
                format!("{v:?}"),
            )
        })
        .collect()
}

/// The desired tags that `tag_changes` found missing or different.
pub fn tags_to_set(
    actual: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    desired
        .iter()
        .filter(|(k, v)| actual.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_items_are_found_by_kind_and_render_as_before() {
        let plan = Plan {
            items: vec![
                PlanItem::new(Kind::Table(TableKind::Subscriptions), "t", Action::Create),
                PlanItem::new(Kind::Route("$connect".into()), "$connect", Action::NoChange),
                PlanItem::new(
                    Kind::Grant("arn:aws:iam::1:role/a".into()),
                    "arn:aws:iam::1:role/a",
                    Action::Update(vec![Change::new("principal", "x", "y")]),
                ),
            ],
        };
        assert_eq!(
            plan.action(&Kind::Table(TableKind::Subscriptions)),
            &Action::Create
        );
        assert_eq!(plan.action(&Kind::Role), &Action::NoChange);
        assert!(plan
            .action(&Kind::Grant("arn:aws:iam::1:role/a".into()))
            .has("principal"));
        assert_eq!(
            serde_json::to_value(&plan.items).unwrap(),
            serde_json::json!([
                {"resource": "subscriptions", "name": "t", "action": "create"},
                {"resource": "route $connect", "name": "$connect", "action": "no_change"},
                {"resource": "grant", "name": "arn:aws:iam::1:role/a", "action": "update",
                 "changes": [{"field": "principal", "from": "x", "to": "y"}]}
            ])
        );
    }

    #[test]
    fn a_field_covers_its_subfields_only() {
        let a = Action::Update(vec![Change::new("environment.X", "1", "2")]);
        assert!(a.has("environment") && a.has("environment.X"));
        assert!(!a.has("environ") && !a.has("tags"));
    }
}
