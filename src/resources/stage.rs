//! The API's stage: auto-deploy, throttling, and API Gateway's logs of it (the access log's
//! destination and format, the execution log level).

use std::collections::BTreeMap;

use aws_sdk_apigatewayv2::types::{AccessLogSettings, LoggingLevel, RouteSettings};
use futures::future::BoxFuture;
use serde::Serialize;

use super::shape::{
    check, ready, Action, Change, Check, Ctx, DownItem, Ids, Kind, Observation, Plan, PlanItem,
    Resource, Teardown,
};
use crate::aws::{apigw_no_retries as no_retries, aws_error, send_unrepeated, AwsContext, Clients};
use crate::config::LogLevel;
use crate::error::Result;

/// A stage's access log: the log group's ARN and the format of one line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessLog {
    pub destination_arn: String,
    pub format: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StageObs {
    /// The API it is a stage of.
    pub api_id: String,
    pub name: String,
    pub auto_deploy: bool,
    pub burst_limit: Option<i32>,
    pub rate_limit: Option<f64>,
    /// None: no access log (AWS omits the settings, or returns them empty).
    pub access_log: Option<AccessLog>,
    /// The default route settings' `loggingLevel` (absent means OFF).
    pub logging_level: String,
    /// Whether execution logs carry full request and response bodies.
    pub data_trace: bool,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Desired {
    pub stage: String,
    pub burst_limit: i32,
    pub rate_limit: f64,
    /// Where and how the stage's access log is written (`[api] access_log`), or none.
    pub access_log: Option<AccessLog>,
    pub logging_level: LogLevel,
    pub tags: BTreeMap<String, String>,
}

/// The API's stage.
pub struct Stage;

impl Resource for Stage {
    type Desired = Desired;
    /// None while there is no API, or no stage of the name.
    type Observed = Option<StageObs>;

    fn desired(cx: &Ctx) -> Desired {
        let (config, names) = (&cx.stack.config, &cx.stack.names);
        Desired {
            stage: names.stage.clone(),
            burst_limit: config.api.throttling_burst_limit,
            rate_limit: config.api.throttling_rate_limit,
            access_log: config.api.logging.access_log.then(|| AccessLog {
                destination_arn: names.log_group_arn(&names.access_log_group),
                format: config.api.logging.access_log_format.clone(),
            }),
            logging_level: config.api.logging.execution_log_level,
            tags: cx.stack.tags.clone(),
        }
    }

    fn observe<'a>(cx: &'a Ctx) -> BoxFuture<'a, Result<Self::Observed>> {
        Box::pin(async move {
            match &cx.ids.api_id {
                Some(id) => observe(&cx.stack.clients, id, &cx.stack.names.stage).await,
                None => Ok(None),
            }
        })
    }

    fn diff(observed: &Self::Observed, desired: &Desired) -> Result<Vec<PlanItem>> {
        Ok(vec![PlanItem::new(
            Kind::Stage,
            &desired.stage,
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
            let api_id = cx.ids.api_id.as_deref().expect("the API exists by now");
            let o = observed.as_ref().filter(|s| s.api_id == api_id);
            apply(
                &cx.stack.clients,
                api_id,
                o,
                desired,
                plan.action(&Kind::Stage),
            )
            .await?;
            Ok(Ids::default())
        })
    }

    /// The stage goes with the API.
    fn teardown(_cx: &Ctx, _obs: &Observation, _adopt: bool) -> Teardown {
        Teardown::default()
    }

    fn delete<'a>(
        _cx: &'a Ctx,
        _obs: &'a Observation,
        _items: &'a [DownItem],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// `stage_auto_deploys`: without it, route changes never go live.
    fn checks<'a>(cx: &'a Ctx, obs: &'a Observation) -> BoxFuture<'a, Result<Vec<Check>>> {
        let stage = &cx.stack.names.stage;
        ready(vec![match obs.get::<Stage>() {
            None => check(
                "stage_auto_deploys",
                false,
                format!("stage {stage} does not exist"),
            ),
            Some(s) if s.auto_deploy => check(
                "stage_auto_deploys",
                true,
                format!("stage {stage} auto-deploys"),
            ),
            Some(_) => check(
                "stage_auto_deploys",
                false,
                format!("stage {stage} does not auto-deploy: route changes never go live"),
            ),
        }])
    }
}

