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
use crate::signed::{SignedClient, Signer, Signing, SEGMENT};

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
        let failed = |retryable: bool, message: String| PushError::Failed {
            connection_id: connection_id.to_owned(),
            retryable,
            source: message.into(),
        };
        let uri = format!(
            "{}/@connections/{}",
            endpoint.trim_end_matches('/'),
            utf8_percent_encode(connection_id, SEGMENT)
        );
        let answer = self
            .client
            .post(&uri, &[], data, Signing::Fast(&self.signer))
            .await
            .map_err(|e| failed(e.is_retryable(), e.to_string()))?;
        let described = || format!("POST {uri} {}", answer.describe(200));
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
}
