//! `wsctl up`: where the handler's code comes from, the stack's locks, the confirmations a
//! person gives, then the engine.

use std::process::ExitCode;

use super::prompt::{ask, interactive};
use super::{locked, Context};
use crate::cli::UpArgs;
use crate::engine::{self, UpOptions};
use crate::error::Result;
use crate::package::{self, CodeSpec, Origin};
use crate::resources::shape::{Change, Plan};

pub async fn up(cx: &Context, args: &UpArgs) -> Result<ExitCode> {
    let mut config = cx.config()?;
    if let Some(arch) = args.arch {
        config.function.architecture = arch;
    }
    let arch = config.function.architecture;
    let (code, source_dir) = match package::origin(args.handler_zip.as_deref(), arch)? {
        Origin::Given(zip) => (CodeSpec::Zip(zip.for_project(&config)?), None),
        Origin::Carried(zip) => {
            cx.progress.note(format!(
                "the handler: the one this wsctl carries ({})",
                zip.source_tag
            ));
            (CodeSpec::Zip(zip.for_project(&config)?), None)
        }
        Origin::Checkout(dir) => {
            let mut fingerprint = package::fingerprint(&dir, arch)?;
            // The project's catalogue travels in the function's zip, as `catalogue.json`.
            if let Some(c) = &config.catalogue {
                fingerprint = format!("{fingerprint}+{}", package::catalogue_tag(&c.bundle()));
            }
            (CodeSpec::Source { fingerprint }, Some(dir))
        }
    };
    let stack = cx.stack_of(config).await?;
    let lock = locked::acquire(&stack, "up", args.dry_run, args.lock_timeout, &cx.progress).await?;
    let asks = !(args.yes || args.dry_run || !interactive());
    let confirm = |plan: &Plan| -> bool {
        if !asks {
            return true;
        }
        let changes = plan.items.iter().filter(|i| i.action.is_change());
        let lines = changes.map(|i| format!("{} {}: {}", i.kind, i.name, i.action.describe()));
        ask("wsctl will change:", lines, "Apply these changes?").unwrap_or(false)
    };
    // An account-wide setting is asked about on its own, even when the plan as a whole was
    // confirmed; --yes does not answer it (the config's manage_account_log_role does).
    let confirm_account = |change: &Change| -> bool {
        if !asks {
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
        UpOptions {
            dry_run: args.dry_run,
            code,
            source_dir: source_dir.as_deref(),
            confirm: &confirm,
            confirm_account: &confirm_account,
        },
        &cx.progress,
    )
    .await;
    let report = locked::release(lock, report, |_| false).await?;
    cx.print(&report);
    Ok(ExitCode::SUCCESS)
}
