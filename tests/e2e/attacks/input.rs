//! Hostile input: values built to break SQL (quotes, `%`, `_`, backslashes, NUL), 1 MB strings,
//! invalid UTF-8, and JSON nested 10⁵ deep. Correct results or a clean 400 — never a 500, a
//! dropped connection, or a match that should not be.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{json, Value};

use super::{head, raw_exchange, status_while_sending};
use crate::harness::{
    assert_scim_error, patch_op, patch_op_bytes, Reply, Scim, TenantCtx, SCIM_JSON,
};

const HOSTILE: &[&str] = &[
    "o'brien@contoso.com",
    "'; DROP TABLE resources; --",
    "a' OR '1'='1",
    "\"quoted\"@contoso.com",
    "100%",
    "%",
    "%%",
    "_",
    "__",
    "a_b",
    "a%b",
    "\\",
    "\\%",
    "back\\slash_%",
    "%_\\'\"",
    "x\u{0}y",
    "\u{0}",
    "ÅSA@exämple.com",
    "😀",
    "a\tb",
    "[x]",
    "(x) or (y)",
    "*",
    "?1",
    ":name",
    "$1",
];

fn post_bytes(scim: &Scim<'_>, path: &str, body: Vec<u8>) -> Reply {
    scim.send_bytes("POST", path, SCIM_JSON, body)
}

fn search(scim: &Scim<'_>, path: &str, filter: &str) -> Reply {
    scim.post(
        &format!("{path}/.search"),
        &json!({"filter": filter, "count": 1000}),
    )
}

fn ids(r: &Reply) -> Vec<String> {
    let mut v: Vec<String> = r.body["Resources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn matches(op: &str, value: &str, probe: &str) -> bool {
    match op {
        "eq" => value == probe,
        "co" => value.contains(probe),
        "sw" => value.starts_with(probe),
        "ew" => value.ends_with(probe),
        _ => unreachable!(),
    }
}

#[test]
fn sql_hostile_values_are_stored_and_found_exactly() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    // (id, value) of every user stored; userName and externalId both hold the value.
    let mut stored: Vec<(String, String)> = Vec::new();
    for v in HOSTILE {
        let r = scim.post(
            "/Users",
            &json!({"userName": v, "externalId": v, "displayName": v}),
        );
        if r.status == 400 && v.contains('\0') {
            assert_scim_error(&r, 400, r.body["scimType"].as_str());
            continue;
        }
        assert_eq!(r.status, 201, "{v:?}: {:?}", r.body);
        assert_eq!(r.body["userName"], *v, "stored as sent");
        let id = r.body["id"].as_str().unwrap().to_string();
        let got = scim.get(&format!("/Users/{id}"));
        assert_eq!(got.body["externalId"], *v, "read back as sent");
        stored.push((id, v.to_string()));
    }
    assert!(
        stored.len() >= HOSTILE.len() - 2,
        "almost all are plain values"
    );
    // Every operator with every value as the probe, case-insensitively on userName and
    // case-exactly on externalId: exactly the users the RFC semantics select. All mismatches
    // are collected, so one run shows the whole picture.
    let mut wrong = Vec::new();
    let want = |op: &str, probe: &str, fold: bool| -> Vec<String> {
        let mut w: Vec<String> = stored
            .iter()
            .filter(|(_, v)| {
                if fold {
                    matches(op, &v.to_lowercase(), &probe.to_lowercase())
                } else {
                    matches(op, v, probe)
                }
            })
            .map(|(id, _)| id.clone())
            .collect();
        w.sort();
        w
    };
    for probe in HOSTILE {
        let literal = serde_json::to_string(probe).unwrap();
        for op in ["eq", "co", "sw", "ew"] {
            for (attr, fold) in [("userName", true), ("externalId", false)] {
                let f = format!("{attr} {op} {literal}");
                let r = search(&scim, "/Users", &f);
                if r.status == 400 && probe.contains('\0') {
                    assert_scim_error(&r, 400, Some("invalidFilter"));
                    continue;
                }
                if r.status != 200 {
                    wrong.push(format!("{f}: {} {}", r.status, r.body));
                } else if ids(&r) != want(op, probe, fold) {
                    wrong.push(format!(
                        "{f}: found {} users, expected {}",
                        ids(&r).len(),
                        want(op, probe, fold).len()
                    ));
                }
            }
        }
        // The same through the query string (Entra's way), for eq.
        let f = format!("userName eq {literal}");
        let r = scim.filter("/Users", &f);
        if !(r.status == 400 && probe.contains('\0')) && ids(&r) != want("eq", probe, true) {
            wrong.push(format!("GET {f}: {} {}", r.status, r.body));
        }
    }
    assert!(wrong.is_empty(), "wrong answers:\n{}", wrong.join("\n"));
    // Nothing was dropped or rewritten along the way.
    assert_eq!(
        scim.get_query("/Users", "count=1").body["totalResults"],
        stored.len()
    );
}

