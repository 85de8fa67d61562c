//! The stack's DynamoDB tables, on-demand, TTL on `ttl`, tagged: the connections table (hash key
//! `connection_id`), the subscriptions index (hash key `topic_shard`, range key
//! `connection_id`) and the broadcasts' status records (hash key `broadcast_id`).

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, Tag,
    TimeToLiveSpecification,
};
use serde::Serialize;

use futures::future::BoxFuture;

use super::shape::{
    check, down_item, ready, tag_changes, tags_to_set, Action, Change, Check, Ctx, DownItem, Ids,
    Kind, Observation, Plan, PlanItem, Resource, TableKind, Teardown,
};
use crate::aws::{aws_error, waited, AwsContext, Clients};
use crate::error::{Error, Result};

pub const KEY: &str = "connection_id";
pub const TTL_ATTRIBUTE: &str = "ttl";

/// The stack's three tables, in this order.
pub const KINDS: [TableKind; 3] = [
    TableKind::Connections,
    TableKind::Subscriptions,
    TableKind::Broadcasts,
];

impl TableKind {
    /// The hash key, and the range key if any, with their types (`S` or `N`).
    pub fn keys(self) -> (&'static str, Option<(&'static str, &'static str)>) {
        match self {
            TableKind::Connections => (KEY, None),
            TableKind::Subscriptions => ("topic_shard", Some((KEY, "S"))),
            TableKind::Broadcasts => ("broadcast_id", None),
            TableKind::History => ("stream", Some(("seq", "N"))),
        }
    }

    /// The key schema as [`Observed::key_schema`] shows it.
    pub fn key_schema(self) -> String {
        match self.keys() {
            (hash, None) => format!("{hash} (S, HASH)"),
            (hash, Some((range, t))) => format!("{hash} (S, HASH), {range} ({t}, RANGE)"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub billing_mode: String,
    /// `connection_id (S, HASH)` when right; otherwise what is there.
    pub key_schema: String,
    pub ttl_status: String,
    pub ttl_attribute: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub item_count: Option<i64>,
}

impl Observed {
    pub fn key_schema_ok(&self, kind: TableKind) -> bool {
        self.key_schema == kind.key_schema()
    }

    pub fn ttl_ok(&self) -> bool {
        matches!(self.ttl_status.as_str(), "ENABLED" | "ENABLING")
            && self.ttl_attribute.as_deref() == Some(TTL_ATTRIBUTE)
    }
}

/// One table as the config asks for it.
#[derive(Debug, Clone)]
pub struct Desired {
    pub name: String,
    pub kind: TableKind,
    pub tags: BTreeMap<String, String>,
}

/// The stack's tables: the connections, the subscriptions index and the broadcasts' records.
pub struct Tables;

impl Resource for Tables {
    type Desired = Vec<Desired>;
    /// Each of [`KINDS`], in order.
    type Observed = Vec<Option<Observed>>;

    fn desired(cx: &Ctx) -> Vec<Desired> {
        let n = &cx.stack.names;
        KINDS
            .iter()
            .map(|&kind| Desired {
                name: match kind {
                    TableKind::Connections => n.table.clone(),
                    TableKind::Subscriptions => n.subscriptions_table.clone(),
                    TableKind::Broadcasts => n.broadcasts_table.clone(),
                    TableKind::History => n.history_table.clone(),
                },
                kind,
                tags: cx.stack.tags.clone(),
            })
            .collect()
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(async move {
            let c = &cx.stack.clients;
            let wanted = Self::desired(cx);
            futures::future::try_join_all(wanted.iter().map(|d| observe(c, &d.name))).await
        })
    }

    fn ids(observed: &Self::Observed, _desired: &Self::Desired) -> Ids {
        Ids {
            table_arn: connections(observed).map(|t| t.arn.clone()),
            ..Ids::default()
        }
    }

    fn diff(observed: &Self::Observed, desired: &Self::Desired) -> Result<Vec<PlanItem>> {
        desired
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let o = observed.get(i).and_then(Option::as_ref);
                Ok(PlanItem::new(Kind::Table(d.kind), &d.name, diff(o, d)?))
            })
            .collect()
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Self::Desired,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            let c = &cx.stack.clients;
            let arns = futures::future::try_join_all(desired.iter().enumerate().map(|(i, d)| {
                let o = observed.get(i).and_then(Option::as_ref);
                apply(c, o, d, plan.action(&Kind::Table(d.kind)))
            }))
            .await?;
            Ok(Ids {
                table_arn: arns.into_iter().next(),
                ..Ids::default()
            })
        })
    }

    fn teardown(_cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        for (kind, o) in KINDS.iter().zip(obs.get::<Tables>()) {
            if let Some(o) = o {
                t.consider(
                    down_item(Kind::Table(*kind), &o.name, &o.name),
                    &o.tags,
                    adopt,
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
            let c = &cx.stack.clients;
            futures::future::try_join_all(items.iter().map(|item| async move {
                if delete(c, &item.id).await? {
                    wait_deleted(c, &item.id).await?;
                }
                Ok::<_, Error>(())
            }))
            .await?;
            Ok(())
        })
    }

    /// `ttl_enabled`: the connections table expires its rows.
    fn checks<'a>(_cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        ready(vec![match connections(obs.get::<Tables>()) {
            None => check("ttl_enabled", false, "the table does not exist"),
            Some(t) if t.ttl_ok() => check("ttl_enabled", true, "TTL on attribute ttl"),
            Some(t) => check(
                "ttl_enabled",
                false,
                format!(
                    "TTL is {} {}",
                    t.ttl_status,
                    t.ttl_attribute.as_deref().unwrap_or("")
                )
                .trim()
                .to_owned(),
            ),
        }])
    }
}

