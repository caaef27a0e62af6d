//! Store tests on real SQLite files: compiled filters are executed and compared by the ids they
//! return (not by SQL text), and the filters Entra uses are shown to be answered from indexes.

use crate::domain::{ResourceId, TenantId, Timestamp};
use rusqlite::Connection;
use serde_json::{json, Value};

use super::query::compile;
use super::resources::{self, ListQuery};
use super::{open_connection, tenants};
use crate::scim::filter;
use crate::scim::resource::{normalise, MemberRef};
use crate::scim::schema::{ResourceKind, GROUP_TYPE, USER_TYPE};

struct Fixture {
    _dir: tempfile::TempDir,
    conn: Connection,
    tenant: TenantId,
    other_tenant: TenantId,
}

fn user(conn: &Connection, tenant: &TenantId, body: Value) -> String {
    let n = normalise(&USER_TYPE, &body).unwrap();
    resources::create(conn, tenant, ResourceKind::User, n.doc, None)
        .unwrap()
        .id
        .to_string()
}

fn fixture() -> (Fixture, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let conn = open_connection(&dir.path().join("t.db")).unwrap();
    let tenant = tenants::create(&conn, "a", None).unwrap().id;
    let other_tenant = tenants::create(&conn, "b", None).unwrap().id;
    let ids = vec![
        user(
            &conn,
            &tenant,
            json!({"userName": "Alice@Contoso.com", "externalId": "A-1", "displayName": "Alice Andersson", "active": true,
            "title": "Dispatcher", "name": {"givenName": "Alice", "familyName": "Andersson"},
            "emails": [{"type": "work", "value": "alice@contoso.com"}, {"type": "home", "value": "a@home.example"}],
            "phoneNumbers": [{"type": "mobile", "value": "+46701234567"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"costCenter": "CC-1", "department": "Ops"},
            "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User": {"label1": "North"}}),
        ),
        user(
            &conn,
            &tenant,
            json!({"userName": "bob@contoso.com", "externalId": "a-1", "displayName": "Bob 100%_done", "active": "False",
            "emails": [{"type": "work", "value": "bob@contoso.com"}],
            "phoneNumbers": [{"type": "work", "value": "+46701234567"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"costCenter": "CC-2"}}),
        ),
        user(
            &conn,
            &tenant,
            json!({"userName": "carol@fabrikam.com", "displayName": "Carol", "title": "Medic",
            "addresses": [{"type": "work", "locality": "Malmö", "country": "SE"}]}),
        ),
    ];
    // The same data in another tenant must never show up.
    user(
        &conn,
        &other_tenant,
        json!({"userName": "Alice@Contoso.com", "externalId": "A-1", "emails": [{"type": "work", "value": "alice@contoso.com"}]}),
    );
    (
        Fixture {
            _dir: dir,
            conn,
            tenant,
            other_tenant,
        },
        ids,
    )
}

fn run(fx: &Fixture, kind: ResourceKind, text: &str) -> Vec<String> {
    let q = ListQuery {
        filter: Some(filter::parse(text).unwrap()),
        sort: None,
        start_index: 1,
        count: 1000,
    };
    let (total, rows) = resources::list(&fx.conn, &fx.tenant, kind, &q).unwrap();
    assert_eq!(total, rows.len(), "{text}");
    rows.into_iter().map(|r| r.id.to_string()).collect()
}

#[test]
fn compiled_filters_return_the_right_users() {
    let (fx, ids) = fixture();
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    let check = |f: &str, want: &[&String]| {
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(run(&fx, ResourceKind::User, f), want, "{f}");
    };
    check("userName eq \"alice@contoso.com\"", &[a]);
    check("USERNAME EQ \"ALICE@CONTOSO.COM\"", &[a]);
    check("userName ne \"alice@contoso.com\"", &[b, c]);
    check("externalId eq \"A-1\"", &[a]); // caseExact
    check("userName sw \"b\"", &[b]);
    check("userName ew \"contoso.com\"", &[a, b]);
    check("userName co \"FABRIKAM\"", &[c]);
    check("displayName co \"100%_\"", &[b]); // % and _ are literal
    check("displayName co \"%\"", &[b]);
    check("displayName sw \"_\"", &[]);
    check("externalId sw \"a\"", &[b]); // case-exact sw
    check(
        "emails[type eq \"work\"].value eq \"alice@contoso.com\"",
        &[a],
    );
    check(
        "emails[type eq \"work\" and value co \"@contoso.com\"]",
        &[a, b],
    );
    check("emails.value eq \"a@home.example\"", &[a]);
    check("emails eq \"bob@contoso.com\"", &[b]);
    check(
        "phoneNumbers[type eq \"mobile\"].value eq \"+46701234567\"",
        &[a],
    );
    check("phoneNumbers.value eq \"+46701234567\"", &[a, b]);
    check("active eq true", &[a]);
    check("active eq false", &[b]);
    check("title pr", &[a, c]);
    check("not (title pr)", &[b]);
    check("name.givenName eq \"alice\"", &[a]);
    check(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter eq \"CC-1\"",
        &[a],
    );
    check(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter gt \"CC-1\"",
        &[b],
    );
    check(
        "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User:label1 eq \"north\"",
        &[a],
    );
    check("addresses[locality eq \"malmö\"]", &[c]);
    check("addresses.country eq \"SE\"", &[c]);
    check(
        "(userName sw \"a\" or userName sw \"c\") and not (title eq \"medic\")",
        &[a],
    );
    check("meta.created gt \"2000-01-01T00:00:00Z\"", &[a, b, c]);
    check("meta.resourceType eq \"User\"", &[a, b, c]);
    check(&format!("id eq \"{a}\" or id eq \"{c}\""), &[a, c]);
    check("userName eq \"nobody\"", &[]);
}

#[test]
fn members_filters_and_groups() {
    let (fx, ids) = fixture();
    let members: Vec<MemberRef> = ids[..2]
        .iter()
        .map(|id| MemberRef {
            value: id.clone(),
            kind: None,
        })
        .collect();
    let g = resources::create(
        &fx.conn,
        &fx.tenant,
        ResourceKind::Group,
        json!({"displayName": "Dispatch"}),
        Some(&members),
    )
    .unwrap();
    let g2 = resources::create(
        &fx.conn,
        &fx.tenant,
        ResourceKind::Group,
        json!({"displayName": "Medics"}),
        None,
    )
    .unwrap();
    assert_eq!(
        run(
            &fx,
            ResourceKind::Group,
            &format!("members[value eq \"{}\"]", ids[0])
        ),
        vec![g.id.to_string()]
    );
    assert_eq!(
        run(
            &fx,
            ResourceKind::Group,
            &format!("members.value eq \"{}\"", ids[1])
        ),
        vec![g.id.to_string()]
    );
    assert_eq!(
        run(&fx, ResourceKind::Group, "displayName eq \"MEDICS\""),
        vec![g2.id.to_string()]
    );
    assert_eq!(
        run(&fx, ResourceKind::Group, "not (members pr)"),
        vec![g2.id.to_string()]
    );
    assert_eq!(
        run(
            &fx,
            ResourceKind::User,
            &format!("groups[value eq \"{}\"]", g.id)
        ),
        ids[..2].to_vec()
    );
}

#[test]
fn invalid_filters_are_rejected_not_executed() {
    for f in [
        "nosuch eq \"x\"",
        "name eq \"x\"",
        "emails[nosuch eq \"x\"]",
        "active gt true",
        "meta.location eq \"x\"",
    ] {
        let parsed = filter::parse(f).unwrap();
        let err = compile(&parsed, &USER_TYPE, &TenantId::new("t")).unwrap_err();
        assert_eq!(
            err.scim_type,
            Some(crate::scim::error::ScimType::InvalidFilter),
            "{f}"
        );
    }
}

/// The query plan of a list filter, as SQLite reports it.
fn plan(fx: &Fixture, kind: ResourceKind, text: &str) -> String {
    let rt = if kind == ResourceKind::User {
        &USER_TYPE
    } else {
        &GROUP_TYPE
    };
    let compiled = compile(&filter::parse(text).unwrap(), rt, &fx.tenant).unwrap();
    let sql = format!("EXPLAIN QUERY PLAN SELECT r.seq FROM resources r WHERE r.tenant = (SELECT key FROM tenants WHERE id = ?) AND r.kind = ? AND ({})", compiled.text);
    let mut params: Vec<rusqlite::types::Value> = vec![
        fx.tenant.to_string().into(),
        (if kind == ResourceKind::User {
            "User"
        } else {
            "Group"
        })
        .to_string()
        .into(),
    ];
    params.extend(compiled.params);
    let mut stmt = fx.conn.prepare(&sql).unwrap();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |r| {
            r.get::<_, String>(3)
        })
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

#[test]
fn entra_filters_are_answered_from_indexes() {
    let (fx, ids) = fixture();
    let _ = &fx.other_tenant;
    for (kind, f, index) in [
        (
            ResourceKind::User,
            "userName eq \"x\"".to_string(),
            "resources_user_name",
        ),
        (
            ResourceKind::User,
            "externalId eq \"x\"".to_string(),
            "resources_external_id",
        ),
        (
            ResourceKind::User,
            "id eq \"x\"".to_string(),
            "resources_id",
        ),
        (
            ResourceKind::User,
            "displayName eq \"x\"".to_string(),
            "resources_display_name",
        ),
        (
            ResourceKind::Group,
            "displayName eq \"x\"".to_string(),
            "resources_group_name",
        ),
        (
            ResourceKind::User,
            "emails[type eq \"work\"].value eq \"x\"".to_string(),
            "multi_values_lookup",
        ),
        (
            ResourceKind::User,
            "phoneNumbers[type eq \"mobile\"].value eq \"x\"".to_string(),
            "multi_values_lookup",
        ),
        (
            ResourceKind::Group,
            format!("members[value eq \"{}\"]", ids[0]),
            "members_member",
        ),
    ] {
        let p = plan(&fx, kind, &f);
        assert!(p.contains(index), "{f} should use {index}:\n{p}");
        let scans_resources = p.lines().any(|l| l.trim_start().starts_with("SCAN r"));
        assert!(!scans_resources, "{f} scans the resources table:\n{p}");
    }
}

/// A database written by schema v2 (documents that repeat the column attributes, multi_values
/// with tenant and raw value) reads back identically after the v3 migration, and its side-table
/// filters still find the user.
#[test]
fn v2_database_migrates_to_lean_schema() {
    use rusqlite_migration::{Migrations, M};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        Migrations::new(vec![
            M::up(include_str!("../../migrations/0001_init.sql")),
            M::up(include_str!("../../migrations/0002_request_log.sql")),
        ])
        .to_latest(&mut conn)
        .unwrap();
        conn.execute_batch(
            "INSERT INTO tenants (id, name, created) VALUES ('t1', 'a', '2026-01-01T00:00:00Z');
             INSERT INTO resources (seq, tenant_id, kind, id, user_name, user_name_key,
                 display_name, display_name_key, external_id, active, version, created,
                 last_modified, doc)
             VALUES (1, 't1', 'User', 'u-1', 'Alice@Contoso.com', 'alice@contoso.com', 'Alice',
                 'alice', 'A-1', 1, 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z',
                 '{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"Alice@Contoso.com\",\"externalId\":\"A-1\",\"displayName\":\"Alice\",\"active\":true,\"title\":\"Dispatcher\",\"emails\":[{\"type\":\"work\",\"value\":\"Alice@Contoso.com\"}]}');
             INSERT INTO multi_values (tenant_id, owner_seq, attr, type_key, value, value_key)
             VALUES ('t1', 1, 'emails', 'work', 'Alice@Contoso.com', 'alice@contoso.com');
             INSERT INTO resources (seq, tenant_id, kind, id, display_name, display_name_key,
                 version, created, last_modified, doc)
             VALUES (2, 't1', 'Group', 'g-1', 'Ops', 'ops', 1, '2026-01-01T00:00:00Z',
                 '2026-01-01T00:00:00Z', '{\"displayName\":\"Ops\"}');
             INSERT INTO members (tenant_id, group_seq, member_seq) VALUES ('t1', 2, 1);
             INSERT INTO changes (tenant_id, at, kind, resource_id, operation, version)
             VALUES ('t1', '2026-01-01T00:00:00Z', 'User', 'u-1', 'create', 1);",
        )
        .unwrap();
    }
    assert_eq!(super::pending_migration(&path), Some((2, 12)));
    let conn = open_connection(&path).unwrap();
    assert_eq!(super::pending_migration(&path), None);
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 12, "MIGRATION_COUNT matches the migrations");
    // The dashboard's maintained counts start from what the migrated data holds.
    let counts: (i64, i64, i64) = conn
        .query_row(
            "SELECT users, groups, memberships FROM tenant_counts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(counts, (1, 1, 1));
    let raw: String = conn
        .query_row("SELECT doc FROM resources WHERE seq = 1", [], |r| r.get(0))
        .unwrap();
    let raw: Value = serde_json::from_str(&raw).unwrap();
    for gone in ["userName", "externalId", "displayName", "active"] {
        assert!(
            raw.get(gone).is_none(),
            "{gone} still in the stored doc: {raw}"
        );
    }
    let s = resources::get(
        &conn,
        &TenantId::new("t1"),
        ResourceKind::User,
        &ResourceId::new("u-1"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(s.doc["userName"], "Alice@Contoso.com");
    assert_eq!(s.doc["externalId"], "A-1");
    assert_eq!(s.doc["displayName"], "Alice");
    assert_eq!(s.doc["active"], true);
    assert_eq!(s.doc["title"], "Dispatcher");
    assert_eq!(s.doc["emails"][0]["value"], "Alice@Contoso.com");
    let q = ListQuery {
        filter: Some(
            filter::parse("emails[type eq \"work\"].value eq \"alice@contoso.com\"").unwrap(),
        ),
        sort: None,
        start_index: 1,
        count: 10,
    };
    let (total, rows) =
        resources::list(&conn, &TenantId::new("t1"), ResourceKind::User, &q).unwrap();
    assert_eq!((total, rows[0].id.as_str()), (1, "u-1"));
    // v4: memberships, the change feed and the tenant survive the table rebuilds.
    let q = ListQuery {
        filter: Some(filter::parse("members[value eq \"u-1\"]").unwrap()),
        sort: None,
        start_index: 1,
        count: 10,
    };
    let (total, rows) =
        resources::list(&conn, &TenantId::new("t1"), ResourceKind::Group, &q).unwrap();
    assert_eq!((total, rows[0].id.as_str()), (1, "g-1"));
    // v7: the old change rows are not served; sequence numbers continue after them, and a
    // cursor from before the upgrade is older than what is retained.
    let feed: (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM changes), \
             (SELECT seq FROM sqlite_sequence WHERE name = 'changes'), \
             (SELECT pruned_through FROM feed_meta)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(feed, (0, 1, 1));
    assert_eq!(
        tenants::get(&conn, &TenantId::new("t1"))
            .unwrap()
            .unwrap()
            .name,
        "a"
    );
    let fk_on: i64 = conn
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk_on, 1, "foreign keys are enforced after migrating");
}

/// The bundled SQLite is built with the options `.cargo/config.toml` sets (memory statistics
/// off: their global mutex serialised readers under load).
#[test]
fn sqlite_is_built_without_memory_statistics() {
    let conn = Connection::open_in_memory().unwrap();
    let options: Vec<String> = conn
        .prepare("PRAGMA compile_options")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "compile options: {options:?}"
    );
}

/// Only equality on the unique or near-unique indexed attributes counts as a point lookup (run
/// without a thread hop); anything that may scan does not.
#[test]
fn point_lookups_are_the_indexed_equalities() {
    use super::query::is_point_lookup;
    let point = |rt, text: &str| is_point_lookup(&filter::parse(text).unwrap(), rt);
    assert!(point(&USER_TYPE, "userName eq \"a@b.c\""));
    assert!(point(&USER_TYPE, "UserName EQ \"a@b.c\""));
    assert!(point(
        &USER_TYPE,
        "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"a\""
    ));
    // externalId is not unique: a tenant may give thousands of users the same one.
    assert!(!point(&USER_TYPE, "externalId eq \"x\" and active eq true"));
    assert!(!point(&USER_TYPE, "externalId eq \"x\""));
    assert!(point(&USER_TYPE, "title co \"x\" and id eq \"x\""));
    assert!(point(&GROUP_TYPE, "displayName eq \"Ops\""));
    assert!(!point(&USER_TYPE, "displayName eq \"Alice\""));
    assert!(!point(&GROUP_TYPE, "userName eq \"a\""));
    assert!(!point(&USER_TYPE, "userName sw \"a\""));
    assert!(!point(&USER_TYPE, "userName ne \"a\""));
    assert!(!point(&USER_TYPE, "userName eq \"a\" or title eq \"b\""));
    assert!(!point(&USER_TYPE, "not (userName eq \"a\")"));
    assert!(!point(&USER_TYPE, "title eq \"Dispatcher\""));
    assert!(!point(
        &USER_TYPE,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq \"1\""
    ));
}

/// `totalResults` is the number of matches whatever the page: counted when the page is full or
/// not the first, taken from the page when a first page holds every match.
#[test]
fn list_totals_do_not_depend_on_the_page() {
    let (fx, _) = fixture();
    let f = filter::parse("userName co \"o\"").unwrap();
    let page = |start_index, count| {
        let q = ListQuery {
            filter: Some(f.clone()),
            sort: None,
            start_index,
            count,
        };
        let (total, rows) = resources::list(&fx.conn, &fx.tenant, ResourceKind::User, &q).unwrap();
        (total, rows.len())
    };
    assert_eq!(page(1, 10), (3, 3));
    assert_eq!(page(1, 3), (3, 3));
    assert_eq!(page(1, 2), (3, 2));
    assert_eq!(page(1, 0), (3, 0));
    assert_eq!(page(3, 10), (3, 1));
    assert_eq!(page(5, 10), (3, 0));
}

/// The shared domain types bind to SQL as the same text they render as.
#[test]
fn ids_bind_to_sql_as_their_text() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let id = TenantId::new("t-1");
    let back: TenantId = conn.query_row("SELECT ?1", [&id], |r| r.get(0)).unwrap();
    assert_eq!(back, id);
    let at = crate::domain::Timestamp::parse("2026-01-01T00:00:00.5Z").unwrap();
    let text: String = conn.query_row("SELECT ?1", [&at], |r| r.get(0)).unwrap();
    assert_eq!(text, "2026-01-01T00:00:00.5Z");
}

