//! The optional CloudWatch alarm `{project}-websocket-errors` on the function's `Errors`
//! metric (`[alarm]`), notifying an SNS topic. PutMetricAlarm replaces the whole alarm, so
//! `apply` writes it whenever any field differs.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic, Tag};
use futures::future::BoxFuture;
use serde::Serialize;

use super::shape::{
    down_item, tag_changes, tags_to_set, Action, Change, Ctx, DownItem, Ids, Kind, Observation,
    Plan, PlanItem, Resource, Teardown,
};
use crate::aws::{AwsContext, Clients};
use crate::config::AlarmConfig;
use crate::error::Result;
use crate::naming;

pub const NAMESPACE: &str = "AWS/Lambda";
pub const METRIC: &str = "Errors";
const COMPARISON: &str = "GreaterThanOrEqualToThreshold";
const MISSING_DATA: &str = "notBreaching";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Observed {
    pub name: String,
    pub arn: String,
    pub namespace: String,
    pub metric: String,
    /// `FunctionName` dimension.
    pub function: Option<String>,
    pub statistic: String,
    pub period_seconds: i64,
    pub evaluation_periods: i64,
    pub threshold: f64,
    pub comparison: String,
    pub treat_missing_data: String,
    pub actions: Vec<String>,
    pub actions_enabled: bool,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub name: String,
    pub function: String,
    pub config: AlarmConfig,
    pub tags: BTreeMap<String, String>,
}

/// The alarm on the function's errors, when `[alarm]` asks for one.
pub struct Alarm;

impl Resource for Alarm {
    /// None: no `[alarm]` (wsctl's alarm, if it exists, goes).
    type Desired = Option<Desired>;
    type Observed = Option<Observed>;

    fn desired(cx: &Ctx) -> Option<Desired> {
        let n = &cx.stack.names;
        cx.stack.config.alarm.as_ref().map(|a| Desired {
            name: n.alarm.clone(),
            function: n.function.clone(),
            config: a.clone(),
            tags: cx.stack.tags.clone(),
        })
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(observe(&cx.stack.clients, &cx.stack.names.alarm))
    }

    fn diff(observed: &Self::Observed, desired: &Option<Desired>) -> Result<Vec<PlanItem>> {
        Ok(match (desired, observed) {
            (Some(d), o) => vec![PlanItem::new(Kind::Alarm, &d.name, diff(o.as_ref(), d))],
            // Turned off in the config: remove the one wsctl made.
            (None, Some(o)) if naming::is_managed(&o.tags) => {
                vec![PlanItem::new(Kind::Alarm, &o.name, Action::Delete)]
            }
            (None, _) => vec![],
        })
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Option<Desired>,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            let c = &cx.stack.clients;
            match (desired, plan.action(&Kind::Alarm)) {
                (_, Action::NoChange) => {}
                (None, _) => delete(c, &cx.stack.names.alarm).await?,
                (Some(d), action) => apply(c, observed.as_ref(), d, action).await?,
            }
            Ok(Ids::default())
        })
    }

    fn teardown(_cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        if let Some(a) = obs.get::<Alarm>() {
            t.consider(down_item(Kind::Alarm, &a.name, &a.name), &a.tags, adopt);
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
                delete(&cx.stack.clients, &item.id).await?;
            }
            Ok(())
        })
    }
}

pub async fn observe(c: &Clients, name: &str) -> Result<Option<Observed>> {
    let out = c
        .cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .aws(format!("DescribeAlarms {name}"))?;
    let Some(a) = out
        .metric_alarms()
        .iter()
        .find(|a| a.alarm_name() == Some(name))
    else {
        return Ok(None);
    };
    let arn = a.alarm_arn().unwrap_or_default().to_owned();
    let tags = if arn.is_empty() {
        BTreeMap::new()
    } else {
        c.cloudwatch
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .aws(format!("ListTagsForResource {arn}"))?
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect()
    };
    Ok(Some(Observed {
        name: name.to_owned(),
        arn,
        namespace: a.namespace().unwrap_or_default().to_owned(),
        metric: a.metric_name().unwrap_or_default().to_owned(),
        function: a
            .dimensions()
            .iter()
            .find(|d| d.name() == Some("FunctionName"))
            .and_then(|d| d.value().map(str::to_owned)),
        statistic: a
            .statistic()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        period_seconds: a.period().unwrap_or_default().into(),
        evaluation_periods: a.evaluation_periods().unwrap_or_default().into(),
        threshold: a.threshold().unwrap_or_default(),
        comparison: a
            .comparison_operator()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        treat_missing_data: a.treat_missing_data().unwrap_or_default().to_owned(),
        actions: a.alarm_actions().to_vec(),
        actions_enabled: a.actions_enabled().unwrap_or(true),
        tags,
    }))
}

