//! The plan: what each resource should be (the desired state, from the config and names) and
//! what `up` must do to each, from an observation. Pure: it reads nothing and writes nothing.

use anyhow::Result;
use serde::Serialize;

use super::{Observation, Stack};
use crate::naming;
use crate::resources::function::CodeSpec;
use crate::resources::{
    account, alarm, api, dashboard, domain, function, grant, logs, role, table, Action,
};

/// What `up` does to one resource.
#[derive(Debug, Clone, Serialize)]
pub struct PlanItem {
    pub resource: String,
    pub name: String,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub items: Vec<PlanItem>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.items.iter().all(|i| !i.action.is_change())
    }

    pub(super) fn get(&self, resource: &str) -> &Action {
        self.items
            .iter()
            .find(|i| i.resource == resource)
            .map(|i| &i.action)
            .unwrap_or(&Action::NoChange)
    }
}

impl Stack {
    pub fn desired_table(&self) -> table::Desired {
        self.desired_table_of(table::Kind::Connections)
    }

    /// One of the stack's tables: the connections, the subscriptions index or the broadcasts.
    pub fn desired_table_of(&self, kind: table::Kind) -> table::Desired {
        let name = match kind {
            table::Kind::Connections => &self.names.table,
            table::Kind::Subscriptions => &self.names.subscriptions_table,
            table::Kind::Broadcasts => &self.names.broadcasts_table,
        };
        table::Desired {
            name: name.clone(),
            kind,
            tags: self.tags.clone(),
        }
    }

    pub fn desired_role(&self, api_id: Option<&str>) -> role::Desired {
        role::desired(
            &self.names,
            api_id,
            self.config.auth.as_ref(),
            self.tags.clone(),
        )
    }

    pub fn desired_function(&self, api_id: Option<&str>, code: CodeSpec) -> function::Desired {
        function::desired(&self.config, &self.names, api_id, code, self.tags.clone())
    }

    pub fn desired_api(&self) -> api::Desired {
        api::desired(&self.config, &self.names, self.tags.clone())
    }

    /// The alarm, when `[alarm]` asks for one.
    pub fn desired_alarm(&self) -> Option<alarm::Desired> {
        self.config.alarm.as_ref().map(|a| alarm::Desired {
            name: self.names.alarm.clone(),
            function: self.names.function.clone(),
            config: a.clone(),
            tags: self.tags.clone(),
        })
    }

    /// API Gateway's access log group, when `[api] access_log` asks for it.
    pub fn desired_access_logs(&self) -> Option<logs::Desired> {
        let logging = &self.config.api.logging;
        logging.access_log.then(|| logs::Desired {
            name: self.names.access_log_group.clone(),
            retention_days: logging.log_retention_days,
            tags: self.tags.clone(),
        })
    }

    /// The dashboard, when `[dashboard]` asks for one; its body once the API id is known.
    pub fn desired_dashboard(&self, api_id: Option<&str>) -> Option<dashboard::Desired> {
        self.config.dashboard.enabled.then(|| dashboard::Desired {
            name: self.names.dashboard.clone(),
            body: api_id.map(|id| dashboard::body(&self.names, id)),
        })
    }

    pub fn desired_logs(&self) -> logs::Desired {
        logs::Desired {
            name: self.names.log_group.clone(),
            retention_days: self.config.function.log_retention_days,
            tags: self.tags.clone(),
        }
    }
}

/// The plan item of the account's CloudWatch role for API Gateway (a change to the whole
/// account and region, made only when allowed: see [`UpOptions::confirm_account`]).
pub const ACCOUNT_RESOURCE: &str = "account_log_role";