#[test]
fn migrating_to_v11_counts_the_removals_already_made_and_indexes_the_held_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v10.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        super::migrations().to_version(&mut conn, 10).unwrap();
        conn.execute_batch(
            "INSERT INTO tenants (id, name, created) VALUES ('t1', 'a', '2026-01-01T00:00:00Z');
             INSERT INTO changes (tenant, at, kind, resource_id, operation, revision, removals)
             VALUES ((SELECT key FROM tenants), '2026-12-05T10:00:10.5Z', 'User', 'u1',
                     'deactivate', 2, 1),
                    ((SELECT key FROM tenants), '2026-12-05T10:00:50Z', 'User', 'u2',
                     'delete', 3, 1),
                    ((SELECT key FROM tenants), '2026-12-05T10:01:00Z', 'User', 'u3',
                     'update', 2, 0);
             INSERT INTO held_changes (tenant, at, kind, resource_id, operation, revision,
                                       removed, removals)
             VALUES ((SELECT key FROM tenants), '2026-12-05T10:01:30Z', 'Group', 'g1',
                     'update', 4, '[\"u4\",\"u5\"]', 2);
             INSERT INTO held_images (tenant, resource_id, kind, seq, version, created,
                                      last_modified, doc, members)
             VALUES ((SELECT key FROM tenants), 'g1', 'Group', 7, 3, '2026-12-05T09:00:00Z',
                     '2026-12-05T09:00:00Z', '{}', '[{\"id\":\"u4\"}]');",
        )
        .unwrap();
    }
    assert_eq!(
        super::pending_migration(&path),
        Some((10, super::MIGRATION_COUNT))
    );
    let conn = open_connection(&path).unwrap();
    let minute = |at: &str| Timestamp::parse(at).unwrap().unix_seconds() / 60;
    let counts: Vec<(i64, i64, i64)> = conn
        .prepare("SELECT minute, delivered, held FROM brake_minutes ORDER BY minute")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        counts,
        vec![
            (minute("2026-12-05T10:00:00Z"), 2, 0),
            (minute("2026-12-05T10:01:00Z"), 0, 2)
        ]
    );
    let held: Vec<(String, String)> = conn
        .prepare("SELECT resource_id, member_id FROM held_removals ORDER BY member_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        held,
        vec![("g1".into(), "u4".into()), ("g1".into(), "u5".into())]
    );
    // The images move to the table with rowids as they were, one per resource.
    let image: (i64, i64, String) = conn
        .query_row(
            "SELECT seq, version, members FROM held_images WHERE resource_id = 'g1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(image, (7, 3, "[{\"id\":\"u4\"}]".to_string()));
    let again = conn.execute(
        "INSERT INTO held_images (tenant, resource_id, kind, seq, version, created, \
         last_modified, doc) SELECT tenant, resource_id, kind, seq, version, created, \
         last_modified, doc FROM held_images",
        [],
    );
    assert!(again.is_err(), "a second image of the same resource");
}