#[test]
fn megabyte_strings_are_stored_whole_or_refused_cleanly() {
    let TenantCtx { server, token } = TenantCtx::start("acme");
    let scim = server.as_tenant(&token);
    // 1 MB of LIKE wildcards, quotes and backslashes (1.4 MB as JSON, under the 2 MiB limit).
    let big = format!("u{}", "%_'\"\\".repeat(210 * 1024));
    assert!(big.len() > 1_000_000);
    let r = scim.post("/Users", &json!({"userName": big}));
    assert!(
        r.status == 201 || r.status == 400,
        "{}: {:?}",
        r.status,
        r.body
    );
    if r.status == 201 {
        let id = r.body["id"].as_str().unwrap();
        let got = scim.get(&format!("/Users/{id}"));
        assert_eq!(got.body["userName"].as_str(), Some(big.as_str()));
        let r = search(&scim, "/Users", "userName sw \"u%_'\\\"\\\\%\"");
        assert_eq!(ids(&r), vec![id.to_string()], "{:?}", r.body);
    } else {
        assert_scim_error(&r, 400, r.body["scimType"].as_str());
    }
    // A 1 MB filter: in a .search body it is an invalid filter; in the URL a clean refusal.
    let f = format!("userName eq \"{}\"", "a".repeat(1024 * 1024));
    assert_scim_error(&search(&scim, "/Users", &f), 400, Some("invalidFilter"));
    // (No client library builds such a URL; raw bytes do.)
    let request = format!(
        "GET /api/scim/Users?filter=userName+eq+%22{}%22 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let status = status_while_sending(&server, request, Vec::new(), 0);
    assert!(
        matches!(status, Some(400 | 414 | 431)),
        "1 MB filter in the URL: {status:?}"
    );
    let r = scim.post(
        "/Users",
        &json!({"userName": "x", "externalId": "y".repeat(1024 * 1024)}),
    );
    assert!(
        r.status == 201 || r.status == 400,
        "{}: {:?}",
        r.status,
        r.body
    );
    assert_eq!(
        scim.get("/Users").status,
        200,
        "the server is fine afterwards"
    );
}

#[test]
fn invalid_utf8_is_a_clean_400_and_never_matches_anything() {
    let ctx = TenantCtx::start("acme");
    let (server, scim) = (&ctx.server, ctx.scim());
    // A user whose name is the replacement character: lossy decoding would match it.
    let r = scim.post(
        "/Users",
        &json!({"userName": "\u{FFFD}", "externalId": "\u{FFFD}"}),
    );
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    for bad in [
        &b"\xff"[..],
        b"\xfe\xff",
        b"\xc0\xaf",         // overlong '/'
        b"\xed\xa0\x80",     // a UTF-16 surrogate
        b"\xf4\x90\x80\x80", // beyond U+10FFFF
        b"a\x80b",           // a lone continuation byte
    ] {
        let mut body = b"{\"userName\": \"".to_vec();
        body.extend_from_slice(bad);
        body.extend_from_slice(b"\"}");
        assert_scim_error(
            &post_bytes(&scim, "/Users", body.clone()),
            400,
            Some("invalidSyntax"),
        );
        let mut operations = br#"[{"op":"replace","path":"title","value":""#.to_vec();
        operations.extend_from_slice(bad);
        operations.extend_from_slice(b"\"}]");
        let r = scim.send_bytes(
            "PATCH",
            &format!("/Users/{id}"),
            SCIM_JSON,
            patch_op_bytes(&operations),
        );
        assert_scim_error(&r, 400, Some("invalidSyntax"));
    }
    // JSON escapes that are not characters.
    for escaped in [r#"{"userName": "\ud800"}"#, r#"{"userName": "\udc00x"}"#] {
        assert_scim_error(
            &post_bytes(&scim, "/Users", escaped.into()),
            400,
            Some("invalidSyntax"),
        );
    }
    // In the path and in the Authorization header.
    let r = scim.get("/Users/%FF%FE");
    assert!(r.status == 404 || r.status == 400, "{}", r.status);
    let mut raw = head("GET", "/Users", "", "").into_bytes();
    let at = raw.windows(7).position(|w| w == b"Bearer ").unwrap() + 7;
    raw.splice(at..at, b"\xff\xfe".iter().copied());
    let out = raw_exchange(server, &raw, Duration::from_secs(2));
    let status = out.responses.first().map(|r| r.status);
    assert!(
        status == Some(401) || status == Some(400),
        "invalid UTF-8 token: {status:?}"
    );
    // Percent-encoded invalid UTF-8 in a filter: refused, or at least not read as U+FFFD.
    for q in [
        "filter=userName+eq+%22%FF%22",
        "filter=externalId+eq+%22%C0%AF%22",
        "filter=userName+eq+%22%ED%A0%80%22",
    ] {
        let r = scim.get_query("/Users", q);
        assert!(r.status == 200 || r.status == 400, "{q}: {}", r.status);
        if r.status == 400 {
            assert_scim_error(&r, 400, Some("invalidFilter"));
        } else {
            assert_eq!(
                r.body["totalResults"], 0,
                "{q} matched U+FFFD: {:?}",
                r.body
            );
        }
    }
    assert_eq!(scim.get(&format!("/Users/{id}")).status, 200);
}

/// `[[[[…]]]]` and `{"a":{"a":…}}`, `depth` deep.
fn nested(depth: usize, object: bool) -> String {
    if object {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    } else {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }
}

#[test]
fn json_nested_a_hundred_thousand_deep_is_a_clean_400() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let deep = 100_000;
    for object in [false, true] {
        let doc = nested(deep, object);
        assert_scim_error(
            &post_bytes(&scim, "/Users", doc.clone().into()),
            400,
            Some("invalidSyntax"),
        );
        assert_scim_error(
            &post_bytes(&scim, "/Users/.search", doc.clone().into()),
            400,
            Some("invalidSyntax"),
        );
        // Deep inside otherwise valid bodies.
        let user = format!("{{\"userName\": \"deep\", \"title\": {doc}}}");
        assert_scim_error(
            &post_bytes(&scim, "/Users", user.into()),
            400,
            Some("invalidSyntax"),
        );
        let operations = format!("[{{\"op\":\"add\",\"path\":\"title\",\"value\":{doc}}}]");
        let r = scim.send_bytes(
            "PATCH",
            "/Users/00000000-0000-4000-8000-000000000000",
            SCIM_JSON,
            patch_op_bytes(operations.as_bytes()),
        );
        assert_scim_error(&r, 400, Some("invalidSyntax"));
    }
    // Just under what a JSON parser may accept, in an attribute the schema does not know and in
    // one it does: stored or refused, never a crash.
    for body in [
        format!(
            "{{\"userName\": \"d1\", \"urn:x:unknown\": {}}}",
            nested(120, true)
        ),
        format!(
            "{{\"userName\": \"d2\", \"addresses\": {}}}",
            nested(120, false)
        ),
        format!("{{\"userName\": \"d3\", \"name\": {}}}", nested(120, true)),
    ] {
        let r = post_bytes(&scim, "/Users", body.into());
        assert!(
            r.status == 201 || r.status == 400,
            "{}: {:?}",
            r.status,
            r.body
        );
    }
    // Filters nested deep: refused with the position, from the URL and from a .search body.
    let deep_filter = format!("{}userName pr{}", "(".repeat(50_000), ")".repeat(50_000));
    assert_scim_error(
        &search(&scim, "/Users", &deep_filter),
        400,
        Some("invalidFilter"),
    );
    let not_filter = format!("{}userName pr{}", "not (".repeat(500), ")".repeat(500));
    assert_scim_error(
        &scim.filter("/Users", &not_filter),
        400,
        Some("invalidFilter"),
    );
    let value_path = format!(
        "emails[{}type eq \"work\"{}]",
        "(".repeat(500),
        ")".repeat(500)
    );
    assert_scim_error(
        &scim.filter("/Users", &value_path),
        400,
        Some("invalidFilter"),
    );
    assert_eq!(
        scim.get("/Users").status,
        200,
        "the server is fine afterwards"
    );
}

