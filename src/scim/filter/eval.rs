//! In-memory evaluation of a [`Filter`] against one resource document or one element of a
//! multi-valued attribute, following the attribute definitions of the schema table.
//!
//! The PATCH engine selects elements with it, and tests use it as the reference semantics for
//! what `store::query` compiles to SQL.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use super::{CompareOp, Filter, Literal};
use crate::scim::path::AttrPath;
use crate::scim::resource::date_time_nanos;
use crate::scim::schema::{self, AttrType, Attribute, ResourceType};

/// Whether `resource` (our document layout: core and common attributes at the top, extension
/// attributes in an object keyed by the extension URN) matches `filter`.
///
/// Attributes unknown to `rt` match nothing rather than fail: the HTTP layer resolves paths
/// first when it wants to report them. On a multi-valued attribute a comparison holds when any
/// value satisfies it, and `ne` is the negation of `eq` (so an absent attribute is `ne` anything).
pub fn matches(filter: &Filter, rt: &'static ResourceType, resource: &Value) -> bool {
    match filter {
        Filter::Compare { path, op, value } => {
            select(rt, resource, path).is_some_and(|s| s.compare(*op, value))
        }
        Filter::Present(path) => select(rt, resource, path).is_some_and(|s| s.present),
        Filter::And(l, r) => matches(l, rt, resource) && matches(r, rt, resource),
        Filter::Or(l, r) => matches(l, rt, resource) || matches(r, rt, resource),
        Filter::Not(inner) => !matches(inner, rt, resource),
        Filter::ValuePath { path, filter } => {
            if path.sub.is_some() {
                return false;
            }
            let Some(resolved) = resolve(rt, path) else {
                return false;
            };
            let value = attribute_value(resource, resolved.extension, resolved.attr);
            elements(value).any(|e| matches_element(filter, resolved.attr, e))
        }
    }
}

/// Whether one element of the multi-valued attribute `attr` matches a value filter (the inside
/// of `emails[…]`), whose paths are sub-attribute names of `attr`. For a multi-valued attribute
/// of simple values, `value` names the element itself. Nested value paths match nothing.
pub fn matches_element(filter: &Filter, attr: &'static Attribute, element: &Value) -> bool {
    match filter {
        Filter::Compare { path, op, value } => {
            select_in_element(attr, element, path).is_some_and(|s| s.compare(*op, value))
        }
        Filter::Present(path) => select_in_element(attr, element, path).is_some_and(|s| s.present),
        Filter::And(l, r) => matches_element(l, attr, element) && matches_element(r, attr, element),
        Filter::Or(l, r) => matches_element(l, attr, element) || matches_element(r, attr, element),
        Filter::Not(inner) => !matches_element(inner, attr, element),
        Filter::ValuePath { .. } => false,
    }
}

/// What a path selects in one document: the values an operator compares, whether `pr` holds,
/// and whether the attribute definition says to compare strings case-sensitively.
struct Selection<'v> {
    values: Vec<&'v Value>,
    present: bool,
    case_exact: bool,
    /// A dateTime attribute: ordered and equal as instants (`…00.5Z` is after `…00Z`).
    date_time: bool,
}

impl Selection<'_> {
    /// RFC 7644 §3.4.2.2: any value satisfies the operator. `eq null` holds when the attribute
    /// is absent, and `ne` is the negation of `eq`.
    fn compare(&self, op: CompareOp, literal: &Literal) -> bool {
        // The text of a dateTime (what `co`, `sw`, `ew` and a literal that is no date-time
        // see) compares exactly, as the store compares its timestamp columns.
        let case_exact = self.case_exact || self.date_time;
        match (op, literal) {
            (CompareOp::Eq, Literal::Null) => !self.present,
            (CompareOp::Ne, _) => !self.compare(CompareOp::Eq, literal),
            (CompareOp::Eq | CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le, _)
                if self.date_time =>
            {
                self.values
                    .iter()
                    .any(|v| compare_instants(v, op, literal, case_exact))
            }
            _ => self
                .values
                .iter()
                .any(|v| compare_value(v, op, literal, case_exact)),
        }
    }
}

