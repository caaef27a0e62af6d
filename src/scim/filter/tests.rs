//! Tests for the filter parser and printer, read as tables: input → expected; then properties
//! over generated ASTs and text. Evaluation is tested in `eval.rs`.

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

/// RFC 7644 Table 9: `invalidFilter` for the filter inside `[…]`, `invalidPath` for the rest.
#[test]
fn rejects_malformed_patch_paths() {
    use ScimType::{InvalidFilter as F, InvalidPath as P};
    for (input, scim_type, detail) in [
        (
            "",
            P,
            "expected an attribute path, found the end of the path",
        ),
        (
            "user Name",
            P,
            "expected '[' or the end of the path, found 'Name'",
        ),
        ("a.b.c", P, "not a valid attribute path"),
        ("émails", P, "attribute names are ASCII"),
        ("\"userName\"", P, "expected an attribute path"),
        ("\"user[Name", P, "unclosed string"),
        (
            "[type eq \"work\"]",
            P,
            "expected an attribute path, found '['",
        ),
        ("name.givenName[value eq \"x\"]", P, "names a sub-attribute"),
        (
            "emails[type eq \"work\"].value.x",
            P,
            "not a sub-attribute name",
        ),
        (
            "emails[type eq \"work\"]value",
            P,
            "expected a sub-attribute ('.value') or the end",
        ),
        ("emails[type eq \"work\"].value eq \"x\"", P, "found 'eq'"),
        (
            "emails[type eq \"work\"",
            F,
            "expected 'and', 'or' or ']', found the end of the path",
        ),
        (
            "emails[type eq]",
            F,
            "expected a value after 'eq', found ']'",
        ),
        (
            "emails[type equals \"work\"]",
            F,
            "at position 12: expected an operator after 'type'",
        ),
        (
            "emails[type eq \"work]",
            F,
            "at position 15: unclosed string",
        ),
        (
            "emails[type eq \"work\" and members[value pr]]",
            F,
            "cannot be nested",
        ),
        ("emails[value.x eq \"a\"]", F, "name a sub-attribute"),
    ] {
        let err = parse_patch_path(input).expect_err(input);
        assert_eq!(err.scim_type, Some(scim_type), "{input}: {}", err.detail);
        assert!(
            err.detail.contains(detail),
            "{input:?}: {:?} lacks {detail:?}",
            err.detail
        );
    }
    let long = format!("emails[value eq \"{}\"]", "a".repeat(MAX_LEN));
    assert!(parse_patch_path(&long)
        .unwrap_err()
        .detail
        .contains("the path is"));
}

// --- Properties ----------------------------------------------------------------------------------

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        proptest::collection::vec(any::<char>(), 0..16)
            .prop_map(|c| Literal::String(c.into_iter().collect())),
        "[a-z0-9@./]{1,8}".prop_map(Literal::String),
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
pub(super) fn filter_ast() -> impl Strategy<Value = Filter> {
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

/// Prints an AST as a client might: any keyword case, extra whitespace and parentheses, bare
/// values, `not(`, `\/` escapes, and Entra's `attr[f].sub op value`.
struct Noisy(u64);

impl Noisy {
    fn one_in(&mut self, n: u64) -> bool {
        // xorshift64: deterministic per proptest seed, so failures shrink and replay.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0.is_multiple_of(n)
    }

    fn space(&mut self) -> &'static str {
        if self.one_in(2) {
            " "
        } else {
            ["  ", "\t", "\n ", " \r\n"][(self.0 % 4) as usize]
        }
    }

    fn keyword(&mut self, k: &str) -> String {
        if self.one_in(3) {
            k.to_uppercase()
        } else if self.one_in(2) {
            k[..1].to_uppercase() + &k[1..]
        } else {
            k.to_string()
        }
    }

    fn filter(&mut self, f: &Filter) -> String {
        let text = self.node(f);
        if self.one_in(6) {
            format!("({}{text}{})", self.space(), self.space())
        } else {
            text
        }
    }

    fn node(&mut self, f: &Filter) -> String {
        match f {
            Filter::Compare { path, op, value } => {
                let (s1, op, s2) = (self.space(), self.keyword(op.as_str()), self.space());
                format!("{path}{s1}{op}{s2}{}", self.literal(value))
            }
            Filter::Present(path) => format!("{path}{}{}", self.space(), self.keyword("pr")),
            Filter::And(l, r) | Filter::Or(l, r) => {
                let keyword = self.keyword(if matches!(f, Filter::And(..)) {
                    "and"
                } else {
                    "or"
                });
                let left = self.operand(f, l, false);
                let (s1, s2) = (self.space(), self.space());
                format!("{left}{s1}{keyword}{s2}{}", self.operand(f, r, true))
            }
            Filter::Not(inner) => {
                let gap = if self.one_in(2) { "" } else { " " };
                format!("{}{gap}({})", self.keyword("not"), self.filter(inner))
            }
            Filter::ValuePath { path, filter } => match &**filter {
                Filter::And(l, r) if is_simple(r) && self.one_in(2) => {
                    format!("{path}[{}].{}", self.filter(l), self.node(r))
                }
                inner => format!("{path}[{}]", self.filter(inner)),
            },
        }
    }

    fn operand(&mut self, parent: &Filter, child: &Filter, right: bool) -> String {
        if needs_parens(parent, child, right) {
            format!("({})", self.filter(child))
        } else {
            self.filter(child)
        }
    }

    fn literal(&mut self, value: &Literal) -> String {
        match value {
            Literal::String(s) if can_be_bare(s) && self.one_in(2) => s.clone(),
            Literal::String(_) if self.one_in(2) => value.to_string().replace('/', "\\/"),
            Literal::Bool(_) | Literal::Null => self.keyword(&value.to_string()),
            _ => value.to_string(),
        }
    }
}

fn is_simple(f: &Filter) -> bool {
    matches!(f, Filter::Compare { .. } | Filter::Present(_))
}

fn can_be_bare(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(is_delimiter)
        && !is_keyword(s)
        && matches!(word_literal(s, 0), Ok(Literal::String(_)))
}

proptest! {
    #[test]
    fn noisy_spellings_parse_to_the_same_ast(filter in filter_ast(), seed in 1..u64::MAX) {
        let text = Noisy(seed).filter(&filter);
        prop_assert_eq!(parse(&text), Ok(filter), "{:?}", text);
    }

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
    }
}

/// Found by fuzzing (fuzz/artifacts/patch_path): a bare value of control characters prints as
/// `\u0001` escapes, six times longer; an accepted PATCH path must still parse back.
#[test]
fn patch_path_with_control_characters_round_trips_or_is_refused() {
    let text = format!("emails[value eq {}]", "\u{1}".repeat(700));
    match parse_patch_path(&text) {
        Ok(p) => assert_eq!(parse_patch_path(&p.to_string()), Ok(p)),
        Err(e) => assert_eq!(
            e.scim_type,
            Some(crate::scim::error::ScimType::InvalidFilter)
        ),
    }
}
