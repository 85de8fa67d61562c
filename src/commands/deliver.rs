//! `wsctl broadcast`, `wsctl broadcast status` and `wsctl send`: the message, the function
//! invoked with the runbook's Step 6 payload, and what it delivered.

use std::process::ExitCode;
use std::time::Duration;

use handler::invocation::{new_broadcast_id, valid_broadcast_id};
use handler::{Invocation, Recipient};

use super::Context;
use crate::cli::{BroadcastAction, BroadcastArgs, MessageArgs, SendArgs};
use crate::error::Result;
use crate::ops;

fn message_of(args: &MessageArgs) -> Result<serde_json::Value> {
    ops::message(
        args.message.as_deref(),
        args.file.as_deref(),
        args.kind.as_deref(),
        args.data.as_deref(),
    )
}

/// Refuses a message that breaks the project's catalogue, before any AWS call (exit 2): the
/// pointer, the rule, and the file that declares the type.
fn check_message(cx: &Context, message: &serde_json::Value) -> Result<()> {
    let config = cx.config()?;
    let Some(catalogue) = &config.catalogue else {
        return Ok(());
    };
    if let Err(refused) = catalogue.compiled.check_event(message) {
        let declared = message
            .get("type")
            .and_then(serde_json::Value::as_str)
            .and_then(|t| catalogue.file_of("event", t))
            .map(|f| format!(" (declared in {})", f.display()))
            .unwrap_or_default();
        crate::fail!(
            Usage,
            "the message breaks the catalogue: {}: {}{declared}",
            refused.pointer,
            refused.rule
        );
    }
    Ok(())
}

/// `wsctl broadcast`: small tables and topics are answered with the delivery report; a
/// broadcast split over workers is followed through its status record to its end.
pub async fn broadcast(cx: &Context, args: &BroadcastArgs) -> Result<ExitCode> {
    if let Some(BroadcastAction::Status {
        id,
        wait,
        stall_timeout,
    }) = &args.action
    {
        return status(cx, id, *wait, *stall_timeout).await;
    }
    let message = message_of(&args.message)?;
    check_message(cx, &message)?;
    // The id is ours, so a repeated invocation (an SDK retry) finds the broadcast started.
    let id = new_broadcast_id();
    let payload = Invocation::Broadcast {
        message,
        topic: args.topic.clone(),
        broadcast_id: Some(id.clone()),
    }
    .payload();
    let (_, clients, names) = cx.ops().await?;
    if args.no_wait {
        ops::invoke_event(&clients, &names.function, &payload).await?;
        cx.print(&ops::broadcast::Started {
            function: names.function.clone(),
            broadcast_id: id,
        });
        return Ok(ExitCode::SUCCESS);
    }
    let report = ops::invoke(&clients, &names.function, &payload).await?;
    if report.segments.is_none() {
        return Ok(print_sent(cx, &names.function, report));
    }
    let status = ops::broadcast::follow(
        &clients,
        &names.function,
        &id,
        args.stall_timeout,
        cx.quiet(),
    )
    .await?;
    Ok(print_followed(cx, &names.function, status))
}

async fn status(cx: &Context, id: &str, wait: bool, stall: Duration) -> Result<ExitCode> {
    if !valid_broadcast_id(id) {
        crate::fail!(
            Usage,
            "{id:?} is not a broadcast id (1 to 64 letters, digits, '-', '_' or '.')"
        );
    }
    let (_, clients, names) = cx.ops().await?;
    let status = if wait {
        ops::broadcast::follow(&clients, &names.function, id, stall, cx.quiet()).await?
    } else {
        ops::broadcast::status(&clients, &names.function, id).await?
    };
    Ok(print_followed(cx, &names.function, status))
}

pub async fn send(cx: &Context, args: &SendArgs) -> Result<ExitCode> {
    let message = message_of(&args.message)?;
    check_message(cx, &message)?;
    let to = match (&args.connection_id, &args.user) {
        (_, Some(user)) => Recipient::User(user.clone()),
        (Some(id), None) => Recipient::ConnectionId(id.clone()),
        (None, None) => crate::fail!(Usage, "send needs a CONNECTION_ID or --user SUB"),
    };
    let payload = Invocation::Send { to, message }.payload();
    let (_, clients, names) = cx.ops().await?;
    let report = ops::invoke(&clients, &names.function, &payload).await?;
    Ok(print_sent(cx, &names.function, report))
}

/// Prints a delivery report; exit 1 when any connection was missed.
fn print_sent(cx: &Context, function: &str, report: handler::DeliveryReport) -> ExitCode {
    let failed = report.failed > 0 || !report.complete;
    cx.print(&ops::Sent {
        function: function.to_owned(),
        report,
    });
    match failed {
        true => ExitCode::from(1),
        false => ExitCode::SUCCESS,
    }
}

/// Prints a broadcast's record; exit 1 when it finished with anything failed.
fn print_followed(cx: &Context, function: &str, status: handler::BroadcastStatus) -> ExitCode {
    let followed = ops::Followed::new(function, status);
    cx.print(&followed);
    match followed.finished && !followed.complete {
        true => ExitCode::from(1),
        false => ExitCode::SUCCESS,
    }
}
