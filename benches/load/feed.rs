//! The change feed's phases (`/feed/v1/`, docs/feed.md), each one consumer as GroupTalk runs it,
//! not the closed loop of 64 connections the SCIM phases use:
//! - `feed_catchup`: read the log from the oldest retained change (`after=0`) with
//!   `limit=1000`, following `nextAfter`, on one keep-alive connection: changes/s. The seed's own
//!   creates are the log (`store::resources::create` records each).
//! - `feed_longpoll`: a consumer waits (`wait=30`) while a writer PATCHes one user every
//!   `LONGPOLL_PERIOD`; latency from the write's 200 to the consumer's answer, p50/p99.
//! - `feed_snapshot`: the whole snapshot with `count=1000`: users/s and the server's peak RSS
//!   while it runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hyper::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::client::{Req, Target};
use crate::seed::Seed;
use crate::{spread, BASE};

const FEED: &str = "/feed/v1";
/// One write every this long in `feed_longpoll`: a modest pace, so the consumer is waiting
/// again before the next write.
const LONGPOLL_PERIOD: Duration = Duration::from_millis(50);

/// What a feed phase measured. `requests`/`seconds` make its req/s; `items` are changes or
/// resources read; `latencies_ms` per request (catch-up, snapshot) or per write (long-poll).
pub struct FeedOutcome {
    pub requests: u64,
    pub items: u64,
    pub seconds: f64,
    pub latencies_ms: Vec<f64>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// `feed_catchup`: whether the whole retained log was read (else the time cap ended it).
    pub complete: bool,
}

impl FeedOutcome {
    fn new() -> FeedOutcome {
        FeedOutcome {
            requests: 0,
            items: 0,
            seconds: 0.0,
            latencies_ms: Vec::new(),
            errors: 0,
            first_error: None,
            complete: false,
        }
    }

    pub fn items_per_second(&self) -> f64 {
        self.items as f64 / self.seconds.max(1e-9)
    }

    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut v = self.latencies_ms.clone();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q).round() as usize]
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

async fn get_json(
    target: &Target,
    conn: &mut hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
    path: String,
) -> Result<Value> {
    let (status, body) = target.send(conn, &Req::get(path)).await?;
    if status != 200 {
        bail!("{status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body)?)
}

/// `feed_catchup`: the log from its start, 1000 changes a request, for at most `cap`.
pub async fn catchup(feed: &Target, cap: Duration) -> Result<FeedOutcome> {
    let mut out = FeedOutcome::new();
    let mut conn = feed.connect().await?;
    let mut after = "0".to_string();
    let started = Instant::now();
    while started.elapsed() < cap {
        let t = Instant::now();
        let page = get_json(
            feed,
            &mut conn,
            format!("{FEED}/changes?after={after}&limit=1000"),
        )
        .await
        .context("feed_catchup")?;
        out.latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        out.requests += 1;
        out.items += page["changes"].as_array().map_or(0, Vec::len) as u64;
        after = page["nextAfter"]
            .as_str()
            .context("no nextAfter")?
            .to_string();
        if page["moreAvailable"] != json!(true) {
            out.complete = true;
            break;
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// The newest position of the log now: a fresh snapshot's watermark.
async fn latest(feed: &Target) -> Result<String> {
    let mut conn = feed.connect().await?;
    let snap = get_json(feed, &mut conn, format!("{FEED}/snapshot?count=1")).await?;
    Ok(snap["watermark"]
        .as_str()
        .context("no watermark")?
        .to_string())
}

/// `feed_longpoll`: for `duration`, one PATCH every `LONGPOLL_PERIOD` (each after the consumer
/// has seen the previous one); per write, the time from its 200 to the moment the waiting
/// consumer's answer carrying it was read in full (0 when the answer came first).
pub async fn longpoll(
    feed: &Target,
    scim: &Target,
    seed: &Arc<Seed>,
    duration: Duration,
) -> Result<FeedOutcome> {
    let mut out = FeedOutcome::new();
    let (tx, mut seen) = mpsc::unbounded_channel::<Result<(Instant, u64), String>>();
    let consumer = {
        let (feed, start) = (feed.clone(), latest(feed).await?);
        tokio::spawn(async move {
            let mut after = start;
            let mut conn = match feed.connect().await {
                Ok(c) => c,
                Err(e) => return Err(e),
            };
            loop {
                let path = format!("{FEED}/changes?after={after}&wait=30&limit=1000");
                match get_json(&feed, &mut conn, path).await {
                    Ok(page) => {
                        let at = Instant::now();
                        let n = page["changes"].as_array().map_or(0, Vec::len) as u64;
                        after = page["nextAfter"].as_str().unwrap_or(&after).to_string();
                        if n > 0 && tx.send(Ok((at, n))).is_err() {
                            return Ok(());
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return Err(e);
                    }
                }
            }
        })
    };
    // Let the consumer's first request reach the server and start waiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut conn = scim.connect().await?;
    let started = Instant::now();
    let mut tick = tokio::time::interval(LONGPOLL_PERIOD);
    let mut i = 0u64;
    while started.elapsed() < duration {
        tick.tick().await;
        let id = &seed.user_ids[spread(i, seed.users)];
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": format!("Longpoll {i}")}],
        });
        let req = Req::with_body(
            Method::PATCH,
            format!("{BASE}/Users/{id}"),
            body.to_string(),
        );
        i += 1;
        let (status, reply) = scim.send(&mut conn, &req).await?;
        let replied = Instant::now();
        out.requests += 1;
        if status != 200 {
            out.error(format!(
                "PATCH {status}: {}",
                String::from_utf8_lossy(&reply)
            ));
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(10), seen.recv()).await {
            Ok(Some(Ok((at, n)))) => {
                out.items += n;
                let ms = at.saturating_duration_since(replied).as_secs_f64() * 1000.0;
                out.latencies_ms.push(ms);
            }
            Ok(Some(Err(e))) => bail!("feed_longpoll consumer: {e}"),
            Ok(None) => bail!("feed_longpoll consumer ended"),
            Err(_) => out.error("the consumer did not answer within 10 s of a write".into()),
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    consumer.abort();
    Ok(out)
}

/// `feed_snapshot`: every page of a snapshot, 1000 resources a request. `users` counts the
/// User resources read.
pub async fn snapshot(feed: &Target) -> Result<(FeedOutcome, u64)> {
    let mut out = FeedOutcome::new();
    let mut conn = feed.connect().await?;
    let mut users = 0u64;
    let mut cursor: Option<String> = None;
    let started = Instant::now();
    loop {
        let path = match &cursor {
            None => format!("{FEED}/snapshot?count=1000"),
            Some(c) => format!("{FEED}/snapshot?count=1000&cursor={c}"),
        };
        let t = Instant::now();
        let page = get_json(feed, &mut conn, path)
            .await
            .context("feed_snapshot")?;
        out.latencies_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        out.requests += 1;
        let resources = page["resources"].as_array().context("no resources")?;
        out.items += resources.len() as u64;
        users += resources
            .iter()
            .filter(|r| r["meta"]["resourceType"] == "User")
            .count() as u64;
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    out.complete = true;
    Ok((out, users))
}

/// Reset the server's peak resident set (`VmHWM`) to its current size, so a phase's peak is its
/// own (Linux: `5` into `/proc/PID/clear_refs`, allowed for one's own processes). Whether it
/// worked.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}
