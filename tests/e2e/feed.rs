//! The change feed (`/feed/v1/`): a snapshot plus the changes after its watermark, replayed by
//! revision, reproduce what the SCIM API returns — under concurrent Entra-shaped writes and
//! re-read pages; long-poll wakes on a write and holds no read slot; cursors from before a
//! restore or older than the retained log get 410; credentials without `feed.read` get 403.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::harness::{
    assert_scim_error, create_user, patch_op, reply, user_body, Reply, Server, TenantCtx,
};

/// Ids of live users or groups, shared by the traffic threads.
type Ids = Arc<Mutex<Vec<String>>>;

/// Issue a long-lived token with scope `feed.read` for `tenant` through the CLI.
pub fn feed_token(server: &Server, tenant: &str) -> String {
    let (ok, out, err) =
        server.cli(&["token", "issue", "--tenant", tenant, "--scope", "feed.read"]);
    assert!(ok, "token issue --scope feed.read: {err}");
    out.lines().last().unwrap().trim().to_string()
}

/// A feed reader over HTTPS: owned (usable from threads), bound to one token.
#[derive(Clone)]
pub struct Feed {
    client: Client,
    base: String,
    token: String,
}

impl Feed {
    pub fn new(server: &Server, token: &str) -> Feed {
        Feed {
            client: server.client().clone(),
            base: server.public_url("/feed/v1"),
            token: token.to_string(),
        }
    }

    pub fn get(&self, path_and_query: &str) -> Reply {
        reply(
            self.client
                .get(format!("{}{path_and_query}", self.base))
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(90))
                .send()
                .unwrap(),
        )
    }

    pub fn put_position(&self, after: &str) -> Reply {
        reply(
            self.client
                .put(format!("{}/position", self.base))
                .bearer_auth(&self.token)
                .header("content-type", "application/json")
                .body(json!({ "after": after }).to_string())
                .send()
                .unwrap(),
        )
    }

    fn changes(&self, after: &str, limit: usize) -> Value {
        let r = self.get(&format!("/changes?after={after}&limit={limit}"));
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body
    }
}

/// A consumer's mirror, applied as docs/feed.md says: by revision, remembering deleted ids.
#[derive(Default, Debug)]
pub(crate) struct Mirror {
    /// id → (revision, resource without members, member ids).
    held: HashMap<String, (i64, Value, BTreeSet<String>)>,
    deleted: HashSet<String>,
}

fn member_ids(resource: &Value) -> BTreeSet<String> {
    resource["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect()
}

/// The resource as the mirror compares it: without members (held apart), a user's derived
/// `groups`, the feed's `meta.revision` and `meta.location`.
fn comparable(resource: &Value) -> Value {
    let mut v = resource.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("members");
        o.remove("groups");
        if let Some(meta) = o.get_mut("meta").and_then(Value::as_object_mut) {
            meta.remove("revision");
            // Made from the request's Host: a restarted server listens on another port.
            meta.remove("location");
        }
    }
    v
}

impl Mirror {
    fn apply_snapshot(&mut self, resource: &Value) {
        let id = resource["id"].as_str().unwrap().to_string();
        let revision = resource["meta"]["revision"].as_i64().unwrap();
        if self.deleted.contains(&id) {
            return;
        }
        if self.held.get(&id).is_some_and(|(r, _, _)| *r >= revision) {
            return;
        }
        self.held
            .insert(id, (revision, comparable(resource), member_ids(resource)));
    }

    fn apply_change(&mut self, c: &Value) {
        let id = c["id"].as_str().unwrap().to_string();
        let revision = c["revision"].as_i64().unwrap();
        if self.deleted.contains(&id) {
            return;
        }
        if self.held.get(&id).is_some_and(|(r, _, _)| *r >= revision) {
            return;
        }
        if c["op"] == "delete" {
            assert!(c["resource"].is_null(), "{c}");
            self.held.remove(&id);
            self.deleted.insert(id);
            return;
        }
        let entry = self
            .held
            .entry(id)
            .or_insert_with(|| (0, Value::Null, BTreeSet::new()));
        entry.0 = revision;
        if !c["resource"].is_null() {
            assert!(
                c["resource"].get("members").is_none(),
                "a group's resource never carries members in a change: {c}"
            );
            entry.1 = comparable(&c["resource"]);
        }
        for added in c["members"]["added"].as_array().into_iter().flatten() {
            entry.2.insert(added.as_str().unwrap().to_string());
        }
        for removed in c["members"]["removed"].as_array().into_iter().flatten() {
            entry.2.remove(removed.as_str().unwrap());
        }
    }
}

