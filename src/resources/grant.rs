//! `[[grant]]`: IAM roles outside the stack (other Lambdas, a FastAPI service) that may push.
//! wsctl never edits a role it does not own. `broadcast` becomes a statement of the function's
//! resource policy (AWS has one for Lambda): a statement per role, Sid `wsctl-grant-...`, that
//! `up` adds and removes with the config. `manage_connections` has no resource policy to use
//! (WebSocket APIs have none), so wsctl writes the identity policy the role's owner attaches
//! (`wsctl grant --print ROLE`, [`identity_policy`]), and `status` checks whether it is there.

use futures::future::BoxFuture;
use serde_json::{json, Value};

use super::function::Function;
use super::permission::{self, add_invoke_statement, grants_invoke, remove_statement, Statement};
use super::shape::{
    check, down_item, Action, Change, Check, Ctx, DownItem, Ids, Kind, Observation, Plan, PlanItem,
    Resource, Teardown,
};
use crate::aws::{AwsContext, Clients};
use crate::config::{Allow, Grant};
use crate::error::Result;
use crate::iam::{allows, decode_policy};
use crate::naming::Names;

/// The `[[grant]]`s' statements on the function's resource policy.
pub struct Grants;

impl Resource for Grants {
    type Desired = Vec<Grant>;
    /// Every statement of the function's resource policy.
    type Observed = Vec<Statement>;

    fn desired(cx: &Ctx) -> Vec<Grant> {
        cx.stack.config.grants.clone()
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(permission::observe(
            &cx.stack.clients,
            &cx.stack.names.function,
        ))
    }

    /// An item per grant that allows broadcast (or whose statement must go), and one per
    /// statement no grant asks for any more.
    fn diff(observed: &Self::Observed, desired: &Vec<Grant>) -> Result<Vec<PlanItem>> {
        let mut items = Vec::new();
        for g in desired {
            let action = diff(observed, g);
            if g.allow.contains(&Allow::Broadcast) || action.is_change() {
                items.push(PlanItem::new(
                    Kind::Grant(g.principal.clone()),
                    &g.principal,
                    action,
                ));
            }
        }
        for s in strays(observed, desired) {
            items.push(PlanItem::new(
                Kind::Grant(s.principal.clone()),
                format!("{} (no longer granted)", s.principal),
                Action::Delete,
            ));
        }
        Ok(items)
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Vec<Grant>,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            if plan.changes_any(|k| matches!(k, Kind::Grant(_))) {
                apply(
                    &cx.stack.clients,
                    &cx.stack.names.function,
                    observed,
                    desired,
                )
                .await?;
            }
            Ok(Ids::default())
        })
    }

    /// With the function, its policy goes; a function left alone keeps none of wsctl's grants.
    fn teardown(cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        if Function::teardown(cx, obs, adopt).delete.is_empty() {
            for s in obs
                .get::<Grants>()
                .iter()
                .filter(|s| s.sid.starts_with(SID_PREFIX))
            {
                t.delete.push(down_item(
                    Kind::Grant(s.principal.clone()),
                    format!("{} on {}", s.sid, cx.stack.names.function),
                    &s.sid,
                ));
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
                remove_statement(&cx.stack.clients, &cx.stack.names.function, &item.id).await?;
            }
            Ok(())
        })
    }

    /// Each `[[grant]]`, and whether what it allows is in effect: `broadcast` by the
    /// function's resource policy; `manage_connections` by the role's own policies, read when
    /// the role is in this account (a role in another account cannot be read from here: its
    /// check says so).
    fn checks<'a>(cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        Box::pin(checks(cx, obs))
    }
}

async fn checks(cx: &Ctx<'_>, obs: &Observation) -> Result<Vec<Check>> {
    let n = &cx.stack.names;
    let api_id = cx.ids.api_id.as_deref();
    let statements = obs.get::<Grants>();
    let mut out = Vec::new();
    for g in &cx.stack.config.grants {
        if g.allow.contains(&Allow::Broadcast) {
            let ok = !diff(statements, g).is_change();
            out.push(check(
                "grant_broadcast",
                ok,
                if ok {
                    format!(
                        "{} may invoke {} (the function's resource policy)",
                        g.principal, n.function
                    )
                } else {
                    format!(
                        "the function's resource policy does not let {} invoke it",
                        g.principal
                    )
                },
            ));
        }
        if !g.allow.contains(&Allow::ManageConnections) {
            continue;
        }
        let Some(id) = api_id else {
            out.push(check(
                "grant_manage_connections",
                false,
                "the API does not exist",
            ));
            continue;
        };
        let probe = format!(
            "{}/{}/POST/@connections/probe",
            n.execute_api_arn(id),
            n.stage
        );
        let fix = format!("its owner attaches `wsctl grant --print {}`", g.role_name());
        out.push(if g.account() != n.account {
            check(
                "grant_manage_connections",
                true,
                format!(
                    "{} is in account {}: not checked from this account ({fix})",
                    g.principal,
                    g.account()
                ),
            )
        } else {
            match role_policies(&cx.stack.clients, g.role_name()).await? {
                None => check(
                    "grant_manage_connections",
                    false,
                    format!("{} does not exist", g.principal),
                ),
                Some(docs)
                    if docs
                        .iter()
                        .any(|d| allows(d, "execute-api:ManageConnections", &probe)) =>
                {
                    check(
                        "grant_manage_connections",
                        true,
                        format!(
                            "{} may call the management API of {id}/{}",
                            g.principal, n.stage
                        ),
                    )
                }
                Some(_) => check(
                    "grant_manage_connections",
                    false,
                    format!(
                        "no policy of {} allows execute-api:ManageConnections on {id}/{}: {fix}",
                        g.principal, n.stage
                    ),
                ),
            }
        });
    }
    Ok(out)
}

