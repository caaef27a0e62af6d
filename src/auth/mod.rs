//! Bearer tokens: the "secret token" an administrator pastes into the Entra ID portal.
//!
//! A token is an HS256 JWT signed with a 64-byte key that is generated on first use into
//! `data_dir/signing.key` (mode 0600). Claims: `jti` (token id), `tid` (tenant id), `iat`, and an
//! optional `exp`. A valid signature is not enough: every request also checks in the database that
//! the token id exists, belongs to that tenant and is not revoked.
//!
//! The two halves are two types. `SigningKey::claim` checks the signature and yields a `Claimed`:
//! who the token says it is. Only `Claimed::confirm`, the database check, makes a `Principal`,
//! and handlers and the writer accept nothing else: a request cannot read or write on a claim.

pub mod assertion;
pub mod jwks;
pub mod secrets;

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{bail, Context};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
pub mod grant;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::domain::{ClientId, FederationId, Scope, Scopes, SecretId, TenantId, TokenId};
use crate::store::{self, clients, federations, tokens};

const KEY_LEN: usize = 64;
const ISSUER: &str = "grouptalk-scim";
/// Tokens longer than this are rejected before any parsing (a real token is ~250 bytes).
pub const MAX_TOKEN_LEN: usize = 4096;

/// The claims we sign. Unknown claims in a presented token are ignored; these must be present.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub jti: String,
    pub tid: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Access tokens only: the client, the secret it was issued with (`sid`) or the
    /// federation whose assertion it was issued on (`fid`), and its scopes (space-separated).
    /// A bearer token has none of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// How many verified tokens `SigningKey` remembers. A tenant has one or two tokens in use; when
/// the map is full it simply starts over.
const VERIFIED_CACHE_LEN: usize = 1024;

/// The HMAC key. Deliberately not `Debug`, so it cannot end up in a log line.
pub struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Tokens whose signature checked out, by SHA-256 of the token, with their claims: decoding
    /// and checking the same token on every request was ~5 % of a lookup's CPU. A signature is a
    /// pure function of token and key, so the answer cannot go stale; time claims are checked on
    /// every use and revocation is the database's (see `http::auth`). Only valid tokens get in.
    verified: Mutex<HashMap<[u8; 32], Claims>>,
    /// HMAC key for list cursors (`http::paging`), derived from the signing key so a cursor tag
    /// can never stand in for a token signature, or the other way round.
    cursor: aws_lc_rs::hmac::Key,
}

/// Bytes of a list cursor's tag (HMAC-SHA256, truncated: 128 bits).
pub const CURSOR_TAG_LEN: usize = 16;

impl SigningKey {
    fn from_bytes(bytes: &[u8]) -> SigningKey {
        use aws_lc_rs::hmac;
        let root = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let derived = hmac::sign(&root, b"grouptalk-scim list cursor v1");
        SigningKey {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            verified: Mutex::new(HashMap::new()),
            cursor: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    /// The tag of a list cursor's `message` (which names the tenant it was made for).
    pub fn cursor_tag(&self, message: &[u8]) -> [u8; CURSOR_TAG_LEN] {
        let full = aws_lc_rs::hmac::sign(&self.cursor, message);
        let mut tag = [0u8; CURSOR_TAG_LEN];
        tag.copy_from_slice(&full.as_ref()[..CURSOR_TAG_LEN]);
        tag
    }

    /// Whether `tag` is the tag of `message`, compared in constant time.
    pub fn cursor_tag_matches(&self, message: &[u8], tag: &[u8]) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.cursor_tag(message), tag).is_ok()
    }

    /// Load the key, or create it (0600) when the file does not exist yet.
    pub fn load_or_create(path: &Path) -> anyhow::Result<SigningKey> {
        match std::fs::read(path) {
            Ok(bytes) => {
                if bytes.len() != KEY_LEN {
                    bail!(
                        "signing key {} is corrupt ({} bytes, expected {KEY_LEN}); restore it from a backup, \
                         or delete it to create a new one (every issued token then stops working)",
                        path.display(),
                        bytes.len()
                    );
                }
                let mode = std::fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "signing key is readable by group or others; run chmod 600");
                }
                Ok(SigningKey::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(e).with_context(|| format!("cannot read signing key {}", path.display())),
        }
    }

