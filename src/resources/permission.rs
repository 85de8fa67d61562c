//! The function's resource policy statements that let API Gateway invoke it: wsctl's own
//! (Sid `wsctl-apigateway-invoke`), scoped to this API's stage (the runbook's API-wide
//! statement is replaced by it), and with `[auth]` the authorizer's (Sid
//! `wsctl-apigateway-authorizer`, scoped to this API's authorizer). Also how any statement of
//! a function's policy is read, added and removed (the grants' and the routes' too).

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::Value;

use super::function::Function;
use super::shape::{
    check, down_item, ready, Action, Change, Check, Ctx, DownItem, Ids, Kind, Observation, Plan,
    PlanItem, Resource, Teardown, KNOWN_AFTER_APPLY,
};
use crate::aws::{aws_error, send_unrepeated, Clients};
use crate::error::Result;
use crate::iam::{arn_like, statements, string_list};
use crate::naming::{Names, AUTHORIZER_SID, PERMISSION_SID};

pub const APIGATEWAY_PRINCIPAL: &str = "apigateway.amazonaws.com";

/// One statement of the function's resource policy.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Statement {
    pub sid: String,
    pub principal: String,
    pub action: Vec<String>,
    pub source_arn: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub function: String,
    /// Any route of this API's stage (once the API's id is known).
    pub source_arn: Option<String>,
    /// The API's id, when known.
    pub api_id: Option<String>,
    /// The authorizer's statement: None without `[auth]`; `Some(None)` while the authorizer's
    /// id is not known yet.
    pub authorizer_source_arn: Option<Option<String>>,
}

/// API Gateway's permission to invoke the function.
pub struct Permission;

impl Resource for Permission {
    type Desired = Desired;
    /// Every statement of the function's resource policy.
    type Observed = Vec<Statement>;

