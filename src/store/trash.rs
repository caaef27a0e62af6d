//! The trash: a SCIM DELETE that can be undone (`grouptalk-scim trash list|restore`,
//! docs/trash-and-history.md).
//!
//! `keep` runs inside the DELETE's transaction (memberships read before the row goes, the trash
//! row written after it, in the pages it freed): the resource's document,
//! version and creation time, and its memberships as ids (a group's members, the groups it was
//! a member of), packed 16 bytes per UUID. The `trash` table is outside `resources` and its
//! unique indexes, so a POST of the same userName / displayName succeeds meanwhile. `restore`
//! puts it back under the same id with a version above the feed's revision of its delete, its
//! memberships with the groups and members that still exist, and the feed's changes for all of
//! it, in one transaction. `purge` drops what is older than `trash.retention_days`.

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::query::fold;
use super::resources::{self, ChangeOp, MemberDelta, Stored};
use super::{Result, StoreError};
use crate::domain::{ResourceId, TenantId, Timestamp, Version};
use crate::scim::schema::ResourceKind;

/// Most restored members one feed change carries (the default `limits.max_members_per_request`:
/// what a change made by a request carries at most).
const MEMBERS_PER_CHANGE: usize = 10_000;

/// The memberships of a resource about to be deleted, as ids: read before its row goes (its
/// membership rows go with it).
pub(super) struct Memberships {
    members: Vec<String>,
    groups: Vec<String>,
}

impl Memberships {
    /// The member rows that go with the resource: a group's members and the groups it is in.
    pub(super) fn rows(&self) -> i64 {
        (self.members.len() + self.groups.len()) as i64
    }
}

/// Read what `keep` will keep of `old`'s memberships: a group's members, the groups it is in.
pub(super) fn memberships(conn: &Connection, old: &Stored) -> Result<Memberships> {
    let ids = |sql: &str| -> Result<Vec<String>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([old.seq], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    };
    let members = match old.kind {
        ResourceKind::Group => ids(
            "SELECT r.id FROM members m JOIN resources r ON r.seq = m.member_seq \
             WHERE m.group_seq = ?1 ORDER BY r.seq",
        )?,
        ResourceKind::User => Vec::new(),
    };
    let groups = ids(
        "SELECT g.id FROM members m JOIN resources g ON g.seq = m.group_seq \
         WHERE m.member_seq = ?1 ORDER BY g.seq",
    )?;
    Ok(Memberships { members, groups })
}

