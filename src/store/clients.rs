//! OAuth clients and their secrets (schema v5): which clients exist, for which tenant and with
//! which scopes; which secrets each has, until when, and whether either is revoked.
//!
//! A secret is stored only as its argon2id PHC string (`auth::secrets` makes and checks it);
//! nothing here returns the hash except `grant_check`, which the token endpoint needs. The
//! per-request check of an access token is `access_state`: one statement on primary keys.
//! Revoking keeps the first time, as `tokens::revoke` does.
//! A client's workload identity federation (schema v6) is `store::federations`.

use rusqlite::{params, Connection, OptionalExtension};

use super::Result;
use crate::domain::{ClientId, Scopes, SecretId, TenantId, Timestamp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    pub id: ClientId,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub label: Option<String>,
    pub scopes: Scopes,
    pub created: Timestamp,
    pub revoked: Option<Timestamp>,
}

/// A client secret as the CLI shows it: never its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub id: SecretId,
    pub client_id: ClientId,
    pub created: Timestamp,
    pub expires: Timestamp,
    pub revoked: Option<Timestamp>,
}

const SELECT: &str = "SELECT c.id, c.tenant_id, n.name, c.label, c.scopes, c.created, c.revoked \
     FROM clients c JOIN tenants n ON n.id = c.tenant_id";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ClientRecord> {
    Ok(ClientRecord {
        id: row.get(0)?,
        tenant_id: row.get(1)?,
        tenant_name: row.get(2)?,
        label: row.get(3)?,
        scopes: row.get(4)?,
        created: row.get(5)?,
        revoked: row.get(6)?,
    })
}

const SELECT_SECRET: &str =
    "SELECT s.id, s.client_id, s.created, s.expires, s.revoked FROM client_secrets s";

fn secret_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SecretRecord> {
    Ok(SecretRecord {
        id: row.get(0)?,
        client_id: row.get(1)?,
        created: row.get(2)?,
        expires: row.get(3)?,
        revoked: row.get(4)?,
    })
}

/// A new client of `tenant` (which must exist: the tenant's name is read back with it), with a
/// fresh UUID v4 id and no secret yet.
pub fn create(
    conn: &Connection,
    tenant: &TenantId,
    label: Option<&str>,
    scopes: Scopes,
) -> Result<ClientRecord> {
    let tenant_name: String =
        conn.query_row("SELECT name FROM tenants WHERE id = ?1", [tenant], |r| {
            r.get(0)
        })?;
    let client = ClientRecord {
        id: ClientId::new(uuid::Uuid::new_v4().to_string()),
        tenant_id: tenant.clone(),
        tenant_name,
        label: label.map(str::to_string),
        scopes,
        created: Timestamp::now(),
        revoked: None,
    };
    conn.execute(
        "INSERT INTO clients (id, tenant_id, label, scopes, created) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            client.id,
            client.tenant_id,
            client.label,
            client.scopes,
            client.created
        ],
    )?;
    Ok(client)
}

/// Store a secret of `client` by its id and argon2id PHC string (the secret itself is not
/// given to the store).
pub fn add_secret(
    conn: &Connection,
    client: &ClientId,
    id: &SecretId,
    phc: &str,
    expires: Timestamp,
) -> Result<SecretRecord> {
    let secret = SecretRecord {
        id: id.clone(),
        client_id: client.clone(),
        created: Timestamp::now(),
        expires,
        revoked: None,
    };
    conn.execute(
        "INSERT INTO client_secrets (id, client_id, hash, created, expires) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            secret.id,
            secret.client_id,
            phc,
            secret.created,
            secret.expires
        ],
    )?;
    Ok(secret)
}

pub fn get(conn: &Connection, id: &ClientId) -> Result<Option<ClientRecord>> {
    Ok(conn
        .prepare_cached(&format!("{SELECT} WHERE c.id = ?1"))?
        .query_row([id], from_row)
        .optional()?)
}

