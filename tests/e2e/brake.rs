//! The deletion brake (docs/brake.md) against the real binary: Entra's writes all succeed, the
//! change feed holds the removals beyond the threshold, a reactivation cancels a held
//! deactivation, `brake release` delivers the rest in order (also to a consumer already
//! long-polling) and `brake discard` delivers none; the reference consumer's mirror then equals
//! the SCIM state. Tenants are held apart; the CLI refuses what it does not know.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::feed::{
    assert_mirror_equals_scim, consume_until_idle, consumer, feed_token, mirror_from_file,
    seed_directory, traffic, Feed,
};
use crate::harness::{patch_op, user_body, Scim, TenantCtx};

/// An Entra-shaped user (`active: true`); returns its id.
fn create_user(scim: &Scim<'_>, user_name: &str) -> String {
    let r = scim.post("/Users", &user_body(user_name));
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

/// A brake at `max` removals an hour, whatever the tenant's size.
fn brake_config(max: u32) -> String {
    format!("[brake]\nmax_removals = {max}\nmax_fraction = 0.0\nwindow_minutes = 60\n")
}

/// Entra's deactivation: `Replace active "False"` (a string, as Entra sends it).
fn set_active(ctx: &TenantCtx, id: &str, active: bool) -> u16 {
    let value = if active { "True" } else { "False" };
    ctx.scim()
        .patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "Replace", "path": "active", "value": value}])),
        )
        .status
}

fn brake_status(ctx: &TenantCtx, tenant: &str) -> Value {
    let (ok, out, err) = ctx
        .server
        .cli(&["brake", "status", "--tenant", tenant, "--json"]);
    assert!(ok, "brake status: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tenants"].as_array().map(Vec::len), Some(1), "{v}");
    v["tenants"][0].clone()
}

/// Every change after `after`: (id, op, revision), and the last cursor.
fn changes_after(feed: &Feed, after: &str) -> (Vec<(String, String, i64)>, String) {
    let body = feed.changes(after, 1000);
    let list = body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["op"].as_str().unwrap().to_string(),
                c["revision"].as_i64().unwrap(),
            )
        })
        .collect();
    (list, body["nextAfter"].as_str().unwrap().to_string())
}

/// The whole snapshot, by id.
fn snapshot(feed: &Feed) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = feed.get(&format!("/snapshot?count=5&cursor={cursor}"));
        assert_eq!(r.status, 200, "{:?}", r.body);
        out.extend(r.body["resources"].as_array().unwrap().iter().cloned());
        match r.body["nextCursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => return out,
        }
    }
}

fn find<'a>(snap: &'a [Value], id: &str) -> Option<&'a Value> {
    snap.iter().find(|r| r["id"] == id)
}

