//! The admin listener: the read-only dashboard (`/`, `/history`, `/style.css`), `/metrics`,
//! and the probes `/healthz`, `/readyz`, `/livez`. Meant for loopback (default 127.0.0.1:9464,
//! reached over an SSH tunnel); never on the public port (`/metrics` only if
//! `admin.metrics_on_public_port` asks for it). Off loopback, `config` insists on TLS
//! (`admin.tls`) and a token (`admin.token`, HTTP Basic).
//!
//! What protects the pages, in the order a request meets it:
//! - a bounded request head (`ADMIN_HEAD_BYTES`) and search text (`view::MAX_SEARCH_CHARS`);
//! - the `Host` check: an IP literal, `localhost` or a name in `admin.allowed_hosts`, else 403.
//!   A web page that rebinds its own DNS name to 127.0.0.1 still sends that name as `Host`;
//! - the token, when set: 401 with `WWW-Authenticate: Basic` (a browser then asks for it);
//! - on every answer: a `Content-Security-Policy` that allows no script, no frame, no other
//!   origin; the HTML itself escapes every value (`dashboard::html`).
//!
//! The probes skip the Host and token checks: they reveal nothing, and orchestrators probe by
//! IP address without credentials.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, HOST, WWW_AUTHENTICATE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::response::{self, Body};
use super::router;
use crate::app::App;
use crate::dashboard::{self, view};
use crate::domain::TenantId;
use crate::store;

/// Largest request head the admin listener reads (request line and headers): a dashboard URL
/// is short; hyper answers 431 beyond this.
pub const ADMIN_HEAD_BYTES: usize = 16 * 1024;

/// No script, no plugin, no frame, no other origin: styles and images from this server only,
/// forms submit only here.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let mut resp = route(&app, &req).await;
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn route(app: &Arc<App>, req: &Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/healthz" => return router::health(app).await,
        "/readyz" => return router::ready(app),
        "/livez" => return response::text(200, "ok\n"),
        _ => {}
    }
    if !host_allowed(req, &app.config.admin.allowed_hosts) {
        return response::text(
            403,
            "forbidden: this Host is not the admin listener's (add it to admin.allowed_hosts)\n",
        );
    }
    if !app.config.admin.token.is_empty() && !basic_auth_ok(req, &app.config.admin.token) {
        let mut resp = response::text(401, "authentication required: admin.token\n");
        resp.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"grouptalk-scim admin\", charset=\"UTF-8\""),
        );
        return resp;
    }
    let path = req.uri().path();
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut resp = response::text(405, "method not allowed: the dashboard is read-only\n");
        resp.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    match path {
        "/metrics" => router::metrics(app).await,
        "/" => overview(app).await,
        "/history" => history(app, req.uri().query().unwrap_or("")).await,
        "/style.css" => {
            let mut resp = Response::new(Full::new(Bytes::from_static(
                dashboard::STYLESHEET.as_bytes(),
            )));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            );
            resp
        }
        _ => response::text(
            404,
            "not found: try /, /metrics, /healthz, /readyz or /livez\n",
        ),
    }
}

