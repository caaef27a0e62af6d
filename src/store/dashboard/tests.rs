//! The dashboard's store: the maintained counts agree with counting after every kind of write,
//! the hourly request counts follow the provisioning log, and every statement the page runs is
//! answered from an index (no table scan that grows with the directory).

use rusqlite::Connection;
use serde_json::json;

use super::*;
use crate::domain::ResourceId;
use crate::scim::resource::{normalise, MemberRef};
use crate::scim::schema::{ResourceKind, GROUP_TYPE, USER_TYPE};
use crate::store::request_log::{self, Entry};
use crate::store::{open_connection, resources, stats, tenants};

fn db() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = open_connection(&dir.path().join("t.db")).unwrap();
    (dir, conn)
}

fn user(conn: &Connection, tenant: &TenantId, name: &str, active: bool) -> String {
    let n = normalise(&USER_TYPE, &json!({"userName": name, "active": active})).unwrap();
    resources::create(conn, tenant, ResourceKind::User, n.doc, None)
        .unwrap()
        .id
        .to_string()
}

fn group(conn: &Connection, tenant: &TenantId, name: &str, members: &[&String]) -> String {
    let n = normalise(&GROUP_TYPE, &json!({"displayName": name})).unwrap();
    let refs: Vec<MemberRef> = members
        .iter()
        .map(|m| MemberRef {
            value: m.to_string(),
            kind: None,
        })
        .collect();
    resources::create(conn, tenant, ResourceKind::Group, n.doc, Some(&refs))
        .unwrap()
        .id
        .to_string()
}

fn maintained(conn: &Connection, tenant: &TenantId) -> TenantCounts {
    let key: i64 = conn
        .query_row("SELECT key FROM tenants WHERE id = ?1", [tenant], |r| {
            r.get(0)
        })
        .unwrap();
    counts(conn, key).unwrap()
}

fn assert_agree(conn: &Connection, tenant: &TenantId, step: &str) {
    assert_eq!(
        maintained(conn, tenant),
        stats::tenant_counts(conn, tenant).unwrap(),
        "after {step}"
    );
}

/// A PATCH through the store, as the SCIM handler runs it.
fn patch(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    id: &str,
    ops: serde_json::Value,
) {
    let req = crate::scim::patch::parse_request(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": ops
    }))
    .unwrap();
    resources::patch(conn, tenant, kind, &ResourceId::new(id), &req, None).unwrap();
}

#[test]
fn maintained_counts_agree_with_counting_after_every_kind_of_write() {
    let (_dir, conn) = db();
    let a = tenants::create(&conn, "a", None).unwrap().id;
    let b = tenants::create(&conn, "b", None).unwrap().id;
    assert_agree(&conn, &a, "nothing");
    let u1 = user(&conn, &a, "one@example.com", true);
    let u2 = user(&conn, &a, "two@example.com", false);
    let u3 = user(&conn, &a, "three@example.com", true);
    let u4 = user(&conn, &a, "four@example.com", true);
    user(&conn, &b, "one@example.com", true);
    assert_agree(&conn, &a, "creates");
    let g1 = group(&conn, &a, "G1", &[&u1, &u2, &u3]);
    let g2 = group(&conn, &a, "G2", &[&u1]);
    assert_agree(&conn, &a, "groups with members");
    assert_eq!(maintained(&conn, &a).memberships, 4);
    // Deactivate and reactivate (PUT replaces the row's `active`; PATCH sets it).
    let body = normalise(
        &USER_TYPE,
        &json!({"userName": "one@example.com", "active": false}),
    )
    .unwrap()
    .doc;
    resources::replace(
        &conn,
        &a,
        ResourceKind::User,
        &ResourceId::new(&u1),
        body,
        None,
        None,
    )
    .unwrap();
    assert_agree(&conn, &a, "deactivating by PUT");
    let active = |v: bool| json!([{"op": "replace", "path": "active", "value": v}]);
    patch(&conn, &a, ResourceKind::User, &u2, active(true));
    assert_agree(&conn, &a, "activating by PATCH");
    patch(&conn, &a, ResourceKind::User, &u2, active(true));
    assert_agree(&conn, &a, "a PATCH that changes nothing");
    patch(
        &conn,
        &a,
        ResourceKind::User,
        &u3,
        json!([{"op": "remove", "path": "active"}]),
    );
    assert_agree(&conn, &a, "removing `active`");
    // Members added (one already there) and removed by PATCH, replaced by PUT.
    patch(
        &conn,
        &a,
        ResourceKind::Group,
        &g2,
        json!([{"op": "add", "path": "members", "value": [{"value": u1}, {"value": u4}]}]),
    );
    assert_agree(&conn, &a, "adding members");
    patch(
        &conn,
        &a,
        ResourceKind::Group,
        &g1,
        json!([{"op": "remove", "path": format!("members[value eq \"{u3}\"]")}]),
    );
    assert_agree(&conn, &a, "removing a member");
    let body = normalise(&GROUP_TYPE, &json!({"displayName": "G2"}))
        .unwrap()
        .doc;
    let refs = [MemberRef {
        value: u4.clone(),
        kind: None,
    }];
    resources::replace(
        &conn,
        &a,
        ResourceKind::Group,
        &ResourceId::new(&g2),
        body,
        Some(&refs),
        None,
    )
    .unwrap();
    assert_agree(&conn, &a, "replacing the members");
    // A member user deleted (its memberships go with it), a group deleted, both restored.
    resources::delete(&conn, &a, ResourceKind::User, &ResourceId::new(&u2), None).unwrap();
    assert_agree(&conn, &a, "deleting a member user");
    resources::delete(&conn, &a, ResourceKind::Group, &ResourceId::new(&g1), None).unwrap();
    assert_agree(&conn, &a, "deleting a group with members");
    crate::store::trash::restore(&conn, Some(&a), &u2).unwrap();
    assert_agree(&conn, &a, "restoring the user (not into the deleted group)");
    crate::store::trash::restore(&conn, Some(&a), &g1).unwrap();
    assert_agree(&conn, &a, "restoring the group with its members");
    assert_eq!(maintained(&conn, &a).memberships, 2);
    resources::delete(&conn, &a, ResourceKind::Group, &ResourceId::new(&g2), None).unwrap();
    resources::delete(&conn, &a, ResourceKind::Group, &ResourceId::new(&g1), None).unwrap();
    assert_agree(&conn, &a, "deleting the last groups");
    assert_agree(&conn, &b, "all of it, in the other tenant");
    let c = maintained(&conn, &a);
    assert_eq!(
        (c.users, c.active_users, c.groups, c.memberships),
        (4, 2, 0, 0)
    );
}