    fn create(path: &Path) -> anyhow::Result<SigningKey> {
        let mut bytes = [0u8; KEY_LEN];
        rand::fill(&mut bytes);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create signing key {}", path.display()))?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        Ok(SigningKey::from_bytes(&bytes))
    }

    pub fn issue(&self, claims: &Claims) -> anyhow::Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .context("cannot sign token")
    }

    /// The signature half of authentication: who the token says it is.
    pub fn claim(&self, token: &str, now: i64) -> Result<Claimed, TokenError> {
        let claims = self.verify(token, now)?;
        let granted =
            || Scopes::parse(claims.scope.as_deref().unwrap_or("")).ok_or(TokenError::Invalid);
        let credential = match (claims.cid.clone(), claims.sid.clone(), claims.fid.clone()) {
            (None, None, None) => Credential::Token(TokenId::new(claims.jti.clone())),
            (Some(client), Some(secret), None) => Credential::Client {
                client: ClientId::new(client),
                via: Via::Secret(SecretId::new(secret)),
                granted: granted()?,
            },
            (Some(client), None, Some(federation)) => Credential::Client {
                client: ClientId::new(client),
                via: Via::Federation(FederationId::new(federation)),
                granted: granted()?,
            },
            _ => return Err(TokenError::Invalid),
        };
        Ok(Claimed {
            tenant: TenantId::new(claims.tid),
            credential,
        })
    }

    /// Check signature, algorithm, issuer and time claims. `now` is unix seconds.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let digest = token_digest(token);
        let known = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(&digest).cloned());
        let claims = match known {
            Some(claims) => claims,
            None => {
                let claims = self.check_signature(token)?;
                if let Ok(mut m) = self.verified.lock() {
                    if m.len() >= VERIFIED_CACHE_LEN {
                        m.clear();
                    }
                    m.insert(digest, claims.clone());
                }
                claims
            }
        };
        check_time(claims, now)
    }

    /// Signature, algorithm and issuer: what does not depend on the time.
    fn check_signature(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` is optional (tokens may be issued without expiry); `check_time` checks it.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.claims.iss != ISSUER {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }
}

fn token_digest(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn check_time(claims: Claims, now: i64) -> Result<Claims, TokenError> {
    if claims.exp.is_some_and(|exp| exp <= now) {
        // An OAuth client can do something about an expired access token (ask for a new
        // one), so it is told; any other refusal stays the same generic 401.
        return Err(match claims.cid {
            Some(_) => TokenError::AccessTokenExpired,
            None => TokenError::Expired,
        });
    }
    if claims.iat > now + 300 {
        return Err(TokenError::Invalid);
    }
    Ok(claims)
}

impl Claims {
    pub fn new(jti: String, tid: String, iat: i64, exp: Option<i64>) -> Claims {
        Claims {
            iss: ISSUER.into(),
            jti,
            tid,
            iat,
            exp,
            cid: None,
            sid: None,
            fid: None,
            scope: None,
        }
    }

    /// The claims of an OAuth access token for `client`, issued with a secret or on an
    /// assertion of its federation.
    pub fn access(
        tenant: &TenantId,
        client: &ClientId,
        via: &Via,
        scopes: Scopes,
        iat: i64,
        exp: i64,
    ) -> Claims {
        let (sid, fid) = match via {
            Via::Secret(s) => (Some(s.to_string()), None),
            Via::Federation(f) => (None, Some(f.to_string())),
        };
        Claims {
            cid: Some(client.to_string()),
            sid,
            fid,
            scope: Some(scopes.to_string()),
            ..Claims::new(
                uuid::Uuid::new_v4().to_string(),
                tenant.to_string(),
                iat,
                Some(exp),
            )
        }
    }
}

/// Why a token was refused. Only logged; the client always sees the same 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    Invalid,
    Expired,
    /// An OAuth access token past its `exp`: the one refusal that says why (RFC 6750 §3.1).
    AccessTokenExpired,
    Revoked,
    Unknown,
}

impl TokenError {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::Invalid => "bad signature or claims",
            TokenError::Expired => "expired",
            TokenError::AccessTokenExpired => "access token expired",
            TokenError::Revoked => "revoked",
            TokenError::Unknown => "unknown token id",
        }
    }
}

/// Who a token says it is: its signature and time claims checked out, the database has not been
/// asked yet. Not a caller: `confirm` makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    tenant: TenantId,
    credential: Credential,
}

/// The credential a token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A long-lived bearer token (`token issue`): its row in `tokens`.
    Token(TokenId),
    /// An OAuth access token, issued by `/oauth2/token` to a client with one of its secrets or
    /// on an assertion of its federation: it stands as long as neither is revoked or removed.
    Client {
        client: ClientId,
        via: Via,
        /// What the token was granted (its `scope` claim): never more than the client has now.
        granted: Scopes,
    },
}

/// How a client authenticated when its access token was issued: what must still stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// One of its secrets (`client_secret_basic` / `client_secret_post`).
    Secret(SecretId),
    /// An assertion of its workload identity federation (`private_key_jwt`, RFC 7523).
    Federation(FederationId),
}

impl Credential {
    /// The id rate limits, metrics and the provisioning log know the credential by: the
    /// token's, or the client's (every access token of a client shares its budget).
    pub fn id(&self) -> &str {
        match self {
            Credential::Token(t) => t.as_str(),
            Credential::Client { client, .. } => client.as_str(),
        }
    }
}

impl Claimed {
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The database half, inside whatever transaction `conn` is in: the credential is known,
    /// belongs to the claimed tenant and is not revoked. The only way to make a `Principal`.
    pub fn confirm(&self, conn: &Connection) -> store::Result<Result<Principal, TokenError>> {
        let (tenant, scopes, revoked) = match &self.credential {
            Credential::Token(id) => match tokens::state(conn, id)? {
                None => return Ok(Err(TokenError::Unknown)),
                Some(t) => (t.tenant_id, t.scopes, t.revoked),
            },
            Credential::Client {
                client,
                via,
                granted,
            } => match match via {
                Via::Secret(secret) => clients::access_state(conn, client, secret)?,
                Via::Federation(f) => federations::federated_access_state(conn, client, f)?,
            } {
                None => return Ok(Err(TokenError::Unknown)),
                // The token's scopes, less any the client has lost since.
                Some(a) => (a.tenant_id, granted.intersection(a.scopes), a.revoked),
            },
        };
        Ok(if tenant != self.tenant {
            Err(TokenError::Invalid)
        } else if revoked {
            Err(TokenError::Revoked)
        } else {
            Ok(Principal {
                tenant,
                credential: self.credential.clone(),
                scopes,
            })
        })
    }
}

/// An action a handler asks the principal about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// GET on SCIM resources: `scim` or `feed.read`.
    ReadDirectory,
    /// Anything that changes the directory: `scim` only.
    WriteDirectory,
    /// The change feed (`/feed/v1/`), including recording the reader's own position:
    /// `feed.read` only.
    ReadFeed,
}

/// The caller of a request, after the database confirmed its credential on this request: its
/// tenant, which credential, and what it may do. Not `Clone`, not constructible outside this
/// module: holding one is the proof of the check.
#[derive(Debug, PartialEq, Eq)]
pub struct Principal {
    tenant: TenantId,
    credential: Credential,
    scopes: Scopes,
}

impl Principal {
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    pub fn may(&self, permission: Permission) -> bool {
        match permission {
            Permission::ReadDirectory => {
                self.scopes.contains(Scope::Scim) || self.scopes.contains(Scope::FeedRead)
            }
            Permission::WriteDirectory => self.scopes.contains(Scope::Scim),
            Permission::ReadFeed => self.scopes.contains(Scope::FeedRead),
        }
    }
}

pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A fresh key in a temporary directory (kept alive by the caller), for unit tests.
#[cfg(test)]
pub(crate) fn test_key() -> (tempfile::TempDir, SigningKey) {
    #[allow(clippy::unwrap_used)]
    let dir = tempfile::tempdir().unwrap();
    #[allow(clippy::unwrap_used)]
    let k = SigningKey::load_or_create(&dir.path().join("k")).unwrap();
    (dir, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (tempfile::TempDir, SigningKey) {
        test_key()
    }

    #[test]
    fn key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let k1 = SigningKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let t = k1
            .issue(&Claims::new("j".into(), "t".into(), 100, None))
            .unwrap();
        let k2 = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(k2.verify(&t, 200).unwrap().jti, "j");
    }

    /// The database half: only a known, unrevoked token of the claimed tenant becomes a
    /// `Principal`, and it carries that tenant and token.
    #[test]
    fn only_the_database_check_turns_a_claim_into_a_principal() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open_connection(&dir.path().join("t.db")).unwrap();
        let acme = crate::store::tenants::create(&conn, "acme", None).unwrap();
        let other = crate::store::tenants::create(&conn, "other", None).unwrap();
        let id = TokenId::new("tok-1");
        let now = crate::domain::Timestamp::now();
        tokens::insert(
            &conn,
            &id,
            &acme.id,
            None,
            now,
            None,
            crate::domain::Scopes::SCIM,
        )
        .unwrap();
        let claim = |tenant: &TenantId, token: &str| Claimed {
            tenant: tenant.clone(),
            credential: Credential::Token(TokenId::new(token)),
        };
        let who = claim(&acme.id, "tok-1").confirm(&conn).unwrap().unwrap();
        assert_eq!(who.tenant(), &acme.id);
        assert_eq!(who.credential(), &Credential::Token(id.clone()));
        assert!(who.may(Permission::WriteDirectory));
        assert_eq!(
            claim(&acme.id, "tok-2").confirm(&conn).unwrap(),
            Err(TokenError::Unknown)
        );
        assert_eq!(
            claim(&other.id, "tok-1").confirm(&conn).unwrap(),
            Err(TokenError::Invalid)
        );
        tokens::revoke(&conn, &id).unwrap();
        assert_eq!(
            claim(&acme.id, "tok-1").confirm(&conn).unwrap(),
            Err(TokenError::Revoked)
        );
    }

    #[test]
    fn corrupt_key_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, b"short").unwrap();
        let err = SigningKey::load_or_create(&path).err().unwrap().to_string();
        assert!(
            err.contains("corrupt") && err.contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn expiry_signature_and_algorithm_are_checked() {
        let (_d, k) = key();
        let (_d2, other) = key();
        let t = k
            .issue(&Claims::new("j".into(), "t".into(), 100, Some(1000)))
            .unwrap();
        assert!(k.verify(&t, 999).is_ok());
        // Verified once and remembered: expiry is still checked on every use.
        assert_eq!(k.verify(&t, 1000), Err(TokenError::Expired));
        assert!(k.verify(&t, 999).is_ok());
        assert_eq!(other.verify(&t, 500), Err(TokenError::Invalid));
        // Tampered payload: flip one character of the claims part.
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        let flipped = if parts[1].starts_with('e') { "f" } else { "e" };
        parts[1].replace_range(0..1, flipped);
        assert!(k.verify(&parts.join("."), 500).is_err());
        // alg none
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(r#"{"iss":"grouptalk-scim","jti":"j","tid":"t","iat":1}"#)
        );
        assert!(k.verify(&none, 500).is_err());
        assert_eq!(
            k.verify(&"a".repeat(100_000), 500),
            Err(TokenError::Malformed)
        );
    }
}
