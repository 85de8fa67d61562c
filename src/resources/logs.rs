//! CloudWatch log groups: the function's `/aws/lambda/{function}` ([`LogGroup`]), created
//! ahead of Lambda (which would create it without retention or tags), and API Gateway's access
//! log group of the stage ([`AccessLogGroup`], `[api] access_log`), each with the configured
//! retention.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::Serialize;

use super::function::Function;
use super::shape::{
    check, down_item, ready, tag_changes, tags_to_set, Action, Change, Check, Ctx, DownItem, Ids,
    Kind, Observation, Plan, PlanItem, Resource, Teardown,
};
use super::stage::Stage;
use crate::aws::{aws_error, AwsContext, Clients};
use crate::error::Result;
use crate::naming;

#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub name: String,
    pub arn: String,
    pub retention_days: Option<i32>,
    pub stored_bytes: Option<i64>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub name: String,
    pub retention_days: i32,
    pub tags: BTreeMap<String, String>,
}

/// The function's log group.
pub struct LogGroup;

impl Resource for LogGroup {
    type Desired = Desired;
    type Observed = Option<Observed>;

    fn desired(cx: &Ctx) -> Desired {
        Desired {
            name: cx.stack.names.log_group.clone(),
            retention_days: cx.stack.config.function.log_retention_days,
            tags: cx.stack.tags.clone(),
        }
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(observe(&cx.stack.clients, &cx.stack.names.log_group))
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        Ok(vec![PlanItem::new(
            Kind::LogGroup,
            &desired.name,
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
            let action = plan.action(&Kind::LogGroup);
            apply(&cx.stack.clients, observed.as_ref(), desired, action).await?;
            Ok(Ids::default())
        })
    }

    /// The function's own log group goes with the function, tagged or not.
    fn teardown(cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        if let Some(g) = obs.get::<LogGroup>() {
            let item = down_item(Kind::LogGroup, &g.name, &g.name);
            let with_function = !Function::teardown(cx, obs, adopt).delete.is_empty();
            if with_function && !naming::is_managed(&g.tags) {
                t.delete.push(item);
            } else {
                t.consider(item, &g.tags, adopt);
            }
        }
        t
    }

    fn delete<'a>(
        cx: &'a Ctx,
        _obs: &'a Observation,
        items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(delete_all(&cx.stack.clients, items))
    }
}

/// API Gateway's access log group, when `[api] access_log` asks for it.
pub struct AccessLogGroup;

impl Resource for AccessLogGroup {
    /// None: the config asks for no access log (one of wsctl's that exists goes).
    type Desired = Option<Desired>;
    type Observed = Option<Observed>;

    fn desired(cx: &Ctx) -> Option<Desired> {
        let logging = &cx.stack.config.api.logging;
        logging.access_log.then(|| Desired {
            name: cx.stack.names.access_log_group.clone(),
            retention_days: logging.log_retention_days,
            tags: cx.stack.tags.clone(),
        })
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(observe(&cx.stack.clients, &cx.stack.names.access_log_group))
    }

    fn diff(observed: &Self::Observed, desired: &Option<Desired>) -> Result<Vec<PlanItem>> {
        let action = match (desired, observed) {
            (Some(d), o) => diff(o.as_ref(), d),
            (None, Some(o)) if naming::is_managed(&o.tags) => Action::Delete,
            (None, _) => return Ok(vec![]),
        };
        let name = match (desired, observed) {
            (Some(d), _) => d.name.clone(),
            (None, o) => o.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
        };
        Ok(vec![PlanItem::new(Kind::AccessLogGroup, name, action)])
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Option<Desired>,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            let c = &cx.stack.clients;
            match (desired, plan.action(&Kind::AccessLogGroup)) {
                (_, Action::NoChange) => {}
                (None, _) => {
                    delete(c, &cx.stack.names.access_log_group).await?;
                }
                (Some(d), action) => apply(c, observed.as_ref(), d, action).await?,
            }
            Ok(Ids::default())
        })
    }

    fn teardown(_cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        if let Some(g) = obs.get::<AccessLogGroup>() {
            t.consider(
                down_item(Kind::AccessLogGroup, &g.name, &g.name),
                &g.tags,
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
        Box::pin(delete_all(&cx.stack.clients, items))
    }

    /// `stage_writes_access_log`: the stage writes its access log where wsctl made the group.
    fn checks<'a>(cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        let n = &cx.stack.names;
        if !cx.stack.config.api.logging.access_log {
            return ready(vec![]);
        }
        let want = n.log_group_arn(&n.access_log_group);
        let stage = obs.get::<Stage>().as_ref();
        let have = stage.and_then(|s| s.access_log.as_ref());
        let exists = obs.get::<AccessLogGroup>().is_some();
        ready(vec![match (stage, have) {
            (None, _) => check(
                "stage_writes_access_log",
                false,
                format!("stage {} does not exist", n.stage),
            ),
            (Some(_), Some(a)) if a.destination_arn == want && exists => check(
                "stage_writes_access_log",
                true,
                format!(
                    "stage {} logs every request to {}",
                    n.stage, n.access_log_group
                ),
            ),
            (Some(_), Some(a)) if a.destination_arn == want => check(
                "stage_writes_access_log",
                false,
                format!(
                    "the stage's access log group {} does not exist",
                    n.access_log_group
                ),
            ),
            (Some(_), other) => check(
                "stage_writes_access_log",
                false,
                format!(
                    "stage {} writes its access log to {}; expected {}",
                    n.stage,
                    other.map_or("nowhere", |a| a.destination_arn.as_str()),
                    n.access_log_group
                ),
            ),
        }])
    }
}