/// Take a whole snapshot with pages of `count`, reading every page after the first twice
/// (at-least-once: reading a page again must do no harm). Returns the watermark.
fn snapshot_into(feed: &Feed, mirror: &mut Mirror, count: usize) -> String {
    let first = feed.get(&format!("/snapshot?count={count}"));
    assert_eq!(first.status, 200, "{:?}", first.body);
    let watermark = first.body["watermark"].as_str().unwrap().to_string();
    for res in first.body["resources"].as_array().unwrap() {
        mirror.apply_snapshot(res);
    }
    let mut next = first.body["nextCursor"].as_str().map(str::to_string);
    while let Some(cursor) = next {
        let q = format!("/snapshot?count={count}&cursor={cursor}");
        let mut last = Value::Null;
        for _ in 0..2 {
            let r = feed.get(&q);
            assert_eq!(r.status, 200, "{:?}", r.body);
            assert_eq!(
                r.body["watermark"].as_str(),
                Some(watermark.as_str()),
                "the watermark is the same on every page"
            );
            for res in r.body["resources"].as_array().unwrap() {
                mirror.apply_snapshot(res);
            }
            last = r.body;
        }
        next = last["nextCursor"].as_str().map(str::to_string);
    }
    watermark
}

/// Follow the changes from `after` until a page is empty; every page is read twice.
fn follow(feed: &Feed, mirror: &mut Mirror, mut after: String, limit: usize) -> String {
    loop {
        let page = feed.changes(&after, limit);
        let again = feed.changes(&after, limit);
        let seqs = |p: &Value| -> Vec<Value> {
            p["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["seq"].clone())
                .collect()
        };
        // A page that was not full may have grown meanwhile; what it had, it has again.
        let (first, second) = (seqs(&page), seqs(&again));
        assert_eq!(
            first[..],
            second[..first.len().min(second.len())],
            "a re-read page"
        );
        let changes = page["changes"].as_array().unwrap();
        for c in changes {
            mirror.apply_change(c);
        }
        for c in changes {
            mirror.apply_change(c);
        }
        let next = page["nextAfter"].as_str().unwrap().to_string();
        if changes.is_empty() {
            assert_eq!(next, after, "an empty page keeps the cursor");
            assert_eq!(page["moreAvailable"], false);
            return next;
        }
        after = next;
    }
}

/// Every resource of the tenant as SCIM returns it: (comparable resource, member ids).
fn scim_state(ctx: &TenantCtx) -> HashMap<String, (Value, BTreeSet<String>)> {
    let scim = ctx.scim();
    let mut out = HashMap::new();
    for endpoint in ["/Users", "/Groups"] {
        let mut start = 1;
        loop {
            let r = scim.get(&format!(
                "{endpoint}?startIndex={start}&count=100&excludedAttributes=members"
            ));
            assert_eq!(r.status, 200, "{:?}", r.body);
            let page = r.body["Resources"].as_array().cloned().unwrap_or_default();
            for res in &page {
                let id = res["id"].as_str().unwrap().to_string();
                let full = if endpoint == "/Groups" {
                    let g = scim.get(&format!("/Groups/{id}"));
                    assert_eq!(g.status, 200);
                    g.body
                } else {
                    res.clone()
                };
                out.insert(id, (comparable(&full), member_ids(&full)));
            }
            if page.len() < 100 {
                break;
            }
            start += 100;
        }
    }
    out
}

pub(crate) fn assert_mirror_equals_scim(mirror: &Mirror, ctx: &TenantCtx) {
    let truth = scim_state(ctx);
    let held: HashMap<&String, (&Value, &BTreeSet<String>)> =
        mirror.held.iter().map(|(k, v)| (k, (&v.1, &v.2))).collect();
    let mut missing: Vec<&String> = truth.keys().filter(|k| !held.contains_key(k)).collect();
    let mut extra: Vec<&&String> = held.keys().filter(|k| !truth.contains_key(**k)).collect();
    missing.sort();
    extra.sort();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "mirror differs: missing {missing:?}, left behind {extra:?}"
    );
    for (id, (resource, members)) in &truth {
        let (m_resource, m_members) = held[id];
        assert_eq!(m_resource, resource, "resource {id}");
        assert_eq!(m_members, members, "members of {id}");
    }
}

