//! The history of every object (`grouptalk-scim history`): the provisioning-log rows that name
//! it, each with what its write changed (`request_details.diff`) and, with `log.keep_bodies`,
//! the request body (`request_details.body`). docs/trash-and-history.md.
//!
//! A write's diff is computed by the store where it has the document before and after
//! (`resources::update_row`, `delete`; `trash::restore`) — a create's by its handler, before
//! the write, off the single writer thread (`set_pending_text`) — and handed to the
//! provisioning-log row of the same writer job: `note` keeps it for the job, the job's log
//! insert (`http::resources::Ctx::write`) calls `begin` before the write and `finish` with its
//! row after it, in the same transaction. Rows go with their log row (foreign key, `ON DELETE
//! CASCADE`), so they follow the provisioning log's retention.

use std::cell::RefCell;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::query::fold;
use super::resources::MemberDelta;
use super::Result;
use crate::domain::TenantId;
use crate::scim::diff::{self, Diff, MemberChanges};

/// A write's diff waiting for its log row: computed in the job, or as text before it.
enum Pending {
    Diff(Diff),
    Text(String),
}

thread_local! {
    /// The diff of the write the running job made (the writer thread runs one job at a time).
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// A job starts: forget a diff a failed job may have left.
pub fn begin() {
    PENDING.with(|p| p.borrow_mut().take());
}

/// Keep what a write did to a resource, for the job's provisioning-log row.
pub(super) fn note(op: &str, old: Option<&Value>, new: Option<&Value>, members: &MemberDelta) {
    let mut d = diff::diff(op, old, new);
    let (added, removed) = members.ids();
    let added: Vec<&str> = added.iter().map(String::as_str).collect();
    let removed: Vec<&str> = removed.iter().map(String::as_str).collect();
    let m = MemberChanges::of(&added, &removed);
    if !m.is_empty() {
        d.members = Some(m);
    }
    set_pending(d);
}

pub(super) fn set_pending(d: Diff) {
    PENDING.with(|p| *p.borrow_mut() = Some(Pending::Diff(d)));
}

/// The job's diff, computed before the write (a create's: `scim::diff::created_text`, off the
/// writer thread). Call inside the job, after the write succeeded.
pub fn set_pending_text(text: String) {
    PENDING.with(|p| *p.borrow_mut() = Some(Pending::Text(text)));
}

/// The job's provisioning-log row is `log_seq`: store the job's diff with it.
pub fn finish(conn: &Connection, log_seq: i64) -> Result<()> {
    let text = match PENDING.with(|p| p.borrow_mut().take()) {
        None => return Ok(()),
        Some(Pending::Diff(d)) => serde_json::to_string(&d)?,
        Some(Pending::Text(text)) => text,
    };
    conn.prepare_cached(
        "INSERT INTO request_details (log_seq, diff) VALUES (?1, ?2) \
         ON CONFLICT (log_seq) DO UPDATE SET diff = excluded.diff",
    )?
    .execute(params![log_seq, text])?;
    Ok(())
}

/// Keep a request body with its provisioning-log row (`log.keep_bodies`; already stripped and
/// capped by `scim::diff::redact_body`).
pub(super) fn keep_body(conn: &Connection, log_seq: i64, body: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO request_details (log_seq, body) VALUES (?1, ?2) \
         ON CONFLICT (log_seq) DO UPDATE SET body = excluded.body",
    )?
    .execute(params![log_seq, body])?;
    Ok(())
}

/// One request that touched an object.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub seq: i64,
    pub at: String,
    pub request_id: String,
    pub tenant: Option<String>,
    /// The long-lived token's or OAuth client's id (None for the CLI's `trash restore`).
    pub credential: Option<String>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub scim_type: Option<String>,
    /// Entra normalisations applied.
    pub notes: Vec<String>,
    pub detail: Option<String>,
    pub diff: Option<Diff>,
    pub body: Option<String>,
}

/// Most events `history` shows (the newest).
pub const MAX_EVENTS: i64 = 1000;

