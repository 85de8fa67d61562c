//! wsctl: parse arguments, run the command, print its result once, map errors to exit codes
//! (0 success, 1 AWS failure, 2 usage or config error, 3 drift found by `status`).

mod aws;
mod cli;
mod commands;
mod config;
mod dev;
mod engine;
mod load;
mod lock;
mod naming;
mod ops;
mod package;
mod redact;
mod report;
mod resources;
mod status;

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{
    BroadcastAction, BroadcastArgs, BuildArgs, Cli, Command, ConnectionsAction, ConnectionsArgs,
    DevArgs, DownArgs, EnvArgs, InitArgs, LogsArgs, MessageArgs, SendArgs, SmokeArgs, UnlockArgs,
    UpArgs,
};
use config::Config;
use report::{Output, Progress};
use resources::function::CodeSpec;

/// A mistake in how wsctl was called (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    redact::add_from_env();
    let filter = tracing_subscriber::EnvFilter::try_from_env("WSCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    tracing_subscriber::fmt()
        .with_writer(|| redact::Stderr)
        .with_env_filter(filter)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let output = cli.output;
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let code = exit_code(&e);
            let message = redact::redact(&format!("{e:#}"));
            eprintln!("error: {message}");
            if output == Output::Json {
                let kind = if code == 2 { "usage" } else { "aws" };
                println!(
                    "{}",
                    serde_json::json!({"error": {"kind": kind, "message": message}})
                );
            }
            ExitCode::from(code)
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<config::ConfigError>() || cause.is::<UsageError>() {
            return 2;
        }
        if let Some(setup) = cause.downcast_ref::<aws::AwsSetupError>() {
            return match setup {
                aws::AwsSetupError::Identity(_) => 1,
                _ => 2,
            };
        }
    }
    1
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let progress =
        Progress::new(cli.quiet || cli.output == Output::Json && !std::io::stderr().is_terminal());
    match &cli.command {
        Command::Init(args) => init(&cli.config, args),
        Command::Build(args) => build(&cli, args, &progress),
        Command::Up(args) => up(&cli, args, &progress).await,
        Command::Status => status(&cli).await,
        Command::Down(args) => down(&cli, args, &progress).await,
        Command::Unlock(args) => unlock(&cli, args).await,
        Command::Dev(args) => dev(&cli, args).await,
        Command::Connections(args) => connections(&cli, args).await,
        Command::Broadcast(args) => broadcast(&cli, args).await,
        Command::Send(args) => send(&cli, args).await,
        Command::Logs(args) => logs(&cli, args).await,
        Command::Smoke(args) => smoke(&cli, args).await,
        Command::Env(args) => env_file(&cli, args).await,
        Command::Load(args) => commands::load_test(&cli, args).await,
        Command::Outputs(args) => commands::outputs(&cli, args).await,
        Command::Grant(args) => commands::grant_policy(&cli, args).await,
    }
}

fn init(path: &Path, args: &InitArgs) -> Result<ExitCode> {
    if path.exists() && !args.force {
        return Err(UsageError(format!(
            "{} already exists (use --force to overwrite it)",
            path.display()
        ))
        .into());
    }
    let project = match &args.project {
        Some(p) => p.clone(),
        None => std::env::current_dir()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .map(|n| {
                n.chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '-'
                        }
                    })
                    .collect()
            })
            .unwrap_or_else(|| "my-project".into()),
    };
    let text = config::starter(&project);
    // Never write a file that `up` would then refuse.
    Config::parse(path, &text)
        .map_err(|e| UsageError(format!("cannot use {project:?} as the project name: {e}")))?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "wrote {} for project {project}; next: wsctl up --dry-run",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn load_config(cli: &Cli) -> Result<Config> {
    Ok(Config::load(&cli.config, cli.env.as_deref())?)
}

fn target(cli: &Cli, config: &Config) -> aws::Target {
    aws::Target {
        region: cli.region.clone().or_else(|| config.region.clone()),
        profile: cli.profile.clone().or_else(|| config.profile.clone()),
    }
}

