//! A client's `resume`: each stream it names replayed after the position it has, in order,
//! through the same delivery as any post, then one `resumed` answer; a stream the history no
//! longer reaches back into gets a `gap` frame instead (and nothing replayed), a stream the
//! client may not hear a `forbidden` one. The handler decides who may hear what
//! ([`crate::events`]); this only reads and posts.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::delivery::{encode_message, Deliverer};
use crate::error::HandlerError;
use crate::history::HistoryPort;
use crate::push::Pusher;
use crate::store::ConnectionStore;

/// Whether a client may resume a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Allowed,
    Forbidden,
}

/// Replays `streams` (name to the position the client has) to connection `id`, each only
/// when `access` allows it, and returns the `resumed` answer to send last.
pub async fn resume<S, P>(
    deliverer: &Deliverer<'_, S, P>,
    endpoint: &str,
    id: &str,
    history: &dyn HistoryPort,
    cap: u32,
    streams: &BTreeMap<String, (u64, Access)>,
) -> Result<Value, HandlerError>
where
    S: ConnectionStore + ?Sized,
    P: Pusher + ?Sized,
{
    let mut summary = Map::new();
    for (name, (after, access)) in streams {
        if *access == Access::Forbidden {
            let refused = json!({"type": "error", "data": {
                "code": "forbidden",
                "action": "resume",
                "stream": name,
                "message": format!("not allowed to resume {name:?}"),
            }});
            send(deliverer, endpoint, id, &encode_message(&refused)?).await?;
            summary.insert(name.clone(), json!({"forbidden": true}));
            continue;
        }
        let replay = history
            .after(name, *after, cap)
            .await
            .map_err(|e| HandlerError::History(Box::new(e)))?;
        if replay.gap {
            let gap = json!({"type": "gap", "data": {"stream": name, "after": after, "head": replay.head}});
            send(deliverer, endpoint, id, &encode_message(&gap)?).await?;
            summary.insert(name.clone(), json!({"gap": true, "head": replay.head}));
            continue;
        }
        // In order: one post at a time, each retried as any post is.
        let mut replayed = 0u64;
        for entry in &replay.entries {
            if !send(deliverer, endpoint, id, &entry.message).await? {
                return Ok(
                    json!({"type": "resumed", "data": {"streams": summary, "incomplete": true}}),
                );
            }
            replayed += 1;
        }
        summary.insert(
            name.clone(),
            json!({"replayed": replayed, "head": replay.head}),
        );
    }
    Ok(json!({"type": "resumed", "data": {"streams": summary}}))
}

/// Posts one frame; false when the connection is gone or the post failed for good.
async fn send<S, P>(
    deliverer: &Deliverer<'_, S, P>,
    endpoint: &str,
    id: &str,
    data: &[u8],
) -> Result<bool, HandlerError>
where
    S: ConnectionStore + ?Sized,
    P: Pusher + ?Sized,
{
    let report = deliverer.send(endpoint, id, data).await;
    Ok(report.delivered == 1)
}