/// Select `path` in a resource document. `None` when `rt` has no such attribute.
fn select<'v>(
    rt: &'static ResourceType,
    resource: &'v Value,
    path: &AttrPath,
) -> Option<Selection<'v>> {
    let resolved = resolve(rt, path)?;
    let (attr, sub) = (resolved.attr, resolved.sub);
    let whole = attribute_value(resource, resolved.extension, attr);
    let selection = match sub {
        Some(sub) => {
            let values: Vec<&Value> = elements(whole).filter_map(|e| get(e, sub.name)).collect();
            let present = values.iter().any(|v| is_present(v));
            Selection {
                values,
                present,
                case_exact: sub.case_exact,
                date_time: sub.ty == AttrType::DateTime,
            }
        }
        // `emails eq "x"` and Entra's `manager eq 2819…` compare the `value` sub-attribute;
        // `pr` still asks whether the complex attribute itself has content.
        None if attr.ty == AttrType::Complex => {
            let value_def = attr.sub("value");
            let values = match value_def {
                Some(def) => elements(whole).filter_map(|e| get(e, def.name)).collect(),
                None => Vec::new(),
            };
            Selection {
                values,
                present: whole.is_some_and(is_present),
                case_exact: value_def.is_some_and(|d| d.case_exact),
                date_time: value_def.is_some_and(|d| d.ty == AttrType::DateTime),
            }
        }
        None => Selection {
            values: elements(whole).collect(),
            present: whole.is_some_and(is_present),
            case_exact: attr.case_exact,
            date_time: attr.ty == AttrType::DateTime,
        },
    };
    Some(selection)
}

/// Select a sub-attribute (`type`, `value`) in one element of the multi-valued attribute `attr`.
fn select_in_element<'v>(
    attr: &'static Attribute,
    element: &'v Value,
    path: &AttrPath,
) -> Option<Selection<'v>> {
    if path.urn.is_some() || path.sub.is_some() {
        return None;
    }
    let (value, def) = if attr.sub_attributes.is_empty() {
        if !path.name.eq_ignore_ascii_case("value") {
            return None;
        }
        (Some(element), attr)
    } else {
        let def = attr.sub(&path.name)?;
        (get(element, def.name), def)
    };
    let value = value.filter(|v| !v.is_null());
    Some(Selection {
        values: value.into_iter().collect(),
        present: value.is_some_and(is_present),
        case_exact: def.case_exact,
        date_time: def.ty == AttrType::DateTime,
    })
}

/// `AttrPath::resolve` without its error: an unknown attribute is a plain non-match here, and
/// evaluation over many documents should not format an error message per document.
fn resolve(rt: &'static ResourceType, path: &AttrPath) -> Option<schema::Resolved> {
    schema::resolve(rt, path.urn.as_deref(), &path.name, path.sub.as_deref())
}

/// The value of `attr` in a document, from the top level or from its extension's object.
fn attribute_value<'v>(
    resource: &'v Value,
    extension: Option<&schema::Schema>,
    attr: &Attribute,
) -> Option<&'v Value> {
    let container = match extension {
        Some(ext) => get(resource, ext.id)?,
        None => resource,
    };
    get(container, attr.name).filter(|v| !v.is_null())
}

/// The elements of a multi-valued value, or the value itself.
fn elements(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    let (one, many) = match value {
        Some(Value::Array(items)) => (None, items.as_slice()),
        other => (other, &[][..]),
    };
    one.into_iter().chain(many).filter(|v| !v.is_null())
}

