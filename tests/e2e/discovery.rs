//! Discovery endpoints and health.

use crate::harness::{assert_scim_error, reply, Server, TenantCtx};

#[test]
fn discovery_documents_describe_users_groups_and_extensions() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let spc = scim.get("/ServiceProviderConfig");
    assert_eq!(spc.status, 200);
    assert_eq!(spc.body["patch"]["supported"], true);
    let rts = scim.get("/ResourceTypes");
    assert_eq!(rts.body["totalResults"], 2);
    let user_rt = scim.get("/ResourceTypes/User");
    assert_eq!(user_rt.body["endpoint"], "/Users");
    let schemas = scim.get("/Schemas");
    let ids: Vec<&str> = schemas.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    // Literal on purpose: this pins the wire text of the schema URNs that the other tests take
    // from `grouptalk_scim::scim::schema`.
    for urn in [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User",
        "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group",
    ] {
        assert!(ids.contains(&urn), "{urn}");
        assert_eq!(scim.get(&format!("/Schemas/{urn}")).body["id"], urn);
    }
    assert_scim_error(&scim.get("/Schemas/urn:nope"), 404, None);
    assert_scim_error(&scim.get("/ResourceTypes/Nope"), 404, None);
    let r = scim.post("/Schemas", &serde_json::json!({}));
    assert_scim_error(&r, 405, None);
    assert_eq!(r.headers["allow"], "GET");
}

#[test]
fn healthz_needs_no_token() {
    let server = Server::start();
    let r = reply(
        server
            .client()
            .get(server.public_url("/healthz"))
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 200);
}
