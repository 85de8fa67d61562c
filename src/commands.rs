//! The commands for what runs beside the stack: `wsctl grant --print` and `wsctl outputs` (what
//! a backend needs), and `wsctl load` (a load test). The rest of the commands are in main.rs.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{self, Cli};
use crate::{
    connect_stack, load, load_config, ops, ops_context, report, resources, stack, stack_url,
    UsageError,
};

/// `wsctl grant --print ROLE`: the identity policy for one `[[grant]]`, on stdout as JSON.
pub async fn grant_policy(cli: &Cli, args: &cli::GrantArgs) -> Result<ExitCode> {
    let config = load_config(cli)?;
    let Some(grant) = config
        .grants
        .iter()
        .find(|g| g.principal == args.print || g.role_name() == args.print)
        .cloned()
    else {
        let known: Vec<&str> = config.grants.iter().map(|g| g.principal.as_str()).collect();
        return Err(UsageError(format!(
            "no [[grant]] of {} names {:?}; {}",
            cli.config.display(),
            args.print,
            if known.is_empty() {
                "the file has no [[grant]]".to_owned()
            } else {
                format!("its grants are {}", known.join(", "))
            }
        ))
        .into());
    };
    let stack = connect_stack(cli, config).await?;
    let api = ops::api_id(&stack.clients, &stack.names).await?;
    let policy = resources::grant::identity_policy(&stack.names, &api, &grant);
    println!("{}", serde_json::to_string_pretty(&policy)?);
    if !cli.quiet {
        eprintln!(
            "For the owner of {}: aws iam put-role-policy --role-name {} --policy-name {}-websocket-grant --policy-document file://policy.json",
            grant.principal,
            grant.role_name(),
            stack.names.stack
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `wsctl outputs`: what a backend needs, as text, JSON or dotenv lines.
pub async fn outputs(cli: &Cli, args: &cli::OutputsArgs) -> Result<ExitCode> {
    let stack = stack(cli).await?;
    let out = ops::outputs::outputs(&stack.clients, &stack.names, cli.env.as_deref()).await?;
    match args.format.as_deref() {
        Some("env") => print!("{}", out.dotenv()),
        _ => report::print(cli.output, &out),
    }
    Ok(ExitCode::SUCCESS)
}

/// `wsctl load`: checks the flags against API Gateway's quota and this machine's open-file
/// limit, then runs the load test and prints its report; exit 3 when anything failed.
pub async fn load_test(cli: &Cli, args: &cli::LoadArgs) -> Result<ExitCode> {
    if args.rate > load::DEFAULT_CONNECT_QUOTA && !args.i_have_a_quota_increase {
        return Err(UsageError(format!(
            "--rate {} is over API Gateway's default quota of {} new connections per second (per account and region): the excess would be refused with 429. Ask AWS for a quota increase first, then pass --i-have-a-quota-increase",
            args.rate,
            load::DEFAULT_CONNECT_QUOTA
        ))
        .into());
    }
    let connections = args.connections as usize;
    if let Some(limit) = load::open_file_limit() {
        if connections as u64 + 64 > limit {
            return Err(UsageError(format!(
                "--connections {connections} needs as many open files, and this process may open {limit}: raise the limit (`ulimit -n {}`) or open fewer",
                connections + 64
            ))
            .into());
        }
    }
    let config = load_config(cli).ok();
    let mut query = args.query.clone();
    if let Some(token) = &args.token {
        let param = config
            .as_ref()
            .and_then(|c| c.auth.as_ref())
            .map_or("token".to_owned(), |a| a.token_query_param.clone());
        query.push(format!("{param}={token}"));
    }
    let url = stack_url(cli, args.url.as_deref()).await?;
    let url = ops::with_query(&url, &query).map_err(UsageError)?;
    let broadcaster: Option<load::Broadcaster> = if args.broadcast {
        let (_, clients, names) = ops_context(cli).await?;
        Some(Box::new(move |message| {
            let (clients, function) = (clients.clone(), names.function.clone());
            Box::pin(async move {
                let payload = handler::Invocation::Broadcast {
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
            quiet: cli.quiet,
        },
        broadcaster,
    )
    .await?;
    report::print(cli.output, &report);
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