/// Case-insensitive member lookup: SCIM names are case-insensitive (RFC 7643 §2.1) and stored
/// documents may carry a client's spelling.
fn get<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// `pr`: present and not null, not "", not [] and not an object without content.
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(members) => members.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// One value against one literal. Booleans only support `eq`. Two coercions, both for Entra and
/// both as `store::query` does them: a number against a string compares as its text (the
/// unquoted `externalId eq 12345`), and `"true"`/`"false"` in any case against a boolean
/// compare as that boolean (Entra sends booleans as strings). Other mismatches never match.
fn compare_value(value: &Value, op: CompareOp, literal: &Literal, case_exact: bool) -> bool {
    match (value, literal) {
        (Value::String(a), Literal::String(b)) => compare_strings(a, b, op, case_exact),
        (Value::String(a), Literal::Number(b)) => {
            compare_strings(a, &b.to_string(), op, case_exact)
        }
        (Value::Number(a), Literal::Number(b)) => {
            compare_numbers(a, b).is_some_and(|ord| ordering_satisfies(op, ord))
        }
        (Value::Bool(a), Literal::Bool(b)) => op == CompareOp::Eq && a == b,
        (Value::Bool(a), Literal::String(b)) => op == CompareOp::Eq && bool_text(b) == Some(*a),
        _ => false,
    }
}

/// A dateTime value against a literal: as instants when both are RFC 3339 date-times
/// (`resource::date_time_nanos`), else as text (a date alone, `"2026-01-06"`, is a prefix of
/// the stored form), as `store::query` compiles it.
fn compare_instants(value: &Value, op: CompareOp, literal: &Literal, case_exact: bool) -> bool {
    if let (Value::String(a), Literal::String(b)) = (value, literal) {
        if let (Some(a), Some(b)) = (date_time_nanos(a), date_time_nanos(b)) {
            return ordering_satisfies(op, a.cmp(&b));
        }
    }
    compare_value(value, op, literal, case_exact)
}

