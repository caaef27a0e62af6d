//! The deletion brake in the database (docs/brake.md): every change of a resource passes through
//! [`record`], in the transaction of the write, and is either appended to the feed's log
//! (`changes`) or held (`held_changes`). The arithmetic is `crate::brake`'s; this module counts,
//! applies the verdict, cancels a held change that a later one undoes, keeps the image the feed
//! shows of a resource while its changes are held (`held_images`), and releases or discards.
//!
//! The rules, in short:
//! - a removal (deactivation, deletion, membership removal) that takes the tenant's count in
//!   the window beyond its threshold is held; so is every later change of a resource that has a
//!   held change, and the group updates a held deletion implies;
//! - a reactivation cancels the resource's held deactivation, a re-added member its held
//!   removal, a create of the same id (a restore) its held deletion: the consumer never sees the
//!   flap; what is left of the undoing change goes on as an `update` at its own revision;
//! - the feed shows a resource with held changes as it was last delivered (its image).
//!
//! The SCIM write itself is never refused or changed: the brake decides only what the feed says.
//!
//! Every read here is bounded, however long the episode: the window's count is a sum over the
//! per-minute counts in `brake_minutes` (at most `window_minutes + 1` rows), and a re-added
//! member finds its held removal through `held_removals` by its id. Both are kept by the writes
//! that change what they summarise, in the same transaction.

use std::cell::Cell;
use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};

use super::resources::{self, ChangeOp, Member, Stored};
use super::Result;
use crate::brake::{self as rules, Removal, Settings};
use crate::domain::{ResourceId, TenantId, Timestamp, Version};
use crate::scim::schema::ResourceKind;

thread_local! {
    /// The settings of the write being run (`within`); the defaults elsewhere (CLI, tests).
    static SETTINGS: Cell<Settings> = const { Cell::new(Settings::DEFAULT) };
    /// How many changes the write being run has held.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// Run `f`, a write, under the brake's `settings` (on the thread that runs it: the writer).
/// Returns its result and how many of the changes it recorded were held.
pub fn within<T>(settings: Settings, f: impl FnOnce() -> T) -> (T, usize) {
    let before = SETTINGS.with(|s| s.replace(settings));
    HELD.with(|h| h.set(0));
    let out = f();
    SETTINGS.with(|s| s.set(before));
    (out, HELD.with(|h| h.replace(0)))
}

/// A change on its way to the log.
#[derive(Debug, Clone)]
pub(super) struct Draft<'a> {
    pub kind: ResourceKind,
    pub id: &'a ResourceId,
    pub op: ChangeOp,
    pub revision: Version,
    /// Member ids added / removed (groups), sorted.
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub removal: Removal,
}

/// Where a change goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    Deliver,
    Hold,
}

/// Record a change: decide, keep the resource's image if it is held, append. `before` is the
/// resource before the change (None: read it now, its revision one less).
pub(super) fn record(
    conn: &Connection,
    tenant: &TenantId,
    mut draft: Draft<'_>,
    before: Option<&Stored>,
) -> Result<()> {
    let route = decide(conn, tenant, &mut draft)?;
    if route == Route::Hold {
        keep_image(conn, tenant, &draft, before)?;
    }
    append(conn, tenant, &draft, route)
}

/// Record the create of a new id. Nothing of an id that never existed can be held, and a create
/// removes nothing, so it is delivered without `decide`'s lookups (a restore brings an id back
/// and goes through [`record`], which cancels its held delete).
pub(super) fn record_new(conn: &Connection, tenant: &TenantId, draft: Draft<'_>) -> Result<()> {
    debug_assert!(draft.op == ChangeOp::Create && draft.removal.weight() == 0);
    append(conn, tenant, &draft, Route::Deliver)
}

