//! Tests for the filter parser, printer and evaluator, read as tables: input → expected.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::scim::error::ScimType;
use crate::scim::schema::{
    find, AttrType, Mutability, Returned, Uniqueness, ENTERPRISE_USER, GROUP_SCHEMA, GROUP_TYPE,
    USER, USER_SCHEMA, USER_TYPE,
};

const EU: &str = ENTERPRISE_USER;

// --- AST builders, so expectations read like the filters they describe ------------------------

fn path(text: &str) -> AttrPath {
    AttrPath::parse(text).unwrap()
}

fn cmp(p: &str, op: CompareOp, value: Literal) -> Filter {
    Filter::Compare {
        path: path(p),
        op,
        value,
    }
}

fn eq(p: &str, value: &str) -> Filter {
    cmp(p, CompareOp::Eq, s(value))
}

fn s(value: &str) -> Literal {
    Literal::String(value.to_string())
}

fn num(text: &str) -> Literal {
    Literal::Number(serde_json::from_str(text).unwrap())
}

fn pr(p: &str) -> Filter {
    Filter::Present(path(p))
}

fn and(l: Filter, r: Filter) -> Filter {
    Filter::And(Box::new(l), Box::new(r))
}

fn or(l: Filter, r: Filter) -> Filter {
    Filter::Or(Box::new(l), Box::new(r))
}

fn not(f: Filter) -> Filter {
    Filter::Not(Box::new(f))
}

fn vp(p: &str, f: Filter) -> Filter {
    Filter::ValuePath {
        path: path(p),
        filter: Box::new(f),
    }
}

fn check(input: &str, expected: Filter) {
    assert_eq!(parse(input), Ok(expected), "{input}");
}

// --- Valid filters ------------------------------------------------------------------------------

