//! A group's member rows: applying PATCH/PUT member operations (with the net delta the feed and
//! the history record, and the tenant's membership count), and reading a group's members or a
//! resource's groups.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{kind_from, Member, Stored};
use crate::domain::TenantId;
use crate::scim::patch::MemberOp;
use crate::scim::schema::ResourceKind;
use crate::store::{counts, Invalid, Result};

/// The net effect of member operations on a group: ids added and removed (an id added and
/// removed again within one request is neither). Recorded with the change, so the feed sends
/// a membership change as its delta, never the whole member list.
#[derive(Debug, Default)]
pub(in crate::store) struct MemberDelta {
    /// id → true when added, false when removed.
    net: HashMap<String, bool>,
    /// Whether any row changed at all (the version moves even if the net effect is nothing).
    pub(super) touched: bool,
}

impl MemberDelta {
    pub(in crate::store) fn added(&mut self, id: &str) {
        self.touched = true;
        if self.net.remove(id) != Some(false) {
            self.net.insert(id.to_string(), true);
        }
    }

    fn removed(&mut self, id: &str) {
        self.touched = true;
        if self.net.remove(id) != Some(true) {
            self.net.insert(id.to_string(), false);
        }
    }

    /// The added and removed ids, each sorted.
    pub(in crate::store) fn ids(&self) -> (Vec<String>, Vec<String>) {
        let list = |want: bool| -> Vec<String> {
            let mut ids: Vec<String> = self
                .net
                .iter()
                .filter(|(_, &added)| added == want)
                .map(|(id, _)| id.clone())
                .collect();
            ids.sort_unstable();
            ids
        };
        (list(true), list(false))
    }
}

/// Apply member operations to a group's rows. Returns what changed, for the feed.
pub(super) fn apply_member_ops(
    conn: &Connection,
    tenant: &TenantId,
    group_seq: i64,
    ops: &[MemberOp],
) -> Result<MemberDelta> {
    let mut delta = MemberDelta::default();
    // Member rows inserted minus rows deleted, for the tenant's count.
    let mut rows: i64 = 0;
    for op in ops {
        match op {
            MemberOp::Clear => {
                let mut gone = conn.prepare_cached(
                    "DELETE FROM members WHERE group_seq = ?1 \
                     RETURNING (SELECT id FROM resources WHERE seq = member_seq)",
                )?;
                let ids = gone
                    .query_map([group_seq], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows -= ids.len() as i64;
                for id in &ids {
                    delta.removed(id);
                }
            }
            MemberOp::Add(refs) => {
                let mut insert = conn.prepare_cached(
                    "INSERT OR IGNORE INTO members (group_seq, member_seq) VALUES (?1, ?2)",
                )?;
                for m in refs {
                    let seq = member_seq(conn, tenant, &m.value)?;
                    if seq == group_seq {
                        return Err(Invalid::SelfMembership.into());
                    }
                    if insert.execute(params![group_seq, seq])? > 0 {
                        rows += 1;
                        delta.added(&m.value);
                    }
                }
            }
            MemberOp::Remove(ids) => {
                let mut delete = conn.prepare_cached(
                    "DELETE FROM members WHERE group_seq = ?1 AND member_seq = \
                     (SELECT seq FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?2) AND id = ?3)",
                )?;
                for id in ids {
                    if delete.execute(params![group_seq, tenant, id])? > 0 {
                        rows -= 1;
                        delta.removed(id);
                    }
                }
            }
        }
    }
    counts::memberships_changed(conn, tenant, rows)?;
    Ok(delta)
}

/// The row of a would-be member: a user or group of the same tenant, else 400 invalidValue.
fn member_seq(conn: &Connection, tenant: &TenantId, id: &str) -> Result<i64> {
    conn.prepare_cached("SELECT seq FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND id = ?2")?
        .query_row(params![tenant, id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| Invalid::UnknownMember(id.to_string()).into())
}

/// The members of a group, in insertion order of the member resources.
pub fn members(conn: &Connection, group_seq: i64) -> Result<Vec<Member>> {
    related(
        conn,
        "SELECT mr.id, mr.kind, COALESCE(mr.display_name, mr.user_name) FROM members m \
         JOIN resources mr ON mr.seq = m.member_seq WHERE m.group_seq = ?1 ORDER BY mr.seq",
        group_seq,
    )
}

/// The groups a resource is a direct member of (the User's read-only `groups` attribute).
pub fn groups_of(conn: &Connection, member_seq: i64) -> Result<Vec<Member>> {
    related(
        conn,
        "SELECT g.id, g.kind, g.display_name FROM members m JOIN resources g ON g.seq = m.group_seq \
         WHERE m.member_seq = ?1 ORDER BY g.seq",
        member_seq,
    )
}

/// A group's members or a user's groups, whichever the resource has.
pub fn related_of(conn: &Connection, s: &Stored) -> Result<Vec<Member>> {
    match s.kind {
        ResourceKind::Group => members(conn, s.seq),
        ResourceKind::User => groups_of(conn, s.seq),
    }
}

/// Rows of (id, kind, display) for one side of the membership table.
fn related(conn: &Connection, sql: &str, seq: i64) -> Result<Vec<Member>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([seq], |r| {
        Ok(Member {
            id: r.get(0)?,
            kind: kind_from(&r.get::<_, String>(1)?),
            display: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
