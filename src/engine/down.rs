//! `wsctl down`: what to delete (what carries wsctl's tag, or with `--adopt` what the stack's
//! names identify), each resource's teardown in the order of its rank, deleting in that order,
//! then proving that nothing deleted remains.

use std::fmt;
use std::sync::Mutex;

use serde::Serialize;

use super::order::{order, Step};
use super::{in_passes, observe};
use crate::error::{Error, Result};
use crate::package::CodeSpec;
use crate::report::Progress;
use crate::resources::shape::{Ctx, DownItem, Ids, Observation};
use crate::stack::Stack;

#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    pub project: String,
    /// The environment (`--env`), when one was picked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    pub region: String,
    pub dry_run: bool,
    /// Deleted (or, with --dry-run, to be deleted).
    pub deleted: Vec<DownItem>,
    /// Found with a matching name but not wsctl's: left alone.
    pub left_alone: Vec<DownItem>,
    /// Still there after deleting (should be empty).
    pub remaining: Vec<DownItem>,
    /// What `down` leaves on purpose, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl DownReport {
    pub fn nothing_found(&self) -> bool {
        self.deleted.is_empty() && self.left_alone.is_empty()
    }
}

impl fmt::Display for DownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nothing_found() {
            return writeln!(
                f,
                "Nothing to delete: no resource of project {} exists in {}.",
                crate::naming::label(&self.project, self.env.as_deref()),
                self.region
            );
        }
        let verb = if self.dry_run {
            "Would delete"
        } else {
            "Deleted"
        };
        if !self.deleted.is_empty() {
            writeln!(f, "{verb}:")?;
            for d in &self.deleted {
                writeln!(f, "  {:<12} {}", d.kind.to_string(), d.name)?;
            }
        }
        if !self.left_alone.is_empty() {
            writeln!(f, "Left alone (not created by wsctl):")?;
            for d in &self.left_alone {
                writeln!(
                    f,
                    "  {:<12} {}  ({})",
                    d.kind.to_string(),
                    d.name,
                    d.reason.as_deref().unwrap_or("")
                )?;
            }
        }
        for note in &self.notes {
            writeln!(f, "Note: {note}")?;
        }
        if !self.dry_run {
            if self.remaining.is_empty() {
                writeln!(f, "Verified: nothing wsctl manages remains.")?;
            } else {
                writeln!(f, "Still present after deleting:")?;
                for d in &self.remaining {
                    writeln!(f, "  {:<12} {}", d.kind.to_string(), d.name)?;
                }
            }
        }
        Ok(())
    }
}

/// The steps in `down`'s order.
fn down_order() -> Vec<Step> {
    let mut steps = order();
    steps.sort_by_key(|s| s.down_rank);
    steps
}

/// Each step's teardown, in `down`'s order: what it deletes and leaves, and the notes.
fn teardown(
    steps: &[Step],
    cx: &Ctx,
    obs: &Observation,
    adopt: bool,
) -> (Vec<Vec<DownItem>>, Vec<DownItem>, Vec<String>) {
    let (mut delete, mut leave, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for s in steps {
        let t = s.teardown(cx, obs, adopt);
        delete.push(t.delete);
        leave.extend(t.leave);
        notes.extend(t.notes);
    }
    (delete, leave, notes)
}

/// Deletes in `down`'s order, then checks that nothing deleted remains. `confirm` sees the
/// list before the first delete.
pub async fn down(
    stack: &Stack,
    adopt: bool,
    dry_run: bool,
    confirm: &(dyn Fn(&[DownItem]) -> Result<()> + Sync),
    progress: &Progress,
) -> Result<DownReport> {
    let first: Mutex<Option<Vec<DownItem>>> = Default::default();
    let mut report = in_passes(progress, || {
        down_once(stack, adopt, dry_run, confirm, progress, &first)
    })
    .await?;
    // What the run set out to delete (and the user confirmed); a later pass only sees what an
    // earlier one left.
    if let Some(items) = first.into_inner().unwrap_or_else(|p| p.into_inner()) {
        report.deleted = items;
    }
    Ok(report)
}

async fn down_once(
    stack: &Stack,
    adopt: bool,
    dry_run: bool,
    confirm: &(dyn Fn(&[DownItem]) -> Result<()> + Sync),
    progress: &Progress,
    first: &Mutex<Option<Vec<DownItem>>>,
) -> Result<DownReport> {
    let n = &stack.names;
    let steps = down_order();
    let cx = Ctx {
        stack,
        ids: Ids::default(),
        code: &CodeSpec::Deployed,
        zip: None,
        progress,
    };
    let (obs, ids) = observe(&steps, &cx).await?;
    let cx = cx.with_ids(ids);
    let (per_step, left_alone, notes) = teardown(&steps, &cx, &obs, adopt);
    let delete: Vec<DownItem> = per_step.iter().flatten().cloned().collect();
    let mut report = DownReport {
        project: n.project.clone(),
        env: stack.config.env.clone(),
        region: n.region.clone(),
        dry_run,
        deleted: delete.clone(),
        left_alone,
        remaining: vec![],
        notes,
    };
    // Asked once, on the first pass; later passes finish what was confirmed.
    let first_pass = first.lock().unwrap_or_else(|p| p.into_inner()).is_none();
    if dry_run || (delete.is_empty() && first_pass) {
        return Ok(report);
    }
    if first_pass {
        confirm(&delete)?;
        *first.lock().unwrap_or_else(|p| p.into_inner()) = Some(delete.clone());
    }
    for (step, items) in steps.iter().zip(&per_step) {
        if items.is_empty() {
            continue;
        }
        let bars: Vec<_> = items
            .iter()
            .map(|i| progress.step(format!("{} {}", i.kind, i.name), "deleting"))
            .collect();
        step.delete(&cx, &obs, items).await?;
        for bar in bars {
            bar.done("deleted");
        }
    }

    // Prove it: observe again and list anything we deleted that is still there.
    let cx = cx.with_ids(Ids::default());
    let (after, ids) = observe(&steps, &cx).await?;
    let cx = cx.with_ids(ids);
    let (still, _, _) = teardown(&steps, &cx, &after, true);
    report.remaining = still
        .into_iter()
        .flatten()
        .filter(|s| delete.iter().any(|d| d.kind == s.kind && d.name == s.name))
        .collect();
    if !report.remaining.is_empty() {
        return Err(Error::Failed(format!(
            "down finished but these remain: {}",
            report
                .remaining
                .iter()
                .map(|r| format!("{} {}", r.kind, r.name))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(report)
}
