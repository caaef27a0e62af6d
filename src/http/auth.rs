//! Bearer authentication: signature and claims (`auth::SigningKey::verify`), then a database
//! check that the token id is known, belongs to the claimed tenant, is not revoked and not
//! expired. The tenant comes from the token only. Every failure is the same 401 for the client;
//! the reason is logged with the token id, never the token.

use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;

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

pub async fn authenticate(app: &Arc<App>, headers: &HeaderMap) -> Result<Principal, AuthFailure> {
    let token = bearer(headers).ok_or(AuthFailure::Rejected(TokenError::Malformed))?;
    let now = unix_now();
    let claims = app.key.verify(token, now).map_err(AuthFailure::Rejected)?;
    let jti = claims.jti.clone();
    let record = app
        .store
        // A primary-key lookup: run on this thread (see `Store::read_point`).
        .read_point(move |conn| tokens::get(conn, &jti))
        .await
        .map_err(AuthFailure::Store)?
        .ok_or(AuthFailure::Rejected(TokenError::Unknown))?;
    if record.tenant_id != claims.tid {
        return Err(AuthFailure::Rejected(TokenError::Invalid));
    }
    if record.revoked.is_some() {
        return Err(AuthFailure::Rejected(TokenError::Revoked));
    }
    let principal = Principal {
        tenant_id: record.tenant_id,
        token_id: record.id,
    };
    if app.touch_due(&principal.token_id) {
        let id = principal.token_id.clone();
        let store = app.store.clone();
        // Best effort and off the request path: a lost `last_used` update is harmless.
        tokio::spawn(async move {
            let at = store::now_rfc3339();
            if let Err(e) = store.write(move |conn| tokens::touch(conn, &id, &at)).await {
                tracing::debug!(error = %e, "could not record token use");
            }
        });
    }
    Ok(principal)
}
