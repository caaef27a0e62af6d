//! The read connections: a fixed set, kept open for the life of the server.
//!
//! A fixed set (not one per request) keeps each connection's schema and prepared statements warm:
//! opening a connection reads the schema and re-prepares every statement, which showed as a fifth
//! of the server's time under load when connections were opened and dropped per burst. The
//! permits bound how many reads run at once, so a burst waits instead of piling up threads.
//!
//! Two ways to run a read:
//! - [`Readers::run_blocking`] on tokio's blocking pool, for reads whose cost is not known in
//!   advance (filters that scan, a 100,000-member group, list walks);
//! - [`Readers::run_point`] on the calling task's thread, for index point lookups (the token
//!   check, a resource by id, `userName eq`), which take microseconds: a hop to another thread
//!   and back costs more than the lookup itself.
//!
//! The store keeps two such sets: one for point lookups only, so a token check or a lookup by id
//! never waits behind data-sized reads, whoever runs those.
//!
//! A blocking read that runs past its budget is stopped the same way (`StoreError::ReadBudget`).
//! A blocking read whose request goes away (the client closed the connection, or the request
//! timed out) is interrupted: SQLite's progress handler stops the statement at its next check, so
//! an abandoned list walk (seconds at a million users) does not keep a connection and a core busy.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::{register_functions, Result, StoreError, BUSY_TIMEOUT};

pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    /// How long one blocking read may run.
    budget: Duration,
}

impl Readers {
    /// Up to `size` connections, opened on first use.
    pub fn new(path: &Path, size: usize, budget: Duration) -> Readers {
        Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size.max(1))),
            budget,
        }
    }

    /// How many connections a server on this machine keeps: enough for every core to have a
    /// read in flight while others wait on the disk, few enough that their page caches (2 MiB
    /// each at most) stay within the memory budget.
    pub fn default_size() -> usize {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        (cores * 4).clamp(4, 16)
    }

    /// Run a point lookup right here once a connection of this set is free (they are held for
    /// microseconds, so the wait is short).
    pub async fn run_point<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::ReadersClosed)?;
        self.with_connection(f)
    }

    /// Run `f` on a blocking thread once a connection is free.
    pub async fn run_blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::ReadersClosed)?;
        let this = self.clone();
        let abandoned = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + self.budget;
        // Set when this future is dropped before the read ends; harmless once it has ended.
        let _on_drop = AbandonOnDrop(abandoned.clone());
        tokio::task::spawn_blocking(move || {
            let out = this.with_connection(|conn| {
                if let Some(delay) = test_read_delay() {
                    std::thread::sleep(delay);
                }
                conn.progress_handler(
                    PROGRESS_OPS,
                    Some(move || abandoned.load(Ordering::Relaxed) || Instant::now() > deadline),
                );
                let out = f(conn);
                conn.progress_handler(0, None::<fn() -> bool>);
                match out {
                    Err(StoreError::Sqlite(e)) if is_interrupt(&e) => {
                        if Instant::now() > deadline {
                            Err(StoreError::ReadBudget)
                        } else {
                            tracing::debug!("read abandoned by its request: interrupted");
                            Err(StoreError::Sqlite(e))
                        }
                    }
                    other => other,
                }
            });
            drop(permit);
            out
        })
        .await
        .map_err(|e| StoreError::ReadTaskFailed(e.to_string()))?
    }

    /// Close every idle connection and refuse new reads (a waiting read fails). Called before
    /// the writer stops, so that the writer's connection is the last to close: only a
    /// read-write connection checkpoints the WAL and removes it when it closes last, and a WAL
    /// left behind must be read again by the next start.
    pub fn close(&self) {
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Take an idle connection (or open one: the permit guarantees room), run `f`, give it back.
    fn with_connection<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match idle {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let out = in_read_transaction(&conn, f);
        if let Ok(mut idle) = self.idle.lock() {
            if !self.permits.is_closed() {
                idle.push(conn);
            }
        }
        out
    }
}

