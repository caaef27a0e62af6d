//! Body normalisation: Entra's create bodies and Microsoft's Postman tests, as regression tests.

use serde_json::{json, Value};

use super::*;
use crate::scim::error::ScimType;
use crate::scim::schema::{GROUP_TYPE, USER_TYPE};

fn user(body: Value) -> Result<Normalised, ScimError> {
    normalise(&USER_TYPE, &body)
}

/// `check(body, Ok(doc))` or `check(body, Err(scimType))` for User bodies.
fn check(body: Value, expected: Result<Value, ScimType>) {
    let got = user(body.clone()).map(|n| n.doc).map_err(|e| e.scim_type);
    assert_eq!(got, expected.map_err(Some), "body: {body}");
}

#[test]
fn table() {
    let ok = |v: Value| Ok::<Value, ScimType>(v);
    check(json!({"userName": "a"}), ok(json!({"userName": "a"})));
    // Read-only and write-only input is ignored, not an error.
    check(
        json!({"userName": "a", "id": "x", "meta": {"resourceType": "User"}, "groups": [{"value": "g"}], "password": "pw"}),
        ok(json!({"userName": "a"})),
    );
    // null and "" mean absent; empty arrays/objects are omitted.
    check(
        json!({"userName": "a", "displayName": "", "title": null, "roles": [], "name": {}, "addresses": null}),
        ok(json!({"userName": "a"})),
    );
    // A single object for a multi-valued attribute is wrapped.
    check(
        json!({"userName": "a", "emails": {"value": "a@x"}}),
        ok(json!({"userName": "a", "emails": [{"value": "a@x"}]})),
    );
    // Elements that end up empty, or without a `value`, are dropped.
    check(
        json!({"userName": "a", "emails": [{"value": ""}, {"type": "work"}, {"value": "b@x"}]}),
        ok(json!({"userName": "a", "emails": [{"value": "b@x"}]})),
    );
    // Phone numbers are stored exactly as sent.
    check(
        json!({"userName": "a", "phoneNumbers": [{"type": "mobile", "value": "55555555555"}]}),
        ok(json!({"userName": "a", "phoneNumbers": [{"type": "mobile", "value": "55555555555"}]})),
    );
    // Wrong types name the attribute.
    check(json!({"userName": 5}), Err(ScimType::InvalidValue));
    check(
        json!({"userName": "a", "active": "yes"}),
        Err(ScimType::InvalidValue),
    );
    check(
        json!({"userName": "a", "active": 1}),
        Err(ScimType::InvalidValue),
    );
    check(
        json!({"userName": "a", "name": "Alice"}),
        Err(ScimType::InvalidValue),
    );
    check(
        json!({"userName": "a", "emails": [{"value": "a@x", "primary": true}, {"value": "b@x", "primary": "True"}]}),
        Err(ScimType::InvalidValue),
    );
    // Not an object at all.
    assert_eq!(
        normalise(&USER_TYPE, &json!(["userName"])).map_err(|e| e.scim_type),
        Err(Some(ScimType::InvalidSyntax))
    );
}

#[test]
fn wrong_type_detail_names_the_attribute() {
    let err = user(json!({"userName": "a", "emails": [{"value": "a@x", "primary": "maybe"}]}))
        .err()
        .map(|e| e.detail);
    assert_eq!(
        err.as_deref(),
        Some("emails: 'primary' must be a boolean, not a string")
    );
}

/// Microsoft Postman "Post emp1 with string True": `{"userName":"emp1","active":"True"}` → 201,
/// `active` is the boolean true.
#[test]
fn postman_post_emp1_with_string_true() {
    let n = user(json!({"userName": "emp1", "active": "True"})).unwrap();
    assert_eq!(n.doc, json!({"userName": "emp1", "active": true}));
    assert_eq!(n.notes, vec!["string boolean"]);
    let n = user(json!({"userName": "emp1", "active": "false"})).unwrap();
    assert_eq!(n.doc["active"], json!(false));
}

/// Postman "Post no username" → 400 invalidValue; also an empty userName.
#[test]
fn missing_user_name_is_invalid_value() {
    for body in [
        json!({"active": true}),
        json!({"userName": ""}),
        json!({"userName": null}),
    ] {
        let err = user(body).unwrap_err();
        assert_eq!(
            (err.status, err.scim_type),
            (400, Some(ScimType::InvalidValue))
        );
    }
    let err = normalise(&GROUP_TYPE, &json!({"externalId": "x"})).unwrap_err();
    assert_eq!(err.scim_type, Some(ScimType::InvalidValue));
}

/// Postman "Put a user misspelled attribute" (`adreses`) → 200, attribute dropped; unknown
/// URN-keyed objects are dropped too.
#[test]
fn misspelled_attribute_dropped() {
    let n = user(json!({"userName": "a", "adreses": [{"locality": "x"}], "urn:example:ext:1.0:User": {"a": 1}}))
        .unwrap();
    assert_eq!(n.doc, json!({"userName": "a"}));
    assert_eq!(n.notes, vec!["unknown attribute dropped"]);
}