fn build(cli: &Cli, args: &BuildArgs, progress: &Progress) -> Result<ExitCode> {
    let arch = match args.arch {
        Some(a) => a,
        None if cli.config.exists() => load_config(cli)?.function.architecture,
        None => config::Architecture::X86_64,
    };
    let zip = match &args.binary {
        Some(binary) => package::Zip::from_binary(binary, arch, "prebuilt".into())?,
        None => {
            let dir = package::source_dir().map_err(|e| UsageError(format!("{e:#}")))?;
            package::build(&dir, arch, &|m| progress.note(m))?
        }
    };
    std::fs::write(&args.out, zip.bytes.as_slice())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let result = BuildResult {
        path: args.out.display().to_string(),
        architecture: arch.to_string(),
        bytes: zip.bytes.len(),
        code_sha256: zip.sha256_b64.clone(),
    };
    report::print(cli.output, &result);
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct BuildResult {
    path: String,
    architecture: String,
    bytes: usize,
    code_sha256: String,
}

impl std::fmt::Display for BuildResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "wrote {} ({}, {} bytes, CodeSha256 {})",
            self.path, self.architecture, self.bytes, self.code_sha256
        )
    }
}

async fn up(cli: &Cli, args: &UpArgs, progress: &Progress) -> Result<ExitCode> {
    let mut config = load_config(cli)?;
    if let Some(arch) = args.arch {
        config.function.architecture = arch;
    }
    let arch = config.function.architecture;
    let (code, source_dir) = match &args.handler_zip {
        Some(path) => (
            CodeSpec::Zip(
                package::Zip::from_file(path, arch).map_err(|e| UsageError(format!("{e:#}")))?,
            ),
            None,
        ),
        None => {
            let dir = package::source_dir().map_err(|e| UsageError(format!("{e:#}")))?;
            (
                CodeSpec::Source {
                    fingerprint: package::fingerprint(&dir, arch)?,
                },
                Some(dir),
            )
        }
    };
    let stack = connect_stack(cli, config).await?;
    let lock = stack_lock(&stack, "up", args.dry_run, args.lock_timeout, progress).await?;
    let confirm = |plan: &engine::Plan| -> bool {
        if args.yes || args.dry_run || !interactive() {
            return true;
        }
        let changes = plan.items.iter().filter(|i| i.action.is_change());
        let lines =
            changes.map(|i| format!("{} {}: {}", i.resource, i.name, engine::describe(&i.action)));
        ask("wsctl will change:", lines, "Apply these changes?").unwrap_or(false)
    };
    // An account-wide setting is asked about on its own, even when the plan as a whole was
    // confirmed; --yes does not answer it (the config's manage_account_log_role does).
    let confirm_account = |change: &resources::Change| -> bool {
        if args.yes || args.dry_run || !interactive() {
            return false;
        }
        let lines = [
            format!("{change}"),
            "This is API Gateway's CloudWatch role for every API of the account in this region, not only this stack's; `down` leaves it.".to_owned(),
        ];
        ask(
            "wsctl must set an account-wide setting for API Gateway's logs:",
            lines.into_iter(),
            "Set it?",
        )
        .unwrap_or(false)
    };
    let report = engine::up(
        &stack,
        engine::UpOptions {
            dry_run: args.dry_run,
            code,
            source_dir: source_dir.as_deref(),
            confirm: &confirm,
            confirm_account: &confirm_account,
        },
        progress,
    )
    .await;
    let report = release(lock, report, |_| false).await?;
    report::print(cli.output, &report);
    Ok(ExitCode::SUCCESS)
}

/// The stack's locks for a run that writes (none for a dry run).
async fn stack_lock(
    stack: &engine::Stack,
    command: &str,
    dry_run: bool,
    timeout: std::time::Duration,
    progress: &Progress,
) -> Result<Option<lock::StackLock>> {
    if dry_run {
        return Ok(None);
    }
    lock::acquire(stack, command, timeout, &|m| progress.note(m))
        .await
        .map(Some)
}

