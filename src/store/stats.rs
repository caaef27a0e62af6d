//! Counts for the people watching the appliance: the directory gauges `/metrics` publishes and
//! the per-tenant summary `grouptalk-scim stats` prints. Read-only; every count is one indexed
//! aggregate per tenant (or one per directory for the gauges).

use rusqlite::{params, Connection};

use super::resources::Stored;
use super::Result;
use crate::domain::{TenantId, Timestamp};
use crate::scim::schema::ResourceKind;

/// What `/metrics` reads from the database at scrape time.
pub struct DirectorySnapshot {
    /// The database file plus its WAL, in bytes.
    pub db_size: i64,
    /// (tenant name, resource kind, count).
    pub resources: Vec<(String, String, i64)>,
    /// (tenant name, group memberships).
    pub memberships: Vec<(String, i64)>,
    pub tokens: Vec<TokenActivity>,
    /// OAuth client secrets that are not revoked, of clients that are not revoked.
    pub client_secrets: Vec<SecretExpiry>,
    /// (tenant name, changes the deletion brake holds).
    pub brake_held: Vec<(String, i64)>,
}

/// An active client secret and when it expires, as unix seconds.
pub struct SecretExpiry {
    pub tenant: String,
    pub client: String,
    pub secret: String,
    pub expires_unix: i64,
}

/// A token that is not revoked, with its last recorded use and expiry as unix seconds.
pub struct TokenActivity {
    pub id: String,
    pub tenant: String,
    pub last_used_unix: Option<i64>,
    pub expires_unix: Option<i64>,
}

