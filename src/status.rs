//! `wsctl status`: every resource present / missing / drifted, and the wiring checks that make
//! deployed WebSocket stacks fail in practice. Read-only: it makes no write call.

use std::fmt;

use anyhow::Result;
use aws_sdk_dynamodb::types::Select;
use serde::Serialize;
use serde_json::Value;

use crate::config::Allow;
use crate::engine::{self, Observation, Stack};
use crate::resources::function::CodeSpec;
use crate::resources::{
    api, domain, grant, role, secret, statements, string_list, Action, AwsContext, Change,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Present,
    Missing,
    Drifted,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceStatus {
    pub resource: String,
    pub name: String,
    pub state: State,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Change>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub project: String,
    /// The environment (`--env`), when one was picked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    pub region: String,
    pub healthy: bool,
    pub websocket_url: Option<String>,
    pub callback_url: Option<String>,
    /// The CloudWatch dashboard in the console, when it exists.
    pub dashboard_url: Option<String>,
    /// Rows in the connections table (a full, paginated count).
    pub connections: Option<u64>,
    pub resources: Vec<ResourceStatus>,
    pub checks: Vec<Check>,
}

fn state(action: &Action) -> State {
    match action {
        Action::Create => State::Missing,
        Action::Update(_) | Action::Delete => State::Drifted,
        Action::NoChange => State::Present,
    }
}

pub async fn status(stack: &Stack) -> Result<StatusReport> {
    let obs = engine::observe(stack).await?;
    let plan = engine::plan(stack, &obs, &CodeSpec::Deployed)?;
    let resources: Vec<ResourceStatus> = plan
        .items
        .into_iter()
        .map(|i| ResourceStatus {
            state: state(&i.action),
            drift: match &i.action {
                Action::Delete => vec![Change::new(
                    "config",
                    "exists",
                    "not in the config (up deletes it)",
                )],
                a => a.changes().to_vec(),
            },
            resource: i.resource,
            name: i.name,
        })
        .collect();
    let mut checks = checks(stack, &obs);
    if let Some((name, problem)) = secret::check(&stack.clients, stack.config.auth.as_ref()).await?
    {
        checks.push(check(
            "jwt_secret_usable",
            problem.is_none(),
            problem.unwrap_or_else(|| {
                format!("SSM parameter {name} is a SecureString the function may read")
            }),
        ));
    }
    checks.extend(grant_checks(stack, &obs).await?);
    let connections = match &obs.table {
        Some(_) => Some(count_rows(stack).await?),
        None => None,
    };
    let api_id = obs.api.as_ref().map(|a| a.api.id.clone());
    let healthy =
        resources.iter().all(|r| r.state == State::Present) && checks.iter().all(|c| c.ok);
    Ok(StatusReport {
        project: stack.names.project.clone(),
        env: stack.config.env.clone(),
        region: stack.names.region.clone(),
        healthy,
        websocket_url: api_id.as_deref().map(|id| stack.names.websocket_url(id)),
        callback_url: api_id.as_deref().map(|id| stack.names.callback_url(id)),
        dashboard_url: obs.dashboard.as_ref().map(|_| stack.names.dashboard_url()),
        connections,
        resources,
        checks,
    })
}

async fn count_rows(stack: &Stack) -> Result<u64> {
    let mut total = 0u64;
    let mut start = None;
    loop {
        let out = stack
            .clients
            .dynamodb
            .scan()
            .table_name(&stack.names.table)
            .select(Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .aws(format!("Scan {} (count)", stack.names.table))?;
        total += out.count.max(0) as u64;
        start = out.last_evaluated_key;
        if start.is_none() {
            return Ok(total);
        }
    }
}

/// Whether an identity policy allows `action` on `resource` (Allow statements only; wsctl's
/// roles have no Deny).
fn allows(policy: &Value, action: &str, resource: &str) -> bool {
    statements(policy).iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && string_list(s.get("Action"))
                .iter()
                .any(|a| api::arn_like(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && string_list(s.get("Resource"))
                .iter()
                .any(|r| api::arn_like(r, resource))
    })
}

fn check(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok,
        detail: detail.into(),
    }
}

/// The named wiring checks.
pub fn checks(stack: &Stack, obs: &Observation) -> Vec<Check> {
    let n = &stack.names;
    let d_api = stack.desired_api();
    let mut out = Vec::new();
    let api_id = obs.api.as_ref().map(|a| a.api.id.as_str());

    // Routes -> integration -> function.
    match &obs.api {
        None => out.push(check(
            "routes_target_integration",
            false,
            "the API does not exist",
        )),
        Some(a) => {
            let integration = api::chosen_integration(a, &d_api);
            let want = integration.map(|i| format!("integrations/{}", i.id));
            let bad: Vec<String> = api::ROUTE_KEYS
                .iter()
                .filter_map(|key| {
                    let route = a.routes.iter().find(|r| r.key == *key);
                    match (route, &want) {
                        (None, _) => Some(format!("{key} is missing")),
                        (Some(r), Some(w)) if r.target.as_ref() == Some(w) => None,
                        (Some(r), _) => Some(format!(
                            "{key} targets {}",
                            r.target.as_deref().unwrap_or("nothing")
                        )),
                    }
                })
                .collect();
            out.push(check(
                "routes_target_integration",
                bad.is_empty() && want.is_some(),
                if bad.is_empty() && want.is_some() {
                    format!(
                        "$connect, $disconnect and $default target {}",
                        want.unwrap_or_default()
                    )
                } else if want.is_none() {
                    "no AWS_PROXY integration invokes the function".into()
                } else {
                    bad.join("; ")
                },
            ));
            out.push(match integration {
                Some(i) if i.uri == d_api.integration_uri => check(
                    "integration_targets_function",
                    true,
                    format!("integration {} invokes {}", i.id, n.function),
                ),
                Some(i) => check(
                    "integration_targets_function",
                    false,
                    format!(
                        "integration {} has URI {}; expected {}",
                        i.id, i.uri, d_api.integration_uri
                    ),
                ),
                None => check(
                    "integration_targets_function",
                    false,
                    "no integration invokes the function",
                ),
            });
        }
    }

    // The Lambda permission (without it browsers see only "Internal server error").
    out.push(match api_id {
        None => check("permission_covers_api", false, "the API does not exist"),
        Some(id) => {
            let covering: Vec<&api::Statement> = obs
                .permission
                .iter()
                .filter(|s| api::is_apigateway_invoke(s) && api::covers(s.source_arn.as_deref(), n, id))
                .collect();
            match covering.first() {
                Some(s) => check(
                    "permission_covers_api",
                    true,
                    format!("statement {} allows {}", s.sid, s.source_arn.as_deref().unwrap_or("any source")),
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
    });

    // What the role may do.
    match &obs.role {
        None => {
            out.push(check(
                "role_can_manage_connections",
                false,
                "the role does not exist",
            ));
            out.push(check(
                "role_can_use_table",
                false,
                "the role does not exist",
            ));
            out.push(check("role_can_fan_out", false, "the role does not exist"));
        }
        Some(r) => {
            let inline: Vec<&Value> = r.inline.values().collect();
            out.push(match api_id {
                None => check(
                    "role_can_manage_connections",
                    false,
                    "the API does not exist",
                ),
                Some(id) => {
                    let target = format!(
                        "{}/{}/POST/@connections/probe",
                        n.execute_api_arn(id),
                        n.stage
                    );
                    let ok = inline
                        .iter()
                        .any(|p| allows(p, "execute-api:ManageConnections", &target));
                    check(
                        "role_can_manage_connections",
                        ok,
                        if ok {
                            format!("execute-api:ManageConnections on {id}/{}", n.stage)
                        } else {
                            format!(
                                "no policy of {} allows execute-api:ManageConnections on {id}/{}",
                                r.name, n.stage
                            )
                        },
                    )
                }
            });
            let full_access = r
                .attached
                .iter()
                .any(|a| a.ends_with("/AmazonDynamoDBFullAccess"));
            let missing: Vec<&str> = role::TABLE_ACTIONS
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
            let needs = role::SUBSCRIPTIONS_ACTIONS
                .iter()
                .map(|a| (*a, n.dynamodb_table_arn(&n.subscriptions_table)))
                .chain(
                    role::BROADCASTS_ACTIONS
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
        }
    }

    // The function's environment names this stack.
    out.push(match &obs.function {
        None => check("function_environment", false, "the function does not exist"),
        Some(f) => {
            let mut wrong = Vec::new();
            let want = [
                ("CONNECTIONS_TABLE", Some(n.table.as_str())),
                ("SUBSCRIPTIONS_TABLE", Some(n.subscriptions_table.as_str())),
                ("BROADCASTS_TABLE", Some(n.broadcasts_table.as_str())),
                ("WEBSOCKET_API_ID", api_id),
                ("WEBSOCKET_STAGE", Some(n.stage.as_str())),
            ];
            for (k, v) in want {
                let actual = f.environment.get(k).map(String::as_str);
                if actual != v {
                    wrong.push(format!(
                        "{k}={} (expected {})",
                        actual.unwrap_or("unset"),
                        v.unwrap_or("the API id")
                    ));
                }
            }
            check(
                "function_environment",
                wrong.is_empty(),
                if wrong.is_empty() {
                    "names this stack's tables, API and stage".to_owned()
                } else {
                    wrong.join("; ")
                },
            )
        }
    });

    out.push(match &obs.table {
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
    });
    out.extend(logging_checks(stack, obs));
    out.extend(domain_checks(stack, obs));
    out.push(match obs.api.as_ref().and_then(|a| a.stage.as_ref()) {
        None => check(
            "stage_auto_deploys",
            false,
            format!("stage {} does not exist", n.stage),
        ),
        Some(s) if s.auto_deploy => check(
            "stage_auto_deploys",
            true,
            format!("stage {} auto-deploys", n.stage),
        ),
        Some(_) => check(
            "stage_auto_deploys",
            false,
            format!(
                "stage {} does not auto-deploy: route changes never go live",
                n.stage
            ),
        ),
    });
    out
}

/// Each `[[grant]]`, and whether what it allows is in effect: `broadcast` by the function's
/// resource policy; `manage_connections` by the role's own policies, read when the role is in
/// this account (a role in another account cannot be read from here: its check says so).
async fn grant_checks(stack: &Stack, obs: &Observation) -> Result<Vec<Check>> {
    let n = &stack.names;
    let api_id = obs.api.as_ref().map(|a| a.api.id.as_str());
    let mut out = Vec::new();
    for g in &stack.config.grants {
        if g.allow.contains(&Allow::Broadcast) {
            let ok = !grant::diff(&obs.permission, g).is_change();
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
            match grant::role_policies(&stack.clients, g.role_name()).await? {
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

/// With `[domain]`: the certificate is ISSUED and covers the name, the domain's root maps to
/// this API and stage, and (in a managed zone) the alias record targets the domain.
fn domain_checks(stack: &Stack, obs: &Observation) -> Vec<Check> {
    let (Some(d), Some(o)) = (&stack.config.domain, &obs.domain) else {
        return Vec::new();
    };
    let n = &stack.names;
    let mut out = vec![match domain::certificate_problem(o, d, &n.region) {
        None => check(
            "certificate_covers_domain",
            true,
            format!("{} is ISSUED and covers {}", d.certificate_arn, d.name),
        ),
        Some(problem) => check("certificate_covers_domain", false, problem),
    }];
    let api_id = obs.api.as_ref().map(|a| a.api.id.as_str());
    out.push(
        match (o.domain.as_ref(), domain::root_mapping(o.domain.as_ref())) {
            (None, _) => check(
                "domain_maps_to_stage",
                false,
                format!("the domain name {} does not exist", d.name),
            ),
            (Some(_), None) => check(
                "domain_maps_to_stage",
                false,
                format!("{} has no mapping at its root", d.name),
            ),
            (Some(_), Some(m)) if Some(m.api_id.as_str()) == api_id && m.stage == n.stage => check(
                "domain_maps_to_stage",
                true,
                format!("{} maps to {}/{}", d.name, m.api_id, m.stage),
            ),
            (Some(_), Some(m)) => check(
                "domain_maps_to_stage",
                false,
                format!(
                    "{} maps to {}/{}; expected this API's stage {}",
                    d.name, m.api_id, m.stage, n.stage
                ),
            ),
        },
    );
    if let Some(zone) = &d.hosted_zone_id {
        let target = o.domain.as_ref().and_then(|x| x.target.as_deref());
        let record = o.record.as_ref().and_then(|r| r.target.as_deref());
        out.push(match (target, record) {
            (Some(t), Some(r)) if t == r => check(
                "dns_targets_domain",
                true,
                format!("{} in {zone} is an alias of {t}", d.name),
            ),
            (_, None) => check(
                "dns_targets_domain",
                false,
                format!("{zone} has no alias record for {}", d.name),
            ),
            (t, Some(r)) => check(
                "dns_targets_domain",
                false,
                format!(
                    "{} in {zone} points at {r}; expected {}",
                    d.name,
                    t.unwrap_or("the domain's target")
                ),
            ),
        });
    }
    out
}

/// When the config asks for API Gateway's logs: whether they can flow (the account's role is
/// set and API Gateway may assume it) and whether the stage writes its access log where wsctl
/// made the log group.
fn logging_checks(stack: &Stack, obs: &Observation) -> Vec<Check> {
    let logging = &stack.config.api.logging;
    let n = &stack.names;
    let mut out = Vec::new();
    if !logging.any() {
        return out;
    }
    out.push(match obs.account.as_ref().map(|a| (a.problem(), a)) {
        None => check(
            "api_logs_can_flow",
            false,
            "the account setting was not read",
        ),
        Some((None, a)) => check(
            "api_logs_can_flow",
            true,
            format!(
                "API Gateway's CloudWatch role in {} is {}, assumable by apigateway.amazonaws.com",
                n.region,
                a.role_arn.as_deref().unwrap_or_default()
            ),
        ),
        Some((Some(problem), _)) => check(
            "api_logs_can_flow",
            false,
            format!(
                "{problem}: API Gateway writes no log for any API in {}",
                n.region
            ),
        ),
    });
    if logging.access_log {
        let want = n.log_group_arn(&n.access_log_group);
        let stage = obs.api.as_ref().and_then(|a| a.stage.as_ref());
        let have = stage.and_then(|s| s.access_log.as_ref());
        out.push(match (stage, have) {
            (None, _) => check(
                "stage_writes_access_log",
                false,
                format!("stage {} does not exist", n.stage),
            ),
            (Some(_), Some(a)) if a.destination_arn == want && obs.access_log_group.is_some() => {
                check(
                    "stage_writes_access_log",
                    true,
                    format!(
                        "stage {} logs every request to {}",
                        n.stage, n.access_log_group
                    ),
                )
            }
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
        });
    }
    out
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Project {} in {}",
            crate::naming::label(&self.project, self.env.as_deref()),
            self.region
        )?;
        for r in &self.resources {
            let state = match r.state {
                State::Present => "present",
                State::Missing => "MISSING",
                State::Drifted => "DRIFTED",
            };
            writeln!(f, "  {:<18} {:<44} {state}", r.resource, r.name)?;
            for c in &r.drift {
                writeln!(f, "      {}: is {}, config says {}", c.field, c.from, c.to)?;
            }
        }
        writeln!(f, "Checks:")?;
        for c in &self.checks {
            writeln!(
                f,
                "  {} {:<28} {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            )?;
        }
        if let Some(url) = &self.websocket_url {
            writeln!(f, "WebSocket URL: {url}")?;
        }
        if let Some(url) = &self.dashboard_url {
            writeln!(f, "Dashboard:     {url}")?;
        }
        if let Some(n) = self.connections {
            writeln!(f, "Connections:   {n}")?;
        }
        writeln!(
            f,
            "{}",
            if self.healthy {
                "Healthy: every resource is present and wired as configured."
            } else {
                "Unhealthy: run `wsctl up` to create what is missing and repair the drift."
            }
        )
    }
}
