//! The engine: it knows the order of the stack's resources ([`order`]) and nothing about any
//! one of them. `up` observes every resource (concurrently; what lives under the API once its
//! id is known), plans (each resource's `diff`, in order), refuses or asks before the first
//! write, then applies each resource as soon as what it follows is applied. `down`
//! ([`down`]) observes the same way and deletes in its own order; `status` ([`status`]) plans
//! without writing and gathers every resource's checks.

mod down;
mod order;
mod status;

pub use down::down;
pub use status::status;

use std::any::TypeId;
use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::package::{CodeSpec, Zip};
use crate::report::Progress;
use crate::resources::function::needs_code;
use crate::resources::shape::{Action, Change, Ctx, Ids, Kind, Observation, Plan, PlanItem};
use crate::stack::Stack;
use order::{order, Step};

/// Observes every step's resource: first what needs nothing, then (with the API's id) what
/// lives under the API. Returns the observation and the ids it shows.
async fn observe(steps: &[Step], cx: &Ctx<'_>) -> Result<(Observation, Ids)> {
    let mut obs = Observation::default();
    for under_api in [false, true] {
        let ids = known(steps.iter().filter(|s| !s.under_api), cx, &obs, under_api);
        let cx = cx.with_ids(ids);
        let wave = steps.iter().filter(|s| s.under_api == under_api);
        for observed in futures::future::try_join_all(wave.map(|s| s.observe(&cx))).await? {
            observed.store(&mut obs);
        }
    }
    let ids = known(steps.iter(), cx, &obs, true);
    Ok((obs, ids))
}

/// The ids the observed resources give, merged in order (none before anything is observed).
fn known<'s>(
    steps: impl Iterator<Item = &'s Step>,
    cx: &Ctx<'_>,
    obs: &Observation,
    observed: bool,
) -> Ids {
    let mut ids = cx.ids.clone();
    if observed {
        for s in steps {
            let now = cx.with_ids(ids.clone());
            ids.merge(s.ids(&now, obs));
        }
    }
    ids
}

/// The plan: every step's items, in order. Pure.
fn plan(steps: &[Step], cx: &Ctx<'_>, obs: &Observation) -> Result<Plan> {
    let mut items = Vec::new();
    for s in steps {
        items.extend(s.plan(cx, obs)?);
    }
    Ok(Plan { items })
}

/// What `up` did (or, with `--dry-run`, would do).
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    pub project: String,
    /// The environment (`--env`), when one was picked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    pub region: String,
    pub account: String,
    pub dry_run: bool,
    pub changed: bool,
    pub resources: Vec<PlanItem>,
    pub ids: IdsReport,
    pub urls: Option<Urls>,
    /// What clients may do with topics (`[auth]`, `[topics]`).
    pub topics: crate::config::TopicAccess,
}

/// The ids `up` reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdsReport {
    pub table_arn: Option<String>,
    pub role_arn: Option<String>,
    pub function_arn: Option<String>,
    pub api_id: Option<String>,
    pub integration_id: Option<String>,
    pub stage: String,
    pub log_group: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Urls {
    pub websocket: String,
    pub callback: String,
    /// With `[domain]` and no hosted zone: the regional target a CNAME (or alias) for the
    /// domain must point at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_target: Option<String>,
}

impl fmt::Display for UpReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = |a: &Action| match (a, self.dry_run) {
            (Action::Create, true) => "create",
            (Action::Create, false) => "created",
            (Action::Update(_), true) => "update",
            (Action::Update(_), false) => "updated",
            (Action::Delete, true) => "delete",
            (Action::Delete, false) => "deleted",
            (Action::NoChange, _) => "no change",
        };
        let label = crate::naming::label(&self.project, self.env.as_deref());
        if self.dry_run {
            writeln!(
                f,
                "Plan for project {label} in {} (dry run: nothing was changed):",
                self.region
            )?;
        }
        for item in &self.resources {
            if !self.dry_run && !item.action.is_change() {
                continue;
            }
            writeln!(
                f,
                "  {:<18} {:<44} {}",
                item.kind.to_string(),
                item.name,
                verb(&item.action)
            )?;
            for c in item.action.changes() {
                writeln!(f, "      {c}")?;
            }
        }
        if !self.changed {
            writeln!(
                f,
                "No changes: the stack of project {label} matches the config."
            )?;
        } else if self.dry_run {
            let n = self
                .resources
                .iter()
                .filter(|i| i.action.is_change())
                .count();
            writeln!(
                f,
                "{n} resource(s) would change. Run without --dry-run to apply."
            )?;
        }
        if let Some(urls) = &self.urls {
            writeln!(f, "WebSocket URL: {}", urls.websocket)?;
            writeln!(f, "Callback URL:  {}", urls.callback)?;
            if let Some(t) = &urls.dns_target {
                writeln!(f, "DNS:           point a CNAME for the domain at {t}")?;
            }
        }
        writeln!(f, "Topics:        {}", self.topics)?;
        if let Some(w) = &self.topics.warning {
            writeln!(f, "WARNING: {w}")?;
        }
        Ok(())
    }
}