pub fn directory_snapshot(conn: &Connection, db: &std::path::Path) -> Result<DirectorySnapshot> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len() as i64).unwrap_or(0);
    let db_size = size(db) + size(std::path::Path::new(&wal));
    let mut stmt = conn.prepare_cached(
        "SELECT n.name, r.kind, count(*) FROM resources r JOIN tenants n ON n.key = r.tenant GROUP BY n.name, r.kind",
    )?;
    let resources = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT n.name, count(*) FROM members m JOIN resources g ON g.seq = m.group_seq \
         JOIN tenants n ON n.key = g.tenant GROUP BY n.name",
    )?;
    let memberships = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, n.name, unixepoch(t.last_used), unixepoch(t.expires) FROM tokens t \
         JOIN tenants n ON n.id = t.tenant_id WHERE t.revoked IS NULL",
    )?;
    let tokens = stmt
        .query_map([], |r| {
            Ok(TokenActivity {
                id: r.get(0)?,
                tenant: r.get(1)?,
                last_used_unix: r.get(2)?,
                expires_unix: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT n.name, c.id, s.id, unixepoch(s.expires) FROM client_secrets s \
         JOIN clients c ON c.id = s.client_id JOIN tenants n ON n.id = c.tenant_id \
         WHERE s.revoked IS NULL AND c.revoked IS NULL",
    )?;
    let client_secrets = stmt
        .query_map([], |r| {
            Ok(SecretExpiry {
                tenant: r.get(0)?,
                client: r.get(1)?,
                secret: r.get(2)?,
                expires_unix: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(DirectorySnapshot {
        db_size,
        resources,
        memberships,
        tokens,
        client_secrets,
        brake_held: super::brake::held_counts(conn)?,
    })
}

/// One tenant's directory in numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantCounts {
    pub users: i64,
    pub active_users: i64,
    pub groups: i64,
    pub memberships: i64,
}

pub fn tenant_counts(conn: &Connection, tenant_id: &TenantId) -> Result<TenantCounts> {
    let count = |sql: &str| -> Result<i64> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row([tenant_id], |r| r.get(0))?)
    };
    Ok(TenantCounts {
        users: count("SELECT count(*) FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND kind = 'User'")?,
        active_users: count("SELECT count(*) FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND kind = 'User' AND active = 1")?,
        groups: count("SELECT count(*) FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND kind = 'Group'")?,
        memberships: count(
            "SELECT count(*) FROM members m JOIN resources g ON g.seq = m.group_seq \
             WHERE g.tenant = (SELECT key FROM tenants WHERE id = ?1)",
        )?,
    })
}

/// Requests in the provisioning log since `since` (RFC 3339), as (status class 2/4/5, count).
pub fn request_classes(
    conn: &Connection,
    tenant_id: &TenantId,
    since: &str,
) -> Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT status / 100, count(*) FROM request_log WHERE tenant_id = ?1 AND at >= ?2 GROUP BY 1 ORDER BY 1",
    )?;
    let rows = stmt.query_map(params![tenant_id, since], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A tenant's token as `stats` shows it: when it last made a logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUse {
    pub id: String,
    pub label: Option<String>,
    pub last_request: Option<String>,
    pub expires: Option<String>,
    pub revoked: Option<String>,
}

pub fn token_uses(conn: &Connection, tenant_id: &TenantId) -> Result<Vec<TokenUse>> {
    let mut stmt = conn.prepare_cached(
        "SELECT k.id, k.label, (SELECT max(at) FROM request_log l WHERE l.token_id = k.id), k.expires, k.revoked \
         FROM tokens k WHERE k.tenant_id = ?1 ORDER BY k.created",
    )?;
    let rows = stmt.query_map([tenant_id], |r| {
        Ok(TokenUse {
            id: r.get(0)?,
            label: r.get(1)?,
            last_request: r.get(2)?,
            expires: r.get(3)?,
            revoked: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A tenant's OAuth client as `stats` shows it: when it last made a logged request (the
/// provisioning log names a client's requests by its id) and its secrets' expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientUse {
    pub id: String,
    pub label: Option<String>,
    pub scopes: String,
    pub revoked: bool,
    pub last_request: Option<String>,
    pub secrets: Vec<SecretUse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretUse {
    pub id: String,
    pub expires: Timestamp,
    pub revoked: bool,
}

pub fn client_uses(conn: &Connection, tenant_id: &TenantId) -> Result<Vec<ClientUse>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.label, c.scopes, c.revoked IS NOT NULL, \
         (SELECT max(at) FROM request_log l WHERE l.token_id = c.id), \
         s.id, s.expires, s.revoked IS NOT NULL \
         FROM clients c LEFT JOIN client_secrets s ON s.client_id = c.id \
         WHERE c.tenant_id = ?1 ORDER BY c.rowid, s.rowid",
    )?;
    let mut rows = stmt.query([tenant_id])?;
    let mut out: Vec<ClientUse> = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        if out.last().is_none_or(|c| c.id != id) {
            out.push(ClientUse {
                id,
                label: r.get(1)?,
                scopes: r.get(2)?,
                revoked: r.get(3)?,
                last_request: r.get(4)?,
                secrets: Vec::new(),
            });
        }
        if let (Some(secret), Some(client)) = (r.get::<_, Option<String>>(5)?, out.last_mut()) {
            client.secrets.push(SecretUse {
                id: secret,
                expires: r.get(6)?,
                revoked: r.get(7)?,
            });
        }
    }
    Ok(out)
}

/// How many members a group has (an index range count: cheap next to fetching them).
pub fn member_count(conn: &Connection, group_seq: i64) -> Result<usize> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM members WHERE group_seq = ?1")?
        .query_row([group_seq], |r| r.get(0))?;
    Ok(n as usize)
}

/// Whether a resource has more than `INLINE_RELATED` related rows (a group's members, a user's
/// groups): a count that stops early, so asking costs at most that many index steps.
pub fn related_exceeds_inline(conn: &Connection, s: &Stored) -> Result<bool> {
    let column = match s.kind {
        ResourceKind::Group => "group_seq",
        ResourceKind::User => "member_seq",
    };
    // The limit is SQL text (a constant of ours): a bound LIMIT would re-prepare every time.
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM (SELECT 1 FROM members WHERE {column} = ?1 LIMIT {})",
            INLINE_RELATED + 1
        ))?
        .query_row([s.seq], |r| r.get(0))?;
    Ok(n as usize > INLINE_RELATED)
}

/// Related rows a point read may fetch on the calling thread; more go to a blocking thread.
pub const INLINE_RELATED: usize = 100;
