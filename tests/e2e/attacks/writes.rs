//! The write path under load and abuse: a request that asks one resource to hold too much, a
//! write that runs past its request's deadline, and what a write must change besides its own
//! resource (the groups a deleted member was in) or how its times compare in filters. Each test
//! asserts what the client sees and what is stored afterwards.

use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{assert_scim_error, create_user, patch_op, Reply, Scim, TenantCtx};

/// `n` emails with short values (60,000 of them are 1.3 MB, under the 2 MiB body limit).
fn emails(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"value": format!("{i}@x.se")}))
        .collect()
}

/// A 400 `invalidValue` whose detail names the configuration key of the limit.
fn assert_limit(r: &Reply, key: &str) {
    assert_scim_error(r, 400, Some("invalidValue"));
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(key), "{detail}");
}

fn email_count(scim: &Scim<'_>, id: &str) -> usize {
    let r = scim.get(&format!("/Users/{id}"));
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["emails"].as_array().map_or(0, Vec::len)
}

/// A PATCH adding 60,000 emails to one user used to hold the single writer for 30 s (every
/// tenant's writes waited). It is refused before any work, naming the limit; so are the same
/// values in a POST or PUT body, and more operations than a PATCH may carry. Nothing is stored.
#[test]
fn sixty_thousand_emails_in_one_patch_are_refused_naming_the_limit() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let id = create_user(&scim, "many@contoso.com");
    let path = format!("/Users/{id}");

    let r = scim.patch(
        &path,
        &patch_op(json!([{"op": "add", "path": "emails", "value": emails(60_000)}])),
    );
    assert_limit(&r, "limits.max_values_per_attribute");
    assert_eq!(email_count(&scim, &id), 0);

    let one_per_op: Vec<Value> = (0..1001)
        .map(|i| json!({"op": "add", "path": "emails", "value": [{"value": format!("{i}@x.se")}]}))
        .collect();
    let r = scim.patch(&path, &patch_op(Value::Array(one_per_op)));
    assert_limit(&r, "limits.max_patch_operations");
    assert_eq!(email_count(&scim, &id), 0);

    let body = json!({"userName": "posted@contoso.com", "emails": emails(101)});
    assert_limit(
        &scim.post("/Users", &body),
        "limits.max_values_per_attribute",
    );
    let body = json!({"userName": "many@contoso.com", "emails": emails(60_000)});
    assert_limit(&scim.put(&path, &body), "limits.max_values_per_attribute");
    assert_eq!(email_count(&scim, &id), 0);
    assert_eq!(
        scim.filter("/Users", "userName eq \"posted@contoso.com\"")
            .body["totalResults"],
        0
    );
}

/// What the limits allow works — 100 emails, 1000 operations — and while such PATCHes run, a
/// create from another tenant is answered (no timed assertion: only that it succeeds).
#[test]
fn a_patch_at_the_limits_works_while_another_tenant_writes() {
    let ctx = TenantCtx::start("acme");
    let other = ctx.server.tenant_token("other");
    let scim = ctx.scim();
    let id = create_user(&scim, "full@contoso.com");
    let path = format!("/Users/{id}");
    let r = scim.patch(
        &path,
        &patch_op(json!([{"op": "add", "path": "emails", "value": emails(100)}])),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(email_count(&scim, &id), 100);

    // 1000 operations, each selecting among the 100 values.
    let ops: Vec<Value> = (0..1000)
        .map(|i| json!({"op": "replace", "path": format!("emails[value eq \"{}@x.se\"].display", i % 100), "value": format!("d{i}")}))
        .collect();
    let big = patch_op(Value::Array(ops));
    let acme = ctx.server.scim_client(&ctx.token);
    let busy = thread::spawn(move || {
        (0..5)
            .map(|_| acme.try_send("PATCH", &path, Some(&big)).map(|r| r.status))
            .collect::<Vec<_>>()
    });
    let theirs = ctx.server.as_tenant(&other);
    for i in 0..5 {
        create_user(&theirs, &format!("meanwhile{i}@fabrikam.com"));
    }
    let statuses = busy.join().unwrap();
    assert!(
        statuses.iter().all(|s| matches!(s, Ok(200))),
        "{statuses:?}"
    );
    let r = scim.get(&format!("/Users/{id}"));
    assert_eq!(r.body["emails"][0]["display"], "d900");
    assert_eq!(r.body["emails"][99]["display"], "d999");
}

/// Group members are not values of the group document: a PATCH may add 150 of them (over the
/// per-attribute limit of 100). They have their own, much higher, per-request limit, checked
/// before any member is looked up.
#[test]
fn group_members_have_their_own_per_request_limit() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let ids: Vec<String> = (0..150)
        .map(|i| create_user(&scim, &format!("m{i}@contoso.com")))
        .collect();
    let r = scim.post("/Groups", &json!({"displayName": "Dispatch"}));
    assert_eq!(r.status, 201, "{:?}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        &patch_op(json!([{"op": "Add", "path": "members", "value": members}])),
    );
    assert_eq!(r.status, 204, "{:?}", r.body);
    let r = scim.get(&format!("/Groups/{gid}"));
    assert_eq!(r.body["members"].as_array().map(Vec::len), Some(150));

    let unknown: Vec<Value> = (0..10_001)
        .map(|i| json!({"value": format!("nobody-{i}")}))
        .collect();
    let r = scim.patch(
        &format!("/Groups/{gid}"),
        &patch_op(json!([{"op": "Add", "path": "members", "value": unknown}])),
    );
    assert_limit(&r, "limits.max_members_per_request");
    let r = scim.post(
        "/Groups",
        &json!({"displayName": "Too big", "members": unknown}),
    );
    assert_limit(&r, "limits.max_members_per_request");
    let r = scim.get(&format!("/Groups/{gid}"));
    assert_eq!(r.body["members"].as_array().map(Vec::len), Some(150));
}

