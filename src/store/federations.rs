//! OAuth clients' workload identity federation (schema v6, `client_federations`): a federated
//! client authenticates with a JWT (RFC 7523) that must be signed by a key of the JWKS named
//! here and carry this issuer, subject and audience (`auth::assertion` checks it).
//!
//! At most one federation of a client is live, and an issuer and subject belong to one live
//! client (both unique indexes). Replacing or removing a federation marks its row removed,
//! which ends the access tokens issued through it: `federated_access_state` is the
//! per-request check, as `clients::access_state` is for tokens issued with a secret.

use rusqlite::{params, Connection, OptionalExtension};

use super::clients::AccessState;
use super::Result;
use crate::domain::{ClientId, FederationId, Scopes, TenantId, Timestamp};

/// A client's workload identity federation: what its assertions are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationRecord {
    pub id: FederationId,
    pub client_id: ClientId,
    /// An absolute file path or an `https://` URL.
    pub jwks: String,
    pub issuer: String,
    pub subject: String,
    /// None: the token endpoint's URL.
    pub audience: Option<String>,
    pub created: Timestamp,
    pub removed: Option<Timestamp>,
}

const SELECT_FEDERATION: &str =
    "SELECT f.id, f.client_id, f.jwks, f.issuer, f.subject, f.audience, f.created, f.removed \
     FROM client_federations f";

fn federation_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FederationRecord> {
    Ok(FederationRecord {
        id: row.get(0)?,
        client_id: row.get(1)?,
        jwks: row.get(2)?,
        issuer: row.get(3)?,
        subject: row.get(4)?,
        audience: row.get(5)?,
        created: row.get(6)?,
        removed: row.get(7)?,
    })
}

/// What `federate` is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFederation<'a> {
    pub jwks: &'a str,
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audience: Option<&'a str>,
}

/// Make `new` the client's live federation, replacing (marking removed) the one it had. Run it
/// in a transaction: the two statements belong together. Fails on a constraint when another
/// live federation has the same issuer and subject.
pub fn federate(
    conn: &Connection,
    client: &ClientId,
    new: &NewFederation<'_>,
) -> Result<FederationRecord> {
    let now = Timestamp::now();
    conn.execute(
        "UPDATE client_federations SET removed = ?2 WHERE client_id = ?1 AND removed IS NULL",
        params![client, now],
    )?;
    let record = FederationRecord {
        id: FederationId::new(uuid::Uuid::new_v4().to_string()),
        client_id: client.clone(),
        jwks: new.jwks.to_string(),
        issuer: new.issuer.to_string(),
        subject: new.subject.to_string(),
        audience: new.audience.map(str::to_string),
        created: now,
        removed: None,
    };
    conn.execute(
        "INSERT INTO client_federations (id, client_id, jwks, issuer, subject, audience, created) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            record.id,
            record.client_id,
            record.jwks,
            record.issuer,
            record.subject,
            record.audience,
            record.created
        ],
    )?;
    Ok(record)
}

/// Remove the client's live federation: no new grant on an assertion, and the access tokens
/// issued through it fail their next request. Returns false when it had none.
pub fn unfederate(conn: &Connection, client: &ClientId) -> Result<bool> {
    let n = conn.execute(
        "UPDATE client_federations SET removed = ?2 WHERE client_id = ?1 AND removed IS NULL",
        params![client, Timestamp::now()],
    )?;
    Ok(n > 0)
}

/// The client's live federation, if any.
pub fn federation(conn: &Connection, client: &ClientId) -> Result<Option<FederationRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT_FEDERATION} WHERE f.client_id = ?1 AND f.removed IS NULL"
        ))?
        .query_row([client], federation_from_row)
        .optional()?)
}

/// The live federation of whichever client has this issuer and subject, if any.
pub fn federation_by_subject(
    conn: &Connection,
    issuer: &str,
    subject: &str,
) -> Result<Option<FederationRecord>> {
    Ok(conn
        .prepare_cached(&format!(
            "{SELECT_FEDERATION} WHERE f.issuer = ?1 AND f.subject = ?2 AND f.removed IS NULL"
        ))?
        .query_row([issuer, subject], federation_from_row)
        .optional()?)
}

/// What the token endpoint needs to decide a grant on an assertion: the federation and its
/// client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationCheck {
    pub federation: FederationRecord,
    pub tenant_id: TenantId,
    pub client_scopes: Scopes,
    pub client_revoked: bool,
}

const FEDERATION_CHECK: &str =
    "SELECT f.id, f.client_id, f.jwks, f.issuer, f.subject, f.audience, f.created, f.removed, \
     c.tenant_id, c.scopes, c.revoked IS NOT NULL \
     FROM client_federations f JOIN clients c ON c.id = f.client_id \
     JOIN tenants n ON n.id = c.tenant_id";

/// The live federation of `client` (Some(id)), or the one with this issuer and subject (None),
/// with what the grant needs of its client.
pub fn federation_check(
    conn: &Connection,
    client: Option<&ClientId>,
    issuer: &str,
    subject: &str,
) -> Result<Option<FederationCheck>> {
    let row = |r: &rusqlite::Row<'_>| {
        Ok(FederationCheck {
            federation: federation_from_row(r)?,
            tenant_id: r.get(8)?,
            client_scopes: r.get(9)?,
            client_revoked: r.get(10)?,
        })
    };
    Ok(match client {
        Some(id) => conn
            .prepare_cached(&format!(
                "{FEDERATION_CHECK} WHERE f.client_id = ?1 AND f.removed IS NULL"
            ))?
            .query_row([id], row)
            .optional()?,
        None => conn
            .prepare_cached(&format!(
                "{FEDERATION_CHECK} WHERE f.issuer = ?1 AND f.subject = ?2 AND f.removed IS NULL"
            ))?
            .query_row([issuer, subject], row)
            .optional()?,
    })
}

