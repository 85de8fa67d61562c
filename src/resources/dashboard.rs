//! The CloudWatch dashboard `{project}-websocket` (`[dashboard]`): connections opened and
//! closed, messages, API Gateway's errors and integration latency, the function's invocations,
//! errors, p99 duration, throttles and concurrency, the tables' consumed capacity and
//! throttling. Its body is a JSON document; `diff` compares it widget by widget (by title)
//! and field by field, and `apply` puts the whole body when any field differs.
//!
//! Dashboards carry no tags, so the body itself says it is wsctl's: a text widget whose
//! markdown holds [`MARKER`]. `up` (with the dashboard off) and `down` delete a dashboard
//! only when it has that widget.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{json, Value};

use super::shape::{
    down_item, Action, Change, Ctx, DownItem, Ids, Kind, Observation, Plan, PlanItem, Resource,
    Teardown, KNOWN_AFTER_APPLY,
};
use crate::aws::{aws_error, AwsContext, Clients};
use crate::error::Result;
use crate::naming::{self, Names};

/// The words in the first widget that mark the dashboard as wsctl's.
pub const MARKER: &str = "Managed by wsctl";
/// The period of every metric, in seconds.
const PERIOD: i64 = 60;

#[derive(Debug, Clone, Serialize)]
pub struct Observed {
    pub name: String,
    pub arn: String,
    pub body: Value,
}

impl Observed {
    /// Whether wsctl made it (its marker widget is there).
    pub fn is_managed(&self) -> bool {
        self.body["widgets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| {
                w["properties"]["markdown"]
                    .as_str()
                    .is_some_and(|m| m.contains(MARKER))
            })
    }
}

pub struct Desired {
    pub name: String,
    /// None while the API does not exist yet (its id is a dimension of the metrics).
    pub body: Option<Value>,
}

/// The stack's dashboard, when `[dashboard]` asks for one (the default).
pub struct Dashboard;

impl Resource for Dashboard {
    /// None: turned off (wsctl's dashboard, if it exists, goes).
    type Desired = Option<Desired>;
    type Observed = Option<Observed>;

    fn desired(cx: &Ctx) -> Option<Desired> {
        let n = &cx.stack.names;
        cx.stack.config.dashboard.enabled.then(|| Desired {
            name: n.dashboard.clone(),
            body: cx.ids.api_id.as_deref().map(|id| body(n, id)),
        })
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(observe(&cx.stack.clients, &cx.stack.names.dashboard))
    }

    fn diff(observed: &Self::Observed, desired: &Option<Desired>) -> Result<Vec<PlanItem>> {
        Ok(match (desired, observed) {
            (Some(d), o) => vec![PlanItem::new(Kind::Dashboard, &d.name, diff(o.as_ref(), d))],
            // Turned off: remove the one wsctl made (its marker widget says so).
            (None, Some(o)) if o.is_managed() => {
                vec![PlanItem::new(Kind::Dashboard, &o.name, Action::Delete)]
            }
            (None, _) => vec![],
        })
    }

    fn apply<'a>(
        cx: &'a Ctx,
        observed: &'a Self::Observed,
        desired: &'a Option<Desired>,
        plan: &'a Plan,
    ) -> BoxFuture<'a, Result<Ids>> {
        Box::pin(async move {
            let c = &cx.stack.clients;
            match (desired, plan.action(&Kind::Dashboard)) {
                (_, Action::NoChange) => {}
                (None, _) => {
                    delete(c, &cx.stack.names.dashboard).await?;
                }
                (Some(d), _) => {
                    let body = d
                        .body
                        .as_ref()
                        .expect("the body is known once the API exists");
                    apply(c, observed.as_ref(), &d.name, body).await?;
                }
            }
            Ok(Ids::default())
        })
    }

    /// Dashboards carry no tags: wsctl's is marked in its body.
    fn teardown(cx: &Ctx, obs: &Observation, adopt: bool) -> Teardown {
        let mut t = Teardown::default();
        if let Some(d) = obs.get::<Dashboard>() {
            let tags = match d.is_managed() {
                true => naming::tags(&cx.stack.config),
                false => BTreeMap::new(),
            };
            t.consider(down_item(Kind::Dashboard, &d.name, &d.name), &tags, adopt);
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
                delete(&cx.stack.clients, &item.id).await?;
            }
            Ok(())
        })
    }
}

