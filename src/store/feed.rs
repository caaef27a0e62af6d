//! The change feed's reads and its one write: cursors, changes after a cursor, snapshot pages
//! and consumer positions (`/feed/v1/`, docs/feed.md).
//!
//! The log is the `changes` table, appended in the transaction of every write
//! (`resources::record_change`): a sequence number (AUTOINCREMENT, never reused), the
//! resource's revision (its version; a delete one more), the operation, and a group's member
//! delta. A cursor names the database's epoch (`feed_meta.epoch`, new after a restore) and a
//! sequence number; one from another epoch, or older than what is retained, is expired.

use rusqlite::{params, Connection, OptionalExtension};

use super::brake;
use super::resources::{self, Stored, COLUMNS};
use super::{Result, StoreError};
use crate::domain::{ResourceId, TenantId, Timestamp};
use crate::scim::schema::ResourceKind;

mod snapshot;
#[cfg(test)]
use snapshot::snapshot_page_within;
pub use snapshot::{
    snapshot_page, MemberPosition, SnapshotCursor, SnapshotPage, SNAPSHOT_MEMBER_BUDGET,
};

/// Most changes or resources one page carries (`limit`, `count`).
pub const MAX_PAGE: usize = 1000;

/// Why a cursor cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not a cursor this server made (or one from the future).
    #[error("{0}")]
    Invalid(&'static str),
    /// From before a restore, or older than the retained changes: take a new snapshot.
    #[error("{0}")]
    Expired(&'static str),
}

/// The feed's state in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedMeta {
    pub epoch: String,
    /// The highest sequence number no longer retained (changes after it are all there).
    pub pruned_through: i64,
    /// The highest sequence number handed out so far.
    pub latest: i64,
}

pub fn meta(conn: &Connection) -> Result<FeedMeta> {
    let (epoch, pruned_through, latest) = conn
        .prepare_cached(
            "SELECT epoch, pruned_through, \
             coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0) \
             FROM feed_meta WHERE id = 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(FeedMeta {
        epoch,
        pruned_through,
        latest,
    })
}

/// Give the database a new epoch: every cursor handed out before is expired. `backup restore`
/// does this to the restored copy.
pub fn new_epoch(conn: &Connection) -> Result<()> {
    conn.execute(
        "UPDATE feed_meta SET epoch = lower(hex(randomblob(8))) WHERE id = 1",
        [],
    )?;
    Ok(())
}

/// A position in the change log: `{epoch}-{seq}` (opaque to clients).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub epoch: String,
    pub seq: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}-{}", self.epoch, self.seq)
    }

    pub fn parse(text: &str) -> std::result::Result<Cursor, CursorError> {
        const BAD: CursorError = CursorError::Invalid("the cursor is not one this server made");
        let (epoch, seq) = text.split_once('-').ok_or(BAD)?;
        if !is_epoch(epoch) || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BAD);
        }
        let seq: i64 = seq.parse().map_err(|_| BAD)?;
        Ok(Cursor {
            epoch: epoch.to_string(),
            seq,
        })
    }
}

