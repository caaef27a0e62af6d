//! Provisioning-log plumbing: a draft entry per request, filled as the request is handled.
//!
//! Successful writes insert their entry in the writer transaction that made the change (see
//! `resources::Ctx::write`). Everything else — reads, failures, refused tokens — goes through a
//! bounded queue that a background task flushes in batches, so reads never wait for a write.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::auth::Principal;
use crate::domain::Timestamp;
use crate::store::request_log::{self, Entry};
use crate::store::Store;

/// Entries waiting to be written; beyond this the newest are dropped (and counted).
const QUEUE_CAPACITY: usize = 10_000;
/// Bytes of entries waiting to be written; beyond this too (a flood of long entries).
const QUEUE_BYTES: usize = 8 * 1024 * 1024;
/// What of a request's method and path is kept (the rest is cut, marked with `…`): enough for
/// every real SCIM path, and a client cannot make one entry large.
const MAX_METHOD_CHARS: usize = 16;
const MAX_PATH_CHARS: usize = 512;
const FLUSH_BATCH: usize = 500;
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// Where a request's entry is being assembled.
#[derive(Debug)]
pub struct Draft {
    pub started: Instant,
    pub entry: Mutex<Entry>,
    /// Set when the entry was written in the transaction of the change it describes.
    logged: AtomicBool,
}

impl Draft {
    pub fn new(request_id: &str, method: &str, path: &str) -> Draft {
        Draft {
            started: Instant::now(),
            entry: Mutex::new(Entry {
                at: Timestamp::now().to_rfc3339(),
                request_id: request_id.to_string(),
                tenant_id: None,
                token_id: None,
                method: truncate(method, MAX_METHOD_CHARS),
                path: truncate(path, MAX_PATH_CHARS),
                resource_type: None,
                resource_id: None,
                status: 0,
                scim_type: None,
                duration_ms: 0,
                notes: Vec::new(),
                detail: None,
                body: None,
            }),
            logged: AtomicBool::new(false),
        }
    }

    pub fn is_logged(&self) -> bool {
        self.logged.load(Ordering::Relaxed)
    }

    pub fn mark_logged(&self) {
        self.logged.store(true, Ordering::Relaxed);
    }

    pub fn update(&self, f: impl FnOnce(&mut Entry)) {
        if let Ok(mut e) = self.entry.lock() {
            f(&mut e);
        }
    }

    /// The caller, once the database has confirmed its token.
    pub fn set_caller(&self, caller: &Principal) {
        self.update(|e| {
            e.tenant_id = Some(caller.tenant().to_string());
            e.token_id = Some(caller.credential().id().to_string());
        });
    }

    /// The entry as it stands, with the elapsed time filled in.
    pub fn snapshot(&self) -> Entry {
        let mut e = self
            .entry
            .lock()
            .map(|e| e.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        e.duration_ms = self.started.elapsed().as_millis() as u64;
        e
    }
}

/// `text` cut to `max` characters, with `…` when something was cut.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// The sending side of the log queue.
pub struct LogQueue {
    sender: Mutex<Option<mpsc::Sender<Entry>>>,
    flusher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub dropped: AtomicU64,
    /// Bytes of the entries in the queue (see `QUEUE_BYTES`).
    queued_bytes: Arc<AtomicUsize>,
}

impl LogQueue {
    /// Create the queue and start the task that writes it out through `store`.
    pub fn start(store: Store) -> LogQueue {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let flusher = tokio::spawn(flush_loop(store, receiver, queued_bytes.clone()));
        LogQueue {
            sender: Mutex::new(Some(sender)),
            flusher: Mutex::new(Some(flusher)),
            dropped: AtomicU64::new(0),
            queued_bytes,
        }
    }

    pub fn push(&self, entry: Entry) {
        let size = entry_size(&entry);
        let room = self
            .queued_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q + size <= QUEUE_BYTES).then_some(q + size)
            })
            .is_ok();
        let sent = room
            && match self.sender.lock() {
                Ok(s) => s.as_ref().is_some_and(|s| s.try_send(entry).is_ok()),
                Err(_) => false,
            };
        if !sent {
            if room {
                self.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            }
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stop accepting entries and wait until the queued ones are written.
    pub async fn close(&self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        let handle = self.flusher.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.await;
        }
    }
}

/// About what an entry holds in memory: its text and a fixed overhead.
fn entry_size(e: &Entry) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    256 + e.request_id.len()
        + e.method.len()
        + e.path.len()
        + opt(&e.tenant_id)
        + opt(&e.token_id)
        + opt(&e.resource_type)
        + opt(&e.resource_id)
        + opt(&e.scim_type)
        + opt(&e.detail)
        + opt(&e.body)
        + e.notes.iter().map(String::len).sum::<usize>()
}

async fn flush_loop(store: Store, mut receiver: mpsc::Receiver<Entry>, queued: Arc<AtomicUsize>) {
    let mut batch = Vec::with_capacity(FLUSH_BATCH);
    loop {
        let n = receiver.recv_many(&mut batch, FLUSH_BATCH).await;
        if n == 0 {
            break; // all senders gone: the server is stopping
        }
        let entries = std::mem::take(&mut batch);
        let bytes: usize = entries.iter().map(entry_size).sum();
        queued.fetch_sub(bytes, Ordering::AcqRel);
        let result = store
            .write(move |conn| {
                for e in &entries {
                    request_log::insert(conn, e)?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not write provisioning log entries");
        }
        if !receiver.is_closed() {
            tokio::time::sleep(FLUSH_INTERVAL).await;
        }
    }
}