pub struct UpOptions<'a> {
    pub dry_run: bool,
    pub code: CodeSpec,
    /// Where the handler source is, to build it when the plan needs new code.
    pub source_dir: Option<&'a std::path::Path>,
    /// Asked before the first write with the plan; false cancels.
    pub confirm: &'a (dyn Fn(&Plan) -> bool + Sync),
    /// Asked, before anything is written, whether the account's CloudWatch role for API
    /// Gateway may be set as shown, when the plan changes it and the config does not allow it
    /// (`[api] manage_account_log_role`); false refuses the whole run.
    pub confirm_account: &'a (dyn Fn(&Change) -> bool + Sync),
}

/// Convergence passes `up` and `down` make when AWS fails transiently (see
/// [`Error::is_retryable`]): each pass observes afresh, so what a failed call did (a create
/// whose answer was lost, say) is found rather than repeated.
pub const PASSES: u32 = 6;

/// Runs `pass` in up to [`PASSES`] passes, each retry announced on `progress` in one line.
async fn in_passes<T, F, Fut>(progress: &Progress, pass: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let n = std::sync::atomic::AtomicU32::new(1);
    crate::retry::passes(
        PASSES,
        Error::is_retryable,
        |e, _| {
            let next = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.note(format!(
                "{}; observing again (pass {next} of {PASSES})",
                crate::redact::redact(&e.to_string())
            ));
        },
        pass,
    )
    .await
}

/// `ask`, until it answers yes once; from then on the answer is yes without asking.
fn remembered<'a, T: ?Sized>(
    ask: &'a (dyn Fn(&T) -> bool + Sync),
) -> impl Fn(&T) -> bool + Sync + 'a {
    let yes = std::sync::atomic::AtomicBool::new(false);
    move |x| {
        if yes.load(std::sync::atomic::Ordering::Relaxed) {
            return true;
        }
        let ok = ask(x);
        yes.store(ok, std::sync::atomic::Ordering::Relaxed);
        ok
    }
}

/// Creates or converges the stack. The report lists the changes of the first pass (what the
/// user was shown and confirmed); later passes finish the same plan.
pub async fn up(stack: &Stack, opts: UpOptions<'_>, progress: &Progress) -> Result<UpReport> {
    let first: Mutex<Option<Plan>> = Default::default();
    // The plan, and the account-wide change, are each asked about once, however many passes
    // it takes.
    let confirm = remembered(opts.confirm);
    let confirm_account = remembered(opts.confirm_account);
    let mut report = in_passes(progress, || {
        let attempt = UpOptions {
            dry_run: opts.dry_run,
            code: opts.code.clone(),
            source_dir: opts.source_dir,
            confirm: &confirm,
            confirm_account: &confirm_account,
        };
        up_once(stack, attempt, progress, &first)
    })
    .await?;
    if let Some(plan) = first.into_inner().unwrap_or_else(|p| p.into_inner()) {
        report.changed = !plan.is_noop();
        report.resources = plan.items;
    }
    Ok(report)
}

