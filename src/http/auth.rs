//! Bearer authentication in two halves. `verify`: signature and claims
//! (`auth::SigningKey::verify`), no I/O. `check`: the database confirms that the token id is
//! known, belongs to the claimed tenant and is not revoked — on every request, so a revocation
//! holds from the next request on. The tenant comes from the token only. Every failure is the
//! same 401 for the client; the reason is logged with the token id, never the token.
//!
//! `check` runs either in a read of its own (`confirm`, before anything is written) or as the
//! first statement of the request's own read transaction (`http::resources::read`): a lookup then
//! takes one read transaction instead of two. Either way nothing is returned or changed before
//! it passed; `http::router` confirms any request that ends without having read.

use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;
use rusqlite::Connection;

use crate::app::App;
use crate::auth::{unix_now, Principal, TokenError};
use crate::store::{self, tokens, StoreError};
use std::sync::Arc;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub enum AuthFailure {
    Rejected(TokenError),
    Store(StoreError),
}

/// The signature half: who the token says it is. Not yet a caller: see `check`.
pub fn verify(app: &App, headers: &HeaderMap) -> Result<Principal, TokenError> {
    let token = bearer(headers).ok_or(TokenError::Malformed)?;
    let claims = app.key.verify(token, unix_now())?;
    Ok(Principal {
        tenant_id: claims.tid,
        token_id: claims.jti,
    })
}

/// The database half, inside whatever transaction `conn` is in.
pub fn check(conn: &Connection, claimed: &Principal) -> store::Result<Result<(), TokenError>> {
    Ok(match tokens::state(conn, &claimed.token_id)? {
        None => Err(TokenError::Unknown),
        Some(t) if t.tenant_id != claimed.tenant_id => Err(TokenError::Invalid),
        Some(t) if t.revoked => Err(TokenError::Revoked),
        Some(_) => Ok(()),
    })
}

/// `check` in a read of its own (an index point lookup, run on this thread).
pub async fn confirm(app: &Arc<App>, claimed: &Principal) -> Result<(), AuthFailure> {
    let who = claimed.clone();
    app.store
        .read_point(move |conn| check(conn, &who))
        .await
        .map_err(AuthFailure::Store)?
        .map_err(AuthFailure::Rejected)?;
    confirmed(app, claimed);
    Ok(())
}

/// After the database confirmed the token: remember its use (best effort, at most once per
/// interval, off the request path: a lost `last_used` update is harmless).
pub fn confirmed(app: &Arc<App>, principal: &Principal) {
    app.metrics.saw_token(&principal.token_id);
    if app.touch_due(&principal.token_id) {
        let id = principal.token_id.clone();
        let store = app.store.clone();
        tokio::spawn(async move {
            let at = store::now_rfc3339();
            if let Err(e) = store.write(move |conn| tokens::touch(conn, &id, &at)).await {
                tracing::debug!(error = %e, "could not record token use");
            }
        });
    }
}
