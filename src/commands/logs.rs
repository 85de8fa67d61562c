//! `wsctl logs`: the function's log events.

use std::process::ExitCode;

use super::Context;
use crate::cli::LogsArgs;
use crate::error::Result;
use crate::ops;
use crate::report::Output;

pub async fn logs(cx: &Context, args: &LogsArgs) -> Result<ExitCode> {
    let (_, clients, names) = cx.ops().await?;
    let follow = args.follow.then_some(args.interval);
    ops::logs(
        &clients,
        &names.log_group,
        args.since,
        args.filter.as_deref(),
        follow,
        cx.cli.output == Output::Json,
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}