/// A small deterministic generator (xorshift), seeded per thread.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn pick(list: &Mutex<Vec<String>>, rng: &mut Rng) -> Option<String> {
    let l = list.lock().unwrap();
    (!l.is_empty()).then(|| l[rng.below(l.len())].clone())
}

/// Entra-shaped traffic from one thread: creates, attribute PATCHes, deactivations and
/// reactivations, member adds and removes (both of Entra's remove forms), deletes of users who
/// are members, new groups with members.
fn entra_traffic(
    client: crate::harness::ScimClient,
    users: Ids,
    groups: Ids,
    seed: u64,
    ops: usize,
) {
    let mut rng = Rng(seed);
    let ok = |r: Result<Reply, String>| -> Option<Reply> {
        let r = r.expect("the server answers");
        assert!(r.status < 500, "{} {:?}", r.status, r.body);
        (r.status < 300).then_some(r)
    };
    for i in 0..ops {
        match rng.below(10) {
            0 | 1 => {
                let body = user_body(&format!("t{seed}-{i}@contoso.com"));
                if let Some(r) = ok(client.try_send("POST", "/Users", Some(&body))) {
                    users
                        .lock()
                        .unwrap()
                        .push(r.body["id"].as_str().unwrap().into());
                }
            }
            2 => {
                if let Some(u) = pick(&users, &mut rng) {
                    let body = patch_op(json!([
                        {"op": "Replace", "path": "displayName", "value": format!("Name {i}")},
                        {"op": "replace", "value": {"title": format!("Title {seed}-{i}")}}
                    ]));
                    ok(client.try_send("PATCH", &format!("/Users/{u}"), Some(&body)));
                }
            }
            3 => {
                if let Some(u) = pick(&users, &mut rng) {
                    let value = if rng.below(2) == 0 { "False" } else { "True" };
                    let body =
                        patch_op(json!([{"op": "Replace", "path": "active", "value": value}]));
                    ok(client.try_send("PATCH", &format!("/Users/{u}"), Some(&body)));
                }
            }
            4 | 5 => {
                if let (Some(g), Some(u)) = (pick(&groups, &mut rng), pick(&users, &mut rng)) {
                    let body = patch_op(
                        json!([{"op": "Add", "path": "members", "value": [{"value": u}]}]),
                    );
                    ok(client.try_send("PATCH", &format!("/Groups/{g}"), Some(&body)));
                }
            }
            6 => {
                if let (Some(g), Some(u)) = (pick(&groups, &mut rng), pick(&users, &mut rng)) {
                    let body = if rng.below(2) == 0 {
                        patch_op(
                            json!([{"op": "Remove", "path": "members", "value": [{"value": u}]}]),
                        )
                    } else {
                        patch_op(
                            json!([{"op": "Remove", "path": format!("members[value eq \"{u}\"]")}]),
                        )
                    };
                    ok(client.try_send("PATCH", &format!("/Groups/{g}"), Some(&body)));
                }
            }
            7 => {
                // Delete a user who is (likely) a member of a group.
                let member = pick(&groups, &mut rng).and_then(|g| {
                    let r = client.try_send("GET", &format!("/Groups/{g}"), None).ok()?;
                    let ids = member_ids(&r.body);
                    let ids: Vec<&String> = ids.iter().collect();
                    (!ids.is_empty()).then(|| ids[rng.below(ids.len())].clone())
                });
                if let Some(u) = member.or_else(|| pick(&users, &mut rng)) {
                    if ok(client.try_send("DELETE", &format!("/Users/{u}"), None)).is_some() {
                        users.lock().unwrap().retain(|x| *x != u);
                    }
                }
            }
            8 => {
                let members: Vec<Value> = (0..2)
                    .filter_map(|_| pick(&users, &mut rng))
                    .map(|u| json!({"value": u}))
                    .collect();
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": format!("Group {seed}-{i}"),
                    "externalId": format!("g-{seed}-{i}"),
                    "members": members,
                });
                if let Some(r) = ok(client.try_send("POST", "/Groups", Some(&body))) {
                    groups
                        .lock()
                        .unwrap()
                        .push(r.body["id"].as_str().unwrap().into());
                }
            }
            _ => {
                if let Some(g) = pick(&groups, &mut rng) {
                    let body = patch_op(
                        json!([{"op": "Replace", "path": "displayName", "value": format!("Renamed {seed}-{i}")}]),
                    );
                    ok(client.try_send("PATCH", &format!("/Groups/{g}"), Some(&body)));
                }
            }
        }
    }
}