/// The whole plan, from an observation. Pure.
pub fn plan(stack: &Stack, obs: &Observation, code: &CodeSpec) -> Result<Plan> {
    let n = &stack.names;
    let api_id = obs.api.as_ref().map(|a| a.api.id.as_str());
    let d_api = stack.desired_api();
    let mut items = Vec::new();
    if stack.config.api.logging.any() {
        items.push(PlanItem {
            resource: ACCOUNT_RESOURCE.into(),
            name: format!("API Gateway account setting ({}, every API)", n.region),
            action: account::diff(obs.account.as_ref(), true, n),
        });
    }
    let access_log_action = match (stack.desired_access_logs(), &obs.access_log_group) {
        (Some(d), o) => Some(logs::diff(o.as_ref(), &d)),
        (None, Some(o)) if naming::is_managed(&o.tags) => Some(Action::Delete),
        (None, _) => None,
    };
    if let Some(action) = access_log_action {
        items.push(PlanItem {
            resource: "access_log_group".into(),
            name: n.access_log_group.clone(),
            action,
        });
    }
    items.extend([
        PlanItem {
            resource: "table".into(),
            name: n.table.clone(),
            action: table::diff(obs.table.as_ref(), &stack.desired_table())?,
        },
        PlanItem {
            resource: "subscriptions".into(),
            name: n.subscriptions_table.clone(),
            action: table::diff(
                obs.subscriptions.as_ref(),
                &stack.desired_table_of(table::Kind::Subscriptions),
            )?,
        },
        PlanItem {
            resource: "broadcasts".into(),
            name: n.broadcasts_table.clone(),
            action: table::diff(
                obs.broadcasts.as_ref(),
                &stack.desired_table_of(table::Kind::Broadcasts),
            )?,
        },
        PlanItem {
            resource: "role".into(),
            name: n.role.clone(),
            action: role::diff(obs.role.as_ref(), &stack.desired_role(api_id)),
        },
        PlanItem {
            resource: "log_group".into(),
            name: n.log_group.clone(),
            action: logs::diff(obs.log_group.as_ref(), &stack.desired_logs()),
        },
        PlanItem {
            resource: "function".into(),
            name: n.function.clone(),
            action: function::diff(
                obs.function.as_ref(),
                &stack.desired_function(api_id, code.clone()),
            ),
        },
        PlanItem {
            resource: "api".into(),
            name: n.api.clone(),
            action: api::diff_api(obs.api.as_ref().map(|a| &a.api), &d_api),
        },
        PlanItem {
            resource: "integration".into(),
            name: "AWS_PROXY".into(),
            action: api::diff_integration(obs.api.as_ref(), &d_api),
        },
    ]);
    for key in api::ROUTE_KEYS {
        items.push(PlanItem {
            resource: format!("route {key}"),
            name: key.into(),
            action: api::diff_route(obs.api.as_ref(), &d_api, key),
        });
    }
    items.push(PlanItem {
        resource: "stage".into(),
        name: n.stage.clone(),
        action: api::diff_stage(obs.api.as_ref(), &d_api),
    });
    items.push(PlanItem {
        resource: "permission".into(),
        name: naming::PERMISSION_SID.into(),
        action: api::diff_permission(&obs.permission, n, api_id),
    });
    // The custom domain, its mapping to the stage, and its alias record in a managed zone.
    if let (Some(d), Some(o)) = (&stack.config.domain, &obs.domain) {
        items.push(PlanItem {
            resource: "domain".into(),
            name: d.name.clone(),
            action: domain::diff_domain(o.domain.as_ref(), d, &stack.tags),
        });
        items.push(PlanItem {
            resource: "api_mapping".into(),
            name: format!("{} -> {}", d.name, n.stage),
            action: domain::diff_mapping(o.domain.as_ref(), api_id, &n.stage),
        });
        if let Some(zone) = &d.hosted_zone_id {
            items.push(PlanItem {
                resource: "dns_record".into(),
                name: format!("{} A alias in {zone}", d.name),
                action: domain::diff_record(o),
            });
        }
    }
    // Domains of this stack the config no longer names (found by their tags) go.
    for o in &obs.stray_domains {
        items.push(PlanItem {
            resource: "domain".into(),
            name: format!("{} (no longer in the config)", o.name),
            action: Action::Delete,
        });
    }
    // The function's statements for [[grant]] broadcast, and the ones no longer granted.
    for g in &stack.config.grants {
        let action = grant::diff(&obs.permission, g);
        if g.allow.contains(&crate::config::Allow::Broadcast) || action.is_change() {
            items.push(PlanItem {
                resource: "grant".into(),
                name: g.principal.clone(),
                action,
            });
        }
    }
    for s in grant::strays(&obs.permission, &stack.config.grants) {
        items.push(PlanItem {
            resource: "grant".into(),
            name: format!("{} (no longer granted)", s.principal),
            action: Action::Delete,
        });
    }
    let alarm_action = match (stack.desired_alarm(), &obs.alarm) {
        (Some(d), o) => Some(alarm::diff(o.as_ref(), &d)),
        // Turned off in the config: remove the one wsctl made.
        (None, Some(o)) if naming::is_managed(&o.tags) => Some(Action::Delete),
        (None, _) => None,
    };
    if let Some(action) = alarm_action {
        items.push(PlanItem {
            resource: "alarm".into(),
            name: n.alarm.clone(),
            action,
        });
    }
    let dashboard_action = match (stack.desired_dashboard(api_id), &obs.dashboard) {
        (Some(d), o) => Some(dashboard::diff(o.as_ref(), &d)),
        // Turned off: remove the one wsctl made (its marker widget says so).
        (None, Some(o)) if o.is_managed() => Some(Action::Delete),
        (None, _) => None,
    };
    if let Some(action) = dashboard_action {
        items.push(PlanItem {
            resource: "dashboard".into(),
            name: n.dashboard.clone(),
            action,
        });
    }
    Ok(Plan { items })
}