/// Run `f` in one read transaction: every statement of a read (a page, its count, each row's
/// members or groups) sees the same snapshot, and the WAL read lock is taken once instead of per
/// statement.
/// Virtual-machine steps between two checks of the progress handler (a few microseconds).
const PROGRESS_OPS: std::os::raw::c_int = 10_000;

/// Test-only knob: every blocking read first holds its connection this long, as a slow
/// statement would (the e2e tests of per-tenant read fairness). Outside the `GROUPTALK_SCIM_`
/// prefix, which belongs to the configuration.
fn test_read_delay() -> Option<Duration> {
    static DELAY: std::sync::OnceLock<Option<Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var("GROUPTALK_TEST_READ_DELAY_MS")
            .ok()?
            .parse()
            .ok()
            .map(Duration::from_millis)
    })
}

/// Marks a blocking read as abandoned when the future awaiting it is dropped.
struct AbandonOnDrop(Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn is_interrupt(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

fn in_read_transaction<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.prepare_cached("BEGIN")?.execute([])?;
    let out = f(conn);
    // Nothing to keep or undo in a read: COMMIT just ends the snapshot. Should it fail, the
    // connection is left in a transaction; ROLLBACK makes sure it is not reused in one.
    if conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
        .is_err()
    {
        let _ = conn.execute_batch("ROLLBACK");
    }
    out
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Room for every statement shape a server prepares (the default 16 is smaller than the
    // number of distinct list/filter statements Entra's cycle alone uses).
    conn.set_prepared_statement_cache_capacity(64);
    register_functions(&conn)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A read that would never end by itself (an unbounded recursive CTE) stops once the future
    /// awaiting it is dropped: with a single connection, the next read can only run after that.
    #[test]
    fn an_abandoned_blocking_read_is_interrupted_and_frees_its_connection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let _writer = crate::store::open_connection(&path).unwrap();
        let readers = Arc::new(Readers::new(&path, 1, Duration::from_secs(60)));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let answer = runtime.block_on(async {
            let endless = readers.run_blocking(|conn| {
                Ok(conn.query_row(
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                     SELECT count(*) FROM c",
                    [],
                    |r| r.get::<_, i64>(0),
                )?)
            });
            let gave_up = tokio::time::timeout(Duration::from_millis(200), endless).await;
            assert!(gave_up.is_err(), "the endless read ended by itself");
            let next = readers
                .run_blocking(|conn| Ok(conn.query_row("SELECT 42", [], |r| r.get::<_, i64>(0))?));
            tokio::time::timeout(Duration::from_secs(30), next).await
        });
        // Do not wait for a read that never ends (the failure this test is about).
        runtime.shutdown_timeout(Duration::from_secs(1));
        let answer = answer.expect("the abandoned read still holds the only connection");
        assert_eq!(answer.unwrap(), 42);
    }

    /// A read that runs past the budget is stopped and says so (the caller answers 400
    /// tooMany), and the connection serves the next read.
    #[test]
    fn a_read_past_its_budget_is_stopped_with_read_budget() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let _writer = crate::store::open_connection(&path).unwrap();
        let readers = Arc::new(Readers::new(&path, 1, Duration::from_millis(100)));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (endless, next) = runtime.block_on(async {
            let endless = readers
                .run_blocking(|conn| {
                    Ok(conn.query_row(
                        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                         SELECT count(*) FROM c",
                        [],
                        |r| r.get::<_, i64>(0),
                    )?)
                })
                .await;
            let next = readers
                .run_blocking(|conn| Ok(conn.query_row("SELECT 7", [], |r| r.get::<_, i64>(0))?))
                .await;
            (endless, next)
        });
        assert!(
            matches!(endless, Err(StoreError::ReadBudget)),
            "{endless:?}"
        );
        assert_eq!(next.unwrap(), 7);
    }
}
