//! Secrets never reach the terminal: every value registered here (AWS credentials, the
//! HS256 secret of `wsctl dev`) is replaced by `[REDACTED]` in logs and error messages,
//! whatever component wrote them (the SDK's own debug logs included).

use std::io::Write;
use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Shorter values are not secrets worth the false positives.
const MIN_LEN: usize = 8;

pub const MASK: &str = "[REDACTED]";

/// Registers a value to mask from now on.
pub fn add(secret: impl Into<String>) {
    let secret = secret.into();
    if secret.len() < MIN_LEN {
        return;
    }
    let mut list = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if !list.contains(&secret) {
        list.push(secret);
        // Longest first, so a secret containing another is masked whole.
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers the secret-bearing variables of the environment.
pub fn add_from_env() {
    for var in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
    ] {
        if let Ok(v) = std::env::var(var) {
            add(v);
        }
    }
}

/// `text` with every registered secret masked.
pub fn redact(text: &str) -> String {
    let list = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    let mut out = text.to_owned();
    for s in list.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// stderr through [`redact`]: the writer of wsctl's log lines. tracing's fmt layer writes each
/// event with one call, so a secret never straddles two writes.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked_longest_first() {
        add("abcdefgh-secret");
        add("abcdefgh");
        add("tinytin");
        assert_eq!(
            redact("key=abcdefgh-secret other=abcdefgh tinytin"),
            "key=[REDACTED] other=[REDACTED] tinytin"
        );
    }
}