/// A write that starts just before its request's deadline and runs past it (the test-only knob
/// `GROUPTALK_TEST_WRITE_DELAY_MS` makes every request's write sleep once started) must answer
/// with its real result; a 503 must mean that nothing was stored. A second create queued behind
/// it times out before it starts: 503, and it is never applied.
#[test]
fn a_write_running_past_its_deadline_answers_its_result_never_503_and_stored() {
    let ctx = TenantCtx::start_with(
        "acme",
        "[limits]\nrequest_timeout_secs = 1\n",
        &[("GROUPTALK_TEST_WRITE_DELAY_MS", "2500")],
    );
    let scim = ctx.scim();
    // The token's first use and the provisioning log make writes of the server's own (which
    // the knob does not slow here, but might elsewhere): let them be done first.
    assert_eq!(scim.get("/Users").status, 200);
    thread::sleep(Duration::from_secs(6));
    let client = ctx.server.scim_client(&ctx.token);
    let second = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        client.try_send(
            "POST",
            "/Users",
            Some(&json!({"userName": "queued@contoso.com"})),
        )
    });
    let first = scim.post("/Users", &json!({"userName": "slow@contoso.com"}));
    let second = second.join().unwrap().unwrap();
    // Long enough for any write still in the queue to have run.
    thread::sleep(Duration::from_secs(6));
    let stored = |name: &str| {
        let r = scim.filter("/Users", &format!("userName eq \"{name}\""));
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["totalResults"].as_u64().unwrap()
    };
    match first.status {
        201 => assert_eq!(stored("slow@contoso.com"), 1),
        503 => assert_eq!(
            stored("slow@contoso.com"),
            0,
            "answered 503 but the write was applied"
        ),
        other => panic!("{other}: {:?}", first.body),
    }
    assert_eq!(
        first.status, 201,
        "the write had started: its result is due"
    );
    assert_eq!(second.status, 503, "{:?}", second.body);
    assert_eq!(
        stored("queued@contoso.com"),
        0,
        "answered 503 but the write was applied"
    );
}