/// The dashboard's body for this stack.
pub fn body(names: &Names, api_id: &str) -> Value {
    let region = names.region.as_str();
    let api = ["ApiId", api_id, "Stage", names.stage.as_str()];
    let function = ["FunctionName", names.function.as_str()];
    let mut widgets = vec![json!({
        "type": "text", "x": 0, "y": 0, "width": 24, "height": 2,
        "properties": {"markdown": format!(
            "# {project} WebSocket\n{MARKER} (`wsctl up` rewrites this dashboard; `down` deletes it). API `{api_id}`, stage `{stage}`, function `{function}`, table `{table}`.",
            project = names.project, stage = names.stage, function = names.function, table = names.table
        )}
    })];
    let metric = |ns: &str, name: &str, dims: &[&str], stat: &str, label: &str| -> Value {
        let mut m: Vec<Value> = vec![json!(ns), json!(name)];
        m.extend(dims.iter().map(|d| json!(d)));
        m.push(json!({"stat": stat, "label": label}));
        Value::Array(m)
    };
    let mut graph = |title: &str, metrics: Vec<Value>| {
        let n = widgets.len() - 1;
        widgets.push(json!({
            "type": "metric",
            "x": (n % 2) * 12, "y": 2 + (n / 2) * 6, "width": 12, "height": 6,
            "properties": {
                "title": title, "region": region, "view": "timeSeries", "stacked": false,
                "period": PERIOD, "metrics": metrics
            }
        }));
    };
    graph(
        "Connections opened",
        vec![metric(
            "AWS/ApiGateway",
            "ConnectCount",
            &api,
            "Sum",
            "opened",
        )],
    );
    graph(
        "Messages",
        vec![metric(
            "AWS/ApiGateway",
            "MessageCount",
            &api,
            "Sum",
            "messages",
        )],
    );
    graph(
        "API Gateway errors",
        vec![
            metric(
                "AWS/ApiGateway",
                "IntegrationError",
                &api,
                "Sum",
                "integration errors",
            ),
            metric(
                "AWS/ApiGateway",
                "ClientError",
                &api,
                "Sum",
                "client errors (4xx)",
            ),
            metric(
                "AWS/ApiGateway",
                "ExecutionError",
                &api,
                "Sum",
                "execution errors",
            ),
        ],
    );
    graph(
        "Integration latency (ms)",
        vec![
            metric("AWS/ApiGateway", "IntegrationLatency", &api, "p50", "p50"),
            metric("AWS/ApiGateway", "IntegrationLatency", &api, "p99", "p99"),
        ],
    );
    graph(
        "Function invocations and errors",
        vec![
            metric("AWS/Lambda", "Invocations", &function, "Sum", "invocations"),
            metric("AWS/Lambda", "Errors", &function, "Sum", "errors"),
        ],
    );
    graph(
        "Function duration p99 (ms)",
        vec![metric("AWS/Lambda", "Duration", &function, "p99", "p99")],
    );
    graph(
        "Function throttles and concurrency",
        vec![
            metric("AWS/Lambda", "Throttles", &function, "Sum", "throttles"),
            metric(
                "AWS/Lambda",
                "ConcurrentExecutions",
                &function,
                "Maximum",
                "concurrency (max)",
            ),
        ],
    );
    let tables = [
        names.table.as_str(),
        names.subscriptions_table.as_str(),
        names.broadcasts_table.as_str(),
    ];
    // One read and one write metric per table, labelled "{table} {read}" / "{table} {write}".
    let per_table = |read: (&str, &str), write: (&str, &str)| -> Vec<Value> {
        tables
            .iter()
            .flat_map(|t| {
                let dims = ["TableName", t];
                [read, write].map(|(metric_name, label)| {
                    metric(
                        "AWS/DynamoDB",
                        metric_name,
                        &dims,
                        "Sum",
                        &format!("{t} {label}"),
                    )
                })
            })
            .collect()
    };
    graph(
        "Tables: consumed capacity",
        per_table(
            ("ConsumedReadCapacityUnits", "read"),
            ("ConsumedWriteCapacityUnits", "write"),
        ),
    );
    graph(
        "Tables: throttled requests",
        per_table(
            ("ReadThrottleEvents", "reads"),
            ("WriteThrottleEvents", "writes"),
        ),
    );
    // Closed connections have no API Gateway metric: the handler logs every event with its
    // route (JSON), so Logs Insights counts both ends from the function's log group.
    let n = widgets.len() - 1;
    widgets.push(json!({
        "type": "log",
        "x": (n % 2) * 12, "y": 2 + (n / 2) * 6, "width": 12, "height": 6,
        "properties": {
            "title": "Connections opened and closed (from the function's log)",
            "region": region, "view": "timeSeries", "stacked": false,
            "query": format!(
                "SOURCE '{}' | filter ispresent(route) | stats sum(strcontains(route, \"$connect\")) as opened, sum(strcontains(route, \"$disconnect\")) as closed by bin(1m)",
                names.log_group
            )
        }
    }));
    json!({"widgets": widgets})
}