pub async fn observe(c: &Clients, api_id: &str, name: &str) -> Result<Option<StageObs>> {
    match c
        .apigw
        .get_stage()
        .api_id(api_id)
        .stage_name(name)
        .send()
        .await
    {
        Ok(s) => {
            let route = s.default_route_settings.as_ref();
            Ok(Some(StageObs {
                api_id: api_id.to_owned(),
                name: name.to_owned(),
                auto_deploy: s.auto_deploy.unwrap_or(false),
                burst_limit: route.and_then(|r| r.throttling_burst_limit),
                rate_limit: route.and_then(|r| r.throttling_rate_limit),
                access_log: s.access_log_settings.as_ref().and_then(|a| {
                    Some(AccessLog {
                        destination_arn: a.destination_arn.clone().filter(|d| !d.is_empty())?,
                        format: a.format.clone().unwrap_or_default(),
                    })
                }),
                logging_level: route
                    .and_then(|r| r.logging_level.as_ref())
                    .map_or("OFF".to_owned(), |l| l.as_str().to_owned()),
                data_trace: route.and_then(|r| r.data_trace_enabled).unwrap_or(false),
                tags: s.tags.map(|t| t.into_iter().collect()).unwrap_or_default(),
            }))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error(format!("GetStage {api_id}/{name}"), &e).into()),
    }
}

fn show_access_log(a: Option<&AccessLog>) -> String {
    a.map_or("(none)".to_owned(), |a| a.destination_arn.clone())
}

/// The fields of an existing stage that differ from `d`.
fn stage_changes(s: &StageObs, d: &Desired) -> Vec<Change> {
    let mut changes = Vec::new();
    if !s.auto_deploy {
        changes.push(Change::new("auto_deploy", false, true));
    }
    if s.burst_limit != Some(d.burst_limit) {
        changes.push(Change::new(
            "throttling_burst_limit",
            s.burst_limit.map_or("(none)".into(), |b| b.to_string()),
            d.burst_limit,
        ));
    }
    if s.rate_limit != Some(d.rate_limit) {
        changes.push(Change::new(
            "throttling_rate_limit",
            s.rate_limit.map_or("(none)".into(), |r| r.to_string()),
            d.rate_limit,
        ));
    }
    let (have, want) = (s.access_log.as_ref(), d.access_log.as_ref());
    if have.map(|a| &a.destination_arn) != want.map(|a| &a.destination_arn) {
        changes.push(Change::new(
            "access_log.destination",
            show_access_log(have),
            show_access_log(want),
        ));
    }
    if let (Some(h), Some(w)) = (have, want) {
        if h.format != w.format {
            changes.push(Change::new("access_log.format", &h.format, &w.format));
        }
    }
    if s.logging_level != d.logging_level.as_api() {
        changes.push(Change::new(
            "execution_log_level",
            &s.logging_level,
            d.logging_level,
        ));
    }
    if s.data_trace {
        // Full message bodies in the logs: never what wsctl configures.
        changes.push(Change::new("data_trace", true, false));
    }
    changes
}

pub fn diff(o: Option<&StageObs>, d: &Desired) -> Action {
    let Some(s) = o else {
        return Action::Create;
    };
    // Stage tags are set at creation only: the API carries wsctl's tag, and deleting the API
    // deletes its stages.
    Action::from_changes(stage_changes(s, d))
}

fn route_settings(d: &Desired) -> RouteSettings {
    let level = match d.logging_level {
        LogLevel::Off => LoggingLevel::Off,
        LogLevel::Error => LoggingLevel::Error,
        LogLevel::Info => LoggingLevel::Info,
    };
    RouteSettings::builder()
        .throttling_burst_limit(d.burst_limit)
        .throttling_rate_limit(d.rate_limit)
        .logging_level(level)
        .data_trace_enabled(false)
        .build()
}

/// The access log settings to send: the configured ones, or empty ones that turn it off.
fn access_log_settings(d: &Desired) -> AccessLogSettings {
    match &d.access_log {
        Some(a) => AccessLogSettings::builder()
            .destination_arn(&a.destination_arn)
            .format(&a.format)
            .build(),
        None => AccessLogSettings::builder().build(),
    }
}

async fn apply(
    c: &Clients,
    api_id: &str,
    o: Option<&StageObs>,
    d: &Desired,
    action: &Action,
) -> Result<()> {
    let settings = route_settings(d);
    if o.is_none() {
        send_unrepeated(format!("CreateStage {api_id}/{}", d.stage), || {
            let mut req = c
                .apigw
                .create_stage()
                .api_id(api_id)
                .stage_name(&d.stage)
                .auto_deploy(true)
                .default_route_settings(settings.clone())
                .description("managed by wsctl")
                .set_tags(Some(d.tags.clone().into_iter().collect()));
            if d.access_log.is_some() {
                req = req.access_log_settings(access_log_settings(d));
            }
            req.customize().config_override(no_retries()).send()
        })
        .await?;
        return Ok(());
    }
    if !action.is_change() {
        return Ok(());
    }
    let mut req = c
        .apigw
        .update_stage()
        .api_id(api_id)
        .stage_name(&d.stage)
        .auto_deploy(true)
        .default_route_settings(settings);
    if action.has("access_log.destination") || action.has("access_log.format") {
        req = req.access_log_settings(access_log_settings(d));
    }
    req.send()
        .await
        .aws(format!("UpdateStage {api_id}/{}", d.stage))?;
    Ok(())
}
