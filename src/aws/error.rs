//! An AWS call that failed, as a person reads it: one line with the call, the resource and the
//! cause in words ("connection refused at http://127.0.0.1:4566", "access denied to
//! dynamodb:CreateTable on shop_ws_connections", "throttled"...), never the SDK's `Debug`
//! dump, which goes to the log (`WSCTL_LOG=debug`). Errors are classified by their kind, the
//! AWS error code and the transport's `io::ErrorKind`, never by message text.

use std::error::Error as StdError;
use std::fmt::{self, Display};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::endpoint::{self, Service};

/// An AWS call that failed: what was being done (the call and the resource, e.g. `CreateApi
/// shop-websocket`) and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{call}: {cause}")]
pub struct AwsError {
    pub call: String,
    pub cause: Cause,
    /// Whether observing again and re-applying may succeed: throttling, 5xx, a lost
    /// connection or timeout (the SDK's own retries ran out), or a conflict with a change that
    /// landed although its answer was lost.
    pub retryable: bool,
}

/// Why an AWS call failed, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Nothing listens at the endpoint.
    ConnectionRefused {
        endpoint: String,
    },
    /// The endpoint's host name does not resolve.
    NameNotResolved {
        host: String,
    },
    /// The connection was made but TLS failed (an untrusted certificate, or not TLS).
    Tls {
        endpoint: String,
    },
    TimedOut {
        endpoint: String,
    },
    /// Any other transport failure.
    Unreachable {
        endpoint: String,
        detail: String,
    },
    /// The identity may not make this call.
    AccessDenied {
        action: String,
        resource: String,
        code: String,
    },
    /// AWS did not accept the credentials (unknown key, bad signature, expired token).
    Credentials {
        code: String,
        message: String,
    },
    /// AWS's throttle refused the call, after the SDK's own retries.
    Throttled {
        code: String,
    },
    /// Any other answer of the service.
    Service {
        code: String,
        message: Option<String>,
        status: u16,
    },
    /// An answer without an AWS error code (a proxy, an emulator).
    NoCode {
        status: u16,
        body: String,
    },
    /// Something else (the SDK could not build the request or read the answer).
    Other(String),
}

impl Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::ConnectionRefused { endpoint } => write!(f, "connection refused at {endpoint}"),
            Cause::NameNotResolved { host } => {
                write!(f, "name not resolved: {host} (DNS found no address)")
            }
            Cause::Tls { endpoint } => write!(
                f,
                "TLS failed with {endpoint} (an untrusted certificate, or the endpoint does not speak TLS)"
            ),
            Cause::TimedOut { endpoint } => write!(f, "timed out reaching {endpoint}"),
            Cause::Unreachable { endpoint, detail } => {
                write!(f, "cannot reach {endpoint}: {detail}")
            }
            Cause::AccessDenied {
                action,
                resource,
                code,
            } => write!(f, "access denied to {action} on {resource} ({code})"),
            Cause::Credentials { code, message } => write!(
                f,
                "AWS refused the credentials ({code}: {message}): check AWS_PROFILE or the keys in the environment"
            ),
            Cause::Throttled { code } => {
                write!(f, "throttled by AWS ({code}), still after the SDK's retries")
            }
            Cause::Service {
                code,
                message: Some(message),
                status,
            } => write!(f, "{code}: {message} (HTTP {status})"),
            Cause::Service {
                code,
                message: None,
                status,
            } => write!(f, "{code} (HTTP {status})"),
            Cause::NoCode { status, body } => {
                write!(f, "HTTP {status} without an AWS error code: {body}")
            }
            Cause::Other(detail) => f.write_str(detail),
        }
    }
}

/// Error codes by which AWS says it did not perform a call (throttled, or unavailable).
const REFUSAL_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceUnavailableException",
];

/// The refusals that are a throttle (the rest say the service is unavailable).
const THROTTLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
];

/// Further error codes after which a fresh observe-and-apply can converge: a failure that may
/// have done some of the work, or a conflict with work whose answer was lost.
const OTHER_TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "InternalFailure",
    "InternalServerError",
    "ConflictException",
    "ResourceConflictException",
    "ResourceInUseException",
    "ResourceAlreadyExistsException",
    "EntityAlreadyExists",
    "ConcurrentModification",
    "ConcurrentModificationException",
    "OperationAbortedException",
];

/// Codes by which AWS says the identity may not make the call.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "ForbiddenException",
];

/// Codes by which AWS says it does not accept the credentials themselves.
pub const CREDENTIAL_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
];

/// Whether AWS answered that it did not perform the call (throttled, or unavailable), so that
/// sending it again cannot do the work twice.
pub fn refused<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            status == 429
                || status == 503
                || se.err().code().is_some_and(|c| REFUSAL_CODES.contains(&c))
        }
        _ => false,
    }
}

/// Classifies by the error's kind and AWS error code (never by message text). Every
/// [`refused`] call is transient.
pub fn is_transient<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => {
            refused(e)
                || se.raw().status().as_u16() >= 500
                || se
                    .err()
                    .code()
                    .is_some_and(|c| OTHER_TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    }
}

/// `what` is `Operation resource...`: the operation and the rest.
fn split_call(what: &str) -> (&str, &str) {
    match what.split_once(' ') {
        Some((op, rest)) => (op, rest.trim()),
        None => (what, ""),
    }
}

