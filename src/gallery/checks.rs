//! Schema_Discoverability_Test and Validate_Credentials_Test: what the endpoint says about itself
//! and whether the OAuth client-credentials grant gives a token that works.

use super::mapping::{self, GROUP_TARGETS, USER_TARGETS};
use super::{Check, ClientCredentials, Transport, Verdict};

const SCHEMA: &str = "Schema_Discoverability_Test";
const CREDENTIALS: &str = "Validate_Credentials_Test";

/// Token lifetime the template accepts, in whole minutes (`expires_in` / 60, rounded down).
pub const TOKEN_MINUTES: std::ops::RangeInclusive<u64> = 60..=360;

/// `GET /Schemas` must answer 200 with a non-empty `Resources`, and every mapped user and group
/// attribute must be among the flattened names. Judged per RFC 7643 (Group extensions found
/// through `/ResourceTypes`); when only the template's flattening misses something, that is
/// recorded as the template's flaw.
pub fn schema_discoverability(t: &dyn Transport) -> Check {
    let schemas = match t.scim("GET", "/Schemas", None) {
        Ok(r) if r.status == 200 => r.body,
        Ok(r) => return Check::fail(SCHEMA, format!("/Schemas: {}", super::describe(&r))),
        Err(e) => return Check::fail(SCHEMA, format!("/Schemas: {e}")),
    };
    if schemas["Resources"].as_array().is_none_or(|r| r.is_empty()) {
        return Check::fail(SCHEMA, "/Schemas returned no schemas");
    }
    let types = match t.scim("GET", "/ResourceTypes", None) {
        Ok(r) if r.status == 200 => r.body,
        Ok(r) => return Check::fail(SCHEMA, format!("/ResourceTypes: {}", super::describe(&r))),
        Err(e) => return Check::fail(SCHEMA, format!("/ResourceTypes: {e}")),
    };
    let template = mapping::flatten_like_template(&schemas);
    let rfc = mapping::flatten_per_rfc(&schemas, &types);
    let rfc_missing: Vec<&str> = mapping::missing(USER_TARGETS, &rfc.user)
        .into_iter()
        .chain(mapping::missing(GROUP_TARGETS, &rfc.group))
        .collect();
    if !rfc_missing.is_empty() {
        return Check::fail(SCHEMA, format!("missing attributes: {rfc_missing:?}"));
    }
    let mut check = Check::pass(
        SCHEMA,
        format!(
            "{} user and {} group attributes discoverable",
            USER_TARGETS.len(),
            GROUP_TARGETS.len()
        ),
    );
    let template_missing_user = mapping::missing(USER_TARGETS, &template.user);
    let template_missing_group = mapping::missing(GROUP_TARGETS, &template.group);
    if !template_missing_user.is_empty() || !template_missing_group.is_empty() {
        check.template_flaw = Some(format!(
            "the template reads only the core Group schema, not Group's extension schemas, and \
             would report missing user attrs {template_missing_user:?}, group attrs \
             {template_missing_group:?}"
        ));
    }
    check
}

/// The client-credentials grant at the token endpoint (2xx with `access_token`), a lifetime of
/// 60–360 minutes, and `GET /Users?startIndex=1&count=1` with that token answering 2xx.
/// Skipped without a client, as the template skips it for a static bearer token.
pub fn validate_credentials(t: &dyn Transport, oauth: Option<&ClientCredentials>) -> Check {
    let Some(client) = oauth else {
        return Check::skip(
            CREDENTIALS,
            "static bearer token: no OAuth client given (the template skips this test too)",
        );
    };
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &client.client_id)
        .append_pair("client_secret", &client.client_secret)
        .finish();
    let r = match t.token_request(&form) {
        Ok(r) => r,
        Err(e) => return Check::fail(CREDENTIALS, format!("token endpoint: {e}")),
    };
    let token = r.body["access_token"].as_str().unwrap_or_default();
    if !r.ok() || token.is_empty() {
        return Check::fail(
            CREDENTIALS,
            format!("token endpoint: HTTP {} without an access_token", r.status),
        );
    }
    // The template's `div(coalesce(expires_in, 3600), 60)`.
    let minutes = r.body["expires_in"].as_u64().unwrap_or(3600) / 60;
    if !TOKEN_MINUTES.contains(&minutes) {
        return Check::fail(
            CREDENTIALS,
            format!("token lifetime {minutes} minutes, outside 60–360"),
        );
    }
    match t.scim_with_token(token, "/Users?startIndex=1&count=1") {
        Ok(u) if u.ok() => Check::new(
            CREDENTIALS,
            Verdict::Passed,
            format!(
                "token for {minutes} minutes; GET /Users with it: HTTP {}",
                u.status
            ),
        ),
        Ok(u) => Check::fail(
            CREDENTIALS,
            format!("GET /Users with the token: {}", super::describe(&u)),
        ),
        Err(e) => Check::fail(CREDENTIALS, format!("GET /Users with the token: {e}")),
    }
}
