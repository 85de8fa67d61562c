//! Authentication on `$connect`: a JWT from the query string (browsers cannot set headers on a
//! WebSocket handshake), verified with an HS256 secret or against a JWKS URL (RS256 / ES256,
//! e.g. Cognito or Auth0), with `exp`, `nbf`, `iss` and `aud` checked.
//!
//! Keys come through a port: the Lambda reads the HS256 secret from SSM at cold start and
//! fetches JWKS over HTTPS; `wsctl dev` and tests bring their own.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};

/// How long fetched keys are trusted before they are fetched again.
pub const JWKS_TTL: Duration = Duration::from_secs(600);
/// An unknown `kid` (a rotated key) triggers a refetch at most this often.
pub const JWKS_REFETCH_MIN: Duration = Duration::from_secs(30);

/// Why a token was refused. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token where the function looks for one (the message says where: the query
    /// parameter, the `Sec-WebSocket-Protocol` header, or either).
    #[error("no token: {0}")]
    Missing(String),
    #[error("the token is malformed")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token's audience is not accepted")]
    BadAudience,
    #[error("the token's issuer is not accepted")]
    BadIssuer,
    #[error("the token is signed with {0}, which this function does not accept")]
    BadAlgorithm(String),
    #[error("no key with id {0:?} in the JWKS")]
    UnknownKey(String),
    #[error("the token has no subject (sub)")]
    NoSubject,
    /// The keys could not be obtained (JWKS unreachable): a server problem, not the client's.
    #[error("cannot obtain the verification keys: {0}")]
    Keys(String),
}

impl AuthError {
    /// Whether the failure is the server's (500) rather than the client's (401).
    pub fn is_server_error(&self) -> bool {
        matches!(self, AuthError::Keys(_))
    }
}

/// Why a JWKS document could not be fetched (the message names the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Fetches a JWKS document.
#[async_trait]
pub trait JwksFetcher: Send + Sync {
    async fn fetch(&self, url: &str) -> Result<String, FetchError>;
}

pub enum Keys {
    /// A shared secret (HS256).
    Hs256(Vec<u8>),
    /// Public keys from a JWKS URL (RS256 and ES256), cached and refetched on rotation.
    Jwks {
        url: String,
        fetcher: Box<dyn JwksFetcher>,
        cache: Mutex<Option<(Instant, JwkSet)>>,
    },
}

impl std::fmt::Debug for Keys {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Keys::Hs256(_) => f.write_str("Hs256(***)"),
            Keys::Jwks { url, .. } => write!(f, "Jwks({url})"),
        }
    }
}

/// The subprotocol wsctl's clients offer ahead of their token, `new WebSocket(url, ["wsctl",
/// token])`; the handler selects it in its `$connect` answer, as API Gateway requires.
pub const SUBPROTOCOL: &str = "wsctl";

/// Where `$connect` reads the token (`[auth] token_source`, `AUTH_TOKEN_SOURCE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenSource {
    /// The query string (`?token=...`), which access logs and browser history keep.
    #[default]
    Query,
    /// `Sec-WebSocket-Protocol: wsctl, <token>`.
    Protocol,
    /// The header when the client offers it, else the query string.
    Either,
}

/// A token source that is not `query`, `protocol` or `either`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a token source: expected \"query\", \"protocol\" or \"either\"")]
pub struct UnknownTokenSource(pub String);

impl std::str::FromStr for TokenSource {
    type Err = UnknownTokenSource;
    fn from_str(s: &str) -> Result<Self, UnknownTokenSource> {
        match s {
            "query" => Ok(TokenSource::Query),
            "protocol" => Ok(TokenSource::Protocol),
            "either" => Ok(TokenSource::Either),
            other => Err(UnknownTokenSource(other.to_owned())),
        }
    }
}

impl std::fmt::Display for TokenSource {
    /// The name the project file and the function's environment use.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenSource::Query => "query",
            TokenSource::Protocol => "protocol",
            TokenSource::Either => "either",
        })
    }
}

