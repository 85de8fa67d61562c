//! `wsctl status`: the stack as it is; exit 3 when unhealthy.

use std::process::ExitCode;

use super::Context;
use crate::engine;
use crate::error::Result;

pub async fn status(cx: &Context) -> Result<ExitCode> {
    let stack = cx.stack().await?;
    let report = engine::status(&stack).await?;
    cx.print(&report);
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
