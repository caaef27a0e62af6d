//! PATCH paths (RFC 7644 §3.5.2): table of valid paths → AST, and malformed ones → the detail
//! a client sees.

use super::*;

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
