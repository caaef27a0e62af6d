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

use std::cell::Cell;

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
    // Cheapest first: in an episode the delivered removals alone reach the threshold, so
    // neither the held ones nor (past the threshold) anything else is summed.
    let since = settings.window_start(Timestamp::now());
    let delivered = sum_removals(conn, tenant, since, "changes")?;
    let mut held = None;
    if !rules::may_hold(&settings, delivered, weight) {
        let h = sum_removals(conn, tenant, since, "held_changes")?;
        if !rules::may_hold(&settings, delivered + h, weight) {
            return Ok(Route::Deliver);
        }
        held = Some(h);
    }
    let threshold = settings.threshold(active_users(conn, tenant)?);
    if rules::holds(delivered, weight, threshold) {
        return Ok(Route::Hold);
    }
    let held = match held {
        Some(h) => h,
        None => sum_removals(conn, tenant, since, "held_changes")?,
    };
    Ok(match rules::holds(delivered + held, weight, threshold) {
        true => Route::Hold,
        false => Route::Deliver,
    })
}

/// Removals counted in `table` (`changes`: delivered, `held_changes`: held) since `since`.
fn sum_removals(
    conn: &Connection,
    tenant: &TenantId,
    since: Timestamp,
    table: &'static str,
) -> Result<u64> {
    // `removals > 0` lets SQLite use the partial index `changes_removals (tenant, at)`.
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT coalesce(sum(removals), 0) FROM {table} \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND removals > 0 \
             AND at >= ?2"
        ))?
        .query_row(params![tenant, since], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// The tenant's active users: the `tenant_counts` row the dashboard's triggers keep (one
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
        let gone = conn
            .prepare_cached(
                "DELETE FROM held_changes WHERE id = (SELECT id FROM held_changes \
                 WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND resource_id = ?2 \
                 AND operation = ?3 ORDER BY id DESC LIMIT 1)",
            )?
            .execute(params![tenant, draft.id, undone])?;
        if gone > 0 {
            draft.op = ChangeOp::Update;
        }
    }
    if draft.kind == ResourceKind::Group && !draft.added.is_empty() {
        let rows = conn
            .prepare_cached(
                "SELECT id, operation, added, removed FROM held_changes \
                 WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND resource_id = ?2 \
                 AND removed IS NOT NULL ORDER BY id DESC",
            )?
            .query_map(params![tenant, draft.id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        for (held, op, added, removed) in rows {
            let mut removed = ids(removed)?;
            let count = removed.len();
            removed.retain(|m| match draft.added.iter().position(|a| a == m) {
                Some(at) => {
                    draft.added.remove(at);
                    false
                }
                None => true,
            });
            let undone = (count - removed.len()) as i64;
            if undone == 0 {
                continue;
            }
            if removed.is_empty() && ids(added)?.is_empty() && op == "update" {
                conn.prepare_cached("DELETE FROM held_changes WHERE id = ?1")?
                    .execute([held])?;
            } else {
                conn.prepare_cached(
                    "UPDATE held_changes SET removed = ?2, removals = max(removals - ?3, 0) \
                     WHERE id = ?1",
                )?
                .execute(params![held, ids_column(&removed)?, undone])?;
            }
        }
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
    conn.prepare_cached(&format!(
        "INSERT INTO {table} (tenant, at, kind, resource_id, operation, revision, added, \
         removed, removals) \
         VALUES ((SELECT key FROM tenants WHERE id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?
    .execute(params![
        tenant,
        Timestamp::now(),
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
        "UPDATE changes SET removals = 0 \
         WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND removals > 0",
    ] {
        conn.prepare_cached(sql)?.execute([tenant])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
