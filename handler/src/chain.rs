//! The one-line rendering of an error chain (`error: cause: cause`), for Lambda's error
//! responses, the logs and the reports; a leaf every module may use.

use std::error::Error as StdError;

/// `error: cause: cause...`, the way errors are reported to Lambda and in logs.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        // The SDK's outer error often repeats its inner one; skip exact repeats.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}
