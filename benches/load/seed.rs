//! Seeding: N users with the attributes Entra ID provisions (work email, mobile phone, name,
//! enterprise and GroupTalk extensions) and two groups (100,000 members and 10 members), written
//! through the real store code (`scim::resource::normalise` + `store::resources::create`) in
//! large transactions on one connection — the same rows, indexes and change feed as requests
//! would leave, without HTTP in the way.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use grouptalk_scim::scim::resource::{normalise, MemberRef};
use grouptalk_scim::scim::schema::{
    ResourceKind, ENTERPRISE_USER, GROUP, GROUPTALK_GROUP, GROUPTALK_USER, GROUP_TYPE, USER,
    USER_TYPE,
};
use grouptalk_scim::store::{self, resources, tenants};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const TENANT: &str = "bench";
/// Size of the large group (or half the users, when there are fewer than 200,000).
const BIG_GROUP: usize = 100_000;
const SMALL_GROUP: usize = 10;
/// Users per transaction while seeding.
const BATCH: usize = 20_000;
/// Bump when the seeded content changes, so `--reuse-seed` does not reuse an old seed.
/// 2: the seed records its change log (`changes`, `created_unix`) for the feed phases.
const FORMAT: u32 = 2;
/// A seed older than this is seeded again: its change log is what `feed_catchup` reads, and the
/// server prunes changes older than `feed.retention_days` (default 30) when no consumer holds
/// them.
const MAX_SEED_AGE_DAYS: u64 = 25;

/// What a seed produced: ids to aim requests at, and the figures the report needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seed {
    pub format: u32,
    /// `PRAGMA user_version` after migrations: a seed is stale when the schema moved on.
    pub schema_version: i64,
    pub users: usize,
    pub big_group_id: String,
    pub big_group_members: usize,
    pub small_group_id: String,
    pub small_group_members: usize,
    pub seconds: f64,
    pub users_per_second: f64,
    /// Database file size right after seeding (WAL checkpointed into the main file).
    pub db_bytes: u64,
    /// Rows in the change log after seeding: one per create and per member batch.
    pub changes: u64,
    /// When it was seeded (Unix seconds).
    pub created_unix: u64,
    /// Seed's own id list (`users.tsv`: id TAB userName), in creation order.
    #[serde(skip)]
    pub user_ids: Vec<String>,
    #[serde(skip)]
    pub user_names: Vec<String>,
}

impl Seed {
    /// Users that are in neither group: the pool member-add requests draw from.
    pub fn outsiders(&self) -> &[String] {
        &self.user_ids[self.big_group_members..]
    }
}

const GIVEN: [&str; 16] = [
    "Ava", "Liam", "Maja", "Noah", "Elsa", "Omar", "Ines", "Hugo", "Sofia", "Arvid", "Leila",
    "Mateo", "Freja", "Yusuf", "Alma", "Jonas",
];
const FAMILY: [&str; 16] = [
    "Lindqvist",
    "Okafor",
    "Nakamura",
    "Berg",
    "Haddad",
    "Kowalski",
    "Moreau",
    "Svensson",
    "Andersen",
    "Rossi",
    "Fischer",
    "Novak",
    "Costa",
    "Ivanova",
    "Murphy",
    "Dubois",
];
const DEPARTMENTS: [&str; 8] = [
    "Operations",
    "Security",
    "Logistics",
    "Maintenance",
    "Transport",
    "Facilities",
    "Retail",
    "Emergency Response",
];

