//! `wsctl down`: what to delete (what carries wsctl's tag, or with `--adopt` what the
//! runbook's names identify), deleting in reverse dependency order, then proving that nothing
//! deleted remains.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Result;
use serde::Serialize;

use super::{in_passes, observe_with, Observation, Stack};
use crate::naming;
use crate::report::Progress;
use crate::resources::{alarm, api, dashboard, domain, function, grant, logs, role, table};

/// One resource `down` deletes, or leaves.
#[derive(Debug, Clone, Serialize)]
pub struct DownItem {
    pub resource: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    pub project: String,
    /// The environment (`--env`), when one was picked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    pub region: String,
    pub dry_run: bool,
    /// Deleted (or, with --dry-run, to be deleted).
    pub deleted: Vec<DownItem>,
    /// Found with a matching name but not wsctl's: left alone.
    pub left_alone: Vec<DownItem>,
    /// Still there after deleting (should be empty).
    pub remaining: Vec<DownItem>,
    /// What `down` leaves on purpose, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl DownReport {
    pub fn nothing_found(&self) -> bool {
        self.deleted.is_empty() && self.left_alone.is_empty()
    }
}

impl fmt::Display for DownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nothing_found() {
            return writeln!(
                f,
                "Nothing to delete: no resource of project {} exists in {}.",
                crate::naming::label(&self.project, self.env.as_deref()),
                self.region
            );
        }
        let verb = if self.dry_run {
            "Would delete"
        } else {
            "Deleted"
        };
        if !self.deleted.is_empty() {
            writeln!(f, "{verb}:")?;
            for d in &self.deleted {
                writeln!(f, "  {:<12} {}", d.resource, d.name)?;
            }
        }
        if !self.left_alone.is_empty() {
            writeln!(f, "Left alone (not created by wsctl):")?;
            for d in &self.left_alone {
                writeln!(
                    f,
                    "  {:<12} {}  ({})",
                    d.resource,
                    d.name,
                    d.reason.as_deref().unwrap_or("")
                )?;
            }
        }
        for note in &self.notes {
            writeln!(f, "Note: {note}")?;
        }
        if !self.dry_run {
            if self.remaining.is_empty() {
                writeln!(f, "Verified: nothing wsctl manages remains.")?;
            } else {
                writeln!(f, "Still present after deleting:")?;
                for d in &self.remaining {
                    writeln!(f, "  {:<12} {}", d.resource, d.name)?;
                }
            }
        }
        Ok(())
    }
}