fn member_set(resource: &Value) -> BTreeSet<String> {
    resource["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect()
}

fn metric(ctx: &TenantCtx, tenant: &str) -> Option<f64> {
    let text = reqwest::blocking::get(ctx.server.admin_url("/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let label = format!("tenant=\"{tenant}\"");
    text.lines()
        .filter(|l| l.starts_with("grouptalk_scim_brake_held_changes") && l.contains(&label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn ten_entra_deactivations_past_a_threshold_of_five_hold_five_a_reactivation_cancels_one_and_release_delivers_the_rest_in_order(
) {
    let ctx = TenantCtx::start_with("acme", &brake_config(5), &[]);
    let feed_tok = feed_token(&ctx.server, "acme");
    let feed = Feed::new(&ctx.server, &feed_tok);
    let mirror_db = ctx.server.dir.path().join("mirror.db");
    let users: Vec<String> = (0..10)
        .map(|i| create_user(&ctx.scim(), &format!("user{i}@contoso.com")))
        .collect();
    let group = ctx.scim().post(
        "/Groups",
        &json!({"displayName": "Drivers", "members": [{"value": users[9]}, {"value": users[0]}]}),
    );
    assert_eq!(group.status, 201);
    consume_until_idle(&ctx.server, &feed_tok, &mirror_db);
    let (_, mark) = changes_after(&feed, "0");

    // Ten deactivations: every one succeeds for Entra.
    for id in &users {
        assert_eq!(set_active(&ctx, id, false), 200);
    }
    let (seen, _) = changes_after(&feed, &mark);
    let deactivated: Vec<&String> = seen
        .iter()
        .filter(|c| c.1 == "deactivate")
        .map(|c| &c.0)
        .collect();
    assert_eq!(
        deactivated,
        users[..5].iter().collect::<Vec<_>>(),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 5, "nothing else: {seen:?}");
    let s = brake_status(&ctx, "acme");
    assert_eq!(
        (s["tenant"].as_str(), s["held"].as_i64()),
        (Some("acme"), Some(5))
    );
    assert_eq!(s["threshold"], 5);
    assert!(s["since"].is_string(), "{s}");
    assert_eq!(metric(&ctx, "acme"), Some(5.0));
    let (ok, stats, _) = ctx.server.cli(&["stats", "--tenant", "acme"]);
    assert!(ok && stats.contains("HOLDING 5 change(s)"), "{stats}");
    // SCIM says what Entra wrote; the feed's snapshot shows the held users as delivered.
    let scim_user = ctx.scim().get(&format!("/Users/{}", users[7]));
    assert_eq!(scim_user.body["active"], false);
    let snap = snapshot(&feed);
    assert_eq!(find(&snap, &users[7]).unwrap()["active"], true);
    assert_eq!(find(&snap, &users[2]).unwrap()["active"], false);
    // The provisioning log says which writes were held.
    let (ok, log, _) = ctx.server.cli(&["log", "--json"]);
    assert!(ok);
    let noted = log.lines().filter(|l| l.contains("deletion brake")).count();
    assert_eq!(noted, 5, "{log}");
    let warned = ctx
        .server
        .log_lines()
        .iter()
        .filter(|l| l.contains("deletion brake engaged"))
        .count();
    assert_eq!(warned, 1, "one WARN per episode");

    // Entra re-enables one held user: its deactivation is cancelled, never delivered.
    assert_eq!(set_active(&ctx, &users[6], true), 200);
    assert_eq!(brake_status(&ctx, "acme")["held"], 4);
    let (seen, before_release) = changes_after(&feed, &mark);
    let of_six: Vec<(String, i64)> = seen
        .iter()
        .filter(|c| c.0 == users[6])
        .map(|c| (c.1.clone(), c.2))
        .collect();
    assert_eq!(of_six, vec![("update".to_string(), 3)], "no flap: {seen:?}");
    consume_until_idle(&ctx.server, &feed_tok, &mirror_db);
    let mirror = mirror_from_file(&mirror_db);
    assert_eq!(
        mirror.held[&users[8]].1["active"], true,
        "held: still active"
    );
    assert_eq!(mirror.held[&users[1]].1["active"], false);

    // A consumer long-polls; `brake release` (another process) wakes it within its wait.
    let poller = {
        let feed = feed.clone();
        let after = before_release.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let r = feed.get(&format!("/changes?after={after}&wait=20"));
            (start.elapsed(), r)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let (ok, out, err) = ctx.server.cli(&["brake", "release", "--tenant", "acme"]);
    assert!(ok, "{err}");
    assert!(out.contains("released 4"), "{out}");
    let (waited, r) = poller.join().unwrap();
    assert_eq!(r.status, 200);
    assert!(waited < Duration::from_secs(3), "woke after {waited:?}");
    let released: Vec<(String, String)> = r.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["op"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [5, 7, 8, 9]
        .iter()
        .map(|&i| (users[i].clone(), "deactivate".to_string()))
        .collect();
    assert_eq!(released, want, "in their original order");
    assert_eq!(brake_status(&ctx, "acme")["held"], 0);
    assert_eq!(metric(&ctx, "acme"), Some(0.0));
    consume_until_idle(&ctx.server, &feed_tok, &mirror_db);
    assert_mirror_equals_scim(&mirror_from_file(&mirror_db), &ctx);
}

#[test]
fn discard_delivers_none_of_the_held_changes_and_the_consumer_never_sees_them() {
    let ctx = TenantCtx::start_with("acme", &brake_config(5), &[]);
    let feed_tok = feed_token(&ctx.server, "acme");
    let feed = Feed::new(&ctx.server, &feed_tok);
    let mirror_db = ctx.server.dir.path().join("mirror.db");
    let users: Vec<String> = (0..10)
        .map(|i| create_user(&ctx.scim(), &format!("user{i}@contoso.com")))
        .collect();
    consume_until_idle(&ctx.server, &feed_tok, &mirror_db);
    let (_, mark) = changes_after(&feed, "0");
    for id in &users {
        assert_eq!(set_active(&ctx, id, false), 200);
    }
    consume_until_idle(&ctx.server, &feed_tok, &mirror_db);
    assert_eq!(brake_status(&ctx, "acme")["held"], 5);
    let (ok, out, err) = ctx.server.cli(&["brake", "discard", "--all"]);
    assert!(ok, "{err}");
    assert!(out.contains("discarded 5"), "{out}");
    assert_eq!(brake_status(&ctx, "acme")["held"], 0);
    consume_until_idle(&ctx.server, &feed_tok, &mirror_db);
    let (seen, _) = changes_after(&feed, &mark);
    assert_eq!(seen.len(), 5, "only the first five deactivations: {seen:?}");
    let mirror = mirror_from_file(&mirror_db);
    for (i, id) in users.iter().enumerate() {
        let (revision, body, _) = &mirror.held[id];
        // The consumer keeps what it was delivered; SCIM keeps what Entra wrote.
        assert_eq!(body["active"], i >= 5, "user{i}");
        assert_eq!(*revision, if i < 5 { 2 } else { 1 }, "user{i}");
        assert_eq!(
            ctx.scim().get(&format!("/Users/{id}")).body["active"],
            false
        );
    }
}

#[test]
fn a_held_user_delete_keeps_the_user_and_its_memberships_in_snapshots_until_release_and_no_later_change_leaks_it(
) {
    let ctx = TenantCtx::start_with("acme", &brake_config(1), &[]);
    let feed_tok = feed_token(&ctx.server, "acme");
    let feed = Feed::new(&ctx.server, &feed_tok);
    let mirror_db = ctx.server.dir.path().join("mirror.db");
    let scim = ctx.scim();
    let a = create_user(&scim, "a@contoso.com");
    let b = create_user(&scim, "b@contoso.com");
    let c = create_user(&scim, "c@contoso.com");
    let mk = |name: &str, members: &[&String]| {
        let members: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
        let r = scim.post("/Groups", &json!({"displayName": name, "members": members}));
        assert_eq!(r.status, 201);
        r.body["id"].as_str().unwrap().to_string()
    };
    let g = mk("Dispatch", &[&b, &c]);
    let h = mk("Night shift", &[&c]);
    consume_until_idle(&ctx.server, &feed_tok, &mirror_db);
    let (_, mark) = changes_after(&feed, "0");

    // The first removal is within the threshold; the second, c's delete, is held.
    assert_eq!(scim.delete(&format!("/Users/{a}")).status, 204);
    assert_eq!(scim.delete(&format!("/Users/{c}")).status, 204);
    assert_eq!(
        scim.get(&format!("/Users/{c}")).status,
        404,
        "Entra sees it gone"
    );
    let scim_g = scim.get(&format!("/Groups/{g}"));
    assert_eq!(member_set(&scim_g.body), BTreeSet::from([b.clone()]));
    assert_eq!(
        brake_status(&ctx, "acme")["held"],
        3,
        "the delete and two group updates"
    );

    let (seen, _) = changes_after(&feed, &mark);
    assert_eq!(seen, vec![(a.clone(), "delete".to_string(), 2)], "{seen:?}");
    let snap = snapshot(&feed);
    assert_eq!(find(&snap, &c).unwrap()["userName"], "c@contoso.com");
    assert_eq!(
        member_set(find(&snap, &g).unwrap()),
        BTreeSet::from([b.clone(), c.clone()])
    );
    assert_eq!(
        member_set(find(&snap, &h).unwrap()),
        BTreeSet::from([c.clone()])
    );
    // A later change of a group that lost c is held too: nothing delivered lists c removed.
    let d = create_user(&scim, "d@contoso.com");
    let r = scim.patch(
        &format!("/Groups/{g}"),
        &patch_op(json!([{"op": "add", "path": "members", "value": [{"value": d}]}])),
    );
    assert!(matches!(r.status, 200 | 204), "{:?}", r.body);
    let body = feed.changes(&mark, 1000);
    for change in body["changes"].as_array().unwrap() {
        let removed = &change["members"]["removed"];
        assert!(
            !removed
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m == &json!(c)),
            "leaked: {change}"
        );
        assert_ne!(change["id"], json!(g), "the group is held: {change}");
    }
    consume_until_idle(&ctx.server, &feed_tok, &mirror_db);
    let mirror = mirror_from_file(&mirror_db);
    assert!(mirror.held.contains_key(&c), "c stays until release");
    assert!(mirror.held[&g].2.contains(&c));

    let (ok, _, err) = ctx.server.cli(&["brake", "release", "--all"]);
    assert!(ok, "{err}");
    consume_until_idle(&ctx.server, &feed_tok, &mirror_db);
    assert_mirror_equals_scim(&mirror_from_file(&mirror_db), &ctx);
    let snap = snapshot(&feed);
    assert!(find(&snap, &c).is_none());
    assert_eq!(
        member_set(find(&snap, &g).unwrap()),
        BTreeSet::from([b.clone(), d.clone()])
    );
}

#[test]
fn a_flood_of_removals_from_one_tenant_does_not_hold_another_tenants_changes() {
    let ctx = TenantCtx::start_with("acme", &brake_config(2), &[]);
    let other_token = ctx.server.tenant_token("globex");
    let other = ctx.server.as_tenant(&other_token);
    let feed_acme = Feed::new(&ctx.server, &feed_token(&ctx.server, "acme"));
    let feed_globex = Feed::new(&ctx.server, &feed_token(&ctx.server, "globex"));
    let mine: Vec<String> = (0..6)
        .map(|i| create_user(&ctx.scim(), &format!("a{i}@contoso.com")))
        .collect();
    let theirs: Vec<String> = (0..2)
        .map(|i| create_user(&other, &format!("g{i}@globex.com")))
        .collect();
    for id in &mine {
        assert_eq!(set_active(&ctx, id, false), 200);
    }
    // acme holds; globex's removals (within its own count) and writes all flow.
    for id in &theirs {
        let r = other.patch(
            &format!("/Users/{id}"),
            &patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}])),
        );
        assert_eq!(r.status, 200);
    }
    let late = create_user(&other, "late@globex.com");
    assert_eq!(brake_status(&ctx, "acme")["held"], 4);
    assert_eq!(brake_status(&ctx, "globex")["held"], 0);
    let (seen, _) = changes_after(&feed_globex, "0");
    let deactivated = seen.iter().filter(|c| c.1 == "deactivate").count();
    assert_eq!(deactivated, 2);
    assert!(seen.iter().any(|c| c.0 == late && c.1 == "create"));
    // Nothing of acme's in globex's feed, nor the other way round.
    assert!(seen.iter().all(|c| !mine.contains(&c.0)));
    let (acme_seen, _) = changes_after(&feed_acme, "0");
    assert!(acme_seen
        .iter()
        .all(|c| !theirs.contains(&c.0) && c.0 != late));
    // Releasing acme's leaves globex as it is.
    let (ok, _, err) = ctx.server.cli(&["brake", "release", "--tenant", "acme"]);
    assert!(ok, "{err}");
    let (again, _) = changes_after(&feed_globex, "0");
    assert_eq!(again, seen);
}

#[test]
fn brake_cli_refuses_an_unknown_tenant_and_needs_a_tenant_or_all() {
    let ctx = TenantCtx::start_with("acme", &brake_config(5), &[]);
    for args in [
        &["brake", "status", "--tenant", "nope"][..],
        &["brake", "release", "--tenant", "nope"][..],
        &["brake", "discard", "--tenant", "nope"][..],
    ] {
        let (ok, _, err) = ctx.server.cli(args);
        assert!(!ok, "{args:?}");
        assert!(err.contains("no tenant named \"nope\""), "{args:?}: {err}");
    }
    for args in [
        &["brake", "release"][..],
        &["brake", "discard"][..],
        &["brake", "release", "--tenant", "acme", "--all"][..],
    ] {
        let (ok, _, _) = ctx.server.cli(args);
        assert!(!ok, "{args:?} must be refused");
    }
    // The contract's shape: one JSON object, every tenant when none is named.
    let (ok, out, _) = ctx.server.cli(&["brake", "status", "--json"]);
    assert!(ok);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v,
        json!({"tenants": [{"tenant": "acme", "held": 0, "since": null, "threshold": 5}]})
    );
    // check-config refuses a fraction outside [0, 1] and an empty window.
    let base = std::fs::read_to_string(ctx.server.dir.path().join("config.toml")).unwrap();
    for (good, bad) in [
        ("max_fraction = 0.0", "max_fraction = 1.5"),
        ("max_fraction = 0.0", "max_fraction = -0.1"),
        ("window_minutes = 60", "window_minutes = 0"),
    ] {
        let path = ctx.server.dir.path().join("bad.toml");
        std::fs::write(&path, base.replace(good, bad)).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_grouptalk-scim"))
            .args(["--config", path.to_str().unwrap(), "check-config"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("brake.max_fraction"), "{bad}: {err}");
    }
}

#[test]
fn under_concurrent_entra_traffic_a_following_consumer_and_a_fresh_snapshot_agree_on_the_delivered_view_and_equal_scim_after_release(
) {
    let ctx = TenantCtx::start_with("acme", &brake_config(3), &[]);
    let feed_tok = feed_token(&ctx.server, "acme");
    let (users, groups) = seed_directory(&ctx);
    let follower_db = ctx.server.dir.path().join("follower.db");
    let fresh_db = ctx.server.dir.path().join("fresh.db");
    let mut follower = consumer(&ctx.server, &feed_tok, &follower_db, true);
    for w in traffic(&ctx, &users, &groups, 0xb4a3e, 60) {
        w.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    follower.kill().unwrap();
    follower.wait().unwrap();
    let held = brake_status(&ctx, "acme")["held"].as_i64().unwrap();
    assert!(
        held > 0,
        "the traffic removes more than 3: something is held"
    );
    // Both consumers see the same delivered view: one followed the writes, one starts now.
    consume_until_idle(&ctx.server, &feed_tok, &follower_db);
    consume_until_idle(&ctx.server, &feed_tok, &fresh_db);
    let (a, b) = (mirror_from_file(&follower_db), mirror_from_file(&fresh_db));
    let view = |m: &crate::feed::Mirror| {
        let mut v: Vec<(String, Value, BTreeSet<String>)> = m
            .held
            .iter()
            .map(|(id, (_, body, members))| (id.clone(), body.clone(), members.clone()))
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    let (va, vb) = (view(&a), view(&b));
    type View = Vec<(String, Value, BTreeSet<String>)>;
    let only =
        |x: &View, y: &View| -> View { x.iter().filter(|e| !y.contains(e)).cloned().collect() };
    assert!(
        va == vb,
        "the follower and a fresh snapshot differ:\nfollower only {:?}\nfresh only {:?}",
        only(&va, &vb),
        only(&vb, &va)
    );
    let (ok, _, err) = ctx.server.cli(&["brake", "release", "--tenant", "acme"]);
    assert!(ok, "{err}");
    consume_until_idle(&ctx.server, &feed_tok, &follower_db);
    consume_until_idle(&ctx.server, &feed_tok, &fresh_db);
    assert_mirror_equals_scim(&mirror_from_file(&follower_db), &ctx);
    assert_mirror_equals_scim(&mirror_from_file(&fresh_db), &ctx);
}
