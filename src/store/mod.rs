//! Storage: the only module that speaks SQL.
//!
//! One SQLite file in WAL mode with `synchronous=FULL`. Writes go through the single writer
//! thread (`writer`), which commits queued jobs together; reads use a small pool of read-only
//! connections on blocking threads, so readers never wait for the writer. The CLI opens the same
//! file directly (`open_connection`) — WAL and `busy_timeout` make that safe while a server runs.

pub mod backup;
pub mod brake;
pub mod clients;
mod counts;
pub mod dashboard;
pub mod federations;
pub mod feed;
pub mod health;
pub mod history;
pub mod query;
mod readers;
pub mod request_log;
pub mod resources;
pub mod stats;
pub mod tenants;
pub mod tokens;
pub mod trash;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

use crate::domain::Version;
use crate::scim::error::ScimError;
use crate::scim::schema::ResourceKind;
use readers::Readers;
pub use writer::{Deadline, WriteOptions, Writer};

/// Read connections kept for point lookups (see `Store::read_point`).
const POINT_READERS: usize = 4;

/// How long a statement waits for another process's lock before giving up with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What can go wrong in the store, in the directory's own terms. Only `http` turns these into
/// SCIM errors, statuses and headers (`http::errors`); the CLI prints them.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// No resource of this kind with this id in the caller's tenant (another tenant's resource
    /// is indistinguishable from a missing one).
    #[error("{} {id} not found", kind.name())]
    NotFound { kind: ResourceKind, id: String },
    /// Another resource of the tenant already holds this unique value.
    #[error("{attribute} '{value}' is already in use")]
    Conflict {
        attribute: &'static str,
        value: String,
    },
    /// The request's precondition (`If-Match`) names a version other than the current one.
    #[error("the current version is {}", current.etag())]
    VersionMismatch { current: Version },
    /// The request names something the directory cannot hold.
    #[error("{0}")]
    Invalid(Invalid),
    /// The protocol refused the request inside the transaction (a PATCH operation that does
    /// not apply to the stored document): the protocol's own error, passed through unchanged.
    #[error(transparent)]
    Rejected(ScimError),
    #[error("database is busy (locked by another process)")]
    Busy,
    #[error("database or disk is full")]
    Full,
    #[error("the database writer has stopped")]
    WriterGone,
    /// The request's time ran out before the writer reached its write, which was skipped.
    #[error("the request timed out before its change was started; nothing was changed")]
    Expired,
    /// The write ran past its time budget (`limits.writer_job_budget_ms`) and was rolled back.
    #[error(
        "the change took longer than the server allows one write ({budget_ms} ms, \
         limits.writer_job_budget_ms) and was rolled back; nothing was changed"
    )]
    OverBudget { budget_ms: u64 },
    /// Another write in the same transaction ran past its budget: stopping it rolled back the
    /// whole transaction, this write with it.
    #[error(
        "the change was rolled back with another write that ran past its time budget; nothing \
         was changed"
    )]
    RolledBack,
    #[error("the read connections are closed (the server is stopping)")]
    ReadersClosed,
    #[error("a read task failed: {0}")]
    ReadTaskFailed(String),
    /// A read ran past its time budget and was stopped.
    #[error("the read ran past its time budget")]
    ReadBudget,
    /// A feed cursor that cannot be used (invalid, or expired: take a new snapshot).
    #[error(transparent)]
    Cursor(feed::CursorError),
    #[error("sqlite: {0}")]
    Sqlite(Arc<rusqlite::Error>),
    #[error("stored JSON: {0}")]
    Json(Arc<serde_json::Error>),
}

/// Requests the directory refuses as invalid, whatever the protocol says of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("member '{0}' is not a user or group of this tenant")]
    UnknownMember(String),
    #[error("a group cannot be a member of itself")]
    SelfMembership,
    #[error("tenant name {0:?} must be 1-64 characters of letters, digits, '-', '_' or '.'")]
    TenantName(String),
    #[error("tenant {0:?} already exists")]
    TenantExists(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy
            }
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full,
            _ => StoreError::Sqlite(Arc::new(e)),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Json(Arc::new(e))
    }
}

impl From<Invalid> for StoreError {
    fn from(e: Invalid) -> Self {
        StoreError::Invalid(e)
    }
}