/// Put a deleted resource into the trash, with its memberships: in the DELETE's transaction,
/// after its rows went, so the trash row takes pages they freed. A full database never makes
/// a DELETE fail (deleting is how an administrator makes room): then the resource is not
/// kept, and a warning says so.
pub(super) fn keep(
    conn: &Connection,
    tenant: &TenantId,
    old: &Stored,
    kept: Memberships,
) -> Result<()> {
    if !room_for(conn, old, &kept)? {
        tracing::warn!(
            id = %old.id,
            "the database is at its size limit: the deleted resource was not kept in the trash"
        );
        return Ok(());
    }
    conn.execute_batch("SAVEPOINT trash_keep")?;
    match insert(conn, tenant, old, &kept) {
        Ok(()) => {
            conn.execute_batch("RELEASE trash_keep")?;
            Ok(())
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO trash_keep; RELEASE trash_keep")?;
            if matches!(e, StoreError::Full) {
                tracing::warn!(
                    id = %old.id,
                    "the database is full: the deleted resource was not kept in the trash"
                );
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

/// Pages the rest of a DELETE's transaction may still need once the trash row is written (its
/// change rows, provisioning-log row and history): 256 KiB at SQLite's 4 KiB pages.
const RESERVE_PAGES: i64 = 64;

/// Whether the database can take the trash row and still leave `RESERVE_PAGES`: free pages plus
/// the growth its size limit (`max_page_count`) allows. At the limit, a DELETE frees space
/// instead of moving it into the trash.
fn room_for(conn: &Connection, old: &Stored, kept: &Memberships) -> Result<bool> {
    let (pages, max_pages, free, page_size): (i64, i64, i64, i64) = conn
        .prepare_cached(
            "SELECT p.page_count, m.max_page_count, f.freelist_count, s.page_size \
             FROM pragma_page_count() p, pragma_max_page_count() m, \
             pragma_freelist_count() f, pragma_page_size() s",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let bytes = old.doc.to_string().len() + 16 * (kept.members.len() + kept.groups.len());
    let needed = bytes as i64 / page_size.max(512) + 1 + RESERVE_PAGES;
    Ok(max_pages.saturating_sub(pages).saturating_add(free) >= needed)
}

fn insert(conn: &Connection, tenant: &TenantId, old: &Stored, kept: &Memberships) -> Result<()> {
    let name = match old.kind {
        ResourceKind::User => old.doc.get("userName"),
        ResourceKind::Group => old.doc.get("displayName"),
    }
    .and_then(Value::as_str)
    .map(fold);
    conn.prepare_cached(
        "INSERT OR REPLACE INTO trash (tenant, kind, id, name_key, version, created, deleted, doc, \
         members, member_count, groups, group_count) \
         VALUES ((SELECT key FROM tenants WHERE id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        tenant,
        resources::kind_str(old.kind),
        old.id,
        name,
        old.version,
        old.created,
        Timestamp::now(),
        serde_json::to_string(&old.doc)?,
        pack(&kept.members)?,
        kept.members.len() as i64,
        pack(&kept.groups)?,
        kept.groups.len() as i64,
    ])?;
    Ok(())
}

/// Ids packed for the trash: 16 bytes each when every id is a UUID in its canonical text (all
/// ids this server makes), else a JSON array. None for no ids.
fn pack(ids: &[String]) -> Result<Option<SqlValue>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(ids.len() * 16);
    for id in ids {
        match uuid::Uuid::parse_str(id) {
            Ok(u) if u.hyphenated().to_string() == *id => bytes.extend_from_slice(u.as_bytes()),
            _ => return Ok(Some(SqlValue::Text(serde_json::to_string(ids)?))),
        }
    }
    Ok(Some(SqlValue::Blob(bytes)))
}

/// The ids `pack` stored.
fn unpack(v: ValueRef<'_>) -> Result<Vec<String>> {
    Ok(match v {
        ValueRef::Blob(b) => b
            .chunks_exact(16)
            .filter_map(|c| uuid::Uuid::from_slice(c).ok())
            .map(|u| u.hyphenated().to_string())
            .collect(),
        ValueRef::Text(t) => serde_json::from_slice(t)?,
        _ => Vec::new(),
    })
}

/// A resource in the trash, as `trash list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Trashed {
    pub tenant: String,
    #[serde(rename = "resourceType")]
    pub kind: String,
    pub id: String,
    /// userName (users) or displayName (groups).
    pub name: Option<String>,
    pub deleted: String,
    /// Its version when deleted.
    pub version: i64,
    /// A group's members when deleted.
    pub members: i64,
    /// The groups it was a member of when deleted.
    pub groups: i64,
}

/// What is in the trash (of one tenant, or all), the most recently deleted first.
pub fn list(conn: &Connection, tenant: Option<&TenantId>) -> Result<Vec<Trashed>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.name, x.kind, x.id, x.doc, x.deleted, x.version, x.member_count, x.group_count \
         FROM trash x JOIN tenants t ON t.key = x.tenant \
         WHERE ?1 IS NULL OR t.id = ?1 ORDER BY x.deleted DESC, x.seq DESC",
    )?;
    let rows = stmt.query_map(params![tenant], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, i64>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, i64>(7)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (tenant, kind, id, doc, deleted, version, members, groups) = row?;
        let doc: Value = serde_json::from_str(&doc)?;
        let attr = if kind == "Group" {
            "displayName"
        } else {
            "userName"
        };
        out.push(Trashed {
            tenant,
            name: doc.get(attr).and_then(Value::as_str).map(str::to_string),
            kind,
            id,
            deleted,
            version,
            members,
            groups,
        });
    }
    Ok(out)
}

