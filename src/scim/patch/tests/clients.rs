//! Named regression tests, one per client quirk (Microsoft Entra ID, its SCIM Validator, its
//! Postman collection, scim2-tester); each doc comment shows the payload the client sends.

use serde_json::{json, Value};

use super::*;

/// Entra no-flag mode: `{"op":"Replace","path":"name.familyName","value":"Berg"}`.
#[test]
fn entra_capitalised_op() {
    let (doc, outcome) = run(
        &USER_TYPE,
        &alice(),
        json!([
        {"op": "Replace", "path": "name.familyName", "value": "Berg"},
        {"op": "Add", "path": "title", "value": "Medic"},
        {"op": "Remove", "path": "active"}]),
    );
    assert_eq!(outcome.unwrap().notes, vec!["capitalised op"]);
    assert_eq!(doc["name"]["familyName"], "Berg");
    assert_eq!(doc["title"], "Medic");
    assert!(doc.get("active").is_none());
}

/// Entra disable: `{"op":"Replace","path":"active","value":"False"}` (also `"false"`, `"True"`).
#[test]
fn entra_string_boolean_false() {
    for (sent, want) in [
        ("False", false),
        ("false", false),
        ("True", true),
        ("TRUE", true),
    ] {
        let (doc, outcome) = run(
            &USER_TYPE,
            &alice(),
            json!([{"op": "Replace", "path": "active", "value": sent}]),
        );
        assert_eq!(doc["active"], json!(want), "{sent}");
        assert!(outcome.unwrap().notes.contains(&"string boolean"));
    }
}

/// Validator: `"primary":"True"` inside multi-valued elements; marking one primary unmarks
/// the other (RFC 7643 §2.4).
#[test]
fn entra_string_boolean_primary_moves_primary() {
    let (doc, _) = run(
        &USER_TYPE,
        &alice(),
        json!([{"op": "add", "path": "emails", "value": [{"type": "home", "value": "h@x", "primary": "True"}]}]),
    );
    assert_eq!(
        doc["emails"],
        json!([
        {"type": "work", "value": "a@x", "primary": false},
        {"type": "home", "value": "h@x", "primary": true}])
    );
}

/// Entra's flag format (`docs/entra-id-behaviour.md` "Update (PATCH)"): one path-less replace
/// whose keys are paths:
/// `{"op":"replace","value":{"name.givenName":"Alicia","externalId":"aberg",
///   "urn:…:enterprise:2.0:User:costCenter":"CC-5000","urn:…:grouptalk:2.0:User:label3":"Medic"}}`.
#[test]
fn entra_pathless_replace_with_dotted_and_urn_keys() {
    let (doc, outcome) = run(
        &USER_TYPE,
        &alice(),
        json!([{"op": "replace", "value": {
            "name.givenName": "Alicia",
            "externalId": "aberg",
            format!("{ENT}:costCenter"): "CC-5000",
            format!("{GT}:label3"): "Medic",
            "active": "False"
        }}]),
    );
    let outcome = outcome.unwrap();
    assert_eq!(
        doc["name"],
        json!({"givenName": "Alicia", "familyName": "Andersson"})
    );
    assert_eq!(doc["externalId"], "aberg");
    assert_eq!(doc[ENT], json!({"costCenter": "CC-5000"}));
    assert_eq!(doc[GT], json!({"label3": "Medic"}));
    assert_eq!(doc["active"], false);
    assert!(doc.get("name.givenName").is_none());
    assert_eq!(
        outcome.notes,
        vec!["path-less map of paths", "string boolean"]
    );
}

/// The RFC form of the same: nested objects, an extension object keyed by its URN; `id`,
/// `meta` and `schemas` in the fragment are ignored, unknown keys dropped.
#[test]
fn pathless_add_rfc_nested_form() {
    let (doc, outcome) = run(
        &USER_TYPE,
        &alice(),
        json!([{"op": "add", "value": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "x", "meta": {"version": "W/1"}, "adreses": [],
            "name": {"middleName": "M"},
            "emails": [{"type": "home", "value": "h@x"}],
            ENT: {"department": "Ops"}
        }}]),
    );
    assert!(outcome.is_ok());
    assert_eq!(doc["name"]["middleName"], "M");
    assert_eq!(doc["emails"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc[ENT], json!({"costCenter": "CC-1", "department": "Ops"}));
    assert!(doc.get("id").is_none() && doc.get("meta").is_none());
    let (_, outcome) = run(&USER_TYPE, &alice(), json!([{"op": "add", "value": "x"}]));
    assert_eq!(outcome.unwrap_err().scim_type, Some(ScimType::InvalidValue));
}

