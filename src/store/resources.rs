//! Users and groups: one `resources` row each (document + extracted columns), side rows for
//! emails/phoneNumbers, and membership rows for groups.
//!
//! Every function takes the tenant id and every statement filters on it: a resource of another
//! tenant is indistinguishable from one that does not exist. Rows carry the tenant's integer
//! `tenants.key` (schema v4); statements map the id to it with `(SELECT key FROM tenants WHERE
//! id = ?)`, which SQLite evaluates once per statement and uses as an index constant.
//!
//! Writes check the protocol limits of the job they run in (`writer::job_limits`): values per
//! multi-valued attribute, members per request, operations per PATCH.
//!
//! The list queries (by index, and the keyset walk of cursor paging) are in `resources/list.rs`
//! and re-exported here.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::brake;
use super::counts;
use super::query::fold;
use super::writer::job_limits;
use super::{Result, StoreError};
use crate::brake::Removal;
use crate::domain::{ResourceId, TenantId, Timestamp, Version};
use crate::scim::patch::{self, MemberOp, PatchRequest};
use crate::scim::resource::MemberRef;
use crate::scim::schema::{ResourceKind, ENTERPRISE_USER};

mod list;
mod members;
pub use list::{list, list_after, KeysetPage, ListQuery};
use members::apply_member_ops;
pub(super) use members::MemberDelta;
pub use members::{groups_of, members, related_of};

/// A resource as stored: the document plus the server-owned attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub seq: i64,
    pub id: ResourceId,
    pub kind: ResourceKind,
    pub version: Version,
    pub created: Timestamp,
    pub last_modified: Timestamp,
    pub doc: Value,
}

impl Stored {
    /// The weak ETag (`meta.version`, `ETag` header).
    pub fn etag(&self) -> String {
        self.version.etag()
    }
}

/// What a request's `If-Match` asks of the current version (parsed by `http`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `*`: any current version.
    Any,
    /// One of these versions (an entity tag that is not one of ours matches none).
    OneOf(Vec<Version>),
}

impl Precondition {
    fn check(&self, current: Version) -> Result<()> {
        let holds = match self {
            Precondition::Any => true,
            Precondition::OneOf(versions) => versions.contains(&current),
        };
        if holds {
            Ok(())
        } else {
            Err(StoreError::VersionMismatch { current })
        }
    }
}

/// One member of a group as rendered: id, type and display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: ResourceId,
    pub kind: ResourceKind,
    pub display: Option<String>,
}

pub(super) fn kind_str(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "User",
        ResourceKind::Group => "Group",
    }
}

/// The kind as an SQL literal, for WHERE clauses. A bound `kind = ?` would make SQLite re-prepare
/// the statement on every execution: to decide whether the partial index
/// `resources_group_name (… WHERE kind = 'Group')` applies, the planner reads the bound value and
/// marks the statement as depending on it, so each new binding expires it (the statement cache
/// then saves nothing). The value is a constant of ours, never user input.
fn kind_sql(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "'User'",
        ResourceKind::Group => "'Group'",
    }
}

pub(super) fn kind_from(s: &str) -> ResourceKind {
    if s == "Group" {
        ResourceKind::Group
    } else {
        ResourceKind::User
    }
}

pub(super) const COLUMNS: &str =
    "r.seq, r.id, r.kind, r.version, r.created, r.last_modified, r.doc, \
                       r.external_id, r.user_name, r.display_name, r.active";

/// A `resources` row as read with `COLUMNS`.
pub(super) struct Row {
    seq: i64,
    id: ResourceId,
    kind: String,
    version: Version,
    created: Timestamp,
    last_modified: Timestamp,
    doc: String,
    external_id: Option<String>,
    user_name: Option<String>,
    display_name: Option<String>,
    active: Option<bool>,
}

pub(super) fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    from_row_at(row, 0)
}

