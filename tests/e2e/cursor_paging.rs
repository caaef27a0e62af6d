//! RFC 9865 cursor paging of `/Users` and `/Groups`: a walk sees every resource exactly once in
//! a stable order, also while resources are created and deleted during it and under a filter;
//! the last page has no `nextCursor`; `ServiceProviderConfig` advertises it with index paging as
//! the default; and every cursor the server did not make for this tenant and type is 400
//! `invalidCursor`, without data.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use crate::harness::{assert_scim_error, create_user, patch_op, Scim, ScimClient, TenantCtx};

/// Create `n` active users named `{prefix}{i}@contoso.com` over 8 connections; their ids in order of
/// `i`.
fn create_users(client: &ScimClient, prefix: &str, n: usize) -> Vec<String> {
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (client, prefix) = (client.clone(), prefix.to_string());
            std::thread::spawn(move || {
                (t..n)
                    .step_by(8)
                    .map(|i| {
                        let body =
                            json!({"userName": format!("{prefix}{i}@contoso.com"), "active": true});
                        let r = client.try_send("POST", "/Users", Some(&body)).unwrap();
                        assert_eq!(r.status, 201, "{:?}", r.body);
                        (i, r.body["id"].as_str().unwrap().to_string())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<(usize, String)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    all.into_iter().map(|(_, id)| id).collect()
}

/// One page of a cursor walk: asserts the ListResponse shape and returns the page.
fn page(scim: &Scim<'_>, path: &str, query: &str) -> Value {
    let r = scim.get_query(path, query);
    assert_eq!(r.status, 200, "{query}: {:?}", r.body);
    let body = r.body;
    let n = body["Resources"].as_array().unwrap().len();
    assert_eq!(body["itemsPerPage"].as_u64(), Some(n as u64), "{body}");
    assert!(body["totalResults"].as_u64().is_some(), "{body}");
    assert!(
        body.get("startIndex").is_none(),
        "a cursor page has no startIndex"
    );
    body
}

/// Walk `path` by cursor from the first page with `extra` query parameters; each page's ids and
/// the totals the pages reported. `between` runs after every page.
fn walk(
    scim: &Scim<'_>,
    path: &str,
    extra: &str,
    mut between: impl FnMut(usize),
) -> (Vec<Vec<String>>, Vec<u64>) {
    let (mut pages, mut totals) = (Vec::new(), Vec::new());
    let mut cursor = String::new();
    loop {
        let q = format!("cursor={cursor}&count=100{extra}");
        let body = page(scim, path, &q);
        let ids: Vec<String> = body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        pages.push(ids);
        totals.push(body["totalResults"].as_u64().unwrap());
        between(pages.len());
        match body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return (pages, totals),
        }
        assert!(pages.len() < 1000, "the walk does not end");
    }
}

/// `userName` order is `seed{i}`: the walk's order is creation order, which for users created
/// concurrently is the order of their ids (UUIDv7) only roughly — compare with index paging.
fn index_order(scim: &Scim<'_>, total: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < total {
        let r = scim.get_query(
            "/Users",
            &format!("startIndex={}&count=1000", out.len() + 1),
        );
        assert_eq!(r.status, 200);
        let rows = r.body["Resources"].as_array().unwrap();
        assert!(!rows.is_empty());
        out.extend(rows.iter().map(|r| r["id"].as_str().unwrap().to_string()));
    }
    out
}

#[test]
fn a_cursor_walk_of_2503_users_sees_each_once_in_a_stable_order_with_a_filter_and_under_writes() {
    // Thousands of writes from one token: no rate limit in the way.
    let unlimited = "[limits]\nrate_per_token = 1000000\nrate_burst = 1000000\n";
    let ctx = TenantCtx::start_with("acme", unlimited, &[]);
    let scim = ctx.scim();
    let client = ctx.server.scim_client(&ctx.token);
    let created = create_users(&client, "seed", 2503);

    // The whole directory, 100 at a time: 26 pages, the last one of 3 without nextCursor,
    // every id once, in the order index paging (creation order) gives.
    let (pages, totals) = walk(&scim, "/Users", "", |_| {});
    assert_eq!(pages.len(), 26);
    assert!(pages[..25].iter().all(|p| p.len() == 100));
    assert_eq!(pages[25].len(), 3);
    assert!(totals.iter().all(|&t| t == 2503), "{totals:?}");
    let walked: Vec<String> = pages.concat();
    assert_eq!(walked.iter().collect::<HashSet<_>>().len(), 2503);
    assert_eq!(
        walked.iter().collect::<BTreeSet<_>>(),
        created.iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(
        walked,
        index_order(&scim, 2503),
        "the walk's order is stable"
    );
    // The same walk again gives the same pages.
    assert_eq!(walk(&scim, "/Users", "", |_| {}).0, pages);

    // Above maxPageSize: clamped to 1000 (RFC 7644 §3.4.2.4), not refused.
    let big = page(&scim, "/Users", "cursor=&count=5000");
    assert_eq!(big["itemsPerPage"], 1000);
    assert!(big["nextCursor"].as_str().is_some());
    // count=0: no resources, the total, and a cursor to go on from.
    let none = page(&scim, "/Users", "cursor=&count=0");
    assert_eq!(
        (none["itemsPerPage"].as_u64(), none["totalResults"].as_u64()),
        (Some(0), Some(2503))
    );
    let next = none["nextCursor"].as_str().unwrap();
    let first = page(&scim, "/Users", &format!("cursor={next}&count=1"));
    assert_eq!(first["Resources"][0]["id"], json!(walked[0]));

    // With a filter: every 10th user deactivated, the walk of `active eq true` sees the rest.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (client, ids) = (client.clone(), created.clone());
            std::thread::spawn(move || {
                for id in ids.iter().step_by(10).skip(t).step_by(4) {
                    let body = patch_op(json!([{"op": "replace", "value": {"active": false}}]));
                    let r = client
                        .try_send("PATCH", &format!("/Users/{id}"), Some(&body))
                        .unwrap();
                    assert_eq!(r.status, 200, "{:?}", r.body);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let active: BTreeSet<&String> = created
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 0)
        .map(|(_, id)| id)
        .collect();
    let filter = "&filter=active+eq+true";
    let (pages, totals) = walk(&scim, "/Users", filter, |_| {});
    let walked: Vec<String> = pages.concat();
    assert_eq!(walked.len(), active.len(), "no id twice");
    assert_eq!(walked.iter().collect::<BTreeSet<_>>(), active);
    assert!(totals.iter().all(|&t| t as usize == active.len()));
    assert!(pages.last().unwrap().len() <= 100);

    // Users created and deleted while the walk goes on: no id twice, every user that existed
    // for the whole walk exactly once, nothing deleted before its page... and nothing else.
    let doomed: Vec<String> = created.iter().skip(5).step_by(7).cloned().collect();
    let stays: BTreeSet<&String> = created.iter().filter(|id| !doomed.contains(id)).collect();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (client, doomed, done) = (client.clone(), doomed.clone(), done.clone());
        std::thread::spawn(move || {
            let mut born = Vec::new();
            let mut doomed = doomed.into_iter().rev();
            let mut i = 0;
            while !done.load(Ordering::SeqCst) {
                let body = json!({"userName": format!("during{i}@contoso.com")});
                let r = client.try_send("POST", "/Users", Some(&body)).unwrap();
                assert_eq!(r.status, 201, "{:?}", r.body);
                born.push(r.body["id"].as_str().unwrap().to_string());
                if let Some(id) = doomed.next() {
                    let r = client
                        .try_send("DELETE", &format!("/Users/{id}"), None)
                        .unwrap();
                    assert_eq!(r.status, 204, "{:?}", r.body);
                }
                i += 1;
            }
            born
        })
    };
    // Let the writer get going, and slow the walk a little so writes land between pages.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (pages, totals) = walk(&scim, "/Users", "", |_| {
        std::thread::sleep(std::time::Duration::from_millis(20))
    });
    // totalResults is the first page's count, carried by the cursor: later pages do not count.
    assert!(totals.iter().all(|&t| t == totals[0]), "{totals:?}");
    done.store(true, Ordering::SeqCst);
    let born: HashSet<String> = writer.join().unwrap().into_iter().collect();
    assert!(!born.is_empty());
    let walked: Vec<String> = pages.concat();
    let seen: HashSet<&String> = walked.iter().collect();
    assert_eq!(seen.len(), walked.len(), "an id came twice");
    for id in &stays {
        assert!(
            seen.contains(id),
            "{id} existed for the whole walk and was skipped"
        );
    }
    for id in &walked {
        assert!(
            stays.contains(id) || doomed.contains(id) || born.contains(id),
            "{id} is no user of this walk"
        );
    }
}

#[test]
fn service_provider_config_advertises_cursor_and_index_paging_with_index_the_default() {
    let ctx = TenantCtx::start("acme");
    let r = ctx.scim().get("/ServiceProviderConfig");
    assert_eq!(r.status, 200);
    let p = &r.body["pagination"];
    assert_eq!(p["cursor"], true);
    assert_eq!(p["index"], true);
    assert_eq!(p["defaultPaginationMethod"], "index");
    assert_eq!(p["defaultPageSize"], 100);
    assert_eq!(p["maxPageSize"], 1000);
    assert!(p["cursorTimeout"].as_u64().is_some_and(|t| t > 0));
    // Index paging answers as before: startIndex, no cursor.
    create_user(&ctx.scim(), "a@contoso.com");
    let r = ctx.scim().get_query("/Users", "startIndex=1&count=10");
    assert_eq!(
        (r.body["startIndex"].as_u64(), r.body.get("nextCursor")),
        (Some(1), None)
    );
}

#[test]
fn groups_and_search_page_by_cursor_too() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let mut groups = Vec::new();
    for i in 0..5 {
        let r = scim.post("/Groups", &json!({"displayName": format!("G{i}")}));
        assert_eq!(r.status, 201);
        groups.push(r.body["id"].as_str().unwrap().to_string());
    }
    create_user(&scim, "u@contoso.com");
    let first = page(&scim, "/Groups", "cursor=&count=3");
    let next = first["nextCursor"].as_str().unwrap();
    let second = page(&scim, "/Groups", &format!("cursor={next}&count=3"));
    assert!(second.get("nextCursor").is_none());
    let ids: Vec<Value> = [&first, &second]
        .iter()
        .flat_map(|p| {
            p["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].clone())
        })
        .collect();
    assert_eq!(ids, groups.iter().map(|g| json!(g)).collect::<Vec<_>>());

    // POST /Groups/.search with a cursor in the SearchRequest.
    let search = |cursor: &str| {
        scim.post(
            "/Groups/.search",
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "cursor": cursor, "count": 4}),
        )
    };
    let r = search("");
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["itemsPerPage"], 4);
    let r = search(r.body["nextCursor"].as_str().unwrap());
    assert_eq!(
        (r.body["itemsPerPage"].as_u64(), r.body.get("nextCursor")),
        (Some(1), None)
    );
    // The root search pages over two types: no cursor there.
    let r = scim.post(
        "/.search",
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "cursor": ""}),
    );
    assert_scim_error(&r, 400, Some("invalidValue"));
}

