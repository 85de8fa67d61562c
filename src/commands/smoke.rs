//! `wsctl smoke` (connect, ping, expect a pong) and `wsctl env` (the frontend's URL variable):
//! what a deploy job runs once the stack is up.

use std::process::ExitCode;

use super::{stack_url, Context};
use crate::cli::{EnvArgs, SmokeArgs};
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
