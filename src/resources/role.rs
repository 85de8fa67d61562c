//! The function's IAM role: Lambda trust policy, AWSLambdaBasicExecutionRole, and exactly one
//! inline least-privilege policy. Other attached or inline policies (the runbook's
//! AmazonDynamoDBFullAccess and wildcard `ApiGatewayManagement`) are removed.

use std::collections::BTreeMap;

use aws_sdk_iam::types::Tag;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Value};

use super::shape::{
    check, down_item, ready, tag_changes, tags_to_set, Action, Change, Check, Ctx, DownItem, Ids,
    Kind, Observation, Plan, PlanItem, Resource, Teardown, KNOWN_AFTER_APPLY,
};
use crate::aws::{aws_error, AwsContext, Clients};
use crate::config::{AuthConfig, AuthKeys};
use crate::error::{Error, Result};
use crate::iam::{allows, decode_policy, normalize_policy};
use crate::naming::{Names, BASIC_EXECUTION_POLICY};

/// The DynamoDB actions the handler calls on the connections table, and no others
/// (DescribeTable: the item count a broadcast's fan-out is sized by).
pub const TABLE_ACTIONS: &[&str] = &[
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
];
/// On the subscriptions index: a subscription written and removed, a topic's shards queried.
pub const SUBSCRIPTIONS_ACTIONS: &[&str] =
    &["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Query"];
/// On the broadcasts table: a record created, its conditional counters, read back.
/// The history table (`[history]`): the next position read, the entry written once, a
/// resume's reads.
pub const HISTORY_ACTIONS: &[&str] = &["dynamodb:PutItem", "dynamodb:Query"];

pub const BROADCASTS_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
];

#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub name: String,
    pub arn: String,
    pub trust: Value,
    pub attached: Vec<String>,
    /// Inline policies by name.
    pub inline: BTreeMap<String, Value>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub name: String,
    pub policy_name: String,
    pub trust: Value,
    /// None while the API id is not known yet (a plan before the API exists).
    pub policy: Option<Value>,
    pub tags: BTreeMap<String, String>,
}

pub fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The inline policy: the handler's table actions on this table, its subscriptions index and
/// its broadcasts table, invoking itself (a broadcast's workers), ManageConnections on this
/// API and stage's `@connections`; with an HS256 secret in SSM, reading that one parameter
/// (and decrypting with its customer-managed key, when the config names one).
pub fn least_privilege_policy(
    names: &Names,
    api_id: &str,
    auth: Option<&AuthConfig>,
    history: bool,
) -> Value {
    let mut policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ConnectionsTable",
                "Effect": "Allow",
                "Action": TABLE_ACTIONS,
                "Resource": names.table_arn()
            },
            {
                "Sid": "SubscriptionsIndex",
                "Effect": "Allow",
                "Action": SUBSCRIPTIONS_ACTIONS,
                "Resource": names.dynamodb_table_arn(&names.subscriptions_table)
            },
            {
                "Sid": "BroadcastRecords",
                "Effect": "Allow",
                "Action": BROADCASTS_ACTIONS,
                "Resource": names.dynamodb_table_arn(&names.broadcasts_table)
            },
            {
                "Sid": "FanOutToItself",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": names.function_arn()
            },
            {
                "Sid": "PushToConnections",
                "Effect": "Allow",
                "Action": "execute-api:ManageConnections",
                "Resource": names.manage_connections_arns(api_id)
            }
        ]
    });
    if history {
        policy["Statement"]
            .as_array_mut()
            .expect("built above as an array")
            .push(json!({
                "Sid": "StreamHistory",
                "Effect": "Allow",
                "Action": HISTORY_ACTIONS,
                "Resource": names.dynamodb_table_arn(&names.history_table)
            }));
    }
    if let Some(AuthConfig {
        keys: AuthKeys::SsmSecret {
            parameter,
            kms_key_arn,
        },
        ..
    }) = auth
    {
        let statements = policy["Statement"]
            .as_array_mut()
            .expect("built above as an array");
        statements.push(json!({
            "Sid": "ReadJwtSecret",
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": names.ssm_parameter_arn(parameter)
        }));
        if let Some(key) = kms_key_arn {
            statements.push(json!({
                "Sid": "DecryptJwtSecret",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": key
            }));
        }
    }
    policy
}

/// The function's role, with its inline policy once the API's id is known.
pub struct Role;

impl Resource for Role {
    type Desired = Desired;
    type Observed = Option<Observed>;

