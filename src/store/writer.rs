//! The single writer: one thread owns the only write connection and commits in groups.
//!
//! Handlers submit a job and await the reply. The thread takes every job already queued (up to
//! `MAX_BATCH`), runs each inside its own SAVEPOINT within one transaction, commits once — one
//! fsync for the whole batch at `synchronous=FULL` — and only then answers the jobs. A failing job
//! rolls back only its own savepoint; a failing COMMIT fails every job of the batch, so a reply of
//! success always means durable.
//!
//! Time is bounded twice. A request's [`Deadline`] decides whether its job *starts*: the writer
//! skips a job whose deadline has passed (it answers [`StoreError::Expired`]: nothing changed),
//! and once a job has started the request waits for its real answer, so a timed-out request
//! never hears "503" about a change that was made. And each job has a time budget
//! ([`WriteOptions::budget`]): SQLite's progress handler stops a job that runs past it, its
//! savepoint is rolled back and it answers [`StoreError::OverBudget`]. A transaction stops taking
//! further jobs once it has run for a budget, so a started job's answer waits for at most about
//! two budgets and a COMMIT.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use super::{Result, StoreError};
use crate::scim::resource::Limits;

/// Upper bound on jobs per transaction, so one batch cannot hold the lock for long.
const MAX_BATCH: usize = 256;

/// The time budget of a job that names none (the server's own writes: the provisioning log,
/// token use, pruning); the configuration's `limits.writer_job_budget_ms` defaults to the same.
pub const DEFAULT_JOB_BUDGET: Duration = Duration::from_millis(5000);

/// Virtual-machine steps between two checks of the job budget (tens of microseconds).
const BUDGET_CHECK_OPS: std::os::raw::c_int = 1000;

/// Test-only knob: milliseconds a request's write job sleeps once it has started (after the
/// deadline check, inside its budget), to make a job run past its request's deadline.
/// Deliberately outside the `GROUPTALK_SCIM_` prefix, which belongs to the configuration.
fn test_write_delay() -> Option<Duration> {
    std::env::var("GROUPTALK_TEST_WRITE_DELAY_MS")
        .ok()?
        .parse()
        .ok()
        .map(Duration::from_millis)
}

/// When a request's writes may start, shared by the request (which may give up) and the writer
/// (which may start its job): whichever comes first decides, so a request that gave up has
/// changed nothing, and a request whose write started waits for its answer.
#[derive(Debug, Clone)]
pub struct Deadline {
    at: Instant,
    state: Arc<AtomicU8>,
}

/// [`Deadline`] states.
const OPEN: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

impl Deadline {
    /// A deadline `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + timeout,
            state: Arc::new(AtomicU8::new(OPEN)),
        }
    }

    /// The request gives up. True when no write of it has started — and now none will; false
    /// when one has: then the request must wait for its answer.
    pub fn abandon(&self) -> bool {
        match self
            .state
            .compare_exchange(OPEN, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == ABANDONED,
        }
    }

    /// The writer is about to run one of the request's jobs: true when it may. Past the
    /// deadline a job only starts if an earlier write of the same request already did (its
    /// request is waiting for it anyway).
    fn start(&self) -> bool {
        if Instant::now() >= self.at {
            return !self.abandon();
        }
        match self
            .state
            .compare_exchange(OPEN, STARTED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == STARTED,
        }
    }
}

/// How a job is run: its request's deadline, its time budget and the limits of the protocol
/// work it does (read by the store inside the job through [`job_limits`]).
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// None: the job runs whenever the writer reaches it (the server's own writes).
    pub deadline: Option<Deadline>,
    /// None: no budget.
    pub budget: Option<Duration>,
    pub limits: Limits,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            deadline: None,
            budget: Some(DEFAULT_JOB_BUDGET),
            limits: Limits::DEFAULT,
        }
    }
}

thread_local! {
    /// The limits of the job the writer thread is running (the defaults outside a job, and on
    /// any other thread: the CLI and tests call the store directly).
    static JOB_LIMITS: Cell<Limits> = const { Cell::new(Limits::DEFAULT) };
}