#[test]
fn snapshot_then_changes_replayed_by_revision_equal_the_scim_state_under_concurrent_entra_writes() {
    let ctx = TenantCtx::start("acme");
    let feed = Feed::new(&ctx.server, &feed_token(&ctx.server, "acme"));
    let (users, groups) = seed_directory(&ctx);
    let writers: Vec<_> = (0..3u64)
        .map(|t| {
            let (client, users, groups) = (
                ctx.server.scim_client(&ctx.token),
                users.clone(),
                groups.clone(),
            );
            std::thread::spawn(move || entra_traffic(client, users, groups, 0x9e37 + t * 7919, 80))
        })
        .collect();
    // While they write: a snapshot in small pages, then the changes after its watermark.
    let mut mirror = Mirror::default();
    let watermark = snapshot_into(&feed, &mut mirror, 3);
    let mut after = follow(&feed, &mut mirror, watermark, 7);
    for w in writers {
        w.join().unwrap();
    }
    after = follow(&feed, &mut mirror, after, 7);
    assert!(
        mirror.deleted.len() + mirror.held.len() > 24,
        "the traffic changed things"
    );
    assert_mirror_equals_scim(&mirror, &ctx);

    // A second consumer that starts from the oldest retained change (no snapshot) and reads
    // everything in one go sees the same directory.
    let mut replay = Mirror::default();
    follow(&feed, &mut replay, "0".into(), 1000);
    assert_mirror_equals_scim(&replay, &ctx);
    // Recording the position is the feed reader's one write.
    let r = feed.put_position(&after);
    assert_eq!(
        (r.status, r.body["after"].as_str()),
        (200, Some(after.as_str()))
    );
}

