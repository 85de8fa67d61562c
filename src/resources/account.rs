//! API Gateway's CloudWatch role: the account-and-region setting (`cloudwatchRoleArn`, API
//! Gateway v1's GetAccount/UpdateAccount) that API Gateway needs before it writes any stage's
//! logs. It is shared by every API of the account in the region, so `up` changes it only when
//! allowed (`[api] manage_account_log_role = true`, or a confirmation), keeps a working role
//! that is already set whoever made it, and `down` never touches it.
//!
//! When wsctl sets it, the role is its own account-wide `wsctl-apigateway-cloudwatch-logs`,
//! trusted by apigateway.amazonaws.com, with AWS's AmazonAPIGatewayPushToCloudWatchLogs.

use std::time::Duration;

use aws_sdk_apigateway::types::{Op, PatchOperation};
use aws_sdk_iam::types::Tag;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Value};

use super::role;
use super::shape::{
    check, ready, Action, Change, Check, Ctx, DownItem, Ids, Kind, Observation, Plan, PlanItem,
    Resource, Teardown,
};
use crate::aws::{aws_error, AwsContext, Clients};
use crate::error::Result;
use crate::iam::{statements, string_list};
use crate::naming::{
    ACCOUNT_LOG_ROLE, MANAGED_BY_KEY, MANAGED_BY_VALUE, PUSH_TO_CLOUDWATCH_POLICY,
};

const APIGATEWAY_SERVICE: &str = "apigateway.amazonaws.com";
/// How long `up` waits for a new role to become assumable by API Gateway (IAM propagation).
const PROPAGATION: Duration = Duration::from_secs(90);

/// The account's CloudWatch role for API Gateway, read (and set, when allowed) only when the
/// config asks for API Gateway's logs: reading it needs `apigateway:GET` on the account.
pub struct AccountLogRole;

/// The setting API Gateway's logs need, when the config asks for them.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// How the plan names it: the setting is the whole account's in the region.
    pub name: String,
    /// The role wsctl sets when the account has no working one.
    pub role_arn: String,
}

impl Resource for AccountLogRole {
    /// None: the config asks for no API Gateway log.
    type Desired = Option<Wanted>;
    type Observed = Option<Observed>;

    fn desired(cx: &Ctx) -> Option<Wanted> {
        let n = &cx.stack.names;
        cx.stack.config.api.logging.any().then(|| Wanted {
            name: format!("API Gateway account setting ({}, every API)", n.region),
            role_arn: n.account_log_role_arn(),
        })
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(async move {
            match Self::desired(cx) {
                Some(_) => observe(&cx.stack.clients).await.map(Some),
                None => Ok(None),
            }
        })
    }

    fn diff(observed: &Self::Observed, desired: &Option<Wanted>) -> Result<Vec<PlanItem>> {
        Ok(desired
            .iter()
            .map(|w| PlanItem::new(Kind::AccountLogRole, &w.name, diff(observed.as_ref(), w)))
            .collect())
    }

    fn apply<'a>(
        cx: &'a Ctx,
        _observed: &'a Self::Observed,
        _desired: &'a Option<Wanted>,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            if plan.action(&Kind::AccountLogRole).is_change() {
                let arn = apply(&cx.stack.clients).await?;
                cx.progress.note(format!(
                    "API Gateway's CloudWatch role for {} is {arn}",
                    cx.stack.names.region
                ));
            }
            Ok(Ids::default())
        })
    }

    /// `down` never deletes an account-wide setting: a note says so.
    fn teardown(cx: &Ctx, _obs: &Observation, _adopt: bool) -> Teardown {
        Teardown {
            notes: Self::desired(cx)
                .map(|_| format!(
                    "API Gateway's CloudWatch role (the account setting cloudwatchRoleArn in {}) is left as it is: it is shared by every API of the account",
                    cx.stack.names.region
                ))
                .into_iter()
                .collect(),
            ..Teardown::default()
        }
    }

    fn delete<'a>(
        _cx: &'a Ctx,
        _obs: &'a Observation,
        _items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// `api_logs_can_flow`: the account's role is set and API Gateway may assume it.
    fn checks<'a>(cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        if Self::desired(cx).is_none() {
            return ready(vec![]);
        }
        let region = &cx.stack.names.region;
        ready(vec![match obs.get::<AccountLogRole>().as_ref().map(|a| (a.problem(), a)) {
            None => check(
                "api_logs_can_flow",
                false,
                "the account setting was not read",
            ),
            Some((None, a)) => check(
                "api_logs_can_flow",
                true,
                format!(
                    "API Gateway's CloudWatch role in {region} is {}, assumable by apigateway.amazonaws.com",
                    a.role_arn.as_deref().unwrap_or_default()
                ),
            ),
            Some((Some(problem), _)) => check(
                "api_logs_can_flow",
                false,
                format!("{problem}: API Gateway writes no log for any API in {region}"),
            ),
        }])
    }
}

/// The account's setting and what it points at.
#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    /// `cloudwatchRoleArn`; None when the account has none.
    pub role_arn: Option<String>,
    /// The role it names, when that role exists.
    pub role: Option<role::Observed>,
}

impl Observed {
    /// Why API Gateway cannot write logs with this setting; None when it can.
    pub fn problem(&self) -> Option<String> {
        let Some(arn) = &self.role_arn else {
            return Some("the account has no CloudWatch role for API Gateway (apigateway GetAccount: cloudwatchRoleArn is empty)".into());
        };
        let Some(r) = &self.role else {
            return Some(format!(
                "the account's CloudWatch role {arn} does not exist"
            ));
        };
        if !trusts_apigateway(&r.trust) {
            return Some(format!(
                "the account's CloudWatch role {arn} cannot be assumed by {APIGATEWAY_SERVICE} (its trust policy)"
            ));
        }
        if r.attached.is_empty() && r.inline.is_empty() {
            return Some(format!(
                "the account's CloudWatch role {arn} has no policy letting it write logs (AmazonAPIGatewayPushToCloudWatchLogs)"
            ));
        }
        None
    }
}