/// Every valid input in this file, with its AST; also drives the round-trip test.
fn valid_cases() -> Vec<(String, Filter)> {
    use CompareOp::*;
    let mut cases: Vec<(String, Filter)> = vec![
        // Every operator (RFC 7644 §3.4.2.2 Table 3).
        ("userName eq \"bjensen\"".into(), eq("userName", "bjensen")),
        ("userName ne \"bjensen\"".into(), cmp("userName", Ne, s("bjensen"))),
        ("name.familyName co \"O'Malley\"".into(), cmp("name.familyName", Co, s("O'Malley"))),
        ("userName sw \"J\"".into(), cmp("userName", Sw, s("J"))),
        ("userName ew \"son\"".into(), cmp("userName", Ew, s("son"))),
        (
            "meta.lastModified gt \"2011-05-13T04:42:34Z\"".into(),
            cmp("meta.lastModified", Gt, s("2011-05-13T04:42:34Z")),
        ),
        ("meta.lastModified ge \"2011\"".into(), cmp("meta.lastModified", Ge, s("2011"))),
        ("meta.lastModified lt \"2011\"".into(), cmp("meta.lastModified", Lt, s("2011"))),
        ("meta.lastModified le \"2011\"".into(), cmp("meta.lastModified", Le, s("2011"))),
        ("title pr".into(), pr("title")),
        // Case-insensitive keywords; attribute names keep their spelling.
        ("userName EQ \"a\"".into(), eq("userName", "a")),
        ("DisplayName Eq \"a\"".into(), eq("DisplayName", "a")),
        ("title PR".into(), pr("title")),
        ("title pr AND nickName Pr".into(), and(pr("title"), pr("nickName"))),
        ("title pr Or nickName pr".into(), or(pr("title"), pr("nickName"))),
        ("NOT (title pr)".into(), not(pr("title"))),
        // Precedence: not > and > or, left-associative.
        (
            "a pr or b pr and c pr".into(),
            or(pr("a"), and(pr("b"), pr("c"))),
        ),
        (
            "a pr and b pr or c pr".into(),
            or(and(pr("a"), pr("b")), pr("c")),
        ),
        (
            "a pr or b pr or c pr".into(),
            or(or(pr("a"), pr("b")), pr("c")),
        ),
        (
            "a pr and b pr and c pr".into(),
            and(and(pr("a"), pr("b")), pr("c")),
        ),
        ("(a pr or b pr) and c pr".into(), and(or(pr("a"), pr("b")), pr("c"))),
        ("a pr and (b pr and c pr)".into(), and(pr("a"), and(pr("b"), pr("c")))),
        ("a pr or (b pr or c pr)".into(), or(pr("a"), or(pr("b"), pr("c")))),
        ("not (a pr) and b pr".into(), and(not(pr("a")), pr("b"))),
        ("not (a pr or b pr)".into(), not(or(pr("a"), pr("b")))),
        ("not(a pr)".into(), not(pr("a"))),
        ("not(not(a pr))".into(), not(not(pr("a")))),
        ("((a pr))".into(), pr("a")),
        (
            "userType eq \"Employee\" and (emails co \"example.com\" or emails.value co \"example.org\")".into(),
            and(
                eq("userType", "Employee"),
                or(
                    cmp("emails", Co, s("example.com")),
                    cmp("emails.value", Co, s("example.org")),
                ),
            ),
        ),
        // Value paths.
        ("emails[type eq \"work\"]".into(), vp("emails", eq("type", "work"))),
        (
            "emails[type eq \"work\" and value co \"@contoso.com\"]".into(),
            vp("emails", and(eq("type", "work"), cmp("value", Co, s("@contoso.com")))),
        ),
        (
            "emails[not (type eq \"work\")]".into(),
            vp("emails", not(eq("type", "work"))),
        ),
        (
            "emails[(type eq \"work\") or primary eq true]".into(),
            vp("emails", or(eq("type", "work"), cmp("primary", Eq, Literal::Bool(true)))),
        ),
        (
            "userType eq \"Employee\" and emails[type eq \"work\" and value co \"@example.com\"]".into(),
            and(
                eq("userType", "Employee"),
                vp("emails", and(eq("type", "work"), cmp("value", Co, s("@example.com")))),
            ),
        ),
        ("emails [type pr]".into(), vp("emails", pr("type"))),
        (
            "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]".into(),
            vp("members", eq("value", "2819c223-7f76-453a-919d-413861904646")),
        ),
        // Entra: `attr[f].sub op value` is one element with both properties.
        (
            "emails[type eq \"work\"].value eq \"alice@contoso.com\"".into(),
            vp("emails", and(eq("type", "work"), eq("value", "alice@contoso.com"))),
        ),
        (
            "phoneNumbers[type eq \"mobile\"].value eq \"+46701234567\"".into(),
            vp("phoneNumbers", and(eq("type", "mobile"), eq("value", "+46701234567"))),
        ),
        (
            "emails[type eq \"work\"].value pr".into(),
            vp("emails", and(eq("type", "work"), pr("value"))),
        ),
        (
            "emails[type eq \"work\"].VALUE SW \"al\"".into(),
            vp("emails", and(eq("type", "work"), cmp("VALUE", Sw, s("al")))),
        ),
        (
            "emails[type eq \"work\" or type eq \"home\"].value eq \"x\"".into(),
            vp(
                "emails",
                and(or(eq("type", "work"), eq("type", "home")), eq("value", "x")),
            ),
        ),
        (
            "emails[type eq \"work\"].value eq \"a@b.c\" and active eq true".into(),
            and(
                vp("emails", and(eq("type", "work"), eq("value", "a@b.c"))),
                cmp("active", Eq, Literal::Bool(true)),
            ),
        ),
        // URN-qualified paths.
        (
            format!("{EU}:costCenter eq \"CC-1\""),
            eq(&format!("{EU}:costCenter"), "CC-1"),
        ),
        (
            format!("{EU}:manager.value eq \"2819c223\""),
            eq(&format!("{EU}:manager.value"), "2819c223"),
        ),
        (
            format!("{USER}:emails[type eq \"work\"]"),
            vp(&format!("{USER}:emails"), eq("type", "work")),
        ),
        (
            format!("{USER}:name.familyName eq \"Berg\""),
            eq(&format!("{USER}:name.familyName"), "Berg"),
        ),
        // Bare tokens (Entra's old clients) are strings.
        ("externalId eq jyoung".into(), eq("externalId", "jyoung")),
        (
            "id eq 54D382A4-2050-4C03-94D1-E769F1D15682 and manager eq 2819c223-7f76-453a-919d-413861904646".into(),
            and(
                eq("id", "54D382A4-2050-4C03-94D1-E769F1D15682"),
                eq("manager", "2819c223-7f76-453a-919d-413861904646"),
            ),
        ),
        ("userName eq alice@contoso.com".into(), eq("userName", "alice@contoso.com")),
        ("userName eq a+b".into(), eq("userName", "a+b")),
        ("employeeNumber eq 007".into(), eq("employeeNumber", "007")),
        ("employeeNumber eq 1.".into(), eq("employeeNumber", "1.")),
        ("userName eq 'x'".into(), eq("userName", "'x'")),
        ("userName eq Åsa".into(), eq("userName", "Åsa")),
        // Literals.
        ("age eq 42".into(), cmp("age", Eq, num("42"))),
        ("age gt -1.5".into(), cmp("age", Gt, num("-1.5"))),
        ("age lt 1e3".into(), cmp("age", Lt, num("1e3"))),
        ("age ge 0".into(), cmp("age", Ge, num("0"))),
        ("age le 18446744073709551615".into(), cmp("age", Le, num("18446744073709551615"))),
        ("active eq true".into(), cmp("active", Eq, Literal::Bool(true))),
        ("active eq FALSE".into(), cmp("active", Eq, Literal::Bool(false))),
        ("title eq Null".into(), cmp("title", Eq, Literal::Null)),
        ("title eq \"null\"".into(), eq("title", "null")),
        ("title eq \"true\"".into(), eq("title", "true")),
        ("title eq \"42\"".into(), eq("title", "42")),
        ("title eq \"\"".into(), eq("title", "")),
        // Escapes and unicode.
        (r#"title eq "a\"b""#.into(), eq("title", "a\"b")),
        (r#"title eq "back\\slash""#.into(), eq("title", "back\\slash")),
        (r#"title eq "a\/b""#.into(), eq("title", "a/b")),
        (r#"title eq "tab\tnew\nline""#.into(), eq("title", "tab\tnew\nline")),
        (r#"title eq "\u00e9t\u00E9""#.into(), eq("title", "été")),
        (r#"title eq "\ud83d\ude00""#.into(), eq("title", "😀")),
        ("displayName eq \"Åsa Öberg 日本 😀\"".into(), eq("displayName", "Åsa Öberg 日本 😀")),
        // Delimiters and keywords inside strings are just text.
        (
            "title eq \"a ] b ) c [ ( and or not pr\"".into(),
            eq("title", "a ] b ) c [ ( and or not pr"),
        ),
        // Whitespace: spaces, tabs, newlines, repeated; none needed around quotes.
        (
            "  userName\teq\n\"a\"   and\r\n  title  pr ".into(),
            and(eq("userName", "a"), pr("title")),
        ),
        ("userName eq\"a\"and title pr".into(), and(eq("userName", "a"), pr("title"))),
        // `$ref` is an attribute name.
        ("members.$ref eq \"x\"".into(), eq("members.$ref", "x")),
    ];
    // At the limits.
    let deep = format!("{}a pr{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    cases.push((deep, pr("a")));
    let many = vec!["a pr"; MAX_COMPARISONS].join(" and ");
    let expected = (1..MAX_COMPARISONS).fold(pr("a"), |acc, _| and(acc, pr("a")));
    cases.push((many, expected));
    cases
}

#[test]
fn parses_valid_filters() {
    for (input, expected) in valid_cases() {
        check(&input, expected);
    }
}

#[test]
fn valid_filters_round_trip_through_display() {
    for (input, _) in valid_cases() {
        let first = parse(&input).unwrap();
        let printed = first.to_string();
        assert_eq!(parse(&printed), Ok(first), "{input} printed as {printed}");
    }
}

#[test]
fn prints_canonical_text() {
    for (input, printed) in [
        ("userName EQ jyoung", r#"userName eq "jyoung""#),
        ("a pr AND (b pr OR c pr)", "a pr and (b pr or c pr)"),
        ("(a pr and b pr) or c pr", "a pr and b pr or c pr"),
        ("a pr or (b pr or c pr)", "a pr or (b pr or c pr)"),
        ("NOT(a pr)", "not (a pr)"),
        ("title eq \"\\u00e9\\/\\\"\"", "title eq \"é/\\\"\""),
        ("age gt 1E2", "age gt 100.0"),
        (
            "emails[type eq \"work\" or type eq \"home\"].value eq \"x\"",
            "emails[(type eq \"work\" or type eq \"home\") and value eq \"x\"]",
        ),
    ] {
        assert_eq!(parse(input).unwrap().to_string(), printed, "{input}");
    }
}

// --- Malformed filters ---------------------------------------------------------------------------

fn malformed_cases() -> Vec<(String, &'static str)> {
    let mut cases: Vec<(String, &'static str)> = [
        ("", "empty"),
        ("   \t\n", "empty"),
        ("userName eq \"abc", "unclosed string"),
        ("userName eq \"abc\\\"", "unclosed string"),
        (
            "emails[type eq \"work\"",
            "expected 'and', 'or' or ']', found the end",
        ),
        (
            "(userName eq \"a\"",
            "expected 'and', 'or' or ')', found the end",
        ),
        (
            "userName eq",
            "expected a value after 'eq', found the end of the filter",
        ),
        ("userName eq )", "expected a value after 'eq', found ')'"),
        (
            "userName eq and title pr",
            "expected a value after 'eq', found 'and'",
        ),
        (
            "userName eq \"a\" extra",
            "expected 'and', 'or' or the end of the filter, found 'extra'",
        ),
        ("userName eq \"a\" \"b\"", "found '\"b\"'"),
        ("userName eq \"a\")", "found ')'"),
        ("userName eq \"a\"]", "found ']'"),
        ("emails[type eq \"work\"]]", "found ']'"),
        (
            "emails[type eq \"work\" and addresses[type eq \"home\"]]",
            "cannot be nested",
        ),
        ("emails[type eq \"work\"][value pr]", "found '['"),
        ("title pr \"x\"", "'pr' takes no value, found '\"x\"'"),
        ("title pr x", "'pr' takes no value"),
        (
            "and",
            "expected an attribute path, '(' or 'not', found 'and'",
        ),
        ("or", "found 'or'"),
        ("not", "expected '(' after 'not', found the end"),
        ("not title pr", "expected '(' after 'not', found 'title'"),
        ("userName eq \"a\" and", "found the end of the filter"),
        ("and userName eq \"a\"", "found 'and'"),
        ("userName eq \"a\" or or title pr", "found 'or'"),
        (
            "userName equals \"a\"",
            "at position 9: expected an operator after 'userName', found 'equals'",
        ),
        (
            "userName",
            "expected an operator after 'userName', found the end of the filter",
        ),
        ("userName \"a\"", "expected an operator after 'userName'"),
        ("()", "found ')'"),
        ("not ()", "found ')'"),
        ("[type eq \"work\"]", "found '['"),
        ("emails[]", "found ']'"),
        (
            "userName eq \"a\\q\"",
            "invalid string literal: invalid escape",
        ),
        (
            "userName eq \"a\u{1}b\"",
            "invalid string literal: control character",
        ),
        ("userName eq \"a\nb\"", "invalid string literal"),
        ("userName eq \"\\ud800\"", "invalid string literal"),
        (
            "name.familyName[value eq \"x\"]",
            "'name.familyName' names a sub-attribute",
        ),
        (
            "emails[value.x eq \"a\"]",
            "name a sub-attribute such as 'value', not 'value.x'",
        ),
        (
            "emails[type eq \"work\"].value",
            "expected an operator after 'emails[…].value'",
        ),
        (
            "emails[type eq \"work\"].value.x eq \"a\"",
            "'.value.x' is not a sub-attribute name",
        ),
        (
            "emails[type eq \"work\"]. eq \"a\"",
            "'.' is not a sub-attribute name",
        ),
        ("a.b.c eq \"x\"", "'a.b.c' is not a valid attribute path"),
        ("1abc eq \"x\"", "not a valid attribute path"),
        (
            "\"userName\" eq \"x\"",
            "expected an attribute path, '(' or 'not', found '\"userName\"'",
        ),
        ("userName+eq+\"x\"", "not a valid attribute path"),
        ("usérName eq \"x\"", "attribute names are ASCII"),
        ("abcé eq \"x\"", "attribute names are ASCII"),
        ("abc\u{e9}[x eq 1]", "attribute names are ASCII"),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User: eq \"x\"",
            "names a schema but no attribute",
        ),
        (
            "userName eq \"a\" and (title pr",
            "found the end of the filter",
        ),
    ]
    .into_iter()
    .map(|(input, detail)| (input.to_string(), detail))
    .collect();
    let too_deep = format!(
        "{}a pr{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    cases.push((too_deep, "more than 32 levels"));
    let nots = format!(
        "{}a pr{}",
        "not (".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    cases.push((nots, "more than 32 levels"));
    let long = format!("userName eq \"{}\"", "a".repeat(MAX_LEN));
    cases.push((long, "at most 4096 are accepted"));
    let many = vec!["a pr"; MAX_COMPARISONS + 1].join(" or ");
    cases.push((many, "more than 256 comparisons"));
    cases
}

#[test]
fn rejects_malformed_filters_with_invalid_filter() {
    for (input, detail) in malformed_cases() {
        let err = parse(&input).expect_err(&input);
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{input}");
        assert_eq!(err.status, 400);
        assert!(
            err.detail.contains(detail),
            "{input:?}: {:?} lacks {detail:?}",
            err.detail
        );
    }
}

#[test]
fn error_positions_count_characters() {
    let err = parse("displayName eq \"Åsa\" and nickName equals \"x\"").unwrap_err();
    assert_eq!(
        err.detail,
        "at position 34: expected an operator after 'nickName', found 'equals'"
    );
    let err = parse("title eq \"ok\" and title eq \"bad\\x\"").unwrap_err();
    assert!(
        err.detail
            .starts_with("at position 27: invalid string literal"),
        "{}",
        err.detail
    );
}

#[test]
fn long_client_text_is_clipped_in_details() {
    let word = "x".repeat(300);
    let err = parse(&format!("userName eq \"a\" {word}")).unwrap_err();
    assert!(err.detail.len() < 150, "{}", err.detail);
    assert!(err.detail.contains('…'));
}

/// Printing may add parentheses or characters; what would not parse back is refused up front.
#[test]
fn refuses_filters_whose_canonical_form_exceeds_the_limits() {
    let fits = format!("userName eq {}", "x".repeat(MAX_LEN - 14));
    assert!(parse(&fits).is_ok());
    let grows = format!("userName eq {}", "x".repeat(MAX_LEN - 12));
    assert_eq!(grows.len(), MAX_LEN);
    assert!(parse(&grows)
        .unwrap_err()
        .detail
        .contains("once normalised"));

    let nots = |n| {
        format!(
            "emails[{}type eq \"a\"{} or type eq \"b\"].value eq \"x\"",
            "not (".repeat(n),
            ")".repeat(n)
        )
    };
    let ok = parse(&nots(MAX_DEPTH - 2)).unwrap();
    assert_eq!(parse(&ok.to_string()), Ok(ok));
    let err = parse(&nots(MAX_DEPTH - 1)).unwrap_err();
    assert!(err.detail.contains("once normalised"), "{}", err.detail);
}

// --- PATCH paths ---------------------------------------------------------------------------------

fn patch(attr: &str, filter: Option<Filter>, sub: Option<&str>) -> PatchPath {
    PatchPath {
        attr: path(attr),
        filter,
        sub: sub.map(str::to_string),
    }
}

#[test]
fn parses_patch_paths() {
    let work = || Some(eq("type", "work"));
    for (input, expected) in [
        ("userName".to_string(), patch("userName", None, None)),
        ("name.givenName".into(), patch("name.givenName", None, None)),
        (
            format!("{EU}:manager"),
            patch(&format!("{EU}:manager"), None, None),
        ),
        (
            format!("{EU}:manager.value"),
            patch(&format!("{EU}:manager.value"), None, None),
        ),
        (
            "emails[type eq \"work\"]".into(),
            patch("emails", work(), None),
        ),
        (
            "emails[type eq \"work\"].value".into(),
            patch("emails", work(), Some("value")),
        ),
        (
            "emails[TYPE EQ \"work\"].Value".into(),
            patch("emails", Some(eq("TYPE", "work")), Some("Value")),
        ),
        (
            "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]".into(),
            patch(
                "members",
                Some(eq("value", "2819c223-7f76-453a-919d-413861904646")),
                None,
            ),
        ),
        (
            format!("{USER}:emails[type eq \"work\"].value"),
            patch(&format!("{USER}:emails"), work(), Some("value")),
        ),
        (
            "addresses[type eq \"work\" and value co \"]\"].locality".into(),
            patch(
                "addresses",
                Some(and(eq("type", "work"), cmp("value", CompareOp::Co, s("]")))),
                Some("locality"),
            ),
        ),
        (" userName ".into(), patch("userName", None, None)),
    ] {
        let parsed = parse_patch_path(&input);
        assert_eq!(parsed, Ok(expected), "{input}");
        let printed = parsed.unwrap().to_string();
        assert_eq!(
            parse_patch_path(&printed),
            parse_patch_path(&input),
            "{printed}"
        );
    }
}

#[test]
fn rejects_malformed_patch_paths_with_invalid_path() {
    for (input, detail) in [
        ("", "expected an attribute path, found the end of the path"),
        (
            "user Name",
            "expected '[' or the end of the path, found 'Name'",
        ),
        ("a.b.c", "not a valid attribute path"),
        ("émails", "attribute names are ASCII"),
        (
            "emails[type eq \"work\"",
            "expected 'and', 'or' or ']', found the end of the path",
        ),
        ("emails[type eq]", "expected a value after 'eq', found ']'"),
        (
            "emails[type eq \"work\" and members[value pr]]",
            "cannot be nested",
        ),
        ("name.givenName[value eq \"x\"]", "names a sub-attribute"),
        (
            "emails[type eq \"work\"].value.x",
            "not a sub-attribute name",
        ),
        (
            "emails[type eq \"work\"]value",
            "expected a sub-attribute ('.value') or the end of the path",
        ),
        ("emails[type eq \"work\"].value eq \"x\"", "found 'eq'"),
        (
            "[type eq \"work\"]",
            "expected an attribute path, found '['",
        ),
        ("\"userName\"", "expected an attribute path"),
    ] {
        let err = parse_patch_path(input).expect_err(input);
        assert_eq!(err.scim_type, Some(ScimType::InvalidPath), "{input}");
        assert!(
            err.detail.contains(detail),
            "{input:?}: {:?} lacks {detail:?}",
            err.detail
        );
    }
}

// --- Evaluation ----------------------------------------------------------------------------------

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
            ("active eq \"true\"", false),
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
        "displayName": "Dispatch North",
        "members": [{"value": "u1", "type": "User"}, {"value": "u2", "type": "User"}]
    });
    check_matches(
        &GROUP_TYPE,
        &group,
        &[
            ("displayName eq \"dispatch north\"", true),
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

// --- Properties ----------------------------------------------------------------------------------

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        any::<String>().prop_map(Literal::String),
        "[a-z0-9@. ]{0,8}".prop_map(Literal::String),
        any::<i64>().prop_map(|n| Literal::Number(n.into())),
        any::<u64>().prop_map(|n| Literal::Number(n.into())),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Literal::Number)),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Null),
    ]
}

fn op() -> impl Strategy<Value = CompareOp> {
    proptest::sample::select(CompareOp::ALL.to_vec())
}

fn attr_expr(paths: &'static [&'static str]) -> BoxedStrategy<Filter> {
    let p = proptest::sample::select(paths).prop_map(path);
    prop_oneof![
        (p.clone(), op(), literal()).prop_map(|(path, op, value)| Filter::Compare {
            path,
            op,
            value
        }),
        p.prop_map(Filter::Present),
    ]
    .boxed()
}

fn logic(leaf: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| and(l, r)),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| or(l, r)),
            inner.prop_map(not),
        ]
    })
    .boxed()
}

