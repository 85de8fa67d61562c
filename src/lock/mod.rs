//! One `up` or `down` at a time per stack: first a lock on this machine ([`machine`], the
//! fast path for two runs in one place), then the lock in DynamoDB ([`remote`]) that holds
//! across machines. `status` and `--dry-run` take neither.

use std::time::Duration;

use crate::error::Result;
use crate::stack::Stack;

pub mod holder;
pub mod machine;
pub mod remote;

/// Both locks, held until released or dropped.
pub struct StackLock {
    _machine: machine::MachineLock,
    remote: remote::RemoteLock,
}

/// Takes the stack's locks for `command` (`up` or `down`), waiting up to `timeout` for the one
/// in DynamoDB; `note` receives progress lines.
pub async fn acquire(
    stack: &Stack,
    command: &str,
    timeout: Duration,
    note: &dyn Fn(String),
) -> Result<StackLock> {
    let machine = machine::acquire(&stack.names, note)?;
    let remote = remote::acquire(stack, command, timeout, note).await?;
    Ok(StackLock {
        _machine: machine,
        remote,
    })
}

impl StackLock {
    /// Whether another run took the DynamoDB lock over while this one worked.
    pub fn lost(&self) -> bool {
        self.remote.lost()
    }

    pub async fn release(self) -> Result<()> {
        self.remote.release().await
    }

    /// `down`, once the stack is gone: the lock table goes too.
    pub async fn remove_table(self) -> Result<()> {
        self.remote.remove_table().await
    }
}
