//! Request dispatch: health endpoints, then authentication, then one `match` on method and path
//! below `server.base_path`. Also the request log line (one per request, with a request id that
//! is returned as `X-Request-Id`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use serde_json::Value;

use super::auth::{self, Refusal};
use super::client::client_addr;
use super::feed;
use super::oauth;
use super::resources::{self, Ctx, Handled};
use super::response::{self, Body};
use crate::app::App;
use crate::auth::{Claimed, Permission, Principal, TokenError};
use crate::scim::discovery;
use crate::scim::error::ScimError;
use crate::scim::list;
use crate::scim::schema::ResourceKind;
use crate::store::Deadline;
use crate::telemetry::metrics::{method_label, RequestLabels, RouteLabels};
use crate::telemetry::reqlog::Draft;

/// Handle one request. Never fails: every error becomes a SCIM error response.
pub async fn handle(app: Arc<App>, mut req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = route_label(app.config.base_path(), &path);
    let client = client_addr(peer, req.headers(), &app.settings.trusted_proxies);
    app.metrics.in_flight.inc();
    let draft = Arc::new(Draft::new(&request_id, method.as_str(), &path));
    let timeout = Duration::from_secs(app.config.limits.request_timeout_secs);
    // The deadline decides whether the request's write starts (`store::writer`): at the timeout
    // a request whose write has not started is abandoned (503: nothing changed); one whose write
    // has started waits for its real answer, which the write's time budget bounds.
    let deadline = Deadline::after(timeout);
    req.extensions_mut().insert(deadline.clone());
    // A long-poll's wait does not count against the request timeout.
    let allowed = match route {
        "/feed/v1/changes" => timeout + Duration::from_secs(feed::MAX_WAIT_SECS),
        _ => timeout,
    };
    let mut routed = std::pin::pin!(route_request(&app, req, &draft, client));
    let outcome = match tokio::time::timeout(allowed, routed.as_mut()).await {
        Ok(outcome) => outcome,
        Err(_) if deadline.abandon() => Outcome::Scim(Err(ScimError::unavailable(
            "The request took too long and was abandoned before it changed anything; retry later",
        ))),
        Err(_) => routed.await,
    };
    app.metrics.in_flight.dec();
    let (mut resp, error) = match outcome {
        Outcome::Plain(r) => (r, None),
        Outcome::Scim(Ok(r)) => (r, None),
        Outcome::Scim(Err(e)) | Outcome::Refused(e) => (response::error(&e), Some(e)),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let status = resp.status().as_u16();
    let scim_type = error.as_ref().and_then(|e| e.scim_type).map(|t| t.as_str());
    let elapsed = started.elapsed();
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route.to_string(),
            method: method_label(&method).to_string(),
            status: status.to_string(),
            scim_type: scim_type.unwrap_or("").to_string(),
        })
        .inc();
    app.metrics
        .latency
        .get_or_create(&RouteLabels {
            route: route.to_string(),
        })
        .observe(elapsed.as_secs_f64());
    let mut entry = draft.snapshot();
    if route != "health" && !draft.is_logged() {
        entry.status = status;
        entry.scim_type = scim_type.map(str::to_string);
        if let Some(e) = &error {
            entry.detail = Some(e.detail.chars().take(300).collect());
        }
        // A request without a valid token names no tenant: anyone can send those, so each
        // address gets a few entries a minute (enough to see Entra's 401s), the rest counted.
        let all = IpAddr::from([0, 0, 0, 0]);
        if entry.tenant_id.is_some()
            || (app.anonymous_log.take(&client) && app.anonymous_log_total.take(&all))
        {
            app.log.push(entry.clone());
        } else {
            app.metrics.log_suppressed.inc();
        }
    }
    tracing::info!(
        request_id = %request_id,
        method = %entry.method,
        path = %entry.path,
        client = %client,
        status,
        tenant = entry.tenant_id.as_deref().unwrap_or("-"),
        ms = elapsed.as_millis() as u64,
        "request"
    );
    resp
}

