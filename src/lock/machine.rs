//! One `up` or `down` at a time per stack on this machine: an exclusive lock on a file named
//! after the account, region and project (in the system's temporary directory, so that two
//! checkouts of the same project share it). The operating system releases it when the process
//! ends, however it ends (kill -9 included), so there is never a stale lock to break.
//!
//! This is the fast path for two runs on one machine; runs on different machines are
//! serialised by the lock in DynamoDB ([`super::remote`]), taken after this one.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

use crate::error::{Error, Result};

use crate::naming::Names;

pub struct MachineLock {
    _file: File,
}

fn path(names: &Names) -> PathBuf {
    std::env::temp_dir().join("wsctl-locks").join(format!(
        "{}-{}-{}.lock",
        names.account, names.region, names.stack
    ))
}

/// Takes the stack's lock, waiting (and saying so on stderr through `note`) while another
/// wsctl holds it.
pub fn acquire(names: &Names, note: &dyn Fn(String)) -> Result<MachineLock> {
    let path = path(names);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(format!(
            "cannot create the lock directory {}",
            dir.display()
        )))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(Error::io(format!(
            "cannot open the lock file {}",
            path.display()
        )))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            note(format!(
                "waiting for another wsctl working on project {} ({}) to finish",
                names.stack,
                holder.trim()
            ));
            file.lock()
                .map_err(Error::io(format!("cannot lock {}", path.display())))?;
        }
        Err(TryLockError::Error(e)) => {
            return Err(Error::io(format!("cannot lock {}", path.display()))(e))
        }
    }
    // Who holds it, for the message above (best effort: the lock is what matters).
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = write!(
        file,
        "pid {} since {}",
        std::process::id(),
        handler::now_iso8601()
    );
    let _ = file.flush();
    Ok(MachineLock { _file: file })
}