    fn desired(cx: &Ctx) -> Desired {
        desired(
            &cx.stack.names,
            cx.ids.api_id.as_deref(),
            cx.stack.config.auth.as_ref(),
            cx.stack.config.history.is_some(),
            cx.stack.tags.clone(),
        )
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(observe(&cx.stack.clients, &cx.stack.names.role))
    }

    fn ids(observed: &Self::Observed, _desired: &Self::Desired) -> Ids {
        Ids {
            role_arn: observed.as_ref().map(|r| r.arn.clone()),
            ..Ids::default()
        }
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        Ok(vec![PlanItem::new(
            Kind::Role,
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
            let arn = apply(
                &cx.stack.clients,
                observed.as_ref(),
                desired,
                plan.action(&Kind::Role),
            )
            .await?;
            Ok(Ids {
                role_arn: Some(arn),
                ..Ids::default()
            })
        })
    }

    fn teardown(_cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        if let Some(r) = obs.get::<Role>() {
            t.consider(down_item(Kind::Role, &r.name, &r.name), &r.tags, adopt);
        }
        t
    }

    fn delete<'a>(
        cx: &'a Ctx,
        obs: &'a Observation,
        items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if let (Some(r), false) = (obs.get::<Role>(), items.is_empty()) {
                delete(&cx.stack.clients, r).await?;
            }
            Ok(())
        })
    }

    /// What the role may do: post to this API's connections, use the connections table, and
    /// fan a broadcast out (invoke itself, use the index and the records).
    fn checks<'a>(cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        ready(checks(
            &cx.stack.names,
            obs.get::<Role>().as_ref(),
            cx.ids.api_id.as_deref(),
        ))
    }
}

pub fn desired(
    names: &Names,
    api_id: Option<&str>,
    auth: Option<&AuthConfig>,
    history: bool,
    tags: BTreeMap<String, String>,
) -> Desired {
    Desired {
        name: names.role.clone(),
        policy_name: names.policy.clone(),
        trust: trust_policy(),
        policy: api_id.map(|id| least_privilege_policy(names, id, auth, history)),
        tags,
    }
}

fn is_not_found<E: aws_sdk_iam::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("NoSuchEntity")
}

/// The IAM tags of `tags`.
fn iam_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set")
        })
        .collect()
}

pub async fn observe(c: &Clients, name: &str) -> Result<Option<Observed>> {
    let role = match c.iam.get_role().role_name(name).send().await {
        Ok(out) => match out.role {
            Some(r) => r,
            None => return Ok(None),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(aws_error(format!("GetRole {name}"), &e).into()),
    };
    let (attached, inline, tags) = tokio::try_join!(
        attached_policies(c, name),
        inline_policies(c, name),
        role_tags(c, name)
    )?;
    Ok(Some(Observed {
        name: name.to_owned(),
        arn: role.arn.clone(),
        trust: role
            .assume_role_policy_document
            .as_deref()
            .map(decode_policy)
            .unwrap_or(Value::Null),
        attached,
        inline,
        tags,
    }))
}

async fn attached_policies(c: &Clients, name: &str) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut marker = None;
    loop {
        let out = c
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .set_marker(marker)
            .send()
            .await
            .aws(format!("ListAttachedRolePolicies {name}"))?;
        arns.extend(
            out.attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn.clone()),
        );
        if !out.is_truncated {
            break;
        }
        marker = out.marker;
    }
    arns.sort();
    Ok(arns)
}

async fn inline_policies(c: &Clients, name: &str) -> Result<BTreeMap<String, Value>> {
    let mut names = Vec::new();
    let mut marker = None;
    loop {
        let out = c
            .iam
            .list_role_policies()
            .role_name(name)
            .set_marker(marker)
            .send()
            .await
            .aws(format!("ListRolePolicies {name}"))?;
        names.extend(out.policy_names().iter().cloned());
        if !out.is_truncated {
            break;
        }
        marker = out.marker;
    }
    let docs = futures::future::try_join_all(names.iter().map(|policy| async move {
        let out = c
            .iam
            .get_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .aws(format!("GetRolePolicy {name}/{policy}"))?;
        Ok::<_, Error>((policy.clone(), decode_policy(&out.policy_document)))
    }))
    .await?;
    Ok(docs.into_iter().collect())
}

async fn role_tags(c: &Clients, name: &str) -> Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    let mut marker = None;
    loop {
        let out = c
            .iam
            .list_role_tags()
            .role_name(name)
            .set_marker(marker)
            .send()
            .await
            .aws(format!("ListRoleTags {name}"))?;
        tags.extend(out.tags().iter().map(|t| (t.key.clone(), t.value.clone())));
        if !out.is_truncated {
            return Ok(tags);
        }
        marker = out.marker;
    }
}