/// Releases the locks after a run, whatever its outcome (`remove_table` says, from the run's
/// result, whether the lock's table goes too), and says so when another run took the lock
/// over meanwhile.
async fn release<T>(
    lock: Option<lock::StackLock>,
    result: Result<T>,
    remove_table: impl Fn(&T) -> bool,
) -> Result<T> {
    let Some(lock) = lock else {
        return result;
    };
    if lock.lost() {
        let e = anyhow::anyhow!(
            "another run took the stack lock over while this one was writing (this run stalled longer than the lease): run `wsctl status` to see what the stack is now"
        );
        return Err(match result {
            Ok(_) => e,
            Err(first) => first.context(e),
        });
    }
    let released = match &result {
        Ok(value) if remove_table(value) => lock.remove_table().await,
        _ => lock.release().await,
    };
    match (result, released) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => Err(e.context(
            "the run succeeded, but its stack lock could not be removed: its lease ends by itself",
        )),
        (Err(e), _) => Err(e),
    }
}

/// Loads the config and connects: the start of every command that talks to AWS.
async fn stack(cli: &Cli) -> Result<engine::Stack> {
    connect_stack(cli, load_config(cli)?).await
}

async fn connect_stack(cli: &Cli, config: Config) -> Result<engine::Stack> {
    let clients = aws::connect(&target(cli, &config)).await?;
    let account = aws::account_id(&clients).await?;
    Ok(engine::Stack::new(config, clients, &account))
}

