//! Fixtures shared by the fuzz targets in `fuzz_targets/`.
//!
//! * A stored User and Group document, produced by the real normaliser from Entra-shaped
//!   POST bodies (`docs/entra-id-behaviour.md`, "Create" and "Groups and members"), so the PATCH
//!   target starts from exactly what the store would hold.
//! * A scratch SQLite database with the real schema (`store::open_connection`, migrations and
//!   the `fold()` function), holding a tenant, two users and two groups with members, created
//!   once per fuzzing process in `$TMPDIR/grouptalk-scim-fuzz/<pid>.sqlite3`.
//!
//! Fixture setup may panic: it is test code, and a broken fixture must stop the run loudly.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::OnceLock;

use grouptalk_scim::scim::resource;
use grouptalk_scim::scim::schema::{ResourceKind, ResourceType, GROUP_TYPE, USER_TYPE};
use grouptalk_scim::store;
use rusqlite::Connection;
use serde_json::{json, Value};

/// Entra's create-user body, extended with every kind of attribute the schema has.
pub fn user_body() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "alice",
        "userName": "Alice@Contoso.com",
        "active": "True",
        "displayName": "Alice Andersson",
        "title": "Dispatcher",
        "preferredLanguage": "sv-SE",
        "emails": [
            {"primary": true, "type": "work", "value": "alice@contoso.com"},
            {"type": "home", "value": "Alice.A@example.org"}
        ],
        "phoneNumbers": [
            {"type": "mobile", "value": "+46701234567"},
            {"type": "work", "value": "+46 8 123 45 67", "primary": false}
        ],
        "addresses": [{"type": "work", "locality": "Göteborg", "country": "SE", "primary": true}],
        "roles": [{"value": "{\"id\":\"r1\",\"value\":\"25\"}", "primary": false}],
        "meta": {"resourceType": "User"},
        "name": {"familyName": "Andersson", "givenName": "Alice", "formatted": "Alice Andersson"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "costCenter": "CC-4130", "organization": "Contoso Security", "employeeNumber": "701",
            "manager": {"value": "2c2f4c3b"}
        },
        "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User": {
            "label1": "Shift A", "label2": "North"
        }
    })
}

/// A second, smaller user: disabled, no extension, non-ASCII name.
pub fn user2_body() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "externalId": "BJÖRN",
        "userName": "björn@contoso.com",
        "active": false,
        "emails": [{"type": "work", "value": "BJORN@contoso.com", "primary": true}]
    })
}

/// Entra's create-group body (`members` are not part of the document).
pub fn group_body() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Dispatch North",
        "members": [],
        "meta": {"resourceType": "Group"},
        "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group": {"description": "Night shift dispatch"}
    })
}

fn stored(rt: &'static ResourceType, body: Value) -> Value {
    match resource::normalise(rt, &body) {
        Ok(n) => n.doc,
        Err(e) => panic!("fixture body does not normalise: {e:?}"),
    }
}

/// The stored form of [`user_body`].
pub fn user_doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| stored(&USER_TYPE, user_body()))
}

/// The stored form of [`group_body`].
pub fn group_doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| stored(&GROUP_TYPE, group_body()))
}

/// The scratch database: one connection, the tenant id, and every stored resource.
pub struct Db {
    pub conn: Connection,
    pub tenant: grouptalk_scim::domain::TenantId,
    /// `(seq, kind, doc)` of every resource, for comparing SQL results with `filter::matches`.
    pub resources: Vec<(i64, ResourceKind, Value)>,
}

fn db_dir() -> PathBuf {
    std::env::temp_dir().join("grouptalk-scim-fuzz")
}

/// Remove databases left behind by fuzzing processes that are gone (libFuzzer exits without
/// running destructors).
fn remove_stale(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.split('.').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn create_db() -> Db {
    let dir = db_dir();
    std::fs::create_dir_all(&dir).expect("create fuzz db dir");
    remove_stale(&dir);
    let path = dir.join(format!("{}.sqlite3", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let conn = store::open_connection(&path).expect("open fuzz database");
    let tenant = store::tenants::create(&conn, "fuzz", None)
        .expect("create tenant")
        .id;
    let create = |kind, doc: &Value, members: Option<&[resource::MemberRef]>| {
        store::resources::create(&conn, &tenant, kind, doc.clone(), members)
            .expect("create fixture resource")
    };
    let u1 = create(ResourceKind::User, user_doc(), None);
    let u2 = create(ResourceKind::User, &stored(&USER_TYPE, user2_body()), None);
    let member = |id: &str, kind: &str| resource::MemberRef {
        value: id.to_string(),
        kind: Some(kind.to_string()),
    };
    let g1 = create(
        ResourceKind::Group,
        group_doc(),
        Some(&[
            member(u1.id.as_str(), "User"),
            member(u2.id.as_str(), "User"),
        ]),
    );
    let g2 = create(
        ResourceKind::Group,
        &json!({"displayName": "Dispatch SÖDER"}),
        Some(&[member(g1.id.as_str(), "Group")]),
    );
    let resources = [u1, u2, g1, g2]
        .into_iter()
        .map(|s| (s.seq, s.kind, s.doc))
        .collect();
    Db {
        conn,
        tenant,
        resources,
    }
}

thread_local! {
    static DB: RefCell<Option<Db>> = const { RefCell::new(None) };
}

/// Run `f` with the process's scratch database (created on first use).
pub fn with_db<R>(f: impl FnOnce(&Db) -> R) -> R {
    DB.with(|cell| {
        let mut slot = cell.borrow_mut();
        let db = slot.get_or_insert_with(create_db);
        f(db)
    })
}

/// The resource types, for targets that try an input against both.
pub const RESOURCE_TYPES: [&ResourceType; 2] = [&USER_TYPE, &GROUP_TYPE];

/// Render a stored document as GET would (fixed id and meta, no members), e.g. to check that
/// PUTting back what GET returned stores the same document.
pub fn render(rt: &'static ResourceType, doc: &Value) -> Value {
    let meta = grouptalk_scim::scim::render::Meta {
        id: "2819c223-7f76-453a-919d-413861904646",
        version: 3,
        created: "2026-01-05T10:00:00Z",
        last_modified: "2026-01-05T10:00:00Z",
        location: "https://grouptalk.example/scim/v2/Users/2819c223-7f76-453a-919d-413861904646"
            .to_string(),
    };
    grouptalk_scim::scim::render::resource(rt, doc.clone(), &meta, Vec::new())
}

/// Stored-form check shared by the `body` and `patch_apply` targets: `doc` satisfies
/// `resource::validate`, re-normalising it (as a PUT of the same attributes would) yields the
/// very same document, and so does normalising what GET renders for it (`schemas`, `id`,
/// `meta` included).
pub fn assert_stored_form(rt: &'static ResourceType, doc: &Value, what: &str) {
    if let Err(e) = resource::validate(rt, doc) {
        panic!("{what}: result fails validate ({}): {doc}", e.detail);
    }
    match resource::normalise(rt, doc) {
        Ok(n) => assert_eq!(
            &n.doc, doc,
            "{what}: re-normalising the stored document changed it"
        ),
        Err(e) => panic!(
            "{what}: re-normalising the stored document fails ({}): {doc}",
            e.detail
        ),
    }
    let rendered = render(rt, doc);
    match resource::normalise(rt, &rendered) {
        Ok(n) => assert_eq!(
            &n.doc, doc,
            "{what}: normalising the rendered resource (GET then PUT) changed it"
        ),
        Err(e) => panic!(
            "{what}: normalising the rendered resource fails ({}): {rendered}",
            e.detail
        ),
    }
}