/// The limits of the write being run: every write of a request runs on the writer thread,
/// which sets them from the request's [`WriteOptions`] for exactly the duration of the job.
/// They reach the store this way rather than as a parameter so that no handler can forget them.
pub fn job_limits() -> Limits {
    JOB_LIMITS.with(Cell::get)
}

/// The running job's budget, checked by SQLite's progress handler on the writer connection.
struct Budget {
    origin: Instant,
    /// Nanoseconds after `origin` at which the running job is over budget; 0: no job or no
    /// budget (transaction control statements run unchecked).
    until: AtomicU64,
    tripped: AtomicBool,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            origin: Instant::now(),
            until: AtomicU64::new(0),
            tripped: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn start(&self, budget: Option<Duration>) {
        self.tripped.store(false, Ordering::Relaxed);
        let until = budget.map_or(0, |b| {
            let b = u64::try_from(b.as_nanos()).unwrap_or(u64::MAX);
            self.now().saturating_add(b).max(1)
        });
        self.until.store(until, Ordering::Relaxed);
    }

    /// The job ended: whether it ran over its budget.
    fn stop(&self) -> bool {
        self.until.store(0, Ordering::Relaxed);
        self.tripped.load(Ordering::Relaxed)
    }

    /// The progress handler: true stops the running statement.
    fn over(&self) -> bool {
        let until = self.until.load(Ordering::Relaxed);
        if until == 0 || self.now() < until {
            return false;
        }
        self.tripped.store(true, Ordering::Relaxed);
        true
    }
}

/// What a job sees when the writer runs it.
struct Env<'a> {
    conn: &'a Connection,
    budget: &'a Budget,
    delay: Option<Duration>,
}

/// What a job leaves behind after running: the reply to send once the fate of the batch is known.
type Reply = Box<dyn FnOnce(Option<StoreError>) + Send>;