/// Decide a delete before its rows go (its image needs them): the route of the delete and of
/// the group updates it implies.
pub(super) fn route_delete(conn: &Connection, tenant: &TenantId, old: &Stored) -> Result<Route> {
    let mut draft = Draft {
        kind: old.kind,
        id: &old.id,
        op: ChangeOp::Delete,
        revision: old.version.next(),
        added: Vec::new(),
        removed: Vec::new(),
        removal: Removal::Deletion,
    };
    let route = decide(conn, tenant, &mut draft)?;
    if route == Route::Hold {
        keep_image(conn, tenant, &draft, Some(old))?;
        // The groups it is in are held with it: keep them as they are now, before their
        // version moves and the member goes.
        let groups = conn
            .prepare_cached(
                "SELECT g.id FROM members m JOIN resources g ON g.seq = m.group_seq \
                 WHERE m.member_seq = ?1",
            )?
            .query_map([old.seq], |r| r.get::<_, ResourceId>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for id in &groups {
            if let Some(g) = resources::get(conn, tenant, ResourceKind::Group, id)? {
                let group = Draft {
                    kind: ResourceKind::Group,
                    id,
                    op: ChangeOp::Update,
                    revision: g.version.next(),
                    added: Vec::new(),
                    removed: Vec::new(),
                    removal: Removal::Implied,
                };
                keep_image(conn, tenant, &group, Some(&g))?;
            }
        }
    }
    Ok(route)
}

/// A group update implied by a delete routed `route`: held with a held delete (the group's
/// image keeps the member), else recorded like any change.
pub(super) fn record_implied(
    conn: &Connection,
    tenant: &TenantId,
    draft: Draft<'_>,
    route: Route,
) -> Result<()> {
    match route {
        Route::Hold => {
            keep_image(conn, tenant, &draft, None)?;
            append(conn, tenant, &draft, Route::Hold)
        }
        Route::Deliver => record(conn, tenant, draft, None),
    }
}

/// Append a delete decided by `route_delete`.
pub(super) fn record_decided(
    conn: &Connection,
    tenant: &TenantId,
    draft: Draft<'_>,
    route: Route,
) -> Result<()> {
    append(conn, tenant, &draft, route)
}

fn decide(conn: &Connection, tenant: &TenantId, draft: &mut Draft<'_>) -> Result<Route> {
    if has_image(conn, tenant, draft.id)? {
        cancel(conn, tenant, draft)?;
        if has_image(conn, tenant, draft.id)? {
            return Ok(Route::Hold);
        }
    }
    let settings = SETTINGS.with(Cell::get);
    let weight = draft.removal.weight();
    if weight == 0 || !settings.enabled() {
        return Ok(Route::Deliver);
    }
    let since = minute_of(settings.window_start(Timestamp::now()));
    forget_minutes_before(conn, tenant, since - KEPT_MINUTES)?;
    let counted = counted_since(conn, tenant, since)?;
    // Below `max_removals` no threshold can be reached: the active users are not read.
    if !rules::may_hold(&settings, counted, weight) {
        return Ok(Route::Deliver);
    }
    let threshold = settings.threshold(active_users(conn, tenant)?);
    Ok(match rules::holds(counted, weight, threshold) {
        true => Route::Hold,
        false => Route::Deliver,
    })
}

/// Per-minute counts kept beyond the window, so a longer `brake.window_minutes` set later still
/// finds the last day's removals.
const KEPT_MINUTES: i64 = 24 * 60;

/// The minute a change is counted in.
fn minute_of(at: Timestamp) -> i64 {
    at.unix_seconds().div_euclid(60)
}

/// Removals delivered and held in the minutes from `since` on. The minute the window starts in
/// counts whole, so a removal counts for `window_minutes` to one minute more: never less.
fn counted_since(conn: &Connection, tenant: &TenantId, since: i64) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT coalesce(sum(delivered + held), 0) FROM brake_minutes \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND minute >= ?2",
        )?
        .query_row(params![tenant, since], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Add `delivered` and `held` removals to the minute of `at`.
fn count(
    conn: &Connection,
    tenant: &TenantId,
    at: Timestamp,
    delivered: u64,
    held: u64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO brake_minutes (tenant, minute, delivered, held) \
         VALUES ((SELECT key FROM tenants WHERE id = ?1), ?2, ?3, ?4) \
         ON CONFLICT (tenant, minute) DO UPDATE \
         SET delivered = delivered + excluded.delivered, held = held + excluded.held",
    )?
    .execute(params![
        tenant,
        minute_of(at),
        delivered as i64,
        held as i64
    ])?;
    Ok(())
}