pub async fn observe(c: &Clients, name: &str) -> Result<Option<Observed>> {
    match c
        .cloudwatch
        .get_dashboard()
        .dashboard_name(name)
        .send()
        .await
    {
        Ok(out) => {
            let text = out.dashboard_body.unwrap_or_default();
            Ok(Some(Observed {
                name: name.to_owned(),
                arn: out.dashboard_arn.unwrap_or_default(),
                body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
            }))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_dashboard_not_found_error()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error(format!("GetDashboard {name}"), &e).into()),
    }
}

/// Every leaf of a dashboard body by path; widgets are keyed by their title (or, for the
/// text widget, `text`), so that a reordered or retitled widget reads as what it is.
fn leaves(body: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: String, v: &Value, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    walk(format!("{prefix}.{k}"), v, out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(format!("{prefix}[{i}]"), v, out);
                }
            }
            other => {
                out.insert(prefix, other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    match body.get("widgets").and_then(Value::as_array) {
        Some(widgets) => {
            for (i, w) in widgets.iter().enumerate() {
                let key = match w["properties"]["title"].as_str() {
                    Some(t) => format!("widgets[{t:?}]"),
                    None if w["type"] == "text" => "widgets[text]".to_owned(),
                    None => format!("widgets[{i}]"),
                };
                walk(key, w, &mut out);
            }
            for (k, v) in body.as_object().into_iter().flatten() {
                if k != "widgets" {
                    walk(k.clone(), v, &mut out);
                }
            }
        }
        None => walk("body".to_owned(), body, &mut out),
    }
    out
}

/// The fields that differ, at most a dozen listed (then a count of the rest).
fn body_changes(have: &Value, want: &Value) -> Vec<Change> {
    let (h, w) = (leaves(have), leaves(want));
    let keys: std::collections::BTreeSet<&String> = h.keys().chain(w.keys()).collect();
    let mut changes: Vec<Change> = keys
        .into_iter()
        .filter(|k| h.get(*k) != w.get(*k))
        .map(|k| {
            Change::new(
                k.clone(),
                h.get(k).map_or("(none)", String::as_str),
                w.get(k).map_or("(none)", String::as_str),
            )
        })
        .collect();
    if changes.len() > 12 {
        let rest = changes.len() - 12;
        changes.truncate(12);
        changes.push(Change::new("body", "...", format!("{rest} more field(s)")));
    }
    changes
}

pub fn diff(observed: Option<&Observed>, desired: &Desired) -> Action {
    let Some(o) = observed else {
        return Action::Create;
    };
    match &desired.body {
        Some(want) => Action::from_changes(body_changes(&o.body, want)),
        None => Action::Update(vec![Change::new("body", "(current)", KNOWN_AFTER_APPLY)]),
    }
}

/// Puts the body when the dashboard is missing or differs. Returns whether it wrote.
async fn apply(c: &Clients, observed: Option<&Observed>, name: &str, body: &Value) -> Result<bool> {
    if observed.is_some_and(|o| body_changes(&o.body, body).is_empty()) {
        return Ok(false);
    }
    let out = c
        .cloudwatch
        .put_dashboard()
        .dashboard_name(name)
        .dashboard_body(body.to_string())
        .send()
        .await
        .aws(format!("PutDashboard {name}"))?;
    if let Some(problem) = out.dashboard_validation_messages().first() {
        crate::fail!(
            Failed,
            "PutDashboard {name}: CloudWatch found a problem in the body at {}: {}",
            problem.data_path().unwrap_or("?"),
            problem.message().unwrap_or("?")
        );
    }
    Ok(true)
}

/// Deletes the dashboard; one that does not exist is success (false).
pub async fn delete(c: &Clients, name: &str) -> Result<bool> {
    match c
        .cloudwatch
        .delete_dashboards()
        .dashboard_names(name)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_dashboard_not_found_error()) =>
        {
            Ok(false)
        }
        Err(e) => Err(aws_error(format!("DeleteDashboards {name}"), &e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn names() -> Names {
        let config = Config::parse(Path::new("wsctl.toml"), "project = \"demo\"").unwrap();
        Names::new(&config, "us-east-1", "123456789012")
    }

    /// The whole body, pinned: a change to any widget is a reviewed change.
    #[test]
    fn the_body_is_pinned() {
        insta::assert_json_snapshot!("dashboard_body", body(&names(), "abc123"));
    }

    #[test]
    fn the_body_is_marked_and_covers_every_part_of_the_stack() {
        let b = body(&names(), "abc123");
        let o = Observed {
            name: "demo-websocket".into(),
            arn: String::new(),
            body: b.clone(),
        };
        assert!(o.is_managed());
        let text = b.to_string();
        for needle in [
            "ConnectCount",
            "MessageCount",
            "IntegrationError",
            "IntegrationLatency",
            "Invocations",
            "Errors",
            "Duration",
            "Throttles",
            "ConcurrentExecutions",
            "ConsumedWriteCapacityUnits",
            "WriteThrottleEvents",
            "demo_ws_connections",
            "demo-websocket-handler",
            "abc123",
            "$disconnect",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        assert!(body_changes(&b, &b).is_empty());
        // Each table's pair of metrics, in order, with its labels.
        let throttled = b["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["properties"]["title"] == "Tables: throttled requests")
            .unwrap();
        assert_eq!(
            throttled["properties"]["metrics"][0],
            json!(["AWS/DynamoDB", "ReadThrottleEvents", "TableName", "demo_ws_connections", {"stat": "Sum", "label": "demo_ws_connections reads"}])
        );
        assert_eq!(
            throttled["properties"]["metrics"][5],
            json!(["AWS/DynamoDB", "WriteThrottleEvents", "TableName", "demo_ws_broadcasts", {"stat": "Sum", "label": "demo_ws_broadcasts writes"}])
        );
    }

    #[test]
    fn changes_name_the_widget_and_the_field() {
        let want = body(&names(), "abc123");
        let mut have = want.clone();
        have["widgets"][2]["properties"]["period"] = json!(300);
        let changes = body_changes(&have, &want);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].field, "widgets[\"Messages\"].properties.period");
        assert_eq!(
            (changes[0].from.as_str(), changes[0].to.as_str()),
            ("300", "60")
        );
        let other_api = body(&names(), "zzz999");
        assert!(!body_changes(&other_api, &want).is_empty());
    }
}