/// What runs a job: on the writer's connection, or handed the error that kept it from running;
/// it reports whether it succeeded.
type RunJob = Box<dyn FnOnce(std::result::Result<&Env<'_>, StoreError>) -> (bool, Reply) + Send>;

/// A queued job and its time budget.
struct Job {
    budget: Option<Duration>,
    run: RunJob,
}

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
    /// Counts committed transactions: the change feed's long-polls wait on it (`commits`).
    commits: Arc<watch::Sender<u64>>,
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
        let budget = Arc::new(Budget::new());
        let check = budget.clone();
        conn.progress_handler(BUDGET_CHECK_OPS, Some(move || check.over()));
        let delay = test_write_delay();
        let commits = Arc::new(watch::Sender::new(0u64));
        let notify = commits.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let env = Env {
                    conn: &conn,
                    budget: &budget,
                    delay,
                };
                run(&env, rx, &m, &checkpointer, &notify);
                checkpointer.stop();
            })?;
        Ok(Writer {
            sender: Mutex::new(Some(tx)),
            commits,
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

    pub async fn submit<T, F>(&self, options: WriteOptions, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let WriteOptions {
            deadline,
            budget,
            limits,
        } = options;
        let run = Box::new(move |env: std::result::Result<&Env<'_>, StoreError>| {
            // Nobody waits for this job any more (the client went away, or the request gave up
            // before it started): applying it would commit a change no one was told about.
            // Skip it; the client's retry does it again.
            if tx.is_closed() {
                let nothing: Reply = Box::new(|_| {});
                return (false, nothing);
            }
            let result = match env {
                Err(e) => Err(e),
                // The deadline passed before the writer got here: nothing is changed, and the
                // request is told so.
                Ok(_) if deadline.as_ref().is_some_and(|d| !d.start()) => Err(StoreError::Expired),
                Ok(env) => run_job(env, budget, limits, deadline.is_some(), f),
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
        sender
            .send(Job { budget, run })
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// A receiver that sees a new value after every transaction the writer ends (committed or
    /// not): a long-poll re-reads then, and holds nothing while it waits.
    pub fn commits(&self) -> watch::Receiver<u64> {
        self.commits.subscribe()
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

/// Run a job's function within its budget and limits.
fn run_job<T>(
    env: &Env<'_>,
    budget: Option<Duration>,
    limits: Limits,
    for_request: bool,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    env.budget.start(budget);
    JOB_LIMITS.with(|l| l.set(limits));
    if let (true, Some(delay)) = (for_request, env.delay) {
        std::thread::sleep(delay);
    }
    let result = f(env.conn);
    JOB_LIMITS.with(|l| l.set(Limits::DEFAULT));
    let over = env.budget.stop();
    match result {
        Err(_) if over => {
            let budget_ms = budget.map_or(0, |b| b.as_millis() as u64);
            tracing::warn!(
                budget_ms,
                "a write ran past its time budget and was stopped"
            );
            Err(StoreError::OverBudget { budget_ms })
        }
        other => other,
    }
}

fn run(
    env: &Env<'_>,
    rx: mpsc::Receiver<Job>,
    metrics: &WriterMetrics,
    checkpointer: &Checkpointer,
    commits: &watch::Sender<u64>,
) {
    let mut queue: VecDeque<Job> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => break,
            }
        }
        while queue.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => break,
            }
        }
        let taken = run_batch(env, &mut queue, metrics);
        metrics.batch_size.observe(taken as f64);
        commits.send_modify(|n| *n = n.wrapping_add(1));
        checkpointer.nudge();
    }
    tracing::debug!("writer stopped: queue closed");
}

/// Run a transaction-control statement through the statement cache: `execute_batch` would parse
/// it again for every job (two savepoint statements per job showed as 17% of the writer's time).
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Answer jobs that cannot run: they are handed the error and change nothing.
fn refuse_all(jobs: impl Iterator<Item = Job>, e: &StoreError) {
    for job in jobs {
        let (_, reply) = (job.run)(Err(e.clone()));
        reply(None);
    }
}

/// One transaction: jobs from the front of `queue`, each in its own savepoint, then COMMIT and
/// the replies. Jobs left in `queue` go into the next transaction. Returns how many jobs it took.
fn run_batch(env: &Env<'_>, queue: &mut VecDeque<Job>, metrics: &WriterMetrics) -> usize {
    let conn = env.conn;
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        let taken = queue.len();
        refuse_all(queue.drain(..), &StoreError::from(e));
        return taken;
    }
    let mut taken = 0;
    let mut began = Instant::now();
    // The smallest budget among the jobs of this transaction: once it has run that long, the
    // next job waits for the next transaction, so an answer waits for about two budgets at most.
    let mut shortest: Option<Duration> = None;
    // Each reply waits for the batch's fate; a job whose savepoint could not be closed cleanly
    // is answered with that error even if the COMMIT later succeeds.
    let mut replies: Vec<(Reply, Option<StoreError>)> = Vec::with_capacity(queue.len());
    while let Some(job) = queue.pop_front() {
        if !replies.is_empty() && shortest.is_some_and(|b| began.elapsed() >= b) {
            queue.push_front(job);
            break;
        }
        taken += 1;
        if let Err(e) = control(conn, "SAVEPOINT job") {
            replies.push(((job.run)(Err(StoreError::from(e))).1, None));
            continue;
        }
        if let Some(b) = job.budget {
            shortest = Some(shortest.map_or(b, |s| s.min(b)));
        }
        let (job_ok, reply) = (job.run)(Ok(env));
        if conn.is_autocommit() {
            // SQLite rolls back the whole transaction when it stops a statement that writes
            // (a job over budget): the jobs before this one in the transaction are undone too.
            // They are told so (nothing changed); the rest go on in a new transaction.
            tracing::warn!(
                undone = replies.len(),
                "a write stopped over its budget rolled back its transaction"
            );
            for (earlier, _) in replies.drain(..) {
                earlier(Some(StoreError::RolledBack));
            }
            reply(Some(StoreError::RolledBack));
            if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
                taken += queue.len();
                refuse_all(queue.drain(..), &StoreError::from(e));
                return taken;
            }
            began = Instant::now();
            shortest = None;
            continue;
        }
        let end = if job_ok {
            control(conn, "RELEASE job")
        } else {
            control(conn, "ROLLBACK TO job").and_then(|()| control(conn, "RELEASE job"))
        };
        match end {
            Ok(()) => replies.push((reply, None)),
            Err(e) => {
                tracing::error!(error = %e, "savepoint end failed");
                replies.push((reply, job_ok.then(|| StoreError::from(e))));
            }
        }
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
    taken
}