/// The connections table, of the three observed.
pub fn connections(observed: &[Option<Observed>]) -> Option<&Observed> {
    observed.first().and_then(Option::as_ref)
}

pub async fn observe(c: &Clients, name: &str) -> Result<Option<Observed>> {
    let described = match c.dynamodb.describe_table().table_name(name).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(aws_error(format!("DescribeTable {name}"), &e).into()),
    };
    let Some(t) = described.table else {
        return Ok(None);
    };
    let arn = t.table_arn.clone().unwrap_or_default();
    let attr_types: BTreeMap<String, String> = t
        .attribute_definitions()
        .iter()
        .map(|a| {
            (
                a.attribute_name.clone(),
                a.attribute_type.as_str().to_owned(),
            )
        })
        .collect();
    let key_schema = t
        .key_schema()
        .iter()
        .map(|k| {
            format!(
                "{} ({}, {})",
                k.attribute_name,
                attr_types
                    .get(&k.attribute_name)
                    .map(String::as_str)
                    .unwrap_or("?"),
                k.key_type.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let billing_mode = t
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .map(|b| b.as_str().to_owned())
        // Tables created without a billing mode are provisioned, and DescribeTable omits it.
        .unwrap_or_else(|| "PROVISIONED".to_owned());
    let (ttl, tags) = tokio::try_join!(
        async {
            c.dynamodb
                .describe_time_to_live()
                .table_name(name)
                .send()
                .await
                .aws(format!("DescribeTimeToLive {name}"))
                .map_err(Error::from)
        },
        list_tags(c, &arn)
    )?;
    let ttl = ttl.time_to_live_description;
    Ok(Some(Observed {
        name: name.to_owned(),
        status: t
            .table_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        item_count: t.item_count,
        arn,
        billing_mode,
        key_schema,
        ttl_status: ttl
            .as_ref()
            .and_then(|t| t.time_to_live_status.as_ref())
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "DISABLED".into()),
        ttl_attribute: ttl.and_then(|t| t.attribute_name),
        tags,
    }))
}

async fn list_tags(c: &Clients, arn: &str) -> Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    let mut token = None;
    loop {
        let out = c
            .dynamodb
            .list_tags_of_resource()
            .resource_arn(arn)
            .set_next_token(token)
            .send()
            .await
            .aws(format!("ListTagsOfResource {arn}"))?;
        tags.extend(out.tags().iter().map(|t| (t.key.clone(), t.value.clone())));
        token = out.next_token;
        if token.is_none() {
            return Ok(tags);
        }
    }
}

/// What would change. A table with another key schema cannot be converged (DynamoDB cannot
/// change a key) and is an error.
pub fn diff(observed: Option<&Observed>, desired: &Desired) -> Result<Action> {
    let Some(o) = observed else {
        return Ok(Action::Create);
    };
    if !o.key_schema_ok(desired.kind) {
        crate::fail!(Refused,
            "table {} has key schema {} but wsctl needs {}; DynamoDB cannot change a key: delete or rename the table",
            o.name,
            o.key_schema,
            desired.kind.key_schema()
        );
    }
    let mut changes = Vec::new();
    if o.billing_mode != "PAY_PER_REQUEST" {
        changes.push(Change::new(
            "billing_mode",
            &o.billing_mode,
            "PAY_PER_REQUEST",
        ));
    }
    if !o.ttl_ok() {
        if let (true, Some(other)) = (
            matches!(o.ttl_status.as_str(), "ENABLED" | "ENABLING"),
            &o.ttl_attribute,
        ) {
            crate::fail!(
                Refused,
                "table {} has TTL enabled on attribute {other:?}; wsctl needs it on {TTL_ATTRIBUTE:?}. Disable TTL on the table (DynamoDB then blocks changes for up to an hour) and run up again",
                o.name
            );
        }
        changes.push(Change::new(
            "ttl",
            format!(
                "{} {}",
                o.ttl_status,
                o.ttl_attribute.as_deref().unwrap_or("")
            )
            .trim(),
            format!("ENABLED {TTL_ATTRIBUTE}"),
        ));
    }
    changes.extend(tag_changes(&o.tags, &desired.tags));
    Ok(Action::from_changes(changes))
}

