//! What a backend needs to reach the stack: `wsctl outputs` (names, ARNs and URLs, as text,
//! JSON or dotenv lines) and `wsctl grant --print` (the identity policy for a `[[grant]]`).

use std::process::ExitCode;

use super::Context;
use crate::cli::{GrantArgs, OutputsArgs};
use crate::error::{Error, Result};
use crate::{ops, resources};

/// `wsctl grant --print ROLE`: the identity policy for one `[[grant]]`, on stdout as JSON.
pub async fn grant_policy(cx: &Context, args: &GrantArgs) -> Result<ExitCode> {
    let config = cx.config()?;
    let Some(grant) = config
        .grants
        .iter()
        .find(|g| g.principal == args.print || g.role_name() == args.print)
        .cloned()
    else {
        let known: Vec<&str> = config.grants.iter().map(|g| g.principal.as_str()).collect();
        crate::fail!(
            Usage,
            "no [[grant]] of {} names {:?}; {}",
            cx.cli.config.display(),
            args.print,
            if known.is_empty() {
                "the file has no [[grant]]".to_owned()
            } else {
                format!("its grants are {}", known.join(", "))
            }
        );
    };
    let stack = cx.stack_of(config).await?;
    let api = ops::api_id(&stack.clients, &stack.names).await?;
    let policy = resources::grant::identity_policy(&stack.names, &api, &grant);
    println!(
        "{}",
        serde_json::to_string_pretty(&policy).map_err(|e| Error::Failed(e.to_string()))?
    );
    if !cx.quiet() {
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
pub async fn outputs(cx: &Context, args: &OutputsArgs) -> Result<ExitCode> {
    let stack = cx.stack().await?;
    let out = ops::outputs::outputs(&stack.clients, &stack.names, cx.cli.env.as_deref()).await?;
    match args.format.as_deref() {
        Some("env") => print!("{}", out.dotenv()),
        _ => cx.print(&out),
    }
    Ok(ExitCode::SUCCESS)
}