fn is_epoch(s: &str) -> bool {
    s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Where changes start for `after` (None or "0": the oldest retained change), checked against
/// the database: the sequence number to read after.
pub fn resolve_after(
    meta: &FeedMeta,
    after: Option<&str>,
) -> std::result::Result<i64, CursorError> {
    let after = match after {
        None | Some("") | Some("0") => return Ok(meta.pruned_through),
        Some(text) => Cursor::parse(text)?,
    };
    check(meta, after.epoch.as_str(), after.seq)?;
    Ok(after.seq)
}

/// A cursor of `epoch` at `seq` is usable now: this epoch, not pruned, not from the future.
fn check(meta: &FeedMeta, epoch: &str, seq: i64) -> std::result::Result<(), CursorError> {
    check_epoch(&meta.epoch, epoch)?;
    if seq < meta.pruned_through {
        return Err(CursorError::Expired(
            "the cursor is older than the changes the server keeps; take a new snapshot",
        ));
    }
    if seq > meta.latest {
        return Err(CursorError::Invalid(
            "the cursor is not one this server made",
        ));
    }
    Ok(())
}

/// A cursor of `epoch` belongs to the database whose epoch is `current` (a restore gives the
/// restored copy a new one). The list cursors of RFC 9865 paging (`http::paging`) carry an epoch
/// too.
pub fn check_epoch(current: &str, epoch: &str) -> std::result::Result<(), CursorError> {
    if epoch != current {
        return Err(CursorError::Expired(
            "the cursor is from before the directory was restored from a backup; take a new \
             snapshot",
        ));
    }
    Ok(())
}

/// The database's epoch (`feed_meta.epoch`).
pub fn epoch(conn: &Connection) -> Result<String> {
    Ok(conn
        .prepare_cached("SELECT epoch FROM feed_meta WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

impl From<CursorError> for StoreError {
    fn from(e: CursorError) -> StoreError {
        StoreError::Cursor(e)
    }
}

/// One change of the log, with the resource as it is now (None once deleted).
#[derive(Debug, Clone)]
pub struct Change {
    pub seq: i64,
    pub at: Timestamp,
    pub kind: ResourceKind,
    pub id: ResourceId,
    pub op: String,
    pub revision: i64,
    /// Member ids added / removed (groups), as recorded.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub resource: Option<Stored>,
}

/// A page of changes and where the next one starts.
#[derive(Debug, Clone)]
pub struct ChangesPage {
    pub changes: Vec<Change>,
    pub next_after: Cursor,
    pub more: bool,
}

/// The tenant's changes after `after` (a cursor's text, None for the oldest retained), at most
/// `limit` of them, each with its resource as it is in this read.
pub fn changes_after(
    conn: &Connection,
    tenant: &TenantId,
    after: Option<&str>,
    limit: usize,
) -> Result<ChangesPage> {
    let meta = meta(conn)?;
    let after = resolve_after(&meta, after)?;
    let limit = limit.clamp(1, MAX_PAGE);
    // LIMIT is SQL text (an integer of ours), as in `resources::list`.
    let sql = format!(
        "SELECT c.seq, c.at, c.kind, c.resource_id, c.operation, c.revision, c.added, c.removed, \
         r.seq IS NOT NULL AND c.operation <> 'delete', {COLUMNS} \
         FROM changes c LEFT JOIN resources r ON r.id = c.resource_id AND r.tenant = c.tenant \
         WHERE c.tenant = (SELECT key FROM tenants WHERE id = ?1) AND c.seq > ?2 \
         ORDER BY c.seq LIMIT {}",
        limit + 1
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![tenant, after])?;
    let mut changes = Vec::new();
    let mut more = false;
    while let Some(row) = rows.next()? {
        if changes.len() == limit {
            more = true;
            break;
        }
        let ids = |i: usize| -> Result<Vec<String>> {
            Ok(match row.get::<_, Option<String>>(i)? {
                Some(text) => serde_json::from_str(&text)?,
                None => Vec::new(),
            })
        };
        let has_resource: bool = row.get(8)?;
        let resource = if has_resource {
            Some(resources::to_stored(resources::from_row_at(row, 9)?)?)
        } else {
            None
        };
        changes.push(Change {
            seq: row.get(0)?,
            at: row.get(1)?,
            kind: kind_from(&row.get::<_, String>(2)?),
            id: row.get(3)?,
            op: row.get(4)?,
            revision: row.get(5)?,
            added: ids(6)?,
            removed: ids(7)?,
            resource,
        });
    }
    // The delivered view: a resource with held changes is shown as it was last delivered.
    if !changes.is_empty() && brake::any_images(conn, tenant)? {
        for c in changes.iter_mut().filter(|c| c.op != "delete") {
            if let Some(image) = brake::image(conn, tenant, &c.id)? {
                c.resource = Some(image.stored);
            }
        }
    }
    let next = changes.last().map_or(after, |c| c.seq);
    Ok(ChangesPage {
        changes,
        next_after: Cursor {
            epoch: meta.epoch,
            seq: next,
        },
        more,
    })
}

fn kind_from(s: &str) -> ResourceKind {
    if s == "Group" {
        ResourceKind::Group
    } else {
        ResourceKind::User
    }
}

/// Check a position a consumer reports (`PUT /feed/v1/position`): a cursor of this epoch,
/// retained and handed out. Returns its sequence number.
pub fn check_position(conn: &Connection, after: &str) -> Result<i64> {
    let meta = meta(conn)?;
    Ok(resolve_after(&meta, Some(after))?)
}

/// Record that `consumer` of the tenant has read through `after` (a cursor's text), checked in
/// the same transaction.
pub fn record_position(
    conn: &Connection,
    tenant: &TenantId,
    consumer: &str,
    after: &str,
) -> Result<i64> {
    let seq = check_position(conn, after)?;
    conn.prepare_cached(
        "INSERT INTO feed_consumers (tenant, consumer, position, updated) \
         VALUES ((SELECT key FROM tenants WHERE id = ?1), ?2, ?3, ?4) \
         ON CONFLICT (tenant, consumer) DO UPDATE SET position = excluded.position, \
         updated = excluded.updated",
    )?
    .execute(params![tenant, consumer, seq, Timestamp::now()])?;
    Ok(seq)
}

/// Prune at most `chunk` of the oldest changes that retention lets go, and move
/// `pruned_through` past them (a cursor before it is then answered 410). A change may go when it
/// is older than `hard_before` (`feed.max_retention_days`), or older than `keep_before`
/// (`feed.retention_days`) and every consumer that recorded a position since `hard_before` has
/// read past it. Only a prefix of the log goes: sequence numbers stay contiguous after
/// `pruned_through`. Returns how many changes were deleted.
pub fn prune(
    conn: &Connection,
    keep_before: Timestamp,
    hard_before: Timestamp,
    chunk: usize,
) -> Result<usize> {
    let meta = meta(conn)?;
    let slowest: Option<i64> = conn
        .prepare_cached("SELECT min(position) FROM feed_consumers WHERE updated >= ?1")?
        .query_row([hard_before], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, at FROM changes WHERE seq > ?1 ORDER BY seq LIMIT {}",
        chunk.max(1)
    ))?;
    let rows = stmt.query_map([meta.pruned_through], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Timestamp>(1)?))
    })?;
    let mut through = None;
    for row in rows {
        let (seq, at) = row?;
        let read_by_all = slowest.is_none_or(|p| seq <= p);
        if at < hard_before || (at < keep_before && read_by_all) {
            through = Some(seq);
        } else {
            break;
        }
    }
    let Some(through) = through else {
        return Ok(0);
    };
    let deleted = conn
        .prepare_cached("DELETE FROM changes WHERE seq > ?1 AND seq <= ?2")?
        .execute(params![meta.pruned_through, through])?;
    conn.prepare_cached("UPDATE feed_meta SET pruned_through = ?1 WHERE id = 1")?
        .execute([through])?;
    Ok(deleted)
}

