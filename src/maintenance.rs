//! Background work of a running server: pruning the provisioning log and the change feed,
//! purging the trash,
//! warning about tokens and OAuth client secrets that expire soon, reloading a certificate whose
//! files changed, and scheduled backups. Each loop ends when the shutdown signal fires.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::app::App;
use crate::store::{backup, clients, feed, request_log, tokens, trash};
use crate::tls::ReloadableCert;

/// Often enough that the row cap holds within a minute's worth of entries (writes of the
/// provisioning log are bounded per address and overall, see `http::router::handle`).
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const PRUNE_CHUNK: i64 = 5_000;
const EXPIRY_CHECK_EVERY: Duration = Duration::from_secs(24 * 3600);
const EXPIRY_WARN_DAYS: i64 = 14;
const CERT_POLL_EVERY: Duration = Duration::from_secs(30);

/// Start every background loop.
pub fn start(app: Arc<App>, cert: Option<Arc<ReloadableCert>>, shutdown: watch::Receiver<bool>) {
    tokio::spawn(prune_loop(app.clone(), shutdown.clone()));
    tokio::spawn(feed_prune_loop(app.clone(), shutdown.clone()));
    tokio::spawn(trash_purge_loop(app.clone(), shutdown.clone()));
    tokio::spawn(expiry_loop(app.clone(), shutdown.clone()));
    if let Some(cert) = cert {
        tokio::spawn(cert_watch_loop(app.clone(), cert, shutdown.clone()));
    }
    if let Some(dir) = app.settings.backup_dir.clone() {
        tokio::spawn(backup_loop(app, dir, shutdown));
    }
}

/// Sleep for `d`, or return false at once if the server is shutting down.
async fn sleep_or_stop(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = shutdown.changed() => false,
    }
}

async fn prune_loop(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    if !sleep_or_stop(Duration::from_secs(30), &mut shutdown).await {
        return;
    }
    loop {
        let cutoff = time::OffsetDateTime::now_utc()
            - time::Duration::days(i64::from(app.config.log.retention_days));
        let cutoff = cutoff
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let keep = app.config.log.retention_rows as i64;
        loop {
            let c = cutoff.clone();
            // Small chunks, each its own writer job: pruning never holds up provisioning.
            match app
                .store
                .write(move |conn| request_log::prune(conn, &c, keep, PRUNE_CHUNK))
                .await
            {
                Ok(0) => break,
                Ok(n) => tracing::debug!(deleted = n, "pruned provisioning log"),
                Err(e) => {
                    tracing::warn!(error = %e, "pruning the provisioning log failed");
                    break;
                }
            }
        }
        if !sleep_or_stop(PRUNE_EVERY, &mut shutdown).await {
            return;
        }
    }
}

/// How often the change feed's retention runs (docs/feed.md).
const FEED_PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Prune the change feed's log as `feed.retention_days` / `feed.max_retention_days` and the
/// consumers' positions allow, in small writer jobs.
async fn feed_prune_loop(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    if !sleep_or_stop(Duration::from_secs(45), &mut shutdown).await {
        return;
    }
    loop {
        let days = |d: u32| {
            crate::domain::Timestamp::from(
                time::OffsetDateTime::now_utc() - time::Duration::days(i64::from(d)),
            )
        };
        let keep = days(app.config.feed.retention_days);
        let hard = days(app.config.feed.max_retention_days);
        loop {
            match app
                .store
                .write(move |conn| feed::prune(conn, keep, hard, PRUNE_CHUNK as usize))
                .await
            {
                Ok(0) => break,
                Ok(n) => tracing::debug!(deleted = n, "pruned the change feed"),
                Err(e) => {
                    tracing::warn!(error = %e, "pruning the change feed failed");
                    break;
                }
            }
        }
        warn_idle_consumers(&app, hard).await;
        if !sleep_or_stop(FEED_PRUNE_EVERY, &mut shutdown).await {
            return;
        }
    }
}

/// How often the trash is purged, and how many resources one writer job purges (a 100,000-member
/// group's packed member list is 1.6 MB: a chunk stays a short job).
const TRASH_PURGE_EVERY: Duration = Duration::from_secs(3600);
const TRASH_PURGE_CHUNK: usize = 100;

/// Purge what has been in the trash longer than `trash.retention_days`, in small writer jobs.
async fn trash_purge_loop(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    if !sleep_or_stop(Duration::from_secs(50), &mut shutdown).await {
        return;
    }
    loop {
        let days = app.config.trash.retention_days;
        let now = crate::domain::Timestamp::now();
        loop {
            match app
                .store
                .write(move |conn| trash::purge(conn, now, days, TRASH_PURGE_CHUNK))
                .await
            {
                Ok(0) => break,
                Ok(n) => {
                    tracing::info!(purged = n, "purged deleted users and groups from the trash")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purging the trash failed");
                    break;
                }
            }
        }
        if !sleep_or_stop(TRASH_PURGE_EVERY, &mut shutdown).await {
            return;
        }
    }
}