/// Every client, or those of the tenant named `tenant_name`, by tenant name, oldest first.
pub fn list(conn: &Connection, tenant_name: Option<&str>) -> Result<Vec<ClientRecord>> {
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE (?1 IS NULL OR n.name = ?1) ORDER BY n.name, c.rowid"
    ))?;
    let rows = stmt.query_map([tenant_name], from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A client's secrets, oldest first (revoked and expired ones included).
pub fn secrets(conn: &Connection, client: &ClientId) -> Result<Vec<SecretRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT_SECRET} WHERE s.client_id = ?1 ORDER BY s.rowid"
    ))?;
    let rows = stmt.query_map([client], secret_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// One secret by its id (whichever client it belongs to).
pub fn get_secret(conn: &Connection, id: &SecretId) -> Result<Option<SecretRecord>> {
    Ok(conn
        .prepare_cached(&format!("{SELECT_SECRET} WHERE s.id = ?1"))?
        .query_row([id], secret_from_row)
        .optional()?)
}

/// Mark a client revoked: its access tokens fail their next request, whatever secret issued
/// them. Returns false when no such client exists.
pub fn revoke(conn: &Connection, id: &ClientId) -> Result<bool> {
    let n = conn.execute(
        "UPDATE clients SET revoked = COALESCE(revoked, ?2) WHERE id = ?1",
        params![id, Timestamp::now()],
    )?;
    Ok(n > 0)
}

/// Mark a secret revoked: no new grant with it, and the access tokens issued with it fail
/// their next request. Returns false when no such secret exists.
pub fn revoke_secret(conn: &Connection, id: &SecretId) -> Result<bool> {
    let n = conn.execute(
        "UPDATE client_secrets SET revoked = COALESCE(revoked, ?2) WHERE id = ?1",
        params![id, Timestamp::now()],
    )?;
    Ok(n > 0)
}

/// What the token endpoint needs to decide a grant: the client and that one secret of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantCheck {
    pub tenant_id: TenantId,
    pub client_scopes: Scopes,
    pub client_revoked: bool,
    pub secret_revoked: bool,
    pub expires: Timestamp,
    /// The secret's argon2id PHC string, for `auth::secrets::verify`.
    pub phc: String,
}

const GRANT_CHECK: &str =
    "SELECT c.tenant_id, c.scopes, c.revoked IS NOT NULL, s.revoked IS NOT NULL, s.expires, \
     s.hash FROM client_secrets s JOIN clients c ON c.id = s.client_id \
     JOIN tenants n ON n.id = c.tenant_id WHERE s.id = ?1 AND s.client_id = ?2";

/// The client `client` with its secret `secret`; None unless that secret belongs to that
/// client (and both, and the client's tenant, exist).
pub fn grant_check(
    conn: &Connection,
    client: &ClientId,
    secret: &SecretId,
) -> Result<Option<GrantCheck>> {
    Ok(conn
        .prepare_cached(GRANT_CHECK)?
        .query_row(params![secret, client], |r| {
            Ok(GrantCheck {
                tenant_id: r.get(0)?,
                client_scopes: r.get(1)?,
                client_revoked: r.get(2)?,
                secret_revoked: r.get(3)?,
                expires: r.get(4)?,
                phc: r.get(5)?,
            })
        })
        .optional()?)
}

/// What a request's authentication needs to know of an access token's client and secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessState {
    pub tenant_id: TenantId,
    /// The client's scopes now (an access token may carry fewer).
    pub scopes: Scopes,
    /// The client or the secret is revoked.
    pub revoked: bool,
}

const ACCESS_STATE: &str =
    "SELECT c.tenant_id, c.scopes, c.revoked IS NOT NULL OR s.revoked IS NOT NULL \
     FROM client_secrets s JOIN clients c ON c.id = s.client_id \
     JOIN tenants n ON n.id = c.tenant_id WHERE s.id = ?1 AND s.client_id = ?2";

/// The per-request check of an access token: one cached statement, primary-key lookups only.
/// None unless `secret` is a secret of `client`.
pub fn access_state(
    conn: &Connection,
    client: &ClientId,
    secret: &SecretId,
) -> Result<Option<AccessState>> {
    Ok(conn
        .prepare_cached(ACCESS_STATE)?
        .query_row(params![secret, client], |r| {
            Ok(AccessState {
                tenant_id: r.get(0)?,
                scopes: r.get(1)?,
                revoked: r.get(2)?,
            })
        })
        .optional()?)
}

