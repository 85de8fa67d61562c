//! The Lambda [`Invoker`] (the `aws` feature): `POST /2015-03-31/functions/{name}/invocations`
//! with `X-Amz-Invocation-Type: Event`, signed for `lambda` by the function's signed client
//! ([`crate::signed`]), as the management API's posts are (no SDK in the handler for one
//! request shape). The endpoint is `AWS_ENDPOINT_URL_LAMBDA`, else `AWS_ENDPOINT_URL`, else
//! Lambda's regional one, the SDK's own order, so LocalStack, moto and `wsctl dev` work through
//! the same variables.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use percent_encoding::utf8_percent_encode;
use serde_json::Value;

use super::invoker::{InvokeError, Invoker};
use crate::signed::{SignedClient, Signing, SEGMENT};

/// One Invoke's time limit.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Invokes one function (this one) asynchronously.
pub struct LambdaInvoker {
    client: Arc<SignedClient>,
    region: String,
    url: String,
}

impl LambdaInvoker {
    /// An invoker of `function` (a name or ARN) in `region`, at `endpoint` (`None`: Lambda's
    /// regional endpoint).
    pub fn new(
        client: Arc<SignedClient>,
        region: &str,
        function: &str,
        endpoint: Option<&str>,
    ) -> Self {
        let base = endpoint
            .map(|e| e.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("https://lambda.{region}.amazonaws.com"));
        let url = format!(
            "{base}/2015-03-31/functions/{}/invocations",
            utf8_percent_encode(function, SEGMENT)
        );
        LambdaInvoker {
            client,
            region: region.to_owned(),
            url,
        }
    }

    /// The endpoint the SDK would use: `AWS_ENDPOINT_URL_LAMBDA`, then `AWS_ENDPOINT_URL`.
    pub fn endpoint_from_env(get: impl Fn(&str) -> Option<String>) -> Option<String> {
        ["AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL"]
            .into_iter()
            .find_map(|k| get(k).filter(|v| !v.trim().is_empty()))
    }
}

#[async_trait]
impl Invoker for LambdaInvoker {
    async fn invoke_event(&self, payload: &Value) -> Result<(), InvokeError> {
        let fail = |retryable: bool, message: String| InvokeError { message, retryable };
        let body = serde_json::to_vec(payload).map_err(|e| fail(false, e.to_string()))?;
        let headers = [
            ("x-amz-invocation-type", "Event"),
            ("content-type", "application/json"),
        ];
        let signing = Signing::General {
            service: "lambda",
            region: &self.region,
        };
        let answer = tokio::time::timeout(
            INVOKE_TIMEOUT,
            self.client.post(&self.url, &headers, &body, signing),
        )
        .await
        .map_err(|_| fail(true, format!("Invoke {} timed out", self.url)))?
        .map_err(|e| fail(e.is_retryable(), format!("Invoke {}: {e}", self.url)))?;
        match answer.status {
            200..=299 => Ok(()),
            status => Err(fail(
                status == 429 || status >= 500,
                format!("Invoke {} {}", self.url, answer.describe(300)),
            )),
        }
    }
}