fn html(code: u16, body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

async fn overview(app: &Arc<App>) -> Response<Body> {
    let now = time::OffsetDateTime::now_utc();
    let keys = dashboard::chart::hour_keys(now);
    let since = keys.first().cloned().unwrap_or_default();
    match app
        .store
        .read(move |conn| {
            Ok((
                store::dashboard::overview(conn, &since)?,
                store::dashboard::feed_consumers(conn)?,
                store::dashboard::held(conn)?,
            ))
        })
        .await
    {
        Ok((o, consumers, held)) => {
            html(200, view::overview(&o, &extras(&o, consumers, held), now))
        }
        Err(e) => {
            tracing::error!(error = %e, "dashboard failed");
            response::text(500, "dashboard unavailable\n")
        }
    }
}

/// What the overview shows beyond the maintained counts, per tenant: the change feed's
/// consumers (every tenant has the section, "none" when nobody reads its feed) and the
/// deletion brake's held changes.
fn extras(
    o: &store::dashboard::Overview,
    consumers: Vec<store::dashboard::ConsumerLag>,
    held: Vec<store::dashboard::Held>,
) -> HashMap<TenantId, view::TenantExtras> {
    let mut out: HashMap<TenantId, view::TenantExtras> = o
        .tenants
        .iter()
        .map(|t| {
            let e = view::TenantExtras {
                consumers: Some(Vec::new()),
                ..Default::default()
            };
            (t.id.clone(), e)
        })
        .collect();
    for c in consumers {
        if let Some(list) = out.get_mut(&c.tenant).and_then(|e| e.consumers.as_mut()) {
            list.push(view::FeedConsumer {
                name: c.consumer,
                lag: c.lag,
                last_read: c.updated,
            });
        }
    }
    for h in held {
        if let Some(e) = out.get_mut(&h.tenant) {
            e.held_total = usize::try_from(h.total).unwrap_or(0);
            e.held = Some(
                h.oldest
                    .into_iter()
                    .map(|(at, kind, resource_id, operation)| view::HeldChange {
                        at,
                        kind,
                        resource_id,
                        operation,
                    })
                    .collect(),
            );
        }
    }
    out
}

async fn history(app: &Arc<App>, query: &str) -> Response<Body> {
    let now = time::OffsetDateTime::now_utc();
    let q = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    if q.is_empty() {
        let mut resp = response::text(303, "see /\n");
        resp.headers_mut()
            .insert(hyper::header::LOCATION, HeaderValue::from_static("/"));
        return resp;
    }
    if q.chars().count() > view::MAX_SEARCH_CHARS {
        let message = format!(
            "The search text is longer than {} characters: search by id, userName or displayName.",
            view::MAX_SEARCH_CHARS
        );
        let shown: String = q.chars().take(view::MAX_SEARCH_CHARS).collect();
        return html(400, view::history(&shown, Err(&message), now));
    }
    let text = q.clone();
    match app
        .store
        .read(move |conn| store::dashboard::history(conn, &text))
        .await
    {
        Ok(h) => html(200, view::history(&q, Ok(&h), now)),
        Err(e) => {
            tracing::error!(error = %e, "dashboard history failed");
            response::text(500, "history unavailable\n")
        }
    }
}

/// The `Host` (HTTP/1) or `:authority` (HTTP/2), without its port: an IP literal, `localhost`,
/// or one of `allowed`. Any port: an SSH tunnel may forward another local port.
fn host_allowed(req: &Request<Incoming>, allowed: &[String]) -> bool {
    let host = match req.headers().get(HOST).and_then(|h| h.to_str().ok()) {
        Some(h) => h.to_string(),
        None => match req.uri().authority() {
            Some(a) => a.as_str().to_string(),
            None => return false,
        },
    };
    host_is_ours(&host, allowed)
}

pub fn host_is_ours(host: &str, allowed: &[String]) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, port)) if port.is_empty() || port.starts_with(':') => ip,
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    name.parse::<IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

/// `Authorization: Basic base64(user:password)` whose password is `token` (any user name).
/// Compared as SHA-256 digests in constant time: neither the token nor its length leaks.
fn basic_auth_ok(req: &Request<Incoming>, token: &str) -> bool {
    use base64::Engine;
    let Some(value) = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Some(password) = decoded
        .iter()
        .position(|&b| b == b':')
        .map(|i| &decoded[i + 1..])
    else {
        return false;
    };
    let sha = |b: &[u8]| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b);
    aws_lc_rs::constant_time::verify_slices_are_equal(
        sha(password).as_ref(),
        sha(token.as_bytes()).as_ref(),
    )
    .is_ok()
}

/// Serve until `shutdown` turns true; over TLS when `tls` is Some (`admin.tls`).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let limits = &app.config.limits;
            let handshake = Duration::from_secs(limits.handshake_timeout_secs);
            match tls {
                None => serve_connection(app, stream).await,
                Some(acceptor) => {
                    if let Ok(Ok(s)) =
                        tokio::time::timeout(handshake, acceptor.accept(stream)).await
                    {
                        serve_connection(app, s).await;
                    }
                }
            }
        });
    }
}

async fn serve_connection<S>(app: Arc<App>, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let header_timeout = Duration::from_secs(app.config.limits.header_read_timeout_secs);
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handle(app, req).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(ADMIN_HEAD_BYTES);
    builder
        .http2()
        .max_header_list_size(ADMIN_HEAD_BYTES as u32);
    let _ = builder
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

#[cfg(test)]
mod tests {
    use super::host_is_ours;

    #[test]
    fn only_addresses_localhost_and_listed_names_are_our_host() {
        let allowed = vec!["admin.example.org".to_string()];
        for ok in [
            "127.0.0.1:9464",
            "127.0.0.1",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:9464",
            "[::1]",
            "10.0.0.5:9464",
            "admin.example.org:9464",
            "Admin.Example.org.",
        ] {
            assert!(host_is_ours(ok, &allowed), "{ok}");
        }
        for refused in [
            "evil.example:9464",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io:9464",
            "[::1]evil",
            "localhost:80x",
            "",
        ] {
            assert!(!host_is_ours(refused, &allowed), "{refused}");
        }
    }
}