/// How long the checkpointer lets commits accumulate before copying them into the database file.
/// A pass copies each page once, however many commits rewrote it (the tables' last leaves, the
/// counters, the B-trees' inner pages), and syncs both files. Under sustained creates (100k
/// users) the checkpoint thread used 37–42 µs of CPU per create at 20 ms, 17–22 µs at 100 ms;
/// the price is a longer copy when the writer's own checkpoint comes due (P2's p99 64–71 →
/// 68–84 ms). The WAL written between two passes (~3,000 pages at 5,000 creates/s) stays well
/// below `WRITER_CHECKPOINT_PAGES`, so the writer's own checkpoint still finds most pages copied.
/// Readers are unaffected: once a pass has copied everything they skip the WAL.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// A store with a table `t(x)` to write to.
    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("w.db"), Duration::from_secs(20)).unwrap();
        (dir, store)
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    async fn rows(store: &Store) -> Vec<String> {
        store
            .read(|c| {
                let mut stmt = c.prepare("SELECT x FROM t ORDER BY rowid")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
            })
            .await
            .unwrap()
    }

    fn insert(x: &'static str) -> impl FnOnce(&Connection) -> Result<()> + Send + 'static {
        move |c| {
            c.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
            Ok(())
        }
    }

    fn with_deadline(d: &Deadline) -> WriteOptions {
        WriteOptions {
            deadline: Some(d.clone()),
            ..WriteOptions::default()
        }
    }

    fn with_budget(ms: u64) -> WriteOptions {
        WriteOptions {
            budget: Some(Duration::from_millis(ms)),
            ..WriteOptions::default()
        }
    }

    /// Occupy the writer for a moment, so that the jobs submitted meanwhile form one batch.
    fn hold_writer(store: &Store) -> tokio::task::JoinHandle<()> {
        let s = store.clone();
        let handle = tokio::spawn(async move {
            s.write(|_| {
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            })
            .await
            .unwrap();
        });
        handle
    }

    /// SQL that counts for a long time (minutes), reading only.
    const LONG_READ: &str = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) \
                             SELECT count(*) FROM (SELECT n FROM c LIMIT 1000000000)";
    /// SQL that inserts for a long time (minutes).
    const LONG_WRITE: &str = "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c) \
                              INSERT INTO t (x) SELECT 'n' || n FROM c LIMIT 1000000000";

    #[test]
    fn a_job_whose_deadline_passed_before_it_started_changes_nothing() {
        let (_dir, store) = store();
        rt().block_on(async {
            store
                .write(|c| Ok(c.execute_batch("CREATE TABLE t (x TEXT)")?))
                .await
                .unwrap();
            let past = Deadline::after(Duration::ZERO);
            let r = store.write_with(with_deadline(&past), insert("late")).await;
            assert!(matches!(r, Err(StoreError::Expired)), "{r:?}");
            // The request gave up first: its job, reached later, does not start.
            let abandoned = Deadline::after(Duration::from_secs(60));
            assert!(abandoned.abandon());
            let r = store
                .write_with(with_deadline(&abandoned), insert("abandoned"))
                .await;
            assert!(matches!(r, Err(StoreError::Expired)), "{r:?}");
            assert!(rows(&store).await.is_empty());
        });
    }

    #[test]
    fn a_job_that_started_before_its_deadline_runs_to_its_result() {
        let (_dir, store) = store();
        rt().block_on(async {
            store
                .write(|c| Ok(c.execute_batch("CREATE TABLE t (x TEXT)")?))
                .await
                .unwrap();
            let d = Deadline::after(Duration::from_millis(100));
            let r = store
                .write_with(with_deadline(&d), |c| {
                    std::thread::sleep(Duration::from_millis(300));
                    insert("slow")(c)
                })
                .await;
            assert!(r.is_ok(), "{r:?}");
            // Started: the request may no longer answer "nothing changed".
            assert!(!d.abandon());
            assert_eq!(rows(&store).await, ["slow"]);
        });
    }

    #[test]
    fn a_job_over_its_budget_is_rolled_back_and_the_rest_of_its_batch_commits() {
        let (_dir, store) = store();
        rt().block_on(async {
            store
                .write(|c| Ok(c.execute_batch("CREATE TABLE t (x TEXT)")?))
                .await
                .unwrap();
            let held = hold_writer(&store);
            tokio::time::sleep(Duration::from_millis(50)).await;
            let slow = |c: &Connection| -> Result<()> {
                insert("slow")(c)?;
                c.query_row(LONG_READ, [], |_| Ok(()))?;
                Ok(())
            };
            let (a, slow, c) = tokio::join!(
                store.write(insert("a")),
                store.write_with(with_budget(100), slow),
                store.write(insert("c")),
            );
            held.await.unwrap();
            assert!(a.is_ok(), "{a:?}");
            assert!(
                matches!(slow, Err(StoreError::OverBudget { budget_ms: 100 })),
                "{slow:?}"
            );
            assert!(c.is_ok(), "{c:?}");
            assert_eq!(rows(&store).await, ["a", "c"]);
        });
    }

    /// SQLite rolls back the whole transaction when it stops a statement that writes: the
    /// writer tells the jobs before it in the batch that they were undone, and goes on.
    #[test]
    fn a_write_stopped_over_its_budget_undoes_its_batch_and_says_so() {
        let (_dir, store) = store();
        rt().block_on(async {
            store
                .write(|c| Ok(c.execute_batch("CREATE TABLE t (x TEXT)")?))
                .await
                .unwrap();
            let held = hold_writer(&store);
            tokio::time::sleep(Duration::from_millis(50)).await;
            let slow = |c: &Connection| -> Result<()> {
                c.execute(LONG_WRITE, [])?;
                Ok(())
            };
            let (a, slow, c) = tokio::join!(
                store.write(insert("a")),
                store.write_with(with_budget(100), slow),
                store.write(insert("c")),
            );
            held.await.unwrap();
            assert!(matches!(a, Err(StoreError::RolledBack)), "{a:?}");
            assert!(
                matches!(slow, Err(StoreError::OverBudget { budget_ms: 100 })),
                "{slow:?}"
            );
            assert!(c.is_ok(), "{c:?}");
            assert_eq!(rows(&store).await, ["c"]);
        });
    }

    #[test]
    fn a_job_sees_its_own_limits_and_only_while_it_runs() {
        let (_dir, store) = store();
        let mine = Limits {
            max_values_per_attribute: 7,
            ..Limits::DEFAULT
        };
        let seen = rt().block_on(async {
            let options = WriteOptions {
                limits: mine,
                ..WriteOptions::default()
            };
            let during = store.write_with(options, |_| Ok(job_limits())).await;
            let after = store.write(|_| Ok(job_limits())).await;
            (during.unwrap(), after.unwrap())
        });
        assert_eq!(seen, (mine, Limits::DEFAULT));
    }

    #[test]
    fn the_default_budget_is_the_configured_default() {
        let limits = crate::config::Config::default().limits;
        assert_eq!(
            Some(Duration::from_millis(limits.writer_job_budget_ms)),
            WriteOptions::default().budget
        );
        assert_eq!(
            Limits {
                max_values_per_attribute: limits.max_values_per_attribute,
                max_patch_operations: limits.max_patch_operations,
                max_members_per_request: limits.max_members_per_request,
            },
            Limits::DEFAULT
        );
    }
}
