//! The function's one SigV4-signed HTTP client: the management API's posts
//! ([`crate::push::ManagementApiPusher`]) and Lambda's Invoke (the fan-out's
//! [`crate::fanout::LambdaInvoker`]) go through it. One pooled HTTP/1.1 client (hyper, rustls
//! with the system's roots), one cache of the credentials it signs with (re-read before they
//! expire), and two signers: [`sigv4::Signer`], which keeps the day's key and the last body's
//! hash for the one request a broadcast repeats, and `aws-sigv4`'s general one. No SDK retry
//! layer: callers own their retries. Answers are classified by status code and the
//! `x-amzn-ErrorType` header, never by message text.

pub mod sigv4;

use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::chain::error_chain;
pub use sigv4::{SignError, Signed, Signer, SEGMENT};

/// Credentials are re-read this long before they expire (Lambda's are temporary).
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Credentials without an expiry are re-read this often anyway.
const REFRESH_EVERY: Duration = Duration::from_secs(15 * 60);
/// Idle pooled connections a broadcast keeps for the next one.
const MAX_IDLE_PER_HOST: usize = 1024;

/// The HTTPS (and, for local endpoints, HTTP) connector: rustls with the system's roots.
pub type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Why the client cannot be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot load the system's root certificates for the AWS client: {0}")]
pub struct ClientInitError(String);

/// The connector every client of the function uses (this one and the JWKS fetcher).
pub fn https_connector() -> Result<Https, ClientInitError> {
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| ClientInitError(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .build())
}

/// Why a signed request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The credentials provider could not answer now (the metadata endpoint, say); it may
    /// later.
    #[error("loading AWS credentials: {0}")]
    Credentials(String),
    #[error("no AWS credentials provider is configured")]
    NoCredentials,
    #[error("the endpoint URL {uri}: {reason}")]
    BadUri { uri: String, reason: String },
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The request may or may not have reached the service.
    #[error("{method} {uri}: {reason}")]
    Transport {
        method: String,
        uri: String,
        reason: String,
    },
}

impl SendError {
    /// Whether the same request may succeed later: credentials that could not be loaded now,
    /// and transport failures.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SendError::Credentials(_) | SendError::Transport { .. }
        )
    }
}

/// An HTTP answer: its status, the error type AWS named, its body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// From `x-amzn-ErrorType` ("LimitExceededException:http://..." names the type first).
    pub error_type: Option<String>,
    pub body: Bytes,
}

impl Answer {
    /// `answered 429 LimitExceededException: {"message":...}`, the body cut at `limit` bytes.
    pub fn describe(&self, limit: usize) -> String {
        format!(
            "answered {} {}: {}",
            self.status,
            self.error_type.as_deref().unwrap_or(""),
            String::from_utf8_lossy(&self.body[..self.body.len().min(limit)])
        )
    }
}

/// How a request is signed.
#[derive(Clone, Copy)]
pub enum Signing<'a> {
    /// The management API's post, with the caching signer.
    Fast(&'a Signer),
    /// Any other service, with `aws-sigv4`'s general signer.
    General { service: &'a str, region: &'a str },
}

struct Cached {
    credentials: Credentials,
    refresh_at: Instant,
}

/// The signed client; share one per process.
pub struct SignedClient {
    client: Client<Https, Full<Bytes>>,
    credentials: Option<SharedCredentialsProvider>,
    cached: std::sync::RwLock<Option<Cached>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for SignedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedClient").finish_non_exhaustive()
    }
}

impl SignedClient {
    /// A client signing with `sdk`'s credentials provider.
    pub fn new(sdk: &aws_config::SdkConfig) -> Result<Self, ClientInitError> {
        Ok(SignedClient {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
                .pool_idle_timeout(Duration::from_secs(60))
                .build(https_connector()?),
            credentials: sdk.credentials_provider(),
            cached: std::sync::RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    /// The credentials to sign with, re-read from the provider when they near expiry.
    async fn credentials(&self) -> Result<Credentials, SendError> {
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
        let provider = self.credentials.as_ref().ok_or(SendError::NoCredentials)?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| SendError::Credentials(error_chain(&e)))?;
        let lifetime = credentials
            .expiry()
            .and_then(|at| at.duration_since(SystemTime::now()).ok())
            .map_or(REFRESH_EVERY, |left| {
                left.saturating_sub(REFRESH_BEFORE_EXPIRY)
                    .min(REFRESH_EVERY)
            });
        *self.cached.write().unwrap_or_else(|p| p.into_inner()) = Some(Cached {
            credentials: credentials.clone(),
            refresh_at: Instant::now() + lifetime,
        });
        Ok(credentials)
    }

    /// `POST uri` with `body` and `headers` (also signed), signed as `signing` says; the
    /// answer read through, so that the connection goes back to the pool.
    pub async fn post(
        &self,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        signing: Signing<'_>,
    ) -> Result<Answer, SendError> {
        self.send("POST", uri, headers, body, signing).await
    }

    /// `DELETE uri`, signed by the general signer for `service` in `region`.
    pub async fn delete(
        &self,
        uri: &str,
        service: &str,
        region: &str,
    ) -> Result<Answer, SendError> {
        self.send(
            "DELETE",
            uri,
            &[],
            &[],
            Signing::General { service, region },
        )
        .await
    }

    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        signing: Signing<'_>,
    ) -> Result<Answer, SendError> {
        let credentials = self.credentials().await?;
        let parsed: hyper::Uri =
            uri.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| SendError::BadUri {
                    uri: uri.to_owned(),
                    reason: e.to_string(),
                })?;
        let now = SystemTime::now();
        let signed = match signing {
            Signing::Fast(signer) if method == "POST" => {
                signer.sign(&parsed, &credentials, body, now)?
            }
            Signing::Fast(signer) => sigv4::sign_request(
                method,
                "execute-api",
                signer.region(),
                &parsed,
                headers,
                &credentials,
                body,
                now,
            )?,
            Signing::General { service, region } => sigv4::sign_request(
                method,
                service,
                region,
                &parsed,
                headers,
                &credentials,
                body,
                now,
            )?,
        };
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(parsed)
            .header("content-length", body.len())
            .header("x-amz-date", signed.x_amz_date)
            .header("authorization", signed.authorization);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(token) = signed.x_amz_security_token {
            request = request.header("x-amz-security-token", token);
        }
        let request = request
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| SendError::BadUri {
                uri: uri.to_owned(),
                reason: e.to_string(),
            })?;
        let transport = |reason: String| SendError::Transport {
            method: method.to_owned(),
            uri: uri.to_owned(),
            reason,
        };
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| transport(error_chain(&e)))?;
        let status = response.status().as_u16();
        let error_type = error_type(response.headers());
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| transport(format!("reading the answer: {e}")))?;
        Ok(Answer {
            status,
            error_type,
            body,
        })
    }
}

/// The error type an AWS service names in `x-amzn-ErrorType`
/// ("LimitExceededException:http://internal.amazon.com/..." names the type first).
pub fn error_type(headers: &hyper::HeaderMap) -> Option<String> {
    headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_owned())
}