impl From<ScimError> for StoreError {
    fn from(e: ScimError) -> Self {
        StoreError::Rejected(e)
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// `fold(x)`: the Unicode lower-casing of text (other values pass through), so SQL compares
/// case-insensitive attributes exactly as `query::fold` wrote the `*_key` columns.
fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::{Value, ValueRef};
    conn.create_scalar_function(
        "fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(match ctx.get_raw(0) {
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).to_lowercase()),
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Integer(i),
                ValueRef::Real(r) => Value::Real(r),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            })
        },
    )
}

/// Test-only knob: cap the database size (`PRAGMA max_page_count`) to simulate a full disk.
/// Deliberately outside the `GROUPTALK_SCIM_` prefix, which belongs to the configuration.
fn test_max_page_count() -> Option<i64> {
    std::env::var("GROUPTALK_TEST_MAX_PAGE_COUNT")
        .ok()?
        .parse()
        .ok()
}

/// Prepared statements the writer (and the CLI) keep: more than the distinct statements of any
/// write path, so none is prepared twice.
const WRITER_STATEMENT_CACHE: usize = 128;

/// Schema versions this build knows (`PRAGMA user_version` after migrating).
const MIGRATION_COUNT: usize = 12;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/0001_init.sql")),
        M::up(include_str!("../../migrations/0002_request_log.sql")),
        M::up(include_str!("../../migrations/0003_lean_indexes.sql")),
        M::up(include_str!("../../migrations/0004_tenant_keys.sql")).foreign_key_check(),
        M::up(include_str!("../../migrations/0005_oauth_clients.sql")),
        M::up(include_str!("../../migrations/0006_client_federation.sql")),
        M::up(include_str!("../../migrations/0007_feed.sql")),
        M::up(include_str!("../../migrations/0008_dashboard.sql")),
        M::up(include_str!("../../migrations/0009_brake.sql")),
        M::up(include_str!("../../migrations/0010_trash_history.sql")),
        M::up(include_str!("../../migrations/0011_brake_counts.sql")),
        M::up(include_str!(
            "../../migrations/0012_counts_without_triggers.sql"
        )),
    ])
}

/// The schema version the database at `path` has and the one this build migrates it to, when
/// they differ (None for a missing or current database). Lets the caller announce a long
/// migration before it starts. A file that cannot be read says None here: `open_connection`
/// then reports what is wrong with it.
pub fn pending_migration(path: &Path) -> Option<(usize, usize)> {
    if !path.exists() {
        return None;
    }
    let conn =
        Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let current: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .ok()?;
    let latest = MIGRATION_COUNT;
    (current != 0 && current < latest).then_some((current, latest))
}

/// The database at `path` opened read-only, for commands that only look (`check-config`):
/// None when there is none yet, an error when its schema is not this build's (the server
/// migrates it when it starts; a look must never do that behind the administrator's back).
pub fn open_for_inspection(path: &Path) -> anyhow::Result<Option<Connection>> {
    if !path.exists() {
        return Ok(None);
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version != MIGRATION_COUNT {
        anyhow::bail!(
            "database {} has schema version {version}, this build uses {MIGRATION_COUNT}: start the server once to migrate it",
            path.display()
        );
    }
    Ok(Some(conn))
}

/// The database file as SQLite must open it. Private whoever creates it: SQLite would create it
/// 0644 less the umask, world-readable under a root shell's 022 (see
/// `fsutil::prepare_database_files`). And never through a symbolic link in its own name: a CLI
/// run as root must not create or migrate a database wherever a link the service account planted
/// points. A data directory that is itself a link (an administrator's) is resolved first, since
/// `SQLITE_OPEN_NOFOLLOW` refuses a link anywhere in the path.
pub(crate) fn open_database_file(path: &Path) -> anyhow::Result<Connection> {
    crate::fsutil::prepare_database_files(path)?;
    let real = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => dir
            .canonicalize()
            .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))?
            .join(name),
        _ => path.to_path_buf(),
    };
    let flags = rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
    Connection::open_with_flags(&real, flags)
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))
}

