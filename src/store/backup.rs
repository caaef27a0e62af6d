//! Consistent copies of the database while the server runs, their verification, and restore.
//!
//! `VACUUM INTO` copies from one read transaction: under WAL it never blocks the writer and never
//! restarts because of concurrent writes (the online backup API restarts on every change made by
//! another connection, which on a busy appliance may never finish). The copy is compact and has
//! every transaction committed before it started.

use std::path::Path;

use anyhow::{bail, Context};
use rusqlite::{Connection, OpenFlags};

/// What a verified copy contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub tenants: i64,
    pub users: i64,
    pub groups: i64,
    pub memberships: i64,
}

/// Write a consistent copy of the database at `db` into `dest` (which must not exist).
pub fn backup(db: &Path, dest: &Path) -> anyhow::Result<()> {
    if dest.exists() {
        bail!("{} already exists; choose a new file name", dest.display());
    }
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open database {}", db.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let dest_str = dest.to_str().context("backup path must be valid UTF-8")?;
    conn.execute("VACUUM INTO ?1", [dest_str])
        .with_context(|| format!("cannot write backup {}", dest.display()))?;
    // VACUUM INTO does not fsync the new file: do it before we call the backup done.
    std::fs::File::open(dest)?.sync_all()?;
    Ok(())
}

/// Open a copy read-only, run `integrity_check`, and count what it holds.
pub fn verify(file: &Path) -> anyhow::Result<Summary> {
    if !file.is_file() {
        bail!("{} does not exist or is not a file", file.display());
    }
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {}", file.display()))?;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .with_context(|| format!("{} is not a SQLite database", file.display()))?;
    if check != "ok" {
        bail!("{} failed the integrity check: {check}", file.display());
    }
    let count = |sql: &str| -> anyhow::Result<i64> {
        conn.query_row(sql, [], |r| r.get(0))
            .with_context(|| format!("{} is not a grouptalk-scim database", file.display()))
    };
    Ok(Summary {
        tenants: count("SELECT count(*) FROM tenants")?,
        users: count("SELECT count(*) FROM resources WHERE kind = 'User'")?,
        groups: count("SELECT count(*) FROM resources WHERE kind = 'Group'")?,
        memberships: count("SELECT count(*) FROM members")?,
    })
}

/// Replace the database at `db` with the verified copy `file`. The caller guarantees no server
/// runs. The previous database is kept next to it as `*.before-restore`.
pub fn restore(file: &Path, db: &Path) -> anyhow::Result<Summary> {
    let summary = verify(file)?;
    let staged = db.with_extension("db.restoring");
    std::fs::copy(file, &staged)
        .with_context(|| format!("cannot copy {} into place", file.display()))?;
    std::fs::File::open(&staged)?.sync_all()?;
    if db.exists() {
        // Fold the WAL into the old file so the kept copy is complete on its own.
        if let Ok(old) = Connection::open(db) {
            let _ = old.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        std::fs::rename(db, db.with_extension("db.before-restore"))?;
    }
    for suffix in ["-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(Path::new(&p));
    }
    std::fs::rename(&staged, db)?;
    if let Some(dir) = db.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(summary)
}
