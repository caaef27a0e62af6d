//! Groups over HTTPS: create with members, PATCH members both ways, rename, filters, deletes.

use grouptalk_scim::scim::schema::{GROUP, GROUPTALK_GROUP};
use serde_json::{json, Value};

use crate::harness::{
    assert_scim_error, create_user, patch_op, reply, user_body, Scim, TenantCtx, SCIM_JSON,
};

fn member_ids(scim: &Scim<'_>, gid: &str) -> Vec<String> {
    let r = scim.get(&format!("/Groups/{gid}"));
    assert_eq!(r.status, 200);
    let mut ids: Vec<String> = r.body["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[test]
fn group_create_with_microsoft_schema_uri_and_excluded_members() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let u = create_user(&scim, "u1");
    let r = scim.post(
        "/Groups",
        // The Microsoft schema URI is literal: the exact text Entra sends.
        &json!({"schemas": [GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
                "externalId": "8aa1a0c0", "displayName": "Dispatch North", "members": [{"value": u, "$ref": null}], "meta": {"resourceType": "Group"},
                GROUPTALK_GROUP: {"description": "Night shift dispatch"}}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["members"][0]["value"], u.as_str());
    assert_eq!(r.body["members"][0]["type"], "User");
    assert_eq!(
        r.body[GROUPTALK_GROUP]["description"],
        "Night shift dispatch"
    );
    let g = scim.get_query(&format!("/Groups/{gid}"), "excludedAttributes=members");
    assert_eq!(g.status, 200);
    assert!(g.body.get("members").is_none(), "{:?}", g.body);
    assert_eq!(g.body["displayName"], "Dispatch North");
    let f = scim.get_query(
        "/Groups",
        "excludedAttributes=members&filter=displayName+eq+%22dispatch+NORTH%22",
    );
    assert_eq!(f.body["totalResults"], 1);
    assert!(f.body["Resources"][0].get("members").is_none());
    // The user's read-only `groups` attribute shows the membership.
    let user = scim.get(&format!("/Users/{u}"));
    assert_eq!(user.body["groups"][0]["value"], gid.as_str());
    assert_eq!(user.body["groups"][0]["display"], "Dispatch North");
    // displayName is unique per tenant, case-insensitively.
    assert_scim_error(
        &scim.post("/Groups", &json!({"displayName": "DISPATCH north"})),
        409,
        Some("uniqueness"),
    );
}

#[test]
fn members_must_exist_in_the_same_tenant() {
    let TenantCtx { server, token: a } = TenantCtx::start("acme");
    let b = server.tenant_token("beta");
    let (sa, sb) = (server.as_tenant(&a), server.as_tenant(&b));
    let foreign = create_user(&sb, "other");
    let r = sa.post(
        "/Groups",
        &json!({"displayName": "G", "members": [{"value": foreign}]}),
    );
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert_eq!(sa.get("/Groups").body["totalResults"], 0, "nothing stored");
    let g = sa.post("/Groups", &json!({"displayName": "G"}));
    let gid = g.body["id"].as_str().unwrap();
    let r = sa.patch(
        &format!("/Groups/{gid}"),
        &patch_op(json!([{"op": "Add", "path": "members", "value": [{"value": foreign}]}])),
    );
    assert_scim_error(&r, 400, Some("invalidValue"));
    assert!(member_ids(&sa, gid).is_empty());
    // B cannot patch A's group.
    assert_scim_error(
        &sb.patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "Add", "path": "members", "value": [{"value": foreign}]}])),
        ),
        404,
        None,
    );
}