/// Validator "Update User userName": `{"op":"replace","value":{"userName":"…"}}`.
#[test]
fn validator_pathless_user_name() {
    let (doc, _) = run(
        &USER_TYPE,
        &alice(),
        json!([{"op": "replace", "value": {"userName": "bob"}}]),
    );
    assert_eq!(doc["userName"], "bob");
}

/// Filtered paths create their element (`docs/entra-id-behaviour.md` "Update (PATCH)"):
/// `{"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+46709876543"}`
/// on a user without a mobile number creates `{"type":"mobile","value":…}`.
#[test]
fn entra_add_mobile_phone_creates_element() {
    let before = alice_with("phoneNumbers", Value::Null);
    let (doc, outcome) = run(
        &USER_TYPE,
        &before,
        json!([{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+46709876543"}]),
    );
    assert_eq!(
        doc["phoneNumbers"],
        json!([{"type": "mobile", "value": "+46709876543"}])
    );
    assert!(outcome
        .unwrap()
        .notes
        .contains(&"filtered add created element"));
    // When it matches, the value is set on the matching element; others are untouched.
    let before = alice_with(
        "phoneNumbers",
        json!([{"type": "work", "value": "1"}, {"type": "mobile", "value": "2"}]),
    );
    let (doc, _) = run(
        &USER_TYPE,
        &before,
        json!([{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "3"}]),
    );
    assert_eq!(
        doc["phoneNumbers"],
        json!([{"type": "work", "value": "1"}, {"type": "mobile", "value": "3"}])
    );
}

/// Entra no-flag `Replace` on `emails[type eq "work"].value` with no work email: add it
/// (SG-49200), not 400 noTarget.
#[test]
fn entra_replace_work_email_creates_element() {
    let before = alice_with("emails", Value::Null);
    let (doc, _) = run(
        &USER_TYPE,
        &before,
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "alice.berg@contoso.com"}]),
    );
    assert_eq!(
        doc["emails"],
        json!([{"type": "work", "value": "alice.berg@contoso.com"}])
    );
    // Clearing an element that is not there is a no-op.
    let (doc, outcome) = run(
        &USER_TYPE,
        &before,
        json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": ""}]),
    );
    assert_eq!(
        (doc, outcome.map(|o| o.changed).ok()),
        (before, Some(false))
    );
}

/// `docs/entra-id-behaviour.md` "Update (PATCH)": the whole update in the default (no-flag)
/// format.
#[test]
fn entra_no_flag_update_user() {
    let (doc, outcome) = run(
        &USER_TYPE,
        &alice(),
        json!([
        {"op":"Replace","path":"emails[type eq \"work\"].value","value":"alice.berg@contoso.com"},
        {"op":"Replace","path":"name.familyName","value":"Berg"},
        {"op":"Add","path":"phoneNumbers[type eq \"mobile\"].value","value":"+46709876543"},
        {"op":"Replace","path":"externalId","value":"aberg"},
        {"op":"Replace","path":format!("{ENT}:costCenter"),"value":"CC-5000"},
        {"op":"Add","path":format!("{GT}:label3"),"value":"Medic"}]),
    );
    assert!(outcome.unwrap().changed);
    assert_eq!(
        doc,
        json!({
            "userName": "alice",
            "active": true,
            "name": {"givenName": "Alice", "familyName": "Berg"},
            "emails": [{"type": "work", "value": "alice.berg@contoso.com", "primary": true}],
            "phoneNumbers": [{"type": "mobile", "value": "+46709876543"}],
            ENT: {"costCenter": "CC-5000"},
            "externalId": "aberg",
            GT: {"label3": "Medic"}
        })
    );
}

/// Adding members (`docs/entra-id-behaviour.md` "Groups and members"):
/// `{"op":"Add","path":"members","value":[{"$ref":null,"value":"48af…"},…]}`.
#[test]
fn entra_add_members() {
    let (ops, _) = group_ops(json!([{"op": "Add", "path": "members",
        "value": [{"$ref": null, "value": "u1"}, {"$ref": null, "value": "u2"}, {"value": "u1"}]}]))
    .unwrap();
    assert_eq!(
        ops,
        vec![MemberOp::Add(vec![
            member("u1"),
            member("u2"),
            member("u1")
        ])]
    );
    let err = group_ops(json!([{"op": "Add", "path": "members", "value": [{"$ref": null}]}]))
        .unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
}