/// What `down` would delete, from an observation: what carries wsctl's tag, or with `adopt`
/// whatever the runbook's names identify.
pub fn down_plan(
    stack: &Stack,
    obs: &Observation,
    apis: &[api::ApiObs],
    adopt: bool,
) -> (Vec<DownItem>, Vec<DownItem>) {
    let n = &stack.names;
    let mut delete = Vec::new();
    let mut leave = Vec::new();
    let mut consider = |delete: &mut Vec<DownItem>,
                        resource: &str,
                        name: &str,
                        tags: &BTreeMap<String, String>| {
        let item = DownItem {
            resource: resource.into(),
            name: name.into(),
            reason: None,
        };
        if naming::is_managed(tags) || adopt {
            delete.push(item);
            true
        } else {
            leave.push(DownItem {
                reason: Some("no ManagedBy=wsctl tag; `wsctl down --adopt` deletes resources the runbook made".into()),
                ..item
            });
            false
        }
    };
    // The custom domain (its mapping goes with it; its alias record too, when the zone is
    // wsctl's to write); never the certificate or the zone.
    if let Some(d) = obs.domain.as_ref().and_then(|o| o.domain.as_ref()) {
        consider(&mut delete, "domain", &d.name, &d.tags);
    }
    for d in &obs.stray_domains {
        consider(&mut delete, "domain", &d.name, &d.tags);
    }
    for a in apis {
        consider(
            &mut delete,
            "api",
            &format!("{} ({})", a.name, a.id),
            &a.tags,
        );
    }
    let function_deleted = match &obs.function {
        Some(f) => consider(&mut delete, "function", &f.name, &f.tags),
        None => false,
    };
    if let Some(g) = &obs.log_group {
        // The function's own log group goes with the function, tagged or not.
        if function_deleted && !naming::is_managed(&g.tags) {
            delete.push(DownItem {
                resource: "log_group".into(),
                name: g.name.clone(),
                reason: None,
            });
        } else {
            consider(&mut delete, "log_group", &g.name, &g.tags);
        }
    }
    if let Some(a) = &obs.alarm {
        consider(&mut delete, "alarm", &a.name, &a.tags);
    }
    if let Some(g) = &obs.access_log_group {
        consider(&mut delete, "access_log_group", &g.name, &g.tags);
    }
    if let Some(d) = &obs.dashboard {
        // Dashboards carry no tags: wsctl's is marked in its body.
        let tags = match d.is_managed() {
            true => naming::tags(&stack.config),
            false => BTreeMap::new(),
        };
        consider(&mut delete, "dashboard", &d.name, &tags);
    }
    if let Some(r) = &obs.role {
        consider(&mut delete, "role", &r.name, &r.tags);
    }
    for (resource, t) in [
        ("table", &obs.table),
        ("subscriptions", &obs.subscriptions),
        ("broadcasts", &obs.broadcasts),
    ] {
        if let Some(t) = t {
            consider(&mut delete, resource, &t.name, &t.tags);
        }
    }
    // With the function, its policy goes; a function left alone keeps none of wsctl's grants.
    if !function_deleted {
        for s in obs
            .permission
            .iter()
            .filter(|s| s.sid.starts_with(grant::SID_PREFIX))
        {
            delete.push(DownItem {
                resource: "grant".into(),
                name: format!("{} on {}", s.sid, n.function),
                reason: None,
            });
        }
    }
    if !function_deleted
        && obs
            .permission
            .iter()
            .any(|s| s.sid == naming::PERMISSION_SID)
    {
        delete.push(DownItem {
            resource: "permission".into(),
            name: format!("{} on {}", naming::PERMISSION_SID, n.function),
            reason: None,
        });
    }
    (delete, leave)
}

/// Deletes in reverse dependency order, then checks that nothing deleted remains.
/// `confirm` sees the list before the first delete.
pub async fn down(
    stack: &Stack,
    adopt: bool,
    dry_run: bool,
    confirm: &(dyn Fn(&[DownItem]) -> Result<()> + Sync),
    progress: &Progress,
) -> Result<DownReport> {
    let first: std::sync::Mutex<Option<Vec<DownItem>>> = Default::default();
    let mut report = in_passes(progress, || {
        down_once(stack, adopt, dry_run, confirm, progress, &first)
    })
    .await?;
    // What the run set out to delete (and the user confirmed); a later pass only sees what an
    // earlier one left.
    if let Some(items) = first.into_inner().unwrap_or_else(|p| p.into_inner()) {
        report.deleted = items;
    }
    Ok(report)
}

