//! Consistent copies of the database while the server runs, their verification, and restore.
//!
//! `VACUUM INTO` copies from one read transaction: under WAL it never blocks the writer and never
//! restarts because of concurrent writes (the online backup API restarts on every change made by
//! another connection, which on a busy appliance may never finish). The copy is compact and has
//! every transaction committed before it started.
//!
//! Every file written here holds the directory, so each is created 0600 whatever the umask
//! (`fsutil::create_private`): SQLite would make them 0644 less the umask.
//!
//! A restore must not undo a revocation: a token revoked after the backup was taken (perhaps
//! because it leaked) would be valid again. So `restore` carries every revocation the current
//! database holds into the restored copy ([`REVOCABLE`] names what is revocable; a new kind of
//! credential is one more entry there), and the caller decides what to do when the current
//! database cannot be read ([`current_revocations`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rusqlite::types::Value;
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

/// A kind of credential a restore must keep revoked. Its table has a text key (the first of
/// `columns`) and a nullable `revoked` time, and belongs to a parent row that must exist in the
/// restored copy for a row the backup lacks to be inserted. The columns must be the same in
/// every schema version a backup can have (the restored copy is migrated only when `serve`
/// starts).
pub struct Revocable {
    /// What `restore` reports ("token").
    pub noun: &'static str,
    table: &'static str,
    /// Every column, key first; a row the backup lacks is inserted with all of them.
    columns: &'static [&'static str],
    /// When a row the backup lacks may be inserted: its parent exists in the restored copy
    /// (`?N` is the Nth of `columns`). Without the parent nobody can use it anyway.
    parent_exists: &'static str,
}

/// Everything whose revocation a restore carries over.
pub const REVOCABLE: &[Revocable] = &[Revocable {
    noun: "token",
    table: "tokens",
    columns: &[
        "id",
        "tenant_id",
        "label",
        "created",
        "expires",
        "revoked",
        "last_used",
    ],
    parent_exists: "EXISTS (SELECT 1 FROM tenants WHERE id = ?2)",
}];

/// The revoked rows of one [`Revocable`] in the current database.
struct Revoked {
    kind: &'static Revocable,
    rows: Vec<Vec<Value>>,
}

/// The revocations read from the current database.
pub struct Revocations(Vec<Revoked>);

/// What the current database says about revocations, before a restore replaces it.
pub enum Current {
    /// No database there (a new machine): nothing can be carried over.
    Missing,
    /// It cannot be read (corrupt, not a database, a link): why.
    Unreadable(String),
    Read(Revocations),
}

/// How many revocations of one kind `restore` carried into the restored copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedOver {
    pub noun: &'static str,
    /// Rows the backup has unrevoked, now revoked.
    pub revoked: usize,
    /// Rows the backup lacks, inserted revoked.
    pub inserted: usize,
    /// Rows the backup lacks whose parent (tenant) it lacks too: nothing to protect.
    pub without_parent: usize,
}

