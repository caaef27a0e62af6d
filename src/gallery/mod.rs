//! Microsoft's gallery validation, the part that talks to the SCIM endpoint directly: the checks
//! `grouptalk-scim selftest` runs against a live appliance and the end-to-end tests run against
//! the real binary (`tests/e2e/gallery.rs`), so the two cannot drift apart.
//!
//! Microsoft certifies gallery provisioning with a Logic App that runs 25 tests; 9 of them call
//! the SCIM endpoint themselves instead of going through Entra's provisioning engine, plus the
//! OAuth check. Each check here is named after the template test it mirrors and judges the
//! response the way that test does — same requests, same comparisons — with the GroupTalk
//! attribute mapping ([`mapping`]) standing in for the schema the Logic App reads from Entra.
//! `docs/gallery-validation.md` says, test by test, what the template does and what we rely on.
//!
//! Where the template's own comparison would fail a server that follows RFC 7643, the check
//! judges by the RFC and records what the template would conclude in [`Check::template_flaw`]:
//! the selftest prints it and README "Connect Entra ID" says what to do about it.
//!
//! No I/O of its own: every request goes through a [`Transport`] (the CLI's is hyper + rustls;
//! the tests' is their HTTPS client). It must not import `http` (the server).

mod checks;
mod groups;
pub mod mapping;
mod pagination;
mod users;

use serde_json::Value;

pub use checks::{schema_discoverability, validate_credentials};
pub use groups::{group_create, group_update};
pub use pagination::{group_pagination, user_pagination};
pub use users::{null_update, update_manager, user_create, user_update};

/// Domain of the userNames the checks create (RFC 2606: never a real mailbox).
pub const TEST_DOMAIN: &str = "example.com";

/// Page size of the pagination checks, and how many resources they make sure exist.
pub const PAGE_SIZE: usize = 5;
pub const PAGINATION_MINIMUM: u64 = 11;

/// Parallel requests of the pagination checks' creates (the template's concurrency).
pub const PARALLEL_CREATES: usize = 5;

/// A response read whole: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How the checks reach the appliance. Paths are relative to the SCIM base URL (the Tenant URL
/// Entra is given): `/Users?startIndex=1&count=5`. `Sync` because the pagination checks create
/// their resources from several threads, as the template does.
pub trait Transport: Sync {
    /// A SCIM request with the credential the run was given; a JSON body when `body` is set.
    fn scim(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Reply, String>;
    /// A GET under the SCIM base URL with another bearer token (Validate_Credentials).
    fn scim_with_token(&self, token: &str, path: &str) -> Result<Reply, String>;
    /// POST an `application/x-www-form-urlencoded` body to the OAuth token endpoint.
    fn token_request(&self, form: &str) -> Result<Reply, String>;
}

/// What a check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Passed,
    Failed,
    /// Not run: the template would not run it either (e.g. no OAuth endpoint given).
    Skipped,
}

/// One check's result: the template test it mirrors, the verdict, and what was seen.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// Set when the appliance answers as RFC 7643/7644 require but the template's comparison
    /// would still report a failure: what the template would conclude, and why.
    pub template_flaw: Option<String>,
}

impl Check {
    pub(crate) fn new(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
        Check {
            name,
            verdict,
            detail: detail.into(),
            template_flaw: None,
        }
    }
    pub(crate) fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Verdict::Passed, detail)
    }
    pub(crate) fn fail(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Verdict::Failed, detail)
    }
    pub(crate) fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check::new(name, Verdict::Skipped, detail)
    }
}

/// The OAuth client for Validate_Credentials (the template skips it without one).
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
}

/// Every direct check, in the template's order. `oauth` is `None` for a static bearer token.
pub fn run_all(t: &dyn Transport, oauth: Option<&ClientCredentials>) -> Vec<Check> {
    vec![
        schema_discoverability(t),
        null_update(t),
        user_create(t),
        user_update(t),
        group_create(t),
        group_update(t),
        validate_credentials(t, oauth),
        user_pagination(t),
        group_pagination(t),
        update_manager(t),
    ]
}

/// Eight hex digits of a fresh UUID: the template's `substring(guid(), 0, 8)`.
pub(crate) fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// A value as the template's `string(coalesce(x, ''))` sees it: strings as they are, null as
/// empty, anything else as JSON text.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An attribute of a response the way the template's verifications find it: a URN path in its
/// extension object (`body[urn][attr]`), `a.b` as `body[a][b]`, anything else at the top.
/// Filtered paths (`emails[type eq "work"].value`) are not looked up this way.
pub(crate) fn template_get<'a>(body: &'a Value, path: &str) -> &'a Value {
    if path.starts_with("urn:") {
        if let Some((urn, attr)) = path.rsplit_once(':') {
            return &body[urn][attr];
        }
    }
    if let Some((a, b)) = path.split_once('.') {
        return &body[a][b];
    }
    &body[path]
}

/// `/Users/{id}` and friends; ids come from the server, so they are percent-encoded.
pub(crate) fn resource_path(endpoint: &str, id: &str) -> String {
    let id: String =
        percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC).to_string();
    format!("{endpoint}/{id}")
}

/// The `id` of a created resource, or empty.
pub(crate) fn id_of(r: &Reply) -> String {
    r.body["id"].as_str().unwrap_or_default().to_string()
}

/// A short account of a failed response: status, and the SCIM error's scimType and detail.
pub(crate) fn describe(r: &Reply) -> String {
    let mut s = format!("HTTP {}", r.status);
    if let Some(t) = r.body["scimType"].as_str() {
        s.push_str(&format!(" scimType={t}"));
    }
    if let Some(d) = r.body["detail"].as_str() {
        s.push_str(&format!(" detail={d}"));
    }
    s
}

/// The PatchOp envelope.
pub(crate) fn patch_body(operations: Vec<Value>) -> Value {
    serde_json::json!({
        "schemas": [crate::scim::schema::PATCH_OP],
        "Operations": operations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn template_get_reads_extension_objects_dotted_paths_and_top_level_names() {
        let body = json!({
            "urn:x:User": {"costCenter": "c"},
            "name": {"givenName": "g"},
            "externalId": "e"
        });
        assert_eq!(template_get(&body, "urn:x:User:costCenter"), "c");
        assert_eq!(template_get(&body, "name.givenName"), "g");
        assert_eq!(template_get(&body, "externalId"), "e");
        assert!(template_get(&body, "title").is_null());
    }

    #[test]
    fn text_is_the_templates_string_of_coalesce() {
        assert_eq!(text(&Value::Null), "");
        assert_eq!(text(&json!("a")), "a");
        assert_eq!(text(&json!([{"value": "x"}])), r#"[{"value":"x"}]"#);
    }
}
