//! The change feed's reads and its one write: cursors, changes after a cursor, snapshot pages
//! and consumer positions (`/feed/v1/`, docs/feed.md).
//!
//! The log is the `changes` table, appended in the transaction of every write
//! (`resources::record_change`): a sequence number (AUTOINCREMENT, never reused), the
//! resource's revision (its version; a delete one more), the operation, and a group's member
//! delta. A cursor names the database's epoch (`feed_meta.epoch`, new after a restore) and a
//! sequence number; one from another epoch, or older than what is retained, is expired.

use rusqlite::{params, Connection, OptionalExtension};

use super::resources::{self, Member, Stored, COLUMNS};
use super::{Result, StoreError};
use crate::domain::{ResourceId, TenantId, Timestamp};
use crate::scim::schema::ResourceKind;

/// Most changes or resources one page carries (`limit`, `count`).
pub const MAX_PAGE: usize = 1000;

/// Most group members one snapshot page carries, summed over its groups (a page always holds at
/// least one resource, however large the group).
pub const SNAPSHOT_MEMBER_BUDGET: usize = 20_000;

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

/// Where a snapshot is: its watermark and the last resource it sent (users first, then groups,
/// each in `seq` order). Text: `{epoch}-{watermark}-{u|g}{seq}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCursor {
    pub watermark: Cursor,
    pub kind: ResourceKind,
    pub seq: i64,
}

impl SnapshotCursor {
    pub fn encode(&self) -> String {
        let k = match self.kind {
            ResourceKind::User => 'u',
            ResourceKind::Group => 'g',
        };
        format!("{}-{k}{}", self.watermark.encode(), self.seq)
    }

    pub fn parse(text: &str) -> std::result::Result<SnapshotCursor, CursorError> {
        const BAD: CursorError =
            CursorError::Invalid("the snapshot cursor is not one this server made");
        let (watermark, at) = text.rsplit_once('-').ok_or(BAD)?;
        let watermark = Cursor::parse(watermark).map_err(|_| BAD)?;
        let kind = match at.as_bytes().first() {
            Some(b'u') => ResourceKind::User,
            Some(b'g') => ResourceKind::Group,
            _ => return Err(BAD),
        };
        let digits = &at[1..];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BAD);
        }
        Ok(SnapshotCursor {
            watermark,
            kind,
            seq: digits.parse().map_err(|_| BAD)?,
        })
    }
}

/// One page of a snapshot: resources (a group with its members) and where the next starts.
#[derive(Debug, Clone)]
pub struct SnapshotPage {
    pub watermark: Cursor,
    pub resources: Vec<(Stored, Option<Vec<Member>>)>,
    pub next: Option<SnapshotCursor>,
}

/// A page of the tenant's snapshot: from the start (None: the watermark is the latest change
/// now, read in the same transaction as the page) or after `cursor`. At most `count` resources
/// and, past the first, at most `SNAPSHOT_MEMBER_BUDGET` group members.
pub fn snapshot_page(
    conn: &Connection,
    tenant: &TenantId,
    cursor: Option<&str>,
    count: usize,
) -> Result<SnapshotPage> {
    snapshot_page_within(conn, tenant, cursor, count, SNAPSHOT_MEMBER_BUDGET)
}

/// `snapshot_page` with a member budget of `budget`.
fn snapshot_page_within(
    conn: &Connection,
    tenant: &TenantId,
    cursor: Option<&str>,
    count: usize,
    budget: usize,
) -> Result<SnapshotPage> {
    let meta = meta(conn)?;
    let count = count.clamp(1, MAX_PAGE);
    let (watermark, mut kind, mut after) = match cursor {
        None | Some("") => (
            Cursor {
                epoch: meta.epoch.clone(),
                seq: meta.latest,
            },
            ResourceKind::User,
            0,
        ),
        Some(text) => {
            let c = SnapshotCursor::parse(text)?;
            check(&meta, &c.watermark.epoch, c.watermark.seq)?;
            (c.watermark, c.kind, c.seq)
        }
    };
    let mut out: Vec<(Stored, Option<Vec<Member>>)> = Vec::new();
    let mut members_sent = 0usize;
    let mut full = false;
    loop {
        let rows = page_of(conn, tenant, kind, after, count - out.len())?;
        let fetched = rows.len();
        for stored in rows {
            let members = match kind {
                ResourceKind::User => None,
                ResourceKind::Group => {
                    let m = resources::members(conn, stored.seq)?;
                    if !out.is_empty() && members_sent + m.len() > budget {
                        full = true;
                        break;
                    }
                    members_sent += m.len();
                    Some(m)
                }
            };
            after = stored.seq;
            out.push((stored, members));
        }
        if full || out.len() == count {
            break;
        }
        if fetched < count && kind == ResourceKind::User {
            // Users are done: groups next, from their start.
            kind = ResourceKind::Group;
            after = 0;
            continue;
        }
        // Groups are done: the snapshot is complete.
        return Ok(SnapshotPage {
            watermark,
            resources: out,
            next: None,
        });
    }
    Ok(SnapshotPage {
        next: Some(SnapshotCursor {
            watermark: watermark.clone(),
            kind,
            seq: after,
        }),
        watermark,
        resources: out,
    })
}

