//! The single writer: one thread owns the only write connection and commits in groups.
//!
//! Handlers submit a job and await the reply. The thread takes every job already queued (up to
//! `MAX_BATCH`), runs each inside its own SAVEPOINT within one transaction, commits once — one
//! fsync for the whole batch at `synchronous=FULL` — and only then answers the jobs. A failing job
//! rolls back only its own savepoint; a failing COMMIT fails every job of the batch, so a reply of
//! success always means durable.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{Result, StoreError};

/// Upper bound on jobs per transaction, so one batch cannot hold the lock for long.
const MAX_BATCH: usize = 256;

/// What a job leaves behind after running: the reply to send once the fate of the batch is known.
type Reply = Box<dyn FnOnce(Option<StoreError>) + Send>;
/// A job runs on the writer's connection (or is handed the error that kept it from running)
/// and reports whether it succeeded.
type Job = Box<dyn FnOnce(std::result::Result<&Connection, StoreError>) -> (bool, Reply) + Send>;

/// What the writer measures: jobs per committed batch and the time a COMMIT takes (the fsync).
#[derive(Debug, Clone)]
pub struct WriterMetrics {
    pub batch_size: Histogram,
    pub commit_seconds: Histogram,
}

impl Default for WriterMetrics {
    fn default() -> Self {
        WriterMetrics {
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
        }
    }
}

pub struct Writer {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub metrics: Arc<WriterMetrics>,
}

impl Writer {
    pub fn start(conn: Connection) -> anyhow::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Job>();
        let metrics = Arc::new(WriterMetrics::default());
        let m = metrics.clone();
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        let checkpointer = Checkpointer::start(&conn)?;
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                run(&conn, rx, &m, &checkpointer);
                checkpointer.stop();
            })?;
        Ok(Writer {
            sender: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            metrics,
        })
    }

    /// Whether the writer thread is alive and accepting jobs.
    pub fn is_running(&self) -> bool {
        let open = self.sender.lock().map(|s| s.is_some()).unwrap_or(false);
        let alive = self
            .thread
            .lock()
            .map(|t| t.as_ref().is_some_and(|h| !h.is_finished()))
            .unwrap_or(false);
        open && alive
    }

    pub async fn submit<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            // Nobody waits for this job any more (the request timed out or its client went
            // away): applying it would commit a change no one was told about. Skip it; the
            // client's retry does it again.
            if tx.is_closed() {
                let nothing: Reply = Box::new(|_| {});
                return (false, nothing);
            }
            let result = match conn {
                Ok(conn) => f(conn),
                Err(e) => Err(e),
            };
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit_error| {
                let outcome = match commit_error {
                    Some(e) if ok => Err(e),
                    _ => result,
                };
                let _ = tx.send(outcome);
            });
            (ok, reply)
        });
        let sender = self
            .sender
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .ok_or(StoreError::WriterGone)?;
        sender.send(job).map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Close the queue and wait until every queued job is committed.
    pub fn shutdown(&self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn run(
    conn: &Connection,
    rx: mpsc::Receiver<Job>,
    metrics: &WriterMetrics,
    checkpointer: &Checkpointer,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics.batch_size.observe(batch.len() as f64);
        run_batch(conn, batch, metrics);
        checkpointer.nudge();
    }
    tracing::debug!("writer stopped: queue closed");
}

/// Run a transaction-control statement through the statement cache: `execute_batch` would parse
/// it again for every job (two savepoint statements per job showed as 17% of the writer's time).
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn run_batch(conn: &Connection, batch: Vec<Job>, metrics: &WriterMetrics) {
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        let e = StoreError::from(e);
        for job in batch {
            let (_, reply) = job(Err(e.clone()));
            reply(None);
        }
        return;
    }
    // Each reply waits for the batch's fate; a job whose savepoint could not be closed cleanly
    // is answered with that error even if the COMMIT later succeeds.
    let mut replies: Vec<(Reply, Option<StoreError>)> = Vec::with_capacity(batch.len());
    for job in batch {
        let entry = match control(conn, "SAVEPOINT job") {
            Ok(()) => {
                let (job_ok, reply) = job(Ok(conn));
                let end = if job_ok {
                    control(conn, "RELEASE job")
                } else {
                    control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"))
                };
                match end {
                    Ok(()) => (reply, None),
                    Err(e) => {
                        tracing::error!(error = %e, "savepoint end failed");
                        (reply, job_ok.then(|| StoreError::from(e)))
                    }
                }
            }
            Err(e) => (job(Err(StoreError::from(e))).1, None),
        };
        replies.push(entry);
    }
    let commit_started = Instant::now();
    let committed = control(conn, "COMMIT");
    metrics
        .commit_seconds
        .observe(commit_started.elapsed().as_secs_f64());
    let commit_error = committed.err().map(|e| {
        tracing::error!(error = %e, "commit failed; rolling back the batch");
        let _ = conn.execute_batch("ROLLBACK");
        StoreError::from(e)
    });
    for (reply, own_error) in replies {
        reply(own_error.or_else(|| commit_error.clone()));
    }
}

/// How long the checkpointer lets commits accumulate before copying them into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(20);

/// WAL size (pages) at which a COMMIT on the writer runs SQLite's automatic checkpoint itself.
/// ~40 MB: the background checkpoint copies pages long before, so the writer's own checkpoint
/// only copies the last few commits — but it is the one that lets the WAL start over (below).
const WRITER_CHECKPOINT_PAGES: i64 = 10_000;

/// WAL checkpoints mostly on their own thread and connection, off the single writer's path.
/// At SQLite's default (a checkpoint inside the COMMIT that crosses 1000 WAL pages) copying pages
/// into the database file took a third of the writer thread's time under sustained creates, and
/// made one batch in a few wait 10–100 ms (at 1M users) with every queued write behind it. A
/// PASSIVE checkpoint here, shortly after commits, copies pages alongside the writer (it never
/// blocks it).
///
/// The writer keeps an automatic checkpoint all the same, at `WRITER_CHECKPOINT_PAGES`: the WAL
/// file only starts over from its beginning when a write transaction begins right after a
/// checkpoint that caught up, which under sustained writes only the writer's own checkpoint
/// achieves (the background one always lags by the commits made meanwhile). Without it the WAL
/// grew by every page written (0.9 GB after ten seconds of creates) and the next start had to
/// read it all. Durability is unchanged: a COMMIT still fsyncs the WAL (`synchronous=FULL`)
/// before any reply is sent.
struct Checkpointer {
    nudge: mpsc::SyncSender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    fn start(writer: &Connection) -> anyhow::Result<Checkpointer> {
        let path = writer
            .path()
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from)
            .ok_or_else(|| anyhow::anyhow!("the writer's database has no file"))?;
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let (nudge, nudged) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                // Each nudge means "there are new commits"; the sleep gathers many of them.
                while nudged.recv().is_ok() {
                    std::thread::sleep(CHECKPOINT_EVERY);
                    while nudged.try_recv().is_ok() {}
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                    }
                }
            })?;
        Ok(Checkpointer { nudge, thread })
    }

    /// After a commit: make sure a checkpoint follows (never blocks the writer).
    fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }

    /// The writer has stopped: checkpoint what is pending, then end the thread.
    fn stop(self) {
        let Checkpointer { nudge, thread } = self;
        let _ = nudge.try_send(());
        drop(nudge);
        let _ = thread.join();
    }
}