async fn up_once(
    stack: &Stack,
    opts: UpOptions<'_>,
    progress: &Progress,
    first_plan: &Mutex<Option<Plan>>,
) -> Result<UpReport> {
    let n = &stack.names;
    let steps = order();
    let cx = Ctx {
        stack,
        ids: Ids::default(),
        code: &opts.code,
        zip: None,
        progress,
    };
    let (obs, ids) = observe(&steps, &cx).await?;
    let cx = cx.with_ids(ids.clone());
    let plan = plan(&steps, &cx, &obs)?;
    first_plan
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(|| plan.clone());
    let mut report = UpReport {
        project: n.project.clone(),
        env: stack.config.env.clone(),
        region: n.region.clone(),
        account: n.account.clone(),
        dry_run: opts.dry_run,
        changed: !plan.is_noop(),
        resources: plan.items.clone(),
        urls: None,
        ids: IdsReport::default(),
        topics: stack.config.topic_access(),
    };
    if opts.dry_run || plan.is_noop() {
        finish(stack, &mut report, &ids);
        return Ok(report);
    }

    // What would fail half-way (a secret the function cannot read, a certificate that cannot
    // serve the domain) stops the run before its first write.
    if let Some(why) = steps.iter().find_map(|s| s.refuse(&cx, &obs)) {
        return Err(Error::Refused(why));
    }
    // An account-wide change is never made silently.
    if let Some(change) = plan.action(&Kind::AccountLogRole).changes().first() {
        if !stack.config.api.logging.manage_account_log_role && !(opts.confirm_account)(change) {
            crate::fail!(
                Refused,
                "API Gateway's logs need the account's CloudWatch role ({change}), a setting of the whole account in {} that wsctl changes only when allowed: set [api] manage_account_log_role = true, run `wsctl up` on a terminal (without --yes) and confirm, or turn API Gateway's logs off ([api] access_log = false, execution_log_level = \"OFF\"). Nothing was changed.",
                n.region
            );
        }
    }
    if !(opts.confirm)(&plan) {
        crate::fail!(Refused, "cancelled: nothing was changed");
    }

    // Build (or load) the code first: a build failure must not leave a half-made stack.
    let zip = code(stack, &opts, &plan, progress).await?;
    let cx = Ctx {
        zip: zip.as_ref(),
        ..cx
    };
    let ids = apply(&steps, &cx, &obs, &plan).await?;
    finish(stack, &mut report, &ids);
    Ok(report)
}

/// The zip to upload, when the plan changes the function's code: the one given, or built now.
async fn code(
    stack: &Stack,
    opts: &UpOptions<'_>,
    plan: &Plan,
    progress: &Progress,
) -> Result<Option<Zip>> {
    if !needs_code(plan.action(&Kind::Function)) {
        return Ok(None);
    }
    Ok(Some(match &opts.code {
        CodeSpec::Zip(z) => z.clone(),
        CodeSpec::Deployed => crate::fail!(Failed, "internal: up needs code but was given none"),
        CodeSpec::Source { .. } => {
            let dir = opts
                .source_dir
                .ok_or_else(|| {
                    Error::Usage(
                        "the handler must be built but its source is not available; pass --handler-zip"
                            .into(),
                    )
                })?
                .to_path_buf();
            let arch = stack.config.function.architecture;
            let p = progress.clone();
            let zip = tokio::task::spawn_blocking(move || {
                crate::package::build(&dir, arch, &|m| p.note(m))
            })
            .await
            .map_err(|e| Error::Build(format!("the build task failed: {e}")))??;
            zip.for_project(&stack.config)?
        }
    }))
}

