//! One server per data directory: `serve` holds an exclusive lock on `data_dir/server.lock` for
//! its lifetime, and `restore` refuses to run while anyone holds it. The lock is released by the
//! kernel when the process exits, even on SIGKILL.

use std::fs::{File, OpenOptions};
use std::path::Path;

use anyhow::Context;

pub const LOCK_FILE: &str = "server.lock";

/// Hold the lock, or explain who has it.
pub fn acquire(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another grouptalk-scim server is running on {} (stop it first: systemctl stop grouptalk-scim)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// True when a server holds the lock on `data_dir`.
pub fn server_running(data_dir: &Path) -> anyhow::Result<bool> {
    let path = data_dir.join(LOCK_FILE);
    if !path.exists() {
        return Ok(false);
    }
    let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(matches!(
        file.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    ))
}
