//! `POST /oauth2/token` (RFC 6749 §4.4, client credentials) and
//! `GET /.well-known/oauth-authorization-server` (RFC 8414), on the public listener outside
//! `server.base_path`: what Entra's "OAuth2 Client Credentials Grant" calls.
//!
//! The body is form-encoded; the client authenticates with HTTP Basic (`client_secret_basic`:
//! id and secret each form-url-encoded, RFC 6749 §2.3.1), in the body (`client_secret_post`),
//! or both (then they must agree). Errors are RFC 6749 §5.2 JSON, never saying which half of a
//! credential was wrong. OAuth is served only when `server.public_url` is set: the issuer
//! never comes from a `Host` header.
//!
//! A federated client authenticates with `client_assertion_type=urn:ietf:params:oauth:client-
//! assertion-type:jwt-bearer` and a `client_assertion` JWT instead (RFC 7523 §2.2,
//! `private_key_jwt`); `client_id` is then optional. One method per request (RFC 6749 §2.3):
//! an assertion with a secret or a Basic header is `invalid_request`, as is an assertion that
//! is not a JWT; any other failed check is the same `invalid_client`.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response};
use serde_json::{json, Value};

use super::response::{self, Body};
use crate::app::App;
use crate::auth::assertion::{self, JWT_BEARER};
use crate::auth::grant::{GrantError, GrantRequest, Proof};
use crate::auth::{unix_now, Claims};
use crate::domain::{ClientId, Scope, Scopes};
use crate::telemetry::reqlog::Draft;

pub const TOKEN_PATH: &str = "/oauth2/token";
pub const METADATA_PATH: &str = "/.well-known/oauth-authorization-server";

/// A token request is a few hundred bytes; anything near this is not one.
const MAX_FORM_BYTES: usize = 8 * 1024;

/// `GET /.well-known/oauth-authorization-server`.
pub fn metadata(app: &App) -> Response<Body> {
    let Some(issuer) = &app.settings.public_url else {
        return not_configured();
    };
    let body = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}{TOKEN_PATH}"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": assertion::ALGORITHMS
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>(),
        "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "response_types_supported": [],
    });
    response::json(200, &body)
}

fn not_configured() -> Response<Body> {
    oauth_error(
        404,
        "invalid_request",
        "OAuth is not enabled on this server: set server.public_url",
        false,
    )
}

/// `POST /oauth2/token`.
pub async fn token(
    app: &Arc<App>,
    req: Request<Incoming>,
    draft: &Draft,
    from: IpAddr,
) -> Response<Body> {
    if app.settings.public_url.is_none() {
        return not_configured();
    }
    if req.method() != Method::POST {
        return oauth_error(
            405,
            "invalid_request",
            "the token endpoint takes POST",
            false,
        );
    }
    let basic_used = req.headers().contains_key(AUTHORIZATION);
    let Some(issuer) = &app.settings.public_url else {
        return not_configured();
    };
    let request = match parse(req, format!("{issuer}{TOKEN_PATH}")).await {
        Ok(r) => r,
        Err((status, code, why)) => return oauth_error(status, code, why, basic_used),
    };
    let mut client = request
        .client
        .as_ref()
        .map_or_else(|| "(named by its assertion)".to_string(), |c| c.to_string());
    draft.update(|e| e.resource_id = request.client.as_ref().map(|c| c.to_string()));
    match app.granter.grant(&app.store, from, request).await {
        Ok(grant) => {
            let now = unix_now();
            let lifetime = app.config.oauth.access_token_lifetime_secs;
            client = grant.client.to_string();
            let claims = Claims::access(
                &grant.tenant,
                &grant.client,
                &grant.via,
                grant.scopes,
                now,
                now + lifetime as i64,
            );
            let Ok(token) = app.key.issue(&claims) else {
                return oauth_error(500, "server_error", "the token could not be signed", false);
            };
            app.metrics.oauth_outcome("issued");
            draft.update(|e| {
                e.resource_id = Some(grant.client.to_string());
                e.tenant_id = Some(grant.tenant.to_string());
                e.token_id = Some(grant.client.to_string());
                e.detail = Some(format!("access token issued to client {client}"));
            });
            let body = json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": lifetime,
                "scope": grant.scopes.to_string(),
            });
            no_store(response::json(200, &body))
        }
        Err(e) => {
            let (status, code, why, outcome) = match e {
                GrantError::MalformedAssertion => (
                    400,
                    "invalid_request",
                    "client_assertion is not a JWT",
                    "invalid_request",
                ),
                GrantError::KeysUnavailable => {
                    (503, "temporarily_unavailable", "retry later", "unavailable")
                }
                GrantError::InvalidClient => (
                    401,
                    "invalid_client",
                    "client authentication failed",
                    "invalid_client",
                ),
                GrantError::InvalidScope => (
                    400,
                    "invalid_scope",
                    "the requested scope is not granted to this client",
                    "invalid_scope",
                ),
                GrantError::Throttled => (
                    429,
                    "slow_down",
                    "too many token requests; retry after the delay in Retry-After",
                    "throttled",
                ),
                GrantError::Store(e) => {
                    tracing::error!(error = %e, "token request failed");
                    (503, "temporarily_unavailable", "retry later", "unavailable")
                }
            };
            app.metrics.oauth_outcome(outcome);
            draft.update(|e| e.detail = Some(format!("client {client}: {code}")));
            oauth_error(status, code, why, basic_used)
        }
    }
}

