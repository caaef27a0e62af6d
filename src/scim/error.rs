//! The one error type of the SCIM protocol layer, shaped like RFC 7644 §3.12.
//!
//! Every failure on a request path ends as a `ScimError`; the HTTP layer renders it as
//! `{"schemas":[…Error],"status":"400","scimType":…,"detail":…}` with `application/scim+json`.
//! Constructors are named after the condition so call sites read like the RFC table.

use std::fmt;

/// `scimType` values from RFC 7644 §3.12, Table 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
    /// RFC 9865 §5: a cursor the server did not make, or cannot read.
    InvalidCursor,
    /// RFC 9865 §5: a cursor that is no longer valid (take a new snapshot).
    ExpiredCursor,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::ExpiredCursor => "expiredCursor",
        }
    }
}

/// A protocol error: HTTP status, optional `scimType`, and a `detail` safe to show a client.
/// `detail` never carries SQL, file paths or internal error chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type,
            detail: detail.into(),
        }
    }
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidFilter), detail)
    }
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidSyntax), detail)
    }
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidPath), detail)
    }
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidValue), detail)
    }
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::NoTarget), detail)
    }
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::Mutability), detail)
    }
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::TooMany), detail)
    }
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }
    pub fn invalid_cursor(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::InvalidCursor), detail)
    }
    /// 410 Gone: the cursor is too old, or from before a restore.
    pub fn expired_cursor(detail: impl Into<String>) -> Self {
        Self::new(410, Some(ScimType::ExpiredCursor), detail)
    }
    /// 400: a list cursor (RFC 9865 paging of `/Users`, `/Groups`) that is no longer valid;
    /// RFC 9865 answers it 400, where the change feed answers 410.
    pub fn expired_page_cursor(detail: impl Into<String>) -> Self {
        Self::new(400, Some(ScimType::ExpiredCursor), detail)
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, None, detail)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            401,
            None,
            "Authentication failed: a valid bearer token is required",
        )
    }
    /// An OAuth access token past its expiry (RFC 6750 §3.1 `invalid_token`): the client should
    /// ask the token endpoint for a new one.
    pub fn access_token_expired() -> Self {
        Self::new(
            401,
            None,
            "The access token expired; request a new one from the token endpoint",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, None, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(405, None, detail)
    }
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        Self::new(413, None, detail)
    }
    pub fn too_many_requests(detail: impl Into<String>) -> Self {
        Self::new(429, None, detail)
    }
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(415, None, detail)
    }
    pub fn not_implemented(detail: impl Into<String>) -> Self {
        Self::new(501, None, detail)
    }
    pub fn insufficient_storage(detail: impl Into<String>) -> Self {
        Self::new(507, None, detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, None, detail)
    }
    /// An internal failure. The cause is logged by the caller; the client sees no internals.
    pub fn internal() -> Self {
        Self::new(500, None, "Internal server error")
    }

    /// Prefix the detail with where the error happened ("Operations[2]: …").
    pub fn at(mut self, location: impl fmt::Display) -> Self {
        self.detail = format!("{location}: {}", self.detail);
        self
    }

    /// The RFC 7644 §3.12 error body.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Some(obj)) = (self.scim_type, body.as_object_mut()) {
            obj.insert("scimType".into(), t.as_str().into());
        }
        body
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scim_type {
            Some(t) => write!(f, "{} {}: {}", self.status, t.as_str(), self.detail),
            None => write!(f, "{}: {}", self.status, self.detail),
        }
    }
}

impl std::error::Error for ScimError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_status_as_string_and_scim_type() {
        let body = ScimError::uniqueness("userName 'a' is already in use").to_json();
        assert_eq!(body["status"], "409");
        assert_eq!(body["scimType"], "uniqueness");
        assert_eq!(
            body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert!(ScimError::not_found("x")
            .to_json()
            .get("scimType")
            .is_none());
    }
}
