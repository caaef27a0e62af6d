//! The OAuth 2.0 client-credentials grant (RFC 6749 §4.4), without HTTP: a client id and secret
//! in, a `Grant` (tenant, client, secret, scopes) out — or why not.
//!
//! An argon2id verification costs tens of milliseconds of CPU and 7 MiB of memory, so an
//! attacker posting wrong secrets must not be able to buy many of them:
//! - at most `MAX_CONCURRENT` run at once and `PER_SECOND` start per second, over all clients;
//!   beyond either the request is refused at once (`Throttled`), never queued or slept on;
//! - failures are counted per (client address, client id): a stranger's failures throttle the
//!   stranger, never Entra's own requests for the same client id (ids are not secret);
//! - a secret that verified once is remembered by its SHA-256 (with its secret id), so Entra's
//!   request every hour or so costs one argon2 run per secret, not one per request. Revocation
//!   and expiry are checked in the database on every grant all the same.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use super::secrets;
use crate::budget::WindowCounter;
use crate::domain::{ClientId, Scopes, SecretId, TenantId, Timestamp};
use crate::store::{clients, Store, StoreError};

/// argon2 verifications running at once (each holds 7 MiB and a core).
const MAX_CONCURRENT: usize = 2;
/// argon2 verifications started per second, all clients together.
const PER_SECOND: u32 = 10;
/// Failed grants per (address, client id) per minute before `Throttled`.
const FAILURES_PER_MINUTE: u32 = 10;
/// Verified secrets remembered (by digest); when full, the memory starts over.
const VERIFIED_CACHE_LEN: usize = 1024;

/// What a grant request presents.
pub struct GrantRequest {
    pub client: ClientId,
    pub secret: String,
    /// The scopes asked for; None: every scope of the client.
    pub scopes: Option<Scopes>,
}

/// A granted request: who the access token is for and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub tenant: TenantId,
    pub client: ClientId,
    pub secret: SecretId,
    pub scopes: Scopes,
}

#[derive(Debug)]
pub enum GrantError {
    /// Unknown client, wrong, expired or revoked secret, revoked client: one answer for all.
    InvalidClient,
    /// Asked for a scope the client does not have.
    InvalidScope,
    /// Too many verifications now (overall) or failures (this address and client): retry later.
    Throttled,
    Store(StoreError),
}

impl From<StoreError> for GrantError {
    fn from(e: StoreError) -> Self {
        GrantError::Store(e)
    }
}

pub struct Granter {
    running: Semaphore,
    rate: DefaultDirectRateLimiter,
    failures: WindowCounter<(IpAddr, ClientId)>,
    verified: Mutex<HashMap<[u8; 32], SecretId>>,
}

impl Default for Granter {
    fn default() -> Self {
        Granter::new()
    }
}

impl Granter {
    pub fn new() -> Granter {
        let per_second = NonZeroU32::new(PER_SECOND).unwrap_or(NonZeroU32::MIN);
        Granter {
            running: Semaphore::new(MAX_CONCURRENT),
            rate: RateLimiter::direct(Quota::per_second(per_second)),
            failures: WindowCounter::new(FAILURES_PER_MINUTE, Duration::from_secs(60)),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Check a client's credentials and the scopes it asks for.
    pub async fn grant(
        &self,
        store: &Store,
        from: IpAddr,
        req: GrantRequest,
    ) -> Result<Grant, GrantError> {
        let key = (from, req.client.clone());
        if self.failures.exhausted(&key) {
            return Err(GrantError::Throttled);
        }
        let outcome = self.check(store, req).await;
        if matches!(outcome, Err(GrantError::InvalidClient)) {
            self.failures.take(&key);
        }
        outcome
    }

    async fn check(&self, store: &Store, req: GrantRequest) -> Result<Grant, GrantError> {
        let Some((secret_id, _)) = secrets::split(&req.secret) else {
            return Err(GrantError::InvalidClient);
        };
        let (client, sid) = (req.client.clone(), secret_id.clone());
        let Some(found) = store
            .read_point(move |conn| clients::grant_check(conn, &client, &sid))
            .await?
        else {
            return Err(GrantError::InvalidClient);
        };
        if found.client_revoked || found.secret_revoked || found.expires <= Timestamp::now() {
            return Err(GrantError::InvalidClient);
        }
        let digest = digest(&req.secret);
        let known = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(&digest).cloned())
            .is_some_and(|id| id == secret_id);
        if !known {
            self.verify(req.secret, found.phc).await?;
            if let Ok(mut m) = self.verified.lock() {
                if m.len() >= VERIFIED_CACHE_LEN {
                    m.clear();
                }
                m.insert(digest, secret_id.clone());
            }
        }
        let scopes = match req.scopes {
            None => found.client_scopes,
            Some(asked) if !asked.is_empty() && asked.is_subset(found.client_scopes) => asked,
            Some(_) => return Err(GrantError::InvalidScope),
        };
        Ok(Grant {
            tenant: found.tenant_id,
            client: req.client,
            secret: secret_id,
            scopes,
        })
    }

    /// One argon2 verification, within the concurrency and rate budgets, on a blocking thread.
    async fn verify(&self, secret: String, phc: String) -> Result<(), GrantError> {
        let Ok(_running) = self.running.try_acquire() else {
            return Err(GrantError::Throttled);
        };
        if self.rate.check().is_err() {
            return Err(GrantError::Throttled);
        }
        let ok = tokio::task::spawn_blocking(move || secrets::verify(&secret, &phc))
            .await
            .unwrap_or(false);
        if ok {
            Ok(())
        } else {
            Err(GrantError::InvalidClient)
        }
    }
}

fn digest(secret: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