/// What `restore` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    Restored(Restored),
    /// No resource with this id in the trash (of that tenant).
    NotInTrash,
    /// A live resource holds its userName / displayName now.
    Taken {
        attribute: &'static str,
        value: String,
        by: String,
    },
}

/// A resource back from the trash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Restored {
    pub tenant: String,
    #[serde(skip)]
    pub tenant_id: String,
    #[serde(rename = "resourceType")]
    pub kind: String,
    pub id: String,
    pub name: Option<String>,
    pub version: i64,
    /// Memberships given back (a group's members, and groups it is again a member of).
    pub members_restored: usize,
    pub groups_restored: usize,
    /// Memberships not given back: the member or group no longer exists.
    pub members_gone: usize,
    pub groups_gone: usize,
}

/// Put resource `id` back from the trash of `tenant` (any tenant when None), and log it in the
/// provisioning log (method `RESTORE`, no credential) with its history. Call inside one
/// transaction (the CLI's `BEGIN IMMEDIATE`): the resource, its memberships, the feed's changes
/// and its log row commit together or not at all.
pub fn restore(conn: &Connection, tenant: Option<&TenantId>, id: &str) -> Result<Restore> {
    super::history::begin();
    let outcome = restore_at(conn, tenant, id, Timestamp::now())?;
    if let Restore::Restored(r) = &outcome {
        let entry = super::request_log::Entry {
            at: Timestamp::now().to_rfc3339(),
            request_id: format!("cli-{}", uuid::Uuid::now_v7()),
            tenant_id: Some(r.tenant_id.clone()),
            token_id: None,
            method: "RESTORE".into(),
            path: "grouptalk-scim trash restore".into(),
            resource_type: Some(r.kind.clone()),
            resource_id: Some(r.id.clone()),
            status: 200,
            scim_type: None,
            duration_ms: 0,
            notes: vec!["restored from the trash".into()],
            detail: None,
            body: None,
        };
        let seq = super::request_log::insert(conn, &entry)?;
        super::history::finish(conn, seq)?;
    }
    Ok(outcome)
}