/// The cause of a failed call of `service`'s `what`, in words.
pub fn cause_of<E>(service: Option<Service>, what: &str, e: &SdkError<E, HttpResponse>) -> Cause
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let endpoint = || service.map_or_else(|| "AWS".to_owned(), endpoint::of);
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let status = se.raw().status().as_u16();
            match err.code() {
                Some(code) if DENIED_CODES.contains(&code) => {
                    let (op, resource) = split_call(what);
                    Cause::AccessDenied {
                        action: format!("{}:{op}", service.map_or("aws", |s| s.iam_prefix())),
                        resource: if resource.is_empty() {
                            "*".to_owned()
                        } else {
                            resource.to_owned()
                        },
                        code: code.to_owned(),
                    }
                }
                Some(code) if CREDENTIAL_CODES.contains(&code) => Cause::Credentials {
                    code: code.to_owned(),
                    message: err.message().unwrap_or_default().to_owned(),
                },
                Some(code) if THROTTLE_CODES.contains(&code) => Cause::Throttled {
                    code: code.to_owned(),
                },
                Some(code) => Cause::Service {
                    code: code.to_owned(),
                    message: err.message().map(str::to_owned),
                    status,
                },
                None => {
                    let body = se
                        .raw()
                        .body()
                        .bytes()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    Cause::NoCode {
                        status,
                        body: body.chars().filter(|c| !c.is_control()).take(200).collect(),
                    }
                }
            }
        }
        SdkError::TimeoutError(_) => Cause::TimedOut {
            endpoint: endpoint(),
        },
        SdkError::DispatchFailure(d) if d.is_timeout() => Cause::TimedOut {
            endpoint: endpoint(),
        },
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            transport_cause(&endpoint(), e)
        }
        other => Cause::Other(DisplayErrorContext(other).to_string()),
    }
}

/// The cause of a transport failure: by the `io::ErrorKind` in its chain, else by whether the
/// endpoint's name resolves.
pub fn transport_cause(endpoint: &str, e: &(dyn StdError + 'static)) -> Cause {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionRefused => {
                    return Cause::ConnectionRefused {
                        endpoint: endpoint.to_owned(),
                    }
                }
                K::TimedOut => {
                    return Cause::TimedOut {
                        endpoint: endpoint.to_owned(),
                    }
                }
                // rustls reports a failed handshake (an unknown issuer, a bad certificate, a
                // peer that is not TLS) as invalid data.
                K::InvalidData if endpoint.starts_with("https://") => {
                    return Cause::Tls {
                        endpoint: endpoint.to_owned(),
                    }
                }
                _ => {}
            }
        }
        last = s.to_string();
        source = s.source();
    }
    let host = endpoint::host(endpoint);
    if !host.is_empty() && !endpoint::resolves(endpoint) {
        return Cause::NameNotResolved { host };
    }
    Cause::Unreachable {
        endpoint: endpoint.to_owned(),
        detail: last,
    }
}

/// Wraps an SDK error with the call and resource (`what`), keeping the service's error code
/// and message (the SDK's own Display says only "service error"); the SDK's whole error goes
/// to the log.
pub trait AwsContext<T> {
    fn aws(self, what: impl Display) -> Result<T, AwsError>;
}

impl<T, E> AwsContext<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    fn aws(self, what: impl Display) -> Result<T, AwsError> {
        self.map_err(|e| aws_error(what, &e))
    }
}

/// The [`AwsError`] of a failed call of `what` (the call and its resource).
pub fn aws_error<E>(what: impl Display, e: &SdkError<E, HttpResponse>) -> AwsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let call = what.to_string();
    let service = Service::of_error::<E>();
    tracing::debug!(call, error = ?e, "AWS call failed");
    AwsError {
        cause: cause_of(service, &call, e),
        retryable: is_transient(e),
        call,
    }
}

/// Sends a call that is not idempotent (a create that a blind retry could repeat), with the
/// SDK's retries turned off by the caller. Refusals ([`refused`]) are retried here with
/// backoff and jitter; an ambiguous failure (a lost connection, a timeout, a 500: the call may
/// have taken effect) is returned at once, for the engine to observe again.
pub async fn send_unrepeated<T, E, F, Fut>(what: impl Display, call: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    crate::retry::refusals(call, refused).await.aws(what)
}

/// The function answered an invocation with an error (Lambda's `X-Amz-Function-Error`): the
/// call went through, the function failed.
#[derive(Debug, thiserror::Error)]
#[error("the function failed ({handled}): {error_type} {message}")]
pub struct FunctionError {
    /// `Unhandled` or `Handled`.
    pub handled: String,
    /// The function's `errorType` (the handler's error kind, e.g. `NoSuchBroadcast`).
    pub error_type: String,
    pub message: String,
}

/// A waiter that gave up (its maximum wait passed, or the resource failed).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct WaitError {
    pub what: String,
    pub detail: String,
}

/// Wraps a waiter's error with what was awaited.
pub fn waited<T, E: StdError + 'static>(
    r: Result<T, E>,
    what: impl Display,
) -> Result<T, WaitError> {
    r.map_err(|e| {
        tracing::debug!(what = %what, error = ?e, "waiter failed");
        WaitError {
            what: what.to_string(),
            detail: DisplayErrorContext(&e).to_string(),
        }
    })
}