#[test]
fn entra_member_removal_removes_only_the_listed_members() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let users: Vec<String> = (0..4)
        .map(|i| create_user(&scim, &format!("m{i}")))
        .collect();
    let gid = scim.post("/Groups", &json!({"displayName": "G"})).body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let add: Vec<Value> = users
        .iter()
        .map(|u| json!({"$ref": null, "value": u}))
        .collect();
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        &patch_op(json!([{"op": "Add", "path": "members", "value": add}])),
    );
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert!(r.headers.get("etag").is_some());
    assert_eq!(member_ids(&scim, &gid).len(), 4);
    // No-flag mode: {"op":"Remove","path":"members","value":[{"value":"<id>"}]}
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        &patch_op(json!([{"op": "Remove", "path": "members", "value": [{"value": users[0]}]}])),
    );
    assert_eq!(r.status, 204);
    let mut expected: Vec<String> = users[1..].to_vec();
    expected.sort();
    assert_eq!(member_ids(&scim, &gid), expected);
    // Flag mode: {"op":"remove","path":"members[value eq \"<id>\"]"}
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        &patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[1])}])),
    );
    assert_eq!(r.status, 204);
    assert_eq!(member_ids(&scim, &gid).len(), 2);
    // filter=members[value eq "<id>"] finds the groups of a user.
    let r = scim.filter("/Groups", &format!("members[value eq \"{}\"]", users[2]));
    assert_eq!(r.body["totalResults"], 1);
    let r = scim.filter("/Groups", &format!("members[value eq \"{}\"]", users[0]));
    assert_eq!(r.body["totalResults"], 0);
    // Re-adding a member is a no-op: the version does not move.
    let before = scim.get(&format!("/Groups/{gid}")).body["meta"]["version"].clone();
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        &patch_op(json!([{"op": "Add", "path": "members", "value": [{"value": users[2]}]}])),
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        scim.get(&format!("/Groups/{gid}")).body["meta"]["version"],
        before
    );
    // Group PATCH returns a body when attributes are asked for.
    let r = scim.send(
        "PATCH",
        &format!("/Groups/{gid}?attributes=displayName"),
        &patch_op(json!([{"op": "Replace", "path": "displayName", "value": "G2"}])),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body["displayName"], "G2");
    assert!(r.body.get("members").is_none());
}

#[test]
fn deleting_a_user_removes_its_memberships_disabling_keeps_them() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let (u1, u2) = (create_user(&scim, "d1"), create_user(&scim, "d2"));
    let gid = scim
        .post(
            "/Groups",
            &json!({"displayName": "G", "members": [{"value": u1}, {"value": u2}]}),
        )
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = scim.patch(
        &format!("/Users/{u1}"),
        &patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}])),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body["active"], false);
    assert_eq!(
        member_ids(&scim, &gid).len(),
        2,
        "disabled users keep their memberships"
    );
    assert_eq!(scim.delete(&format!("/Users/{u2}")).status, 204);
    assert_eq!(member_ids(&scim, &gid), vec![u1.clone()]);
    assert_eq!(scim.delete(&format!("/Groups/{gid}")).status, 204);
    assert_scim_error(&scim.get(&format!("/Groups/{gid}")), 404, None);
    assert_eq!(
        scim.get(&format!("/Users/{u1}")).status,
        200,
        "deleting a group keeps its users"
    );
}

#[test]
fn if_match_and_etags() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let created = scim.post("/Users", &user_body("e@x"));
    let id = created.body["id"].as_str().unwrap();
    let etag = created.headers["etag"].to_str().unwrap().to_string();
    let stale = "W/\"999\"";
    let req = |tag: &str| {
        reply(
            scim.request("PATCH", &format!("/Users/{id}"))
                .header("content-type", SCIM_JSON)
                .header("if-match", tag)
                .body(
                    patch_op(json!([{"op": "replace", "path": "displayName", "value": "E"}]))
                        .to_string(),
                )
                .send()
                .unwrap(),
        )
    };
    assert_scim_error(&req(stale), 412, None);
    assert!(
        scim.get(&format!("/Users/{id}"))
            .body
            .get("displayName")
            .is_none(),
        "412 changed nothing"
    );
    let ok = req(&etag);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["meta"]["version"], "W/\"2\"");
    // A no-op PATCH does not bump the version.
    let again = scim.patch(
        &format!("/Users/{id}"),
        &patch_op(json!([{"op": "replace", "path": "displayName", "value": "E"}])),
    );
    assert_eq!(again.body["meta"]["version"], "W/\"2\"");
}

#[test]
fn failed_patch_changes_nothing() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let created = scim.post("/Users", &user_body("p@x"));
    let id = created.body["id"].as_str().unwrap();
    let r = scim.patch(
        &format!("/Users/{id}"),
        &patch_op(json!([
            {"op": "replace", "path": "displayName", "value": "changed"},
            {"op": "remove", "path": "userName"}
        ])),
    );
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert_eq!(scim.get(&format!("/Users/{id}")).body, created.body);
    let r = scim.patch(
        &format!("/Users/{id}"),
        &patch_op(json!([{"op": "replace", "path": "nosuch", "value": 1}])),
    );
    assert_scim_error(&r, 400, Some("invalidPath"));
    let r = scim.filter("/Users", "userName eq");
    assert_scim_error(&r, 400, Some("invalidFilter"));
}
