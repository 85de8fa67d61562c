//! The commands, one file per command (or close family), sharing one [`Context`]: the parsed
//! command line, progress, and how a command finds its config, its AWS clients and its stack.
//! Each returns its exit status or a typed [`Error`] whose type gives the exit code.

mod build;
mod connections;
mod deliver;
mod dev;
mod down;
mod generate;
mod init;
mod load;
mod locked;
mod logs;
mod outputs;
mod prompt;
mod smoke;
mod status;
mod up;

use std::io::IsTerminal;
use std::process::ExitCode;

use crate::aws::{self, Clients};
use crate::cli::{Cli, Command};
use crate::config::Config;
use crate::error::Result;
use crate::naming::Names;
use crate::report::{Output, Progress};
use crate::stack::Stack;

/// What every command shares.
pub struct Context {
    pub cli: Cli,
    pub progress: Progress,
}

impl Context {
    /// The project file (`--config`), with `--env`'s overrides.
    pub fn config(&self) -> Result<Config> {
        Ok(Config::load(&self.cli.config, self.cli.env.as_deref())?)
    }

    /// Where to find AWS: the command line wins over the project file, which wins over the
    /// environment and the shared config files.
    fn target(&self, config: &Config) -> aws::Target {
        aws::Target {
            region: self.cli.region.clone().or_else(|| config.region.clone()),
            profile: self.cli.profile.clone().or_else(|| config.profile.clone()),
        }
    }

    /// The stack of the project file: the start of every command that changes or inspects it.
    pub async fn stack(&self) -> Result<Stack> {
        self.stack_of(self.config()?).await
    }

    /// The stack of `config`, with the account the credentials belong to (one STS call).
    pub async fn stack_of(&self, config: Config) -> Result<Stack> {
        let clients = aws::connect(&self.target(&config)).await?;
        let account = aws::account_id(&clients).await?;
        Ok(Stack::new(config, clients, &account))
    }

    /// Config, clients and names for the day-two commands. No STS call: they need names, not
    /// ARNs (and `wsctl dev` answers only the calls they make).
    pub async fn ops(&self) -> Result<(Config, Clients, Names)> {
        let config = self.config()?;
        let clients = aws::connect(&self.target(&config)).await?;
        let names = Names::new(&config, clients.region(), "unknown");
        Ok((config, clients, names))
    }

    /// Prints a result once, as `--output` asks.
    pub fn print<T: serde::Serialize + std::fmt::Display>(&self, value: &T) {
        crate::report::print(self.cli.output, value);
    }

    pub fn quiet(&self) -> bool {
        self.cli.quiet
    }
}

/// Runs the command of `cli`.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let progress =
        Progress::new(cli.quiet || cli.output == Output::Json && !std::io::stderr().is_terminal());
    let cx = Context { cli, progress };
    match &cx.cli.command {
        Command::Init(args) => init::init(&cx, args),
        Command::Build(args) => build::build(&cx, args),
        Command::Up(args) => up::up(&cx, args).await,
        Command::Status => status::status(&cx).await,
        Command::Down(args) => down::down(&cx, args).await,
        Command::Unlock(args) => down::unlock(&cx, args).await,
        Command::Dev(args) => dev::dev(&cx, args).await,
        Command::Connections(args) => connections::connections(&cx, args).await,
        Command::Broadcast(args) => deliver::broadcast(&cx, args).await,
        Command::Send(args) => deliver::send(&cx, args).await,
        Command::Subscribe(args) => connections::membership(&cx, true, args).await,
        Command::Unsubscribe(args) => connections::membership(&cx, false, args).await,
        Command::Logs(args) => logs::logs(&cx, args).await,
        Command::Smoke(args) => smoke::smoke(&cx, args).await,
        Command::Listen(args) => smoke::listen(&cx, args).await,
        Command::Types(args) => generate::types(&cx, args),
        Command::Asyncapi(args) => generate::asyncapi(&cx, args).await,
        Command::Env(args) => smoke::env_file(&cx, args).await,
        Command::Load(args) => load::load(&cx, args).await,
        Command::Outputs(args) => outputs::outputs(&cx, args).await,
        Command::Grant(args) => outputs::grant_policy(&cx, args).await,
    }
}

/// The stack's wss:// URL, or the one given.
pub async fn stack_url(cx: &Context, given: Option<&str>) -> Result<String> {
    if let Some(url) = given {
        return Ok(url.to_owned());
    }
    let (_, clients, names) = cx.ops().await?;
    let api = crate::ops::api_id(&clients, &names).await?;
    Ok(names.websocket_url(&api))
}
