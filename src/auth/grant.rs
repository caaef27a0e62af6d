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
//!
//! A federated client presents a signed JWT instead (`Proof::Assertion`, RFC 7523 §2.2): its
//! federation is found by `client_id`, or by the assertion's issuer and subject when no
//! `client_id` is sent; the assertion is checked against the federation's JWKS (`jwks`) and
//! its issuer, subject and audience (`assertion`), and its `jti` may not be used twice. A
//! signature check costs microseconds: no argon2 budget, but failures count the same.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use super::assertion::{self, AssertionError, Expected, Replay, SeenAssertions};
use super::jwks::Jwks;
use super::{secrets, unix_now, Via};
use crate::budget::WindowCounter;
use crate::domain::{ClientId, Scopes, TenantId, Timestamp};
use crate::store::{clients, federations, Store, StoreError};

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
    /// `client_id` (always there with a secret; optional with an assertion).
    pub client: Option<ClientId>,
    pub proof: Proof,
    /// The scopes asked for; None: every scope of the client.
    pub scopes: Option<Scopes>,
    /// The token endpoint's URL: an assertion's audience unless its federation names another.
    pub token_endpoint: String,
}

/// How the client authenticates. Neither is ever logged.
pub enum Proof {
    Secret(String),
    /// `client_assertion` (with `client_assertion_type` jwt-bearer).
    Assertion(String),
}

/// A granted request: who the access token is for and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub tenant: TenantId,
    pub client: ClientId,
    pub via: Via,
    pub scopes: Scopes,
}

#[derive(Debug)]
pub enum GrantError {
    /// The assertion is not a JWT at all (`invalid_request`).
    MalformedAssertion,
    /// Unknown client, wrong, expired or revoked secret, revoked client, an assertion that
    /// fails any check: one answer for all.
    InvalidClient,
    /// The federation's keys cannot be had (JWKS file unreadable, URL never fetched): retry.
    KeysUnavailable,
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
    verified: Mutex<HashMap<[u8; 32], crate::domain::SecretId>>,
    /// The federated clients' key sets.
    pub jwks: Jwks,
    seen: SeenAssertions,
}

impl Default for Granter {
    fn default() -> Self {
        Granter::new()
    }
}

impl Granter {
    /// With the default JWKS cache (Mozilla's roots).
    pub fn new() -> Granter {
        Granter::with_jwks(Jwks::default())
    }

    pub fn with_jwks(jwks: Jwks) -> Granter {
        let per_second = NonZeroU32::new(PER_SECOND).unwrap_or(NonZeroU32::MIN);
        Granter {
            running: Semaphore::new(MAX_CONCURRENT),
            rate: RateLimiter::direct(Quota::per_second(per_second)),
            failures: WindowCounter::new(FAILURES_PER_MINUTE, Duration::from_secs(60)),
            verified: Mutex::new(HashMap::new()),
            jwks,
            seen: SeenAssertions::default(),
        }
    }

    /// Check a client's credentials and the scopes it asks for.
    pub async fn grant(
        &self,
        store: &Store,
        from: IpAddr,
        req: GrantRequest,
    ) -> Result<Grant, GrantError> {
        // Without a client_id (an assertion may name its client by issuer and subject) the
        // failures count per address.
        let key = (
            from,
            req.client.clone().unwrap_or_else(|| ClientId::new("")),
        );
        if self.failures.exhausted(&key) {
            return Err(GrantError::Throttled);
        }
        let outcome = match req.proof {
            Proof::Secret(ref secret) => match req.client.clone() {
                Some(client) => {
                    let secret = secret.clone();
                    self.check(store, client, secret, req.scopes).await
                }
                None => Err(GrantError::InvalidClient),
            },
            Proof::Assertion(_) => self.check_assertion(store, req).await,
        };
        if matches!(outcome, Err(GrantError::InvalidClient)) {
            self.failures.take(&key);
        }
        outcome
    }

