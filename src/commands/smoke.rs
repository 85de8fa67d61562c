//! The client side of a stack: `wsctl smoke` (connect, ping, expect a pong: a deploy job's
//! check), `wsctl listen` (a client that stays, and resumes after a drop) and `wsctl env` (the
//! frontend's URL variable).

use std::process::ExitCode;

use super::{stack_url, Context};
use crate::cli::{EnvArgs, ListenArgs, SmokeArgs};
use crate::error::Result;
use crate::ops;

pub async fn smoke(cx: &Context, args: &SmokeArgs) -> Result<ExitCode> {
    let url = stack_url(cx, args.url.as_deref()).await?;
    let url = ops::with_query(&url, &args.query)?;
    let report = ops::smoke(&url, args.timeout).await;
    cx.print(&report);
    Ok(match report.ok {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(1),
    })
}

/// `wsctl listen`: messages on stdout, one JSON line each; progress on stderr.
pub async fn listen(cx: &Context, args: &ListenArgs) -> Result<ExitCode> {
    let url = stack_url(cx, args.url.as_deref()).await?;
    let url = ops::with_query(&url, &args.query)?;
    let done =
        ops::listen::listen(&url, &args.topics, args.count, args.timeout, cx.quiet()).await?;
    if !cx.quiet() {
        eprintln!(
            "listen: {} message(s), {} reconnect(s), {} gap(s)",
            done.messages, done.reconnects, done.gaps
        );
    }
    Ok(match args.count > 0 && done.messages < args.count {
        true => ExitCode::from(1),
        false => ExitCode::SUCCESS,
    })
}

pub async fn env_file(cx: &Context, args: &EnvArgs) -> Result<ExitCode> {
    let name_ok = !args.name.is_empty()
        && args
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !name_ok {
        crate::fail!(Usage, "--name {:?} is not a variable name", args.name);
    }
    let url = stack_url(cx, args.url.as_deref()).await?;
    let written = ops::write_env(&args.file, &args.name, &url)?;
    cx.print(&written);
    Ok(ExitCode::SUCCESS)
}
