//! Day-two operations on a deployed stack (or on `wsctl dev`, through endpoint overrides), one
//! file per command: connections and prune, broadcast and send (and a broadcast followed by
//! id), subscribe, unsubscribe and close, logs, smoke test, frontend env file, outputs. What several of them need to find the stack is here.

pub mod broadcast;
pub mod connections;
pub mod env;
pub mod invoke;
pub mod listen;
pub mod logs;
pub mod membership;
pub mod outputs;
pub mod smoke;

use crate::aws::Clients;
use crate::error::Result;
use crate::naming::Names;
use crate::resources::api;

pub use broadcast::Followed;
pub use connections::{connections, prune};
pub use env::write_env;
pub use invoke::{invoke, invoke_event, message, Sent};
pub use logs::logs;
pub use smoke::{smoke, with_query};

/// Where the stack's management API is: `--management-endpoint` / `WSCTL_MANAGEMENT_ENDPOINT`
/// (e.g. `wsctl dev`'s `http://localhost:3002/prod`), else the deployed API's.
pub async fn management_endpoint(
    c: &Clients,
    names: &Names,
    explicit: Option<&str>,
) -> Result<String> {
    if let Some(e) = explicit {
        return Ok(e.trim_end_matches('/').to_owned());
    }
    let api = api_id(c, names).await?;
    Ok(names
        .api_callback_url(&api)
        .trim_end_matches("/@connections")
        .to_owned())
}

/// The deployed API's id.
pub async fn api_id(c: &Clients, names: &Names) -> Result<String> {
    match api::choose(&api::candidates(c, &names.api).await?, &names.api)? {
        Some(a) => Ok(a.id.clone()),
        None => crate::fail!(
            Failed,
            "no WebSocket API named {} in {}: run `wsctl up` first (or pass --url / --management-endpoint)",
            names.api,
            names.region
        ),
    }
}
