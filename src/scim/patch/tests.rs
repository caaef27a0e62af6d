//! PATCH: a table of RFC 7644 §3.5.2 cases, then one named test per client quirk, each showing
//! the payload the client really sends.

use serde_json::{json, Value};

use super::*;
use crate::scim::error::ScimType;
use crate::scim::schema::{GROUP_TYPE, USER_TYPE};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const GT: &str = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User";

mod clients;

fn body(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// Parse and apply `ops` to `doc`; returns the document afterwards and the outcome.
fn run(
    rt: &'static ResourceType,
    doc: &Value,
    ops: Value,
) -> (Value, Result<PatchOutcome, ScimError>) {
    let mut doc = doc.clone();
    let outcome = parse_request(&body(ops)).and_then(|req| apply(rt, &mut doc, &req));
    (doc, outcome)
}

/// Apply `ops` to a User `before`; expect the document `after`, or an error of that `scimType`
/// with the document untouched.
fn check(before: &Value, ops: Value, expected: Result<Value, ScimType>) {
    let (after, outcome) = run(&USER_TYPE, before, ops.clone());
    match expected {
        Ok(want) => {
            assert!(outcome.is_ok(), "ops {ops}: {outcome:?}");
            assert_eq!(after, want, "ops {ops}");
        }
        Err(t) => {
            assert_eq!(
                outcome.err().and_then(|e| e.scim_type),
                Some(t),
                "ops {ops}"
            );
            assert_eq!(
                &after, before,
                "a failed PATCH must leave the document untouched"
            );
        }
    }
}

/// Apply to a Group; return the member operations and notes.
fn group_ops(ops: Value) -> Result<(Vec<MemberOp>, Vec<&'static str>), ScimError> {
    let (_, outcome) = run(&GROUP_TYPE, &json!({"displayName": "G"}), ops);
    outcome.map(|o| (o.member_ops, o.notes))
}

fn member(id: &str) -> MemberRef {
    MemberRef {
        value: id.into(),
        kind: None,
    }
}

fn alice() -> Value {
    json!({
        "userName": "alice",
        "active": true,
        "name": {"givenName": "Alice", "familyName": "Andersson"},
        "emails": [{"type": "work", "value": "a@x", "primary": true}],
        "phoneNumbers": [{"type": "mobile", "value": "+4670"}],
        ENT: {"costCenter": "CC-1"}
    })
}

/// `alice()` with one top-level key set (or removed, for `Value::Null`).
fn alice_with(key: &str, value: Value) -> Value {
    let mut doc = alice();
    if let Some(obj) = doc.as_object_mut() {
        match value {
            Value::Null => obj.shift_remove(key),
            v => obj.insert(key.to_string(), v),
        };
    }
    doc
}

/// What a row of the table expects, starting from `alice()`.
enum Want {
    /// The document is unchanged.
    Same,
    /// `alice()` with this top-level key set (`Value::Null`: removed).
    Set(&'static str, Value),
    /// This error, with the document untouched.
    Fail(ScimType),
}

/// RFC 7644 §3.5.2 on one attribute at a time: (op, path, value, expected). `Value::Null` as the
/// value of a `remove` means "no value member".
#[test]
#[rustfmt::skip]
fn rfc_table() {
    use ScimType::*;
    use Want::*;
    let n = Value::Null;
    let work = json!({"type": "work", "value": "a@x", "primary": true});
    let home = json!({"type": "home", "value": "h@x"});
    let cases = [
        // Single-valued attributes: add and replace set, remove unassigns, "" and null clear.
        ("replace", "userName", json!("al"), Set("userName", json!("al"))),
        ("add", "title", json!("Boss"), Set("title", json!("Boss"))),
        ("replace", "displayName", json!(""), Same),
        ("replace", "displayName", n.clone(), Same),
        ("remove", "title", n.clone(), Same), // removing what is not there succeeds
        ("remove", "active", n.clone(), Set("active", n.clone())),
        ("replace", "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", json!("B"),
            Set("name", json!({"givenName": "Alice", "familyName": "B"}))),
        // Complex: add/replace merge sub-attributes (§3.5.2.3); a sub-attribute path sets one.
        ("replace", "name", json!({"givenName": "Al"}), Set("name", json!({"givenName": "Al", "familyName": "Andersson"}))),
        ("add", "name.middleName", json!("M"),
            Set("name", json!({"givenName": "Alice", "familyName": "Andersson", "middleName": "M"}))),
        ("remove", "name.givenName", n.clone(), Set("name", json!({"familyName": "Andersson"}))),
        ("remove", "name", n.clone(), Set("name", n.clone())),
        // Multi-valued: add appends (identical values once), replace replaces, remove removes.
        ("add", "emails", json!([home]), Set("emails", json!([work, home]))),
        ("add", "emails", json!([work]), Same),
        ("replace", "emails", home.clone(), Set("emails", json!([home]))),
        ("remove", "emails", n.clone(), Set("emails", n.clone())),
        ("remove", "emails", json!([{"value": "A@X"}]), Set("emails", n.clone())),
        ("remove", "emails", json!([{"value": "b@x"}]), Same),
        ("remove", "emails", json!([]), Same),
        // Value filters and sub-attributes of multi-valued attributes.
        ("remove", "emails[type eq \"work\"]", n.clone(), Set("emails", n.clone())),
        ("remove", "emails[type eq \"home\"]", n.clone(), Same),
        ("remove", "emails[type eq \"work\"].value", n.clone(), Set("emails", n.clone())),
        ("remove", "emails[type eq \"work\"].primary", n.clone(), Set("emails", json!([{"type": "work", "value": "a@x"}]))),
        ("replace", "emails[type eq \"work\"].value", json!("b@x"), Set("emails", json!([{"type": "work", "value": "b@x", "primary": true}]))),
        ("replace", "emails[type eq \"work\"]", json!({"value": "b@x"}), Set("emails", json!([{"type": "work", "value": "b@x"}]))),
        ("add", "emails[type eq \"work\"]", json!({"display": "W"}),
            Set("emails", json!([{"type": "work", "value": "a@x", "primary": true, "display": "W"}]))),
        ("replace", "emails.value", json!("c@x"), Set("emails", json!([{"type": "work", "value": "c@x", "primary": true}]))),
        ("add", "emails[type eq \"work\" or type eq \"home\"].value", json!("c@x"),
            Set("emails", json!([{"type": "work", "value": "c@x", "primary": true}]))),
        ("replace", "emails[value co \"zzz\"].value", json!("c@x"), Fail(NoTarget)),
        ("add", "emails[type eq \"home\" or type eq \"other\"].value", json!("c@x"), Fail(NoTarget)),
        // Extensions: attributes by URN path or bare name, the whole extension, emptied → omitted.
        ("replace", &format!("{ENT}:costCenter"), json!("CC-2"), Set(ENT, json!({"costCenter": "CC-2"}))),
        ("remove", &format!("{ENT}:costCenter"), n.clone(), Set(ENT, n.clone())),
        ("remove", ENT, n.clone(), Set(ENT, n.clone())),
        ("add", "department", json!("Ops"), Set(ENT, json!({"costCenter": "CC-1", "department": "Ops"}))),
        ("add", ENT, json!("x"), Fail(InvalidValue)),
        // Write-only `password` is accepted and dropped.
        ("replace", "password", json!("s3cret"), Same),
        // Unknown paths, read-only attributes, wrong types.
        ("replace", "nickname2", json!("x"), Fail(InvalidPath)),
        ("replace", "name.nope", json!("x"), Fail(InvalidPath)),
        ("replace", "emails[type eq]", json!("x"), Fail(InvalidFilter)), // a bad filter inside [] (§3.12)
        ("replace", "userName[type eq \"x\"]", json!("x"), Fail(InvalidPath)),
        ("replace", "urn:example:unknown:1.0:User", json!({}), Fail(InvalidPath)),
        ("replace", "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group", json!({}), Fail(InvalidPath)),
        ("replace", "id", json!("x"), Fail(Mutability)),
        ("replace", "meta.lastModified", json!("x"), Fail(Mutability)),
        ("add", "groups", json!([{"value": "g"}]), Fail(Mutability)),
        ("replace", &format!("{ENT}:manager.displayName"), json!("x"), Fail(Mutability)),
        ("replace", "active", json!("maybe"), Fail(InvalidValue)),
        ("replace", "userName", json!(42), Fail(InvalidValue)),
        ("add", "emails", json!([{"value": "1", "primary": true}, {"value": "2", "primary": true}]), Fail(InvalidValue)),
    ];
    for (op, path, value, want) in cases {
        let mut operation = json!({"op": op, "path": path});
        if !(op == "remove" && value.is_null()) {
            operation["value"] = value;
        }
        let expected = match want {
            Same => Ok(alice()),
            Set(key, v) => Ok(alice_with(key, v)),
            Fail(t) => Err(t),
        };
        check(&alice(), json!([operation]), expected);
    }
}

/// RFC 7644 §3.5.2.1: "If the target location specifies a single-valued attribute, the existing
/// value is replaced"; a sub-attribute path creates its complex parent.
#[test]
fn add_on_single_valued_replaces_and_creates_parent() {
    let op = |path: &str, v: &str| json!([{"op": "add", "path": path, "value": v}]);
    let titled = alice_with("title", json!("A"));
    check(
        &titled,
        op("title", "B"),
        Ok(alice_with("title", json!("B"))),
    );
    let nameless = alice_with("name", Value::Null);
    let named = alice_with("name", json!({"givenName": "A"}));
    check(&nameless, op("name.givenName", "A"), Ok(named));
}

#[test]
fn parse_errors_say_which_operation() {
    let err = |b: Value| parse_request(&b).err().map(|e| (e.scim_type, e.detail));
    let no_schemas = json!({"Operations": [{"op": "add", "path": "title", "value": "x"}]});
    assert_eq!(
        err(no_schemas).map(|e| e.0),
        Some(Some(ScimType::InvalidSyntax))
    );
    assert_eq!(
        err(body(json!([]))).map(|e| e.0),
        Some(Some(ScimType::InvalidSyntax))
    );
    assert_eq!(
        err(json!([1])).map(|e| e.0),
        Some(Some(ScimType::InvalidSyntax))
    );
    let two = |second: Value| {
        err(body(
            json!([{"op": "add", "path": "title", "value": "x"}, second]),
        ))
    };
    assert_eq!(
        two(json!({"op": "delete", "path": "title"})),
        Some((
            Some(ScimType::InvalidSyntax),
            "Operations[1]: 'op' must be add, replace or remove, not 'delete'".into()
        ))
    );
    // RFC 7644 §3.5.2.2: remove without path is noTarget.
    assert_eq!(
        two(json!({"op": "remove"})).map(|e| e.0),
        Some(Some(ScimType::NoTarget))
    );
    assert_eq!(
        two(json!({"op": "add", "path": "title"})).map(|e| e.0),
        Some(Some(ScimType::InvalidSyntax))
    );
    assert_eq!(
        two(json!({"op": "add", "path": 5, "value": 1})).map(|e| e.0),
        Some(Some(ScimType::InvalidPath))
    );
    // Apply errors carry the operation index too.
    let (_, outcome) = run(
        &USER_TYPE,
        &alice(),
        json!([
        {"op": "add", "path": "title", "value": "x"},
        {"op": "add", "path": "bogus", "value": "x"}]),
    );
    assert!(outcome.unwrap_err().detail.starts_with("Operations[1]: "));
}

/// Microsoft: "Don't require a case-sensitive match on structural elements"; the Postman tests
/// add a top-level `"id"` and extra keys in operations, which are ignored.
#[test]
fn structural_keys_any_case_and_extra_keys_ignored() {
    let req = parse_request(&json!({
        "id": "927fa2c0", "SCHEMAS": ["URN:ietf:params:scim:api:messages:2.0:patchop"],
        "operations": [{"Op": "add", "Path": "title", "Value": "x", "name": "addMember"}]
    }))
    .unwrap();
    assert_eq!(req.operations.len(), 1);
    assert_eq!(req.operations[0].value, Some(json!("x")));
}

/// Validator P2: remove → add → replace of one attribute, applied in order.
#[test]
fn multiple_ops_on_same_attribute_in_order() {
    check(
        &alice_with("title", json!("A")),
        json!([
        {"op": "remove", "path": "title"},
        {"op": "add", "path": "title", "value": "B"},
        {"op": "replace", "path": "title", "value": "C"}]),
        Ok(alice_with("title", json!("C"))),
    );
    check(
        &alice(),
        json!([
        {"op": "remove", "path": "emails"},
        {"op": "add", "path": "emails", "value": [{"value": "b@x"}]},
        {"op": "replace", "path": "emails[value eq \"b@x\"].type", "value": "home"}]),
        Ok(alice_with(
            "emails",
            json!([{"value": "b@x", "type": "home"}]),
        )),
    );
}

/// A failing operation in the middle leaves the document untouched and produces no outcome.
#[test]
fn failing_op_in_the_middle_changes_nothing() {
    let before = alice();
    let (after, outcome) = run(
        &USER_TYPE,
        &before,
        json!([
        {"op": "replace", "path": "userName", "value": "bob"},
        {"op": "replace", "path": "active", "value": "perhaps"},
        {"op": "remove", "path": "name"}]),
    );
    assert_eq!(
        outcome.unwrap_err().detail,
        "Operations[1]: 'active' must be a boolean, not a string"
    );
    assert_eq!(after, before);
}

/// Replacing a value with itself, or removing what is absent (Entra retries), is `changed: false`.
#[test]
fn no_op_patch_is_unchanged() {
    for ops in [
        json!([{"op": "replace", "path": "userName", "value": "alice"}]),
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
        json!([{"op": "add", "path": "emails", "value": [{"type": "work", "value": "a@x", "primary": true}]}]),
        json!([{"op": "remove", "path": "title"}]),
        json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
    ] {
        let (doc, outcome) = run(&USER_TYPE, &alice(), ops.clone());
        assert_eq!(outcome.map(|o| o.changed).ok(), Some(false), "{ops}");
        assert_eq!(doc, alice());
    }
}

/// `n` work emails `u0@x.se`…, as a PATCH value.
fn emails(n: usize) -> Value {
    (0..n)
        .map(|i| json!({"type": "work", "value": format!("u{i}@x.se")}))
        .collect()
}

fn assert_limit_error(outcome: Result<PatchOutcome, ScimError>, key: &str) {
    let e = outcome.expect_err("over the limit");
    assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{}", e.detail);
    assert!(e.detail.contains(key), "{}", e.detail);
}

/// Item 5 of the write-path review: one PATCH adding 60,000 emails held the single writer for
/// 30 s (a `position` scan and an array clone per element). Now it is refused before any of
/// the values is normalised, naming the limit, and the document is untouched.
#[test]
fn sixty_thousand_emails_in_one_patch_are_refused_naming_the_limit() {
    let before = alice();
    let ops = json!([{"op": "add", "path": "emails", "value": emails(60_000)}]);
    let (after, outcome) = run(&USER_TYPE, &before, ops);
    assert_limit_error(outcome, "limits.max_values_per_attribute");
    assert_eq!(after, before);
    // The same values one per operation: refused by the operations limit.
    let ops: Vec<Value> = (0..60_000)
        .map(|i| json!({"op": "add", "path": "emails", "value": [{"value": format!("u{i}@x.se")}]}))
        .collect();
    let (after, outcome) = run(&USER_TYPE, &before, Value::Array(ops));
    assert_limit_error(outcome, "limits.max_patch_operations");
    assert_eq!(after, before);
    // Growing past the limit a few at a time: refused by the operation that crosses it.
    let ops: Vec<Value> = (0..101)
        .map(|i| json!({"op": "add", "path": "emails", "value": [{"value": format!("u{i}@x.se")}]}))
        .collect();
    let (after, outcome) = run(&USER_TYPE, &json!({"userName": "a"}), Value::Array(ops));
    let e = outcome.expect_err("the 101st email");
    assert!(e.detail.starts_with("Operations[100]"), "{}", e.detail);
    assert_eq!(after, json!({"userName": "a"}));
    // Filtered paths create elements too.
    let ops: Vec<Value> = (0..101)
        .map(|i| json!({"op": "add", "path": format!("emails[type eq \"t{i}\"].value"), "value": "v@x.se"}))
        .collect();
    let (_, outcome) = run(&USER_TYPE, &json!({"userName": "a"}), Value::Array(ops));
    assert_limit_error(outcome, "limits.max_values_per_attribute");
}

#[test]
fn a_patch_at_the_limits_applies() {
    let (after, outcome) = run(
        &USER_TYPE,
        &json!({"userName": "a"}),
        json!([{"op": "add", "path": "emails", "value": emails(100)}]),
    );
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(after["emails"].as_array().map(Vec::len), Some(100));
    // 1000 operations, each on a full attribute: every one selects among 100 values.
    let ops: Vec<Value> = (0..1000)
        .map(|i| json!({"op": "replace", "path": format!("emails[value eq \"u{}@x.se\"].display", i % 100), "value": format!("d{i}")}))
        .collect();
    let (after, outcome) = run(&USER_TYPE, &after, Value::Array(ops));
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(after["emails"][0]["display"], "d900");
    assert_eq!(after["emails"][99]["display"], "d999");
    // Removing by a value list of 100 removes exactly those (case-insensitively).
    let listed: Vec<Value> = (0..100)
        .step_by(2)
        .map(|i| json!({"value": format!("U{i}@X.SE")}))
        .collect();
    let (after, outcome) = run(
        &USER_TYPE,
        &after,
        json!([{"op": "remove", "path": "emails", "value": listed}]),
    );
    assert!(outcome.is_ok(), "{outcome:?}");
    let left: Vec<&str> = after["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(left.len(), 50);
    assert!(left.iter().all(|v| v.trim_end_matches("@x.se")[1..]
        .parse::<u32>()
        .is_ok_and(|n| n % 2 == 1)));
    // A filter removing half of them keeps the others in order.
    let (after, outcome) = run(
        &USER_TYPE,
        &after,
        json!([{"op": "remove", "path": "emails[value ew \"1@x.se\" or value ew \"3@x.se\"]"}]),
    );
    assert!(outcome.is_ok(), "{outcome:?}");
    let left: Vec<&str> = after["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(left.len(), 30);
    assert_eq!(left[..3], ["u5@x.se", "u7@x.se", "u9@x.se"]);
}

/// Duplicates are found by hashing a value's canonical form: key order does not make two equal
/// values different, and the first of equal values is the one kept.
#[test]
fn adding_a_value_that_is_there_in_another_key_order_adds_nothing() {
    let before = alice_with(
        "emails",
        json!([{"type": "work", "value": "a@x.se", "primary": true}, {"value": "b@x.se", "type": "home"}]),
    );
    let (after, outcome) = run(
        &USER_TYPE,
        &before,
        json!([{"op": "add", "path": "emails", "value": [
            {"primary": true, "value": "a@x.se", "type": "work"},
            {"type": "home", "value": "b@x.se"},
            {"type": "home", "value": "b@x.se"},
            {"type": "other", "value": "c@x.se"}
        ]}]),
    );
    let outcome = outcome.unwrap();
    assert!(outcome.changed);
    assert_eq!(
        after["emails"],
        json!([
            {"type": "work", "value": "a@x.se", "primary": true},
            {"value": "b@x.se", "type": "home"},
            {"type": "other", "value": "c@x.se"}
        ])
    );
}

/// A document stored before the limit (or with a higher one) may still shrink by PATCH; it may
/// not grow.
#[test]
fn an_attribute_over_the_limit_can_shrink_but_not_grow() {
    let big = json!({"userName": "a", "emails": emails(150)});
    let (after, outcome) = run(
        &USER_TYPE,
        &big,
        json!([{"op": "remove", "path": "emails[value eq \"u0@x.se\"]"}]),
    );
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(after["emails"].as_array().map(Vec::len), Some(149));
    let (after, outcome) = run(
        &USER_TYPE,
        &big,
        json!([{"op": "add", "path": "emails", "value": {"value": "new@x.se"}}]),
    );
    assert_limit_error(outcome, "limits.max_values_per_attribute");
    assert_eq!(after, big);
    let (after, outcome) = run(
        &USER_TYPE,
        &big,
        json!([{"op": "replace", "path": "emails", "value": emails(2)}]),
    );
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(after["emails"], emails(2));
}

/// Group members are rows, not values of the document: a PATCH may add far more than 100 of
/// them, and is held to the per-request member limit instead — counted over all operations,
/// before any of them is read.
#[test]
fn members_have_their_own_per_request_limit() {
    let refs = |n: usize| -> Value { (0..n).map(|i| json!({"value": format!("m{i}")})).collect() };
    let (ops, _) = group_ops(json!([{"op": "add", "path": "members", "value": refs(5000)}]))
        .expect("5000 members");
    assert!(matches!(&ops[..], [MemberOp::Add(m)] if m.len() == 5000));
    let (ops, _) = group_ops(json!([
        {"op": "add", "path": "members", "value": refs(5000)},
        {"op": "remove", "path": "members", "value": refs(5000)}
    ]))
    .expect("10,000 members named");
    assert_eq!(ops.len(), 2);
    let too_many = [
        json!([{"op": "add", "path": "members", "value": refs(10_001)}]),
        json!([
            {"op": "add", "path": "members", "value": refs(5000)},
            {"op": "replace", "path": "members", "value": refs(5000)},
            {"op": "remove", "path": "members[value eq \"m1\"]"}
        ]),
    ];
    for ops in too_many {
        let e = group_ops(ops).unwrap_err();
        assert_eq!(e.scim_type, Some(ScimType::InvalidValue), "{}", e.detail);
        assert!(
            e.detail.contains("limits.max_members_per_request"),
            "{}",
            e.detail
        );
    }
}