/// The fields that differ, without tags (those are set separately).
fn field_changes(o: &Observed, d: &Desired) -> Vec<Change> {
    let want = &d.config;
    let mut changes = Vec::new();
    let mut check = |field: &str, from: String, to: String| {
        if from != to {
            changes.push(Change::new(field, from, to));
        }
    };
    check(
        "metric",
        format!("{}/{}", o.namespace, o.metric),
        format!("{NAMESPACE}/{METRIC}"),
    );
    check(
        "function",
        o.function.clone().unwrap_or_else(|| "(none)".into()),
        d.function.clone(),
    );
    check("statistic", o.statistic.clone(), "Sum".into());
    check(
        "period_seconds",
        o.period_seconds.to_string(),
        want.period_seconds.to_string(),
    );
    check(
        "evaluation_periods",
        o.evaluation_periods.to_string(),
        want.evaluation_periods.to_string(),
    );
    check(
        "threshold",
        o.threshold.to_string(),
        (want.errors_threshold as f64).to_string(),
    );
    check("comparison", o.comparison.clone(), COMPARISON.into());
    check(
        "treat_missing_data",
        o.treat_missing_data.clone(),
        MISSING_DATA.into(),
    );
    check(
        "sns_topic_arn",
        o.actions.join(","),
        want.sns_topic_arn.clone(),
    );
    check(
        "actions_enabled",
        o.actions_enabled.to_string(),
        "true".into(),
    );
    changes
}

pub fn diff(observed: Option<&Observed>, desired: &Desired) -> Action {
    let Some(o) = observed else {
        return Action::Create;
    };
    let mut changes = field_changes(o, desired);
    changes.extend(tag_changes(&o.tags, &desired.tags));
    Action::from_changes(changes)
}

async fn apply(
    c: &Clients,
    observed: Option<&Observed>,
    desired: &Desired,
    action: &Action,
) -> Result<()> {
    if !action.is_change() {
        return Ok(());
    }
    let name = &desired.name;
    let needs_put = match observed {
        None => true,
        Some(o) => !field_changes(o, desired).is_empty(),
    };
    let tags = |m: BTreeMap<String, String>| {
        m.into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Vec<_>>()
    };
    if needs_put {
        let want = &desired.config;
        let mut req = c
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .alarm_description(format!(
                "Errors of Lambda function {} (managed by wsctl)",
                desired.function
            ))
            .namespace(NAMESPACE)
            .metric_name(METRIC)
            .dimensions(
                Dimension::builder()
                    .name("FunctionName")
                    .value(&desired.function)
                    .build(),
            )
            .statistic(Statistic::Sum)
            .period(want.period_seconds as i32)
            .evaluation_periods(want.evaluation_periods as i32)
            .threshold(want.errors_threshold as f64)
            .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
            .treat_missing_data(MISSING_DATA)
            .actions_enabled(true)
            .alarm_actions(&want.sns_topic_arn);
        if observed.is_none() {
            // Tags given at creation only; later changes go through TagResource.
            req = req.set_tags(Some(tags(desired.tags.clone())));
        }
        req.send().await.aws(format!("PutMetricAlarm {name}"))?;
    }
    if let Some(o) = observed {
        let missing = tags_to_set(&o.tags, &desired.tags);
        if !missing.is_empty() {
            c.cloudwatch
                .tag_resource()
                .resource_arn(&o.arn)
                .set_tags(Some(tags(missing)))
                .send()
                .await
                .aws(format!("TagResource {}", o.arn))?;
        }
    }
    Ok(())
}

/// Deletes the alarm; an alarm that does not exist is success (DeleteAlarms does not fail on
/// unknown names).
pub async fn delete(c: &Clients, name: &str) -> Result<()> {
    c.cloudwatch
        .delete_alarms()
        .alarm_names(name)
        .send()
        .await
        .aws(format!("DeleteAlarms {name}"))?;
    Ok(())
}