/// Take back `n` held removals counted in the minute of `at` (a cancelled held removal).
fn uncount_held(conn: &Connection, tenant: &TenantId, at: Timestamp, n: i64) -> Result<()> {
    if n > 0 {
        conn.prepare_cached(
            "UPDATE brake_minutes SET held = max(held - ?3, 0) \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND minute = ?2",
        )?
        .execute(params![tenant, minute_of(at), n])?;
    }
    Ok(())
}

fn forget_minutes_before(conn: &Connection, tenant: &TenantId, minute: i64) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM brake_minutes \
         WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND minute < ?2",
    )?
    .execute(params![tenant, minute])?;
    Ok(())
}

/// The tenant's active users: the `tenant_counts` row the writes keep (`store::counts`) (one
/// primary-key lookup, however many users).
fn active_users(conn: &Connection, tenant: &TenantId) -> Result<u64> {
    let n: Option<i64> = conn
        .prepare_cached(
            "SELECT active_users FROM tenant_counts \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1)",
        )?
        .query_row([tenant], |r| r.get(0))
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

fn has_image(conn: &Connection, tenant: &TenantId, id: &ResourceId) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM held_images \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND resource_id = ?2)",
        )?
        .query_row(params![tenant, id], |r| r.get(0))?)
}

fn ids(text: Option<String>) -> Result<Vec<String>> {
    Ok(match text {
        Some(t) => serde_json::from_str(&t)?,
        None => Vec::new(),
    })
}

fn ids_column(ids: &[String]) -> Result<Option<String>> {
    Ok(match ids.is_empty() {
        true => None,
        false => Some(serde_json::to_string(ids)?),
    })
}

/// A change that undoes a held one cancels it: a reactivation the held deactivation, a create of
/// the same id the held delete (the change goes on as an `update`), a re-added member its held
/// removal (it leaves the change's `added`). The image goes once nothing of the resource is held.
fn cancel(conn: &Connection, tenant: &TenantId, draft: &mut Draft<'_>) -> Result<()> {
    let undone = match draft.op {
        ChangeOp::Reactivate => Some("deactivate"),
        ChangeOp::Create => Some("delete"),
        _ => None,
    };
    if let Some(undone) = undone {
        let newest = conn
            .prepare_cached(
                "SELECT id, at, removals FROM held_changes \
                 WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND resource_id = ?2 \
                 AND operation = ?3 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![tenant, draft.id, undone], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Timestamp>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        if let Some((held, at, removals)) = newest {
            conn.prepare_cached("DELETE FROM held_changes WHERE id = ?1")?
                .execute([held])?;
            uncount_held(conn, tenant, at, removals)?;
            draft.op = ChangeOp::Update;
        }
    }
    if draft.kind == ResourceKind::Group && !draft.added.is_empty() {
        cancel_held_removals(conn, tenant, draft)?;
    }
    let still_held: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM held_changes \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND resource_id = ?2)",
        )?
        .query_row(params![tenant, draft.id], |r| r.get(0))?;
    if !still_held {
        conn.prepare_cached(
            "DELETE FROM held_images \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND resource_id = ?2",
        )?
        .execute(params![tenant, draft.id])?;
    }
    Ok(())
}