#[test]
fn migrating_to_v12_drops_the_counting_triggers_and_keeps_the_counts_they_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v11.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        super::migrations().to_version(&mut conn, 11).unwrap();
        conn.execute_batch(
            "INSERT INTO tenants (id, name, created) VALUES ('t1', 'a', '2026-01-01T00:00:00Z');
             INSERT INTO resources (tenant, kind, id, user_name, user_name_key, active, version,
                                    created, last_modified, doc)
             VALUES ((SELECT key FROM tenants), 'User', 'u1', 'a', 'a', 1, 1,
                     '2026-12-05T10:00:00Z', '2026-12-05T10:00:00Z', '{}'),
                    ((SELECT key FROM tenants), 'User', 'u2', 'b', 'b', 0, 1,
                     '2026-12-05T10:00:00Z', '2026-12-05T10:00:00Z', '{}');
             INSERT INTO resources (tenant, kind, id, display_name, display_name_key, version,
                                    created, last_modified, doc)
             VALUES ((SELECT key FROM tenants), 'Group', 'g1', 'G', 'g', 1,
                     '2026-12-05T10:00:00Z', '2026-12-05T10:00:00Z', '{}');
             INSERT INTO members (group_seq, member_seq)
             SELECT g.seq, u.seq FROM resources g, resources u
             WHERE g.kind = 'Group' AND u.kind = 'User';
             INSERT INTO request_log (at, request_id, tenant_id, method, path, status, duration_ms)
             VALUES ('2026-12-05T10:00:00.000Z', 'r1', 't1', 'POST', '/Users', 201, 1);",
        )
        .unwrap();
    }
    assert_eq!(
        super::pending_migration(&path),
        Some((11, super::MIGRATION_COUNT))
    );
    let conn = open_connection(&path).unwrap();
    let triggers: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(triggers, 0, "every counting trigger is gone");
    let counts: (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT users, active_users, groups, memberships FROM tenant_counts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        counts,
        (2, 1, 1, 2),
        "the counts the triggers kept until v11"
    );
    let hours: (String, i64, i64) = conn
        .query_row("SELECT hour, class, n FROM request_hours", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(hours, ("2026-12-05T10".to_string(), 2, 1));
}