#[test]
fn changes_name_ops_revisions_and_member_deltas_and_a_deleted_member_leaves_each_group() {
    let ctx = TenantCtx::start("acme");
    let feed = Feed::new(&ctx.server, &feed_token(&ctx.server, "acme"));
    let scim = ctx.scim();
    let start = feed.changes("0", 10)["nextAfter"]
        .as_str()
        .unwrap()
        .to_string();
    let alice = create_user(&scim, "alice@contoso.com");
    let bob = create_user(&scim, "bob@contoso.com");
    let g1 = scim.post(
        "/Groups",
        &json!({"displayName": "G1", "members": [{"value": alice}, {"value": bob}]}),
    );
    let g2 = scim.post(
        "/Groups",
        &json!({"displayName": "G2", "members": [{"value": alice}]}),
    );
    let (g1, g2) = (
        g1.body["id"].as_str().unwrap(),
        g2.body["id"].as_str().unwrap(),
    );
    let off = patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    assert_eq!(scim.patch(&format!("/Users/{bob}"), &off).status, 200);
    assert_eq!(scim.delete(&format!("/Users/{alice}")).status, 204);

    let page = feed.changes(&start, 100);
    let got: Vec<(String, String, i64, Value)> = page["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["op"].as_str().unwrap().to_string(),
                c["revision"].as_i64().unwrap(),
                c.get("members").cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    let mut both = vec![alice.clone(), bob.clone()];
    both.sort();
    assert_eq!(
        got,
        vec![
            (alice.clone(), "create".into(), 1, Value::Null),
            (bob.clone(), "create".into(), 1, Value::Null),
            (
                g1.to_string(),
                "create".into(),
                1,
                json!({"added": both, "removed": []})
            ),
            (
                g2.to_string(),
                "create".into(),
                1,
                json!({"added": [alice], "removed": []})
            ),
            (bob.clone(), "deactivate".into(), 2, Value::Null),
            (
                g1.to_string(),
                "update".into(),
                2,
                json!({"added": [], "removed": [alice]})
            ),
            (
                g2.to_string(),
                "update".into(),
                2,
                json!({"added": [], "removed": [alice]})
            ),
            (alice.clone(), "delete".into(), 2, Value::Null),
        ]
    );
    let changes = page["changes"].as_array().unwrap();
    // The resource as it is now: bob is inactive; the deleted user has none; a group's never
    // carries members; each seq is itself a cursor.
    assert_eq!(changes[1]["resource"]["active"], false);
    assert_eq!(changes[1]["version"], "W/\"1\"");
    assert!(changes[7]["resource"].is_null());
    assert!(changes[2]["resource"].get("members").is_none());
    assert_eq!(changes[2]["resource"]["displayName"], "G1");
    assert!(changes[0]["time"].as_str().unwrap().ends_with('Z'));
    let from_seq = feed.changes(changes[5]["seq"].as_str().unwrap(), 100);
    assert_eq!(from_seq["changes"].as_array().unwrap().len(), 2);
    assert_eq!(page["nextAfter"], changes[7]["seq"]);
}

#[test]
fn long_poll_wakes_on_a_write_and_waits_without_holding_a_read_slot() {
    let ctx = TenantCtx::start("acme");
    let feed = Feed::new(&ctx.server, &feed_token(&ctx.server, "acme"));
    let now = feed.changes("0", 10)["nextAfter"]
        .as_str()
        .unwrap()
        .to_string();

    // More waiting polls than the tenant has read slots (limits.reads_per_tenant = 4).
    let waiting: Vec<_> = (0..8)
        .map(|_| {
            let (feed, now) = (feed.clone(), now.clone());
            std::thread::spawn(move || {
                let r = feed.get(&format!("/changes?after={now}&wait=30"));
                (Instant::now(), r)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // The tenant's reads are not starved by the waiting polls.
    let read_started = Instant::now();
    let r = ctx.scim().get("/Users?filter=userName+sw+%22x%22");
    assert_eq!(r.status, 200);
    assert!(read_started.elapsed() < Duration::from_secs(5));

    let written = Instant::now();
    let id = create_user(&ctx.scim(), "woken@contoso.com");
    let acked = Instant::now();
    for w in waiting {
        let (answered, r) = w.join().unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
        let changes = r.body["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{:?}", r.body);
        assert_eq!(changes[0]["id"], id.as_str());
        assert!(answered >= written);
        assert!(
            answered.duration_since(acked) < Duration::from_secs(3),
            "woken by the commit, not by the wait running out"
        );
    }

    // Nothing written: the wait runs out with an empty page and the same cursor.
    let after = feed.changes("0", 1000)["nextAfter"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Instant::now();
    let r = feed.get(&format!("/changes?after={after}&wait=1"));
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(r.body["changes"], json!([]));
    assert_eq!(r.body["nextAfter"], after.as_str());
    assert_eq!(r.body["moreAvailable"], false);
}

#[test]
fn a_long_poll_longer_than_the_request_timeout_is_not_cut_off() {
    let ctx = TenantCtx::start_with("acme", "[limits]\nrequest_timeout_secs = 1\n", &[]);
    let feed = Feed::new(&ctx.server, &feed_token(&ctx.server, "acme"));
    let after = feed.changes("0", 10)["nextAfter"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Instant::now();
    let r = feed.get(&format!("/changes?after={after}&wait=3"));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(t.elapsed() >= Duration::from_secs(3));
    assert_eq!(r.body["changes"], json!([]));
}

#[test]
fn cursors_from_before_a_restore_or_older_than_retained_get_410_expired_cursor() {
    let TenantCtx { mut server, token } = TenantCtx::start("acme");
    let feed_tok = feed_token(&server, "acme");
    create_user(&server.as_tenant(&token), "a@contoso.com");
    let file = server.dir.path().join("b.db");
    assert!(server.cli(&["backup", file.to_str().unwrap()]).0);
    create_user(&server.as_tenant(&token), "b@contoso.com");
    let feed = Feed::new(&server, &feed_tok);
    let cursor = feed.changes("0", 10)["nextAfter"]
        .as_str()
        .unwrap()
        .to_string();
    let snap = feed.get("/snapshot?count=1");
    let snap_cursor = snap.body["nextCursor"].as_str().unwrap().to_string();
    server.stop();
    let (ok, _, err) = server.cli(&["restore", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    server.spawn();
    let feed = Feed::new(&server, &feed_tok);
    // Same sequence numbers may exist again in the restored history: never a silent gap.
    let r = feed.get(&format!("/changes?after={cursor}"));
    assert_scim_error(&r, 410, Some("expiredCursor"));
    let r = feed.get(&format!("/snapshot?cursor={snap_cursor}"));
    assert_scim_error(&r, 410, Some("expiredCursor"));
    assert_scim_error(&feed.put_position(&cursor), 410, Some("expiredCursor"));
    // A new snapshot works, and its watermark is a valid `after`.
    let snap = feed.get("/snapshot");
    assert_eq!(snap.status, 200);
    assert_eq!(snap.body["resources"].as_array().unwrap().len(), 1);
    let w = snap.body["watermark"].as_str().unwrap().to_string();
    assert_eq!(feed.get(&format!("/changes?after={w}")).status, 200);

    // Older than what is retained: the log has been pruned past it (as retention does; here
    // by hand, with the server stopped).
    create_user(&server.as_tenant(&token), "c@contoso.com");
    let latest = feed.changes(&w, 10)["nextAfter"]
        .as_str()
        .unwrap()
        .to_string();
    server.stop();
    {
        let conn = rusqlite::Connection::open(server.db_path()).unwrap();
        conn.execute(
            "UPDATE feed_meta SET pruned_through = (SELECT max(seq) FROM changes)",
            [],
        )
        .unwrap();
        conn.execute("DELETE FROM changes", []).unwrap();
    }
    server.spawn();
    let feed = Feed::new(&server, &feed_tok);
    assert_scim_error(
        &feed.get(&format!("/changes?after={w}")),
        410,
        Some("expiredCursor"),
    );
    let r = feed.get(&format!("/changes?after={latest}"));
    assert_eq!((r.status, r.body["changes"].clone()), (200, json!([])));
    let r = feed.get("/changes");
    assert_eq!(
        (r.status, r.body["nextAfter"].clone()),
        (200, json!(latest))
    );
}

#[test]
fn feed_attacks_no_token_wrong_token_other_tenant_wrong_scope_malformed_cursors_huge_values() {
    let ctx = TenantCtx::start("acme");
    let server = &ctx.server;
    let acme_feed = Feed::new(server, &feed_token(server, "acme"));
    create_user(&ctx.scim(), "secret@acme.com");
    let other_scim = server.tenant_token("other");
    let other_feed = Feed::new(server, &feed_token(server, "other"));
    let acme_cursor = acme_feed.changes("0", 10)["nextAfter"]
        .as_str()
        .unwrap()
        .to_string();
    let paths = ["/changes", "/snapshot"];

    // No token, a wrong one: 401 on every feed endpoint.
    for path in paths {
        let r = reply(
            server
                .client()
                .get(server.public_url(&format!("/feed/v1{path}")))
                .send()
                .unwrap(),
        );
        assert_scim_error(&r, 401, None);
        let wrong = Feed::new(server, "eyJhbGciOiJIUzI1NiJ9.eyJqdGkiOiJ4In0.AAAA");
        assert_scim_error(&wrong.get(path), 401, None);
    }
    let wrong = Feed::new(server, "not-a-token");
    assert_scim_error(&wrong.put_position("0"), 401, None);

    // A scim credential gets 403 on the feed; a feed credential 403 on SCIM writes.
    let scim_as_feed = Feed::new(server, &ctx.token);
    for path in paths {
        assert_scim_error(&scim_as_feed.get(path), 403, None);
    }
    assert_scim_error(&scim_as_feed.put_position("0"), 403, None);
    let feed_tok = acme_feed.token.clone();
    let r = server
        .as_tenant(&feed_tok)
        .post("/Users", &user_body("sneaky@acme.com"));
    assert_scim_error(&r, 403, None);

    // Another tenant's feed token sees nothing of acme, even with acme's cursor.
    let r = other_feed.get("/snapshot");
    assert_eq!((r.status, r.body["resources"].clone()), (200, json!([])));
    let r = other_feed.get("/changes");
    assert_eq!((r.status, r.body["changes"].clone()), (200, json!([])));
    let r = other_feed.get(&format!("/changes?after={acme_cursor}"));
    assert_eq!((r.status, r.body["changes"].clone()), (200, json!([])));
    let _ = other_scim;

    // Malformed cursors: 400 invalidCursor, nothing else.
    let epoch = acme_cursor.split('-').next().unwrap();
    let long = "9".repeat(5000);
    for bad in [
        "x".to_string(),
        "-1".to_string(),
        epoch.to_string(),
        format!("{epoch}-"),
        format!("{epoch}--5"),
        format!("{epoch}-99999999"),
        format!("{epoch}-1%27%20OR%201=1--"),
        format!("{epoch}-{long}"),
        "%00%01".to_string(),
        "%E2%98%83-1".to_string(),
    ] {
        let r = acme_feed.get(&format!("/changes?after={bad}"));
        assert_scim_error(&r, 400, Some("invalidCursor"));
        let r = acme_feed.get(&format!("/snapshot?cursor={bad}"));
        assert_scim_error(&r, 400, Some("invalidCursor"));
    }
    assert_scim_error(&acme_feed.put_position("nope"), 400, Some("invalidCursor"));
    assert_scim_error(
        &acme_feed.put_position(&"a".repeat(100_000)),
        400,
        Some("invalidCursor"),
    );

    // Huge or bad numbers: the largest page is served; non-numbers are 400.
    let r = acme_feed.get("/changes?limit=99999999999999999999999&wait=0");
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = acme_feed.get("/snapshot?count=99999999999999999999999");
    assert_eq!(r.status, 200, "{:?}", r.body);
    for q in [
        "/changes?limit=-1",
        "/changes?wait=-5",
        "/changes?wait=1e9",
        "/snapshot?count=abc",
    ] {
        assert_scim_error(&acme_feed.get(q), 400, Some("invalidValue"));
    }
    // A huge wait is capped (60 s) and still wakes on a write.
    let waiter = {
        let (f, c) = (
            acme_feed.clone(),
            acme_feed.changes(&acme_cursor, 10)["nextAfter"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        std::thread::spawn(move || f.get(&format!("/changes?after={c}&wait=99999999999999999999")))
    };
    std::thread::sleep(Duration::from_millis(300));
    create_user(&ctx.scim(), "wake@acme.com");
    let r = waiter.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body["changes"].as_array().unwrap().len(), 1);

    // A huge position body: 413 from its Content-Length, before it is read.
    {
        use std::io::{Read, Write};
        let mut tls = server.raw_tls(Duration::from_secs(10));
        let head = format!(
            "PUT /feed/v1/position HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {feed_tok}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            64 * 1024 * 1024
        );
        tls.write_all(head.as_bytes()).unwrap();
        tls.flush().unwrap();
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&response).contains("\"status\":\"413\"") {
            match tls.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    }
    // Other methods and paths.
    let r = reply(
        server
            .client()
            .delete(server.public_url("/feed/v1/changes"))
            .bearer_auth(&feed_tok)
            .send()
            .unwrap(),
    );
    assert_scim_error(&r, 405, None);
    assert_scim_error(&acme_feed.get("/nope"), 404, None);
}

/// The reference consumer (`examples/feed_consumer.py`) as a process against `server`.
pub(crate) fn consumer(
    server: &Server,
    token: &str,
    db: &std::path::Path,
    follow: bool,
) -> std::process::Child {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/feed_consumer.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script)
        .arg("--url")
        .arg(server.public_url(""))
        .arg("--db")
        .arg(db)
        .arg("--cafile")
        .arg(server.dir.path().join("cert.pem"))
        .args(["--page", "7", "--wait", "2"])
        .env("GROUPTALK_FEED_TOKEN", token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if follow {
        cmd.arg("--follow");
    }
    cmd.spawn().expect("python3 runs")
}

/// Run the consumer until it has caught up; asserts it exits cleanly.
pub(crate) fn consume_until_idle(server: &Server, token: &str, db: &std::path::Path) -> String {
    let out = consumer(server, token, db, false)
        .wait_with_output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "consumer failed: {err}");
    err
}

/// The consumer's mirror, read from its SQLite file, in the form `Mirror` holds.
pub(crate) fn mirror_from_file(db: &std::path::Path) -> Mirror {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut mirror = Mirror::default();
    let mut stmt = conn
        .prepare("SELECT id, revision, body FROM resources")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, revision, body) = row.unwrap();
        let body: Value = body.map_or(Value::Null, |b| serde_json::from_str(&b).unwrap());
        let mut members = BTreeSet::new();
        let mut m = conn
            .prepare("SELECT member_id FROM members WHERE group_id = ?1")
            .unwrap();
        for member in m.query_map([&id], |r| r.get::<_, String>(0)).unwrap() {
            members.insert(member.unwrap());
        }
        mirror
            .held
            .insert(id, (revision, comparable(&body), members));
    }
    mirror
}

fn seed_directory(ctx: &TenantCtx) -> (Ids, Ids) {
    let scim = ctx.scim();
    let users: Ids = Arc::default();
    let groups: Ids = Arc::default();
    for i in 0..20 {
        let r = scim.post("/Users", &user_body(&format!("seed{i}@contoso.com")));
        assert_eq!(r.status, 201);
        users
            .lock()
            .unwrap()
            .push(r.body["id"].as_str().unwrap().into());
    }
    for i in 0..4 {
        let members: Vec<Value> = users.lock().unwrap()[i * 4..i * 4 + 4]
            .iter()
            .map(|u| json!({"value": u}))
            .collect();
        let r = scim.post(
            "/Groups",
            &json!({"displayName": format!("Seed {i}"), "members": members}),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        groups
            .lock()
            .unwrap()
            .push(r.body["id"].as_str().unwrap().into());
    }
    (users, groups)
}

fn traffic(
    ctx: &TenantCtx,
    users: &Ids,
    groups: &Ids,
    seed: u64,
    ops: usize,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..3u64)
        .map(|t| {
            let (client, users, groups) = (
                ctx.server.scim_client(&ctx.token),
                users.clone(),
                groups.clone(),
            );
            std::thread::spawn(move || entra_traffic(client, users, groups, seed + t * 7919, ops))
        })
        .collect()
}

#[test]
fn reference_consumer_mirrors_the_tenant_through_server_and_consumer_kills_and_a_restore() {
    let mut ctx = TenantCtx::start("acme");
    let token = feed_token(&ctx.server, "acme");
    let mirror_db = ctx.server.dir.path().join("mirror.db");
    let (users, groups) = seed_directory(&ctx);

    // Phase 1: the consumer snapshots and follows while Entra writes.
    let mut follower = consumer(&ctx.server, &token, &mirror_db, true);
    for w in traffic(&ctx, &users, &groups, 0x51ed, 60) {
        w.join().unwrap();
    }
    // The server is SIGKILLed mid-stream (the consumer is long-polling) and restarted.
    ctx.server.kill();
    ctx.server.spawn();
    // The consumer is SIGKILLed while more traffic runs, and resumed from its file.
    std::thread::sleep(Duration::from_millis(300));
    follower.kill().unwrap();
    follower.wait().unwrap();
    let writers = traffic(&ctx, &users, &groups, 0xbeef, 60);
    let mut follower = consumer(&ctx.server, &token, &mirror_db, true);
    std::thread::sleep(Duration::from_millis(400));
    follower.kill().unwrap();
    follower.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    consume_until_idle(&ctx.server, &token, &mirror_db);
    assert_mirror_equals_scim(&mirror_from_file(&mirror_db), &ctx);

    // A restore makes the consumer's cursor expire: it takes a new snapshot and matches the
    // restored directory (resources created after the backup are gone from it too).
    let backup = ctx.server.dir.path().join("b.db");
    assert!(ctx.server.cli(&["backup", backup.to_str().unwrap()]).0);
    for w in traffic(&ctx, &users, &groups, 0xcafe, 20) {
        w.join().unwrap();
    }
    consume_until_idle(&ctx.server, &token, &mirror_db);
    ctx.server.stop();
    let (ok, _, err) = ctx.server.cli(&["restore", backup.to_str().unwrap()]);
    assert!(ok, "{err}");
    ctx.server.spawn();
    let log = consume_until_idle(&ctx.server, &token, &mirror_db);
    assert!(log.contains("taking a new snapshot"), "{log}");
    assert_mirror_equals_scim(&mirror_from_file(&mirror_db), &ctx);
}

#[test]
fn feed_status_shows_consumers_and_lag_and_feed_tail_prints_the_log() {
    let ctx = TenantCtx::start("acme");
    let token = feed_token(&ctx.server, "acme");
    let feed = Feed::new(&ctx.server, &token);
    let alice = create_user(&ctx.scim(), "alice@contoso.com");
    let page = feed.changes("0", 10);
    let read = page["nextAfter"].as_str().unwrap().to_string();
    assert_eq!(feed.put_position(&read).status, 200);
    create_user(&ctx.scim(), "bob@contoso.com");
    create_user(&ctx.scim(), "carol@contoso.com");

    let (ok, out, err) = ctx.server.cli(&["feed", "status", "--json"]);
    assert!(ok, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    let consumers = s["consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 1, "{s}");
    let token_id = crate::harness::claims(&token)["jti"].clone();
    assert_eq!(
        consumers[0]["consumer"], token_id,
        "keyed by the token's id"
    );
    assert_eq!(consumers[0]["tenant"], "acme");
    assert_eq!(consumers[0]["lag_changes"], 2);
    assert_eq!(s["retained_changes"], 3);
    let (ok, table, _) = ctx.server.cli(&["feed", "status", "--tenant", "acme"]);
    assert!(
        ok && table.contains("acme") && table.contains(token_id.as_str().unwrap()),
        "{table}"
    );
    assert!(!table.contains(&token), "never the token itself");

    let (ok, out, err) = ctx
        .server
        .cli(&["feed", "tail", "--tenant", "acme", "--json"]);
    assert!(ok, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["id"], alice.as_str());
    assert_eq!(rows[0]["op"], "create");
    let (ok, _, err) = ctx.server.cli(&["feed", "tail", "--tenant", "nope"]);
    assert!(!ok && err.contains("no tenant named"), "{err}");
}