const TOP_PATHS: &[&str] = &[
    "userName",
    "DISPLAYNAME",
    "name.familyName",
    "emails.value",
    "members.$ref",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
];
const SUB_PATHS: &[&str] = &["type", "value", "primary", "Display"];
const MULTI_PATHS: &[&str] = &[
    "emails",
    "phoneNumbers",
    "urn:ietf:params:scim:schemas:core:2.0:User:emails",
];

/// ASTs of every shape `parse` produces: value paths at any level, never nested.
fn filter_ast() -> impl Strategy<Value = Filter> {
    let value_path = (
        proptest::sample::select(MULTI_PATHS),
        logic(attr_expr(SUB_PATHS)),
    )
        .prop_map(|(p, f)| vp(p, f));
    logic(prop_oneof![attr_expr(TOP_PATHS), value_path].boxed())
}

/// Fragments that combine into mostly-plausible filters, to reach deep into the grammar.
fn filter_text() -> impl Strategy<Value = String> {
    let fragment = proptest::sample::select(vec![
        "userName",
        "emails",
        "[",
        "]",
        "(",
        ")",
        ".value",
        " ",
        " eq ",
        " pr",
        " and ",
        " or ",
        "not",
        " not (",
        "\"x\"",
        "\"a\\\"]\"",
        "\"\\u00e9\"",
        "\"",
        "1e5",
        "-0",
        "null",
        "TRUE",
        "jyoung",
        "type",
        "urn:ietf:params:scim:schemas:core:2.0:User:",
        "é",
        "😀",
        "\t",
        "\\",
    ]);
    proptest::collection::vec(fragment, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn printed_asts_parse_back(filter in filter_ast()) {
        let printed = filter.to_string();
        prop_assert_eq!(parse(&printed), Ok(filter), "{}", printed);
    }

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        if let Ok(filter) = parse(&text) {
            prop_assert_eq!(parse(&filter.to_string()), Ok(filter));
        }
        let _ = parse_patch_path(&text);
    }

    #[test]
    fn whatever_parses_prints_back_to_itself(text in filter_text()) {
        if let Ok(filter) = parse(&text) {
            let printed = filter.to_string();
            prop_assert_eq!(parse(&printed), Ok(filter), "{} printed as {}", text, printed);
        }
        if let Ok(path) = parse_patch_path(&text) {
            prop_assert_eq!(parse_patch_path(&path.to_string()), Ok(path));
        }
        let _ = matches(&parse("userName pr").unwrap(), &USER_TYPE, &alice());
    }

    #[test]
    fn evaluation_never_panics(filter in filter_ast()) {
        let user = alice();
        let _ = matches(&filter, &USER_TYPE, &user);
        let _ = matches(&filter, &GROUP_TYPE, &user);
        let _ = matches_element(&filter, user_attr("emails"), &user["emails"][0]);
    }
}
