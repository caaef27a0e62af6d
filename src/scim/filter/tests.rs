//! Tests for the filter parser and printer, read as tables: input → expected. PATCH paths in
//! `tests/patch_path.rs`, properties over generated ASTs and text in `tests/props.rs`.
//! Evaluation is tested in `eval.rs`.

use proptest::prelude::*;

use super::parse::{is_delimiter, is_keyword, word_literal};
use super::*;
use crate::scim::error::ScimType;
use crate::scim::schema::{ENTERPRISE_USER, USER};

const EU: &str = ENTERPRISE_USER;

// --- AST builders, so expectations read like the filters they describe ------------------------

pub(super) fn path(text: &str) -> AttrPath {
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

pub(super) fn pr(p: &str) -> Filter {
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

pub(super) fn vp(p: &str, f: Filter) -> Filter {
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
        ("age ge -0".into(), cmp("age", Ge, num("0"))),
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
        ("age gt 1e400", "number '1e400' is out of range"),
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
        // Found by fuzzing (filter target): `.pr` was taken as a sub-attribute, which prints
        // inside the brackets as `… and pr eq "e4"`, where `pr` is the presence operator.
        (
            "phoneNumbers[type eq \"b\"].pr eq \"e4\"",
            "'.pr' is not a sub-attribute name",
        ),
        (
            "emails[type eq \"work\"].AND eq \"a\"",
            "'.AND' is not a sub-attribute name",
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

mod patch_path;
mod props;

pub(super) use props::filter_ast;
