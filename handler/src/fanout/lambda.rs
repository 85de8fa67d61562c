//! The Lambda [`Invoker`] (the `aws` feature): `POST /2015-03-31/functions/{name}/invocations`
//! with `X-Amz-Invocation-Type: Event`, signed with SigV4 for `lambda` and sent through hyper,
//! as the management API's posts are (no SDK in the handler for one request shape).
//! The endpoint is `AWS_ENDPOINT_URL_LAMBDA`, else `AWS_ENDPOINT_URL`, else Lambda's regional
//! one, the SDK's own order, so LocalStack, moto and `wsctl dev` work through the same variables.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::utf8_percent_encode;
use serde_json::Value;

use super::invoker::{InvokeError, Invoker};
use crate::push::sigv4::sign_post;

/// One Invoke's time limit.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Invokes one function (this one) asynchronously.
pub struct LambdaInvoker {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    credentials: Option<SharedCredentialsProvider>,
    region: String,
    url: String,
}

impl LambdaInvoker {
    /// An invoker of `function` (a name or ARN) in `region`, at `endpoint` (`None`: Lambda's
    /// regional endpoint).
    pub fn new(
        sdk: &aws_config::SdkConfig,
        region: &str,
        function: &str,
        endpoint: Option<&str>,
    ) -> Result<Self, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("cannot load the system's root certificates: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let base = endpoint
            .map(|e| e.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("https://lambda.{region}.amazonaws.com"));
        let url = format!(
            "{base}/2015-03-31/functions/{}/invocations",
            utf8_percent_encode(function, crate::push::management::SEGMENT)
        );
        Ok(LambdaInvoker {
            client: Client::builder(TokioExecutor::new()).build(https),
            credentials: sdk.credentials_provider(),
            region: region.to_owned(),
            url,
        })
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
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| fail(false, "no AWS credentials provider is configured".into()))?;
        let credentials = provider.provide_credentials().await.map_err(|e| {
            fail(
                true,
                format!("loading AWS credentials: {}", crate::error_chain(&e)),
            )
        })?;
        let uri: hyper::Uri = self
            .url
            .parse()
            .map_err(|e| fail(false, format!("the Lambda endpoint URL {}: {e}", self.url)))?;
        let headers = [("x-amz-invocation-type", "Event")];
        let signed = sign_post(
            "lambda",
            &self.region,
            &uri,
            &headers,
            &credentials,
            &body,
            SystemTime::now(),
        )
        .map_err(|e| fail(false, e))?;
        let mut request = hyper::Request::post(uri)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .header("x-amz-invocation-type", "Event")
            .header("x-amz-date", signed.x_amz_date)
            .header("authorization", signed.authorization);
        if let Some(token) = signed.x_amz_security_token {
            request = request.header("x-amz-security-token", token);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| fail(false, e.to_string()))?;
        let response = tokio::time::timeout(INVOKE_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| fail(true, format!("Invoke {} timed out", self.url)))?
            .map_err(|e| {
                fail(
                    true,
                    format!("Invoke {}: {}", self.url, crate::error_chain(&e)),
                )
            })?;
        let status = response.status().as_u16();
        let kind = crate::push::management::error_type(response.headers());
        let answer = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        match status {
            200..=299 => Ok(()),
            _ => {
                let retryable = status == 429 || status >= 500;
                Err(fail(
                    retryable,
                    format!(
                        "Invoke {} answered {status} {}: {}",
                        self.url,
                        kind.unwrap_or_default(),
                        String::from_utf8_lossy(&answer[..answer.len().min(300)])
                    ),
                ))
            }
        }
    }
}
