//! `wsctl load`: the flags checked against API Gateway's quota and this machine's open-file
//! limit, then the load test and its report; exit 3 when anything failed.

use std::process::ExitCode;

use handler::Invocation;

use super::{stack_url, Context};
use crate::cli::LoadArgs;
use crate::error::Result;
use crate::load;
use crate::ops;

pub async fn load(cx: &Context, args: &LoadArgs) -> Result<ExitCode> {
    if args.rate > load::DEFAULT_CONNECT_QUOTA && !args.i_have_a_quota_increase {
        crate::fail!(
            Usage,
            "--rate {} is over API Gateway's default quota of {} new connections per second (per account and region): the excess would be refused with 429. Ask AWS for a quota increase first, then pass --i-have-a-quota-increase",
            args.rate,
            load::DEFAULT_CONNECT_QUOTA
        );
    }
    let connections = args.connections as usize;
    if let Some(limit) = load::open_file_limit() {
        if connections as u64 + 64 > limit {
            crate::fail!(
                Usage,
                "--connections {connections} needs as many open files, and this process may open {limit}: raise the limit (`ulimit -n {}`) or open fewer",
                connections + 64
            );
        }
    }
    let config = cx.config().ok();
    let mut query = args.query.clone();
    if let Some(token) = &args.token {
        let param = config
            .as_ref()
            .and_then(|c| c.auth.as_ref())
            .map_or("token".to_owned(), |a| a.token_query_param.clone());
        query.push(format!("{param}={token}"));
    }
    let url = stack_url(cx, args.url.as_deref()).await?;
    let url = ops::with_query(&url, &query)?;
    let broadcaster: Option<load::Broadcaster> = if args.broadcast {
        let (_, clients, names) = cx.ops().await?;
        Some(Box::new(move |message| {
            let (clients, function) = (clients.clone(), names.function.clone());
            Box::pin(async move {
                let payload = Invocation::Broadcast {
                    message,
                    topic: None,
                    broadcast_id: Some(handler::invocation::new_broadcast_id()),
                }
                .payload();
                ops::invoke(&clients, &function, &payload).await
            })
        }))
    } else {
        None
    };
    let report = load::run(
        load::Options {
            url,
            connections,
            rate: args.rate,
            duration: args.duration,
            ping_rate: args.ping_rate,
            connect_timeout: args.connect_timeout,
            broadcast_timeout: args.broadcast_timeout,
            quiet: cx.quiet(),
        },
        broadcaster,
    )
    .await?;
    cx.print(&report);
    Ok(match report.ok {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(3),
    })
}