/// Entra's default format (`docs/entra-id-behaviour.md` "Groups and members"):
/// `{"op":"Remove","path":"members","value":[{"value":"u1091"}]}`
/// removes only u1091. Wiping the whole group here is the destructive bug.
#[test]
fn entra_remove_members_with_value_array() {
    let (ops, notes) = group_ops(json!([{"op": "Remove", "path": "members",
        "value": [{"value": "u1091"}, {"$ref": null, "value": "u2"}]}]))
    .unwrap();
    assert_eq!(
        ops,
        vec![MemberOp::Remove(vec!["u1091".into(), "u2".into()])]
    );
    assert!(notes.contains(&"members removed by value array"));
}

/// Entra's flag format and the Validator (`docs/entra-id-behaviour.md` "Groups and members"):
/// `{"op":"remove","path":"members[value eq \"7f4b…\"]"}`,
/// also `or` of several; any other member filter is refused.
#[test]
fn entra_remove_members_with_filter_path() {
    let (ops, _) =
        group_ops(json!([{"op": "remove", "path": "members[value eq \"7f4b\"]"}])).unwrap();
    assert_eq!(ops, vec![MemberOp::Remove(vec!["7f4b".into()])]);
    let (ops, _) = group_ops(json!([{"op": "remove",
        "path": "members[value eq \"a\" or value eq \"b\" or value eq \"c\"]"}]))
    .unwrap();
    assert_eq!(
        ops,
        vec![MemberOp::Remove(vec!["a".into(), "b".into(), "c".into()])]
    );
    for path in [
        "members[display eq \"x\"]",
        "members[value sw \"a\"]",
        "members[value eq \"a\" and type eq \"User\"]",
    ] {
        let err = group_ops(json!([{"op": "remove", "path": path}])).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{path}");
    }
    let err = group_ops(
        json!([{"op": "add", "path": "members[value eq \"a\"]", "value": [{"value": "a"}]}]),
    );
    assert_eq!(err.unwrap_err().scim_type, Some(ScimType::InvalidFilter));
}

/// Postman "Patch remove all users": `{"op":"remove","path":"members"}` clears; the Validator's
/// "Patch Group - Add Member" uses `replace` (clear, then add); a path-less `{"members":[…]}`
/// adds; P5 adds then removes in one request, in order.
#[test]
fn members_clear_replace_pathless_and_order() {
    let (ops, _) = group_ops(json!([{"op": "remove", "path": "members"}])).unwrap();
    assert_eq!(ops, vec![MemberOp::Clear]);
    let (ops, _) =
        group_ops(json!([{"op": "replace", "path": "members", "value": [{"value": "u1"}]}]))
            .unwrap();
    assert_eq!(
        ops,
        vec![MemberOp::Clear, MemberOp::Add(vec![member("u1")])]
    );
    let (ops, _) = group_ops(
        json!([{"op": "add", "value": {"members": [{"value": "u1"}], "displayName": "H"}}]),
    )
    .unwrap();
    assert_eq!(ops, vec![MemberOp::Add(vec![member("u1")])]);
    let (ops, _) = group_ops(json!([
        {"op": "add", "path": "members", "value": [{"value": "u1"}]},
        {"op": "remove", "path": "members[value eq \"u1\"]"}]))
    .unwrap();
    assert_eq!(
        ops,
        vec![
            MemberOp::Add(vec![member("u1")]),
            MemberOp::Remove(vec!["u1".into()])
        ]
    );
    let err =
        group_ops(json!([{"op": "replace", "path": "members.value", "value": "u1"}])).unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::InvalidPath));
}

/// Postman "Group patch add member": `{"op":"add","path":"members","value":"string id 1"}` → 204.
#[test]
fn postman_group_patch_add_member_bare_string() {
    let (ops, notes) =
        group_ops(json!([{"op": "add", "path": "members", "value": "string id 1"}])).unwrap();
    assert_eq!(ops, vec![MemberOp::Add(vec![member("string id 1")])]);
    assert!(notes.contains(&"member as string"));
}