/// A feed consumer that has not recorded its position for this long is warned about.
const FEED_IDLE_WARN: i64 = 3600;

/// Warn about feed consumers (seen within `feed.max_retention_days`) that have not recorded a
/// position for an hour: GroupTalk may have stopped following the directory.
async fn warn_idle_consumers(app: &Arc<App>, seen_since: crate::domain::Timestamp) {
    let Ok(status) = app.store.read(|conn| feed::status(conn, None)).await else {
        return;
    };
    let now = crate::domain::Timestamp::now().unix_seconds();
    for c in status.consumers {
        let Some(updated) = crate::domain::Timestamp::parse(&c.updated) else {
            continue;
        };
        if updated >= seen_since && now - updated.unix_seconds() >= FEED_IDLE_WARN {
            tracing::warn!(
                tenant = %c.tenant,
                consumer = %c.consumer,
                lag_changes = c.lag_changes,
                last_position = %c.updated,
                "a change-feed consumer has not recorded its position for over an hour"
            );
        }
    }
}

async fn expiry_loop(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match app.store.read(|conn| tokens::list(conn, None)).await {
            Ok(list) => {
                let now = crate::domain::Timestamp::now().unix_seconds();
                for t in list.iter().filter(|t| t.revoked.is_none()) {
                    let Some(exp) = t.expires.map(|e| e.unix_seconds()) else {
                        continue;
                    };
                    let days = (exp - now).div_euclid(86_400);
                    if exp <= now {
                        tracing::warn!(token = %t.id, tenant = %t.tenant_name, "token has EXPIRED: Entra ID provisioning with it fails; issue a new one");
                    } else if days < EXPIRY_WARN_DAYS {
                        tracing::warn!(token = %t.id, tenant = %t.tenant_name, days, "token expires soon: issue a new one and update the Entra provisioning settings");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot check token expiry"),
        }
        match app.store.read(clients::secrets_expiring).await {
            Ok(list) => {
                let now = crate::domain::Timestamp::now().unix_seconds();
                for (client, secret, tenant, expires) in list {
                    let exp = expires.unix_seconds();
                    let days = (exp - now).div_euclid(86_400);
                    if exp <= now {
                        tracing::warn!(%client, %secret, %tenant, "client secret has EXPIRED: no access token is issued with it; add a new secret (client secret add) and update the Entra provisioning settings");
                    } else if days < EXPIRY_WARN_DAYS {
                        tracing::warn!(%client, %secret, %tenant, days, "client secret expires soon: add a new secret (client secret add), update the Entra provisioning settings, then revoke this one");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot check client secret expiry"),
        }
        if !sleep_or_stop(EXPIRY_CHECK_EVERY, &mut shutdown).await {
            return;
        }
    }
}

fn modified(paths: &[&Path]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// Reload the certificate when its files change (certbot renewals), like SIGHUP does.
async fn cert_watch_loop(
    app: Arc<App>,
    cert: Arc<ReloadableCert>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (c, k) = (app.config.tls.cert.clone(), app.config.tls.key.clone());
    let mut seen = modified(&[&c, &k]);
    loop {
        if !sleep_or_stop(CERT_POLL_EVERY, &mut shutdown).await {
            return;
        }
        let now = modified(&[&c, &k]);
        if now != seen {
            seen = now;
            match cert.reload(&c, &k) {
                Ok(()) => tracing::info!("TLS certificate files changed: reloaded"),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "TLS certificate files changed but the new ones are unusable; keeping the current certificate")
                }
            }
        }
    }
}

async fn backup_loop(app: Arc<App>, dir: PathBuf, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_secs(u64::from(app.config.backup.interval_hours) * 3600);
    loop {
        if !sleep_or_stop(every, &mut shutdown).await {
            return;
        }
        let (db, dir, keep) = (
            app.store.path().to_path_buf(),
            dir.clone(),
            app.config.backup.keep as usize,
        );
        let result = tokio::task::spawn_blocking(move || scheduled_backup(&db, &dir, keep)).await;
        match result {
            Ok(Ok(path)) => tracing::info!(file = %path.display(), "scheduled backup written"),
            Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "scheduled backup failed"),
            Err(e) => tracing::error!(error = %e, "scheduled backup task failed"),
        }
    }
}

/// Write `dir/grouptalk-scim-<UTC time>.db`, verify it, and keep the newest `keep` copies.
pub fn scheduled_backup(db: &Path, dir: &Path, keep: usize) -> anyhow::Result<PathBuf> {
    crate::fsutil::ensure_data_dir(dir)?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    let path = dir.join(format!("grouptalk-scim-{stamp}.db"));
    backup::backup(db, &path)?;
    backup::verify(&path)?;
    let mut existing: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("grouptalk-scim-") && n.ends_with(".db"))
        })
        .collect();
    existing.sort();
    let excess = existing.len().saturating_sub(keep);
    for old in existing.into_iter().take(excess) {
        let _ = std::fs::remove_file(old);
    }
    Ok(path)
}
