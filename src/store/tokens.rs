//! Token records: which bearer tokens exist, for which tenant, and whether they are revoked.
//!
//! The token text itself is never stored: a JWT carries its id (`jti`), and this table answers
//! "is that id known, unexpired and not revoked?" on every request. Each token has its scopes
//! (`scim` unless issued with `--scope`; schema v5), checked with the rest on every request.

use rusqlite::{params, Connection, OptionalExtension};

use super::Result;
use crate::domain::{Scopes, TenantId, Timestamp, TokenId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: TokenId,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub label: Option<String>,
    pub scopes: Scopes,
    pub created: Timestamp,
    pub expires: Option<Timestamp>,
    pub revoked: Option<Timestamp>,
    pub last_used: Option<Timestamp>,
}

const SELECT: &str =
    "SELECT t.id, t.tenant_id, n.name, t.label, t.created, t.expires, t.revoked, t.last_used, \
     t.scopes FROM tokens t JOIN tenants n ON n.id = t.tenant_id";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        tenant_name: row.get(2)?,
        label: row.get(3)?,
        scopes: row.get(8)?,
        created: row.get(4)?,
        expires: row.get(5)?,
        revoked: row.get(6)?,
        last_used: row.get(7)?,
    })
}

pub fn insert(
    conn: &Connection,
    id: &TokenId,
    tenant_id: &TenantId,
    label: Option<&str>,
    created: Timestamp,
    expires: Option<Timestamp>,
    scopes: Scopes,
) -> Result<()> {
    conn.execute(
        "INSERT INTO tokens (id, tenant_id, label, created, expires, scopes) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, tenant_id, label, created, expires, scopes],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &TokenId) -> Result<Option<TokenRecord>> {
    Ok(conn
        .prepare_cached(&format!("{SELECT} WHERE t.id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// What a request's authentication needs to know of a token (see `auth::Claimed::confirm`).
pub struct TokenState {
    pub tenant_id: TenantId,
    pub scopes: Scopes,
    pub revoked: bool,
}

/// The per-request lookup: three columns, one statement text (cached), no row mapping to spare.
pub fn state(conn: &Connection, id: &TokenId) -> Result<Option<TokenState>> {
    Ok(conn
        .prepare_cached(
            "SELECT t.tenant_id, t.revoked IS NOT NULL, t.scopes FROM tokens t \
             JOIN tenants n ON n.id = t.tenant_id WHERE t.id = ?1",
        )?
        .query_row([id], |r| {
            Ok(TokenState {
                tenant_id: r.get(0)?,
                scopes: r.get(2)?,
                revoked: r.get(1)?,
            })
        })
        .optional()?)
}

pub fn list(conn: &Connection, tenant_name: Option<&str>) -> Result<Vec<TokenRecord>> {
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE (?1 IS NULL OR n.name = ?1) ORDER BY n.name, t.created"
    ))?;
    let rows = stmt.query_map([tenant_name], from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Mark a token revoked. Returns false when no such token exists.
pub fn revoke(conn: &Connection, id: &TokenId) -> Result<bool> {
    let n = conn.execute(
        "UPDATE tokens SET revoked = COALESCE(revoked, ?2) WHERE id = ?1",
        params![id, Timestamp::now()],
    )?;
    Ok(n > 0)
}

pub fn touch(conn: &Connection, id: &TokenId, at: Timestamp) -> Result<()> {
    conn.execute(
        "UPDATE tokens SET last_used = ?2 WHERE id = ?1",
        params![id, at],
    )?;
    Ok(())
}

/// Tokens that are not revoked (expired ones included: they were signed with the current key).
pub fn count_active(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM tokens WHERE revoked IS NULL",
        [],
        |r| r.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scope;
    use crate::store::{open_connection, tenants};

    #[test]
    fn a_tokens_scopes_are_stored_and_read_back_by_every_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("t.db")).unwrap();
        let acme = tenants::create(&conn, "acme", None).unwrap().id;
        let feed = Scopes::default().with(Scope::FeedRead);
        let (a, b) = (TokenId::new("a"), TokenId::new("b"));
        insert(&conn, &a, &acme, None, Timestamp::now(), None, feed).unwrap();
        insert(&conn, &b, &acme, None, Timestamp::now(), None, Scopes::SCIM).unwrap();
        assert_eq!(get(&conn, &a).unwrap().unwrap().scopes, feed);
        assert_eq!(state(&conn, &a).unwrap().unwrap().scopes, feed);
        assert_eq!(state(&conn, &b).unwrap().unwrap().scopes, Scopes::SCIM);
        let listed: Vec<Scopes> = list(&conn, None)
            .unwrap()
            .iter()
            .map(|t| t.scopes)
            .collect();
        assert!(listed.contains(&feed) && listed.contains(&Scopes::SCIM));
    }
}