/// Makes the changes `diff` found. Returns the table ARN.
pub async fn apply(
    c: &Clients,
    observed: Option<&Observed>,
    desired: &Desired,
    action: &Action,
) -> Result<String> {
    let name = &desired.name;
    let arn = match (observed, action) {
        (Some(_), Action::Delete) => crate::fail!(Failed, "internal: up never deletes the table"),
        (_, Action::Create) => {
            let (hash, range) = desired.kind.keys();
            let range = range.map(|(name, t)| {
                let t = match t {
                    "N" => ScalarAttributeType::N,
                    _ => ScalarAttributeType::S,
                };
                (name, t)
            });
            let out = create_request_typed(&c.dynamodb, name, hash, range, &desired.tags)
                .send()
                .await;
            let arn = match out {
                Ok(out) => out
                    .table_description
                    .and_then(|t| t.table_arn)
                    .unwrap_or_default(),
                // Created by a concurrent run between our observe and now: converge it instead.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_in_use_exception()) =>
                {
                    let o = observe(c, name)
                        .await?
                        .ok_or_else(|| Error::Failed(format!("table {name} vanished")))?;
                    let action = diff(Some(&o), desired)?;
                    return Box::pin(apply(c, Some(&o), desired, &action)).await;
                }
                Err(e) => return Err(aws_error(format!("CreateTable {name}"), &e).into()),
            };
            wait_active(c, name).await?;
            enable_ttl(c, name).await?;
            arn
        }
        (Some(o), Action::Update(_)) => {
            if action.has("billing_mode") {
                c.dynamodb
                    .update_table()
                    .table_name(name)
                    .billing_mode(BillingMode::PayPerRequest)
                    .send()
                    .await
                    .aws(format!("UpdateTable {name}"))?;
                wait_active(c, name).await?;
            }
            if action.has("ttl") {
                enable_ttl(c, name).await?;
            }
            if action.has("tags") {
                let tags = tags_to_set(&o.tags, &desired.tags);
                c.dynamodb
                    .tag_resource()
                    .resource_arn(&o.arn)
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| Tag::builder().key(k).value(v).build())
                            .collect::<Result<_, _>>()
                            .map_err(build_error)?,
                    ))
                    .send()
                    .await
                    .aws(format!("TagResource {}", o.arn))?;
            }
            o.arn.clone()
        }
        (Some(o), Action::NoChange) => o.arn.clone(),
        (None, _) => crate::fail!(Failed, "table {name} does not exist"),
    };
    Ok(arn)
}

/// A request the SDK's builders refused (a required field missing): a bug in wsctl.
fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> Error {
    Error::Failed(format!("internal: building a DynamoDB request: {e}"))
}

/// CreateTable of an on-demand table with a string hash key `key` (and a string range key
/// `range`, when given), tagged: the stack's tables, and the stack lock's (src/lock/remote.rs).
pub fn create_request(
    db: &aws_sdk_dynamodb::Client,
    name: &str,
    key: &str,
    range: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> CreateTableFluentBuilder {
    create_request_typed(
        db,
        name,
        key,
        range.map(|r| (r, ScalarAttributeType::S)),
        tags,
    )
}

/// [`create_request`] with the range key's type given (`seq` is a number).
pub fn create_request_typed(
    db: &aws_sdk_dynamodb::Client,
    name: &str,
    key: &str,
    range: Option<(&str, ScalarAttributeType)>,
    tags: &BTreeMap<String, String>,
) -> CreateTableFluentBuilder {
    let mut request = db.create_table().table_name(name);
    let keys = [
        Some((key, ScalarAttributeType::S, KeyType::Hash)),
        range.map(|(r, t)| (r, t, KeyType::Range)),
    ];
    for (attribute, attribute_type, kind) in keys.into_iter().flatten() {
        // Both builders have every required field set here.
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(attribute_type)
                    .build()
                    .expect("name and type are set"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(attribute)
                    .key_type(kind)
                    .build()
                    .expect("name and key type are set"),
            );
    }
    request
        .billing_mode(BillingMode::PayPerRequest)
        .set_tags(Some(
            tags.iter()
                .map(|(k, v)| {
                    Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .expect("key and value are set")
                })
                .collect(),
        ))
}

async fn wait_active(c: &Clients, name: &str) -> Result<()> {
    waited(
        c.dynamodb
            .wait_until_table_exists()
            .table_name(name)
            .wait(Duration::from_secs(300))
            .await,
        format!("waiting for table {name} to become ACTIVE"),
    )?;
    Ok(())
}

async fn enable_ttl(c: &Clients, name: &str) -> Result<()> {
    c.dynamodb
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(build_error)?,
        )
        .send()
        .await
        .aws(format!("UpdateTimeToLive {name}"))?;
    Ok(())
}

pub async fn wait_deleted(c: &Clients, name: &str) -> Result<()> {
    waited(
        c.dynamodb
            .wait_until_table_not_exists()
            .table_name(name)
            .wait(Duration::from_secs(300))
            .await,
        format!("waiting for table {name} to be deleted"),
    )?;
    Ok(())
}

/// Deletes the table; a table that is already gone is success.
pub async fn delete(c: &Clients, name: &str) -> Result<bool> {
    match c.dynamodb.delete_table().table_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(aws_error(format!("DeleteTable {name}"), &e).into()),
    }
}
