//! The API Gateway management API (`POST {endpoint}/@connections/{id}`) through the function's
//! signed client ([`crate::signed`]): the caching signer for `execute-api`, a pooled
//! HTTP/1.1 connection, no SDK retry layer (the delivery engine owns retries, pacing and
//! timeouts, so a broadcast is never cut short by the SDK's client-side retry quota, and a
//! post costs a fraction of the CPU of an SDK call). Answers are classified by status code and
//! the `x-amzn-ErrorType` header, never by message text.

use std::sync::Arc;

use async_trait::async_trait;
use percent_encoding::utf8_percent_encode;

use super::{PushError, Pusher};
use crate::signed::{Answer, SendError, SignedClient, Signer, Signing, SEGMENT};

/// Posts through the API Gateway management API, signed for `execute-api` in the function's
/// region.
pub struct ManagementApiPusher {
    client: Arc<SignedClient>,
    region: String,
    signer: Signer,
}

impl std::fmt::Debug for ManagementApiPusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApiPusher")
            .field("region", &self.region)
            .finish()
    }
}

impl ManagementApiPusher {
    /// A pusher signing through `client` for `region` (the stack's region; `us-east-1` when
    /// none is known, as for a local endpoint).
    pub fn new(client: Arc<SignedClient>, region: Option<&str>) -> Self {
        let region = region.unwrap_or("us-east-1").to_owned();
        ManagementApiPusher {
            client,
            signer: Signer::new(&region),
            region,
        }
    }
}

#[async_trait]
impl Pusher for ManagementApiPusher {
    async fn post(
        &self,
        endpoint: &str,
        connection_id: &str,
        data: &[u8],
    ) -> Result<(), PushError> {
        let uri = connection_uri(endpoint, connection_id);
        let answer = self
            .client
            .post(&uri, &[], data, Signing::Fast(&self.signer))
            .await
            .map_err(|e| unanswered(connection_id, e))?;
        classify(connection_id, &format!("POST {uri}"), &answer)
    }

    async fn close(&self, endpoint: &str, connection_id: &str) -> Result<(), PushError> {
        let uri = connection_uri(endpoint, connection_id);
        let answer = self
            .client
            .delete(&uri, "execute-api", &self.region)
            .await
            .map_err(|e| unanswered(connection_id, e))?;
        classify(connection_id, &format!("DELETE {uri}"), &answer)
    }
}

/// `{endpoint}/@connections/{id}`, the id one path segment.
fn connection_uri(endpoint: &str, connection_id: &str) -> String {
    format!(
        "{}/@connections/{}",
        endpoint.trim_end_matches('/'),
        utf8_percent_encode(connection_id, SEGMENT)
    )
}

/// A call that got no answer: retryable when it may succeed later.
fn unanswered(connection_id: &str, e: SendError) -> PushError {
    PushError::Failed {
        connection_id: connection_id.to_owned(),
        retryable: e.is_retryable(),
        source: e.to_string().into(),
    }
}

/// What an answer of the management API means for a connection: by status code and
/// `x-amzn-ErrorType`, never by message text.
fn classify(connection_id: &str, call: &str, answer: &Answer) -> Result<(), PushError> {
    let failed = |retryable: bool, message: String| PushError::Failed {
        connection_id: connection_id.to_owned(),
        retryable,
        source: message.into(),
    };
    let described = || format!("{call} {}", answer.describe(200));
    match (answer.status, answer.error_type.as_deref()) {
        (200..=299, _) => Ok(()),
        (410, _) | (_, Some("GoneException")) => Err(PushError::Gone(connection_id.to_owned())),
        (429, _) | (_, Some("LimitExceededException" | "TooManyRequestsException")) => {
            Err(PushError::Throttled {
                connection_id: connection_id.to_owned(),
            })
        }
        (413, _) | (_, Some("PayloadTooLargeException")) => Err(PushError::TooLarge {
            connection_id: connection_id.to_owned(),
        }),
        (403, _) => Err(PushError::Forbidden {
            connection_id: connection_id.to_owned(),
            source: described().into(),
        }),
        (500..=599, _) => Err(failed(true, described())),
        _ => Err(failed(false, described())),
    }
}
