//! Request dispatch: health endpoints, then authentication, then one `match` on method and path
//! below `server.base_path`. Also the request log line (one per request, with a request id that
//! is returned as `X-Request-Id`).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use serde_json::Value;

use super::auth::{authenticate, AuthFailure};
use super::resources::{self, Ctx};
use super::response::{self, Body};
use crate::app::{App, MAX_BODY_BYTES};
use crate::scim::discovery;
use crate::scim::error::ScimError;
use crate::scim::list;
use crate::scim::schema::ResourceKind;

/// Handle one request. Never fails: every error becomes a SCIM error response.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().simple().to_string();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (mut resp, tenant) = route(&app, req).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    tracing::info!(
        request_id = %request_id,
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        tenant = tenant.as_deref().unwrap_or("-"),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp
}

async fn route(app: &Arc<App>, req: Request<Incoming>) -> (Response<Body>, Option<String>) {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return (health(app).await, None);
    }
    let base = app.config.base_path();
    let Some(rest) = path
        .strip_prefix(base)
        .filter(|r| r.is_empty() || r.starts_with('/'))
    else {
        return (
            response::error(&ScimError::not_found(format!("no resource at {path}"))),
            None,
        );
    };
    let principal = match authenticate(app, req.headers()).await {
        Ok(p) => p,
        Err(AuthFailure::Rejected(why)) => {
            tracing::warn!(reason = why.as_str(), path = %path, "authentication failed");
            return (response::error(&ScimError::unauthorized()), None);
        }
        Err(AuthFailure::Store(e)) => return (response::error(&e.into_scim()), None),
    };
    let tenant = principal.tenant_id.clone();
    let ctx = Ctx::new(app.clone(), principal, &req);
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
    let method = req.method().clone();
    let result = dispatch(&ctx, &method, &segs, req).await;
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status >= 500 {
                tracing::error!(detail = %e.detail, "request failed");
            }
            response::error(&e)
        }
    };
    (resp, Some(tenant))
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

async fn dispatch(
    ctx: &Ctx,
    method: &Method,
    segs: &[&str],
    req: Request<Incoming>,
) -> Result<Response<Body>, ScimError> {
    let base = ctx.base_url();
    match segs {
        [disc, rest @ ..] if is_discovery(disc) => {
            if method != Method::GET {
                return Err(ScimError::method_not_allowed(format!(
                    "{disc} is read-only; use GET"
                )));
            }
            discovery_get(disc, rest, &base)
        }
        [kind] if resource_kind(kind).is_some() => {
            let kind = resource_kind(kind).ok_or_else(ScimError::internal)?;
            match *method {
                Method::GET => {
                    resources::list(ctx, kind, list::ListParams::from_query(ctx.query_pairs()))
                        .await
                }
                Method::POST => resources::create(ctx, kind, read_json(req).await?).await,
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
            let params = list::ListParams::from_search_body(&read_json(req).await?)?;
            resources::list(ctx, kind, params).await
        }
        [kind, id] if resource_kind(kind).is_some() => {
            let kind = resource_kind(kind).ok_or_else(ScimError::internal)?;
            match *method {
                Method::GET => resources::get(ctx, kind, id).await,
                Method::PUT => resources::replace(ctx, kind, id, read_json(req).await?).await,
                Method::PATCH => resources::patch(ctx, kind, id, read_json(req).await?).await,
                Method::DELETE => resources::delete(ctx, kind, id).await,
                _ => Err(ScimError::method_not_allowed(format!(
                    "{method} is not allowed on a single resource"
                ))),
            }
        }
        [".search"] => {
            if method != Method::POST {
                return Err(ScimError::method_not_allowed(".search takes POST"));
            }
            let params = list::ListParams::from_search_body(&read_json(req).await?)?;
            resources::search_all(ctx, params).await
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

fn discovery_get(what: &str, rest: &[&str], base: &str) -> Result<Response<Body>, ScimError> {
    let what = what.to_ascii_lowercase();
    let body = match (what.as_str(), rest) {
        ("serviceproviderconfig" | "serviceproviderconfigs", []) => {
            discovery::service_provider_config(base, MAX_BODY_BYTES)
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
async fn read_json(req: Request<Incoming>) -> Result<Value, ScimError> {
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
    let body = Limited::new(req.into_body(), MAX_BODY_BYTES);
    let bytes: Bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(ScimError::payload_too_large(format!(
                "request body is larger than {MAX_BODY_BYTES} bytes"
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

/// `GET /healthz`: 200 when the database answers a query.
async fn health(app: &Arc<App>) -> Response<Body> {
    let ok = app
        .store
        .read(
            |conn| Ok(conn.query_row("SELECT count(*) FROM tenants", [], |r| r.get::<_, i64>(0))?),
        )
        .await
        .is_ok();
    if ok {
        response::text(200, "ok\n")
    } else {
        response::text(503, "database unavailable\n")
    }
}