async fn delete_all(c: &Clients, items: &[DownItem]) -> Result<()> {
    for item in items {
        delete(c, &item.id).await?;
    }
    Ok(())
}

pub async fn observe(c: &Clients, name: &str) -> Result<Option<Observed>> {
    let out = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(name)
        .send()
        .await
        .aws(format!("DescribeLogGroups {name}"))?;
    let Some(g) = out
        .log_groups()
        .iter()
        .find(|g| g.log_group_name.as_deref() == Some(name))
    else {
        return Ok(None);
    };
    let arn = g
        .log_group_arn
        .clone()
        .or_else(|| g.arn.as_ref().map(|a| a.trim_end_matches(":*").to_owned()))
        .unwrap_or_default();
    let tags = c
        .logs
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .aws(format!("ListTagsForResource {arn}"))?
        .tags
        .map(|t| t.into_iter().collect())
        .unwrap_or_default();
    Ok(Some(Observed {
        name: name.to_owned(),
        retention_days: g.retention_in_days,
        stored_bytes: g.stored_bytes,
        arn,
        tags,
    }))
}

pub fn diff(observed: Option<&Observed>, desired: &Desired) -> Action {
    let Some(o) = observed else {
        return Action::Create;
    };
    let mut changes = Vec::new();
    if o.retention_days != Some(desired.retention_days) {
        changes.push(Change::new(
            "retention_days",
            o.retention_days
                .map_or("never expire".to_owned(), |d| d.to_string()),
            desired.retention_days,
        ));
    }
    changes.extend(tag_changes(&o.tags, &desired.tags));
    Action::from_changes(changes)
}

async fn apply(
    c: &Clients,
    observed: Option<&Observed>,
    desired: &Desired,
    action: &Action,
) -> Result<()> {
    let name = &desired.name;
    match (observed, action) {
        (_, Action::NoChange | Action::Delete) => return Ok(()),
        (None, _) | (_, Action::Create) => {
            match c
                .logs
                .create_log_group()
                .log_group_name(name)
                .set_tags(Some(desired.tags.clone().into_iter().collect()))
                .send()
                .await
            {
                Ok(_) => {}
                // Lambda (or a concurrent run) created it first: set what we need on it.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_already_exists_exception()) =>
                {
                    let o = observe(c, name).await?;
                    let action = diff(o.as_ref(), desired);
                    if let Some(o) = o {
                        return Box::pin(apply(c, Some(&o), desired, &action)).await;
                    }
                }
                Err(e) => return Err(aws_error(format!("CreateLogGroup {name}"), &e).into()),
            }
            put_retention(c, name, desired.retention_days).await?;
        }
        (Some(o), Action::Update(_)) => {
            if action.has("retention_days") {
                put_retention(c, name, desired.retention_days).await?;
            }
            let tags = tags_to_set(&o.tags, &desired.tags);
            if !tags.is_empty() {
                c.logs
                    .tag_resource()
                    .resource_arn(&o.arn)
                    .set_tags(Some(tags.into_iter().collect()))
                    .send()
                    .await
                    .aws(format!("TagResource {}", o.arn))?;
            }
        }
    }
    Ok(())
}

async fn put_retention(c: &Clients, name: &str, days: i32) -> Result<()> {
    c.logs
        .put_retention_policy()
        .log_group_name(name)
        .retention_in_days(days)
        .send()
        .await
        .aws(format!("PutRetentionPolicy {name}"))?;
    Ok(())
}

/// Deletes a log group; one that is already gone is success. Returns whether it existed.
pub async fn delete(c: &Clients, name: &str) -> Result<bool> {
    match c.logs.delete_log_group().log_group_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(aws_error(format!("DeleteLogGroup {name}"), &e).into()),
    }
}