/// Open (creating if needed) the database file, apply pragmas and migrations.
pub fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    let mut conn = open_database_file(path)?;
    let setup = |conn: &Connection| -> rusqlite::Result<()> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Off while migrating (the bundled SQLite defaults it on); turned on below.
        conn.pragma_update(None, "foreign_keys", "OFF")?;
        if let Some(pages) = test_max_page_count() {
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        // Room for every statement a write runs: with rusqlite's default of 16, a PATCH (the
        // resource, its side rows, the brake, the feed's change, the history, the log) used
        // more, and each write prepared a fifth of its statements again (scripts/bench P3, perf).
        conn.set_prepared_statement_cache_capacity(WRITER_STATEMENT_CACHE);
        register_functions(conn)
    };
    setup(&conn).map_err(|e| {
        anyhow::anyhow!(
            "cannot use database {}: {e} (restore it from a backup, or move it away to start empty)",
            path.display()
        )
    })?;
    migrations().to_latest(&mut conn).map_err(|e| match e {
        rusqlite_migration::Error::MigrationDefinition(
            rusqlite_migration::MigrationDefinitionError::DatabaseTooFarAhead,
        ) => anyhow::anyhow!(
            "database {} was written by a newer grouptalk-scim; install that version or restore a backup",
            path.display()
        ),
        other => anyhow::anyhow!("cannot migrate database {}: {other}", path.display()),
    })?;
    // After migrating: a table rebuild (0004) must run without enforcement (SQLite's documented
    // procedure), and the pragma cannot change inside the migration's transaction.
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| anyhow::anyhow!("cannot use database {}: {e}", path.display()))?;
    Ok(conn)
}

/// The database handle the server shares between requests.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    path: PathBuf,
    writer: Writer,
    readers: Arc<Readers>,
    /// Connections for point lookups only (token checks, lookups by id): never behind a slow read.
    points: Arc<Readers>,
}

impl Store {
    /// Open the database at `path`, migrate it and start the writer thread.
    /// `read_budget`: how long one data-sized read may run before it is stopped.
    pub fn open(path: &Path, read_budget: Duration) -> anyhow::Result<Store> {
        let conn = open_connection(path)?;
        // The writer's savepoint sub-journals (one per job) in memory, not in a temporary file:
        // they only matter until the job's RELEASE, and writing them out was an eighth of the
        // writer's time. Only here: elsewhere (migrations, a sortBy over a million rows) temp
        // data is sorter spill that belongs on disk — in memory a v2→v4 migration of 1M users
        // peaked at 1 GB. The WAL and synchronous=FULL are what make a commit durable.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        let writer = Writer::start(conn)?;
        Ok(Store {
            inner: Arc::new(StoreInner {
                path: path.to_path_buf(),
                writer,
                readers: Arc::new(Readers::new(path, Readers::default_size(), read_budget)),
                points: Arc::new(Readers::new(path, POINT_READERS, read_budget)),
            }),
        })
    }

    /// Run `f` on a read-only connection on a blocking thread: for reads whose cost depends on
    /// the data (scanning filters, large groups, list walks).
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.readers.run_blocking(f).await
    }

    /// Run `f` on a read-only connection on this thread: only for reads bounded by an index
    /// point lookup (microseconds), where a thread hop would cost more than the read.
    pub async fn read_point<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.points.run_point(f).await
    }

    /// Run `f` inside the writer's transaction; resolves once the change is durable. For the
    /// server's own writes: no deadline, the default budget and limits.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.writer.submit(WriteOptions::default(), f).await
    }

    /// Run a request's write `f` inside the writer's transaction, as `options` say: it starts
    /// only before the request's deadline (else `StoreError::Expired`, nothing changed), runs
    /// within its time budget (else `StoreError::OverBudget`, rolled back) and the store applies
    /// the protocol limits it carries. Resolves once the change is durable.
    pub async fn write_with<T, F>(&self, options: WriteOptions, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.inner.writer.submit(options, f).await
    }

    pub fn writer_metrics(&self) -> std::sync::Arc<writer::WriterMetrics> {
        self.inner.writer.metrics.clone()
    }

    /// Changes whenever the writer ends a transaction (see `Writer::commits`).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.writer.commits()
    }

    pub fn writer_running(&self) -> bool {
        self.inner.writer.is_running()
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Close the read connections, then stop the writer after it has committed every queued
    /// job: its connection closes last, which checkpoints the WAL and removes it.
    pub fn shutdown(&self) {
        self.inner.readers.close();
        self.inner.points.close();
        self.inner.writer.shutdown();
    }
}

#[cfg(test)]
mod tests;