    fn desired(cx: &Ctx) -> Desired {
        let n = &cx.stack.names;
        Desired {
            function: n.function.clone(),
            source_arn: cx
                .ids
                .api_id
                .as_deref()
                .map(|id| n.permission_source_arn(id)),
            api_id: cx.ids.api_id.clone(),
            authorizer_source_arn: cx.stack.config.auth.as_ref().map(|_| {
                match (&cx.ids.api_id, &cx.ids.authorizer_id) {
                    (Some(api), Some(au)) => Some(n.authorizer_source_arn(api, au)),
                    _ => None,
                }
            }),
        }
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(observe(&cx.stack.clients, &cx.stack.names.function))
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        Ok(vec![PlanItem::new(
            Kind::Permission,
            PERMISSION_SID,
            diff(observed, desired),
        )])
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Desired,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            if plan.action(&Kind::Permission).is_change() {
                apply(&cx.stack.clients, observed, desired).await?;
            }
            Ok(Ids::default())
        })
    }

    /// With the function, its policy goes; a function left alone loses wsctl's statement.
    fn teardown(cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        let function = &cx.stack.names.function;
        if Function::teardown(cx, obs, adopt).delete.is_empty() {
            for sid in [PERMISSION_SID, AUTHORIZER_SID] {
                if obs.get::<Permission>().iter().any(|s| s.sid == sid) {
                    t.delete.push(down_item(
                        Kind::Permission,
                        format!("{sid} on {function}"),
                        sid,
                    ));
                }
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

    /// `permission_covers_api`: without it browsers see only "Internal server error".
    fn checks<'a>(cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        let n = &cx.stack.names;
        let api_id = cx.ids.api_id.as_deref();
        ready(vec![match api_id {
            None => check("permission_covers_api", false, "the API does not exist"),
            Some(id) => {
                let covering = obs
                    .get::<Permission>()
                    .iter()
                    .find(|s| is_apigateway_invoke(s) && covers(s.source_arn.as_deref(), n, id));
                match covering {
                    Some(s) => check(
                        "permission_covers_api",
                        true,
                        format!(
                            "statement {} allows {}",
                            s.sid,
                            s.source_arn.as_deref().unwrap_or("any source")
                        ),
                    ),
                    None => check(
                        "permission_covers_api",
                        false,
                        format!(
                            "no statement lets apigateway.amazonaws.com invoke {} from API {id} (clients get \"Internal server error\")",
                            n.function
                        ),
                    ),
                }
            }
        }])
    }
}

/// The function's resource policy statements (none when it has no policy or does not exist).
pub async fn observe(c: &Clients, function: &str) -> Result<Vec<Statement>> {
    let out = match c.lambda.get_policy().function_name(function).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Ok(vec![])
        }
        Err(e) => return Err(aws_error(format!("GetPolicy {function}"), &e).into()),
    };
    let policy: Value = out
        .policy
        .as_deref()
        .map(|p| serde_json::from_str(p).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    Ok(statements(&policy)
        .iter()
        .map(|s| Statement {
            sid: s
                .get("Sid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            principal: match s.get("Principal") {
                Some(Value::Object(p)) => {
                    string_list(p.get("Service").or_else(|| p.get("AWS"))).join(",")
                }
                Some(Value::String(p)) => p.clone(),
                _ => String::new(),
            },
            action: string_list(s.get("Action")),
            source_arn: s
                .get("Condition")
                .and_then(|c| c.get("ArnLike").or_else(|| c.get("ArnEquals")))
                .and_then(|c| c.get("AWS:SourceArn"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
        .collect())
}

/// Whether a statement lets `principal` invoke the function.
pub fn grants_invoke(s: &Statement, principal: &str) -> bool {
    s.principal.split(',').any(|p| p == principal)
        && s.action
            .iter()
            .any(|a| a == "lambda:InvokeFunction" || a == "lambda:*")
}

/// Whether a statement lets API Gateway invoke the function.
pub fn is_apigateway_invoke(s: &Statement) -> bool {
    grants_invoke(s, APIGATEWAY_PRINCIPAL)
}

/// Whether `source_arn` (an ARN pattern) covers invocations through `api_id`'s `stage`.
pub fn covers(source_arn: Option<&str>, names: &Names, api_id: &str) -> bool {
    let Some(pattern) = source_arn else {
        return true; // no condition: any API may invoke (too broad, but it works)
    };
    let probe = format!("{}/{}/$connect", names.execute_api_arn(api_id), names.stage);
    arn_like(pattern, &probe)
}

/// Statements that grant API Gateway this API but are not wsctl's (the runbook's, scoped to
/// the whole API): replaced by wsctl's scoped one.
pub fn stray_statements<'a>(
    statements: &'a [Statement],
    api_id: Option<&str>,
) -> Vec<&'a Statement> {
    statements
        .iter()
        .filter(|s| s.sid != PERMISSION_SID && s.sid != AUTHORIZER_SID && is_apigateway_invoke(s))
        .filter(|s| match (api_id, &s.source_arn) {
            (Some(id), Some(arn)) => arn.contains(&format!(":{id}/")),
            _ => false,
        })
        .collect()
}

pub fn diff(statements: &[Statement], d: &Desired) -> Action {
    let mine: Vec<&Statement> = statements
        .iter()
        .filter(|s| s.sid == PERMISSION_SID)
        .collect();
    let strays = stray_statements(statements, d.api_id.as_deref());
    let mut changes = Vec::new();
    match (mine.first(), &d.source_arn) {
        (None, _) if strays.is_empty() => return Action::Create,
        (None, w) => changes.push(Change::new(
            format!("statement.{PERMISSION_SID}"),
            "(none)",
            w.as_deref().unwrap_or(KNOWN_AFTER_APPLY),
        )),
        (Some(s), Some(w)) if s.source_arn.as_ref() != Some(w) || !is_apigateway_invoke(s) => {
            changes.push(Change::new(
                "source_arn",
                s.source_arn.as_deref().unwrap_or("(any)"),
                w,
            ))
        }
        (Some(_), None) => changes.push(Change::new(
            "source_arn",
            "(another API)",
            KNOWN_AFTER_APPLY,
        )),
        _ => {}
    }
    if mine.len() > 1 {
        changes.push(Change::new("duplicate_statements", mine.len(), 1));
    }
    for s in strays {
        changes.push(Change::new(
            format!("statement.{}", s.sid),
            s.source_arn.as_deref().unwrap_or("(any)"),
            "(removed)",
        ));
    }
    let authorizer = statements.iter().find(|s| s.sid == AUTHORIZER_SID);
    let field = format!("statement.{AUTHORIZER_SID}");
    let has = |s: &Statement| s.source_arn.clone().unwrap_or_else(|| "(any)".into());
    match (authorizer, &d.authorizer_source_arn) {
        (None, Some(want)) => changes.push(Change::new(
            field,
            "(none)",
            want.as_deref().unwrap_or(KNOWN_AFTER_APPLY),
        )),
        (Some(s), Some(Some(want)))
            if s.source_arn.as_ref() != Some(want) || !is_apigateway_invoke(s) =>
        {
            changes.push(Change::new(field, has(s), want))
        }
        (Some(s), None) => changes.push(Change::new(field, has(s), "(removed)")),
        _ => {}
    }
    Action::from_changes(changes)
}

/// Leaves exactly one statement letting API Gateway invoke the function: wsctl's, scoped to
/// this API's stage (the API's id is known by now).
async fn apply(c: &Clients, statements: &[Statement], d: &Desired) -> Result<()> {
    let function = &d.function;
    let want = d
        .source_arn
        .as_deref()
        .expect("the API's id is known when the permission is applied");
    let mine: Vec<&Statement> = statements
        .iter()
        .filter(|s| s.sid == PERMISSION_SID)
        .collect();
    let mine_ok = mine.len() == 1
        && mine[0].source_arn.as_deref() == Some(want)
        && is_apigateway_invoke(mine[0]);
    for s in stray_statements(statements, d.api_id.as_deref()) {
        remove_statement(c, function, &s.sid).await?;
    }
    if !mine_ok {
        if !mine.is_empty() {
            remove_statement(c, function, PERMISSION_SID).await?;
        }
        add_invoke_statement(
            c,
            function,
            PERMISSION_SID,
            APIGATEWAY_PRINCIPAL,
            Some(want),
        )
        .await?;
    }
    let authorizer = statements.iter().find(|s| s.sid == AUTHORIZER_SID);
    match (authorizer, &d.authorizer_source_arn) {
        (Some(s), Some(Some(want)))
            if s.source_arn.as_ref() == Some(want) && is_apigateway_invoke(s) => {}
        (existing, Some(Some(want))) => {
            if existing.is_some() {
                remove_statement(c, function, AUTHORIZER_SID).await?;
            }
            add_invoke_statement(
                c,
                function,
                AUTHORIZER_SID,
                APIGATEWAY_PRINCIPAL,
                Some(want),
            )
            .await?;
        }
        (Some(_), None) => remove_statement(c, function, AUTHORIZER_SID).await?,
        (_, Some(None)) => {
            return Err(crate::error::Error::Failed(
                "internal: the authorizer's statement needs the authorizer's id".into(),
            ))
        }
        (None, None) => {}
    }
    Ok(())
}

/// Adds a statement letting `principal` invoke `function` (from `source_arn`, when given).
/// AWS refuses a second statement with the same Sid; emulators may add one. Either way the
/// engine's next pass, not a blind retry, deals with a lost answer.
pub async fn add_invoke_statement(
    c: &Clients,
    function: &str,
    sid: &str,
    principal: &str,
    source_arn: Option<&str>,
) -> Result<()> {
    send_unrepeated(format!("AddPermission {function} {sid}"), || {
        c.lambda
            .add_permission()
            .function_name(function)
            .statement_id(sid)
            .action("lambda:InvokeFunction")
            .principal(principal)
            .set_source_arn(source_arn.map(str::to_owned))
            .customize()
            .config_override(
                aws_sdk_lambda::config::Builder::default()
                    .retry_config(aws_config::retry::RetryConfig::disabled()),
            )
            .send()
    })
    .await?;
    Ok(())
}

/// Removes statement `sid` from the function's policy; one already gone is success.
pub async fn remove_statement(c: &Clients, function: &str, sid: &str) -> Result<()> {
    match c
        .lambda
        .remove_permission()
        .function_name(function)
        .statement_id(sid)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(aws_error(format!("RemovePermission {function} {sid}"), &e).into()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    fn statement(sid: &str, source_arn: Option<&str>) -> Statement {
        Statement {
            sid: sid.into(),
            principal: APIGATEWAY_PRINCIPAL.into(),
            action: vec!["lambda:InvokeFunction".into()],
            source_arn: source_arn.map(str::to_owned),
        }
    }

    #[test]
    fn the_runbooks_api_wide_statement_is_replaced_by_a_stage_scoped_one() {
        let config = Config::parse(Path::new("wsctl.toml"), "project = \"shop\"").unwrap();
        let n = Names::new(&config, "us-east-1", "123456789012");
        let d = Desired {
            function: n.function.clone(),
            source_arn: Some(n.permission_source_arn("abc")),
            api_id: Some("abc".into()),
            authorizer_source_arn: None,
        };
        let runbook = [statement(
            "apigateway-invoke",
            Some("arn:aws:execute-api:us-east-1:123456789012:abc/*"),
        )];
        let fields: Vec<String> = diff(&runbook, &d)
            .changes()
            .iter()
            .map(|c| c.field.clone())
            .collect();
        assert_eq!(
            fields,
            [
                format!("statement.{PERMISSION_SID}"),
                "statement.apigateway-invoke".into()
            ]
        );
        assert_eq!(diff(&[], &d), Action::Create);
        let mine = [statement(PERMISSION_SID, d.source_arn.as_deref())];
        assert_eq!(diff(&mine, &d), Action::NoChange);
        assert!(covers(d.source_arn.as_deref(), &n, "abc"));
        assert!(!covers(d.source_arn.as_deref(), &n, "other"));
        let twice = [mine[0].clone(), mine[0].clone()];
        assert!(diff(&twice, &d).has("duplicate_statements"));
    }
}
