//! Consistent copies of the database while the server runs, their verification, and restore.
//!
//! `VACUUM INTO` copies from one read transaction: under WAL it never blocks the writer and never
//! restarts because of concurrent writes (the online backup API restarts on every change made by
//! another connection, which on a busy appliance may never finish). The copy is compact and has
//! every transaction committed before it started.
//!
//! Every file written here holds the directory, so each is created 0600 whatever the umask
//! (`fsutil::create_private`): SQLite would make them 0644 less the umask.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rusqlite::{Connection, OpenFlags};

use crate::fsutil::{self, with_suffix, DATABASE_SIDE_FILES};

/// What `restore` renames the database it replaces to (appended to its file name).
pub const BEFORE_RESTORE: &str = ".before-restore";
/// The copy being prepared next to the database, renamed over it once complete.
const RESTORING: &str = ".restoring";

/// What a verified copy contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub tenants: i64,
    pub users: i64,
    pub groups: i64,
    pub memberships: i64,
}

/// Write a consistent copy of the database at `db` into `dest` (which must not exist). The copy
/// is 0600 whatever the umask: `dest` is created empty and private first, and `VACUUM INTO`
/// accepts an empty file.
pub fn backup(db: &Path, dest: &Path) -> anyhow::Result<()> {
    let out = match fsutil::create_private(dest) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} already exists; choose a new file name", dest.display())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot write backup {}", dest.display())),
    };
    let copy = || -> anyhow::Result<()> {
        let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open database {}", db.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let dest_str = dest.to_str().context("backup path must be valid UTF-8")?;
        conn.execute("VACUUM INTO ?1", [dest_str])
            .with_context(|| format!("cannot write backup {}", dest.display()))?;
        // VACUUM INTO does not fsync the new file: do it before we call the backup done.
        out.sync_all()?;
        Ok(())
    };
    let done = copy();
    if done.is_err() {
        // The file is ours (created above) and holds no complete backup.
        let _ = std::fs::remove_file(dest);
    }
    done
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

/// Remove `path` (a leftover of an interrupted restore) and its SQLite side files. Never
/// follows a link: `remove_file` removes the name.
fn remove_leftover(path: &Path) -> anyhow::Result<()> {
    for p in std::iter::once(path.to_path_buf()).chain(
        DATABASE_SIDE_FILES
            .iter()
            .chain(&["-journal"])
            .map(|s| with_suffix(path, s)),
    ) {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", p.display()))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Copy the verified backup `file` into a new private file `staged`.
fn stage(file: &Path, staged: &Path) -> anyhow::Result<()> {
    remove_leftover(staged)?;
    let mut out = fsutil::create_private(staged)
        .with_context(|| format!("cannot create {}", staged.display()))?;
    let mut src =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    std::io::copy(&mut src, &mut out)
        .with_context(|| format!("cannot copy {} into place", file.display()))?;
    out.flush()?;
    out.sync_all()?;
    Ok(())
}

/// Replace the database at `db` with the verified copy `file`. The caller guarantees no server
/// runs. The previous database is kept next to it as `*.before-restore` (0600).
pub fn restore(file: &Path, db: &Path) -> anyhow::Result<Summary> {
    let summary = verify(file)?;
    let staged = with_suffix(db, RESTORING);
    if let Err(e) = stage(file, &staged) {
        let _ = remove_leftover(&staged);
        return Err(e);
    }
    if std::fs::symlink_metadata(db).is_ok() {
        // Fold the WAL into the old file so the kept copy is complete on its own.
        if let Ok(old) = super::open_database_file(db) {
            let _ = old.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        let before: PathBuf = with_suffix(db, BEFORE_RESTORE);
        std::fs::rename(db, &before)?;
        // It holds the directory too (an earlier version created databases 0644). A link or
        // anything but a regular file is left alone: it holds nothing of ours.
        let _ = fsutil::make_private(&before);
    }
    for suffix in DATABASE_SIDE_FILES {
        let _ = std::fs::remove_file(with_suffix(db, suffix));
    }
    std::fs::rename(&staged, db)?;
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()?;
    Ok(summary)
}
