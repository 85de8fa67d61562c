//! `wsctl status`: every resource present / missing / drifted (the plan, read as drift) and
//! every resource's checks, the wiring that makes deployed WebSocket stacks fail in practice.
//! Read-only: it makes no write call.

use std::fmt;

use aws_sdk_dynamodb::types::Select;
use serde::Serialize;

use super::order::order;
use super::{observe, plan};
use crate::aws::AwsContext;
use crate::error::Result;
use crate::package::CodeSpec;
use crate::report::Progress;
use crate::resources::shape::{Action, Change, Check, Ctx, Ids, Kind};
use crate::resources::table::Tables;
use crate::stack::Stack;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Present,
    Missing,
    Drifted,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceStatus {
    #[serde(rename = "resource", serialize_with = "label")]
    pub kind: Kind,
    pub name: String,
    pub state: State,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Change>,
}

fn label<S: serde::Serializer>(kind: &Kind, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(kind)
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
    /// What clients may do with topics (`[auth]`, `[topics]`).
    pub topics: crate::config::TopicAccess,
    /// The code the function runs, next to the handler this wsctl carries.
    pub handler: Option<HandlerStatus>,
}

/// The function's code and the handler this wsctl would deploy.
#[derive(Debug, Clone, Serialize)]
pub struct HandlerStatus {
    /// The function's CodeSha256.
    pub code_sha256: String,
    /// What wsctl recorded the code was built from (the function's source tag).
    pub source: Option<String>,
    /// The CodeSha256 `up` would deploy from the handler this wsctl carries (with the
    /// project's catalogue), when it carries one for the function's architecture.
    pub carried_code_sha256: Option<String>,
    /// Whether the function runs that handler.
    pub runs_carried: Option<bool>,
}

/// What the function runs, compared with the handler this wsctl carries. Reads nothing.
fn handler_status(
    stack: &Stack,
    f: &crate::resources::function::Observed,
) -> Result<HandlerStatus> {
    let carried = match crate::package::carried(stack.config.function.architecture) {
        Some(zip) => Some(zip.for_project(&stack.config)?),
        None => None,
    };
    let carried_code_sha256 = carried.map(|z| z.sha256_b64);
    Ok(HandlerStatus {
        runs_carried: carried_code_sha256.as_ref().map(|c| *c == f.code_sha256),
        code_sha256: f.code_sha256.clone(),
        source: f.tags.get(crate::naming::SOURCE_TAG).cloned(),
        carried_code_sha256,
    })
}

fn state(action: &Action) -> State {
    match action {
        Action::Create => State::Missing,
        Action::Update(_) | Action::Delete => State::Drifted,
        Action::NoChange => State::Present,
    }
}

pub async fn status(stack: &Stack) -> Result<StatusReport> {
    let steps = order();
    let progress = Progress::new(true);
    let cx = Ctx {
        stack,
        ids: Ids::default(),
        code: &CodeSpec::Deployed,
        zip: None,
        progress: &progress,
    };
    let (obs, ids) = observe(&steps, &cx).await?;
    let cx = cx.with_ids(ids.clone());
    let plan = plan(&steps, &cx, &obs)?;
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
            kind: i.kind,
            name: i.name,
        })
        .collect();
    let mut checks = Vec::new();
    for step in &steps {
        checks.extend(step.checks(&cx, &obs).await?);
    }
    let connections = match crate::resources::table::connections(obs.get::<Tables>()) {
        Some(_) => Some(count_rows(stack).await?),
        None => None,
    };
    let n = &stack.names;
    let dashboard = obs.get::<crate::resources::dashboard::Dashboard>();
    let handler = match obs.get::<crate::resources::function::Function>() {
        Some(f) => Some(handler_status(stack, f)?),
        None => None,
    };
    let healthy =
        resources.iter().all(|r| r.state == State::Present) && checks.iter().all(|c| c.ok);
    Ok(StatusReport {
        project: n.project.clone(),
        env: stack.config.env.clone(),
        region: n.region.clone(),
        healthy,
        websocket_url: ids.api_id.as_deref().map(|id| n.websocket_url(id)),
        callback_url: ids.api_id.as_deref().map(|id| n.callback_url(id)),
        dashboard_url: dashboard.as_ref().map(|_| n.dashboard_url()),
        connections,
        resources,
        checks,
        topics: stack.config.topic_access(),
        handler,
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
            writeln!(f, "  {:<18} {:<44} {state}", r.kind.to_string(), r.name)?;
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
        if let Some(h) = &self.handler {
            let from = h
                .source
                .as_deref()
                .map(|s| format!(", {s}"))
                .unwrap_or_default();
            match (h.runs_carried, &h.carried_code_sha256) {
                (Some(true), _) => writeln!(
                    f,
                    "Handler:       CodeSha256 {}{from}, the one this wsctl carries",
                    h.code_sha256
                )?,
                (Some(false), Some(carried)) => writeln!(
                    f,
                    "Handler:       CodeSha256 {}{from}, NOT the one this wsctl carries ({carried}): `wsctl up` deploys it",
                    h.code_sha256
                )?,
                _ => writeln!(f, "Handler:       CodeSha256 {}{from}", h.code_sha256)?,
            }
        }
        writeln!(f, "Topics:        {}", self.topics)?;
        if let Some(w) = &self.topics.warning {
            writeln!(f, "WARNING: {w}")?;
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
