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
//! - [`Readers::run_inline`] on the calling task's thread, for index point lookups (the token
//!   check, a resource by id, `userName eq`), which take microseconds: a hop to another thread
//!   and back costs more than the lookup itself.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::{register_functions, Result, StoreError, BUSY_TIMEOUT};

pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl Readers {
    /// Up to `size` connections, opened on first use.
    pub fn new(path: &Path, size: usize) -> Readers {
        Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    /// How many connections a server on this machine keeps: enough for every core to have a
    /// read in flight while others wait on the disk, few enough that their page caches (2 MiB
    /// each at most) stay within the memory budget.
    pub fn default_size() -> usize {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        (cores * 4).clamp(4, 16)
    }

    /// Run `f` right here when a connection is free; otherwise wait for one like
    /// [`run_blocking`](Self::run_blocking). Only for reads bounded by an index lookup.
    pub async fn run_inline<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        match self.permits.try_acquire() {
            Ok(_permit) => self.with_connection(f),
            Err(_) => self.run_blocking(f).await,
        }
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
            .map_err(|_| StoreError::Other("read connections closed".into()))?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let out = this.with_connection(f);
            drop(permit);
            out
        })
        .await
        .map_err(|e| StoreError::Other(format!("read task failed: {e}")))?
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
