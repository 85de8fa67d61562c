//! The API Gateway management API (`POST {endpoint}/@connections/{id}`) through a lean client:
//! each post is signed with SigV4 ([`super::sigv4`], on `aws-sigv4`, the SDK's own signer) and
//! sent on a pooled HTTP/1.1 connection (hyper). No SDK retry layer: the delivery engine owns retries, pacing and
//! timeouts, so a broadcast is never cut short by the SDK's client-side retry quota, and a post
//! costs a fraction of the CPU of an SDK call. Answers are classified by status code and the
//! `x-amzn-ErrorType` header, never by message text.

use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::sigv4::Signer;
use super::{PushError, Pusher};

/// Characters left as they are in a path segment (RFC 3986's unreserved set).
pub(crate) const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Credentials are re-read this long before they expire (Lambda's are temporary).
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Credentials without an expiry are re-read this often anyway.
const REFRESH_EVERY: Duration = Duration::from_secs(15 * 60);
/// Idle pooled connections a broadcast keeps for the next one.
const MAX_IDLE_PER_HOST: usize = 1024;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

struct Cached {
    credentials: Credentials,
    refresh_at: Instant,
}

/// Posts through the API Gateway management API, signed for `execute-api` in the function's
/// region with the credentials of the SDK config it was built from.
pub struct ManagementApiPusher {
    client: Client<Https, Full<Bytes>>,
    credentials: Option<SharedCredentialsProvider>,
    region: String,
    signer: Signer,
    cached: std::sync::RwLock<Option<Cached>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ManagementApiPusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApiPusher")
            .field("region", &self.region)
            .finish()
    }
}

/// Why the pusher cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot load the system's root certificates for the management API client: {0}")]
pub struct PusherInitError(String);

impl ManagementApiPusher {
    /// A pusher signing with `sdk`'s credentials provider for `region` (the stack's region;
    /// `us-east-1` when none is known, as for a local endpoint).
    pub fn new(sdk: &aws_config::SdkConfig, region: Option<&str>) -> Result<Self, PusherInitError> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| PusherInitError(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        let region = region
            .map(str::to_owned)
            .or_else(|| sdk.region().map(|r| r.to_string()))
            .unwrap_or_else(|| "us-east-1".to_owned());
        Ok(ManagementApiPusher {
            client,
            credentials: sdk.credentials_provider(),
            signer: Signer::new(&region),
            region,
            cached: std::sync::RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The credentials to sign with, re-read from the provider when they near expiry.
    async fn credentials(&self) -> Result<Credentials, String> {
        let fresh = |c: &Option<Cached>| {
            c.as_ref()
                .filter(|c| c.refresh_at > Instant::now())
                .map(|c| c.credentials.clone())
        };
        if let Some(c) = fresh(&self.cached.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(c);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        if let Some(c) = fresh(&self.cached.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(c);
        }
        let provider = self
            .credentials
            .as_ref()
            .ok_or_else(|| "no AWS credentials provider is configured".to_owned())?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("loading AWS credentials: {}", crate::error_chain(&e)))?;
        let now = Instant::now();
        let lifetime = credentials
            .expiry()
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .map_or(REFRESH_EVERY, |left| {
                left.saturating_sub(REFRESH_BEFORE_EXPIRY)
                    .min(REFRESH_EVERY)
            });
        *self.cached.write().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
            credentials: credentials.clone(),
            refresh_at: now + lifetime,
        });
        Ok(credentials)
    }

    fn request(
        &self,
        uri: &str,
        credentials: &Credentials,
        data: &[u8],
    ) -> Result<hyper::Request<Full<Bytes>>, String> {
        let parsed: hyper::Uri = uri
            .parse()
            .map_err(|e| format!("the management endpoint URL {uri}: {e}"))?;
        let signed = self
            .signer
            .sign(&parsed, credentials, data, SystemTime::now())?;
        let mut request = hyper::Request::post(parsed)
            .header("content-length", data.len())
            .header("x-amz-date", signed.x_amz_date)
            .header("authorization", signed.authorization);
        if let Some(token) = signed.x_amz_security_token {
            request = request.header("x-amz-security-token", token);
        }
        request
            .body(Full::new(Bytes::copy_from_slice(data)))
            .map_err(|e| format!("building the request to {uri}: {e}"))
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
        // A provider that cannot answer now (the metadata endpoint, say) may answer later.
        let credentials = self.credentials().await.map_err(|e| failed(true, e))?;
        let request = self
            .request(&uri, &credentials, data)
            .map_err(|e| failed(false, e))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| failed(true, format!("POST {uri}: {}", crate::error_chain(&e))))?;
        let status = response.status().as_u16();
        let kind = error_type(response.headers());
        // Read the body through so the connection goes back to the pool.
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| failed(true, format!("reading the answer of {uri}: {e}")))?;
        let answer = || {
            format!(
                "POST {uri} answered {status} {}: {}",
                kind.as_deref().unwrap_or(""),
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )
        };
        match (status, kind.as_deref()) {
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
                source: answer().into(),
            }),
            (500..=599, _) => Err(failed(true, answer())),
            _ => Err(failed(false, answer())),
        }
    }
}

/// The error type an AWS service names in `x-amzn-ErrorType`
/// ("LimitExceededException:http://internal.amazon.com/..." names the type first).
pub(crate) fn error_type(headers: &hyper::HeaderMap) -> Option<String> {
    headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_owned())
}
