//! `wsctl connections` (the table's rows) and `wsctl connections prune`.

use std::process::ExitCode;

use super::Context;
use crate::cli::{ConnectionsAction, ConnectionsArgs};
use crate::error::Result;
use crate::ops;

pub async fn connections(cx: &Context, args: &ConnectionsArgs) -> Result<ExitCode> {
    let (_, clients, names) = cx.ops().await?;
    match args.action {
        None => {
            let list = ops::connections(&clients, &names, args.count, args.page_size).await?;
            cx.print(&list);
        }
        Some(ConnectionsAction::Prune) => {
            let endpoint =
                ops::management_endpoint(&clients, &names, args.management_endpoint.as_deref())
                    .await?;
            let pruned = ops::prune(&clients, &names, &endpoint, args.page_size).await?;
            cx.print(&pruned);
            if pruned.failed > 0 {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