/// What the handshake's `Sec-WebSocket-Protocol` header (names lower-cased) offers: whether it
/// offers wsctl's subprotocol, and the token that follows it.
pub fn offered_protocol(
    headers: &std::collections::BTreeMap<String, String>,
) -> (bool, Option<&str>) {
    let Some(value) = headers.get("sec-websocket-protocol") else {
        return (false, None);
    };
    let mut parts = value.split(',').map(str::trim).filter(|p| !p.is_empty());
    match parts.position(|p| p == SUBPROTOCOL) {
        None => (false, None),
        Some(_) => (true, parts.next()),
    }
}

#[derive(Debug)]
pub struct Auth {
    pub keys: Keys,
    /// Accepted `iss`; None accepts any.
    pub issuer: Option<String>,
    /// Accepted `aud` values; empty accepts any.
    pub audience: Vec<String>,
    /// The query parameter carrying the token.
    pub query_param: String,
    /// Where the token is read.
    pub source: TokenSource,
    pub leeway_seconds: u64,
    /// An unknown `kid` triggers a JWKS refetch at most this often.
    pub jwks_refetch_min: Duration,
    /// The claims the `$connect` authorizer passes on to every route (`[auth] claims`).
    pub claims: Vec<String>,
}

/// A verified token: its subject, and every claim it carries (the handler keeps only those
/// the topic rules name).
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub sub: String,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl Auth {
    /// The token of a `$connect`, from where [`Auth::source`] says; the error says where it
    /// was looked for.
    pub fn token<'a>(
        &self,
        query: &'a std::collections::BTreeMap<String, String>,
        protocol_token: Option<&'a str>,
    ) -> Result<&'a str, AuthError> {
        let from_query = || {
            query
                .get(&self.query_param)
                .map(String::as_str)
                .filter(|t| !t.is_empty())
        };
        let found = match self.source {
            TokenSource::Query => from_query(),
            TokenSource::Protocol => protocol_token,
            TokenSource::Either => protocol_token.or_else(from_query),
        };
        found.ok_or_else(|| {
            let header = format!("offer the subprotocols \"{SUBPROTOCOL}\" and the token (Sec-WebSocket-Protocol: {SUBPROTOCOL}, <token>)");
            let query = format!("pass it as the {:?} query parameter", self.query_param);
            AuthError::Missing(match self.source {
                TokenSource::Query => query,
                TokenSource::Protocol => header,
                TokenSource::Either => format!("{header}, or {query}"),
            })
        })
    }

    pub fn hs256(secret: Vec<u8>) -> Auth {
        Auth::with_keys(Keys::Hs256(secret))
    }

    pub fn jwks(url: impl Into<String>, fetcher: Box<dyn JwksFetcher>) -> Auth {
        Auth::with_keys(Keys::Jwks {
            url: url.into(),
            fetcher,
            cache: Mutex::new(None),
        })
    }

    fn with_keys(keys: Keys) -> Auth {
        Auth {
            keys,
            issuer: None,
            audience: Vec::new(),
            query_param: "token".into(),
            source: TokenSource::Query,
            leeway_seconds: 30,
            jwks_refetch_min: JWKS_REFETCH_MIN,
            claims: Vec::new(),
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway_seconds;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.required_spec_claims = ["exp".to_owned()].into_iter().collect();
        if self.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audience);
        }
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        v
    }

    /// Verifies a token and returns its subject and claims.
    pub async fn verify(&self, token: &str) -> Result<Verified, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Malformed)?;
        let key = match &self.keys {
            Keys::Hs256(secret) => {
                if header.alg != Algorithm::HS256 {
                    return Err(AuthError::BadAlgorithm(format!("{:?}", header.alg)));
                }
                DecodingKey::from_secret(secret)
            }
            Keys::Jwks { .. } => {
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(AuthError::BadAlgorithm(format!("{:?}", header.alg)));
                }
                self.jwk_key(header.kid.as_deref()).await?
            }
        };
        let data = decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &self.validation(header.alg),
        )
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => AuthError::Expired,
                K::ImmatureSignature => AuthError::NotYetValid,
                K::InvalidSignature => AuthError::BadSignature,
                K::InvalidAudience => AuthError::BadAudience,
                K::InvalidIssuer => AuthError::BadIssuer,
                K::InvalidAlgorithm => AuthError::BadAlgorithm(format!("{:?}", header.alg)),
                _ => AuthError::Malformed,
            }
        })?;
        let claims = data.claims;
        let sub = claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::NoSubject)?
            .to_owned();
        Ok(Verified { sub, claims })
    }

    async fn jwk_key(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        let Keys::Jwks {
            url,
            fetcher,
            cache,
        } = &self.keys
        else {
            unreachable!("called for JWKS keys only")
        };
        let lookup = |set: &JwkSet| -> Option<DecodingKey> {
            let jwk = match kid {
                Some(k) => set.find(k),
                None if set.keys.len() == 1 => set.keys.first(),
                None => None,
            }?;
            DecodingKey::from_jwk(jwk).ok()
        };
        let (fresh, found, stale_ok) = {
            let guard = cache.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some((at, set)) => (
                    at.elapsed() < JWKS_TTL,
                    lookup(set),
                    at.elapsed() >= self.jwks_refetch_min,
                ),
                None => (false, None, true),
            }
        };
        if let (true, Some(key)) = (fresh, &found) {
            return Ok(key.clone());
        }
        // Expired cache, or an unknown kid (a rotated key): fetch again, but not in a loop.
        if !fresh || stale_ok {
            let text = fetcher.fetch(url).await.map_err(|e| AuthError::Keys(e.0))?;
            let set: JwkSet = serde_json::from_str(&text)
                .map_err(|e| AuthError::Keys(format!("{url} is not a JWKS: {e}")))?;
            let key = lookup(&set);
            *cache.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), set));
            if let Some(k) = key {
                return Ok(k);
            }
        } else if let Some(k) = found {
            return Ok(k);
        }
        Err(AuthError::UnknownKey(kid.unwrap_or("(none)").to_owned()))
    }
}

