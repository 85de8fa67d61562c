//! Observe every resource, plan ([`plan`]: the desired state and the actions), apply in
//! dependency order (independent resources concurrently). `down` ([`down`]) runs the same
//! observation and deletes in reverse.

mod down;
mod plan;

pub use down::{down, DownItem};
pub use plan::{plan, Plan, PlanItem, ACCOUNT_RESOURCE};

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::aws::Clients;
use crate::config::Config;
use crate::naming::{self, Names};
use crate::package::Zip;
use crate::report::Progress;
use crate::resources::function::CodeSpec;
use crate::resources::{
    account, alarm, api, dashboard, domain, function, grant, logs, role, secret, table, Action,
    Change,
};

/// A project's stack: its config, names and AWS clients.
pub struct Stack {
    pub config: Config,
    pub names: Names,
    pub clients: Clients,
    pub tags: BTreeMap<String, String>,
}

impl Stack {
    pub fn new(config: Config, clients: Clients, account: &str) -> Stack {
        let names = Names::new(&config, clients.region(), account);
        let tags = naming::tags(&config);
        Stack {
            config,
            names,
            clients,
            tags,
        }
    }
}

/// Everything that exists, read concurrently.
#[derive(Debug, Clone, Serialize)]
pub struct Observation {
    pub table: Option<table::Observed>,
    /// The subscriptions index (topics keyed by topic).
    pub subscriptions: Option<table::Observed>,
    /// The broadcasts' status records.
    pub broadcasts: Option<table::Observed>,
    pub role: Option<role::Observed>,
    pub function: Option<function::Observed>,
    pub api: Option<api::Observed>,
    pub permission: Vec<api::Statement>,
    pub log_group: Option<logs::Observed>,
    pub alarm: Option<alarm::Observed>,
    /// API Gateway's access log group of the stage.
    pub access_log_group: Option<logs::Observed>,
    /// The account's CloudWatch role for API Gateway: read only when the config asks for
    /// API Gateway's logs (it needs apigateway:GET on the account).
    pub account: Option<account::Observed>,
    pub dashboard: Option<dashboard::Observed>,
    /// The custom domain, its certificate and DNS record (`[domain]` only).
    pub domain: Option<domain::DomainObs>,
    /// Domain names of this stack (by their tags) that the config does not name.
    pub stray_domains: Vec<domain::Observed>,
}

pub async fn observe(stack: &Stack) -> Result<Observation> {
    observe_with(stack, true).await
}