#[test]
fn cursor_attacks_malformed_forged_huge_other_tenant_other_type_no_token_and_mixed_paging() {
    let ctx = TenantCtx::start("acme");
    let server = &ctx.server;
    let scim = ctx.scim();
    for i in 0..3 {
        create_user(&scim, &format!("secret{i}@acme.com"));
    }
    let other_token = server.tenant_token("other");
    let other = server.as_tenant(&other_token);
    create_user(&other, "mine@other.com");
    let cursor = page(&scim, "/Users", "cursor=&count=1")["nextCursor"]
        .as_str()
        .unwrap()
        .to_string();

    // Another tenant's cursor: invalid, and not a row of either tenant in the answer.
    let r = other.get_query("/Users", &format!("cursor={cursor}&count=10"));
    assert_scim_error(&r, 400, Some("invalidCursor"));
    assert!(!r.body.to_string().contains("acme.com") && r.body.get("Resources").is_none());
    // A /Users cursor sent to /Groups.
    let r = scim.get_query("/Groups", &format!("cursor={cursor}"));
    assert_scim_error(&r, 400, Some("invalidCursor"));
    // Malformed, forged (one byte changed), the feed's plain cursor text, huge.
    let mut bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&cursor)
        .unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    // Huge, within what a URL may carry (an HTTP client refuses 64 KiB and more).
    let huge = "A".repeat(60_000);
    for bad in [
        "%25%00",
        "not-a-cursor",
        "0123456789abcdef-1",
        &forged,
        &huge,
    ] {
        let r = scim.get_query("/Users", &format!("cursor={bad}"));
        assert_scim_error(&r, 400, Some("invalidCursor"));
    }
    // cursor with startIndex, or with sortBy: invalidValue, whichever comes first.
    for q in [
        "cursor=&startIndex=1".to_string(),
        format!("startIndex=2&cursor={cursor}"),
        "cursor=&sortBy=userName".to_string(),
    ] {
        assert_scim_error(&scim.get_query("/Users", &q), 400, Some("invalidValue"));
    }
    // No token, a wrong token: 401 before any cursor is looked at.
    let anonymous = server
        .client()
        .get(server.url("/Users?cursor="))
        .send()
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let wrong = server.as_tenant("not.a.token");
    assert_eq!(
        wrong
            .get_query("/Users", &format!("cursor={cursor}"))
            .status,
        401
    );
    assert_eq!(wrong.get_query("/Users", "cursor=garbage").status, 401);
    // The valid cursor still works for its own tenant.
    let r = page(&scim, "/Users", &format!("cursor={cursor}&count=10"));
    assert_eq!(r["itemsPerPage"], 2);
}

#[test]
fn a_cursor_from_before_a_restore_is_400_expired_cursor() {
    let TenantCtx { mut server, token } = TenantCtx::start("acme");
    for i in 0..3 {
        create_user(&server.as_tenant(&token), &format!("u{i}@contoso.com"));
    }
    let file = server.dir.path().join("b.db");
    assert!(server.cli(&["backup", file.to_str().unwrap()]).0);
    let cursor = page(&server.as_tenant(&token), "/Users", "cursor=&count=1")["nextCursor"]
        .as_str()
        .unwrap()
        .to_string();
    server.stop();
    let (ok, _, err) = server.cli(&["restore", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    server.spawn();
    let scim = server.as_tenant(&token);
    let r = scim.get_query("/Users", &format!("cursor={cursor}"));
    assert_scim_error(&r, 400, Some("expiredCursor"));
    // A new walk works.
    assert_eq!(page(&scim, "/Users", "cursor=")["itemsPerPage"], 3);
}
