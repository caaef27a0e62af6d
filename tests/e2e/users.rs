//! Users over HTTPS: Entra's Test Connection, create → get → filter → replace → delete.

use serde_json::json;

use grouptalk_scim::scim::schema::{ENTERPRISE_USER, GROUPTALK_USER, USER};

use crate::harness::{assert_scim_error, user_body, TenantCtx, SCIM_JSON};

#[test]
fn entra_test_connection_gets_empty_list_for_random_guid() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let guid = "7d420df3-9995-4831-a406-ecf8166f5f6a";
    // Entra encodes spaces as '+' and quotes as %22.
    let r = scim.get_query("/Users", &format!("filter=userName+eq+%22{guid}%22"));
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with(SCIM_JSON));
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(r.body["Resources"], json!([]));
    // Literal on purpose: the wire text a client sees, not the library's LIST_RESPONSE.
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:ListResponse"
    );
    // The group probe, with Entra's feature flag as an unknown parameter.
    let r = scim.get_query(
        "/Groups",
        &format!("excludedAttributes=members&filter=displayName+eq+%22{guid}%22&aadOptscim062020"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body["totalResults"], 0);
}

#[test]
fn user_lifecycle_create_get_filter_replace_delete() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();

    let created = scim.post("/Users", &user_body("alice@contoso.com"));
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let location = created.headers["location"].to_str().unwrap().to_string();
    assert!(
        location.ends_with(&format!("/api/scim/Users/{id}")),
        "{location}"
    );
    assert_eq!(created.body["meta"]["location"], location);
    assert_eq!(
        created.headers["etag"].to_str().unwrap(),
        created.body["meta"]["version"].as_str().unwrap()
    );
    // Every attribute of the seed's user table round-trips.
    let b = &created.body;
    assert_eq!(b["userName"], "alice@contoso.com");
    assert_eq!(b["active"], true);
    assert_eq!(b["name"]["givenName"], "Alice");
    assert_eq!(b["name"]["familyName"], "Andersson");
    assert_eq!(b["externalId"], "ext-alice@contoso.com");
    assert_eq!(b["emails"][0]["value"], "alice@contoso.com");
    assert_eq!(b["phoneNumbers"][0]["value"], "+46701234567");
    let ent = &b[ENTERPRISE_USER];
    assert_eq!(ent["costCenter"], "CC-4130");
    assert_eq!(ent["organization"], "Contoso Security");
    let gt = &b[GROUPTALK_USER];
    for (i, v) in ["Shift A", "North", "Medic", "L4", "L5"].iter().enumerate() {
        assert_eq!(gt[format!("label{}", i + 1)], *v);
    }
    // Literal: the extension's URN as it must appear in `schemas` on the wire.
    assert!(b["schemas"].as_array().unwrap().contains(&json!(
        "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User"
    )));

    let got = scim.get(&format!("/Users/{id}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.body, created.body);

    for filter in [
        "userName eq \"ALICE@contoso.com\"".to_string(),
        "externalId eq \"ext-alice@contoso.com\"".to_string(),
        format!("id eq \"{id}\""),
        format!("userName eq \"alice@contoso.com\" and id eq \"{id}\""),
    ] {
        let r = scim.filter("/Users", &filter);
        assert_eq!(r.status, 200, "{filter}");
        assert_eq!(r.body["totalResults"], 1, "{filter}");
        assert_eq!(r.body["Resources"][0]["id"], id.as_str(), "{filter}");
    }
    let r = scim.filter("/Users", &format!("userName eq \"bob\" and id eq \"{id}\""));
    assert_eq!(r.body["totalResults"], 0);

    let mut replacement = user_body("alice.berg@contoso.com");
    replacement["name"]["familyName"] = json!("Berg");
    replacement["active"] = json!("False");
    let put = scim.put(&format!("/Users/{id}"), &replacement);
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_eq!(put.body["userName"], "alice.berg@contoso.com");
    assert_eq!(put.body["name"]["familyName"], "Berg");
    assert_eq!(put.body["active"], false);
    assert_eq!(put.body["meta"]["version"], "W/\"2\"");
    assert_eq!(put.body["meta"]["created"], created.body["meta"]["created"]);

    assert_eq!(scim.delete(&format!("/Users/{id}")).status, 204);
    assert_scim_error(&scim.get(&format!("/Users/{id}")), 404, None);
    assert_scim_error(&scim.delete(&format!("/Users/{id}")), 404, None);
}

#[test]
fn duplicate_user_name_is_409_uniqueness_case_insensitively() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    assert_eq!(
        scim.post("/Users", &user_body("bob@contoso.com")).status,
        201
    );
    let dup = scim.post("/Users", &user_body("BOB@contoso.com"));
    assert_scim_error(&dup, 409, Some("uniqueness"));
    let r = scim.filter("/Users", "userName eq \"bob@contoso.com\"");
    assert_eq!(
        r.body["totalResults"], 1,
        "the failed create stored nothing"
    );
}

#[test]
fn malformed_json_is_400_invalid_syntax_and_stores_nothing() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let r = scim.send_bytes(
        "POST",
        "/Users",
        "application/scim+json; charset=utf-8",
        "{\"userName\": \"x\",",
    );
    assert_scim_error(&r, 400, Some("invalidSyntax"));
    assert_scim_error(
        &scim.post("/Users", &json!({"schemas": [USER]})),
        400,
        Some("invalidValue"),
    );
    assert_eq!(scim.get("/Users").body["totalResults"], 0);
}

#[test]
fn application_json_and_missing_accept_are_accepted() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let r = scim.send_bytes(
        "POST",
        "/Users",
        "application/json",
        user_body("carol@contoso.com").to_string(),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert!(r.content_type.starts_with(SCIM_JSON));
    let r = scim.send_bytes("POST", "/Users", "text/xml", "<x/>");
    assert_scim_error(&r, 415, None);
}

#[test]
fn paging_visits_every_user_once() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    for i in 0..7 {
        assert_eq!(
            scim.post("/Users", &json!({"userName": format!("u{i}")}))
                .status,
            201
        );
    }
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let r = scim.get_query("/Users", &format!("startIndex={start}&count=3"));
        assert_eq!(r.body["totalResults"], 7);
        let page = r.body["Resources"].as_array().unwrap().clone();
        assert_eq!(r.body["itemsPerPage"], page.len());
        if page.is_empty() {
            break;
        }
        seen.extend(
            page.iter()
                .map(|u| u["userName"].as_str().unwrap().to_string()),
        );
        start += 3;
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen.len(), 7);
    assert_eq!(sorted.len(), 7);
}

#[test]
fn unknown_endpoint_is_404_with_scim_body() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    assert_scim_error(
        &scim.get("/9f1b2c3d-0000-4000-8000-000000000000"),
        404,
        None,
    );
}