fn restore_at(
    conn: &Connection,
    tenant: Option<&TenantId>,
    id: &str,
    now: Timestamp,
) -> Result<Restore> {
    let row = conn
        .prepare_cached(
            "SELECT x.seq, t.id, t.name, x.kind, x.version, x.created, x.doc, x.members, x.groups \
             FROM trash x JOIN tenants t ON t.key = x.tenant \
             WHERE x.id = ?1 AND (?2 IS NULL OR t.id = ?2)",
        )?
        .query_row(params![id, tenant], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, TenantId>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Version>(4)?,
                r.get::<_, Timestamp>(5)?,
                r.get::<_, String>(6)?,
                r.get_ref(7)?.into(),
                r.get_ref(8)?.into(),
            ))
        })
        .optional()?;
    let Some((trash_seq, tenant, tenant_name, kind, version, created, doc, members, groups)) = row
    else {
        return Ok(Restore::NotInTrash);
    };
    let (members, groups): (SqlValue, SqlValue) = (members, groups);
    let kind = resources::kind_from(&kind);
    let doc: Value = serde_json::from_str(&doc)?;
    let ex = resources::extract(&doc);
    // The same check a create makes, but naming the holder.
    let (attribute, value, sql) = match kind {
        ResourceKind::User => (
            "userName",
            ex.user_name.clone(),
            "SELECT id FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) \
             AND kind = 'User' AND user_name_key = ?2",
        ),
        ResourceKind::Group => (
            "displayName",
            ex.display_name.clone(),
            "SELECT id FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) \
             AND kind = 'Group' AND display_name_key = ?2",
        ),
    };
    if let Some(value) = value {
        let holder: Option<String> = conn
            .prepare_cached(sql)?
            .query_row(params![tenant, fold(&value)], |r| r.get(0))
            .optional()?;
        if let Some(by) = holder {
            return Ok(Restore::Taken {
                attribute,
                value,
                by,
            });
        }
    }
    // Above the feed's revision of its delete (its version + 1): a consumer that remembers the
    // delete by revision takes the restore as newer.
    let version = Version(version.0 + 2);
    let rid = ResourceId::new(id);
    let seq = resources::insert_row(conn, &tenant, kind, &rid, &ex, &doc, version, created, now)?;
    let seq_of = |member: &str| -> Result<Option<i64>> {
        Ok(conn
            .prepare_cached(
                "SELECT seq FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND id = ?2",
            )?
            .query_row(params![tenant, member], |r| r.get(0))
            .optional()?)
    };
    let mut insert_member = conn
        .prepare_cached("INSERT OR IGNORE INTO members (group_seq, member_seq) VALUES (?1, ?2)")?;
    // A group's members that still exist. The feed carries them at most `MEMBERS_PER_CHANGE`
    // per change: the `create` with the first ones, then an `update` (one more version) for
    // each further batch — a 100,000-member group is never one 4 MB change.
    let member_ids = unpack(ValueRef::from(&members))?;
    let mut batches = vec![MemberDelta::default()];
    let mut in_batch = 0;
    let mut members_restored = 0;
    for m in &member_ids {
        if let Some(mseq) = seq_of(m)? {
            if mseq != seq && insert_member.execute(params![seq, mseq])? > 0 {
                if in_batch == MEMBERS_PER_CHANGE {
                    batches.push(MemberDelta::default());
                    in_batch = 0;
                }
                if let Some(b) = batches.last_mut() {
                    b.added(m);
                }
                in_batch += 1;
                members_restored += 1;
            }
        }
    }
    let mut version = version;
    for (n, batch) in batches.iter().enumerate() {
        let op = if n == 0 {
            ChangeOp::Create
        } else {
            version = version.next();
            ChangeOp::Update
        };
        resources::record_change(conn, &tenant, kind, &rid, op, version, Some(batch), None)?;
    }
    if batches.len() > 1 {
        conn.prepare_cached("UPDATE resources SET version = ?2 WHERE seq = ?1")?
            .execute(params![seq, version])?;
    }
    let delta = batches.into_iter().next().unwrap_or_default();
    // The groups it was in that still exist: each gains it back, under a new version, with its
    // change (the member in `added`).
    let group_ids = unpack(ValueRef::from(&groups))?;
    let mut groups_restored = 0;
    let mut gained = MemberDelta::default();
    gained.added(id);
    for g in &group_ids {
        let Some(gseq) = seq_of(g)? else { continue };
        if insert_member.execute(params![gseq, seq])? == 0 {
            continue;
        }
        let (gid, gversion): (ResourceId, Version) = conn
            .prepare_cached(
                "UPDATE resources SET version = version + 1, last_modified = ?2 WHERE seq = ?1 \
                 AND kind = 'Group' RETURNING id, version",
            )?
            .query_row(params![gseq, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
        resources::record_change(
            conn,
            &tenant,
            ResourceKind::Group,
            &gid,
            ChangeOp::Update,
            gversion,
            Some(&gained),
            None,
        )?;
        groups_restored += 1;
    }
    super::counts::memberships_changed(conn, &tenant, (members_restored + groups_restored) as i64)?;
    conn.prepare_cached("DELETE FROM trash WHERE seq = ?1")?
        .execute([trash_seq])?;
    let mut d = crate::scim::diff::diff("restore", None, Some(&doc));
    if members_restored > 0 {
        let (first, _) = delta.ids();
        let first: Vec<&str> = first.iter().map(String::as_str).collect();
        let mut m = crate::scim::diff::MemberChanges::of(&first, &[]);
        m.added_count = members_restored;
        d.members = Some(m);
    }
    super::history::set_pending(d);
    Ok(Restore::Restored(Restored {
        tenant: tenant_name,
        tenant_id: tenant.to_string(),
        kind: resources::kind_str(kind).to_string(),
        id: id.to_string(),
        name: match kind {
            ResourceKind::User => ex.user_name,
            ResourceKind::Group => ex.display_name,
        },
        version: version.0,
        members_restored,
        groups_restored,
        members_gone: member_ids.len() - members_restored,
        groups_gone: group_ids.len() - groups_restored,
    }))
}

/// Drop at most `chunk` resources deleted more than `retention_days` before `now`
/// (`trash.retention_days`). Returns how many went.
pub fn purge(
    conn: &Connection,
    now: Timestamp,
    retention_days: u32,
    chunk: usize,
) -> Result<usize> {
    let before = Timestamp::from(
        time::OffsetDateTime::from_unix_timestamp(now.unix_seconds())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            - time::Duration::days(i64::from(retention_days)),
    );
    Ok(conn
        .prepare_cached(
            "DELETE FROM trash WHERE seq IN \
             (SELECT seq FROM trash WHERE deleted < ?1 ORDER BY deleted LIMIT ?2)",
        )?
        .execute(params![before, chunk.max(1) as i64])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::resource::normalise;
    use crate::scim::schema::USER_TYPE;
    use serde_json::json;

    fn days_later(days: i64) -> Timestamp {
        Timestamp::from(time::OffsetDateTime::now_utc() + time::Duration::days(days))
    }

    #[test]
    fn purge_drops_only_what_is_older_than_the_retention_in_bounded_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open_connection(&dir.path().join("t.db")).unwrap();
        let tenant = super::super::tenants::create(&conn, "a", None).unwrap().id;
        let mut ids = Vec::new();
        for i in 0..3 {
            let doc = normalise(&USER_TYPE, &json!({ "userName": format!("u{i}@x") }))
                .unwrap()
                .doc;
            let s = resources::create(&conn, &tenant, ResourceKind::User, doc, None).unwrap();
            resources::delete(&conn, &tenant, ResourceKind::User, &s.id, None).unwrap();
            ids.push(s.id);
        }
        assert_eq!(list(&conn, Some(&tenant)).unwrap().len(), 3);
        // Within the retention: nothing goes.
        assert_eq!(purge(&conn, days_later(29), 30, 100).unwrap(), 0);
        assert_eq!(purge(&conn, Timestamp::now(), 1, 100).unwrap(), 0);
        // Past it: in chunks of at most `chunk`.
        assert_eq!(purge(&conn, days_later(31), 30, 2).unwrap(), 2);
        assert_eq!(purge(&conn, days_later(31), 30, 2).unwrap(), 1);
        assert_eq!(purge(&conn, days_later(31), 30, 2).unwrap(), 0);
        assert!(list(&conn, None).unwrap().is_empty());
        assert_eq!(
            restore(&conn, None, ids[0].as_str()).unwrap(),
            Restore::NotInTrash
        );
    }

    /// A 20,001-member group: kept in 320 KB, and restored with the feed's member changes in
    /// batches of at most `MEMBERS_PER_CHANGE`, the last one at the restored version.
    #[test]
    fn a_large_group_is_kept_packed_and_restored_in_bounded_feed_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = super::super::open_connection(&dir.path().join("t.db")).unwrap();
        let tenant = super::super::tenants::create(&conn, "a", None).unwrap().id;
        let tx = conn.transaction().unwrap();
        let mut users = Vec::new();
        for i in 0..20_001 {
            let doc = normalise(&USER_TYPE, &json!({ "userName": format!("u{i}@x") }))
                .unwrap()
                .doc;
            let s = resources::create(&tx, &tenant, ResourceKind::User, doc, None).unwrap();
            users.push(s.id.to_string());
        }
        let doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "All"});
        let g = resources::create(&tx, &tenant, ResourceKind::Group, doc, None).unwrap();
        for chunk in users.chunks(10_000) {
            let members: Vec<_> = chunk.iter().map(|id| json!({ "value": id })).collect();
            let req = crate::scim::patch::parse_request(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": members}]
            }))
            .unwrap();
            resources::patch(&tx, &tenant, ResourceKind::Group, &g.id, &req, None).unwrap();
        }
        tx.commit().unwrap();
        let deleted_at = resources::get(&conn, &tenant, ResourceKind::Group, &g.id)
            .unwrap()
            .unwrap()
            .version;
        resources::delete(&conn, &tenant, ResourceKind::Group, &g.id, None).unwrap();
        let packed: i64 = conn
            .query_row("SELECT length(members) FROM trash", [], |r| r.get(0))
            .unwrap();
        assert_eq!(packed, 20_001 * 16);
        let before: i64 = conn
            .query_row("SELECT max(seq) FROM changes", [], |r| r.get(0))
            .unwrap();

        let Restore::Restored(r) = restore(&conn, Some(&tenant), g.id.as_str()).unwrap() else {
            panic!("not restored")
        };
        assert_eq!(r.members_restored, 20_001);
        assert_eq!(
            r.version,
            deleted_at.0 + 4,
            "two more batches, one version each"
        );
        let mut stmt = conn
            .prepare("SELECT operation, revision, json_array_length(added) FROM changes WHERE seq > ?1 ORDER BY seq")
            .unwrap();
        let changes: Vec<(String, i64, i64)> = stmt
            .query_map([before], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let v = deleted_at.0;
        assert_eq!(
            changes,
            vec![
                ("create".into(), v + 2, 10_000),
                ("update".into(), v + 3, 10_000),
                ("update".into(), v + 4, 1)
            ]
        );
        let back = resources::get(&conn, &tenant, ResourceKind::Group, &g.id)
            .unwrap()
            .unwrap();
        assert_eq!(back.version.0, v + 4);
        assert_eq!(resources::members(&conn, back.seq).unwrap().len(), 20_001);
    }

    /// At the database's size limit a DELETE frees space rather than filling the trash.
    #[test]
    fn at_the_size_limit_a_delete_frees_space_instead_of_keeping_the_resource() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::open_connection(&dir.path().join("t.db")).unwrap();
        let tenant = super::super::tenants::create(&conn, "a", None).unwrap().id;
        let big = |i: usize| {
            normalise(
                &USER_TYPE,
                &json!({ "userName": format!("u{i}@x"), "displayName": "x".repeat(16 * 1024) }),
            )
            .unwrap()
            .doc
        };
        // Plenty of room: kept.
        let first = resources::create(&conn, &tenant, ResourceKind::User, big(0), None).unwrap();
        resources::delete(&conn, &tenant, ResourceKind::User, &first.id, None).unwrap();
        assert_eq!(list(&conn, None).unwrap().len(), 1);
        conn.pragma_update(None, "max_page_count", 400).unwrap();
        let mut ids = Vec::new();
        let err = loop {
            match resources::create(&conn, &tenant, ResourceKind::User, big(ids.len() + 1), None) {
                Ok(s) => ids.push(s.id),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, StoreError::Full), "{err:?}");
        resources::delete(&conn, &tenant, ResourceKind::User, &ids[0], None).unwrap();
        assert_eq!(list(&conn, None).unwrap().len(), 1, "not kept at the limit");
        resources::create(&conn, &tenant, ResourceKind::User, big(9999), None)
            .expect("the delete made room");
    }

    #[test]
    fn uuid_ids_pack_into_16_bytes_and_others_into_json() {
        let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        let Some(SqlValue::Blob(b)) = pack(&ids).unwrap() else {
            panic!("not packed")
        };
        assert_eq!(b.len(), 48);
        assert_eq!(unpack(ValueRef::Blob(&b)).unwrap(), ids);
        let odd = vec!["u-1".to_string(), ids[0].to_uppercase()];
        let packed = pack(&odd).unwrap().unwrap();
        assert_eq!(unpack(ValueRef::from(&packed)).unwrap(), odd);
        assert!(pack(&[]).unwrap().is_none());
    }
}