/// Whether a trust policy lets API Gateway assume the role.
pub fn trusts_apigateway(trust: &Value) -> bool {
    statements(trust).iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && string_list(s.get("Action"))
                .iter()
                .any(|a| a == "sts:AssumeRole" || a == "sts:*" || a == "*")
            && string_list(s.get("Principal").and_then(|p| p.get("Service")))
                .iter()
                .any(|p| p == APIGATEWAY_SERVICE)
    })
}

fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": APIGATEWAY_SERVICE},
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The role's name from its ARN (the part after the last `/`, paths included).
fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

pub async fn observe(c: &Clients) -> Result<Observed> {
    let account = c
        .apigw_account
        .get_account()
        .send()
        .await
        .aws("apigateway GetAccount")?;
    let role_arn = account.cloudwatch_role_arn.filter(|a| !a.is_empty());
    let role = match &role_arn {
        Some(arn) => role::observe(c, role_name(arn)).await?,
        None => None,
    };
    Ok(Observed { role_arn, role })
}

/// Nothing when the account's role works; otherwise the setting to write.
pub fn diff(o: Option<&Observed>, wanted: &Wanted) -> Action {
    let Some(o) = o else {
        return Action::NoChange;
    };
    match (o.problem(), &o.role_arn) {
        (None, _) => Action::NoChange,
        (Some(_), None) => Action::Update(vec![Change::new(
            "cloudwatchRoleArn",
            "(none)",
            &wanted.role_arn,
        )]),
        (Some(problem), Some(old)) => Action::Update(vec![Change::new(
            "cloudwatchRoleArn",
            format!("{old} ({problem})"),
            &wanted.role_arn,
        )]),
    }
}

/// Makes (or repairs) wsctl's account-wide role, then points the account's setting at it,
/// retrying while IAM has not yet made the new role assumable. Returns the role's ARN.
pub async fn apply(c: &Clients) -> Result<String> {
    let arn = ensure_role(c).await?;
    // API Gateway tries the role at once; a role IAM has not propagated yet is refused with
    // BadRequestException until it has.
    crate::retry::propagating(
        PROPAGATION,
        (Duration::from_secs(1), Duration::from_secs(8)),
        |e: &aws_sdk_apigateway::error::SdkError<
            aws_sdk_apigateway::operation::update_account::UpdateAccountError,
        >| {
            e.as_service_error()
                .is_some_and(|s| s.is_bad_request_exception())
        },
        |_, _| {},
        || {
            c.apigw_account
                .update_account()
                .patch_operations(
                    PatchOperation::builder()
                        .op(Op::Replace)
                        .path("/cloudwatchRoleArn")
                        .value(&arn)
                        .build(),
                )
                .send()
        },
    )
    .await
    .aws(format!("apigateway UpdateAccount cloudwatchRoleArn={arn}"))?;
    Ok(arn)
}

async fn ensure_role(c: &Clients) -> Result<String> {
    let name = ACCOUNT_LOG_ROLE;
    let existing = role::observe(c, name).await?;
    let arn = match &existing {
        Some(r) => {
            if !trusts_apigateway(&r.trust) {
                c.iam
                    .update_assume_role_policy()
                    .role_name(name)
                    .policy_document(trust_policy().to_string())
                    .send()
                    .await
                    .aws(format!("UpdateAssumeRolePolicy {name}"))?;
            }
            r.arn.clone()
        }
        None => {
            let tag = |k: &str, v: &str| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value are set")
            };
            let created = c
                .iam
                .create_role()
                .role_name(name)
                .assume_role_policy_document(trust_policy().to_string())
                .description("API Gateway's account-wide CloudWatch Logs role (set by wsctl; shared by every API in the account)")
                .tags(tag(MANAGED_BY_KEY, MANAGED_BY_VALUE))
                .tags(tag("Component", "ApiGatewayAccountLogging"))
                .send()
                .await;
            match created {
                Ok(out) => out.role.map(|r| r.arn).unwrap_or_default(),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_entity_already_exists_exception()) =>
                {
                    match role::observe(c, name).await? {
                        Some(r) => r.arn,
                        None => crate::fail!(
                            Failed,
                            "role {name} was created concurrently and then vanished"
                        ),
                    }
                }
                Err(e) => return Err(aws_error(format!("CreateRole {name}"), &e).into()),
            }
        }
    };
    if !existing
        .as_ref()
        .is_some_and(|r| r.attached.iter().any(|a| a == PUSH_TO_CLOUDWATCH_POLICY))
    {
        c.iam
            .attach_role_policy()
            .role_name(name)
            .policy_arn(PUSH_TO_CLOUDWATCH_POLICY)
            .send()
            .await
            .aws(format!(
                "AttachRolePolicy {name} AmazonAPIGatewayPushToCloudWatchLogs"
            ))?;
    }
    Ok(arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_gateway_must_be_trusted_to_assume_the_role() {
        assert!(trusts_apigateway(&trust_policy()));
        let lambda = json!({"Statement": {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}});
        assert!(!trusts_apigateway(&lambda));
        let denied = json!({"Statement": [{"Effect": "Deny", "Principal": {"Service": [APIGATEWAY_SERVICE]}, "Action": ["sts:AssumeRole"]}]});
        assert!(!trusts_apigateway(&denied));
        assert_eq!(role_name("arn:aws:iam::1:role/path/x/name"), "name");
    }
}