/// Members added back cancel their held removals: each the newest held change of the group
/// that removes it (found by id in `held_removals`), and leaves the draft's `added`.
fn cancel_held_removals(conn: &Connection, tenant: &TenantId, draft: &mut Draft<'_>) -> Result<()> {
    let mut undone: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    let mut still_added = Vec::with_capacity(draft.added.len());
    for member in std::mem::take(&mut draft.added) {
        let held: Option<i64> = conn
            .prepare_cached(
                "SELECT held_id FROM held_removals \
                 WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND resource_id = ?2 \
                 AND member_id = ?3 ORDER BY held_id DESC LIMIT 1",
            )?
            .query_row(params![tenant, draft.id, member], |r| r.get(0))
            .optional()?;
        match held {
            Some(held) => undone.entry(held).or_default().push(member),
            None => still_added.push(member),
        }
    }
    draft.added = still_added;
    for (held, members) in undone {
        let row = conn
            .prepare_cached(
                "SELECT operation, added, removed, removals, at FROM held_changes WHERE id = ?1",
            )?
            .query_row([held], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Timestamp>(4)?,
                ))
            })
            .optional()?;
        let Some((op, added, removed, removals, at)) = row else {
            continue;
        };
        let mut removed = ids(removed)?;
        removed.retain(|m| !members.contains(m));
        let left = (removals - members.len() as i64).max(0);
        if removed.is_empty() && ids(added)?.is_empty() && op == "update" {
            conn.prepare_cached("DELETE FROM held_changes WHERE id = ?1")?
                .execute([held])?;
            uncount_held(conn, tenant, at, removals)?;
        } else {
            conn.prepare_cached(
                "UPDATE held_changes SET removed = ?2, removals = ?3 WHERE id = ?1",
            )?
            .execute(params![held, ids_column(&removed)?, left])?;
            uncount_held(conn, tenant, at, removals - left)?;
        }
        for member in &members {
            conn.prepare_cached(
                "DELETE FROM held_removals \
                 WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND resource_id = ?2 \
                 AND member_id = ?3 AND held_id = ?4",
            )?
            .execute(params![tenant, draft.id, member, held])?;
        }
    }
    Ok(())
}

/// Keep the resource as the feed last delivered it, unless already kept: `before` (or its row
/// now, one revision back), and a group's members with the draft's delta undone.
fn keep_image(
    conn: &Connection,
    tenant: &TenantId,
    draft: &Draft<'_>,
    before: Option<&Stored>,
) -> Result<()> {
    if has_image(conn, tenant, draft.id)? {
        return Ok(());
    }
    let image = match before {
        Some(s) => s.clone(),
        None => match resources::get(conn, tenant, draft.kind, draft.id)? {
            Some(mut s) => {
                s.version = Version(draft.revision.0 - 1);
                s
            }
            None => return Ok(()),
        },
    };
    let members = match draft.kind {
        ResourceKind::User => None,
        ResourceKind::Group => {
            let mut members = resources::members(conn, image.seq)?;
            members.retain(|m| !draft.added.iter().any(|a| a == m.id.as_str()));
            for id in &draft.removed {
                if members.iter().any(|m| m.id.as_str() == id) {
                    continue;
                }
                if let Some(m) = member(conn, tenant, id)? {
                    members.push(m);
                }
            }
            let list: Vec<Value> = members
                .iter()
                .map(|m| json!({"id": m.id.as_str(), "kind": m.kind.name(), "display": m.display}))
                .collect();
            Some(serde_json::to_string(&list)?)
        }
    };
    conn.prepare_cached(
        "INSERT INTO held_images (tenant, resource_id, kind, seq, version, created, \
         last_modified, doc, members) \
         VALUES ((SELECT key FROM tenants WHERE id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        tenant,
        draft.id,
        draft.kind.name(),
        image.seq,
        image.version,
        image.created,
        image.last_modified,
        serde_json::to_string(&image.doc)?,
        members
    ])?;
    Ok(())
}

fn member(conn: &Connection, tenant: &TenantId, id: &str) -> Result<Option<Member>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, kind, COALESCE(display_name, user_name) FROM resources \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND id = ?2",
        )?
        .query_row(params![tenant, id], |r| {
            Ok(Member {
                id: r.get(0)?,
                kind: kind_from(&r.get::<_, String>(1)?),
                display: r.get(2)?,
            })
        })
        .optional()?)
}

fn kind_from(s: &str) -> ResourceKind {
    if s == "Group" {
        ResourceKind::Group
    } else {
        ResourceKind::User
    }
}