fn bool_text(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Strings follow the attribute's `caseExact`; ordering is lexicographic (dateTime attributes
/// are ordered as instants instead, by `compare_instants`).
fn compare_strings(a: &str, b: &str, op: CompareOp, case_exact: bool) -> bool {
    let (a, b) = if case_exact {
        (Cow::Borrowed(a), Cow::Borrowed(b))
    } else {
        (Cow::Owned(a.to_lowercase()), Cow::Owned(b.to_lowercase()))
    };
    match op {
        CompareOp::Co => a.contains(&*b),
        CompareOp::Sw => a.starts_with(&*b),
        CompareOp::Ew => a.ends_with(&*b),
        _ => ordering_satisfies(op, a.cmp(&b)),
    }
}

/// Integers exactly, anything else as f64.
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn ordering_satisfies(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord.is_eq(),
        CompareOp::Ne => ord.is_ne(),
        CompareOp::Gt => ord.is_gt(),
        CompareOp::Ge => ord.is_ge(),
        CompareOp::Lt => ord.is_lt(),
        CompareOp::Le => ord.is_le(),
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::scim::filter::tests::{filter_ast, path, pr, vp};
    use crate::scim::filter::{parse, parse_patch_path};
    use crate::scim::schema::{
        find, Mutability, Returned, Uniqueness, ENTERPRISE_USER, GROUP_SCHEMA, GROUP_TYPE, USER,
        USER_SCHEMA, USER_TYPE,
    };

    const EU: &str = ENTERPRISE_USER;

    fn alice() -> Value {
        json!({
            "schemas": [USER, EU],
            "id": "48af03ac28ad4fb88478",
            "externalId": "alice",
            "userName": "Alice@Contoso.com",
            "displayName": "Alice Andersson",
            "title": "",
            "nickName": null,
            "active": true,
            "name": {"familyName": "Andersson", "givenName": "Alice"},
            "emails": [
                {"value": "alice@contoso.com", "type": "work", "primary": true},
                {"value": "alice@home.example", "type": "home"}
            ],
            "phoneNumbers": [{"type": "mobile", "value": "+46701234567"}],
            "roles": [],
            "meta": {
                "resourceType": "User",
                "created": "2026-01-05T10:00:00Z",
                "lastModified": "2026-01-06T10:00:00Z"
            },
            EU: {"costCenter": "CC-4130", "organization": "Contoso Security",
                 "manager": {"value": "2819c223"}}
        })
    }

    fn check_matches(rt: &'static ResourceType, resource: &Value, cases: &[(&str, bool)]) {
        for &(input, expected) in cases {
            let filter = parse(input).unwrap();
            assert_eq!(matches(&filter, rt, resource), expected, "{input}");
        }
    }

    #[test]
    fn matches_a_user() {
        let user = alice();
        let cost_center = format!("{EU}:costCenter eq \"CC-4130\"");
        let organization = format!("{EU}:organization sw \"contoso\"");
        let manager = format!("{EU}:manager.value eq \"2819c223\"");
        check_matches(
            &USER_TYPE,
            &user,
            &[
                // caseExact false: compared lower-cased; caseExact true: exactly.
                ("userName eq \"alice@contoso.com\"", true),
                ("USERNAME eq \"ALICE@CONTOSO.COM\"", true),
                ("userName eq \"bob@contoso.com\"", false),
                ("externalId eq \"alice\"", true),
                ("externalId eq \"ALICE\"", false),
                ("id eq \"48AF03AC28AD4FB88478\"", false),
                ("id eq 48af03ac28ad4fb88478", true),
                // Substrings and order.
                ("name.familyName sw \"and\"", true),
                ("name.givenName ew \"CE\"", true),
                ("name.familyName co \"ders\"", true),
                ("name.familyName co \"x\"", false),
                ("displayName gt \"Alice\"", true),
                ("displayName lt \"Alice\"", false),
                ("meta.created lt \"2026-01-06\"", true),
                ("meta.lastModified gt \"2026-01-05T10:00:00Z\"", true),
                ("meta.created ge \"2026-01-05T10:00:00Z\"", true),
                ("meta.created le \"2025\"", false),
                // Multi-valued: any element.
                ("emails.value eq \"alice@home.example\"", true),
                ("emails eq \"ALICE@contoso.com\"", true),
                ("emails co \"nowhere\"", false),
                ("emails.type eq \"home\"", true),
                (
                    "emails[type eq \"work\"].value eq \"alice@contoso.com\"",
                    true,
                ),
                (
                    "emails[type eq \"home\"].value eq \"alice@contoso.com\"",
                    false,
                ),
                (
                    "emails[type eq \"work\" and value co \"@contoso.com\"]",
                    true,
                ),
                ("emails[type eq \"work\" and primary eq true]", true),
                ("emails[type eq \"home\" and primary eq true]", false),
                ("emails[type eq \"other\"]", false),
                (
                    "phoneNumbers[type eq \"mobile\"].value eq \"+46701234567\"",
                    true,
                ),
                ("phoneNumbers[type eq \"work\"]", false),
                // Booleans: eq and ne only.
                ("active eq true", true),
                ("active eq false", false),
                ("active ne false", true),
                ("active gt false", false),
                ("active eq \"True\"", true),
                ("active eq \"false\"", false),
                ("active ne \"FALSE\"", true),
                ("active eq \"yes\"", false),
                // Presence: not null, not "", not [].
                ("userName pr", true),
                ("title pr", false),
                ("nickName pr", false),
                ("roles pr", false),
                ("name pr", true),
                ("emails pr", true),
                ("emails.display pr", false),
                ("emails[type eq \"home\"].primary pr", false),
                ("emails[type eq \"work\"].primary pr", true),
                // null and ne.
                ("nickName eq null", true),
                ("title eq null", true),
                ("userName eq null", false),
                ("userName ne null", true),
                ("nickName ne \"x\"", true),
                ("userName ne \"alice@contoso.com\"", false),
                ("emails.value ne \"alice@contoso.com\"", false),
                ("emails.value ne \"nobody@contoso.com\"", true),
                // Extension attributes, qualified or not.
                (&cost_center, true),
                ("costCenter eq \"cc-4130\"", true),
                (&organization, true),
                (&manager, true),
                ("manager eq 2819c223", true),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager pr",
                    true,
                ),
                (
                    "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"alice\"",
                    true,
                ),
                ("department pr", false),
                // Unknown attributes match nothing; `not` still negates.
                ("nope eq \"x\"", false),
                ("nope pr", false),
                ("not (nope eq \"x\")", true),
                ("name.nope pr", false),
                ("urn:example:nope:title eq \"\"", false),
                // Type mismatches never match.
                ("userName eq 5", false),
                ("phoneNumbers.value eq 46701234567", false),
                ("phoneNumbers.value ew 1234567", true),
                ("userName gt true", false),
                // Logic.
                ("userName eq \"x\" or active eq true", true),
                ("userName eq \"x\" and active eq true", false),
                ("not (active eq true)", false),
                (
                    "(userName eq \"x\" or externalId eq \"alice\") and active eq true",
                    true,
                ),
            ],
        );
    }

    #[test]
    fn matches_a_group() {
        let group = json!({
            "id": "g1",
            "externalId": "12345",
            "displayName": "Dispatch North",
            "members": [{"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}]
        });
        check_matches(
            &GROUP_TYPE,
            &group,
            &[
                ("displayName eq \"dispatch north\"", true),
                // Entra's unquoted values: a number against a string compares as text.
                ("externalId eq 12345", true),
                ("externalId gt 1234", true),
                // Entra's reference check: `id eq … and members eq …`.
                ("id eq \"g1\" and members eq \"u2\"", true),
                ("id eq g1 and members eq u3", false),
                ("members[value eq \"u1\"]", true),
                ("members.value eq \"u2\"", true),
                ("members pr", true),
                ("userName pr", false),
                ("description pr", false),
            ],
        );
    }

    #[test]
    fn document_keys_are_looked_up_case_insensitively() {
        let user = json!({
            "USERNAME": "bob",
            "Emails": [{"Value": "bob@example.com", "Type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user": {"CostCenter": "7"}
        });
        check_matches(
            &USER_TYPE,
            &user,
            &[
                ("userName eq \"bob\"", true),
                (
                    "emails[type eq \"work\"].value eq \"bob@example.com\"",
                    true,
                ),
                ("costCenter eq \"7\"", true),
            ],
        );
    }

    fn user_attr(name: &str) -> &'static Attribute {
        find(USER_SCHEMA.attributes, name).unwrap()
    }

    #[test]
    fn matches_elements_of_multi_valued_attributes() {
        let emails = user_attr("emails");
        let work = json!({"type": "work", "value": "A@Example.com", "primary": true});
        for (input, expected) in [
            ("type eq \"WORK\"", true),
            ("value eq \"a@example.com\"", true),
            ("value ew \"example.com\" and primary eq true", true),
            ("primary eq false", false),
            ("primary ne false", true),
            ("display pr", false),
            ("display eq null", true),
            ("not (type eq \"home\")", true),
            ("type eq \"home\" or value sw \"a@\"", true),
            ("nope eq \"x\"", false),
        ] {
            let filter = parse(input).unwrap();
            assert_eq!(matches_element(&filter, emails, &work), expected, "{input}");
        }
        let members = find(GROUP_SCHEMA.attributes, "members").unwrap();
        let member = json!({"value": "2819c223-7f76-453a-919d-413861904646"});
        let filter = parse_patch_path("members[value eq \"2819C223-7F76-453A-919D-413861904646\"]")
            .unwrap()
            .filter
            .unwrap();
        assert!(matches_element(&filter, members, &member));
        // Paths inside a value filter are plain sub-attribute names; anything else matches nothing.
        let qualified = Filter::Present(path("emails.value"));
        assert!(!matches_element(&qualified, emails, &work));
        let nested = vp("emails", pr("value"));
        assert!(!matches_element(&nested, emails, &work));
    }

    /// A multi-valued attribute of simple values: `value` is the element itself. Our schema has
    /// none (nor any number), so the test brings its own definition.
    static SCORES: Attribute = Attribute {
        name: "scores",
        ty: AttrType::Integer,
        multi_valued: true,
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
        description: "test only",
    };

    #[test]
    fn compares_numbers_numerically() {
        for (input, element, expected) in [
            ("value gt 5", json!(7), true),
            ("value gt 5", json!(5), false),
            ("value ge 5", json!(5), true),
            ("value eq 5.0", json!(5), true),
            ("value lt -1", json!(-2), true),
            ("value le 1e3", json!(1000), true),
            ("value gt 18446744073709551614", json!(u64::MAX), true),
            ("value lt 0.5", json!(0.25), true),
            ("value eq \"7\"", json!(7), false),
            ("value co 7", json!(77), false),
            ("value pr", json!(0), true),
            ("value pr", json!(null), false),
            ("type eq 7", json!(7), false),
        ] {
            let filter = parse(input).unwrap();
            assert_eq!(
                matches_element(&filter, &SCORES, &element),
                expected,
                "{input} on {element}"
            );
        }
    }

    // Named regressions for what Entra sends (reference notes, sections 2 and 3).

    #[test]
    fn entra_match_query_on_work_email_needs_one_element_with_both() {
        let user = alice();
        let hit = parse("emails[type eq \"work\"].value eq \"ALICE@contoso.com\"").unwrap();
        let miss = parse("emails[type eq \"work\"].value eq \"alice@home.example\"").unwrap();
        assert!(matches(&hit, &USER_TYPE, &user));
        assert!(!matches(&miss, &USER_TYPE, &user));
    }

    #[test]
    fn entra_legacy_unquoted_reference_check() {
        let filter = parse("id eq 48af03ac28ad4fb88478 and manager eq 2819c223").unwrap();
        assert!(matches(&filter, &USER_TYPE, &alice()));
    }

    #[test]
    fn entra_test_connection_guid_matches_nobody() {
        let filter = parse("userName eq \"7d420df3-9995-4831-a406-ecf8166f5f6a\"").unwrap();
        assert!(!matches(&filter, &USER_TYPE, &alice()));
    }

    #[test]
    fn entra_remove_member_by_filter_path_selects_only_that_member() {
        let members = find(GROUP_SCHEMA.attributes, "members").unwrap();
        let path = parse_patch_path("members[value eq \"u2\"]").unwrap();
        let filter = path.filter.unwrap();
        let selected: Vec<bool> = [json!({"value": "u1"}), json!({"value": "u2"})]
            .iter()
            .map(|m| matches_element(&filter, members, m))
            .collect();
        assert_eq!(selected, [false, true]);
    }

    proptest! {
        #[test]
        fn evaluation_never_panics(filter in filter_ast()) {
            let user = alice();
            let _ = matches(&filter, &USER_TYPE, &user);
            let _ = matches(&filter, &GROUP_TYPE, &user);
            let _ = matches_element(&filter, user_attr("emails"), &user["emails"][0]);
        }
    }

    /// Item 12b of the write-path review: stored times have 0 to 3 fraction digits, so as text
    /// `…00.5Z` sorts before `…00Z`. dateTime attributes compare as instants.
    #[test]
    fn date_times_compare_as_instants_not_text() {
        let user = json!({"userName": "a", "meta": {
            "created": "2026-01-05T10:00:00.5Z",
            "lastModified": "2026-01-05T10:00:00Z"
        }});
        check_matches(
            &USER_TYPE,
            &user,
            &[
                ("meta.created gt \"2026-01-05T10:00:00Z\"", true),
                ("meta.created lt \"2026-01-05T10:00:00Z\"", false),
                ("meta.created eq \"2026-01-05T10:00:00.500Z\"", true),
                ("meta.created eq \"2026-01-05T11:00:00.5+01:00\"", true),
                ("meta.created ne \"2026-01-05T10:00:00.500000Z\"", false),
                ("meta.created ge \"2026-01-05T10:00:00.5000001Z\"", false),
                ("meta.created le \"2026-01-05T10:00:00.4999999Z\"", false),
                ("meta.created lt \"2026-01-05T10:00:00.5000001Z\"", true),
                ("meta.lastModified lt \"2026-01-05T10:00:00.5Z\"", true),
                ("meta.lastModified ge \"2026-01-05T10:00:00.000Z\"", true),
                // Not a date-time: compared as text, a prefix of the stored form.
                ("meta.created lt \"2026-01-06\"", true),
                ("meta.created sw \"2026-01-05T10:00:00.\"", true),
            ],
        );
    }
}
