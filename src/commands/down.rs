//! `wsctl down` (confirmed, under the stack's locks, which go with the stack) and `wsctl
//! unlock` (who holds the lock, and removing it).

use std::process::ExitCode;

use super::prompt::{ask, interactive};
use super::{locked, Context};
use crate::cli::{DownArgs, UnlockArgs};
use crate::engine;
use crate::error::{Error, Result};
use crate::lock;
use crate::resources::shape::DownItem;

pub async fn down(cx: &Context, args: &DownArgs) -> Result<ExitCode> {
    let stack = cx.stack().await?;
    let lock = locked::acquire(
        &stack,
        "down",
        args.dry_run,
        args.lock_timeout,
        &cx.progress,
    )
    .await?;
    let confirm = |items: &[DownItem]| -> Result<()> {
        if args.yes {
            return Ok(());
        }
        if !interactive() {
            crate::fail!(
                Usage,
                "refusing to delete {} resource(s) without confirmation: there is no terminal to ask, pass --yes",
                items.len()
            );
        }
        let lines = items.iter().map(|i| format!("{} {}", i.kind, i.name));
        match ask("wsctl will delete:", lines, "Delete these?") {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Usage("cancelled: nothing was deleted".into())),
            Err(e) => Err(Error::io("asking for confirmation")(e)),
        }
    };
    let report = engine::down(&stack, args.adopt, args.dry_run, &confirm, &cx.progress).await;
    // The stack is gone: its lock's table goes too.
    let report = locked::release(lock, report, |_| true).await?;
    if !args.dry_run {
        cx.progress.note(format!(
            "removed the stack lock table {}",
            stack.names.lock_table
        ));
    }
    cx.print(&report);
    Ok(ExitCode::SUCCESS)
}

pub async fn unlock(cx: &Context, args: &UnlockArgs) -> Result<ExitCode> {
    let stack = cx.stack().await?;
    let report = lock::remote::unlock(&stack, args.force).await?;
    cx.print(&report);
    Ok(if report.holder.is_some() && !report.removed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