/// Postman "Post EnterpriseUser": `"Primary"`, `"Department"`, `"Manager":{"Value":…}`.
#[test]
fn capitalised_attribute_names_canonicalised() {
    let n = user(json!({
        "UserName": "UserName222",
        "Active": true,
        "emails": [{"Primary": true, "Type": "work", "Value": "testing@bob2.com"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "Department": "bob",
            "Manager": {"Value": "SuzzyQ", "displayName": "Suzzy"}
        }
    }))
    .unwrap();
    assert_eq!(
        n.doc,
        json!({
            "userName": "UserName222",
            "active": true,
            "emails": [{"primary": true, "type": "work", "value": "testing@bob2.com"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "bob",
                "manager": {"value": "SuzzyQ"}
            }
        })
    );
}

/// `docs/entra-id-behaviour.md` "Create": Entra's create body. `meta` and the empty `roles` are
/// dropped; the GroupTalk extension is accepted although `schemas` does not list it.
#[test]
fn entra_full_create_body() {
    let n = user(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "alice",
        "userName": "alice@contoso.com",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "alice@contoso.com"}],
        "phoneNumbers": [{"type": "mobile", "value": "+46701234567"}],
        "meta": {"resourceType": "User"},
        "name": {"familyName": "Andersson", "givenName": "Alice"},
        "roles": [],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "costCenter": "CC-4130", "organization": "Contoso Security"},
        "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User": {
            "label1": "Shift A", "label2": "North"}
    }))
    .unwrap();
    assert_eq!(
        n.doc,
        json!({
            "externalId": "alice",
            "userName": "alice@contoso.com",
            "active": true,
            "emails": [{"primary": true, "type": "work", "value": "alice@contoso.com"}],
            "phoneNumbers": [{"type": "mobile", "value": "+46701234567"}],
            "name": {"familyName": "Andersson", "givenName": "Alice"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "costCenter": "CC-4130", "organization": "Contoso Security"},
            "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User": {
                "label1": "Shift A", "label2": "North"}
        })
    );
    assert_eq!(n.members, None);
    assert_eq!(n.notes, vec!["extension not in schemas"]);
}

/// `docs/entra-id-behaviour.md` "Groups and members": Entra's Group create body with
/// Microsoft's ADSCIM schema URI and `"members":[]`.
#[test]
fn entra_group_body_with_adscim_schema_and_empty_members() {
    let n = normalise(
        &GROUP_TYPE,
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                        "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Dispatch North",
            "members": [],
            "meta": {"resourceType": "Group"},
            "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group": {"description": "Night shift dispatch"}
        }),
    )
    .unwrap();
    assert_eq!(
        n.doc,
        json!({
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "Dispatch North",
            "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group": {"description": "Night shift dispatch"}
        })
    );
    assert_eq!(n.members, Some(vec![]));
    assert_eq!(
        n.notes,
        vec!["unknown schema URI", "extension not in schemas"]
    );
}

/// Members: `$ref: null` is fine, `display` is read-only, `type` is kept, a bare id is a member
/// (Postman "string id 1"); an element without `value` is a 400.
#[test]
fn group_members() {
    let n = normalise(
        &GROUP_TYPE,
        &json!({"displayName": "G", "members": [
            {"$ref": null, "value": "u1", "display": "Alice"},
            {"value": "g2", "type": "Group"},
            "u3"
        ]}),
    )
    .unwrap();
    let m = |v: &str, k: Option<&str>| MemberRef {
        value: v.into(),
        kind: k.map(Into::into),
    };
    assert_eq!(
        n.members,
        Some(vec![m("u1", None), m("g2", Some("Group")), m("u3", None)])
    );
    assert_eq!(n.doc, json!({"displayName": "G"}));
    for bad in [
        json!([{"display": "x"}]),
        json!([{"value": ""}]),
        json!([{"value": 7}]),
    ] {
        let err = normalise(&GROUP_TYPE, &json!({"displayName": "G", "members": bad})).unwrap_err();
        assert_eq!(err.scim_type, Some(ScimType::InvalidValue), "{err}");
    }
}

/// scim2-tester T3: `schemas` inside an extension object is ignored.
#[test]
fn scim2_tester_schemas_inside_extension_ignored() {
    let n = user(json!({"userName": "a",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "schemas": ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "employeeNumber": "42"}}))
    .unwrap();
    assert_eq!(
        n.doc["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        json!({"employeeNumber": "42"})
    );
}