pub fn diff(observed: Option<&Observed>, desired: &Desired) -> Action {
    let Some(o) = observed else {
        return Action::Create;
    };
    let mut changes = Vec::new();
    if normalize_policy(&o.trust) != normalize_policy(&desired.trust) {
        changes.push(Change::new(
            "trust_policy",
            compact(&o.trust),
            compact(&desired.trust),
        ));
    }
    if !o.attached.iter().any(|a| a == BASIC_EXECUTION_POLICY) {
        changes.push(Change::new(
            "attached.AWSLambdaBasicExecutionRole",
            "(detached)",
            "attached",
        ));
    }
    for extra in o.attached.iter().filter(|a| *a != BASIC_EXECUTION_POLICY) {
        changes.push(Change::new(
            format!("attached.{}", short_arn(extra)),
            "attached",
            "(detached)",
        ));
    }
    for (name, _) in o.inline.iter().filter(|(n, _)| **n != desired.policy_name) {
        changes.push(Change::new(
            format!("inline.{name}"),
            "present",
            "(deleted)",
        ));
    }
    match (o.inline.get(&desired.policy_name), &desired.policy) {
        (None, None) => changes.push(Change::new(
            format!("inline.{}", desired.policy_name),
            "(none)",
            KNOWN_AFTER_APPLY,
        )),
        (None, Some(p)) => changes.push(Change::new(
            format!("inline.{}", desired.policy_name),
            "(none)",
            compact(p),
        )),
        // The API is new: the policy will name its id.
        (Some(actual), None) => changes.push(Change::new(
            format!("inline.{}", desired.policy_name),
            compact(actual),
            KNOWN_AFTER_APPLY,
        )),
        (Some(actual), Some(p)) => {
            if normalize_policy(actual) != normalize_policy(p) {
                changes.push(Change::new(
                    format!("inline.{}", desired.policy_name),
                    compact(actual),
                    compact(p),
                ));
            }
        }
    }
    changes.extend(tag_changes(&o.tags, &desired.tags));
    Action::from_changes(changes)
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn short_arn(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Makes exactly the changes of `action` (from [`diff`]): creates the role, or converges its
/// trust policy, attachments, tags and inline policies. The inline policy written is
/// `desired`'s, which names the API (known by now). Returns the role's ARN.
pub async fn apply(
    c: &Clients,
    observed: Option<&Observed>,
    desired: &Desired,
    action: &Action,
) -> Result<String> {
    let name = &desired.name;
    let policy_field = format!("inline.{}", desired.policy_name);
    let Some(o) = observed.filter(|_| *action != Action::Create) else {
        let arn = match c
            .iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(desired.trust.to_string())
            .description("Execution role of the wsctl WebSocket handler")
            .set_tags(Some(iam_tags(&desired.tags)))
            .send()
            .await
        {
            Ok(out) => out.role.map(|r| r.arn).unwrap_or_default(),
            // A concurrent run created it: converge what is there.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_already_exists_exception()) =>
            {
                let o = observe(c, name)
                    .await?
                    .ok_or_else(|| Error::Failed(format!("role {name} vanished")))?;
                let action = diff(Some(&o), desired);
                return Box::pin(apply(c, Some(&o), desired, &action)).await;
            }
            Err(e) => return Err(aws_error(format!("CreateRole {name}"), &e).into()),
        };
        attach_basic(c, name).await?;
        put_policy(c, desired).await?;
        return Ok(arn);
    };
    if action.has("trust_policy") {
        c.iam
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(desired.trust.to_string())
            .send()
            .await
            .aws(format!("UpdateAssumeRolePolicy {name}"))?;
    }
    if action.has("attached.AWSLambdaBasicExecutionRole") {
        attach_basic(c, name).await?;
    }
    for extra in o.attached.iter().filter(|a| *a != BASIC_EXECUTION_POLICY) {
        if action.has(&format!("attached.{}", short_arn(extra))) {
            detach(c, name, extra).await?;
        }
    }
    for policy in o.inline.keys().filter(|n| **n != desired.policy_name) {
        if action.has(&format!("inline.{policy}")) {
            delete_inline(c, name, policy).await?;
        }
    }
    if action.has(&policy_field) {
        put_policy(c, desired).await?;
    }
    if action.has("tags") {
        let missing = tags_to_set(&o.tags, &desired.tags);
        c.iam
            .tag_role()
            .role_name(name)
            .set_tags(Some(iam_tags(&missing)))
            .send()
            .await
            .aws(format!("TagRole {name}"))?;
    }
    Ok(o.arn.clone())
}

/// Puts the inline policy (it names the API: its id must be known by now).
async fn put_policy(c: &Clients, desired: &Desired) -> Result<()> {
    let Some(policy) = &desired.policy else {
        crate::fail!(
            Failed,
            "internal: the role's inline policy needs the API's id"
        );
    };
    c.iam
        .put_role_policy()
        .role_name(&desired.name)
        .policy_name(&desired.policy_name)
        .policy_document(policy.to_string())
        .send()
        .await
        .aws(format!(
            "PutRolePolicy {}/{}",
            desired.name, desired.policy_name
        ))?;
    Ok(())
}

async fn attach_basic(c: &Clients, name: &str) -> Result<()> {
    c.iam
        .attach_role_policy()
        .role_name(name)
        .policy_arn(BASIC_EXECUTION_POLICY)
        .send()
        .await
        .aws(format!(
            "AttachRolePolicy {name} AWSLambdaBasicExecutionRole"
        ))?;
    Ok(())
}

async fn detach(c: &Clients, name: &str, arn: &str) -> Result<()> {
    match c
        .iam
        .detach_role_policy()
        .role_name(name)
        .policy_arn(arn)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(is_not_found) => Ok(()),
        Err(e) => Err(aws_error(format!("DetachRolePolicy {name} {arn}"), &e).into()),
    }
}

async fn delete_inline(c: &Clients, name: &str, policy: &str) -> Result<()> {
    match c
        .iam
        .delete_role_policy()
        .role_name(name)
        .policy_name(policy)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(is_not_found) => Ok(()),
        Err(e) => Err(aws_error(format!("DeleteRolePolicy {name}/{policy}"), &e).into()),
    }
}

