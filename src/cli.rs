//! Command-line definitions (clap) only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Architecture;
use crate::report::Output;

#[derive(Debug, Parser)]
#[command(
    name = "wsctl",
    version = crate::package::VERSION,
    about = "Provision, inspect and tear down an API Gateway WebSocket + Lambda + DynamoDB stack",
    long_about = None,
)]
pub struct Cli {
    /// The project file.
    #[arg(
        long,
        short = 'c',
        global = true,
        default_value = "wsctl.toml",
        env = "WSCTL_CONFIG"
    )]
    pub config: PathBuf,
    /// The environment: its `[env.NAME]` table overrides the file's keys, and its name is in
    /// every resource's name (`{project}-{env}-...`). Default: none (the runbook's names).
    #[arg(long = "env", global = true, env = "WSCTL_ENV", value_name = "NAME")]
    pub env: Option<String>,
    /// AWS profile (overrides [aws] profile and AWS_PROFILE).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// AWS region (overrides [aws] region and AWS_REGION).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Result format on stdout; progress always goes to stderr.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// No progress on stderr (errors are still printed).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starting wsctl.toml.
    Init(InitArgs),
    /// Create or converge the whole stack, then print its URLs.
    Up(UpArgs),
    /// Inspect every resource and its wiring; exit 3 when something is missing or drifted.
    Status,
    /// Delete everything `up` created (what carries the ManagedBy=wsctl tag).
    Down(DownArgs),
    /// Show who holds the stack's lock (in DynamoDB) and remove it when its lease has ended
    /// (or with --force), as `terraform force-unlock` does.
    Unlock(UnlockArgs),
    /// Run the handler locally behind a gateway that behaves like API Gateway (no AWS needed).
    Dev(Box<DevArgs>),
    /// List the connections in the table (every page); `prune` removes the ones that are gone.
    Connections(ConnectionsArgs),
    /// Send a message to every connection (or a topic's) by invoking the function.
    Broadcast(BroadcastArgs),
    /// Send a message to one connection by invoking the function.
    Send(SendArgs),
    /// Put a connection, or every connection of a user, into a topic (a backend's
    /// subscribe: [topics] binds clients, not this); each client is told `subscribed`.
    Subscribe(MembershipArgs),
    /// Take a connection, or every connection of a user, out of a topic.
    Unsubscribe(MembershipArgs),
    /// Show the function's log events (polling FilterLogEvents).
    Logs(LogsArgs),
    /// Connect, ping, expect a pong: exit 0 only when the stack answers.
    Smoke(SmokeArgs),
    /// Write the catalogue as a TypeScript module for the React client's type parameters.
    Types(TypesArgs),
    /// Write the stack as an AsyncAPI 3.0 document: the server, the built-in messages and
    /// every event and action of the catalogue.
    Asyncapi(AsyncApiArgs),
    /// Stay connected and print each message as a JSON line; after a drop, reconnect and
    /// resume what was missed (a stack with [history]).
    Listen(ListenArgs),
    /// Write the frontend's WebSocket URL variable into a dotenv file.
    Env(EnvArgs),
    /// The IAM policy a [[grant]]'s role needs (`--print ROLE`), for its owner to attach:
    /// wsctl never edits a role it does not own.
    Grant(GrantArgs),
    /// Print what a backend needs: the function's name and ARN, the callback and wss:// URLs,
    /// the table, the region.
    Outputs(OutputsArgs),
    /// Load-test the deployed stage (or `wsctl dev`, with --url): open connections at a rate,
    /// hold them with pings, time one broadcast to all of them; exit 3 when anything failed.
    Load(LoadArgs),
    /// Build the handler for Lambda and write its deployable zip (build once in CI, then
    /// `up --handler-zip`).
    Build(BuildArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Project name (default: the current directory's name).
    #[arg(long)]
    pub project: Option<String>,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Print the plan per resource and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Deploy this zip (with a `bootstrap` entry) instead of building the handler.
    #[arg(long, value_name = "PATH")]
    pub handler_zip: Option<PathBuf>,
    /// Function architecture (overrides [function] architecture).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<Architecture>,
    /// Do not ask for confirmation on a terminal.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// How long to wait for another run's stack lock before giving up (exit 1).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Target architecture (default: [function] architecture of the project file, else x86_64).
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<Architecture>,
    /// Where to write the zip.
    #[arg(long, value_name = "PATH", default_value = "handler.zip")]
    pub out: PathBuf,
    /// Package this already-built `bootstrap` binary instead of running cargo.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Delete without asking (required when there is no terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// List what would be deleted and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete resources with the stack's names that lack wsctl's tag (a runbook-made stack).
    #[arg(long)]
    pub adopt: bool,
    /// How long to wait for another run's stack lock before giving up (exit 1).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove the lock even though its holder's lease is still being renewed.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevArgs {
    #[command(subcommand)]
    pub action: Option<DevAction>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0 picks a free one; the URL is printed on stdout).
    #[arg(long, default_value_t = 3002)]
    pub port: u16,
    /// WebSocket path (the stage path, e.g. /prod, works too).
    #[arg(long, default_value = "/ws")]
    pub path: String,
    /// Stage name (default: [api] stage of the project file, else prod).
    #[arg(long)]
    pub stage: Option<String>,
    /// Extra route keys, as custom routes to the same handler (repeatable).
    #[arg(long = "route", value_name = "KEY")]
    pub routes: Vec<String>,
    /// Keep streams this long for clients that come back (overrides [history] retention;
    /// turns history on without the section).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub history: Option<std::time::Duration>,
    /// Drop every connection this often, the way --drop-mode says (reconnection testing).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub drop_every: Option<std::time::Duration>,
    /// How --drop-every drops: abrupt (no close frame: 1006), going-away (1001) or idle.
    #[arg(long, value_name = "MODE", default_value = "abrupt", value_parser = drop_mode)]
    pub drop_mode: crate::dev::Ending,
    /// Close connections idle this long (API Gateway: 10m).
    #[arg(long, default_value = "10m", value_parser = duration)]
    pub idle_timeout: std::time::Duration,
    /// Close connections open this long (API Gateway: 2h).
    #[arg(long, default_value = "2h", value_parser = duration)]
    pub max_duration: std::time::Duration,
    /// Largest frame in bytes (API Gateway: 32 KB); larger closes the connection with 1009.
    #[arg(long, default_value_t = 32 * 1024)]
    pub frame_limit: usize,
    /// Largest message in bytes (API Gateway: 128 KB); larger closes the connection with 1009.
    #[arg(long, default_value_t = 128 * 1024)]
    pub message_limit: usize,
    /// Browser origins allowed to connect (repeatable; overrides [function] allowed_origins);
    /// others get 403 on the handshake.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Require a JWT on $connect, verified against this JWKS URL (RS256/ES256).
    #[arg(long, value_name = "URL", conflicts_with = "jwt_secret_env")]
    pub jwks_url: Option<String>,
    /// Require an HS256 JWT on $connect; the secret is read from this environment variable
    /// (never from the command line, where it would show in the process list).
    #[arg(long, value_name = "VAR")]
    pub jwt_secret_env: Option<String>,
    /// Accepted token issuer (iss).
    #[arg(long, value_name = "ISS")]
    pub jwt_issuer: Option<String>,
    /// Accepted token audience (aud), repeatable.
    #[arg(long = "jwt-audience", value_name = "AUD")]
    pub jwt_audiences: Vec<String>,
    /// The query parameter carrying the token (default: [auth] token_query_param, or "token").
    #[arg(long)]
    pub token_param: Option<String>,
    /// Where $connect reads the token: query, protocol (Sec-WebSocket-Protocol: wsctl, TOKEN)
    /// or either (default: [auth] token_source, or query).
    #[arg(long, value_name = "SOURCE", value_parser = clap::builder::ValueParser::new(|s: &str| s.parse::<handler::auth::TokenSource>().map_err(|e| e.to_string())))]
    pub token_source: Option<handler::auth::TokenSource>,
    /// How often a token with an unknown key id may trigger a JWKS refetch (key rotation).
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub jwks_min_refetch: std::time::Duration,
    /// Run without token checks even when the project file has an [auth] section.
    #[arg(long, conflicts_with_all = ["jwks_url", "jwt_secret_env"])]
    pub no_auth: bool,
    /// Where a [[route]]'s HTTP backend runs locally: KEY=URL (repeatable), instead of the
    /// project file's URL.
    #[arg(long = "route-url", value_name = "KEY=URL", value_parser = key_url)]
    pub route_urls: Vec<(String, String)>,
    /// The Lambda Invoke API endpoint [[route]] functions are invoked at, e.g. cargo lambda
    /// watch's http://localhost:9000 or sam local start-lambda's http://127.0.0.1:3001.
    #[arg(long, value_name = "URL", env = "AWS_ENDPOINT_URL_LAMBDA")]
    pub lambda_endpoint: Option<String>,
    /// Send HTTP backends X-Wsctl-Secret with the value of this environment variable (the
    /// local stand-in for [api] backend_secret_parameter).
    #[arg(long, value_name = "VAR")]
    pub backend_secret_env: Option<String>,
    /// A topic clients may subscribe to (a [topics] subscribe pattern, repeatable): replaces
    /// the project file's [topics] lists.
    #[arg(long = "topics-subscribe", value_name = "PATTERN")]
    pub topics_subscribe: Vec<String>,
    /// A topic clients may broadcast to (a [topics] publish pattern, repeatable; with
    /// --allow-client-broadcast): replaces the project file's [topics] lists.
    #[arg(long = "topics-publish", value_name = "PATTERN")]
    pub topics_publish: Vec<String>,
    /// Messages one connection may send per second before `rate_limited` answers (overrides
    /// [function] max_messages_per_second; 0: no limit).
    #[arg(long, value_name = "N")]
    pub max_messages_per_second: Option<u32>,
    /// Let clients broadcast (overrides [function] allow_client_broadcast).
    #[arg(long)]
    pub allow_client_broadcast: bool,
    /// Print every event the handler receives (API Gateway's JSON) on stderr.
    #[arg(long)]
    pub print_events: bool,
    /// Emulate API Gateway's account throttle: management API calls (and the handler's own
    /// posts) per second, shared by all; calls over it answer 429 LimitExceededException.
    #[arg(long, value_name = "N", value_parser = positive_rate)]
    pub management_rate: Option<f64>,
    /// The throttle's bucket: calls allowed at once above the rate (default: one second's
    /// worth of --management-rate).
    #[arg(long, value_name = "N", requires = "management_rate", value_parser = positive_rate)]
    pub management_burst: Option<f64>,
    /// Answer every management API call (and the handler's posts) after this long, as a
    /// remote API Gateway does (e.g. 20ms).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub management_latency: Option<std::time::Duration>,
}