/// Every logged request about resource `id` (of `tenant`, or any), oldest first (the newest
/// `MAX_EVENTS`).
pub fn of_object(conn: &Connection, tenant: Option<&TenantId>, id: &str) -> Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM (SELECT l.seq, l.at, l.request_id, n.name, l.token_id, l.method, l.path, \
         l.status, l.scim_type, l.notes, l.detail, d.diff, d.body \
         FROM request_log l LEFT JOIN tenants n ON n.id = l.tenant_id \
         LEFT JOIN request_details d ON d.log_seq = l.seq \
         WHERE l.resource_id = ?1 AND (?2 IS NULL OR l.tenant_id = ?2) \
         ORDER BY l.seq DESC LIMIT ?3) ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![id, tenant, MAX_EVENTS], |r| {
        let notes: Option<String> = r.get(9)?;
        let diff: Option<String> = r.get(11)?;
        Ok((
            Event {
                seq: r.get(0)?,
                at: r.get(1)?,
                request_id: r.get(2)?,
                tenant: r.get(3)?,
                credential: r.get(4)?,
                method: r.get(5)?,
                path: r.get(6)?,
                status: r.get(7)?,
                scim_type: r.get(8)?,
                notes: notes
                    .map(|n| n.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
                detail: r.get(10)?,
                diff: None,
                body: r.get(12)?,
            },
            diff,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mut event, diff) = row?;
        event.diff = diff.map(|t| diff::parse_stored(&t)).transpose()?;
        out.push(event);
    }
    Ok(out)
}

/// Where a name or id was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Found {
    pub tenant_id: String,
    pub tenant: String,
    pub kind: String,
    pub id: String,
    /// live | trash | log (only the provisioning log still names it)
    pub place: &'static str,
}

/// The objects `text` names: a resource id, a userName or a group displayName (compared as
/// SCIM compares them, case-insensitively), live or in the trash, of `tenant` or any; else an
/// id the provisioning log still names. Index lookups per tenant, never a scan.
pub fn resolve(conn: &Connection, tenant: Option<&TenantId>, text: &str) -> Result<Vec<Found>> {
    let key = fold(text);
    let mut out = Vec::new();
    let tenants: Vec<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT key, id, name FROM tenants WHERE ?1 IS NULL OR id = ?1 ORDER BY name",
        )?
        .query_map(params![tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // (place, by name, statement): ?1 the tenant's key, ?2 the id or the folded name.
    let queries: [(&'static str, bool, &str); 5] = [
        ("live", false, "SELECT kind, id FROM resources WHERE tenant = ?1 AND id = ?2"),
        (
            "live",
            true,
            "SELECT kind, id FROM resources WHERE tenant = ?1 AND kind = 'User' AND user_name_key = ?2",
        ),
        (
            "live",
            true,
            "SELECT kind, id FROM resources WHERE tenant = ?1 AND kind = 'Group' AND display_name_key = ?2",
        ),
        ("trash", false, "SELECT kind, id FROM trash WHERE tenant = ?1 AND id = ?2"),
        (
            "trash",
            true,
            "SELECT kind, id FROM trash WHERE tenant = ?1 AND name_key = ?2 ORDER BY seq",
        ),
    ];
    for (tkey, tid, tname) in &tenants {
        for (place, by_name, sql) in queries {
            let mut stmt = conn.prepare_cached(sql)?;
            let value = if by_name { key.as_str() } else { text };
            let rows = stmt.query_map(params![tkey, value], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (kind, id) = row?;
                let found = Found {
                    tenant_id: tid.clone(),
                    tenant: tname.clone(),
                    kind,
                    id,
                    place,
                };
                if !out.contains(&found) {
                    out.push(found);
                }
            }
        }
    }
    if out.is_empty() {
        let logged: Option<(String, String, Option<String>)> = conn
            .prepare_cached(
                "SELECT l.tenant_id, t.name, l.resource_type FROM request_log l \
                 JOIN tenants t ON t.id = l.tenant_id \
                 WHERE l.resource_id = ?1 AND (?2 IS NULL OR l.tenant_id = ?2) \
                 ORDER BY l.seq DESC LIMIT 1",
            )?
            .query_row(params![text, tenant], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        if let Some((tenant_id, name, kind)) = logged {
            out.push(Found {
                tenant_id,
                tenant: name,
                kind: kind.unwrap_or_default(),
                id: text.to_string(),
                place: "log",
            });
        }
    }
    Ok(out)
}