type Refusal = (u16, &'static str, &'static str);

/// The request's client credentials and scope, from the Basic header and/or the form.
async fn parse(req: Request<Incoming>, token_endpoint: String) -> Result<GrantRequest, Refusal> {
    let invalid = |why| (400, "invalid_request", why);
    let basic = match req.headers().get(AUTHORIZATION) {
        None => None,
        Some(v) => Some(basic_credentials(v).ok_or((
            401,
            "invalid_client",
            "client authentication failed",
        ))?),
    };
    let form_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false);
    if !form_type {
        return Err(invalid(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let bytes: Bytes = match Limited::new(req.into_body(), MAX_FORM_BYTES)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(_) => return Err(invalid("the body is too large or could not be read")),
    };
    let mut grant_type = None;
    let mut scope = None;
    let mut body_id = None;
    let mut body_secret = None;
    let mut assertion_type = None;
    let mut assertion = None;
    for (k, v) in form_urlencoded::parse(&bytes) {
        let slot = match k.as_ref() {
            "grant_type" => &mut grant_type,
            "scope" => &mut scope,
            "client_id" => &mut body_id,
            "client_secret" => &mut body_secret,
            "client_assertion_type" => &mut assertion_type,
            "client_assertion" => &mut assertion,
            // Unknown parameters (Entra may send `resource`) are ignored (RFC 6749 §3.2).
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return Err(invalid("a parameter was sent more than once"));
        }
    }
    match grant_type.as_deref() {
        None => return Err(invalid("grant_type is missing")),
        Some("client_credentials") => {}
        Some(_) => {
            return Err((
                400,
                "unsupported_grant_type",
                "only grant_type=client_credentials is supported",
            ))
        }
    }
    let scopes = || -> Result<Option<Scopes>, Refusal> {
        match &scope {
            None => Ok(None),
            Some(text) => Ok(Some(Scopes::parse(text).ok_or((
                400,
                "invalid_scope",
                "unknown scope; this server grants scim and feed.read",
            ))?)),
        }
    };
    if assertion_type.is_some() || assertion.is_some() {
        let (Some(kind), Some(assertion)) = (assertion_type, assertion) else {
            return Err(invalid(
                "client_assertion and client_assertion_type go together",
            ));
        };
        if kind != JWT_BEARER {
            return Err(invalid(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        if basic.is_some() || body_secret.is_some() {
            return Err(invalid(
                "use one client authentication method: a secret or an assertion",
            ));
        }
        return Ok(GrantRequest {
            client: body_id.map(ClientId::new),
            proof: Proof::Assertion(assertion),
            scopes: scopes()?,
            token_endpoint,
        });
    }
    let (id, secret) = match (basic, body_id, body_secret) {
        (Some((id, secret)), None, None) => (id, secret),
        (Some((id, secret)), body_id, body_secret) => {
            // Both: what the body names must be what the header names.
            let agrees = body_id.as_ref().is_none_or(|b| *b == id)
                && body_secret.as_ref().is_none_or(|b| *b == secret);
            if !agrees {
                return Err(invalid("the credentials in the header and the body differ"));
            }
            (id, secret)
        }
        (None, Some(id), Some(secret)) => (id, secret),
        (None, _, _) => {
            return Err((401, "invalid_client", "client authentication failed"));
        }
    };
    Ok(GrantRequest {
        client: Some(ClientId::new(id)),
        proof: Proof::Secret(secret),
        scopes: scopes()?,
        token_endpoint,
    })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let text = value.to_str().ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> Option<String> {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// An RFC 6749 §5.2 error. `basic`: the client tried HTTP Basic, so a 401 names that scheme.
fn oauth_error(status: u16, code: &str, description: &str, basic: bool) -> Response<Body> {
    let body: Value = json!({"error": code, "error_description": description});
    let mut resp = no_store(response::json(status, &body));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == 401 && basic {
        headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"grouptalk-scim\""),
        );
    }
    if status == 429 || status == 503 {
        headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

fn no_store(mut resp: Response<Body>) -> Response<Body> {
    let headers = resp.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_url_decoded() {
        let raw = base64::engine::general_purpose::STANDARD.encode("my%20client:s%3Aecret+x%2B");
        let v = HeaderValue::from_str(&format!("Basic {raw}")).unwrap();
        assert_eq!(
            basic_credentials(&v),
            Some(("my client".into(), "s:ecret x+".into()))
        );
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(basic_credentials(&bearer), None);
    }
}