/// A duration: `30s`, `10m`, `2h`, `250ms`, `1h30m` (humantime's forms) or plain seconds
/// (`1.5`); more than zero.
pub fn duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let d = match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => std::time::Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("{s:?} must be more than zero")),
        Err(_) => humantime::parse_duration(s)
            .map_err(|e| format!("{s:?} is not a duration (e.g. 30s, 10m, 2h): {e}"))?,
    };
    if d.is_zero() {
        return Err(format!("{s:?} must be more than zero"));
    }
    Ok(d)
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 1.0 => Ok(n),
        _ => Err(format!("{s:?} is not a number of calls of at least 1")),
    }
}

#[derive(Debug, Args)]
pub struct ConnectionsArgs {
    #[command(subcommand)]
    pub action: Option<ConnectionsAction>,
    /// Print only the number of connections.
    #[arg(long)]
    pub count: bool,
    /// Rows per Scan call (DynamoDB's Limit); default: DynamoDB's 1 MB pages.
    #[arg(long, value_name = "N", global = true, value_parser = clap::value_parser!(i32).range(1..))]
    pub page_size: Option<i32>,
    /// The management API to ask (default: the deployed API's; `wsctl dev`: http://localhost:3002/prod).
    #[arg(
        long,
        value_name = "URL",
        env = "WSCTL_MANAGEMENT_ENDPOINT",
        global = true
    )]
    pub management_endpoint: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsAction {
    /// Ask the management API about each row; delete the rows of connections that are gone.
    Prune,
    /// Disconnect connections through the management API (DELETE @connections/{id}), as for
    /// revoking access: API Gateway closes each and runs $disconnect.
    Close(CloseArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["connection_id", "user", "topic", "all"])))]
