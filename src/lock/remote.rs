//! The stack's lock in AWS, which serialises `up` and `down` across machines (two CI runners
//! deploying the same project at once): one item in a DynamoDB table of wsctl's own,
//! `{project}_wsctl_lock`, taken by a conditional write and held by a lease that the holder
//! renews while it works.
//!
//! - The item names its holder (host, pid, command, wsctl version, start time) and carries a
//!   random token and the lease's end (`expires_ms`, epoch milliseconds). It is taken with
//!   `PutItem` on condition that no item exists or its lease has ended, renewed every third of
//!   the lease with `UpdateItem` on condition that the token is still ours, and removed at the
//!   end with `DeleteItem` on the same condition. A holder killed by kill -9 stops renewing;
//!   once its lease ends the next run takes the lock over.
//! - The table does not exist before a project's first run, so the first run creates it, and
//!   that is where two first runs race: DynamoDB lets exactly one `CreateTable` of a name
//!   succeed, the other gets `ResourceInUseException`; both wait for the table to be ACTIVE
//!   and then race on the conditional write, which exactly one wins. Nothing of the stack is
//!   written before the lock is held.
//! - `down` deletes the table once the stack is gone; the lock goes with it.
//!
//! Leases compare the taker's clock with the holder's: clocks more than a few seconds apart
//! shorten or lengthen a dead holder's lease by as much, never let two live holders overlap
//! (a live holder's renewals keep its lease ahead of every clock by the lease's length).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemError, DeleteItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, TableStatus};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use serde::Serialize;

pub use super::holder::{Holder, LockHeld};
use crate::aws::aws_error;
use crate::error::{Error, Result};
use crate::stack::Stack;