/// A `resources` row read with `COLUMNS` starting at column `at`.
pub(super) fn from_row_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Row> {
    Ok(Row {
        seq: row.get(at)?,
        id: row.get(at + 1)?,
        kind: row.get(at + 2)?,
        version: row.get(at + 3)?,
        created: row.get(at + 4)?,
        last_modified: row.get(at + 5)?,
        doc: row.get(at + 6)?,
        external_id: row.get(at + 7)?,
        user_name: row.get(at + 8)?,
        display_name: row.get(at + 9)?,
        active: row.get(at + 10)?,
    })
}

/// The stored document plus the attributes kept in columns (see `stored_doc`), in front.
pub(super) fn to_stored(row: Row) -> Result<Stored> {
    let mut doc: Value = serde_json::from_str(&row.doc)?;
    if let Some(obj) = doc.as_object_mut() {
        let columns = [
            ("externalId", row.external_id.map(Value::from)),
            ("userName", row.user_name.map(Value::from)),
            ("displayName", row.display_name.map(Value::from)),
            ("active", row.active.map(Value::from)),
        ];
        let mut at = 0;
        for (name, value) in columns {
            if let Some(v) = value {
                if !obj.contains_key(name) {
                    obj.shift_insert(at, name.to_string(), v);
                    at += 1;
                }
            }
        }
    }
    Ok(Stored {
        seq: row.seq,
        id: row.id,
        kind: kind_from(&row.kind),
        version: row.version,
        created: row.created,
        last_modified: row.last_modified,
        doc,
    })
}

/// The document as stored: without the attributes `extract` put in columns (userName,
/// displayName, externalId, active), which `to_stored` puts back. Saves ~140 bytes a user.
pub(super) fn stored_doc(doc: &Value, ex: &Extracted) -> Result<String> {
    use serde::ser::{Serialize, SerializeMap, Serializer};
    struct Without<'a>(&'a serde_json::Map<String, Value>, &'a Extracted);
    impl Serialize for Without<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            let ex = self.1;
            let mut map = s.serialize_map(None)?;
            for (k, v) in self.0 {
                let in_column = match k.as_str() {
                    "externalId" => ex.external_id.is_some(),
                    "userName" => ex.user_name.is_some(),
                    "displayName" => ex.display_name.is_some(),
                    "active" => ex.active.is_some(),
                    _ => false,
                };
                if !in_column {
                    map.serialize_entry(k, v)?;
                }
            }
            map.end()
        }
    }
    Ok(match doc.as_object() {
        Some(obj) => serde_json::to_string(&Without(obj, ex))?,
        None => serde_json::to_string(doc)?,
    })
}

pub fn get(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    id: &ResourceId,
) -> Result<Option<Stored>> {
    // The kind is SQL text, not a parameter: see `kind_sql`.
    let row = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM resources r WHERE r.tenant = (SELECT key FROM tenants WHERE id = ?1) AND r.id = ?2 AND r.kind = {}",
            kind_sql(kind)
        ))?
        .query_row(params![tenant, id], from_row)
        .optional()?;
    row.map(to_stored).transpose()
}

fn get_required(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    id: &ResourceId,
) -> Result<Stored> {
    get(conn, tenant, kind, id)?.ok_or_else(|| StoreError::NotFound {
        kind,
        id: id.to_string(),
    })
}

/// The request's precondition, if it has one, against the stored version.
fn check_precondition(stored: &Stored, precondition: Option<&Precondition>) -> Result<()> {
    precondition.map_or(Ok(()), |p| p.check(stored.version))
}

/// Columns extracted from the document for filtering, sorting and uniqueness.
pub(super) struct Extracted {
    pub(super) user_name: Option<String>,
    pub(super) display_name: Option<String>,
    pub(super) external_id: Option<String>,
    pub(super) active: Option<bool>,
}

pub(super) fn extract(doc: &Value) -> Extracted {
    let s = |k: &str| doc.get(k).and_then(Value::as_str).map(str::to_string);
    Extracted {
        user_name: s("userName"),
        display_name: s("displayName"),
        external_id: s("externalId"),
        active: doc.get("active").and_then(Value::as_bool),
    }
}

