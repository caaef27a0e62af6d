//! Building HTTP responses: SCIM JSON bodies, errors (RFC 7644 §3.12) and their headers.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, ETAG, LOCATION, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use serde_json::Value;

use crate::scim::error::ScimError;

pub type Body = Full<Bytes>;

pub const SCIM_JSON: &str = "application/scim+json";

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A JSON body with `application/scim+json`.
pub fn json(code: u16, body: &Value) -> Response<Body> {
    json_bytes(code, serde_json::to_vec(body).unwrap_or_default())
}

/// A JSON body already serialised, with `application/scim+json`.
pub fn json_bytes(code: u16, bytes: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status(code);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp
}

/// A single resource: adds `ETag` (and `Location` for 201 Created).
pub fn resource(code: u16, body: &Value, etag: &str, location: Option<&str>) -> Response<Body> {
    let mut resp = json(code, body);
    if let Ok(v) = HeaderValue::from_str(etag) {
        resp.headers_mut().insert(ETAG, v);
    }
    if let Some(Ok(v)) = location.map(HeaderValue::from_str) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

pub fn no_content(etag: Option<&str>) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    if let Some(Ok(v)) = etag.map(HeaderValue::from_str) {
        resp.headers_mut().insert(ETAG, v);
    }
    resp
}

/// The RFC 7644 §3.12 error response. 401 carries `WWW-Authenticate: Bearer`, 405 `Allow`.
pub fn error(e: &ScimError) -> Response<Body> {
    let mut resp = json(e.status, &e.to_json());
    let headers = resp.headers_mut();
    match e.status {
        401 if *e == ScimError::access_token_expired() => {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"grouptalk-scim\", error=\"invalid_token\", \
                     error_description=\"The access token expired\"",
                ),
            );
        }
        401 => {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"grouptalk-scim\""),
            );
        }
        405 => {
            headers.insert(hyper::header::ALLOW, HeaderValue::from_static("GET"));
        }
        429 => {
            headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        503 | 507 => {
            headers.insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        _ => {}
    }
    resp
}

/// Plain-text response for the health endpoints.
pub fn text(code: u16, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status(code);
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Prometheus/OpenMetrics exposition.
pub fn openmetrics(body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    resp
}