/// A consumer's recorded position (seq), if it has one.
pub fn position(conn: &Connection, tenant: &TenantId, consumer: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT position FROM feed_consumers \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND consumer = ?2",
        )?
        .query_row(params![tenant, consumer], |r| r.get(0))
        .optional()?)
}

/// A consumer's position as `feed status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsumerStatus {
    pub tenant: String,
    /// The long-lived token's id or the OAuth client's id.
    pub consumer: String,
    pub position: i64,
    /// When it last recorded its position.
    pub updated: String,
    /// Changes of its tenant after its position.
    pub lag_changes: i64,
    /// Age of the oldest change it has not read (0 when none).
    pub lag_seconds: i64,
}

/// The feed as `feed status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FeedStatus {
    pub epoch: String,
    pub latest_seq: i64,
    pub pruned_through: i64,
    pub retained_changes: i64,
    /// Time of the oldest retained change, if any.
    pub oldest_retained: Option<String>,
    pub consumers: Vec<ConsumerStatus>,
}

/// The feed's state and its consumers (of one tenant, or all).
pub fn status(conn: &Connection, tenant: Option<&TenantId>) -> Result<FeedStatus> {
    let m = meta(conn)?;
    let (retained, oldest): (i64, Option<String>) = conn.query_row(
        "SELECT count(*), (SELECT at FROM changes ORDER BY seq LIMIT 1) FROM changes",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let now = Timestamp::now().unix_seconds();
    let mut stmt = conn.prepare(
        "SELECT t.name, c.consumer, c.position, c.updated, \
         (SELECT count(*) FROM changes x WHERE x.tenant = c.tenant AND x.seq > c.position), \
         (SELECT x.at FROM changes x WHERE x.tenant = c.tenant AND x.seq > c.position \
          ORDER BY x.seq LIMIT 1) \
         FROM feed_consumers c JOIN tenants t ON t.key = c.tenant \
         WHERE ?1 IS NULL OR t.id = ?1 ORDER BY t.name, c.consumer",
    )?;
    let rows = stmt.query_map([tenant], |r| {
        let unread: Option<Timestamp> = r.get(5)?;
        Ok(ConsumerStatus {
            tenant: r.get(0)?,
            consumer: r.get(1)?,
            position: r.get(2)?,
            updated: r.get(3)?,
            lag_changes: r.get(4)?,
            lag_seconds: unread.map_or(0, |t| (now - t.unix_seconds()).max(0)),
        })
    })?;
    Ok(FeedStatus {
        epoch: m.epoch,
        latest_seq: m.latest,
        pruned_through: m.pruned_through,
        retained_changes: retained,
        oldest_retained: oldest,
        consumers: rows.collect::<rusqlite::Result<Vec<_>>>()?,
    })
}

/// One change as `feed tail` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TailRow {
    pub seq: i64,
    pub time: String,
    pub tenant: String,
    #[serde(rename = "resourceType")]
    pub kind: String,
    pub id: String,
    pub op: String,
    pub revision: i64,
    pub added: usize,
    pub removed: usize,
}