/// 409 when another resource of the tenant already has this userName / group displayName.
fn check_unique(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    ex: &Extracted,
    self_seq: Option<i64>,
) -> Result<()> {
    let (sql, attr, value) = match kind {
        ResourceKind::User => (
            "SELECT seq FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND kind = 'User' AND user_name_key = ?2",
            "userName",
            &ex.user_name,
        ),
        ResourceKind::Group => (
            "SELECT seq FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND kind = 'Group' AND display_name_key = ?2",
            "displayName",
            &ex.display_name,
        ),
    };
    let Some(value) = value else { return Ok(()) };
    let other: Option<i64> = conn
        .prepare_cached(sql)?
        .query_row(params![tenant, fold(value)], |r| r.get(0))
        .optional()?;
    match other {
        Some(seq) if Some(seq) != self_seq => Err(StoreError::Conflict {
            attribute: attr,
            value: value.clone(),
        }),
        _ => Ok(()),
    }
}

pub(super) fn write_side_rows(conn: &Connection, seq: i64, doc: &Value) -> Result<()> {
    conn.prepare_cached("DELETE FROM multi_values WHERE owner_seq = ?1")?
        .execute([seq])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO multi_values (owner_seq, attr, type_key, value_key) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for attr in ["emails", "phoneNumbers"] {
        for el in doc
            .get(attr)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(value) = el.get("value").and_then(Value::as_str) else {
                continue;
            };
            let type_key = el.get("type").and_then(Value::as_str).map(fold);
            insert.execute(params![seq, attr, type_key, fold(value)])?;
        }
    }
    Ok(())
}

/// What a change did to a resource, as the feed names it (`changes.operation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    Create,
    Update,
    Deactivate,
    Reactivate,
    Delete,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Update => "update",
            ChangeOp::Deactivate => "deactivate",
            ChangeOp::Reactivate => "reactivate",
            ChangeOp::Delete => "delete",
        }
    }

    /// An update of `old` into `new`: a user whose `active` turns false is deactivated, one
    /// whose `active` stops being false is reactivated.
    fn of_update(old: &Value, new: &Value) -> ChangeOp {
        let inactive = |doc: &Value| doc.get("active").and_then(Value::as_bool) == Some(false);
        match (inactive(old), inactive(new)) {
            (false, true) => ChangeOp::Deactivate,
            (true, false) => ChangeOp::Reactivate,
            _ => ChangeOp::Update,
        }
    }
}

/// Record the change for the feed's log, in the transaction of the change: delivered or held
/// by the deletion brake (`brake::record`). `before` is the resource before the change.
#[allow(clippy::too_many_arguments)]
pub(super) fn record_change(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    id: &ResourceId,
    op: ChangeOp,
    revision: Version,
    members: Option<&MemberDelta>,
    before: Option<&Stored>,
) -> Result<()> {
    let (added, removed) = members.map(MemberDelta::ids).unwrap_or_default();
    let removal = match op {
        ChangeOp::Deactivate => Removal::Deactivation,
        ChangeOp::Delete => Removal::Deletion,
        _ if !removed.is_empty() => Removal::Members(removed.len()),
        _ => Removal::None,
    };
    let draft = brake::Draft {
        kind,
        id,
        op,
        revision,
        added,
        removed,
        removal,
    };
    brake::record(conn, tenant, draft, before)
}

/// Insert a resource's row and its side rows (a create, or a restore from the trash, which
/// brings back its id, version and creation time). Returns its `seq`.
#[allow(clippy::too_many_arguments)]
pub(super) fn insert_row(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    id: &ResourceId,
    ex: &Extracted,
    doc: &Value,
    version: Version,
    created: Timestamp,
    last_modified: Timestamp,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO resources (tenant, kind, id, user_name, user_name_key, display_name, display_name_key, \
         external_id, active, version, created, last_modified, doc) \
         VALUES ((SELECT key FROM tenants WHERE id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        tenant,
        kind_str(kind),
        id,
        ex.user_name,
        ex.user_name.as_deref().map(fold),
        ex.display_name,
        ex.display_name.as_deref().map(fold),
        ex.external_id,
        ex.active,
        version,
        created,
        last_modified,
        stored_doc(doc, ex)?,
    ])?;
    let seq = conn.last_insert_rowid();
    write_side_rows(conn, seq, doc)?;
    counts::resource_added(conn, tenant, kind, ex.active)?;
    Ok(seq)
}