/// Applies every step as soon as the steps it follows are applied (independent ones
/// concurrently); each learns the ids of those before it. Returns every id learned.
async fn apply(steps: &[Step], cx: &Ctx<'_>, obs: &Observation, plan: &Plan) -> Result<Ids> {
    let ids = Mutex::new(cx.ids.clone());
    let done: Mutex<HashSet<TypeId>> = Mutex::default();
    let applied = tokio::sync::Notify::new();
    futures::future::try_join_all(steps.iter().map(|step| {
        let (ids, done, applied) = (&ids, &done, &applied);
        async move {
            loop {
                let notified = applied.notified();
                let ready = {
                    let done = done.lock().unwrap_or_else(|p| p.into_inner());
                    step.after.iter().all(|d| done.contains(d))
                };
                if ready {
                    break;
                }
                notified.await;
            }
            let now = cx.with_ids(ids.lock().unwrap_or_else(|p| p.into_inner()).clone());
            let changing: Vec<&PlanItem> = items_of(step, &now, obs, plan);
            let progress: Vec<_> = changing
                .iter()
                .map(|i| {
                    cx.progress
                        .step(format!("{} {}", i.kind, i.name), "applying")
                })
                .collect();
            let learned = step.apply(&now, obs, plan).await?;
            for (bar, item) in progress.into_iter().zip(&changing) {
                bar.done(item.action.describe());
            }
            ids.lock().unwrap_or_else(|p| p.into_inner()).merge(learned);
            done.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(step.id);
            applied.notify_waiters();
            Ok::<_, Error>(())
        }
    }))
    .await?;
    Ok(ids.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// The plan's items of `step` that change something.
fn items_of<'p>(step: &Step, cx: &Ctx, obs: &Observation, plan: &'p Plan) -> Vec<&'p PlanItem> {
    let kinds: Vec<Kind> = step
        .plan(cx, obs)
        .map(|items| items.into_iter().map(|i| i.kind).collect())
        .unwrap_or_default();
    plan.items
        .iter()
        .filter(|i| i.action.is_change() && kinds.contains(&i.kind))
        .collect()
}