/// The lock table's hash key.
const KEY: &str = "stack";
/// How long a lease lasts unless renewed (`WSCTL_LOCK_LEASE`, in seconds, changes it).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How long a new lock table may take to become ACTIVE.
const TABLE_WAIT: Duration = Duration::from_secs(120);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The lease length: `WSCTL_LOCK_LEASE` seconds, or the default.
pub fn lease() -> Result<Duration> {
    match std::env::var("WSCTL_LOCK_LEASE") {
        Err(_) => Ok(DEFAULT_LEASE),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(s) if (1..=3600).contains(&s) => Ok(Duration::from_secs(s)),
            _ => Err(Error::Usage(format!(
                "WSCTL_LOCK_LEASE={v:?}: expected a whole number of seconds from 1 to 3600"
            ))),
        },
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key_value(stack: &Stack) -> AttributeValue {
    s(&stack.names.stack)
}

/// Deletes the lock item if it still carries `token` (so a run that took the lock since keeps
/// it).
async fn delete_if_token(
    db: &aws_sdk_dynamodb::Client,
    table: &str,
    key: AttributeValue,
    token: &str,
) -> Result<DeleteItemOutput, SdkError<DeleteItemError, HttpResponse>> {
    db.delete_item()
        .table_name(table)
        .key(KEY, key)
        .condition_expression("#t = :t")
        .expression_attribute_names("#t", "token")
        .expression_attribute_values(":t", s(token))
        .send()
        .await
}

fn read_holder(item: &HashMap<String, AttributeValue>) -> Holder {
    let text = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let num = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Holder {
        host: text("host"),
        pid: num("pid") as u32,
        command: text("command"),
        version: text("version"),
        started: text("started"),
        expires_ms: num("expires_ms"),
        token: text("token"),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "unknown host".into())
}

/// The current holder of the stack's lock, if the table and an item exist.
pub async fn holder(stack: &Stack) -> Result<Option<Holder>> {
    let table = &stack.names.lock_table;
    let out = stack
        .clients
        .dynamodb
        .get_item()
        .table_name(table)
        .key(KEY, key_value(stack))
        .consistent_read(true)
        .send()
        .await;
    match out {
        Ok(out) => Ok(out.item.as_ref().map(read_holder)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(aws_error(format!("GetItem on the lock table {table}"), &e).into()),
    }
}

/// Creates the lock table, or finds it created by a concurrent run, and waits until ACTIVE.
async fn ensure_table(stack: &Stack, note: &dyn Fn(String)) -> Result<()> {
    let table = &stack.names.lock_table;
    let db = &stack.clients.dynamodb;
    let created = crate::resources::table::create_request(db, table, KEY, None, &stack.tags)
        .send()
        .await;
    match created {
        Ok(_) => note(format!("created the stack lock table {table}")),
        // Another run created it first: the conditional write decides between us.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => {
            return Err(aws_error(format!("CreateTable {table} (the stack lock)"), &e).into())
        }
    }
    // Polled rather than through the SDK's table waiter (as the connections table is): the
    // waiter's first retry comes after 20 s, and every other step of the first run waits on
    // this one.
    let since = Instant::now();
    loop {
        let out = db.describe_table().table_name(table).send().await;
        match out {
            Ok(out) => {
                if out.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
                    return Ok(());
                }
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => {
                return Err(aws_error(format!("DescribeTable {table} (the stack lock)"), &e).into())
            }
        }
        if since.elapsed() > TABLE_WAIT {
            crate::fail!(
                Failed,
                "the stack lock table {table} was not ACTIVE after {TABLE_WAIT:?}; nothing of the stack was changed"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A held lock: renewed in the background until [`RemoteLock::release`] (or until the process
/// ends, after which the lease runs out).
pub struct RemoteLock {
    table: String,
    key: AttributeValue,
    token: String,
    client: aws_sdk_dynamodb::Client,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Takes the stack's lock for `command`, waiting up to `timeout` (with a progress line naming
/// the holder) while another run holds a live lease.
pub async fn acquire(
    stack: &Stack,
    command: &str,
    timeout: Duration,
    note: &dyn Fn(String),
) -> Result<RemoteLock> {
    let lease = lease()?;
    let table = stack.names.lock_table.clone();
    let db = stack.clients.dynamodb.clone();
    let token = format!("{:032x}", rand::random::<u128>());
    let started = Instant::now();
    let mut waiting_for: Option<String> = None;
    loop {
        let item = HashMap::from([
            (KEY.to_owned(), key_value(stack)),
            ("token".to_owned(), s(&token)),
            ("host".to_owned(), s(host_name())),
            ("pid".to_owned(), n(std::process::id())),
            ("command".to_owned(), s(command)),
            ("version".to_owned(), s(env!("CARGO_PKG_VERSION"))),
            ("started".to_owned(), s(handler::now_iso8601())),
            (
                "expires_ms".to_owned(),
                n(now_ms() + lease.as_millis() as u64),
            ),
        ]);
        let put = db
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#k) OR expires_ms < :now")
            .expression_attribute_names("#k", KEY)
            .expression_attribute_values(":now", n(now_ms()))
            .send()
            .await;
        let e = match put {
            Ok(_) => break,
            Err(e) => e,
        };
        let service = e.as_service_error();
        if service.is_some_and(|s| s.is_resource_not_found_exception()) {
            ensure_table(stack, note).await?;
            continue;
        }
        if !service.is_some_and(|s| s.is_conditional_check_failed_exception()) {
            return Err(aws_error(format!("PutItem on the lock table {table}"), &e).into());
        }
        // Held by someone else: say who, then wait for the lease (or the timeout).
        let Some(holder) = holder(stack).await? else {
            continue; // released between our write and our read
        };
        // Our own write, whose answer was lost and whose retry found it there.
        if holder.token == token {
            break;
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(LockHeld {
                project: stack.names.stack.clone(),
                table,
                holder,
                waited,
                lease,
            }
            .into());
        }
        if waiting_for.as_deref() != Some(holder.token.as_str()) {
            note(format!(
                "waiting for the stack lock held by {holder} (lease ends in {:.0?} unless renewed; giving up after {timeout:?})",
                holder.lease_left().unwrap_or_default()
            ));
            waiting_for = Some(holder.token.clone());
        }
        let pause = holder
            .lease_left()
            .unwrap_or_default()
            .clamp(Duration::from_millis(200), Duration::from_secs(1))
            .min(timeout.saturating_sub(waited) + Duration::from_millis(10));
        tokio::time::sleep(pause).await;
    }
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = tokio::spawn(renew(
        db.clone(),
        table.clone(),
        key_value(stack),
        token.clone(),
        lease,
        lost.clone(),
    ));
    Ok(RemoteLock {
        table,
        key: key_value(stack),
        token,
        client: db,
        lost,
        renewer,
    })
}

/// Pushes the lease's end forward every third of the lease while the token is still ours.
async fn renew(
    db: aws_sdk_dynamodb::Client,
    table: String,
    key: AttributeValue,
    token: String,
    lease: Duration,
    lost: Arc<AtomicBool>,
) {
    loop {
        tokio::time::sleep(lease / 3).await;
        let out = db
            .update_item()
            .table_name(&table)
            .key(KEY, key.clone())
            .update_expression("SET expires_ms = :e")
            .condition_expression("#t = :t")
            .expression_attribute_names("#t", "token")
            .expression_attribute_values(":t", s(&token))
            .expression_attribute_values(":e", n(now_ms() + lease.as_millis() as u64))
            .send()
            .await;
        match out {
            Ok(_) => {}
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_conditional_check_failed_exception() || s.is_resource_not_found_exception()
                }) =>
            {
                lost.store(true, Ordering::SeqCst);
                eprintln!(
                    "error: the stack lock in {table} was taken over by another run (this run's lease ran out before it could renew it)"
                );
                return;
            }
            // Transient (the SDK has already retried): try again at the next tick, while the
            // lease still holds.
            Err(e) => eprintln!(
                "warning: renewing the stack lock: {}",
                aws_error(format!("UpdateItem on the lock table {table}"), &e)
            ),
        }
    }
}

impl RemoteLock {
    /// Whether another run took the lock over while this one held it.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Removes the lock (if it is still ours).
    pub async fn release(self) -> Result<()> {
        self.renewer.abort();
        let out = delete_if_token(&self.client, &self.table, self.key.clone(), &self.token).await;
        match out {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_conditional_check_failed_exception() || s.is_resource_not_found_exception()
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(aws_error(
                format!(
                    "DeleteItem on the lock table {} (the lease ends by itself)",
                    self.table
                ),
                &e,
            )
            .into()),
        }
    }

    /// Removes the lock by deleting its table (`down`, once the stack is gone).
    pub async fn remove_table(self) -> Result<()> {
        self.renewer.abort();
        let out = self
            .client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => {
                Err(aws_error(format!("DeleteTable {} (the stack lock)", self.table), &e).into())
            }
        }
    }
}

/// `wsctl unlock`: what was found and done.
#[derive(Debug, Serialize)]
pub struct UnlockReport {
    pub table: String,
    pub holder: Option<Holder>,
    /// Whether the holder's lease was still running.
    pub live: bool,
    pub removed: bool,
}

impl fmt::Display for UnlockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.holder, self.removed) {
            (None, _) => writeln!(f, "no lock is held ({})", self.table),
            (Some(h), true) => writeln!(f, "removed the lock held by {h} ({})", self.table),
            (Some(h), false) => writeln!(
                f,
                "the lock is held by {h}, its lease renewed {} ({}); it is probably still running: pass --force to remove it anyway",
                match h.lease_left() {
                    Some(left) => format!("for another {left:.0?}"),
                    None => "no longer".into(),
                },
                self.table
            ),
        }
    }
}

/// Shows the holder and removes the lock: at once when its lease has ended, or with `force`.
pub async fn unlock(stack: &Stack, force: bool) -> Result<UnlockReport> {
    let table = stack.names.lock_table.clone();
    let Some(holder) = holder(stack).await? else {
        return Ok(UnlockReport {
            table,
            holder: None,
            live: false,
            removed: false,
        });
    };
    let live = holder.lease_left().is_some();
    if live && !force {
        return Ok(UnlockReport {
            table,
            holder: Some(holder),
            live,
            removed: false,
        });
    }
    // Only the lock that was shown: a run that took it since keeps it.
    let out = delete_if_token(
        &stack.clients.dynamodb,
        &table,
        key_value(stack),
        &holder.token,
    )
    .await;
    match out {
        Ok(_) => {}
        // Gone already (a retry of our own delete whose answer was lost), or taken since.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            if let Some(now) = self::holder(stack).await? {
                crate::fail!(
                    Failed,
                    "the lock changed hands while it was being removed: it is now held by {now}; run `wsctl unlock` again"
                )
            }
        }
        Err(e) => {
            return Err(aws_error(format!("DeleteItem on the lock table {table}"), &e).into())
        }
    }
    Ok(UnlockReport {
        table,
        holder: Some(holder),
        live,
        removed: true,
    })
}