    async fn check(
        &self,
        store: &Store,
        client_id: ClientId,
        secret: String,
        asked: Option<Scopes>,
    ) -> Result<Grant, GrantError> {
        let Some((secret_id, _)) = secrets::split(&secret) else {
            return Err(GrantError::InvalidClient);
        };
        let (client, sid) = (client_id.clone(), secret_id.clone());
        let Some(found) = store
            .read_point(move |conn| clients::grant_check(conn, &client, &sid))
            .await?
        else {
            return Err(GrantError::InvalidClient);
        };
        if found.client_revoked || found.secret_revoked || found.expires <= Timestamp::now() {
            return Err(GrantError::InvalidClient);
        }
        let digest = digest(&secret);
        let known = self
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(&digest).cloned())
            .is_some_and(|id| id == secret_id);
        if !known {
            self.verify(secret, found.phc).await?;
            if let Ok(mut m) = self.verified.lock() {
                if m.len() >= VERIFIED_CACHE_LEN {
                    m.clear();
                }
                m.insert(digest, secret_id.clone());
            }
        }
        Ok(Grant {
            tenant: found.tenant_id,
            client: client_id,
            via: Via::Secret(secret_id),
            scopes: granted_scopes(asked, found.client_scopes)?,
        })
    }

    /// A client assertion (RFC 7523 §2.2) against the client's federation
    /// (`docs/entra-id-behaviour.md` "Workload identity federation").
    async fn check_assertion(&self, store: &Store, req: GrantRequest) -> Result<Grant, GrantError> {
        let Proof::Assertion(text) = &req.proof else {
            return Err(GrantError::InvalidClient);
        };
        let refused = |why: &'static str| {
            tracing::info!(client = ?req.client.as_ref().map(|c| c.as_str()), reason = why,
                "client assertion refused");
            GrantError::InvalidClient
        };
        let token = match assertion::parse(text) {
            Ok(t) => t,
            Err(AssertionError::Malformed(_)) => return Err(GrantError::MalformedAssertion),
            Err(AssertionError::Invalid(why)) => return Err(refused(why)),
            Err(AssertionError::UnknownKey) => return Err(refused("unknown kid")),
        };
        let (Some(iss), Some(sub)) = (token.claims.iss.clone(), token.claims.sub.clone()) else {
            return Err(refused("no iss or sub"));
        };
        let client = req.client.clone();
        let Some(found) = store
            .read_point(move |conn| {
                federations::federation_check(conn, client.as_ref(), &iss, &sub)
            })
            .await?
        else {
            return Err(refused("no federation for this client, issuer and subject"));
        };
        if found.client_revoked {
            return Err(refused("client revoked"));
        }
        let fed = &found.federation;
        let Some(mut keys) = self.jwks.keys(&fed.jwks).await else {
            return Err(GrantError::KeysUnavailable);
        };
        let mut checked = assertion::verify_signature(&token, &keys);
        if checked == Err(AssertionError::UnknownKey) {
            // The keys may have rotated since they were read.
            if let Some(fresh) = self.jwks.keys_after_unknown_kid(&fed.jwks).await {
                keys = fresh;
                checked = assertion::verify_signature(&token, &keys);
            }
        }
        match checked {
            Ok(()) => {}
            Err(AssertionError::Invalid(why)) => return Err(refused(why)),
            Err(_) => return Err(refused("unknown kid")),
        }
        let expected = Expected {
            issuer: &fed.issuer,
            subject: &fed.subject,
            audience: fed.audience.as_deref().unwrap_or(&req.token_endpoint),
        };
        let now = unix_now();
        if let Err(e) = assertion::check_claims(&token.claims, &expected, now) {
            return Err(refused(match e {
                AssertionError::Invalid(why) => why,
                _ => "claims",
            }));
        }
        if let (Some(jti), Some(exp)) = (&token.claims.jti, token.claims.exp) {
            match self.seen.first_use(&fed.issuer, jti, exp, now) {
                Ok(()) => {}
                Err(Replay::Replayed) => return Err(refused("jti replayed")),
                Err(Replay::Crowded) => return Err(GrantError::Throttled),
            }
        }
        Ok(Grant {
            tenant: found.tenant_id.clone(),
            client: fed.client_id.clone(),
            via: Via::Federation(fed.id.clone()),
            scopes: granted_scopes(req.scopes, found.client_scopes)?,
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

/// The scopes asked for, if the client has them all; every scope of the client if none.
fn granted_scopes(asked: Option<Scopes>, client: Scopes) -> Result<Scopes, GrantError> {
    match asked {
        None => Ok(client),
        Some(asked) if !asked.is_empty() && asked.is_subset(client) => Ok(asked),
        Some(_) => Err(GrantError::InvalidScope),
    }
}

fn digest(secret: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