/// The report's ids and URLs, from what is known now.
fn finish(stack: &Stack, report: &mut UpReport, ids: &Ids) {
    let n = &stack.names;
    // Where DNS must point, when wsctl does not keep the record itself.
    let unmanaged_dns = stack
        .config
        .domain
        .as_ref()
        .is_some_and(|d| d.hosted_zone_id.is_none());
    report.urls = ids.api_id.as_ref().map(|id| Urls {
        websocket: n.websocket_url(id),
        callback: n.callback_url(id),
        dns_target: ids.dns_target.clone().filter(|_| unmanaged_dns),
    });
    report.ids = IdsReport {
        table_arn: ids.table_arn.clone(),
        role_arn: ids.role_arn.clone(),
        function_arn: ids.function_arn.clone(),
        api_id: ids.api_id.clone(),
        integration_id: ids.integration_id.clone(),
        stage: n.stage.clone(),
        log_group: n.log_group.clone(),
    };
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::aws::Clients;
    use crate::config::Config;
    use crate::resources::alarm::{self, Alarm};
    use crate::resources::role::{self, Role};
    use crate::resources::shape::KNOWN_AFTER_APPLY;
    use crate::resources::table::{self, Tables};

    /// A stack of `config`, with clients that are never called.
    fn stack(config: &str) -> Stack {
        let config = Config::parse(Path::new("wsctl.toml"), config).unwrap();
        let sdk = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("us-east-1"))
            .behavior_version(aws_config::BehaviorVersion::latest())
            .build();
        Stack::new(config, Clients::from_sdk(sdk), "123456789012")
    }

    /// The plan for `stack` when `edit` has set what exists (and nothing else exists).
    fn plan_with(stack: &Stack, edit: impl FnOnce(&mut Observation)) -> Result<Plan> {
        let steps = order();
        let progress = Progress::new(true);
        let cx = Ctx {
            stack,
            ids: Ids::default(),
            code: &CodeSpec::Deployed,
            zip: None,
            progress: &progress,
        };
        let mut obs = Observation::default();
        for s in &steps {
            s.absent().store(&mut obs);
        }
        edit(&mut obs);
        let ids = known(steps.iter(), &cx, &obs, true);
        plan(&steps, &cx.with_ids(ids), &obs)
    }

    fn rows(plan: &Plan) -> Vec<(String, String, &'static str)> {
        plan.items
            .iter()
            .map(|i| {
                let action = match i.action {
                    Action::Create => "create",
                    Action::Update(_) => "update",
                    Action::Delete => "delete",
                    Action::NoChange => "no_change",
                };
                (i.kind.to_string(), i.name.clone(), action)
            })
            .collect()
    }

    #[test]
    fn a_new_stack_is_created_whole_in_the_engines_order() {
        let plan = plan_with(&stack("project = \"shop\""), |_| {}).unwrap();
        let want = [
            ("table", "shop_ws_connections"),
            ("subscriptions", "shop_ws_subscriptions"),
            ("broadcasts", "shop_ws_broadcasts"),
            ("role", "shop-websocket-lambda-role"),
            ("log_group", "/aws/lambda/shop-websocket-handler"),
            ("function", "shop-websocket-handler"),
            ("api", "shop-websocket"),
            ("integration", "AWS_PROXY"),
            ("route $connect", "$connect"),
            ("route $disconnect", "$disconnect"),
            ("route $default", "$default"),
            ("stage", "prod"),
            ("permission", "wsctl-apigateway-invoke"),
            ("dashboard", "shop-websocket"),
        ]
        .map(|(k, n)| (k.to_owned(), n.to_owned(), "create"));
        assert_eq!(rows(&plan), want);
        assert!(!plan.is_noop());
    }

    #[test]
    fn an_optional_resource_turned_off_goes_only_when_wsctl_made_it() {
        let s = stack("project = \"shop\"\n[dashboard]\nenabled = false");
        let alarm = |managed: bool| alarm::Observed {
            name: "shop-websocket-errors".into(),
            arn: "arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-websocket-errors".into(),
            namespace: alarm::NAMESPACE.into(),
            metric: alarm::METRIC.into(),
            function: Some("shop-websocket-handler".into()),
            statistic: "Sum".into(),
            period_seconds: 60,
            evaluation_periods: 1,
            threshold: 1.0,
            comparison: "GreaterThanOrEqualToThreshold".into(),
            treat_missing_data: "notBreaching".into(),
            actions: vec![],
            actions_enabled: true,
            tags: match managed {
                true => BTreeMap::from([("ManagedBy".into(), "wsctl".into())]),
                false => BTreeMap::new(),
            },
        };
        let plan = plan_with(&s, |o| o.insert::<Alarm>(Some(alarm(true)))).unwrap();
        assert_eq!(plan.action(&Kind::Alarm), &Action::Delete);
        assert!(rows(&plan).iter().all(|r| r.0 != "dashboard"));
        let plan = plan_with(&s, |o| o.insert::<Alarm>(Some(alarm(false)))).unwrap();
        assert!(
            rows(&plan).iter().all(|r| r.0 != "alarm"),
            "someone else's alarm stays"
        );
    }

    #[test]
    fn a_table_with_another_key_is_refused_before_anything() {
        let s = stack("project = \"shop\"");
        let wrong = table::Observed {
            name: "shop_ws_connections".into(),
            arn: "arn".into(),
            status: "ACTIVE".into(),
            billing_mode: "PAY_PER_REQUEST".into(),
            key_schema: "id (S, HASH)".into(),
            ttl_status: "ENABLED".into(),
            ttl_attribute: Some("ttl".into()),
            tags: BTreeMap::new(),
            item_count: None,
        };
        let err = plan_with(&s, |o| o.insert::<Tables>(vec![Some(wrong)])).unwrap_err();
        assert!(matches!(err, Error::Refused(_)), "{err}");
        assert!(
            err.to_string().contains("DynamoDB cannot change a key"),
            "{err}"
        );
    }

    /// A role whose policy names an API that is gone: the plan says the policy will name the
    /// new API, which only applying knows.
    #[test]
    fn what_names_a_new_api_is_known_after_apply() {
        let s = stack("project = \"shop\"");
        let old = role::least_privilege_policy(&s.names, "oldapi", None, false);
        let existing = role::Observed {
            name: s.names.role.clone(),
            arn: s.names.role_arn(),
            trust: role::trust_policy(),
            attached: vec![crate::naming::BASIC_EXECUTION_POLICY.into()],
            inline: BTreeMap::from([(s.names.policy.clone(), old)]),
            tags: s.tags.clone(),
        };
        let plan = plan_with(&s, |o| o.insert::<Role>(Some(existing))).unwrap();
        let changes = plan.action(&Kind::Role).changes();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].field, format!("inline.{}", s.names.policy));
        assert_eq!(changes[0].to, KNOWN_AFTER_APPLY);
    }

    #[test]
    fn api_gateways_logs_plan_the_account_setting_first() {
        let s = stack("project = \"shop\"\n[api]\naccess_log = true");
        let plan = plan_with(&s, |_| {}).unwrap();
        let first: Vec<String> = rows(&plan).into_iter().take(2).map(|r| r.0).collect();
        assert_eq!(first, ["account_log_role", "access_log_group"]);
    }
}