/// The user a provisioning cycle would send for person `i`: the GroupTalk attribute table
/// (userName, active, displayName, name, work email, mobile, externalId, enterprise
/// costCenter/organization, GroupTalk labels) plus what Entra's default mapping adds.
pub fn user_body(i: u64, domain: &str) -> Value {
    let given = GIVEN[(i % 16) as usize];
    let family = FAMILY[((i / 16) % 16) as usize];
    let user_name = format!(
        "{}.{}.{i}@{domain}",
        given.to_lowercase(),
        family.to_lowercase()
    );
    json!({
        "schemas": [USER, ENTERPRISE_USER, GROUPTALK_USER],
        "externalId": uuid::Uuid::new_v4().to_string(),
        "userName": user_name,
        "active": true,
        "displayName": format!("{given} {family}"),
        "title": "Field Technician",
        "preferredLanguage": "en-US",
        "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
        "emails": [{"type": "work", "value": user_name, "primary": true}],
        "phoneNumbers": [{"type": "mobile", "value": format!("+46 70 {:03} {:02} {:02}", (i / 10_000) % 1000, (i / 100) % 100, i % 100)}],
        ENTERPRISE_USER: {
            "employeeNumber": format!("{:07}", i),
            "costCenter": format!("CC-{:03}", i % 200),
            "organization": "Contoso",
            "department": DEPARTMENTS[(i % 8) as usize],
        },
        GROUPTALK_USER: {
            "label1": format!("Region {}", i % 12),
            "label2": format!("Shift {}", ["A", "B", "C"][(i % 3) as usize]),
            "label3": format!("Radio {:04}", i % 5000),
        },
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn schema_version(conn: &rusqlite::Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// The schema version a fresh database gets today.
fn current_schema_version(dir: &Path) -> Result<i64> {
    let probe = dir.join("schema-probe.db");
    let _ = fs::remove_file(&probe);
    let v = schema_version(&store::open_connection(&probe)?)?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", probe.display()));
    }
    Ok(v)
}

/// Where a seed of `users` users lives.
pub fn seed_dir(work: &Path, users: usize) -> PathBuf {
    work.join(format!("seed-{users}"))
}

/// Load the seed in `dir` if it is complete and current.
pub fn load(dir: &Path, users: usize) -> Result<Option<Seed>> {
    let Ok(text) = fs::read_to_string(dir.join("seed.json")) else {
        return Ok(None);
    };
    // A seed written by an older bench (other fields) is rebuilt, not an error.
    let Ok(mut seed) = serde_json::from_str::<Seed>(&text) else {
        return Ok(None);
    };
    let age_days = unix_now().saturating_sub(seed.created_unix) / 86_400;
    if seed.format != FORMAT
        || seed.users != users
        || seed.schema_version != current_schema_version(dir)?
        || age_days > MAX_SEED_AGE_DAYS
    {
        return Ok(None);
    }
    let tsv = fs::read_to_string(dir.join("users.tsv"))?;
    for line in tsv.lines() {
        let (id, name) = line.split_once('\t').context("malformed users.tsv")?;
        seed.user_ids.push(id.to_string());
        seed.user_names.push(name.to_string());
    }
    Ok((seed.user_ids.len() == users).then_some(seed))
}

/// Create `dir/grouptalk-scim.db` with tenant `bench`, `users` users and the two groups.
pub fn create(dir: &Path, users: usize) -> Result<Seed> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir)?;
    let db = dir.join("grouptalk-scim.db");
    let started = Instant::now();
    let conn = store::open_connection(&db)?;
    // Bulk load: no fsync per commit and a large page cache. The server reopens the file with
    // its own pragmas (synchronous=FULL), so this affects the seeding speed only.
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")?;
    let tenant = tenants::create(&conn, TENANT, None)?;
    let mut ids = Vec::with_capacity(users);
    let mut names = Vec::with_capacity(users);
    conn.execute_batch("BEGIN")?;
    for i in 0..users {
        let body = user_body(i as u64, "contoso.example");
        let doc = normalise(&USER_TYPE, &body)?.doc;
        let stored = resources::create(&conn, &tenant.id, ResourceKind::User, doc, None)?;
        names.push(body["userName"].as_str().unwrap_or_default().to_string());
        ids.push(stored.id.to_string());
        if (i + 1) % BATCH == 0 {
            conn.execute_batch("COMMIT; BEGIN")?;
        }
        if (i + 1) % 100_000 == 0 {
            let s = started.elapsed().as_secs_f64();
            eprintln!("  seeded {} users ({:.0}/s)", i + 1, (i + 1) as f64 / s);
        }
    }
    const MEMBERS_PER_REQUEST: usize = 10_000;
    let big = BIG_GROUP.min(users / 2);
    let small = SMALL_GROUP.min(big);
    let group = |name: &str, members: &[String]| -> Result<String> {
        let body = json!({
            "schemas": [GROUP, GROUPTALK_GROUP],
            "displayName": name,
            "externalId": uuid::Uuid::new_v4().to_string(),
            GROUPTALK_GROUP: {"description": format!("{name} (bench)")},
        });
        let doc = normalise(&GROUP_TYPE, &body)?.doc;
        // In requests of at most MEMBERS_PER_REQUEST members, as the server takes them
        // (`limits.max_members_per_request`): the first with the create, the rest as PATCH adds.
        let mut chunks = members.chunks(MEMBERS_PER_REQUEST);
        let refs: Vec<MemberRef> = chunks
            .next()
            .unwrap_or_default()
            .iter()
            .map(|id| MemberRef {
                value: id.clone(),
                kind: None,
            })
            .collect();
        let g = resources::create(&conn, &tenant.id, ResourceKind::Group, doc, Some(&refs))?;
        for chunk in chunks {
            let values: Vec<serde_json::Value> =
                chunk.iter().map(|id| json!({"value": id})).collect();
            let op = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": values}],
            });
            let req = grouptalk_scim::scim::patch::parse_request(&op)?;
            resources::patch(&conn, &tenant.id, ResourceKind::Group, &g.id, &req, None)?;
        }
        Ok(g.id.to_string())
    };
    let big_group_id = group("All field staff", &ids[..big])?;
    let small_group_id = group("Night shift dispatch", &ids[..small])?;
    conn.execute_batch("COMMIT")?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    let seconds = started.elapsed().as_secs_f64();
    let schema_version = schema_version(&conn)?;
    let changes: i64 = conn.query_row("SELECT count(*) FROM changes", [], |r| r.get(0))?;
    drop(conn);
    let db_bytes = fs::metadata(&db)?.len()
        + fs::metadata(dir.join("grouptalk-scim.db-wal")).map_or(0, |m| m.len());

    let mut tsv = String::with_capacity(users * 80);
    for (id, name) in ids.iter().zip(&names) {
        let _ = writeln!(tsv, "{id}\t{name}");
    }
    fs::write(dir.join("users.tsv"), tsv)?;
    let seed = Seed {
        format: FORMAT,
        schema_version,
        users,
        big_group_id,
        big_group_members: big,
        small_group_id,
        small_group_members: small,
        seconds,
        users_per_second: users as f64 / seconds,
        db_bytes,
        changes: changes as u64,
        created_unix: unix_now(),
        user_ids: ids,
        user_names: names,
    };
    fs::write(dir.join("seed.json"), serde_json::to_string_pretty(&seed)?)?;
    Ok(seed)
}