/// Changes after `after` (of one tenant, or all), oldest first, at most `limit`.
pub fn tail(
    conn: &Connection,
    tenant: Option<&TenantId>,
    after: i64,
    limit: usize,
) -> Result<Vec<TailRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT c.seq, c.at, t.name, c.kind, c.resource_id, c.operation, c.revision, \
         coalesce(json_array_length(c.added), 0), coalesce(json_array_length(c.removed), 0) \
         FROM changes c JOIN tenants t ON t.key = c.tenant \
         WHERE c.seq > ?1 AND (?2 IS NULL OR t.id = ?2) ORDER BY c.seq LIMIT {}",
        limit.max(1)
    ))?;
    let rows = stmt.query_map(params![after, tenant], |r| {
        Ok(TailRow {
            seq: r.get(0)?,
            time: r.get(1)?,
            tenant: r.get(2)?,
            kind: r.get(3)?,
            id: r.get(4)?,
            op: r.get(5)?,
            revision: r.get(6)?,
            added: r.get::<_, i64>(7)? as usize,
            removed: r.get::<_, i64>(8)? as usize,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The sequence number `feed tail` starts after to show the newest `n` changes.
pub fn tail_start(conn: &Connection, tenant: Option<&TenantId>, n: usize) -> Result<i64> {
    Ok(conn.query_row(
        &format!(
            "SELECT coalesce(min(seq) - 1, (SELECT pruned_through FROM feed_meta)) FROM \
             (SELECT c.seq FROM changes c JOIN tenants t ON t.key = c.tenant \
              WHERE ?1 IS NULL OR t.id = ?1 ORDER BY c.seq DESC LIMIT {})",
            n
        ),
        [tenant],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests;