/// Whether a person can be asked (stdin and stderr are terminals).
fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Lists `lines` under `header` on stderr and asks `question`; true only for y / yes.
fn ask(header: &str, lines: impl Iterator<Item = String>, question: &str) -> std::io::Result<bool> {
    let mut err = std::io::stderr();
    writeln!(err, "{header}")?;
    for line in lines {
        writeln!(err, "  {line}")?;
    }
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

async fn status(cli: &Cli) -> Result<ExitCode> {
    let stack = stack(cli).await?;
    let report = status::status(&stack).await?;
    report::print(cli.output, &report);
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

async fn down(cli: &Cli, args: &DownArgs, progress: &Progress) -> Result<ExitCode> {
    let stack = stack(cli).await?;
    let lock = stack_lock(&stack, "down", args.dry_run, args.lock_timeout, progress).await?;
    let confirm = |items: &[engine::DownItem]| -> Result<()> {
        if args.yes {
            return Ok(());
        }
        if !interactive() {
            return Err(UsageError(format!(
                "refusing to delete {} resource(s) without confirmation: there is no terminal to ask, pass --yes",
                items.len()
            ))
            .into());
        }
        let lines = items.iter().map(|i| format!("{} {}", i.resource, i.name));
        if ask("wsctl will delete:", lines, "Delete these?")? {
            Ok(())
        } else {
            Err(UsageError("cancelled: nothing was deleted".into()).into())
        }
    };
    let report = engine::down(&stack, args.adopt, args.dry_run, &confirm, progress).await;
    // The stack is gone: its lock's table goes too.
    let report = release(lock, report, |_| true).await?;
    if !args.dry_run {
        progress.note(format!(
            "removed the stack lock table {}",
            stack.names.lock_table
        ));
    }
    report::print(cli.output, &report);
    Ok(ExitCode::SUCCESS)
}

async fn unlock(cli: &Cli, args: &UnlockArgs) -> Result<ExitCode> {
    let stack = stack(cli).await?;
    let report = lock::remote::unlock(&stack, args.force).await?;
    report::print(cli.output, &report);
    Ok(if report.holder.is_some() && !report.removed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn dev(cli: &Cli, args: &DevArgs) -> Result<ExitCode> {
    // The project file is optional here: without one, the handler runs with its defaults.
    let config = if cli.config.exists() {
        Some(load_config(cli)?)
    } else {
        None
    };
    if !args.path.starts_with('/') || args.path.len() < 2 {
        return Err(UsageError(format!(
            "--path {:?} must start with / and name a path, e.g. /ws",
            args.path
        ))
        .into());
    }
    if args.frame_limit == 0 || args.message_limit < args.frame_limit {
        return Err(UsageError(
            "--frame-limit must be positive and at most --message-limit".into(),
        )
        .into());
    }
    let f = config
        .as_ref()
        .map(|c| c.function.clone())
        .unwrap_or_default();
    let api = config.as_ref().map(|c| c.api.clone()).unwrap_or_default();
    let settings = handler::Settings {
        ttl_seconds: f.connection_ttl_seconds,
        allow_client_broadcast: args.allow_client_broadcast || f.allow_client_broadcast,
        max_client_message_bytes: f.max_client_message_bytes as usize,
        broadcast_concurrency: f.broadcast_concurrency as usize,
        broadcast_workers: f.broadcast_workers as u32,
        allowed_origins: if args.allowed_origins.is_empty() {
            f.allowed_origins.clone()
        } else {
            args.allowed_origins.clone()
        },
        max_messages_per_second: args
            .max_messages_per_second
            .unwrap_or(f.max_messages_per_second as u32),
        ..handler::Settings::default()
    };
    let auth = dev_auth(args, config.as_ref().and_then(|c| c.auth.as_ref()))?;
    let opts = dev::DevOptions {
        host: args.host.clone(),
        port: args.port,
        path: args.path.clone(),
        stage: args.stage.clone().unwrap_or(api.stage),
        route_selection_expression: api.route_selection_expression,
        routes: args.routes.clone(),
        idle_timeout: args.idle_timeout,
        max_duration: args.max_duration,
        frame_limit: args.frame_limit,
        message_limit: args.message_limit,
        settings,
        print_events: args.print_events,
        auth,
        quiet: cli.quiet,
        throttle: dev::Throttle::new(
            args.management_rate,
            args.management_burst,
            args.management_latency,
        ),
        function_timeout: std::time::Duration::from_secs(f.timeout_seconds.max(1) as u64),
    };
    let path = opts.path.clone();
    let stage = opts.stage.clone();
    let throttle = opts.throttle.clone();
    let quiet = cli.quiet;
    dev::run(opts, |addr| {
        let host = if addr.ip().is_loopback() { "localhost".to_owned() } else { addr.ip().to_string() };
        let url = format!("ws://{host}:{}{path}", addr.port());
        println!("{url}");
        let _ = std::io::stdout().flush();
        if !quiet {
            eprintln!("wsctl dev: WebSocket {url}  (also ws://{host}:{}/{stage})", addr.port());
            eprintln!("wsctl dev: management API http://{host}:{}/{stage}/@connections/{{id}}", addr.port());
            eprintln!("wsctl dev: Lambda invoke  http://{host}:{}/2015-03-31/functions/{{name}}/invocations", addr.port());
            if let Some(t) = &throttle {
                eprintln!("wsctl dev: management API throttled like API Gateway's account: {t}");
            }
            eprintln!("wsctl dev: Ctrl-C closes every client (1001) and runs $disconnect");
        }
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// Token checks for `wsctl dev`: the flags, else the project's `[auth]` (a JWKS URL works
/// locally; an SSM secret needs `--jwt-secret-env`, since dev reads nothing from AWS).
fn dev_auth(
    args: &DevArgs,
    config: Option<&config::AuthConfig>,
) -> Result<Option<std::sync::Arc<handler::auth::Auth>>> {
    use config::AuthKeys;
    if args.no_auth {
        return Ok(None);
    }
    let from_secret_env = |var: &str| match std::env::var(var) {
        Ok(secret) if !secret.is_empty() => {
            redact::add(secret.clone());
            Ok(handler::auth::Auth::hs256(secret.into_bytes()))
        }
        _ => Err(UsageError(format!(
            "--jwt-secret-env {var}: that environment variable is not set"
        ))),
    };
    let jwks = |url: &str| -> Result<handler::auth::Auth> {
        let fetcher = handler::auth::HttpsFetcher::new().map_err(|e| anyhow::anyhow!(e))?;
        Ok(handler::auth::Auth::jwks(url, Box::new(fetcher)))
    };
    let auth = match (&args.jwks_url, &args.jwt_secret_env, config.map(|c| &c.keys)) {
        (Some(url), _, _) => jwks(url)?,
        (None, Some(var), _) => from_secret_env(var)?,
        (None, None, Some(AuthKeys::Jwks { url })) => jwks(url)?,
        (None, None, Some(AuthKeys::SsmSecret { parameter, .. })) => {
            return Err(UsageError(format!(
                "[auth] secret_parameter = {parameter:?} is an SSM parameter, which wsctl dev does not read: \
                 pass --jwt-secret-env VAR with a local secret in VAR, or --no-auth"
            ))
            .into())
        }
        (None, None, None) => return Ok(None),
    };
    let mut auth = auth;
    auth.issuer = args
        .jwt_issuer
        .clone()
        .or_else(|| config.and_then(|c| c.issuer.clone()));
    auth.audience = if args.jwt_audiences.is_empty() {
        config.map(|c| c.audience.clone()).unwrap_or_default()
    } else {
        args.jwt_audiences.clone()
    };
    auth.query_param = args
        .token_param
        .clone()
        .or_else(|| config.map(|c| c.token_query_param.clone()))
        .unwrap_or_else(|| "token".into());
    auth.source = args
        .token_source
        .or_else(|| config.map(|c| c.token_source))
        .unwrap_or_default();
    auth.jwks_refetch_min = args.jwks_min_refetch;
    Ok(Some(std::sync::Arc::new(auth)))
}

/// Config, clients and names for the day-two commands. No STS call: they need names, not ARNs
/// (and `wsctl dev` answers only the calls they make).
async fn ops_context(cli: &Cli) -> Result<(Config, aws::Clients, naming::Names)> {
    let config = load_config(cli)?;
    let clients = aws::connect(&target(cli, &config)).await?;
    let names = naming::Names::new(&config, clients.region(), "unknown");
    Ok((config, clients, names))
}

async fn connections(cli: &Cli, args: &ConnectionsArgs) -> Result<ExitCode> {
    let (_, clients, names) = ops_context(cli).await?;
    match args.action {
        None => {
            let list = ops::connections(&clients, &names, args.count, args.page_size).await?;
            report::print(cli.output, &list);
        }
        Some(ConnectionsAction::Prune) => {
            let endpoint =
                ops::management_endpoint(&clients, &names, args.management_endpoint.as_deref())
                    .await?;
            let pruned = ops::prune(&clients, &names, &endpoint, args.page_size).await?;
            report::print(cli.output, &pruned);
            if pruned.failed > 0 {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn message_of(args: &MessageArgs) -> Result<serde_json::Value> {
    ops::message(
        args.message.as_deref(),
        args.file.as_deref(),
        args.kind.as_deref(),
        args.data.as_deref(),
    )
    .map_err(|e| UsageError(e).into())
}

async fn deliver(cli: &Cli, payload: serde_json::Value) -> Result<ExitCode> {
    let (_, clients, names) = ops_context(cli).await?;
    let report = ops::invoke(&clients, &names.function, &payload).await?;
    Ok(print_sent(cli, &names.function, report))
}

/// Prints a delivery report; exit 1 when any connection was missed.
fn print_sent(cli: &Cli, function: &str, report: handler::DeliveryReport) -> ExitCode {
    let failed = report.failed > 0 || !report.complete;
    report::print(
        cli.output,
        &ops::Sent {
            function: function.to_owned(),
            report,
        },
    );
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `wsctl broadcast`: small tables and topics are answered with the delivery report; a
/// broadcast split over workers is followed through its status record to its end.
async fn broadcast(cli: &Cli, args: &BroadcastArgs) -> Result<ExitCode> {
    if let Some(BroadcastAction::Status {
        id,
        wait,
        stall_timeout,
    }) = &args.action
    {
        return broadcast_status(cli, id, *wait, *stall_timeout).await;
    }
    let message = message_of(&args.message)?;
    // The id is ours, so a repeated invocation (an SDK retry) finds the broadcast started.
    let id = handler::invocation::new_broadcast_id();
    let payload = handler::Invocation::Broadcast {
        message,
        topic: args.topic.clone(),
        broadcast_id: Some(id.clone()),
    }
    .payload();
    let (_, clients, names) = ops_context(cli).await?;
    if args.no_wait {
        ops::invoke_event(&clients, &names.function, &payload).await?;
        report::print(
            cli.output,
            &ops::broadcast::Started {
                function: names.function.clone(),
                broadcast_id: id,
            },
        );
        return Ok(ExitCode::SUCCESS);
    }
    let report = ops::invoke(&clients, &names.function, &payload).await?;
    if report.segments.is_none() {
        return Ok(print_sent(cli, &names.function, report));
    }
    let status = ops::broadcast::follow(
        &clients,
        &names.function,
        &id,
        args.stall_timeout,
        cli.quiet,
    )
    .await?;
    Ok(print_followed(cli, &names.function, status))
}

async fn broadcast_status(
    cli: &Cli,
    id: &str,
    wait: bool,
    stall: std::time::Duration,
) -> Result<ExitCode> {
    if !handler::invocation::valid_broadcast_id(id) {
        return Err(UsageError(format!(
            "{id:?} is not a broadcast id (1 to 64 letters, digits, '-', '_' or '.')"
        ))
        .into());
    }
    let (_, clients, names) = ops_context(cli).await?;
    let status = if wait {
        ops::broadcast::follow(&clients, &names.function, id, stall, cli.quiet).await?
    } else {
        ops::broadcast::status(&clients, &names.function, id).await?
    };
    Ok(print_followed(cli, &names.function, status))
}

/// Prints a broadcast's record; exit 1 when it finished with anything failed.
fn print_followed(cli: &Cli, function: &str, status: handler::BroadcastStatus) -> ExitCode {
    let followed = ops::Followed::new(function, status);
    report::print(cli.output, &followed);
    if followed.finished && !followed.complete {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn send(cli: &Cli, args: &SendArgs) -> Result<ExitCode> {
    let message = message_of(&args.message)?;
    let to = match (&args.connection_id, &args.user) {
        (_, Some(user)) => handler::Recipient::User(user.clone()),
        (Some(id), None) => handler::Recipient::ConnectionId(id.clone()),
        (None, None) => {
            return Err(UsageError("send needs a CONNECTION_ID or --user SUB".into()).into())
        }
    };
    let payload = handler::Invocation::Send { to, message }.payload();
    deliver(cli, payload).await
}

async fn logs(cli: &Cli, args: &LogsArgs) -> Result<ExitCode> {
    let (_, clients, names) = ops_context(cli).await?;
    let follow = args.follow.then_some(args.interval);
    ops::logs(
        &clients,
        &names.log_group,
        args.since,
        args.filter.as_deref(),
        follow,
        cli.output == Output::Json,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The stack's wss:// URL, or the one given.
async fn stack_url(cli: &Cli, given: Option<&str>) -> Result<String> {
    if let Some(url) = given {
        return Ok(url.to_owned());
    }
    let (_, clients, names) = ops_context(cli).await?;
    let api = ops::api_id(&clients, &names).await?;
    Ok(names.websocket_url(&api))
}

async fn smoke(cli: &Cli, args: &SmokeArgs) -> Result<ExitCode> {
    let url = stack_url(cli, args.url.as_deref()).await?;
    let url = ops::with_query(&url, &args.query).map_err(UsageError)?;
    let report = ops::smoke(&url, args.timeout).await;
    report::print(cli.output, &report);
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn env_file(cli: &Cli, args: &EnvArgs) -> Result<ExitCode> {
    if args.name.is_empty()
        || !args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(UsageError(format!("--name {:?} is not a variable name", args.name)).into());
    }
    let url = stack_url(cli, args.url.as_deref()).await?;
    let written = ops::write_env(&args.file, &args.name, &url)?;
    report::print(cli.output, &written);
    Ok(ExitCode::SUCCESS)
}
