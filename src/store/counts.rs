//! Each tenant's counts (`tenant_counts`: users, active users, groups, memberships), which the
//! dashboard shows and the deletion brake's threshold reads. The writes that change what they
//! count update them, in the same transaction, by the difference they already know.
//!
//! Schema v8–v11 kept them with triggers. A statement that fires a trigger writing another table
//! runs under a statement journal, which copies every page the statement touches once more:
//! on a create, the row's table and index pages. Under sustained creates the two triggers of a
//! create (this table's and the provisioning log's hourly count) took about 7 % of the server's
//! CPU; these explicit updates cost one small statement each (schema v12 drops the triggers).

use rusqlite::{params, Connection};

use super::Result;
use crate::domain::TenantId;
use crate::scim::schema::ResourceKind;

/// A resource was inserted (a create, or a restore from the trash).
pub(super) fn resource_added(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    active: Option<bool>,
) -> Result<()> {
    let (user, group) = kind_flags(kind);
    conn.prepare_cached(
        "INSERT INTO tenant_counts (tenant, users, active_users, groups) \
         VALUES ((SELECT key FROM tenants WHERE id = ?1), ?2, ?3, ?4) \
         ON CONFLICT (tenant) DO UPDATE SET users = users + excluded.users, \
         active_users = active_users + excluded.active_users, groups = groups + excluded.groups",
    )?
    .execute(params![tenant, user, user & active_flag(active), group])?;
    Ok(())
}

/// A resource is being deleted; `memberships` is the member rows that go with it (a group's
/// members, and the groups it was a member of).
pub(super) fn resource_removed(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    active: Option<bool>,
    memberships: i64,
) -> Result<()> {
    let (user, group) = kind_flags(kind);
    let change = Change {
        users: -user,
        active_users: -(user & active_flag(active)),
        groups: -group,
        memberships: -memberships,
    };
    add(conn, tenant, change)
}

/// A user's `active` went from `before` to `after` (only a change between active and not
/// active counts: absent is not active).
pub(super) fn activity_changed(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    before: Option<bool>,
    after: Option<bool>,
) -> Result<()> {
    let (user, _) = kind_flags(kind);
    let change = Change {
        active_users: user * (active_flag(after) - active_flag(before)),
        ..Change::NONE
    };
    add(conn, tenant, change)
}

/// Member rows of the tenant's groups were inserted (`delta` > 0) or deleted (< 0).
pub(super) fn memberships_changed(conn: &Connection, tenant: &TenantId, delta: i64) -> Result<()> {
    let change = Change {
        memberships: delta,
        ..Change::NONE
    };
    add(conn, tenant, change)
}

/// What a write adds to each count (negative: takes away).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Change {
    users: i64,
    active_users: i64,
    groups: i64,
    memberships: i64,
}

impl Change {
    const NONE: Change = Change {
        users: 0,
        active_users: 0,
        groups: 0,
        memberships: 0,
    };
}

/// Add `change` to the tenant's row (which exists once it has a resource); nothing to do for
/// no change.
fn add(conn: &Connection, tenant: &TenantId, change: Change) -> Result<()> {
    if change == Change::NONE {
        return Ok(());
    }
    conn.prepare_cached(
        "UPDATE tenant_counts SET users = users + ?2, active_users = active_users + ?3, \
         groups = groups + ?4, memberships = memberships + ?5 \
         WHERE tenant = (SELECT key FROM tenants WHERE id = ?1)",
    )?
    .execute(params![
        tenant,
        change.users,
        change.active_users,
        change.groups,
        change.memberships
    ])?;
    Ok(())
}

/// (is a user, is a group) as 0/1.
fn kind_flags(kind: ResourceKind) -> (i64, i64) {
    match kind {
        ResourceKind::User => (1, 0),
        ResourceKind::Group => (0, 1),
    }
}

/// Counted as active: `active` is true (absent or false is not).
fn active_flag(active: Option<bool>) -> i64 {
    i64::from(active == Some(true))
}
