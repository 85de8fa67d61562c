//! The CLI's error: every way a command can fail, typed, each with its exit code (2 for how
//! wsctl was called or configured, always before any AWS call; 1 for AWS and the rest) and
//! its one-line message. Library modules return it (or a narrower type that converts into it);
//! `main` prints it once and exits with its code.

use crate::aws::{AwsError, SetupError, WaitError};
use crate::config::ConfigError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A mistake in how wsctl was called: a flag, an argument, a file it was pointed at.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No region or no credentials: found before any AWS call.
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// The stack is in a state wsctl will not change as it is (a table with another key, two
    /// APIs of one name, a certificate that cannot serve the domain, an account-wide change
    /// that was not allowed, a cancelled run); the message says what to do.
    #[error("{0}")]
    Refused(String),
    /// Building or reading the handler's zip.
    #[error("{0}")]
    Build(String),
    /// The function answered with an error (Lambda's `X-Amz-Function-Error`).
    #[error(transparent)]
    Function(#[from] crate::aws::FunctionError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Another run held the stack's lock for longer than `--lock-timeout`.
    #[error(transparent)]
    LockHeld(Box<crate::lock::holder::LockHeld>),
    /// Anything else that went wrong while talking to the stack (an answer wsctl cannot read,
    /// the stack lock lost, a check that found what remains after `down`).
    #[error("{0}")]
    Failed(String),
}

impl From<crate::lock::holder::LockHeld> for Error {
    fn from(e: crate::lock::holder::LockHeld) -> Self {
        Error::LockHeld(Box::new(e))
    }
}

impl Error {
    /// The process's exit code: 2 for usage and config errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Config(_) | Error::Setup(_) => 2,
            _ => 1,
        }
    }

    /// The kind `--output json` names: `usage` (exit 2) or `aws` (exit 1).
    pub fn kind(&self) -> &'static str {
        match self.exit_code() {
            2 => "usage",
            _ => "aws",
        }
    }

    /// Whether observing again and re-applying may succeed (a transient AWS failure).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Aws(a) if a.retryable)
    }

    /// An I/O failure with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

/// `bail!` for [`Error::Refused`] and friends: returns the error built from a format string.
#[macro_export]
macro_rules! fail {
    ($kind:ident, $($arg:tt)+) => {
        return Err($crate::error::Error::$kind(format!($($arg)+)))
    };
}