/// One PATCH operation from a pool of valid, invalid, conflicting and hostile pieces.
fn operation(paths: Vec<String>, values: Vec<Value>) -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["add", "replace", "remove", "Replace", "Add", "copy"]),
        prop::option::of(prop::sample::select(paths)),
        prop::option::of(prop::sample::select(values)),
    )
        .prop_map(|(op, path, value)| {
            let mut o = json!({"op": op});
            if let Some(p) = path {
                o["path"] = json!(p);
            }
            if let Some(v) = value {
                o["value"] = v;
            }
            o
        })
}

fn patch_ops(paths: Vec<String>, values: Vec<Value>) -> impl Strategy<Value = Value> {
    prop::collection::vec(operation(paths, values), 1..5).prop_map(|ops| patch_op(json!(ops)))
}

#[test]
fn a_patch_that_fails_changes_nothing_not_even_members_or_version() {
    let TenantCtx { server, token } = TenantCtx::start("acme");
    let other = server.tenant_token("beta");
    let scim = server.as_tenant(&token);
    let id = |r: Reply| r.body["id"].as_str().unwrap().to_string();
    let user = id(scim.post("/Users", &json!({"userName": "alice@contoso.com",
        "emails": [{"type": "work", "value": "alice@contoso.com", "primary": true}], "title": "Medic"})));
    scim.post("/Users", &json!({"userName": "taken@contoso.com"}));
    let m1 = id(scim.post("/Users", &json!({"userName": "m1"})));
    let m2 = id(scim.post("/Users", &json!({"userName": "m2"})));
    let foreign = id(server
        .as_tenant(&other)
        .post("/Users", &json!({"userName": "f"})));
    let group = id(scim.post(
        "/Groups",
        &json!({"displayName": "Dispatch", "members": [{"value": m1}]}),
    ));
    scim.post("/Groups", &json!({"displayName": "Taken"}));
    // Members by value: ours, another tenant's, nobody's, the group itself.
    let member_values: Vec<Value> = [
        m1.as_str(),
        m2.as_str(),
        foreign.as_str(),
        "nobody",
        group.as_str(),
    ]
    .iter()
    .map(|m| json!([{"value": m}]))
    .chain([json!("Taken"), json!("New name"), json!(null), json!(7)])
    .collect();
    let group_paths: Vec<String> = vec![
        "members".into(),
        format!("members[value eq \"{m1}\"]"),
        format!("members[value eq \"{foreign}\"]"),
        "displayName".into(),
        "externalId".into(),
        "id".into(),
        "members[value eq".into(),
    ];
    let user_values = vec![
        json!("taken@contoso.com"),
        json!("new@contoso.com"),
        json!(""),
        json!(null),
        json!(true),
        json!([{"type": "work", "value": "w@x.y", "primary": true}]),
        json!({"givenName": "G"}),
        json!({"userName": "taken@contoso.com", "title": "Boss"}),
    ];
    let user_paths: Vec<String> = [
        "userName",
        "title",
        "emails[type eq \"work\"].value",
        "emails",
        "name",
        "active",
        "id",
        "meta.created",
        "groups",
        "emails[",
    ]
    .map(String::from)
    .to_vec();
    let strategy = (
        patch_ops(user_paths, user_values),
        patch_ops(group_paths, member_values),
    );
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let failed = std::cell::Cell::new(0);
    runner
        .run(&strategy, |(user_patch, group_patch)| {
            for (path, body) in [
                (format!("/Users/{user}"), user_patch),
                (format!("/Groups/{group}"), group_patch),
            ] {
                let before = scim.get(&path);
                let r = scim.patch(&path, &body);
                prop_assert!(r.status < 500, "{} answered {}: {}", body, r.status, r.body);
                if r.status >= 400 {
                    failed.set(failed.get() + 1);
                    let after = scim.get(&path);
                    prop_assert_eq!(
                        &after.body,
                        &before.body,
                        "a failed PATCH ({}) changed the resource: {}",
                        r.status,
                        body
                    );
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(failed.get() >= 20, "only {} PATCHes failed", failed.get());
}