fn append(conn: &Connection, tenant: &TenantId, draft: &Draft<'_>, route: Route) -> Result<()> {
    let added = ids_column(&draft.added)?;
    let removed = ids_column(&draft.removed)?;
    let weight = draft.removal.weight() as i64;
    let table = match route {
        Route::Deliver => "changes",
        Route::Hold => "held_changes",
    };
    let first = route == Route::Hold && !holds_any(conn, tenant)?;
    let at = Timestamp::now();
    conn.prepare_cached(&format!(
        "INSERT INTO {table} (tenant, at, kind, resource_id, operation, revision, added, \
         removed, removals) \
         VALUES ((SELECT key FROM tenants WHERE id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?
    .execute(params![
        tenant,
        at,
        draft.kind.name(),
        draft.id,
        draft.op.as_str(),
        draft.revision,
        added,
        removed,
        weight
    ])?;
    if route == Route::Hold {
        HELD.with(|h| h.set(h.get() + 1));
        let held = conn.last_insert_rowid();
        for member in &draft.removed {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO held_removals (tenant, resource_id, member_id, held_id) \
                 VALUES ((SELECT key FROM tenants WHERE id = ?1), ?2, ?3, ?4)",
            )?
            .execute(params![tenant, draft.id, member, held])?;
        }
    }
    if weight > 0 {
        let weight = weight as u64;
        match route {
            Route::Deliver => count(conn, tenant, at, weight, 0)?,
            Route::Hold => count(conn, tenant, at, 0, weight)?,
        }
    }
    if first {
        let settings = SETTINGS.with(Cell::get);
        let name: Option<String> = conn
            .prepare_cached("SELECT name FROM tenants WHERE id = ?1")?
            .query_row([tenant], |r| r.get(0))
            .optional()?;
        tracing::warn!(
            tenant = name.as_deref().unwrap_or("?"),
            threshold = settings.threshold(active_users(conn, tenant)?),
            window_minutes = settings.window_minutes,
            "deletion brake engaged: the change feed holds this tenant's removals beyond the \
             threshold (the SCIM writes succeed); see `grouptalk-scim brake status`, then \
             `brake release` or `brake discard`"
        );
    }
    Ok(())
}

fn holds_any(conn: &Connection, tenant: &TenantId) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM held_changes \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1))",
        )?
        .query_row([tenant], |r| r.get(0))?)
}

/// A resource as the feed shows it while its changes are held.
#[derive(Debug, Clone)]
pub struct Image {
    pub stored: Stored,
    /// A group's members as last delivered.
    pub members: Option<Vec<Member>>,
}

const IMAGE_COLUMNS: &str = "seq, resource_id, kind, version, created, last_modified, doc, members";

fn image_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Stored, Option<String>)> {
    let doc: String = r.get(6)?;
    let doc = serde_json::from_str(&doc).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok((
        Stored {
            seq: r.get(0)?,
            id: r.get(1)?,
            kind: kind_from(&r.get::<_, String>(2)?),
            version: r.get(3)?,
            created: r.get(4)?,
            last_modified: r.get(5)?,
            doc,
        },
        r.get(7)?,
    ))
}

fn to_image((stored, members): (Stored, Option<String>)) -> Result<Image> {
    let members = match members {
        None => None,
        Some(text) => {
            let list: Vec<Value> = serde_json::from_str(&text)?;
            Some(
                list.iter()
                    .filter_map(|m| {
                        Some(Member {
                            id: ResourceId::new(m.get("id")?.as_str()?),
                            kind: kind_from(m.get("kind")?.as_str()?),
                            display: m.get("display").and_then(Value::as_str).map(String::from),
                        })
                    })
                    .collect(),
            )
        }
    };
    Ok(Image { stored, members })
}

/// Whether the tenant has any resource shown by its image (a cheap check before the others).
pub fn any_images(conn: &Connection, tenant: &TenantId) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM held_images \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1))",
        )?
        .query_row([tenant], |r| r.get(0))?)
}

/// The image of a resource with held changes.
pub fn image(conn: &Connection, tenant: &TenantId, id: &ResourceId) -> Result<Option<Image>> {
    let row = conn
        .prepare_cached(&format!(
            "SELECT {IMAGE_COLUMNS} FROM held_images \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND resource_id = ?2"
        ))?
        .query_row(params![tenant, id], image_from)
        .optional()?;
    row.map(to_image).transpose()
}

