//! wsctl: parse the command line, set up logging and the runtime, run the command, print its
//! error once, and exit with the code the error's type gives (0 success, 1 AWS failure, 2
//! usage or config error, 3 drift found by `status` or a failed load test).

mod aws;
mod cli;
mod commands;
mod config;
mod dev;
mod engine;
mod error;
mod generate;
mod iam;
mod load;
mod lock;
mod naming;
mod ops;
mod package;
mod redact;
mod report;
mod resources;
mod retry;
mod stack;

use std::process::ExitCode;

use clap::Parser;

use cli::Cli;
use report::Output;

fn main() -> ExitCode {
    let cli = Cli::parse();
    redact::add_from_env();
    // The SDK's detail (and wsctl's own) behind WSCTL_LOG, secrets masked.
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
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let message = redact::redact(&handler::error_chain(&e));
            eprintln!("error: {message}");
            if output == Output::Json {
                let error = serde_json::json!({"kind": e.kind(), "message": message});
                println!("{}", serde_json::json!({ "error": error }));
            }
            ExitCode::from(e.exit_code())
        }
    }
}