/// Insert a new resource (and its members, for a group).
pub fn create(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    doc: Value,
    members: Option<&[MemberRef]>,
) -> Result<Stored> {
    job_limits().check_resource(kind.resource_type(), &doc, members.map(<[_]>::len))?;
    let ex = extract(&doc);
    check_unique(conn, tenant, kind, &ex, None)?;
    // Time-ordered (UUIDv7): new ids land at the end of the id indexes instead of on a random
    // page each: one page less to write per create. A millisecond timestamp and 74 random bits;
    // ids are not secrets (a tenant's data is guarded by its token, not by unguessable ids).
    let id = ResourceId::new(uuid::Uuid::now_v7().to_string());
    let now = Timestamp::now();
    let seq = insert_row(conn, tenant, kind, &id, &ex, &doc, Version::FIRST, now, now)?;
    let delta = match members {
        Some(members) => apply_member_ops(conn, tenant, seq, &[MemberOp::Add(members.to_vec())])?,
        None => MemberDelta::default(),
    };
    // A new id: nothing of it can be held.
    let (added, _) = delta.ids();
    let draft = brake::Draft {
        kind,
        id: &id,
        op: ChangeOp::Create,
        revision: Version::FIRST,
        added,
        removed: Vec::new(),
        removal: Removal::None,
    };
    brake::record_new(conn, tenant, draft)?;
    Ok(Stored {
        seq,
        id,
        kind,
        version: Version::FIRST,
        created: now,
        last_modified: now,
        doc,
    })
}

/// Store a changed document under a new version.
fn update_row(
    conn: &Connection,
    tenant: &TenantId,
    old: &Stored,
    doc: Value,
    members: &MemberDelta,
) -> Result<Stored> {
    let ex = extract(&doc);
    check_unique(conn, tenant, old.kind, &ex, Some(old.seq))?;
    let now = Timestamp::now();
    let version = old.version.next();
    conn.prepare_cached(
        "UPDATE resources SET user_name = ?2, user_name_key = ?3, display_name = ?4, display_name_key = ?5, \
         external_id = ?6, active = ?7, version = ?8, last_modified = ?9, doc = ?10 WHERE seq = ?1",
    )?
    .execute(params![
        old.seq,
        ex.user_name,
        ex.user_name.as_deref().map(fold),
        ex.display_name,
        ex.display_name.as_deref().map(fold),
        ex.external_id,
        ex.active,
        version,
        now,
        stored_doc(&doc, &ex)?,
    ])?;
    write_side_rows(conn, old.seq, &doc)?;
    let was_active = old.doc.get("active").and_then(Value::as_bool);
    counts::activity_changed(conn, tenant, old.kind, was_active, ex.active)?;
    let op = ChangeOp::of_update(&old.doc, &doc);
    record_change(
        conn,
        tenant,
        old.kind,
        &old.id,
        op,
        version,
        Some(members),
        Some(old),
    )?;
    super::history::note(op.as_str(), Some(&old.doc), Some(&doc), members);
    Ok(Stored {
        version,
        last_modified: now,
        doc,
        ..old.clone()
    })
}

/// PUT: replace the whole document (and the member list, when the body carried one).
pub fn replace(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    id: &ResourceId,
    doc: Value,
    members: Option<&[MemberRef]>,
    precondition: Option<&Precondition>,
) -> Result<Stored> {
    job_limits().check_resource(kind.resource_type(), &doc, members.map(<[_]>::len))?;
    let old = get_required(conn, tenant, kind, id)?;
    check_precondition(&old, precondition)?;
    let delta = match members {
        Some(members) => apply_member_ops(
            conn,
            tenant,
            old.seq,
            &[MemberOp::Clear, MemberOp::Add(members.to_vec())],
        )?,
        None => MemberDelta::default(),
    };
    update_row(conn, tenant, &old, doc, &delta)
}