/// Group rename and extension description (`docs/entra-id-behaviour.md` "Groups and members"),
/// members untouched in the document.
#[test]
fn entra_group_rename() {
    let (doc, outcome) = run(
        &GROUP_TYPE,
        &json!({"displayName": "Dispatch North"}),
        json!([
        {"op":"Replace","path":"displayName","value":"Dispatch North 2"},
        {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group:description","value":"Day shift"}]),
    );
    assert_eq!(
        doc,
        json!({"displayName": "Dispatch North 2",
        "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group": {"description": "Day shift"}})
    );
    assert!(outcome.unwrap().member_ops.is_empty());
}

/// Manager (`docs/entra-id-behaviour.md` "Update (PATCH)"):
/// `{"op":"Add","path":"urn:…:enterprise:2.0:User:manager","value":"2c2f…"}`, the
/// object form, and the removals: `replace` with `""` or `{"value":""}`, `remove` of the path,
/// `remove` of `manager[value eq "…"]`.
#[test]
fn entra_manager_as_string() {
    let path = format!("{ENT}:manager");
    let with_manager = alice_with(
        ENT,
        json!({"costCenter": "CC-1", "manager": {"value": "m1"}}),
    );
    let (doc, outcome) = run(
        &USER_TYPE,
        &alice(),
        json!([{"op": "Add", "path": path, "value": "m1"}]),
    );
    assert_eq!(doc, with_manager);
    assert!(outcome.unwrap().notes.contains(&"manager as string"));
    check(
        &alice(),
        json!([{"op": "add", "path": path, "value": {"value": "m1"}}]),
        Ok(with_manager.clone()),
    );
    check(
        &alice(),
        json!([{"op": "add", "path": "manager", "value": [{"$ref": null, "value": "m1"}]}]),
        Ok(with_manager.clone()),
    );
    check(
        &with_manager,
        json!([{"op": "replace", "path": path, "value": {"value": "m2"}}]),
        Ok(alice_with(
            ENT,
            json!({"costCenter": "CC-1", "manager": {"value": "m2"}}),
        )),
    );
    for clear in [
        json!([{"op": "replace", "path": path, "value": ""}]),
        json!([{"op": "replace", "path": path, "value": {"value": ""}}]),
        json!([{"op": "remove", "path": path}]),
        json!([{"op": "remove", "path": format!("{path}[value eq \"m1\"]")}]),
        json!([{"op": "replace", "value": {ENT: {"manager": ""}}}]),
    ] {
        check(&with_manager, clear, Ok(alice()));
    }
    check(
        &with_manager,
        json!([{"op": "remove", "path": format!("{path}[value eq \"other\"]")}]),
        Ok(with_manager.clone()),
    );
}

/// Logic App SCIM_Null_Update_Test and the Validator: `replace` with `""` (then `null`) clears an
/// optional value.
#[test]
fn entra_replace_empty_string_clears() {
    let before = alice_with("displayName", json!("Alice A"));
    for value in [json!(""), Value::Null] {
        check(
            &before,
            json!([{"op": "replace", "path": "displayName", "value": value}]),
            Ok(alice()),
        );
    }
    check(
        &alice(),
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": ""}]),
        Ok(alice_with("emails", Value::Null)),
    );
    check(
        &alice(),
        json!([{"op": "replace", "path": "name", "value": ""}]),
        Ok(alice_with("name", Value::Null)),
    );
}

/// Clearing values (`docs/entra-id-behaviour.md` "Update (PATCH)") / RFC 7644 §3.5.2: removing
/// or emptying a required attribute is `mutability`.
#[test]
fn entra_remove_required_is_mutability() {
    check(
        &alice(),
        json!([{"op": "remove", "path": "userName"}]),
        Err(ScimType::Mutability),
    );
    check(
        &alice(),
        json!([{"op": "replace", "path": "userName", "value": ""}]),
        Err(ScimType::Mutability),
    );
    let (_, outcome) = run(
        &GROUP_TYPE,
        &json!({"displayName": "G"}),
        json!([{"op": "remove", "path": "displayName"}]),
    );
    assert_eq!(outcome.unwrap_err().scim_type, Some(ScimType::Mutability));
}

/// scim2-tester T3: `{"op":"add","path":"urn:…:enterprise:2.0:User","value":{"schemas":[…],
/// "employeeNumber":…,"manager":{"value":…,"$ref":…}}}`.
#[test]
fn scim2_tester_extension_value_with_schemas() {
    let (doc, outcome) = run(
        &USER_TYPE,
        &alice(),
        json!([{"op": "add", "path": ENT, "value": {
        "schemas": [ENT], "employeeNumber": "42",
        "manager": {"value": "m1", "$ref": "https://h/Users/m1"}}}]),
    );
    assert_eq!(
        doc[ENT],
        json!({"costCenter": "CC-1", "employeeNumber": "42",
        "manager": {"value": "m1", "$ref": "https://h/Users/m1"}})
    );
    assert!(outcome.unwrap().notes.contains(&"schemas inside extension"));
}