/// Reads every resource concurrently; the API (and what hangs off it) only with `with_api`.
async fn observe_with(stack: &Stack, with_api: bool) -> Result<Observation> {
    let c = &stack.clients;
    let n = &stack.names;
    let api = async {
        match with_api {
            true => api::observe(c, n).await,
            false => Ok(None),
        }
    };
    let account = async {
        match stack.config.api.logging.any() {
            true => account::observe(c).await.map(Some),
            false => Ok(None),
        }
    };
    let domain = async {
        match &stack.config.domain {
            Some(d) => domain::observe(c, d).await.map(Some),
            None => Ok(None),
        }
    };
    let (
        (table, subscriptions, broadcasts, role, function, api, permission, log_group, alarm),
        (access_log_group, account, dashboard, domain, stray_domains),
    ) = tokio::try_join!(
        async {
            tokio::try_join!(
                table::observe(c, &n.table),
                table::observe(c, &n.subscriptions_table),
                table::observe(c, &n.broadcasts_table),
                role::observe(c, &n.role),
                function::observe(c, &n.function),
                api,
                api::observe_permission(c, &n.function),
                logs::observe(c, &n.log_group),
                alarm::observe(c, &n.alarm),
            )
        },
        async {
            tokio::try_join!(
                logs::observe(c, &n.access_log_group),
                account,
                dashboard::observe(c, &n.dashboard),
                domain,
                domain::strays(
                    c,
                    &stack.tags,
                    stack.config.domain.as_ref().map(|d| d.name.as_str())
                ),
            )
        },
    )?;
    Ok(Observation {
        table,
        subscriptions,
        broadcasts,
        role,
        function,
        api,
        permission,
        log_group,
        alarm,
        access_log_group,
        account,
        dashboard,
        domain,
        stray_domains,
    })
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
    pub ids: Ids,
    pub urls: Option<Urls>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Ids {
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
        if self.dry_run {
            writeln!(
                f,
                "Plan for project {} in {} (dry run: nothing was changed):",
                crate::naming::label(&self.project, self.env.as_deref()),
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
                item.resource,
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
                "No changes: the stack of project {} matches the config.",
                crate::naming::label(&self.project, self.env.as_deref())
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
/// [`crate::resources::is_retryable`]): each pass observes afresh, so what a failed call did
/// (a create whose answer was lost, say) is found rather than repeated.
pub const PASSES: u32 = 6;

/// The pause before pass `n` (2, 3...): exponential, capped at 8 s.
fn pass_backoff(n: u32) -> std::time::Duration {
    std::time::Duration::from_millis((250u64 << n.min(5)).min(8_000))
}

/// Runs `pass` until it succeeds, fails for good, or [`PASSES`] passes have failed
/// transiently; each retry is announced on `progress`.
async fn in_passes<T, F, Fut>(progress: &Progress, mut pass: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut n = 1;
    loop {
        match pass().await {
            Err(e) if n < PASSES && crate::resources::is_retryable(&e) => {
                n += 1;
                progress.note(format!(
                    "{}; observing again (pass {n} of {PASSES})",
                    crate::redact::redact(&format!("{e:#}"))
                ));
                tokio::time::sleep(pass_backoff(n)).await;
            }
            result => return result,
        }
    }
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
    let first: std::sync::Mutex<Option<Plan>> = Default::default();
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
    first_plan: &std::sync::Mutex<Option<Plan>>,
) -> Result<UpReport> {
    let n = &stack.names;
    let obs = observe(stack).await?;
    let plan = plan(stack, &obs, &opts.code)?;
    first_plan
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(|| plan.clone());
    let mut ids = Ids {
        table_arn: obs.table.as_ref().map(|t| t.arn.clone()),
        role_arn: obs.role.as_ref().map(|r| r.arn.clone()),
        function_arn: obs.function.as_ref().map(|f| f.arn.clone()),
        api_id: obs.api.as_ref().map(|a| a.api.id.clone()),
        integration_id: obs
            .api
            .as_ref()
            .and_then(|a| api::chosen_integration(a, &stack.desired_api()))
            .map(|i| i.id.clone()),
        stage: n.stage.clone(),
        log_group: n.log_group.clone(),
    };
    let mut report = UpReport {
        project: n.project.clone(),
        env: stack.config.env.clone(),
        region: n.region.clone(),
        account: n.account.clone(),
        dry_run: opts.dry_run,
        changed: !plan.is_noop(),
        resources: plan.items.clone(),
        urls: None,
        ids: Ids::default(),
    };
    // Where DNS must point, when wsctl does not keep the record itself.
    let unmanaged_dns = stack
        .config
        .domain
        .as_ref()
        .is_some_and(|d| d.hosted_zone_id.is_none());
    let mut dns_target = obs
        .domain
        .as_ref()
        .and_then(|o| o.domain.as_ref())
        .and_then(|d| d.target.clone());
    let urls = |ids: &Ids, target: &Option<String>| {
        ids.api_id.as_ref().map(|id| Urls {
            websocket: n.websocket_url(id),
            callback: n.callback_url(id),
            dns_target: target.clone().filter(|_| unmanaged_dns),
        })
    };
    if opts.dry_run || plan.is_noop() {
        report.urls = urls(&ids, &dns_target);
        report.ids = ids;
        return Ok(report);
    }

    // A secret the function could not read would fail every $connect: refuse before writing.
    if let Some((_, Some(problem))) =
        secret::check(&stack.clients, stack.config.auth.as_ref()).await?
    {
        anyhow::bail!("[auth] secret_parameter: {problem}");
    }

    // A certificate that cannot serve the domain would fail CreateDomainName half-way.
    if let (Some(d), Some(o)) = (&stack.config.domain, &obs.domain) {
        if let Some(problem) = domain::certificate_problem(o, d, &n.region) {
            anyhow::bail!("[domain] certificate_arn: {problem}. Nothing was changed.");
        }
    }
    // An account-wide change is never made silently.
    if let Some(change) = plan.get(ACCOUNT_RESOURCE).changes().first() {
        if !stack.config.api.logging.manage_account_log_role && !(opts.confirm_account)(change) {
            anyhow::bail!(
                "API Gateway's logs need the account's CloudWatch role ({change}), a setting of the whole account in {} that wsctl changes only when allowed: set [api] manage_account_log_role = true, run `wsctl up` on a terminal (without --yes) and confirm, or turn API Gateway's logs off ([api] access_log = false, execution_log_level = \"OFF\"). Nothing was changed.",
                n.region
            );
        }
    }
    if !(opts.confirm)(&plan) {
        anyhow::bail!("cancelled: nothing was changed");
    }

    // Build (or load) the code first: a build failure must not leave a half-made stack.
    let function_action = plan.get("function").clone();
    let zip: Option<Zip> = if function::needs_code(&function_action) {
        Some(match &opts.code {
            CodeSpec::Zip(z) => z.clone(),
            CodeSpec::Deployed => anyhow::bail!("internal: up needs code but was given none"),
            CodeSpec::Source { .. } => {
                let dir = opts
                    .source_dir
                    .context("the handler must be built but its source is not available; pass --handler-zip")?
                    .to_path_buf();
                let arch = stack.config.function.architecture;
                let p = progress.clone();
                tokio::task::spawn_blocking(move || {
                    crate::package::build(&dir, arch, &|m| p.note(m))
                })
                .await
                .context("the build task failed")??
            }
        })
    } else {
        None
    };

    let c = &stack.clients;
    // Phase A: resources that depend on nothing.
    let d_api = stack.desired_api();
    let d_logs = stack.desired_logs();
    let base_role = stack.desired_role(ids.api_id.as_deref());
    let apply_table =
        |resource: &'static str, kind: table::Kind, observed: Option<&table::Observed>| {
            let desired = stack.desired_table_of(kind);
            let action = plan.get(resource);
            let observed = observed.cloned();
            async move {
                let step = progress.step(
                    resource,
                    if action.is_change() {
                        "applying"
                    } else {
                        "unchanged"
                    },
                );
                let arn = table::apply(c, observed.as_ref(), &desired, action).await?;
                step.done(describe(action));
                Ok::<_, anyhow::Error>(arn)
            }
        };
    let d_access_logs = stack.desired_access_logs();
    let ((table_arn, _, _, role_arn, api_id, ()), ()) = tokio::try_join!(
        async {
            tokio::try_join!(
                apply_table("table", table::Kind::Connections, obs.table.as_ref()),
                apply_table(
                    "subscriptions",
                    table::Kind::Subscriptions,
                    obs.subscriptions.as_ref()
                ),
                apply_table(
                    "broadcasts",
                    table::Kind::Broadcasts,
                    obs.broadcasts.as_ref()
                ),
                async {
                    let action = plan.get("role");
                    let step = progress.step("role", "applying");
                    let arn = role::apply_base(c, obs.role.as_ref(), &base_role).await?;
                    step.done(describe(action));
                    Ok(arn)
                },
                async {
                    let action = plan.get("api");
                    let step = progress.step("api", "applying");
                    let id = api::apply_api(c, n, obs.api.as_ref().map(|a| &a.api), &d_api).await?;
                    step.done(describe(action));
                    Ok(id)
                },
                async {
                    let action = plan.get("log_group");
                    let step = progress.step("log_group", "applying");
                    logs::apply(c, obs.log_group.as_ref(), &d_logs, action).await?;
                    step.done(describe(action));
                    Ok(())
                },
            )
        },
        // API Gateway's logging: the account's role and the access log group, both needed
        // before the stage (phase C) can point at them.
        async {
            let (account_action, logs_action) =
                (plan.get(ACCOUNT_RESOURCE), plan.get("access_log_group"));
            let account = async {
                if account_action.is_change() {
                    let step = progress.step(ACCOUNT_RESOURCE, "setting");
                    let arn = account::apply(c).await?;
                    step.done(format!(
                        "API Gateway's CloudWatch role for {} is {arn}",
                        n.region
                    ));
                }
                Ok::<_, anyhow::Error>(())
            };
            let group = async {
                match (&d_access_logs, logs_action) {
                    (_, Action::NoChange) => {}
                    (None, _) => {
                        let step = progress.step("access_log_group", "deleting");
                        logs::delete(c, &n.access_log_group).await?;
                        step.done("deleted");
                    }
                    (Some(d), action) => {
                        let step = progress.step("access_log_group", "applying");
                        logs::apply(c, obs.access_log_group.as_ref(), d, action).await?;
                        step.done(describe(action));
                    }
                }
                Ok(())
            };
            tokio::try_join!(account, group)?;
            Ok(())
        },
    )?;
    ids.table_arn = Some(table_arn);
    ids.role_arn = Some(role_arn);
    ids.api_id = Some(api_id.clone());

    // Phase B: what needs the API id: the role's inline policy and the function.
    let d_role = stack.desired_role(Some(&api_id));
    let d_function = stack.desired_function(Some(&api_id), opts.code.clone());
    let function_action = function::diff(obs.function.as_ref(), &d_function);
    let (_, function_arn) = tokio::try_join!(
        async {
            let step = progress.step("role policy", "applying");
            let wrote = role::apply_policy(c, obs.role.as_ref(), &d_role).await?;
            step.done(if wrote { "put" } else { "unchanged" });
            Ok::<_, anyhow::Error>(())
        },
        async {
            let step = progress.step("function", "applying");
            let note = |m: String| step.note(m);
            let arn = function::apply(
                c,
                obs.function.as_ref(),
                &d_function,
                &function_action,
                zip.as_ref(),
                &note,
            )
            .await?;
            step.done(describe(&function_action));
            Ok(arn)
        },
    )?;
    ids.function_arn = Some(function_arn);

    // Phase C: the wiring that needs both: integration, routes, stage, permission.
    let api_obs = obs.api.as_ref().filter(|a| a.api.id == api_id);
    let (integration_id, _) = tokio::try_join!(
        async {
            let step = progress.step("integration, routes, stage", "applying");
            let id = api::apply_wiring(c, &api_id, api_obs, &d_api).await?;
            step.done("converged");
            Ok::<_, anyhow::Error>(id)
        },
        async {
            let step = progress.step("permission", "applying");
            let wrote = api::apply_permission(c, n, &obs.permission, &api_id).await?;
            step.done(if wrote {
                "scoped to this API's stage"
            } else {
                "unchanged"
            });
            Ok(())
        },
    )?;
    ids.integration_id = Some(integration_id);

    // The custom domain: its name, its mapping to the stage (which exists now), its record.
    if let (Some(d), Some(o)) = (&stack.config.domain, &obs.domain) {
        let step = progress.step("domain", "applying");
        let target = domain::apply(c, o, d, &api_id, &n.stage, &stack.tags).await?;
        step.done(format!(
            "{} -> {}",
            d.name,
            target.as_deref().unwrap_or("(target not reported)")
        ));
        dns_target = target;
    }

    for o in &obs.stray_domains {
        let step = progress.step("domain", "deleting");
        domain::delete_stray(c, o).await?;
        step.done(format!("deleted {} (no longer in the config)", o.name));
    }

    // The grants' statements on the function (it exists now).
    if plan.items.iter().any(|i| i.resource == "grant") {
        let step = progress.step("grants", "applying");
        let wrote = grant::apply(c, &n.function, &obs.permission, &stack.config.grants).await?;
        step.done(if wrote { "converged" } else { "unchanged" });
    }

    // Last, the alarm on the function's errors (or its removal).
    match (stack.desired_alarm(), plan.get("alarm")) {
        (_, Action::NoChange) => {}
        (None, _) => {
            let step = progress.step("alarm", "deleting");
            alarm::delete(c, &n.alarm).await?;
            step.done("deleted");
        }
        (Some(d), action) => {
            let step = progress.step("alarm", "applying");
            alarm::apply(c, obs.alarm.as_ref(), &d, action).await?;
            step.done(describe(action));
        }
    }
    match (
        stack.desired_dashboard(Some(&api_id)),
        plan.get("dashboard"),
    ) {
        (None, Action::NoChange) => {}
        (None, _) => {
            let step = progress.step("dashboard", "deleting");
            dashboard::delete(c, &n.dashboard).await?;
            step.done("deleted");
        }
        (Some(d), _) => {
            // Written whenever the body differs, also when the plan could not know the body
            // (a new API's id) and found no change.
            let step = progress.step("dashboard", "applying");
            let body = d
                .body
                .as_ref()
                .expect("the body is known once the API exists");
            let wrote = dashboard::apply(c, obs.dashboard.as_ref(), &d.name, body).await?;
            step.done(if wrote { "put" } else { "unchanged" });
        }
    }
    report.urls = urls(&ids, &dns_target);
    report.ids = ids;
    Ok(report)
}

/// A one-line summary of an action: created / unchanged / updated (fields).
pub fn describe(action: &Action) -> String {
    match action {
        Action::Create => "created".into(),
        Action::Delete => "deleted".into(),
        Action::NoChange => "unchanged".into(),
        Action::Update(changes) => format!(
            "updated ({})",
            changes
                .iter()
                .map(|c| c.field.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