/// The tenant's images of `kind` with a `seq` above `after`, in `seq` order (a snapshot page
/// merges them with the live rows).
pub fn images_after(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    after: i64,
) -> Result<Vec<Image>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {IMAGE_COLUMNS} FROM held_images \
         WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND kind = ?2 AND seq > ?3 \
         ORDER BY seq"
    ))?;
    let rows = stmt.query_map(params![tenant, kind.name(), after], image_from)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(to_image(row?)?);
    }
    Ok(out)
}

/// One tenant's brake as `brake status` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TenantBrake {
    pub tenant: String,
    /// Changes held.
    pub held: i64,
    /// When the oldest held change was held (None when nothing is).
    pub since: Option<String>,
    /// The tenant's threshold now: removals in the window beyond it are held.
    pub threshold: u64,
}

/// The brake of each tenant (or of one), by name.
pub fn status(
    conn: &Connection,
    tenant: Option<&TenantId>,
    settings: &Settings,
) -> Result<Vec<TenantBrake>> {
    let mut stmt = conn.prepare(
        "SELECT t.id, t.name, (SELECT count(*) FROM held_changes h WHERE h.tenant = t.key), \
         (SELECT min(at) FROM held_changes h WHERE h.tenant = t.key) \
         FROM tenants t WHERE ?1 IS NULL OR t.id = ?1 ORDER BY t.name",
    )?;
    let rows = stmt
        .query_map([tenant], |r| {
            Ok((
                r.get::<_, TenantId>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for (id, name, held, since) in rows {
        out.push(TenantBrake {
            tenant: name,
            held,
            since,
            threshold: settings.threshold(active_users(conn, &id)?),
        });
    }
    Ok(out)
}

/// Held changes per tenant name (the `grouptalk_scim_brake_held_changes` gauge), every tenant.
pub fn held_counts(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.name, (SELECT count(*) FROM held_changes h WHERE h.tenant = t.key) \
         FROM tenants t ORDER BY t.name",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Deliver the tenant's held changes: appended to `changes` at new sequence numbers, in the
/// order they happened, with their revisions. The episode ends: the window starts counting
/// again from nothing (what was held or delivered so far is the administrator's decision).
/// Returns how many were released. Call in a transaction.
pub fn release(conn: &Connection, tenant: &TenantId) -> Result<usize> {
    let n = conn
        .prepare_cached(
            "INSERT INTO changes (tenant, at, kind, resource_id, operation, revision, added, \
             removed, removals) \
             SELECT tenant, ?2, kind, resource_id, operation, revision, added, removed, 0 \
             FROM held_changes WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) \
             ORDER BY id",
        )?
        .execute(params![tenant, Timestamp::now()])?;
    end_episode(conn, tenant)?;
    Ok(n)
}

/// Drop the tenant's held changes: never delivered. The consumers keep what they were last
/// sent of those resources; the SCIM state stays as Entra left it. Returns how many were
/// dropped. Call in a transaction.
pub fn discard(conn: &Connection, tenant: &TenantId) -> Result<usize> {
    let n = conn
        .prepare_cached(
            "SELECT count(*) FROM held_changes \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1)",
        )?
        .query_row([tenant], |r| r.get::<_, i64>(0))?;
    end_episode(conn, tenant)?;
    Ok(n.max(0) as usize)
}

fn end_episode(conn: &Connection, tenant: &TenantId) -> Result<()> {
    for sql in [
        "DELETE FROM held_changes WHERE tenant = (SELECT key FROM tenants WHERE id = ?1)",
        "DELETE FROM held_images WHERE tenant = (SELECT key FROM tenants WHERE id = ?1)",
        "DELETE FROM held_removals WHERE tenant = (SELECT key FROM tenants WHERE id = ?1)",
        "DELETE FROM brake_minutes WHERE tenant = (SELECT key FROM tenants WHERE id = ?1)",
    ] {
        conn.prepare_cached(sql)?.execute([tenant])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
