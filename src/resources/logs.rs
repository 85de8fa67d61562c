//! The function's log group `/aws/lambda/{function}`: created ahead of Lambda (which would
//! create it without retention or tags), with the configured retention.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::{tag_changes, tags_to_set, Action, AwsContext, Change};
use crate::aws::Clients;

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

pub async fn apply(
    c: &Clients,
    observed: Option<&Observed>,
    desired: &Desired,
    action: &Action,
) -> Result<()> {
    let name = &desired.name;
    match (observed, action) {
        (_, Action::NoChange) => return Ok(()),
        (Some(_), Action::Delete) => anyhow::bail!("internal: up never deletes the log group"),
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
                Err(e) => return Err(e).aws(format!("CreateLogGroup {name}")),
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

pub async fn delete(c: &Clients, name: &str) -> Result<bool> {
    match c.logs.delete_log_group().log_group_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(e).aws(format!("DeleteLogGroup {name}")),
    }
}
