//! Invoking the function as a backend does (the runbook's Step 6): the message from an
//! argument, a file or stdin, the invocation, its delivery report or the function's error.

use std::fmt;
use std::path::Path;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use handler::DeliveryReport;
use serde::Serialize;
use serde_json::{json, Value};

use crate::aws::{AwsContext, Clients, FunctionError};
use crate::error::{Error, Result};

/// The message to send: JSON from the argument, a file, or stdin; or `{type, data}` built from
/// `--type` and `--data`. A message that cannot be had is a usage error.
pub fn message(
    arg: Option<&str>,
    file: Option<&Path>,
    kind: Option<&str>,
    data: Option<&str>,
) -> Result<Value> {
    message_text(arg, file, kind, data).map_err(Error::Usage)
}

fn message_text(
    arg: Option<&str>,
    file: Option<&Path>,
    kind: Option<&str>,
    data: Option<&str>,
) -> std::result::Result<Value, String> {
    let parse = |text: &str, from: &str| -> std::result::Result<Value, String> {
        serde_json::from_str(text).map_err(|e| {
            format!("the message from {from} is not JSON ({e}); use --type NAME --data JSON to build {{\"type\",\"data\"}}")
        })
    };
    if data.is_some() && kind.is_none() {
        return Err("--data needs --type".into());
    }
    if let Some(kind) = kind {
        if arg.is_some() || file.is_some() {
            return Err("--type/--data build the message; do not also pass one".into());
        }
        let data = match data {
            Some(d) => parse(d, "--data")?,
            None => Value::Null,
        };
        return Ok(json!({"type": kind, "data": data}));
    }
    match (arg, file) {
        (Some(_), Some(_)) => {
            Err("give the message as an argument or with --file, not both".into())
        }
        (Some(text), None) if text != "-" => parse(text, "the argument"),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            parse(&text, &path.display().to_string())
        }
        _ => {
            use std::io::{IsTerminal, Read};
            if std::io::stdin().is_terminal() {
                return Err(
                    "no message: pass one as an argument, with --file, --type/--data, or on stdin"
                        .into(),
                );
            }
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("reading stdin: {e}"))?;
            parse(&text, "stdin")
        }
    }
}

/// Invokes the function with `payload` and returns its delivery report.
pub async fn invoke(c: &Clients, function: &str, payload: &Value) -> Result<DeliveryReport> {
    invoke_for(
        c,
        function,
        payload,
        "a delivery report ({\"delivered\",\"gone\",\"failed\"})",
    )
    .await
}

/// Invokes the function with `payload` and reads its answer as a `T` (`what` names it when
/// the answer is something else, as from a function older than the CLI).
pub async fn invoke_for<T: serde::de::DeserializeOwned>(
    c: &Clients,
    function: &str,
    payload: &Value,
    what: &str,
) -> Result<T> {
    let text = invoke_text(c, function, payload).await?;
    serde_json::from_str(&text).map_err(|_| {
        Error::Failed(format!(
            "{function} did not answer with {what}: {text} (is the deployed handler older than this wsctl? run `wsctl up`)"
        ))
    })
}

/// Queues an invocation of the function with `payload` (`InvocationType=Event`): Lambda
/// answers once it has the event, and runs it (retrying twice on error) in the background.
pub async fn invoke_event(c: &Clients, function: &str, payload: &Value) -> Result<()> {
    c.lambda
        .invoke()
        .function_name(function)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(payload.to_string().into_bytes()))
        .send()
        .await
        .aws(format!("Invoke {function} (Event)"))?;
    Ok(())
}

/// Invokes the function with `payload` and returns its answer; a function error is a
/// [`FunctionError`].
pub async fn invoke_text(c: &Clients, function: &str, payload: &Value) -> Result<String> {
    let out = c
        .lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload.to_string().into_bytes()))
        .send()
        .await
        .aws(format!("Invoke {function}"))?;
    let body = out.payload.map(|p| p.into_inner()).unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    if let Some(kind) = out.function_error {
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        return Err(Error::Function(FunctionError {
            handled: kind,
            error_type: v["errorType"].as_str().unwrap_or("").to_owned(),
            message: v["errorMessage"].as_str().unwrap_or(&text).to_owned(),
        }));
    }
    Ok(text.into_owned())
}

#[derive(Debug, Serialize)]
pub struct Sent {
    pub function: String,
    #[serde(flatten)]
    pub report: DeliveryReport,
}

/// Undelivered ids printed in text; `--output json` has the report's whole list.
const SHOWN_IDS: usize = 20;

impl fmt::Display for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.report;
        write!(
            f,
            "delivered {}, gone {} (rows removed), failed {}",
            r.delivered, r.gone, r.failed
        )?;
        if r.throttled > 0 || r.retried > 0 {
            write!(
                f,
                "; {} attempts throttled, {} retried",
                r.throttled, r.retried
            )?;
        }
        writeln!(f)?;
        if let Some(id) = &r.broadcast_id {
            writeln!(f, "broadcast {id}")?;
        }
        if !r.undelivered.is_empty() {
            let listed = r.undelivered.len() as u64 + r.undelivered_more;
            write!(f, "undelivered:")?;
            for id in r.undelivered.iter().take(SHOWN_IDS) {
                write!(f, " {id}")?;
            }
            let beyond = listed.saturating_sub(SHOWN_IDS.min(r.undelivered.len()) as u64);
            if beyond > 0 {
                write!(
                    f,
                    " and {beyond} more (--output json lists up to {})",
                    handler::DeliveryReport::MAX_UNDELIVERED
                )?;
            }
            writeln!(f)?;
        }
        if !r.complete {
            match &r.resume_after {
                Some(cursor) => writeln!(f, "incomplete: the function's deadline came before the table was read to its end; rows after {cursor} were not sent to")?,
                None => writeln!(f, "incomplete: the function's deadline came before the table was read; nothing was sent to the rows not read")?,
            }
        }
        for e in &r.errors {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_one_place() {
        assert_eq!(
            message(Some(r#"{"type":"t"}"#), None, None, None).unwrap(),
            json!({"type":"t"})
        );
        assert_eq!(
            message(None, None, Some("claim"), Some(r#"{"id":1}"#)).unwrap(),
            json!({"type":"claim","data":{"id":1}})
        );
        assert!(message(Some("not json"), None, None, None)
            .unwrap_err()
            .to_string()
            .contains("--type"));
        assert!(message(None, None, None, Some("1")).is_err());
    }
}
