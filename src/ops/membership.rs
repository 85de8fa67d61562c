//! `wsctl subscribe`, `wsctl unsubscribe` and `wsctl connections close`: the function invoked
//! with a membership payload (a backend's, not bound by `[topics]`), and what it did.

use std::fmt;

use handler::{Invocation, MembershipReport};
use serde::Serialize;

use super::invoke::invoke_for;
use crate::aws::Clients;
use crate::error::Result;

/// Ids printed in text; `--output json` has the report's whole list.
const SHOWN_IDS: usize = 20;

/// Invokes the function with a `subscribe`, `unsubscribe` or `close` payload.
pub async fn change(c: &Clients, function: &str, invocation: &Invocation) -> Result<Changed> {
    let report = invoke_for(
        c,
        function,
        &invocation.payload(),
        "a membership report ({\"action\",\"done\",\"gone\",\"failed\"})",
    )
    .await?;
    Ok(Changed {
        function: function.to_owned(),
        report,
    })
}

#[derive(Debug, Serialize)]
pub struct Changed {
    pub function: String,
    #[serde(flatten)]
    pub report: MembershipReport,
}

impl Changed {
    /// Whether anything was left undone (a failure, or the function's deadline).
    pub fn incomplete(&self) -> bool {
        self.report.failed > 0 || !self.report.complete
    }
}

impl fmt::Display for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.report;
        let done = match (r.action.as_str(), &r.topic) {
            ("subscribe", Some(t)) => format!("subscribed to {t:?}"),
            ("unsubscribe", Some(t)) => format!("unsubscribed from {t:?}"),
            ("close", Some(t)) => format!("closed (subscribers of {t:?})"),
            ("close", None) => "closed".to_owned(),
            (other, _) => other.to_owned(),
        };
        writeln!(
            f,
            "{done}: {} connection(s); gone {} (not connected), failed {}",
            r.done, r.gone, r.failed
        )?;
        if !r.connections.is_empty() {
            write!(f, "connections:")?;
            for id in r.connections.iter().take(SHOWN_IDS) {
                write!(f, " {id}")?;
            }
            let beyond = r
                .done
                .saturating_sub(SHOWN_IDS.min(r.connections.len()) as u64);
            if beyond > 0 {
                write!(f, " and {beyond} more")?;
            }
            writeln!(f)?;
        }
        if !r.complete {
            writeln!(
                f,
                "incomplete: the function's deadline came first; run the command again for the rest"
            )?;
        }
        for e in &r.errors {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}