/// The tenant's resources of `kind` after `after` (seq order), at most `n`.
fn page_of(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    after: i64,
    n: usize,
) -> Result<Vec<Stored>> {
    let kind = match kind {
        ResourceKind::User => "'User'",
        ResourceKind::Group => "'Group'",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM resources r \
         WHERE r.tenant = (SELECT key FROM tenants WHERE id = ?1) AND r.kind = {kind} \
         AND r.seq > ?2 ORDER BY r.seq LIMIT {n}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![tenant, after], resources::from_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(resources::to_stored(row?)?);
    }
    Ok(out)
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
mod tests {
    use super::*;
    use crate::scim::patch;
    use crate::scim::resource::MemberRef;
    use serde_json::json;

    fn setup() -> (tempfile::TempDir, Connection, TenantId) {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open_connection(&dir.path().join("t.db")).unwrap();
        let t = super::super::tenants::create(&conn, "acme", None)
            .unwrap()
            .id;
        (dir, conn, t)
    }

    fn user(conn: &Connection, t: &TenantId, name: &str) -> Stored {
        resources::create(
            conn,
            t,
            ResourceKind::User,
            json!({"userName": name, "active": true}),
            None,
        )
        .unwrap()
    }

    fn patch_req(body: serde_json::Value) -> patch::PatchRequest {
        patch::parse_request(&body).unwrap()
    }

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let c = Cursor {
            epoch: "0123456789abcdef".into(),
            seq: 42,
        };
        assert_eq!(Cursor::parse(&c.encode()), Ok(c.clone()));
        for bad in [
            "",
            "42",
            "0123456789abcdef",
            "0123456789abcdef-",
            "0123456789abcdeF-1",
            "0123456789abcdef--1",
            "0123456789abcdef-+1",
            "0123456789abcdef-99999999999999999999999",
            "x-1",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
        let s = SnapshotCursor {
            watermark: c,
            kind: ResourceKind::Group,
            seq: 7,
        };
        assert_eq!(SnapshotCursor::parse(&s.encode()), Ok(s));
        assert!(SnapshotCursor::parse("0123456789abcdef-1-x7").is_err());
        assert!(SnapshotCursor::parse("0123456789abcdef-1-g").is_err());
    }

    #[test]
    fn changes_carry_revisions_ops_and_member_deltas() {
        let (_d, conn, t) = setup();
        let a = user(&conn, &t, "a");
        let b = user(&conn, &t, "b");
        let g = resources::create(
            &conn,
            &t,
            ResourceKind::Group,
            json!({"displayName": "G"}),
            Some(&[MemberRef {
                value: a.id.to_string(),
                kind: None,
            }]),
        )
        .unwrap();
        let add_b = patch_req(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": b.id.as_str()}]}]
        }));
        resources::patch(&conn, &t, ResourceKind::Group, &g.id, &add_b, None).unwrap();
        let off = patch_req(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": "False"}]
        }));
        resources::patch(&conn, &t, ResourceKind::User, &a.id, &off, None).unwrap();
        let on = patch_req(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": true}]
        }));
        resources::patch(&conn, &t, ResourceKind::User, &a.id, &on, None).unwrap();
        resources::delete(&conn, &t, ResourceKind::User, &b.id, None).unwrap();

        let page = changes_after(&conn, &t, None, 100).unwrap();
        type Seen = (String, String, i64, Vec<String>, Vec<String>, bool);
        let got: Vec<Seen> = page
            .changes
            .iter()
            .map(|c| {
                (
                    c.id.to_string(),
                    c.op.clone(),
                    c.revision,
                    c.added.clone(),
                    c.removed.clone(),
                    c.resource.is_some(),
                )
            })
            .collect();
        let (a, b, g) = (a.id.to_string(), b.id.to_string(), g.id.to_string());
        let none = Vec::<String>::new;
        assert_eq!(
            got,
            vec![
                (a.clone(), "create".into(), 1, none(), none(), true),
                (b.clone(), "create".into(), 1, none(), none(), false),
                (g.clone(), "create".into(), 1, vec![a.clone()], none(), true),
                (g.clone(), "update".into(), 2, vec![b.clone()], none(), true),
                (a.clone(), "deactivate".into(), 2, none(), none(), true),
                (a.clone(), "reactivate".into(), 3, none(), none(), true),
                (g.clone(), "update".into(), 3, none(), vec![b.clone()], true),
                (b.clone(), "delete".into(), 2, none(), none(), false),
            ]
        );
        assert!(!page.more);
        // Paging: two at a time reaches the same end.
        let first = changes_after(&conn, &t, None, 2).unwrap();
        assert!(first.more);
        let rest = changes_after(&conn, &t, Some(&first.next_after.encode()), 100).unwrap();
        assert_eq!(rest.changes.len(), 6);
        assert_eq!(rest.next_after, page.next_after);
    }

    #[test]
    fn a_put_records_the_net_member_delta() {
        let (_d, conn, t) = setup();
        let a = user(&conn, &t, "a");
        let b = user(&conn, &t, "b");
        let c = user(&conn, &t, "c");
        let refs = |us: &[&Stored]| -> Vec<MemberRef> {
            us.iter()
                .map(|u| MemberRef {
                    value: u.id.to_string(),
                    kind: None,
                })
                .collect()
        };
        let g = resources::create(
            &conn,
            &t,
            ResourceKind::Group,
            json!({"displayName": "G"}),
            Some(&refs(&[&a, &b])),
        )
        .unwrap();
        resources::replace(
            &conn,
            &t,
            ResourceKind::Group,
            &g.id,
            json!({"displayName": "G"}),
            Some(&refs(&[&b, &c])),
            None,
        )
        .unwrap();
        let page = changes_after(&conn, &t, None, 100).unwrap();
        let last = page.changes.last().unwrap();
        assert_eq!(last.added, vec![c.id.to_string()]);
        assert_eq!(last.removed, vec![a.id.to_string()]);
    }

    #[test]
    fn cursors_of_another_epoch_or_pruned_are_expired_and_future_ones_invalid() {
        let (_d, conn, t) = setup();
        user(&conn, &t, "a");
        let page = changes_after(&conn, &t, None, 10).unwrap();
        let cursor = page.next_after.encode();
        assert!(changes_after(&conn, &t, Some(&cursor), 10).is_ok());
        let future = Cursor {
            seq: page.next_after.seq + 1,
            ..page.next_after.clone()
        };
        assert!(matches!(
            changes_after(&conn, &t, Some(&future.encode()), 10),
            Err(StoreError::Cursor(CursorError::Invalid(_)))
        ));
        new_epoch(&conn).unwrap();
        assert!(matches!(
            changes_after(&conn, &t, Some(&cursor), 10),
            Err(StoreError::Cursor(CursorError::Expired(_)))
        ));
        let fresh = changes_after(&conn, &t, None, 10).unwrap().next_after;
        conn.execute("UPDATE feed_meta SET pruned_through = ?1", [fresh.seq])
            .unwrap();
        user(&conn, &t, "b");
        let old = Cursor {
            seq: fresh.seq - 1,
            ..fresh.clone()
        };
        assert!(matches!(
            changes_after(&conn, &t, Some(&old.encode()), 10),
            Err(StoreError::Cursor(CursorError::Expired(_)))
        ));
        assert_eq!(
            changes_after(&conn, &t, Some(&fresh.encode()), 10)
                .unwrap()
                .changes
                .len(),
            1
        );
    }

    #[test]
    fn sequence_numbers_never_restart_after_pruning() {
        let (_d, conn, t) = setup();
        user(&conn, &t, "a");
        user(&conn, &t, "b");
        let top: i64 = conn
            .query_row("SELECT max(seq) FROM changes", [], |r| r.get(0))
            .unwrap();
        conn.execute("DELETE FROM changes", []).unwrap();
        user(&conn, &t, "c");
        let next: i64 = conn
            .query_row("SELECT max(seq) FROM changes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(next, top + 1);
    }

    #[test]
    fn retention_prunes_old_changes_read_by_every_recent_consumer_and_never_past_the_hard_limit() {
        let (_d, conn, t) = setup();
        for i in 0..5 {
            user(&conn, &t, &format!("u{i}"));
        }
        let seqs: Vec<i64> = conn
            .prepare("SELECT seq FROM changes ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let day =
            |d: i64| Timestamp::from(time::OffsetDateTime::now_utc() + time::Duration::days(d));
        // Nothing is older than the retention: nothing goes.
        assert_eq!(prune(&conn, day(-30), day(-90), 100).unwrap(), 0);
        // Everything is old enough, but a consumer has read only through the second change.
        let at = |seq: i64| Cursor {
            epoch: meta(&conn).unwrap().epoch,
            seq,
        };
        record_position(&conn, &t, "reader", &at(seqs[1]).encode()).unwrap();
        assert_eq!(prune(&conn, day(1), day(-90), 100).unwrap(), 2);
        assert_eq!(meta(&conn).unwrap().pruned_through, seqs[1]);
        assert!(matches!(
            changes_after(&conn, &t, Some(&at(seqs[0]).encode()), 10),
            Err(StoreError::Cursor(CursorError::Expired(_)))
        ));
        assert_eq!(
            changes_after(&conn, &t, None, 10).unwrap().changes.len(),
            3,
            "after=0 starts at the oldest retained change"
        );
        // Past the hard limit the slow consumer no longer holds changes back; in chunks.
        assert_eq!(prune(&conn, day(1), day(1), 2).unwrap(), 2);
        assert_eq!(prune(&conn, day(1), day(1), 2).unwrap(), 1);
        assert_eq!(prune(&conn, day(1), day(1), 2).unwrap(), 0);
        assert_eq!(meta(&conn).unwrap().pruned_through, seqs[4]);
        // Sequence numbers go on from where they were.
        user(&conn, &t, "later");
        let page = changes_after(&conn, &t, None, 10).unwrap();
        assert_eq!(page.changes[0].seq, seqs[4] + 1);
    }

    #[test]
    fn snapshot_pages_stop_at_the_member_budget_but_always_carry_one_resource() {
        let (_d, conn, t) = setup();
        let users: Vec<Stored> = (0..4).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
        let refs = |n: usize| -> Vec<MemberRef> {
            users[..n]
                .iter()
                .map(|u| MemberRef {
                    value: u.id.to_string(),
                    kind: None,
                })
                .collect()
        };
        for (name, n) in [("small", 2), ("big", 4), ("also", 1)] {
            resources::create(
                &conn,
                &t,
                ResourceKind::Group,
                json!({"displayName": name}),
                Some(&refs(n)),
            )
            .unwrap();
        }
        // Budget 3 members: [4 users], [small], [big (alone, over budget)], [also].
        let mut cursor: Option<String> = None;
        let mut pages = Vec::new();
        loop {
            let page = snapshot_page_within(&conn, &t, cursor.as_deref(), 10, 3).unwrap();
            pages.push(
                page.resources
                    .iter()
                    .map(|(s, m)| (s.kind, m.as_ref().map_or(0, Vec::len)))
                    .collect::<Vec<_>>(),
            );
            match page.next {
                Some(n) => cursor = Some(n.encode()),
                None => break,
            }
        }
        let u = (ResourceKind::User, 0);
        let g = |n| (ResourceKind::Group, n);
        assert_eq!(pages, vec![vec![u, u, u, u, g(2)], vec![g(4)], vec![g(1)]]);
    }

    #[test]
    fn snapshot_pages_keep_their_watermark_and_cover_users_then_groups() {
        let (_d, conn, t) = setup();
        let users: Vec<Stored> = (0..5).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
        resources::create(
            &conn,
            &t,
            ResourceKind::Group,
            json!({"displayName": "G"}),
            Some(&[MemberRef {
                value: users[0].id.to_string(),
                kind: None,
            }]),
        )
        .unwrap();
        let mut cursor: Option<String> = None;
        let mut seen = Vec::new();
        let mut marks = Vec::new();
        loop {
            let page = snapshot_page(&conn, &t, cursor.as_deref(), 2).unwrap();
            marks.push(page.watermark.clone());
            // A write between pages moves nothing of the snapshot's watermark.
            user(&conn, &t, &format!("late{}", seen.len()));
            for (s, m) in &page.resources {
                seen.push((s.kind, m.as_ref().map(Vec::len)));
            }
            match page.next {
                Some(next) => cursor = Some(next.encode()),
                None => break,
            }
        }
        assert!(marks.windows(2).all(|w| w[0] == w[1]));
        let users_seen = seen
            .iter()
            .filter(|(k, _)| *k == ResourceKind::User)
            .count();
        assert!(users_seen >= 5, "{seen:?}");
        assert_eq!(
            seen.last(),
            Some(&(ResourceKind::Group, Some(1))),
            "groups come last, with their members"
        );
    }
}
