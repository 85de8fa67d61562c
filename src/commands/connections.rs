//! `wsctl connections` (the table's rows), `wsctl connections prune` and `close`; `wsctl
//! subscribe` and `unsubscribe` (a backend's membership changes, through the function).

use std::process::ExitCode;

use handler::invocation::valid_topic;
use handler::{Audience, Invocation, Recipient};
use serde_json::Value;

use super::Context;
use crate::cli::{CloseArgs, ConnectionsAction, ConnectionsArgs, MembershipArgs};
use crate::error::Result;
use crate::ops;

pub async fn connections(cx: &Context, args: &ConnectionsArgs) -> Result<ExitCode> {
    match &args.action {
        None => {
            let (_, clients, names) = cx.ops().await?;
            let list = ops::connections(&clients, &names, args.count, args.page_size).await?;
            cx.print(&list);
        }
        Some(ConnectionsAction::Prune) => {
            let (_, clients, names) = cx.ops().await?;
            let endpoint =
                ops::management_endpoint(&clients, &names, args.management_endpoint.as_deref())
                    .await?;
            let pruned = ops::prune(&clients, &names, &endpoint, args.page_size).await?;
            cx.print(&pruned);
            if pruned.failed > 0 {
                return Ok(ExitCode::from(1));
            }
        }
        Some(ConnectionsAction::Close(close)) => return self::close(cx, close).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// `wsctl connections close`: the function disconnects them (it holds ManageConnections on
/// the stage, and removes the rows of connections already gone).
async fn close(cx: &Context, args: &CloseArgs) -> Result<ExitCode> {
    let who = match (&args.connection_id, &args.user, &args.topic, args.all) {
        (Some(id), None, None, false) => Audience::ConnectionId(nonempty(id, "CONNECTION_ID")?),
        (None, Some(user), None, false) => Audience::User(nonempty(user, "--user")?),
        (None, None, Some(topic), false) => Audience::Topic(topic_of(topic)?),
        (None, None, None, true) => Audience::All(true),
        _ => crate::fail!(
            Usage,
            "connections close needs exactly one of CONNECTION_ID, --user SUB, --topic TOPIC or --all"
        ),
    };
    run(cx, Invocation::Close { who }).await
}

/// `wsctl subscribe` (`join`) and `wsctl unsubscribe`.
pub async fn membership(cx: &Context, join: bool, args: &MembershipArgs) -> Result<ExitCode> {
    let topic = topic_of(&args.topic)?;
    let to = match (&args.connection_id, &args.user) {
        (Some(id), None) => Recipient::ConnectionId(nonempty(id, "--connection")?),
        (None, Some(user)) => Recipient::User(nonempty(user, "--user")?),
        _ => crate::fail!(Usage, "give either --connection ID or --user SUB"),
    };
    let invocation = match join {
        true => Invocation::Subscribe { topic, to },
        false => Invocation::Unsubscribe { topic, to },
    };
    run(cx, invocation).await
}

async fn run(cx: &Context, invocation: Invocation) -> Result<ExitCode> {
    let (_, clients, names) = cx.ops().await?;
    let changed = ops::membership::change(&clients, &names.function, &invocation).await?;
    cx.print(&changed);
    Ok(match changed.incomplete() {
        true => ExitCode::from(1),
        false => ExitCode::SUCCESS,
    })
}

fn topic_of(topic: &str) -> Result<String> {
    match valid_topic(Some(&Value::String(topic.to_owned()))) {
        Some(t) => Ok(t),
        None => crate::fail!(
            Usage,
            "--topic {topic:?}: a topic is 1 to {} characters",
            handler::MAX_TOPIC_CHARS
        ),
    }
}

fn nonempty(value: &str, what: &str) -> Result<String> {
    match value.trim() {
        "" => crate::fail!(Usage, "{what} must not be empty"),
        v => Ok(v.to_owned()),
    }
}