/// Every statement wsctl adds for a grant has a Sid starting so.
pub const SID_PREFIX: &str = "wsctl-grant-";

/// The Sid of a grant's statement: the role's name (as far as a Sid allows) and a hash of its
/// whole ARN, so that two roles of the same name in two accounts differ.
pub fn sid(principal: &str) -> String {
    let name: String = principal
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let hash = principal.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    format!("{SID_PREFIX}{name}-{:08x}", hash as u32)
}

/// What `up` does for one grant's statement.
pub fn diff(statements: &[Statement], grant: &Grant) -> Action {
    let mine = statements.iter().find(|s| s.sid == sid(&grant.principal));
    match (grant.allow.contains(&Allow::Broadcast), mine) {
        (true, None) => Action::Create,
        (true, Some(s)) if grants_invoke(s, &grant.principal) => Action::NoChange,
        (true, Some(s)) => Action::Update(vec![Change::new(
            "principal",
            &s.principal,
            &grant.principal,
        )]),
        (false, Some(_)) => Action::Delete,
        (false, None) => Action::NoChange,
    }
}

/// wsctl's grant statements that no `[[grant]]` with `broadcast` asks for any more.
pub fn strays<'a>(statements: &'a [Statement], grants: &[Grant]) -> Vec<&'a Statement> {
    statements
        .iter()
        .filter(|s| s.sid.starts_with(SID_PREFIX))
        .filter(|s| {
            !grants
                .iter()
                .any(|g| g.allow.contains(&Allow::Broadcast) && sid(&g.principal) == s.sid)
        })
        .collect()
}

/// Adds the missing statements and removes the ones no longer granted. Returns whether it
/// wrote.
async fn apply(
    c: &Clients,
    function: &str,
    statements: &[Statement],
    grants: &[Grant],
) -> Result<bool> {
    let mut wrote = false;
    for s in strays(statements, grants) {
        remove_statement(c, function, &s.sid).await?;
        wrote = true;
    }
    for g in grants {
        let action = diff(statements, g);
        if matches!(action, Action::Update(_) | Action::Delete) {
            remove_statement(c, function, &sid(&g.principal)).await?;
            wrote = true;
        }
        if matches!(action, Action::Create | Action::Update(_)) {
            add_invoke_statement(c, function, &sid(&g.principal), &g.principal, None).await?;
            wrote = true;
        }
    }
    Ok(wrote)
}

/// The management API's calls a `manage_connections` grant covers: POST, GET and DELETE on
/// this API and stage's connections.
pub fn connections_arn(names: &Names, api_id: &str) -> String {
    format!(
        "{}/{}/*/@connections/*",
        names.execute_api_arn(api_id),
        names.stage
    )
}

/// The identity policy the role's owner attaches for `grant`: what it allows, on this stack
/// alone. (`broadcast` is covered by the function's resource policy in the same account; a
/// role in another account needs this statement too.)
pub fn identity_policy(names: &Names, api_id: &str, grant: &Grant) -> Value {
    let mut statements = Vec::new();
    if grant.allow.contains(&Allow::Broadcast) {
        statements.push(json!({
            "Sid": "InvokeWebSocketFunction",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": names.function_arn()
        }));
    }
    if grant.allow.contains(&Allow::ManageConnections) {
        statements.push(json!({
            "Sid": "ManageWebSocketConnections",
            "Effect": "Allow",
            "Action": "execute-api:ManageConnections",
            "Resource": connections_arn(names, api_id)
        }));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The policy documents of a role in this account (inline, and the default version of each
/// attached managed policy); None when the role does not exist.
pub async fn role_policies(c: &Clients, role_name: &str) -> Result<Option<Vec<Value>>> {
    let Some(role) = super::role::observe(c, role_name).await? else {
        return Ok(None);
    };
    let mut docs: Vec<Value> = role.inline.values().cloned().collect();
    for arn in &role.attached {
        let policy = c
            .iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .aws(format!("GetPolicy {arn}"))?;
        let Some(version) = policy.policy.and_then(|p| p.default_version_id) else {
            continue;
        };
        let doc = c
            .iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(&version)
            .send()
            .await
            .aws(format!("GetPolicyVersion {arn} {version}"))?
            .policy_version
            .and_then(|v| v.document)
            .map(|d| decode_policy(&d));
        docs.extend(doc);
    }
    Ok(Some(docs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_valid_and_tell_roles_apart() {
        let a = sid("arn:aws:iam::111111111111:role/service-role/orders.api");
        let b = sid("arn:aws:iam::222222222222:role/orders.api");
        assert!(a.starts_with("wsctl-grant-orders_api-"), "{a}");
        assert_ne!(a, b);
        assert!(
            a.len() <= 100
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