const FEDERATED_ACCESS_STATE: &str =
    "SELECT c.tenant_id, c.scopes, c.revoked IS NOT NULL OR f.removed IS NOT NULL \
     FROM client_federations f JOIN clients c ON c.id = f.client_id \
     JOIN tenants n ON n.id = c.tenant_id WHERE f.id = ?1 AND f.client_id = ?2";

/// The per-request check of an access token issued on an assertion: as `access_state`, with
/// the federation in place of the secret. None unless `federation` is one of `client`.
pub fn federated_access_state(
    conn: &Connection,
    client: &ClientId,
    federation: &FederationId,
) -> Result<Option<AccessState>> {
    Ok(conn
        .prepare_cached(FEDERATED_ACCESS_STATE)?
        .query_row(params![federation, client], |r| {
            Ok(AccessState {
                tenant_id: r.get(0)?,
                scopes: r.get(1)?,
                revoked: r.get(2)?,
            })
        })
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::clients::{create, revoke};
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

    fn fed<'a>(jwks: &'a str, issuer: &'a str, subject: &'a str) -> NewFederation<'a> {
        NewFederation {
            jwks,
            issuer,
            subject,
            audience: None,
        }
    }

    #[test]
    fn a_federation_is_live_until_replaced_or_removed_and_its_tokens_with_it() {
        let fx = fixture();
        let c = create(&fx.conn, &fx.acme, None, Scopes::SCIM).unwrap();
        let o = create(&fx.conn, &fx.other, None, Scopes::SCIM).unwrap();
        assert_eq!(federation(&fx.conn, &c.id).unwrap(), None);
        let f1 = federate(&fx.conn, &c.id, &fed("/k.json", "https://iss", "sub-1")).unwrap();
        assert_eq!(federation(&fx.conn, &c.id).unwrap(), Some(f1.clone()));
        assert_eq!(
            federation_by_subject(&fx.conn, "https://iss", "sub-1").unwrap(),
            Some(f1.clone())
        );
        let check = federation_check(&fx.conn, Some(&c.id), "", "")
            .unwrap()
            .unwrap();
        assert_eq!(
            (check.federation, check.tenant_id, check.client_revoked),
            (f1.clone(), fx.acme.clone(), false)
        );
        let by_sub = federation_check(&fx.conn, None, "https://iss", "sub-1")
            .unwrap()
            .unwrap();
        assert_eq!(by_sub.federation.client_id, c.id);
        assert_eq!(
            federation_check(&fx.conn, None, "https://iss", "sub-2").unwrap(),
            None
        );
        assert_eq!(
            federation_check(&fx.conn, Some(&o.id), "", "").unwrap(),
            None
        );
        // Another live client cannot take the same issuer and subject.
        assert!(federate(&fx.conn, &o.id, &fed("/k.json", "https://iss", "sub-1")).is_err());
        let state = federated_access_state(&fx.conn, &c.id, &f1.id)
            .unwrap()
            .unwrap();
        assert_eq!((state.tenant_id, state.revoked), (fx.acme.clone(), false));
        assert_eq!(
            federated_access_state(&fx.conn, &o.id, &f1.id).unwrap(),
            None
        );
        // Replacing: the old one is removed (its tokens end), the new one is live.
        let f2 = federate(
            &fx.conn,
            &c.id,
            &NewFederation {
                audience: Some("api://grouptalk"),
                ..fed("https://idp/keys", "https://iss", "sub-1")
            },
        )
        .unwrap();
        assert!(
            federated_access_state(&fx.conn, &c.id, &f1.id)
                .unwrap()
                .unwrap()
                .revoked
        );
        assert!(
            !federated_access_state(&fx.conn, &c.id, &f2.id)
                .unwrap()
                .unwrap()
                .revoked
        );
        assert_eq!(
            federation(&fx.conn, &c.id)
                .unwrap()
                .unwrap()
                .audience
                .as_deref(),
            Some("api://grouptalk")
        );
        // Revoking the client ends them too.
        revoke(&fx.conn, &c.id).unwrap();
        assert!(
            federated_access_state(&fx.conn, &c.id, &f2.id)
                .unwrap()
                .unwrap()
                .revoked
        );
        assert!(
            federation_check(&fx.conn, Some(&c.id), "", "")
                .unwrap()
                .unwrap()
                .client_revoked
        );
        assert!(unfederate(&fx.conn, &c.id).unwrap());
        assert!(!unfederate(&fx.conn, &c.id).unwrap());
        assert_eq!(federation(&fx.conn, &c.id).unwrap(), None);
        // Once removed, the issuer and subject are free for another client.
        federate(&fx.conn, &o.id, &fed("/k.json", "https://iss", "sub-1")).unwrap();
        assert_eq!(
            federation_check(&fx.conn, None, "https://iss", "sub-1")
                .unwrap()
                .unwrap()
                .tenant_id,
            fx.other
        );
    }

    /// The per-request statement probes primary keys; it never scans a table.
    #[test]
    fn federated_access_state_is_a_primary_key_lookup() {
        let fx = fixture();
        let plan: Vec<String> = fx
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {FEDERATED_ACCESS_STATE}"))
            .unwrap()
            .query_map(["f", "c"], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(plan.len(), 3, "{plan:?}");
        assert!(plan.iter().all(|l| l.starts_with("SEARCH ")), "{plan:?}");
    }
}