/// Secrets not revoked, of clients not revoked (expired ones included), soonest expiry first:
/// (client, secret, tenant name, expiry), for expiry warnings and metrics.
pub fn secrets_expiring(conn: &Connection) -> Result<Vec<(ClientId, SecretId, String, Timestamp)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, s.id, n.name, s.expires FROM client_secrets s \
         JOIN clients c ON c.id = s.client_id JOIN tenants n ON n.id = c.tenant_id \
         WHERE s.revoked IS NULL AND c.revoked IS NULL ORDER BY s.rowid",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let mut all = rows.collect::<rusqlite::Result<Vec<(_, _, _, Timestamp)>>>()?;
    // By time, not by text: RFC 3339 with and without a fraction do not sort as text.
    all.sort_by_key(|row| row.3);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scope;
    use crate::store::{open_connection, tenants};

    struct Fixture {
        _dir: tempfile::TempDir,
        conn: Connection,
        acme: TenantId,
        other: TenantId,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("t.db")).unwrap();
        let acme = tenants::create(&conn, "acme", None).unwrap().id;
        let other = tenants::create(&conn, "other", None).unwrap().id;
        Fixture {
            _dir: dir,
            conn,
            acme,
            other,
        }
    }

    fn days(n: i64) -> Timestamp {
        Timestamp::from(time::OffsetDateTime::now_utc() + time::Duration::days(n))
    }

    fn secret(conn: &Connection, client: &ClientId, expires: Timestamp) -> SecretId {
        let id = SecretId::new(uuid::Uuid::new_v4().to_string());
        add_secret(
            conn,
            client,
            &id,
            &format!("$argon2id$hash-of-{id}"),
            expires,
        )
        .unwrap();
        id
    }

    #[test]
    fn a_client_is_created_read_back_and_listed_by_tenant() {
        let fx = fixture();
        let both = Scopes::SCIM.with(Scope::FeedRead);
        let a = create(&fx.conn, &fx.acme, Some("entra"), both).unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(a.id.as_str())
                .unwrap()
                .get_version_num(),
            4
        );
        assert_eq!(
            (a.tenant_name.as_str(), a.label.as_deref(), a.scopes),
            ("acme", Some("entra"), both)
        );
        assert_eq!(get(&fx.conn, &a.id).unwrap(), Some(a.clone()));
        let b = create(&fx.conn, &fx.acme, None, Scopes::SCIM).unwrap();
        let o = create(&fx.conn, &fx.other, None, Scopes::SCIM).unwrap();
        let ids = |list: Vec<ClientRecord>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
        assert_eq!(
            ids(list(&fx.conn, None).unwrap()),
            vec![a.id.clone(), b.id.clone(), o.id.clone()]
        );
        assert_eq!(ids(list(&fx.conn, Some("acme")).unwrap()), vec![a.id, b.id]);
        assert_eq!(ids(list(&fx.conn, Some("other")).unwrap()), vec![o.id]);
        assert!(list(&fx.conn, Some("nobody")).unwrap().is_empty());
        assert_eq!(get(&fx.conn, &ClientId::new("nope")).unwrap(), None);
    }

    #[test]
    fn a_client_of_no_tenant_is_refused() {
        let fx = fixture();
        assert!(create(&fx.conn, &TenantId::new("nope"), None, Scopes::SCIM).is_err());
        let c = ClientId::new("nope");
        let s = SecretId::new("s");
        assert!(add_secret(&fx.conn, &c, &s, "$argon2id$x", days(1)).is_err());
    }

    #[test]
    fn secrets_are_listed_without_their_hash_and_revoked_once() {
        let fx = fixture();
        let c = create(&fx.conn, &fx.acme, None, Scopes::SCIM).unwrap();
        let s1 = secret(&fx.conn, &c.id, days(365));
        let s2 = secret(&fx.conn, &c.id, days(30));
        let listed = secrets(&fx.conn, &c.id).unwrap();
        assert_eq!(
            listed.iter().map(|s| &s.id).collect::<Vec<_>>(),
            vec![&s1, &s2]
        );
        assert!(listed
            .iter()
            .all(|s| s.client_id == c.id && s.revoked.is_none()));
        assert_eq!(get_secret(&fx.conn, &s2).unwrap().unwrap(), listed[1]);
        assert!(revoke_secret(&fx.conn, &s1).unwrap());
        let first = get_secret(&fx.conn, &s1).unwrap().unwrap().revoked.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(revoke_secret(&fx.conn, &s1).unwrap());
        assert_eq!(
            get_secret(&fx.conn, &s1).unwrap().unwrap().revoked,
            Some(first),
            "revoking twice keeps the first time"
        );
        assert!(!revoke_secret(&fx.conn, &SecretId::new("nope")).unwrap());
        assert!(revoke(&fx.conn, &c.id).unwrap());
        let first = get(&fx.conn, &c.id).unwrap().unwrap().revoked.unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(revoke(&fx.conn, &c.id).unwrap());
        assert_eq!(get(&fx.conn, &c.id).unwrap().unwrap().revoked, Some(first));
        assert!(!revoke(&fx.conn, &ClientId::new("nope")).unwrap());
    }

    #[test]
    fn grant_check_answers_only_for_a_secret_of_that_client() {
        let fx = fixture();
        let feed = Scopes::default().with(Scope::FeedRead);
        let a = create(&fx.conn, &fx.acme, None, feed).unwrap();
        let o = create(&fx.conn, &fx.other, None, Scopes::SCIM).unwrap();
        let expires = days(10);
        let sa = secret(&fx.conn, &a.id, expires);
        let so = secret(&fx.conn, &o.id, days(10));
        let found = grant_check(&fx.conn, &a.id, &sa).unwrap().unwrap();
        assert_eq!(
            found,
            GrantCheck {
                tenant_id: fx.acme.clone(),
                client_scopes: feed,
                client_revoked: false,
                secret_revoked: false,
                expires,
                phc: format!("$argon2id$hash-of-{sa}"),
            }
        );
        // Another tenant's secret with this client, or this secret with another tenant's
        // client: nothing, never the other tenant's client.
        assert_eq!(grant_check(&fx.conn, &a.id, &so).unwrap(), None);
        assert_eq!(grant_check(&fx.conn, &o.id, &sa).unwrap(), None);
        assert_eq!(
            grant_check(&fx.conn, &ClientId::new("nope"), &sa).unwrap(),
            None
        );
        assert_eq!(
            grant_check(&fx.conn, &a.id, &SecretId::new("nope")).unwrap(),
            None
        );
        assert_eq!(
            grant_check(&fx.conn, &o.id, &so)
                .unwrap()
                .unwrap()
                .tenant_id,
            fx.other
        );
        revoke_secret(&fx.conn, &sa).unwrap();
        let found = grant_check(&fx.conn, &a.id, &sa).unwrap().unwrap();
        assert!(found.secret_revoked && !found.client_revoked);
        revoke(&fx.conn, &a.id).unwrap();
        assert!(
            grant_check(&fx.conn, &a.id, &sa)
                .unwrap()
                .unwrap()
                .client_revoked
        );
    }

    #[test]
    fn access_state_is_revoked_once_the_client_or_that_secret_is() {
        let fx = fixture();
        let c = create(&fx.conn, &fx.acme, None, Scopes::SCIM).unwrap();
        let o = create(&fx.conn, &fx.other, None, Scopes::SCIM).unwrap();
        let s1 = secret(&fx.conn, &c.id, days(10));
        let s2 = secret(&fx.conn, &c.id, days(10));
        let so = secret(&fx.conn, &o.id, days(10));
        let state = |s: &SecretId| access_state(&fx.conn, &c.id, s).unwrap();
        assert_eq!(
            state(&s1),
            Some(AccessState {
                tenant_id: fx.acme.clone(),
                scopes: Scopes::SCIM,
                revoked: false,
            })
        );
        assert_eq!(state(&so), None, "another client's secret");
        assert_eq!(access_state(&fx.conn, &o.id, &s1).unwrap(), None);
        revoke_secret(&fx.conn, &s1).unwrap();
        assert!(state(&s1).unwrap().revoked);
        assert!(
            !state(&s2).unwrap().revoked,
            "the client's other secret stands"
        );
        revoke(&fx.conn, &c.id).unwrap();
        assert!(state(&s2).unwrap().revoked);
        assert!(!access_state(&fx.conn, &o.id, &so).unwrap().unwrap().revoked);
    }

    /// The per-request and per-grant statements probe primary keys; they never scan a table.
    #[test]
    fn access_state_and_grant_check_are_primary_key_lookups() {
        let fx = fixture();
        for (name, sql) in [("access_state", ACCESS_STATE), ("grant_check", GRANT_CHECK)] {
            let plan: Vec<String> = fx
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(["s", "c"], |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert_eq!(plan.len(), 3, "{name}: {plan:?}");
            assert!(
                plan.iter().all(|l| l.starts_with("SEARCH ")),
                "{name}: {plan:?}"
            );
        }
    }

    #[test]
    fn secrets_expiring_are_the_live_secrets_of_live_clients_soonest_first() {
        let fx = fixture();
        let c = create(&fx.conn, &fx.acme, None, Scopes::SCIM).unwrap();
        let late = secret(&fx.conn, &c.id, days(300));
        let soon = secret(&fx.conn, &c.id, days(3));
        let past = secret(&fx.conn, &c.id, days(-3));
        let revoked = secret(&fx.conn, &c.id, days(1));
        revoke_secret(&fx.conn, &revoked).unwrap();
        let gone = create(&fx.conn, &fx.other, None, Scopes::SCIM).unwrap();
        secret(&fx.conn, &gone.id, days(1));
        revoke(&fx.conn, &gone.id).unwrap();
        let got = secrets_expiring(&fx.conn).unwrap();
        assert_eq!(
            got.iter().map(|r| &r.1).collect::<Vec<_>>(),
            vec![&past, &soon, &late]
        );
        assert!(got.iter().all(|r| r.0 == c.id && r.2 == "acme"));
    }

    #[test]
    fn scopes_bind_to_sql_as_their_oauth_text() {
        let conn = Connection::open_in_memory().unwrap();
        let both = Scopes::SCIM.with(Scope::FeedRead);
        let text: String = conn.query_row("SELECT ?1", [both], |r| r.get(0)).unwrap();
        assert_eq!(text, "scim feed.read");
        let back: Scopes = conn
            .query_row("SELECT 'feed.read scim'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(back, both);
        let unknown = conn.query_row("SELECT 'scim admin'", [], |r| r.get::<_, Scopes>(0));
        assert!(
            unknown.is_err(),
            "an unknown scope is an error, not dropped"
        );
    }

    /// A database of schema v4 (made by the migrations of this build before v5) migrates:
    /// tokens keep working with scope `scim`, and clients can be added.
    #[test]
    fn a_v4_database_migrates_to_v5_and_its_tokens_keep_scope_scim() {
        use rusqlite_migration::{Migrations, M};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            Migrations::new(vec![
                M::up(include_str!("../../migrations/0001_init.sql")),
                M::up(include_str!("../../migrations/0002_request_log.sql")),
                M::up(include_str!("../../migrations/0003_lean_indexes.sql")),
                M::up(include_str!("../../migrations/0004_tenant_keys.sql")),
            ])
            .to_latest(&mut conn)
            .unwrap();
            conn.execute_batch(
                "INSERT INTO tenants (id, name, created) VALUES ('t1', 'a', '2026-01-01T00:00:00Z');
                 INSERT INTO tokens (id, tenant_id, label, created)
                 VALUES ('tok-1', 't1', 'entra', '2026-01-01T00:00:00Z');",
            )
            .unwrap();
        }
        assert_eq!(crate::store::pending_migration(&path), Some((4, 12)));
        let conn = open_connection(&path).unwrap();
        let version: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 12);
        let t1 = TenantId::new("t1");
        let token = crate::store::tokens::get(&conn, &crate::domain::TokenId::new("tok-1"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (token.label.as_deref(), token.scopes),
            (Some("entra"), Scopes::SCIM)
        );
        let state = crate::store::tokens::state(&conn, &token.id)
            .unwrap()
            .unwrap();
        assert_eq!((state.tenant_id, state.scopes), (t1.clone(), Scopes::SCIM));
        let c = create(&conn, &t1, None, Scopes::SCIM).unwrap();
        let s = secret(&conn, &c.id, days(1));
        assert_eq!(
            access_state(&conn, &c.id, &s).unwrap().unwrap().tenant_id,
            t1
        );
        let fk_violations: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(fk_violations, 0);
    }
}