/// Detaches every managed policy, deletes every inline policy, then the role. A role that is
/// already gone is success.
pub async fn delete(c: &Clients, observed: &Observed) -> Result<bool> {
    let name = &observed.name;
    for arn in &observed.attached {
        detach(c, name, arn).await?;
    }
    for policy in observed.inline.keys() {
        delete_inline(c, name, policy).await?;
    }
    match c.iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(aws_error(format!("DeleteRole {name}"), &e).into()),
    }
}

/// `role_can_manage_connections`, `role_can_use_table`, `role_can_fan_out`.
pub fn checks(n: &Names, role: Option<&Observed>, api_id: Option<&str>) -> Vec<Check> {
    let Some(r) = role else {
        return vec![
            check(
                "role_can_manage_connections",
                false,
                "the role does not exist",
            ),
            check("role_can_use_table", false, "the role does not exist"),
            check("role_can_fan_out", false, "the role does not exist"),
        ];
    };
    let mut out = Vec::new();
    let inline: Vec<&Value> = r.inline.values().collect();
    out.push(match api_id {
        None => check(
            "role_can_manage_connections",
            false,
            "the API does not exist",
        ),
        Some(id) => {
            // Posting, and disconnecting (`wsctl connections close`, a backend's close).
            let missing: Vec<&str> = ["POST", "DELETE"]
                .into_iter()
                .filter(|method| {
                    let target = format!(
                        "{}/{}/{method}/@connections/probe",
                        n.execute_api_arn(id),
                        n.stage
                    );
                    !inline
                        .iter()
                        .any(|p| allows(p, "execute-api:ManageConnections", &target))
                })
                .collect();
            check(
                "role_can_manage_connections",
                missing.is_empty(),
                if missing.is_empty() {
                    format!(
                        "execute-api:ManageConnections (POST, DELETE) on {id}/{}",
                        n.stage
                    )
                } else {
                    format!(
                        "no policy of {} allows execute-api:ManageConnections {} on {id}/{}",
                        r.name,
                        missing.join(" or "),
                        n.stage
                    )
                },
            )
        }
    });
    let full_access = r
        .attached
        .iter()
        .any(|a| a.ends_with("/AmazonDynamoDBFullAccess"));
    let missing: Vec<&str> = TABLE_ACTIONS
        .iter()
        .copied()
        .filter(|a| !full_access && !inline.iter().any(|p| allows(p, a, &n.table_arn())))
        .collect();
    out.push(check(
        "role_can_use_table",
        missing.is_empty(),
        if missing.is_empty() {
            format!("the handler's actions on {}", n.table)
        } else {
            format!("not allowed on {}: {}", n.table, missing.join(", "))
        },
    ));
    // A broadcast's workers: invoking itself, the index and the status records.
    let needs = SUBSCRIPTIONS_ACTIONS
        .iter()
        .map(|a| (*a, n.dynamodb_table_arn(&n.subscriptions_table)))
        .chain(
            BROADCASTS_ACTIONS
                .iter()
                .map(|a| (*a, n.dynamodb_table_arn(&n.broadcasts_table))),
        )
        .chain([("lambda:InvokeFunction", n.function_arn())]);
    let missing: Vec<String> = needs
        .filter(|(a, arn)| {
            let granted = (full_access && a.starts_with("dynamodb:"))
                || inline.iter().any(|p| allows(p, a, arn));
            !granted
        })
        .map(|(a, arn)| format!("{a} on {}", arn.rsplit([':', '/']).next().unwrap_or(&arn)))
        .collect();
    out.push(check(
        "role_can_fan_out",
        missing.is_empty(),
        if missing.is_empty() {
            format!(
                "invokes {} for a broadcast's workers; uses {} and {}",
                n.function, n.subscriptions_table, n.broadcasts_table
            )
        } else {
            format!("not allowed: {}", missing.join(", "))
        },
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn names() -> Names {
        let config = Config::parse(Path::new("wsctl.toml"), "project = \"shop\"").unwrap();
        Names::new(&config, "us-east-1", "123456789012")
    }

    /// The runbook's role: AmazonDynamoDBFullAccess and a wildcard inline policy, no tags.
    #[test]
    fn the_runbooks_role_loses_its_broad_policies_field_by_field() {
        let n = names();
        let d = desired(
            &n,
            Some("abc"),
            None,
            false,
            BTreeMap::from([("ManagedBy".into(), "wsctl".into())]),
        );
        let runbook = Observed {
            name: n.role.clone(),
            arn: n.role_arn(),
            trust: trust_policy(),
            attached: vec![
                "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess".into(),
                BASIC_EXECUTION_POLICY.into(),
            ],
            inline: BTreeMap::from([(
                "ApiGatewayManagement".into(),
                json!({"Statement": {"Effect": "Allow", "Action": "execute-api:*", "Resource": "*"}}),
            )]),
            tags: BTreeMap::new(),
        };
        let fields: Vec<String> = diff(Some(&runbook), &d)
            .changes()
            .iter()
            .map(|c| c.field.clone())
            .collect();
        assert_eq!(
            fields,
            [
                "attached.AmazonDynamoDBFullAccess".to_owned(),
                "inline.ApiGatewayManagement".to_owned(),
                format!("inline.{}", n.policy),
                "tags.ManagedBy".to_owned(),
            ]
        );
        let converged = Observed {
            attached: vec![BASIC_EXECUTION_POLICY.into()],
            inline: BTreeMap::from([(n.policy.clone(), d.policy.clone().unwrap())]),
            tags: d.tags.clone(),
            ..runbook
        };
        assert_eq!(diff(Some(&converged), &d), Action::NoChange);
        assert_eq!(diff(None, &d), Action::Create);
    }

    #[test]
    fn the_policy_grants_each_action_on_its_own_resource_only() {
        let n = names();
        let p = least_privilege_policy(&n, "abc", None, false);
        let target = "arn:aws:execute-api:us-east-1:123456789012:abc/prod/POST/@connections/x";
        assert!(allows(&p, "execute-api:ManageConnections", target));
        assert!(!allows(
            &p,
            "execute-api:ManageConnections",
            "arn:aws:execute-api:us-east-1:123456789012:other/prod/POST/@connections/x"
        ));
        // Disconnecting a connection; not reading one (GET) nor another stage's.
        let deleting = "arn:aws:execute-api:us-east-1:123456789012:abc/prod/DELETE/@connections/x";
        assert!(allows(&p, "execute-api:ManageConnections", deleting));
        for other in [
            "arn:aws:execute-api:us-east-1:123456789012:abc/prod/GET/@connections/x",
            "arn:aws:execute-api:us-east-1:123456789012:abc/dev/DELETE/@connections/x",
        ] {
            assert!(
                !allows(&p, "execute-api:ManageConnections", other),
                "{other}"
            );
        }
        assert!(allows(&p, "dynamodb:PutItem", &n.table_arn()));
        assert!(!allows(&p, "dynamodb:DeleteTable", &n.table_arn()));
        let checks = checks(&n, None, Some("abc"));
        assert!(checks
            .iter()
            .all(|c| !c.ok && c.detail == "the role does not exist"));
    }
}
