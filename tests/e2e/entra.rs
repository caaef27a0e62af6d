//! A replay of an Entra ID provisioning cycle, request by request, in both wire formats
//! (default and `aadOptscim062020`), as documented in `docs/entra-id-behaviour.md` ("Create",
//! "Update (PATCH)", "Groups and members", "Filters", "Test connection").

use grouptalk_scim::scim::schema::{ENTERPRISE_USER, GROUP, GROUPTALK_GROUP, GROUPTALK_USER};
use serde_json::{json, Value};

use crate::harness::{patch_op, user_body, Scim, TenantCtx};

fn one(scim: &Scim<'_>, path: &str, filter: &str) -> Value {
    let r = scim.filter(path, filter);
    assert_eq!(r.status, 200, "{filter}: {:?}", r.body);
    assert_eq!(r.body["totalResults"], 1, "{filter}");
    r.body["Resources"][0].clone()
}

#[test]
fn entra_provisioning_cycle_default_and_flag_formats() {
    let ctx = TenantCtx::start("contoso");
    let scim = ctx.scim();

    // 1. Test Connection: random-GUID user and group probes.
    assert_eq!(
        scim.get_query(
            "/Users",
            "filter=userName+eq+%227d420df3-9995-4831-a406-ecf8166f5f6a%22"
        )
        .body["totalResults"],
        0
    );
    assert_eq!(scim.get_query("/Groups", "excludedAttributes=members&filter=displayName+eq+%22e2c1d1a0-0b6e-4f0e-9e53-1b0f5d3f6c11%22").body["totalResults"], 0);

    // 2. Match query (absent), then create with every seed attribute; `active` as a string and
    //    the GroupTalk extension missing from `schemas`.
    assert_eq!(
        scim.filter("/Users", "userName eq \"alice@contoso.com\"")
            .body["totalResults"],
        0
    );
    let mut body = user_body("alice@contoso.com");
    body["active"] = json!("True");
    let created = scim.post("/Users", &body);
    assert_eq!(created.status, 201, "{:?}", created.body);
    let alice = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["active"], true);

    // 3. Match by each filterable attribute of the seed.
    for f in [
        "userName eq \"Alice@Contoso.com\"",
        "emails[type eq \"work\"].value eq \"alice@contoso.com\"",
        "phoneNumbers[type eq \"mobile\"].value eq \"+46701234567\"",
        "externalId eq \"ext-alice@contoso.com\"",
    ] {
        assert_eq!(one(&scim, "/Users", f)["id"], alice.as_str(), "{f}");
    }

    // 4. Update, default (no-flag) format: capitalised ops, one per attribute, Add for new values.
    let r = scim.patch(
        &format!("/Users/{alice}"),
        &patch_op(json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alice.berg@contoso.com"},
            {"op": "Replace", "path": "name.familyName", "value": "Berg"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+46709876543"},
            {"op": "Replace", "path": "externalId", "value": "aberg"},
            {"op": "Replace", "path": format!("{ENTERPRISE_USER}:costCenter"), "value": "CC-5000"},
            {"op": "Add", "path": format!("{GROUPTALK_USER}:label3"), "value": "Dispatcher"}
        ])),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["emails"][0]["value"], "alice.berg@contoso.com");
    assert_eq!(r.body["name"]["familyName"], "Berg");
    assert_eq!(
        r.body["phoneNumbers"].as_array().unwrap().len(),
        1,
        "mobile replaced, not duplicated"
    );
    assert_eq!(r.body["phoneNumbers"][0]["value"], "+46709876543");
    assert_eq!(r.body[ENTERPRISE_USER]["costCenter"], "CC-5000");
    assert_eq!(r.body[GROUPTALK_USER]["label3"], "Dispatcher");
    assert_eq!(
        one(
            &scim,
            "/Users",
            "emails[type eq \"work\"].value eq \"alice.berg@contoso.com\""
        )["id"],
        alice.as_str()
    );
    assert_eq!(
        scim.filter(
            "/Users",
            "emails[type eq \"work\"].value eq \"alice@contoso.com\""
        )
        .body["totalResults"],
        0,
        "old email no longer matches"
    );

    // 5. Update, aadOptscim062020 format: lowercase ops, path-less map of paths.
    let r = scim.send(
        "PATCH",
        &format!("/Users/{alice}?aadOptscim062020"),
        &patch_op(json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "alice@contoso.com"},
            {"op": "replace", "value": {
                "name.givenName": "Alicia",
                "externalId": "alice2",
                format!("{ENTERPRISE_USER}:organization"): "Contoso Radio",
                format!("{GROUPTALK_USER}:label5"): "Night"
            }}
        ])),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["name"]["givenName"], "Alicia");
    assert_eq!(
        r.body["name"]["familyName"], "Berg",
        "sibling sub-attribute kept"
    );
    assert_eq!(r.body["externalId"], "alice2");
    assert_eq!(r.body[ENTERPRISE_USER]["organization"], "Contoso Radio");
    assert_eq!(r.body[ENTERPRISE_USER]["costCenter"], "CC-5000");
    assert_eq!(r.body[GROUPTALK_USER]["label5"], "Night");
    assert!(
        r.body.get("name.givenName").is_none(),
        "no literal dotted attribute"
    );

    // 6. Rename the login.
    let r = scim.patch(
        &format!("/Users/{alice}"),
        &patch_op(json!([{"op": "Replace", "path": "userName", "value": "alicia@contoso.com"}])),
    );
    assert_eq!(r.body["userName"], "alicia@contoso.com");

    // 7. Group create (members empty), then members added in batches of 50.
    let mut users = vec![alice.clone()];
    for i in 0..119 {
        let r = scim.post(
            "/Users",
            &json!({"userName": format!("user{i}@contoso.com"), "active": true}),
        );
        assert_eq!(r.status, 201);
        users.push(r.body["id"].as_str().unwrap().to_string());
    }
    let g = scim.post("/Groups", &json!({"schemas": [GROUP], "displayName": "Dispatch North", "externalId": "g-1", "members": []}));
    assert_eq!(g.status, 201);
    let gid = g.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        one(&scim, "/Groups", "displayName eq \"Dispatch North\"")["id"],
        gid.as_str()
    );
    for batch in users.chunks(50) {
        let members: Vec<Value> = batch
            .iter()
            .map(|u| json!({"$ref": null, "value": u}))
            .collect();
        let r = scim.patch(
            &format!("/Groups/{gid}"),
            &patch_op(json!([{"op": "Add", "path": "members", "value": members}])),
        );
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    let full = scim.get(&format!("/Groups/{gid}"));
    assert_eq!(full.body["members"].as_array().unwrap().len(), 120);

    // 8. Disable (string "False"), still found by filter and by id, memberships kept; re-enable.
    let r = scim.patch(
        &format!("/Users/{alice}"),
        &patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}])),
    );
    assert_eq!(r.body["active"], false);
    assert_eq!(
        one(&scim, "/Users", "userName eq \"alicia@contoso.com\"")["active"],
        false
    );
    assert_eq!(
        scim.filter("/Groups", &format!("members[value eq \"{alice}\"]"))
            .body["totalResults"],
        1
    );
    let r = scim.patch(
        &format!("/Users/{alice}"),
        &patch_op(json!([{"op": "replace", "path": "active", "value": true}])),
    );
    assert_eq!(r.body["active"], true);

    // 9. Member removal both ways, rename and description of the group.
    let r = scim.patch(&format!("/Groups/{gid}"), &patch_op(json!([{"op": "Remove", "path": "members", "value": [{"value": users[1]}, {"value": users[2]}]}])));
    assert_eq!(r.status, 204);
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        &patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", users[3])}])),
    );
    assert_eq!(r.status, 204);
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        &patch_op(json!([
            {"op": "Replace", "path": "displayName", "value": "Dispatch North 2"},
            {"op": "Replace", "path": format!("{GROUPTALK_GROUP}:description"), "value": "Day shift"}
        ])),
    );
    assert_eq!(r.status, 204);
    let g = scim.get_query(&format!("/Groups/{gid}"), "excludedAttributes=members");
    assert_eq!(g.body["displayName"], "Dispatch North 2");
    assert_eq!(g.body[GROUPTALK_GROUP]["description"], "Day shift");
    assert_eq!(
        scim.get(&format!("/Groups/{gid}")).body["members"]
            .as_array()
            .unwrap()
            .len(),
        117
    );

    // 10. Hard delete of a user removes its memberships; delete the group.
    assert_eq!(scim.delete(&format!("/Users/{alice}")).status, 204);
    assert_eq!(scim.get(&format!("/Users/{alice}")).status, 404);
    assert_eq!(
        scim.get(&format!("/Groups/{gid}")).body["members"]
            .as_array()
            .unwrap()
            .len(),
        116
    );
    assert_eq!(
        scim.filter("/Groups", &format!("members[value eq \"{alice}\"]"))
            .body["totalResults"],
        0
    );
    assert_eq!(scim.delete(&format!("/Groups/{gid}")).status, 204);
    assert_eq!(scim.get(&format!("/Groups/{gid}")).status, 404);
    assert_eq!(scim.delete(&format!("/Groups/{gid}")).status, 404);
}