/// The outcome of routing: a SCIM result (errors rendered later, so their scimType can be
/// counted and logged) or a plain response (health endpoints).
enum Outcome {
    Scim(Result<Response<Body>, ScimError>),
    Plain(Response<Body>),
    /// The token was refused: 401 (counted against the client's address).
    Refused(ScimError),
}

/// A low-cardinality label for metrics: the route pattern, never ids.
fn route_label(base: &str, path: &str) -> &'static str {
    if matches!(path, "/healthz" | "/livez" | "/readyz" | "/metrics") {
        return "health";
    }
    if path == oauth::TOKEN_PATH || path == oauth::METADATA_PATH {
        return "oauth";
    }
    if let Some(rest) = path.strip_prefix(feed::PREFIX) {
        return match rest {
            "/changes" => "/feed/v1/changes",
            "/snapshot" => "/feed/v1/snapshot",
            "/position" => "/feed/v1/position",
            _ => "other",
        };
    }
    let Some(rest) = path.strip_prefix(base) else {
        return "other";
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        [k] if k.eq_ignore_ascii_case("Users") => "/Users",
        [k] if k.eq_ignore_ascii_case("Groups") => "/Groups",
        [k, s] if k.eq_ignore_ascii_case("Users") && *s == ".search" => "/Users/.search",
        [k, s] if k.eq_ignore_ascii_case("Groups") && *s == ".search" => "/Groups/.search",
        [k, _] if k.eq_ignore_ascii_case("Users") => "/Users/{id}",
        [k, _] if k.eq_ignore_ascii_case("Groups") => "/Groups/{id}",
        [".search"] => "/.search",
        [d, ..] if is_discovery(d) => "discovery",
        _ => "other",
    }
}

async fn route_request(
    app: &Arc<App>,
    req: Request<Incoming>,
    draft: &Arc<Draft>,
    client: IpAddr,
) -> Outcome {
    let path = req.uri().path().to_string();
    match path.as_str() {
        oauth::TOKEN_PATH => return Outcome::Plain(oauth::token(app, req, draft, client).await),
        oauth::METADATA_PATH => return Outcome::Plain(oauth::metadata(app)),
        "/healthz" => return Outcome::Plain(health(app).await),
        "/livez" => return Outcome::Plain(response::text(200, "ok\n")),
        "/readyz" => return Outcome::Plain(ready(app)),
        "/metrics" if app.config.admin.metrics_on_public_port => {
            return Outcome::Plain(metrics(app).await)
        }
        _ => {}
    }
    let base = app.config.base_path();
    // The change feed has its own prefix, outside the SCIM base path.
    let feed_rest = path
        .strip_prefix(feed::PREFIX)
        .filter(|r| r.is_empty() || r.starts_with('/'));
    let api = match feed_rest {
        Some(rest) => Api::Feed(rest),
        None => match path
            .strip_prefix(base)
            .filter(|r| r.is_empty() || r.starts_with('/'))
        {
            Some(rest) => Api::Scim(rest),
            None => {
                return Outcome::Scim(Err(ScimError::not_found(format!("no resource at {path}"))))
            }
        },
    };
    // An address that keeps failing authentication is answered 429 before its token costs
    // anything (a signature check, a database lookup) for the rest of the minute.
    if app.auth_failures.exhausted(&client) {
        return Outcome::Scim(Err(ScimError::too_many_requests(
            "Too many failed authentications from this address; retry after the delay in Retry-After",
        )));
    }
    let outcome = authenticated_request(app, req, draft, &path, api).await;
    if let Outcome::Refused(_) = outcome {
        app.auth_failures.take(&client);
    }
    outcome
}