/// Entra's `manager` (`docs/entra-id-behaviour.md` "Update (PATCH)"): a plain id,
/// `{"value": id}`, or the old one-element array; `""` and `{"value":""}` mean no manager.
#[test]
fn entra_manager_shapes() {
    const EXT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let manager = |m: Value| {
        let n = user(json!({"userName": "a", EXT: {"manager": m}})).unwrap();
        (
            n.doc.get(EXT).and_then(|e| e.get("manager")).cloned(),
            n.notes,
        )
    };
    assert_eq!(
        manager(json!("m1")),
        (
            Some(json!({"value": "m1"})),
            vec!["manager as string", "extension not in schemas"]
        )
    );
    assert_eq!(
        manager(json!({"value": "m1"})).0,
        Some(json!({"value": "m1"}))
    );
    assert_eq!(
        manager(json!([{"$ref": "../Users/m1", "value": "m1"}])).0,
        Some(json!({"$ref": "../Users/m1", "value": "m1"}))
    );
    assert_eq!(manager(json!("")).0, None);
    assert_eq!(manager(json!({"value": ""})).0, None);
}

#[test]
fn validate_checks_required_attributes() {
    assert!(validate(&USER_TYPE, &json!({"userName": "a"})).is_ok());
    assert_eq!(
        missing_required(&USER_TYPE, &json!({"userName": ""})),
        Some("userName")
    );
    assert_eq!(
        missing_required(&GROUP_TYPE, &json!({})),
        Some("displayName")
    );
}

/// Item 5 of the write-path review: a POST/PUT body is held to the same per-attribute limit as
/// a PATCH result, and the refusal names the limit and its configuration key.
#[test]
fn a_body_with_more_values_than_the_limit_is_invalid_value_naming_the_limit() {
    let emails = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({"value": format!("u{i}@x.se")}))
            .collect()
    };
    let limits = Limits::DEFAULT;
    let at_limit = user(json!({"userName": "a", "emails": emails(100), "roles": emails(100)}))
        .unwrap()
        .doc;
    assert!(limits.check_resource(&USER_TYPE, &at_limit, None).is_ok());
    for attr in [
        "emails",
        "phoneNumbers",
        "addresses",
        "roles",
        "entitlements",
        "ims",
    ] {
        let values: Vec<Value> = (0..101)
            .map(|i| match attr {
                "addresses" => json!({"formatted": format!("Street {i}")}),
                _ => json!({"value": format!("v{i}")}),
            })
            .collect();
        let doc = user(json!({"userName": "a", (attr): values})).unwrap().doc;
        assert_eq!(doc[attr].as_array().map(Vec::len), Some(101), "{attr}");
        let e = limits.check_resource(&USER_TYPE, &doc, None).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{attr}");
        assert!(
            e.detail.contains(attr)
                && e.detail.contains("100")
                && e.detail.contains("limits.max_values_per_attribute"),
            "{}",
            e.detail
        );
    }
    // Members are not values: a group body is held to the (much higher) per-request limit.
    let group = json!({"displayName": "g"});
    assert!(limits
        .check_resource(&GROUP_TYPE, &group, Some(10_000))
        .is_ok());
    let e = limits
        .check_resource(&GROUP_TYPE, &group, Some(10_001))
        .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
    assert!(
        e.detail.contains("limits.max_members_per_request"),
        "{}",
        e.detail
    );
}

#[test]
fn date_times_are_read_as_instants() {
    let at = |s: &str| date_time_nanos(s);
    assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(at("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
    assert_eq!(at("1969-12-31T23:59:59.999999999Z"), Some(-1));
    // The text order of the stored form is not the time order; the instants are.
    assert!(at("2026-01-05T10:00:00.5Z") > at("2026-01-05T10:00:00Z"));
    assert_eq!(at("2026-01-05T10:00:00.500Z"), at("2026-01-05T10:00:00.5Z"));
    assert_eq!(at("2026-01-05T11:00:00+01:00"), at("2026-01-05T10:00:00Z"));
    assert_eq!(at("2026-01-05t09:30:00-00:30"), at("2026-01-05T10:00:00z"));
    assert_eq!(at("2000-02-29T00:00:00Z"), Some(951_782_400_000_000_000));
    assert_eq!(at("2026-03-01T00:00:00Z"), Some(1_772_323_200_000_000_000));
    for bad in [
        "",
        "yesterday",
        "2026-01-05",
        "2026-01-05T10:00Z",
        "2026-01-05T10:00:00",
        "2026-01-05 10:00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-01-05T24:00:00Z",
        "2026-01-05T23:59:60Z",
        "2026-01-05T10:00:00.Z",
        "2026-01-05T10:00:00.1234567890Z",
        "2026-01-05T10:00:00+1:00",
        "2026-01-05T10:00:00Zx",
        "+2026-01-05T10:00:00Z",
        "2026-01-05T10:00:00Z\u{0}",
    ] {
        assert_eq!(at(bad), None, "{bad:?}");
    }
}