fn entry(at: &str, tenant: &TenantId, status: u16, resource: Option<&str>) -> Entry {
    Entry {
        at: at.into(),
        request_id: "r".into(),
        tenant_id: Some(tenant.as_str().to_string()),
        token_id: None,
        method: "POST".into(),
        path: "/api/scim/Users".into(),
        resource_type: Some("User".into()),
        resource_id: resource.map(str::to_string),
        status,
        scim_type: (status == 409).then(|| "uniqueness".to_string()),
        duration_ms: 1,
        notes: Vec::new(),
        detail: (status >= 400).then(|| "userName is taken".to_string()),
        body: None,
    }
}

#[test]
fn hourly_counts_and_failures_follow_the_log_and_age_out_with_it() {
    let (_dir, conn) = db();
    let a = tenants::create(&conn, "a", None).unwrap().id;
    for (at, status) in [
        ("2026-12-04T06:10:00.000Z", 201),
        ("2026-12-05T06:10:00.000Z", 201),
        ("2026-12-05T06:20:00.000Z", 409),
        ("2026-12-05T07:01:00.000Z", 200),
        ("2026-12-05T07:02:00.000Z", 500),
    ] {
        request_log::insert(&conn, &entry(at, &a, status, None)).unwrap();
    }
    let page = overview(&conn, "2026-12-05T06").unwrap();
    let t = &page.tenants[0];
    let hours: Vec<_> = t
        .hours
        .iter()
        .map(|h| (h.hour.as_str(), h.class, h.n))
        .collect();
    assert_eq!(
        hours,
        [
            ("2026-12-05T06", 2, 1),
            ("2026-12-05T06", 4, 1),
            ("2026-12-05T07", 2, 1),
            ("2026-12-05T07", 5, 1)
        ]
    );
    assert_eq!(
        t.failures.iter().map(|f| f.status).collect::<Vec<_>>(),
        [500, 409]
    );
    assert_eq!(t.failures[1].scim_type.as_deref(), Some("uniqueness"));
    assert_eq!(
        t.last_request.map(|t| t.to_string()).as_deref(),
        Some("2026-12-05T07:02:00Z")
    );
    request_log::prune(&conn, "2026-12-05T00:00:00Z", 1000, 1000).unwrap();
    let left: i64 = conn
        .query_row(
            "SELECT count(*) FROM request_hours WHERE hour < '2026-12-05'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn history_finds_a_resource_by_user_name_id_or_deleted_id() {
    let (_dir, conn) = db();
    let a = tenants::create(&conn, "a", None).unwrap().id;
    let id = user(&conn, &a, "Erin@Example.com", true);
    request_log::insert(
        &conn,
        &entry("2026-12-05T07:00:00.000Z", &a, 201, Some(&id)),
    )
    .unwrap();
    let by_name = history(&conn, "erin@example.COM").unwrap();
    assert_eq!(by_name.matches.len(), 1);
    assert_eq!(by_name.matches[0].name.as_deref(), Some("Erin@Example.com"));
    assert_eq!(by_name.changes.len(), 1);
    assert_eq!(by_name.changes[0].operation, "create");
    assert_eq!(by_name.requests.len(), 1);
    assert_eq!(history(&conn, &id).unwrap(), by_name);
    resources::delete(&conn, &a, ResourceKind::User, &ResourceId::new(&id), None).unwrap();
    let gone = history(&conn, &id).unwrap();
    assert!(gone.matches.is_empty());
    assert_eq!(
        gone.changes
            .iter()
            .map(|c| c.operation.as_str())
            .collect::<Vec<_>>(),
        ["delete", "create"]
    );
    assert!(history(&conn, "nobody").unwrap().changes.is_empty());
}

/// Every statement of this module, with its parameters' shape, must be answered by index
/// searches only: `SCAN` of a table would grow with the directory or the log. The tenants
/// table is the one exception (one row per tenant).
#[test]
fn every_dashboard_statement_is_answered_from_indexes() {
    let (_dir, conn) = db();
    let statements = [
        "SELECT users, active_users, groups, memberships FROM tenant_counts WHERE tenant = 1",
        "SELECT at FROM request_log WHERE tenant_id = 'x' ORDER BY seq DESC LIMIT 1",
        "SELECT at FROM request_log WHERE token_id = 'x' ORDER BY seq DESC LIMIT 1",
        "SELECT id, label, scopes, expires FROM tokens WHERE tenant_id = 'x' AND revoked IS NULL ORDER BY rowid",
        "SELECT c.id, c.label, c.scopes, s.id, s.expires FROM clients c \
         LEFT JOIN client_secrets s ON s.client_id = c.id AND s.revoked IS NULL \
         WHERE c.tenant_id = 'x' AND c.revoked IS NULL ORDER BY c.rowid, s.rowid",
        "SELECT hour, class, n FROM request_hours WHERE tenant_id = 'x' AND hour >= '2026' ORDER BY hour, class",
        "SELECT at, method, path, resource_id, status, scim_type, detail FROM request_log \
         WHERE tenant_id = 'x' AND status >= 400 ORDER BY seq DESC LIMIT 10",
        "SELECT c.at, c.kind, c.resource_id, c.operation, r.user_name, r.display_name \
         FROM changes c LEFT JOIN resources r ON r.id = c.resource_id \
         WHERE c.tenant = 1 ORDER BY c.seq DESC LIMIT 10",
        "SELECT c.at, n.name, c.kind, c.resource_id, c.operation, c.revision FROM changes c \
         LEFT JOIN tenants n ON n.key = c.tenant WHERE c.resource_id = 'x' ORDER BY c.seq DESC LIMIT 50",
        "SELECT l.at, n.name, l.method, l.path, l.resource_id, l.status, l.scim_type, l.detail \
         FROM request_log l LEFT JOIN tenants n ON n.id = l.tenant_id WHERE l.resource_id = 'x' \
         ORDER BY l.seq DESC LIMIT 50",
        "SELECT n.name, r.kind, r.id, COALESCE(r.user_name, r.display_name) FROM resources r \
         JOIN tenants n ON n.key = r.tenant WHERE r.id = 'x' \
         UNION ALL SELECT n.name, r.kind, r.id, r.user_name FROM tenants n CROSS \
         JOIN resources r ON r.tenant = n.key AND r.kind = 'User' AND r.user_name_key = 'x' \
         UNION ALL SELECT n.name, r.kind, r.id, r.display_name FROM tenants n CROSS \
         JOIN resources r ON r.tenant = n.key AND r.kind = 'Group' AND r.display_name_key = 'x'",
        "SELECT count(*) FROM (SELECT 1 FROM changes x WHERE x.tenant = 1 AND x.seq > 5 LIMIT 100000)",
        "SELECT count(*) FROM held_changes h WHERE h.tenant = 1",
        "SELECT at, kind, resource_id, operation FROM held_changes WHERE tenant = 1 ORDER BY id LIMIT 20",
    ];
    for sql in statements {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for step in &plan {
            // `SCAN n`: the tenants table; `SCAN (subquery-…)`: the rows a bounded (LIMIT)
            // index search above it produced.
            let scans_data = step.starts_with("SCAN")
                && !step.starts_with("SCAN n")
                && !step.starts_with("SCAN (subquery");
            assert!(!scans_data, "{sql}\n  plan: {plan:?}");
            assert!(!step.contains("TEMP B-TREE"), "{sql}\n  plan: {plan:?}");
        }
    }
}