/// Which API a request path is for, and its path below that API's prefix.
#[derive(Clone, Copy)]
enum Api<'a> {
    Scim(&'a str),
    Feed(&'a str),
}

async fn authenticated_request(
    app: &Arc<App>,
    req: Request<Incoming>,
    draft: &Arc<Draft>,
    path: &str,
    api: Api<'_>,
) -> Outcome {
    let (Api::Scim(rest) | Api::Feed(rest)) = api;
    let claimed = match auth::claim(app, req.headers()) {
        Ok(c) => c,
        Err(why) => return refused(draft, why, path),
    };
    let segments: Vec<String> = rest
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let handled = if let Api::Feed(_) = api {
        handle_feed(app, &claimed, req, draft, &segs).await
    } else if req.method() == Method::GET {
        // The database half of authentication runs inside the handler's own read transaction.
        handle_read(app, &claimed, req, draft, &segs).await
    } else {
        // Anything else is confirmed before it starts, as every write must be.
        match auth::confirm(app, draft, &claimed).await {
            Ok(who) => {
                let result = handle_write(app, &who, req, draft, &segs).await;
                Handled::Confirmed(who, result)
            }
            Err(refusal) => Handled::Refused(refusal),
        }
    };
    let result = match handled {
        Handled::Confirmed(_who, result) => result,
        // Ended without a read (discovery, an error found before reading): no answer but 401
        // for a token the database does not confirm.
        Handled::Unconfirmed(result) => match auth::confirm(app, draft, &claimed).await {
            Ok(_who) => result,
            Err(refusal) => return refusal_outcome(draft, refusal, path),
        },
        Handled::Refused(refusal) => return refusal_outcome(draft, refusal, path),
    };
    if let Err(e) = &result {
        if e.status >= 500 {
            tracing::error!(detail = %e.detail, "request failed");
        }
    }
    Outcome::Scim(result)
}

/// The one answer to a token that failed: 401, the reason in the log, never the token.
fn refused(draft: &Draft, why: TokenError, path: &str) -> Outcome {
    tracing::warn!(reason = why.as_str(), path = %path, "authentication failed");
    draft.update(|e| e.detail = Some(format!("token refused: {}", why.as_str())));
    match why {
        TokenError::AccessTokenExpired => Outcome::Refused(ScimError::access_token_expired()),
        _ => Outcome::Refused(ScimError::unauthorized()),
    }
}

fn refusal_outcome(draft: &Draft, refusal: Refusal, path: &str) -> Outcome {
    match refusal {
        Refusal::Token(why) => refused(draft, why, path),
        Refusal::Unavailable(e) => Outcome::Scim(Err(e)),
    }
}

/// Per-token rate limit, checked once the request has a token whose signature holds.
fn rate_limited(app: &App, claimed: &Claimed) -> Result<(), ScimError> {
    app.limiter
        .check_key(&claimed.credential().id().to_string())
        .map_err(|_| {
            ScimError::too_many_requests(
                "Request rate limit for this token exceeded; retry after the delay in Retry-After",
            )
        })
}

fn resource_kind(segment: &str) -> Option<ResourceKind> {
    if segment.eq_ignore_ascii_case("Users") {
        Some(ResourceKind::User)
    } else if segment.eq_ignore_ascii_case("Groups") {
        Some(ResourceKind::Group)
    } else {
        None
    }
}

/// A GET, on behalf of a claim: handlers confirm it in their own read.
async fn handle_read(
    app: &Arc<App>,
    claimed: &Claimed,
    req: Request<Incoming>,
    draft: &Arc<Draft>,
    segs: &[&str],
) -> Handled {
    if let Err(e) = rate_limited(app, claimed) {
        return Handled::Unconfirmed(Err(e));
    }
    let ctx = match Ctx::new(app.clone(), &req, draft.clone()) {
        Ok(ctx) => ctx,
        Err(e) => return Handled::Unconfirmed(Err(e)),
    };
    let base = ctx.base_url();
    let outcome = match segs {
        [disc, rest @ ..] if is_discovery(disc) => Ok(Handled::Unconfirmed(discovery_get(
            disc,
            rest,
            &base,
            app.config.limits.max_body_bytes,
        ))),
        [".search"] => Err(ScimError::method_not_allowed(".search takes POST").into()),
        [kind, ".search"] if resource_kind(kind).is_some() => {
            Err(ScimError::method_not_allowed(".search takes POST").into())
        }
        [kind] => match resource_kind(kind) {
            Some(kind) => {
                let params = list::ListParams::from_query(ctx.query_pairs());
                super::list::list(&ctx, claimed, kind, params).await
            }
            None => Err(ScimError::not_found("no such endpoint").into()),
        },
        [kind, id] => match resource_kind(kind) {
            Some(kind) => resources::get(&ctx, claimed, kind, id).await,
            None => Err(ScimError::not_found("no such endpoint").into()),
        },
        _ => Err(ScimError::not_found("no such endpoint").into()),
    };
    outcome.unwrap_or_else(|handled| handled)
}

/// The change feed: a GET on behalf of the claim (confirmed in the handler's read), a PUT of
/// the position for a confirmed principal.
async fn handle_feed(
    app: &Arc<App>,
    claimed: &Claimed,
    req: Request<Incoming>,
    draft: &Arc<Draft>,
    segs: &[&str],
) -> Handled {
    if let Err(e) = rate_limited(app, claimed) {
        return Handled::Unconfirmed(Err(e));
    }
    let ctx = match Ctx::new(app.clone(), &req, draft.clone()) {
        Ok(ctx) => ctx,
        Err(e) => return Handled::Unconfirmed(Err(e)),
    };
    match (req.method().clone(), segs) {
        (Method::GET, _) => feed::get(&ctx, claimed, segs).await,
        (Method::PUT, ["position"]) => match auth::confirm(app, draft, claimed).await {
            Ok(who) => {
                let result = match read_json(&ctx, req).await {
                    Ok(body) => feed::put_position(app, &who, body).await,
                    Err(e) => Err(e),
                };
                Handled::Confirmed(who, result)
            }
            Err(refusal) => Handled::Refused(refusal),
        },
        (method, ["changes" | "snapshot" | "position"]) => Handled::Unconfirmed(Err(
            ScimError::method_not_allowed(format!("{method} is not allowed here")),
        )),
        _ => Handled::Unconfirmed(Err(ScimError::not_found("no such feed endpoint"))),
    }
}

/// Any other method, for a principal the database has confirmed.
async fn handle_write(
    app: &Arc<App>,
    who: &Principal,
    req: Request<Incoming>,
    draft: &Arc<Draft>,
    segs: &[&str],
) -> Result<Response<Body>, ScimError> {
    if !who.may(Permission::WriteDirectory) {
        // `feed.read` may GET resources, never change them (nor search with POST).
        return Err(ScimError::forbidden(
            "This credential's scope does not allow changing the directory (it needs scope scim)",
        ));
    }
    let key = who.credential().id().to_string();
    if app.limiter.check_key(&key).is_err() {
        return Err(ScimError::too_many_requests(
            "Request rate limit for this token exceeded; retry after the delay in Retry-After",
        ));
    }
    let ctx = Ctx::new(app.clone(), &req, draft.clone())?;
    let method = req.method().clone();
    match segs {
        [disc, ..] if is_discovery(disc) => Err(ScimError::method_not_allowed(format!(
            "{disc} is read-only; use GET"
        ))),
        [kind] if resource_kind(kind).is_some() => {
            let kind = resource_kind(kind).ok_or_else(ScimError::internal)?;
            match method {
                Method::POST => {
                    resources::create(&ctx, who, kind, read_json(&ctx, req).await?).await
                }
                _ => Err(ScimError::method_not_allowed(format!(
                    "{method} is not allowed on {}",
                    kind.resource_type().endpoint
                ))),
            }
        }
        [kind, search] if resource_kind(kind).is_some() && *search == ".search" => {
            let kind = resource_kind(kind).ok_or_else(ScimError::internal)?;
            if method != Method::POST {
                return Err(ScimError::method_not_allowed(".search takes POST"));
            }
            let params = list::ListParams::from_search_body(&read_json(&ctx, req).await?)?;
            super::list::search(&ctx, who, kind, params).await
        }
        [kind, id] if resource_kind(kind).is_some() => {
            let kind = resource_kind(kind).ok_or_else(ScimError::internal)?;
            match method {
                Method::PUT => {
                    resources::replace(&ctx, who, kind, id, read_json(&ctx, req).await?).await
                }
                Method::PATCH => {
                    resources::patch(&ctx, who, kind, id, read_json(&ctx, req).await?).await
                }
                Method::DELETE => resources::delete(&ctx, who, kind, id).await,
                _ => Err(ScimError::method_not_allowed(format!(
                    "{method} is not allowed on a single resource"
                ))),
            }
        }
        [".search"] => {
            if method != Method::POST {
                return Err(ScimError::method_not_allowed(".search takes POST"));
            }
            let params = list::ListParams::from_search_body(&read_json(&ctx, req).await?)?;
            super::list::search_all(&ctx, who, params).await
        }
        _ => Err(ScimError::not_found("no such endpoint")),
    }
}

fn is_discovery(segment: &str) -> bool {
    [
        "ServiceProviderConfig",
        "ServiceProviderConfigs",
        "Schemas",
        "ResourceTypes",
    ]
    .iter()
    .any(|d| d.eq_ignore_ascii_case(segment))
}

fn discovery_get(
    what: &str,
    rest: &[&str],
    base: &str,
    max_body: usize,
) -> Result<Response<Body>, ScimError> {
    let what = what.to_ascii_lowercase();
    let body = match (what.as_str(), rest) {
        ("serviceproviderconfig" | "serviceproviderconfigs", []) => {
            discovery::service_provider_config(base, max_body)
        }
        ("schemas", []) => {
            let all = discovery::all_schemas(base);
            list::response(all.len(), 1, all)
        }
        ("schemas", [id]) => {
            let s = discovery::find_schema(id)
                .ok_or_else(|| ScimError::not_found(format!("schema {id} not found")))?;
            discovery::schema(s, base)
        }
        ("resourcetypes", []) => {
            let all = discovery::all_resource_types(base);
            list::response(all.len(), 1, all)
        }
        ("resourcetypes", [id]) => {
            let rt = discovery::find_resource_type(id)
                .ok_or_else(|| ScimError::not_found(format!("resource type {id} not found")))?;
            discovery::resource_type(rt, base)
        }
        _ => return Err(ScimError::not_found("no such endpoint")),
    };
    Ok(response::json(200, &body))
}

/// Read a JSON request body: size-limited (413), `application/json` or `application/scim+json`
/// (any parameters such as charset; a missing Content-Type is tolerated), syntax errors → 400.
async fn read_json(ctx: &Ctx, req: Request<Incoming>) -> Result<Value, ScimError> {
    let max = ctx.app.config.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        // Refuse before reading: a declared oversize body is never buffered.
        return Err(ScimError::payload_too_large(format!(
            "request body is larger than {max} bytes"
        )));
    }
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let ct = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !(ct == "application/json" || ct == "application/scim+json" || ct.is_empty()) {
            return Err(ScimError::unsupported_media_type(format!(
                "Content-Type {ct} is not supported; use application/scim+json"
            )));
        }
    }
    let body = Limited::new(req.into_body(), max);
    let bytes: Bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(ScimError::payload_too_large(format!(
                "request body is larger than {max} bytes"
            )))
        }
        Err(_) => {
            return Err(ScimError::invalid_syntax(
                "the request body could not be read",
            ))
        }
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("request body is not valid JSON: {e}")))
}

/// `GET /readyz`: 200 once migrations ran, TLS is loaded, the listener is bound and the writer
/// thread is running.
pub fn ready(app: &Arc<App>) -> Response<Body> {
    if app.is_ready() {
        response::text(200, "ready\n")
    } else {
        response::text(503, "not ready\n")
    }
}

/// `GET /metrics` (OpenMetrics text).
pub async fn metrics(app: &Arc<App>) -> Response<Body> {
    let dropped = app.log.dropped.load(std::sync::atomic::Ordering::Relaxed);
    match app.metrics.render(&app.store, dropped).await {
        Ok(text) => response::openmetrics(text),
        Err(e) => {
            tracing::error!(error = %e, "metrics failed");
            response::text(500, "metrics unavailable\n")
        }
    }
}

/// `GET /healthz`: 200 when the database answers a query.
pub async fn health(app: &Arc<App>) -> Response<Body> {
    let ok = app.store.read(crate::store::health::ping).await.is_ok();
    if ok {
        response::text(200, "ok\n")
    } else {
        response::text(503, "database unavailable\n")
    }
}