/// Read every revocation of the database at `db` (the server is stopped). Its WAL is folded
/// into it first, so the file `restore` keeps as `*.before-restore` is complete on its own.
pub fn current_revocations(db: &Path) -> Current {
    match std::fs::symlink_metadata(db) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Current::Missing,
        Err(e) => return Current::Unreadable(e.to_string()),
        Ok(_) => {}
    }
    let read = || -> anyhow::Result<Revocations> {
        let conn = super::open_database_file(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Best effort: an unreadable file fails below, on what matters.
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let mut kinds = Vec::with_capacity(REVOCABLE.len());
        for kind in REVOCABLE {
            let sql = format!(
                "SELECT {} FROM {} WHERE revoked IS NOT NULL",
                kind.columns.join(", "),
                kind.table
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt
                .query_map([], |r| {
                    (0..kind.columns.len())
                        .map(|i| r.get::<_, Value>(i))
                        .collect::<rusqlite::Result<Vec<Value>>>()
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            kinds.push(Revoked { kind, rows });
        }
        Ok(Revocations(kinds))
    };
    match read() {
        Ok(r) => Current::Read(r),
        Err(e) => Current::Unreadable(format!("{e:#}")),
    }
}

/// Revoke in `conn` (the copy being restored, in a transaction) what `revocations` holds.
fn carry(conn: &Connection, revocations: &Revocations) -> anyhow::Result<Vec<CarriedOver>> {
    let mut carried = Vec::with_capacity(revocations.0.len());
    for Revoked { kind, rows } in &revocations.0 {
        let key = kind.columns[0];
        let at = kind
            .columns
            .iter()
            .position(|c| *c == "revoked")
            .context("a revocable table without a revoked column")?;
        let mut update = conn.prepare(&format!(
            "UPDATE {} SET revoked = ?2 WHERE {key} = ?1 AND revoked IS NULL",
            kind.table
        ))?;
        let mut exists = conn.prepare(&format!(
            "SELECT count(*) FROM {} WHERE {key} = ?1",
            kind.table
        ))?;
        let params: Vec<String> = (1..=kind.columns.len()).map(|i| format!("?{i}")).collect();
        let mut insert = conn.prepare(&format!(
            "INSERT INTO {} ({}) SELECT {} WHERE {}",
            kind.table,
            kind.columns.join(", "),
            params.join(", "),
            kind.parent_exists
        ))?;
        let mut done = CarriedOver {
            noun: kind.noun,
            revoked: 0,
            inserted: 0,
            without_parent: 0,
        };
        for row in rows {
            let (id, revoked) = (&row[0], &row[at]);
            if update.execute(rusqlite::params![id, revoked])? > 0 {
                done.revoked += 1;
            } else if exists.query_row([id], |r| r.get::<_, i64>(0))? == 0 {
                if insert.execute(rusqlite::params_from_iter(row.iter()))? > 0 {
                    done.inserted += 1;
                } else {
                    done.without_parent += 1;
                }
            }
        }
        carried.push(done);
    }
    Ok(carried)
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

/// Copy the verified backup `file` into a new private file `staged`, and revoke in it what
/// `revocations` holds.
fn stage(
    file: &Path,
    staged: &Path,
    revocations: Option<&Revocations>,
) -> anyhow::Result<Vec<CarriedOver>> {
    remove_leftover(staged)?;
    let mut out = fsutil::create_private(staged)
        .with_context(|| format!("cannot create {}", staged.display()))?;
    let mut src =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    std::io::copy(&mut src, &mut out)
        .with_context(|| format!("cannot copy {} into place", file.display()))?;
    out.flush()?;
    out.sync_all()?;
    drop(out);
    let mut conn = super::open_database_file(staged)?;
    let tx = conn.transaction()?;
    // The restored directory is another history than the one feed consumers followed: a new
    // epoch makes each of their cursors answer 410 (take a new snapshot), never a silent gap. A
    // copy from before the feed existed gets its first epoch when it is migrated.
    if has_table(&tx, "feed_meta")? {
        super::feed::new_epoch(&tx)
            .map_err(|e| anyhow::anyhow!("cannot renew the feed epoch: {e}"))?;
    }
    let carried = match revocations {
        Some(revocations) => carry(&tx, revocations)
            .with_context(|| format!("cannot carry revocations into {}", staged.display()))?,
        None => Vec::new(),
    };
    tx.commit()?;
    // Closing the last connection folds its WAL (if the copy is in WAL mode) into the file.
    conn.close().map_err(|(_, e)| e)?;
    std::fs::File::open(staged)?.sync_all()?;
    Ok(carried)
}

fn has_table(conn: &rusqlite::Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// Replace the database at `db` with the verified copy `file`, with every revocation in
/// `revocations` (read by [`current_revocations`] from the database it replaces) carried over;
/// None only when the caller accepted losing them. The caller guarantees no server runs. The
/// previous database is kept next to it as `*.before-restore` (0600).
pub fn restore(
    file: &Path,
    db: &Path,
    revocations: Option<&Revocations>,
) -> anyhow::Result<(Summary, Vec<CarriedOver>)> {
    let summary = verify(file)?;
    let staged = with_suffix(db, RESTORING);
    let carried = match stage(file, &staged, revocations) {
        Ok(c) => c,
        Err(e) => {
            let _ = remove_leftover(&staged);
            return Err(e);
        }
    };
    if std::fs::symlink_metadata(db).is_ok() {
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
    Ok((summary, carried))
}