/// Deleting a user changes the `members` of every group it was in: their version (ETag) and
/// `meta.lastModified` move on, so an `If-Match` with the old ETag no longer matches.
#[test]
fn deleting_a_member_changes_the_etag_and_last_modified_of_its_groups() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let (u1, u2) = (create_user(&scim, "d1"), create_user(&scim, "d2"));
    let mut groups = Vec::new();
    for name in ["G1", "G2"] {
        let r = scim.post(
            "/Groups",
            &json!({"displayName": name, "members": [{"value": u1}, {"value": u2}]}),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        groups.push(r.body["id"].as_str().unwrap().to_string());
    }
    let untouched = scim.post(
        "/Groups",
        &json!({"displayName": "G3", "members": [{"value": u2}]}),
    );
    let untouched_id = untouched.body["id"].as_str().unwrap().to_string();
    let read = |gid: &str| {
        let r = scim.get_query(&format!("/Groups/{gid}"), "excludedAttributes=members");
        assert_eq!(r.status, 200, "{:?}", r.body);
        let etag = r.headers["etag"].to_str().unwrap().to_string();
        assert_eq!(r.body["meta"]["version"], etag.as_str());
        let at = r.body["meta"]["lastModified"].as_str().unwrap().to_string();
        (etag, instant(&at))
    };
    let before: Vec<_> = groups.iter().map(|g| read(g)).collect();
    let untouched_before = read(&untouched_id);
    thread::sleep(Duration::from_millis(20));

    assert_eq!(scim.delete(&format!("/Users/{u1}")).status, 204);
    for (gid, (etag, at)) in groups.iter().zip(&before) {
        let (etag_after, at_after) = read(gid);
        assert_ne!(
            &etag_after, etag,
            "the group's members changed, its ETag did not"
        );
        assert!(at_after > *at, "meta.lastModified did not move");
        let r = scim
            .request("PATCH", &format!("/Groups/{gid}"))
            .header("content-type", "application/scim+json")
            .header("if-match", etag.as_str())
            .body(
                patch_op(json!([{"op": "replace", "path": "displayName", "value": "x"}]))
                    .to_string(),
            )
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 412);
    }
    assert_eq!(read(&untouched_id), untouched_before);
}

/// An RFC 3339 time as Unix nanoseconds, to compare what the server renders.
fn instant(text: &str) -> i128 {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp_nanos()
}

/// Stored times have 0 to 3 fraction digits (`…:00.5Z`, `…:00Z`), so as text `…00.5Z` sorts
/// before `…00Z`. Filters on `meta.lastModified` and `meta.created` compare instants.
#[test]
fn last_modified_filters_compare_instants_not_text() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    // Two users created one after the other; the first with a fraction of a second (999 in
    // 1000 times at the first try).
    let (a, b) = loop {
        let (a, b) = (
            scim.post("/Users", &json!({"userName": "a@contoso.com"})),
            scim.post("/Users", &json!({"userName": "b@contoso.com"})),
        );
        assert_eq!((a.status, b.status), (201, 201));
        let fraction = a.body["meta"]["lastModified"]
            .as_str()
            .is_some_and(|t| t.contains('.'));
        if fraction {
            break (a.body, b.body);
        }
        for r in [&a, &b] {
            scim.delete(&format!("/Users/{}", r.body["id"].as_str().unwrap()));
        }
    };
    let (ta, tb) = (
        a["meta"]["lastModified"].as_str().unwrap().to_string(),
        b["meta"]["lastModified"].as_str().unwrap().to_string(),
    );
    let both = "(userName eq \"a@contoso.com\" or userName eq \"b@contoso.com\")";
    let names = |filter: &str| -> Vec<String> {
        let r = scim.filter("/Users", &format!("{filter} and {both}"));
        assert_eq!(r.status, 200, "{filter}: {:?}", r.body);
        let mut names: Vec<String> = r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    let a_only = vec!["a@contoso.com".to_string()];
    // The whole second of A: A is later than it (by its fraction).
    let second = format!("{}Z", &ta[..19]);
    assert!(names(&format!("meta.lastModified gt \"{second}\"")).contains(&a_only[0]));
    assert!(!names(&format!("meta.lastModified le \"{second}\"")).contains(&a_only[0]));
    // A's time written with six fraction digits, and in another offset: the same instant.
    let (whole, fraction) = ta.trim_end_matches('Z').split_once('.').unwrap();
    let padded = format!("{whole}.{fraction:0<6}Z");
    assert!(names(&format!("meta.lastModified eq \"{padded}\"")).contains(&a_only[0]));
    assert!(names(&format!("meta.lastModified le \"{padded}\"")).contains(&a_only[0]));
    assert!(!names(&format!("meta.lastModified ne \"{padded}\"")).contains(&a_only[0]));
    let plus_one = time::OffsetDateTime::parse(&ta, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .to_offset(time::macros::offset!(+01:00))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(names(&format!("meta.created eq \"{plus_one}\"")).contains(&a_only[0]));
    // Between the two: what the instants say, whatever their text says.
    let (ia, ib) = (instant(&ta), instant(&tb));
    let later = |t: i128| if t > ia { Some("b@contoso.com") } else { None };
    let expected: Vec<String> = later(ib).into_iter().map(str::to_string).collect();
    assert_eq!(names(&format!("meta.lastModified gt \"{ta}\"")), expected);
    let expected: Vec<String> = if ia < ib { a_only.clone() } else { Vec::new() };
    assert_eq!(names(&format!("meta.lastModified lt \"{tb}\"")), expected);
}