/// PATCH: apply the operations to a copy of the document and the member rows, atomically (the
/// writer's savepoint undoes member rows if anything later fails). A PATCH that changes nothing
/// keeps the version.
pub fn patch(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    id: &ResourceId,
    req: &PatchRequest,
    precondition: Option<&Precondition>,
) -> Result<(Stored, Vec<&'static str>)> {
    let old = get_required(conn, tenant, kind, id)?;
    check_precondition(&old, precondition)?;
    let mut doc = old.doc.clone();
    let outcome = patch::apply_within(kind.resource_type(), &mut doc, req, &job_limits())?;
    let delta = apply_member_ops(conn, tenant, old.seq, &outcome.member_ops)?;
    if !outcome.changed && !delta.touched {
        return Ok((old, outcome.notes));
    }
    let stored = update_row(conn, tenant, &old, doc, &delta)?;
    Ok((stored, outcome.notes))
}

pub fn delete(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    id: &ResourceId,
    precondition: Option<&Precondition>,
) -> Result<()> {
    let old = get_required(conn, tenant, kind, id)?;
    check_precondition(&old, precondition)?;
    // The deletion brake decides before the rows go: a held delete keeps the resource's image
    // (and holds the group updates it implies, so no group shows the member gone).
    let route = brake::route_delete(conn, tenant, &old)?;
    // Into the trash (`trash`): its memberships read now, kept once its rows are gone.
    let kept = super::trash::memberships(conn, &old)?;
    super::history::note(
        ChangeOp::Delete.as_str(),
        Some(&old.doc),
        None,
        &MemberDelta::default(),
    );
    // The groups it was a member of lose a member: their `members` change, so do their version
    // (ETag) and lastModified, and each gets its change row with the member in `removed` — in
    // the same transaction.
    let now = Timestamp::now();
    let groups = conn
        .prepare_cached(
            "UPDATE resources SET version = version + 1, last_modified = ?3 \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) \
             AND seq IN (SELECT group_seq FROM members WHERE member_seq = ?2) \
             RETURNING id, version",
        )?
        .query_map(params![tenant, old.seq, now], |r| {
            Ok((r.get::<_, ResourceId>(0)?, r.get::<_, Version>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (group, version) in &groups {
        let draft = brake::Draft {
            kind: ResourceKind::Group,
            id: group,
            op: ChangeOp::Update,
            revision: *version,
            added: Vec::new(),
            removed: vec![id.to_string()],
            removal: Removal::Implied,
        };
        brake::record_implied(conn, tenant, draft, route)?;
    }
    // Memberships, side rows go with it (ON DELETE CASCADE), in the same transaction.
    let was_active = old.doc.get("active").and_then(Value::as_bool);
    counts::resource_removed(conn, tenant, old.kind, was_active, kept.rows())?;
    conn.prepare_cached("DELETE FROM resources WHERE seq = ?1")?
        .execute([old.seq])?;
    super::trash::keep(conn, tenant, &old, kept)?;
    // The revision grows with a delete too: a consumer that holds the resource sees it as newer.
    let draft = brake::Draft {
        kind,
        id,
        op: ChangeOp::Delete,
        revision: old.version.next(),
        added: Vec::new(),
        removed: Vec::new(),
        removal: Removal::Deletion,
    };
    brake::record_decided(conn, tenant, draft, route)
}

/// The manager's display name is looked up, never stored (it would go stale).
pub fn display_name(
    conn: &Connection,
    tenant: &TenantId,
    id: &ResourceId,
) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT COALESCE(display_name, user_name) FROM resources \
             WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND id = ?2",
        )?
        .query_row(params![tenant, id], |r| r.get(0))
        .optional()?
        .flatten())
}

/// The enterprise manager id of a user document, if any.
pub fn manager_id(doc: &Value) -> Option<&str> {
    doc.get(ENTERPRISE_USER)?
        .get("manager")?
        .get("value")?
        .as_str()
}
