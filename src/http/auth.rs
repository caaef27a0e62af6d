//! Bearer authentication at the edge, in two halves. `claim`: the `Authorization` header's
//! token, its signature and claims (`auth::SigningKey::claim`), no I/O. `confirm`: the database
//! check (`auth::Claimed::confirm`) in a read of its own — or, for a GET, as the first statement
//! of the request's own read transaction (`http::resources`), so a lookup takes one read
//! transaction instead of two. Only a confirmed `Principal` reaches a handler's answer or the
//! writer. Every failure is the same 401 for the client; the reason is logged with the token id,
//! never the token.

use std::sync::Arc;

use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;

use super::errors::scim_error;
use crate::app::App;
use crate::auth::{unix_now, Claimed, Credential, Principal, TokenError};
use crate::domain::Timestamp;
use crate::scim::error::ScimError;
use crate::store::tokens;
use crate::telemetry::reqlog::Draft;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Why no principal came out of the database check.
pub enum Refusal {
    /// The database refused the token: 401.
    Token(TokenError),
    /// The database could not answer: the SCIM error of that failure (5xx).
    Unavailable(ScimError),
}

/// The signature half: who the request's token says it is.
pub fn claim(app: &App, headers: &HeaderMap) -> Result<Claimed, TokenError> {
    let token = bearer(headers).ok_or(TokenError::Malformed)?;
    app.key.claim(token, unix_now())
}

/// The database half in a read of its own (an index point lookup, run on this thread).
pub async fn confirm(
    app: &Arc<App>,
    draft: &Draft,
    claimed: &Claimed,
) -> Result<Principal, Refusal> {
    let claim = claimed.clone();
    let who = app
        .store
        .read_point(move |conn| claim.confirm(conn))
        .await
        .map_err(|e| Refusal::Unavailable(scim_error(e)))?
        .map_err(Refusal::Token)?;
    accepted(app, draft, &who);
    Ok(who)
}

/// A principal was just confirmed: name the caller in the provisioning log and remember the
/// credential's use (best effort, at most once per interval, off the request path: a lost
/// `last_used` update is harmless).
pub fn accepted(app: &Arc<App>, draft: &Draft, who: &Principal) {
    draft.set_caller(who);
    app.metrics.saw_token(who.credential().id());
    let Credential::Token(token) = who.credential() else {
        return;
    };
    if app.touch_due(token.as_str()) {
        let id = token.clone();
        let store = app.store.clone();
        tokio::spawn(async move {
            let at = Timestamp::now();
            if let Err(e) = store.write(move |conn| tokens::touch(conn, &id, at)).await {
                tracing::debug!(error = %e, "could not record token use");
            }
        });
    }
}