pub struct CloseArgs {
    /// The connection to close.
    pub connection_id: Option<String>,
    /// Close every connection of this authenticated subject (the token's sub).
    #[arg(long, value_name = "SUB")]
    pub user: Option<String>,
    /// Close every connection subscribed to this topic.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Close every connection.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["connection_id", "user"])))]
pub struct MembershipArgs {
    /// The topic.
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// One connection.
    #[arg(long = "connection", value_name = "ID")]
    pub connection_id: Option<String>,
    /// Every connection of this authenticated subject (the token's sub).
    #[arg(long, value_name = "SUB")]
    pub user: Option<String>,
}

#[derive(Debug, Args)]
pub struct MessageArgs {
    /// The message as JSON (`-` or nothing: read stdin).
    #[arg(value_name = "JSON")]
    pub message: Option<String>,
    /// Read the message from a file.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Build {"type": TYPE, "data": DATA}, the runbook's message shape.
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// The `data` of a --type message, as JSON.
    #[arg(long, value_name = "JSON")]
    pub data: Option<String>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BroadcastArgs {
    #[command(subcommand)]
    pub action: Option<BroadcastAction>,
    #[command(flatten)]
    pub message: MessageArgs,
    /// Only connections subscribed to this topic.
    #[arg(long)]
    pub topic: Option<String>,
    /// Start the broadcast and print its id without waiting (`wsctl broadcast status ID`).
    #[arg(long)]
    pub no_wait: bool,
    /// How long a broadcast split over workers may show no progress before waiting stops.
    #[arg(long, default_value = "2m", value_parser = duration, value_name = "DURATION")]
    pub stall_timeout: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum BroadcastAction {
    /// A broadcast's progress or result, by the id `wsctl broadcast` printed (kept 7 days).
    Status {
        /// The broadcast's id.
        id: String,
        /// Follow it until it finishes.
        #[arg(long)]
        wait: bool,
        /// With --wait: how long the broadcast may show no progress (or no record yet).
        #[arg(long, default_value = "2m", value_parser = duration, value_name = "DURATION")]
        stall_timeout: std::time::Duration,
    },
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The connection to send to.
    #[arg(required_unless_present = "user")]
    pub connection_id: Option<String>,
    /// Send to every connection of this authenticated subject (the token's sub) instead.
    #[arg(long, value_name = "SUB", conflicts_with = "connection_id")]
    pub user: Option<String>,
    #[command(flatten)]
    pub message: MessageArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// How far back to start (e.g. 10m, 2h).
    #[arg(long, default_value = "10m", value_parser = duration)]
    pub since: std::time::Duration,
    /// Keep polling for new events.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// A CloudWatch Logs filter pattern, e.g. ERROR or "{ $.level = \"ERROR\" }".
    #[arg(long)]
    pub filter: Option<String>,
    /// Poll interval with --follow.
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub interval: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// The WebSocket URL (default: the deployed stack's wss:// URL).
    #[arg(long)]
    pub url: Option<String>,
    /// Query-string parameters for $connect, e.g. --query token=... (repeatable).
    #[arg(long = "query", value_name = "KEY=VALUE")]
    pub query: Vec<String>,
    /// How long to wait for the connection and the pong together.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct TypesArgs {
    /// Where to write the module (default: stdout).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AsyncApiArgs {
    /// The server's URL (default: the deployed stack's wss:// URL; `wsctl dev`'s, e.g.
    /// ws://localhost:3002/ws).
    #[arg(long)]
    pub url: Option<String>,
    /// Where to write the document (default: stdout).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The WebSocket URL (default: the deployed stack's wss:// URL).
    #[arg(long)]
    pub url: Option<String>,
    /// Query-string parameters for $connect, e.g. --query token=... (repeatable).
    #[arg(long = "query", value_name = "KEY=VALUE")]
    pub query: Vec<String>,
    /// A topic to subscribe to (repeatable).
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Stop after this many messages (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
    /// Stop after this long.
    #[arg(long, default_value = "1h", value_parser = duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The dotenv file to update (created when missing).
    #[arg(long, default_value = ".env.production")]
    pub file: PathBuf,
    /// The variable to set.
    #[arg(long, default_value = "VITE_SOCKET_URL")]
    pub name: String,
    /// The URL to write (default: the deployed stack's wss:// URL).
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The role (its ARN, or its name) of a [[grant]] of the project file.
    #[arg(long, value_name = "ROLE")]
    pub print: String,
}

#[derive(Debug, Args)]
pub struct OutputsArgs {
    /// `env`: dotenv lines (REGION_NAME, CONNECTIONS_TABLE, WEBSOCKET_API_ID, WEBSOCKET_STAGE,
    /// WEBSOCKET_FUNCTION_NAME, WEBSOCKET_FUNCTION_ARN, WEBSOCKET_URL, WEBSOCKET_CALLBACK_URL)
    /// instead of --output's text or JSON.
    #[arg(long, value_parser = ["env"])]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// The WebSocket URL (default: the deployed stack's wss:// URL; `wsctl dev`:
    /// ws://localhost:3002/ws).
    #[arg(long)]
    pub url: Option<String>,
    /// How many connections to open.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub connections: u32,
    /// New connections per second (e.g. 100 or 100/s). API Gateway allows 500 per second per
    /// account and region by default; more needs --i-have-a-quota-increase.
    #[arg(long, default_value = "50", value_parser = per_second, value_name = "N/s")]
    pub rate: f64,
    /// Confirms the account's new-connection quota was raised above 500 per second.
    #[arg(long)]
    pub i_have_a_quota_increase: bool,
    /// How long to hold the connections open once opened.
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub duration: std::time::Duration,
    /// Pings per second, spread over all the connections (0: none). Each is a message (and a
    /// Lambda invocation) on a deployed stage.
    #[arg(long, default_value = "10", value_parser = per_second_or_zero, value_name = "N/s")]
    pub ping_rate: f64,
    /// Then send one broadcast to every connection (as `wsctl broadcast` does) and time its
    /// receipt by each.
    #[arg(long)]
    pub broadcast: bool,
    /// How long every client's receipt of the broadcast is waited for.
    #[arg(long, default_value = "60s", value_parser = duration)]
    pub broadcast_timeout: std::time::Duration,
    /// How long one handshake may take.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub connect_timeout: std::time::Duration,
    /// A token for [auth], sent in the query parameter the project file names (default token).
    #[arg(long, env = "WSCTL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Further query-string parameters for $connect (repeatable).
    #[arg(long = "query", value_name = "KEY=VALUE")]
    pub query: Vec<String>,
}

/// A rate: a positive number, optionally followed by `/s`.
fn per_second(s: &str) -> Result<f64, String> {
    match per_second_or_zero(s)? {
        r if r > 0.0 => Ok(r),
        _ => Err(format!("{s:?} is not a rate above 0")),
    }
}

fn per_second_or_zero(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches("/s").trim();
    match n.parse::<f64>() {
        Ok(r) if r.is_finite() && (0.0..=1_000_000.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate per second (e.g. 100 or 100/s, at most 1000000)"
        )),
    }
}

#[derive(Debug, Subcommand)]
pub enum DevAction {
    /// Drop connections of a running `wsctl dev` the way the internet or API Gateway does:
    /// to test an app's reconnection (on a deployed stage: `wsctl connections close`).
    Drop(DropArgs),
}

#[derive(Debug, Args)]
pub struct DropArgs {
    /// The gateway (what `wsctl dev` printed, or its http:// base).
    #[arg(long, default_value = "http://127.0.0.1:3002")]
    pub url: String,
    /// Only this connection (default: every one).
    #[arg(long, value_name = "ID")]
    pub connection: Option<String>,
    /// abrupt (no close frame: the client sees 1006), going-away (1001) or idle (1001).
    #[arg(long, value_name = "MODE", default_value = "abrupt", value_parser = drop_mode)]
    pub mode: crate::dev::Ending,
}

/// `abrupt`, `going-away` or `idle`.
fn drop_mode(s: &str) -> Result<crate::dev::Ending, String> {
    crate::dev::Ending::parse_drop(s)
}

/// `KEY=URL` for `wsctl dev --route-url`.
fn key_url(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, u))
            if !k.is_empty() && (u.starts_with("http://") || u.starts_with("https://")) =>
        {
            Ok((k.to_owned(), u.to_owned()))
        }
        _ => Err(format!(
            "{s:?}: expected KEY=URL, e.g. sendmessage=http://localhost:8000/ws/send"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse() {
        assert_eq!(duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(duration("soon").is_err());
        assert!(duration("0s").is_err());
        assert!(duration("0").is_err());
    }
}