#[cfg(feature = "aws")]
pub use https::HttpsFetcher;

#[cfg(feature = "aws")]
mod https {
    use async_trait::async_trait;
    use http_body_util::{BodyExt, Empty, Limited};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    use super::{FetchError, JwksFetcher};
    use crate::signed::{https_connector, ClientInitError, Https};

    /// JWKS documents are small; refuse anything larger.
    const MAX_JWKS_BYTES: usize = 1024 * 1024;

    /// Fetches JWKS over HTTPS (system roots) or plain HTTP (a local issuer in development).
    pub struct HttpsFetcher {
        client: Client<Https, Empty<hyper::body::Bytes>>,
    }

    impl HttpsFetcher {
        pub fn new() -> Result<HttpsFetcher, ClientInitError> {
            Ok(HttpsFetcher {
                client: Client::builder(TokioExecutor::new()).build(https_connector()?),
            })
        }
    }

    #[async_trait]
    impl JwksFetcher for HttpsFetcher {
        async fn fetch(&self, url: &str) -> Result<String, FetchError> {
            let uri: hyper::Uri = url
                .parse()
                .map_err(|e| FetchError(format!("bad JWKS URL {url}: {e}")))?;
            let request = async {
                let resp = self
                    .client
                    .get(uri)
                    .await
                    .map_err(|e| FetchError(format!("GET {url}: {e}")))?;
                if !resp.status().is_success() {
                    return Err(FetchError(format!("GET {url} answered {}", resp.status())));
                }
                let body = Limited::new(resp.into_body(), MAX_JWKS_BYTES)
                    .collect()
                    .await
                    .map_err(|e| FetchError(format!("reading {url}: {e}")))?
                    .to_bytes();
                String::from_utf8(body.to_vec())
                    .map_err(|_| FetchError(format!("{url} is not UTF-8")))
            };
            tokio::time::timeout(std::time::Duration::from_secs(5), request)
                .await
                .map_err(|_| FetchError(format!("GET {url} timed out after 5 s")))?
        }
    }
}