async fn down_once(
    stack: &Stack,
    adopt: bool,
    dry_run: bool,
    confirm: &(dyn Fn(&[DownItem]) -> Result<()> + Sync),
    progress: &Progress,
    first: &std::sync::Mutex<Option<Vec<DownItem>>>,
) -> Result<DownReport> {
    let c = &stack.clients;
    let n = &stack.names;
    let obs = observe_for_down(stack).await?;
    let apis = api::candidates(c, &n.api).await?;
    let (delete, left_alone) = down_plan(stack, &obs, &apis, adopt);
    let mut report = DownReport {
        project: n.project.clone(),
        env: stack.config.env.clone(),
        region: n.region.clone(),
        dry_run,
        deleted: delete.clone(),
        left_alone,
        remaining: vec![],
        notes: vec![],
    };
    if stack.config.api.logging.any() {
        report.notes.push(format!(
            "API Gateway's CloudWatch role (the account setting cloudwatchRoleArn in {}) is left as it is: it is shared by every API of the account",
            n.region
        ));
    }
    // Asked once, on the first pass; later passes finish what was confirmed.
    let first_pass = first.lock().unwrap_or_else(|p| p.into_inner()).is_none();
    if dry_run || (delete.is_empty() && first_pass) {
        return Ok(report);
    }
    if first_pass {
        confirm(&delete)?;
        *first.lock().unwrap_or_else(|p| p.into_inner()) = Some(delete.clone());
    }
    let deleting = |resource: &str| delete.iter().any(|d| d.resource == resource);

    if let (Some(d), Some(o)) = (&stack.config.domain, &obs.domain) {
        if delete
            .iter()
            .any(|x| x.resource == "domain" && x.name == d.name)
        {
            let step = progress.step("domain", "deleting");
            domain::delete(c, d, o).await?;
            step.done("deleted (with its mapping and alias record; the certificate and zone stay)");
        }
    }
    for o in &obs.stray_domains {
        if delete
            .iter()
            .any(|x| x.resource == "domain" && x.name == o.name)
        {
            let step = progress.step("domain", "deleting");
            domain::delete_stray(c, o).await?;
            step.done(format!(
                "deleted {} (with its mapping and alias record)",
                o.name
            ));
        }
    }
    for a in &apis {
        if delete
            .iter()
            .any(|d| d.resource == "api" && d.name.ends_with(&format!("({})", a.id)))
        {
            let step = progress.step("api", &format!("deleting {}", a.id));
            api::delete(c, &a.id).await?;
            // API Gateway's own execution log group of the stage goes with the API.
            let execution_logs = format!("/aws/apigateway/{}/{}", a.id, n.stage);
            let with_logs = logs::delete(c, &execution_logs).await?;
            step.done(if with_logs {
                format!("deleted (with its routes, integrations, stage and {execution_logs})")
            } else {
                "deleted (with its routes, integrations and stage)".to_owned()
            });
        }
    }
    if deleting("permission") {
        let step = progress.step("permission", "removing");
        api::remove_statement(c, &n.function, naming::PERMISSION_SID).await?;
        step.done("removed");
    }
    for d in delete.iter().filter(|d| d.resource == "grant") {
        let sid = d.name.split(' ').next().unwrap_or_default();
        let step = progress.step("grant", "removing");
        api::remove_statement(c, &n.function, sid).await?;
        step.done(format!("removed {sid}"));
    }
    if deleting("alarm") {
        let step = progress.step("alarm", "deleting");
        alarm::delete(c, &n.alarm).await?;
        step.done("deleted");
    }
    if deleting("dashboard") {
        let step = progress.step("dashboard", "deleting");
        dashboard::delete(c, &n.dashboard).await?;
        step.done("deleted");
    }
    if deleting("access_log_group") {
        let step = progress.step("access_log_group", "deleting");
        logs::delete(c, &n.access_log_group).await?;
        step.done("deleted");
    }
    if deleting("function") {
        let step = progress.step("function", "deleting");
        function::delete(c, &n.function).await?;
        step.done("deleted (with its permission)");
    }
    if deleting("log_group") {
        let step = progress.step("log_group", "deleting");
        logs::delete(c, &n.log_group).await?;
        step.done("deleted");
    }
    if let (true, Some(r)) = (deleting("role"), &obs.role) {
        let step = progress.step("role", "deleting");
        role::delete(c, r).await?;
        step.done("deleted (policies detached and deleted)");
    }
    let delete_table = |resource: &'static str, name: &str| {
        let name = name.to_owned();
        let go = deleting(resource);
        async move {
            if go {
                let step = progress.step(resource, "deleting");
                if table::delete(c, &name).await? {
                    table::wait_deleted(c, &name).await?;
                }
                step.done("deleted");
            }
            Ok::<_, anyhow::Error>(())
        }
    };
    tokio::try_join!(
        delete_table("table", &n.table),
        delete_table("subscriptions", &n.subscriptions_table),
        delete_table("broadcasts", &n.broadcasts_table),
    )?;

    // Prove it: observe again and list anything we deleted that is still there.
    let after = observe_for_down(stack).await?;
    let apis_after = api::candidates(c, &n.api).await?;
    let (still, _) = down_plan(stack, &after, &apis_after, true);
    report.remaining = still
        .into_iter()
        .filter(|s| {
            delete
                .iter()
                .any(|d| d.resource == s.resource && d.name == s.name)
        })
        .collect();
    if !report.remaining.is_empty() {
        anyhow::bail!(
            "down finished but these remain: {}",
            report
                .remaining
                .iter()
                .map(|r| format!("{} {}", r.resource, r.name))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(report)
}

/// Like [`observe`], but an ambiguous API name is not an error (down handles every candidate).
async fn observe_for_down(stack: &Stack) -> Result<Observation> {
    observe_with(stack, false).await
}
