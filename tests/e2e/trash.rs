//! The trash: a SCIM DELETE answers as before (404 afterwards, out of every group, the name free
//! for a new POST), and `trash restore` gives the resource back — same id, attributes and
//! memberships, a newer version — with the feed reporting it, so a consumer's mirror follows.

use serde_json::{json, Value};

use crate::feed::{assert_mirror_equals_scim, consume_until_idle, feed_token, mirror_from_file};
use crate::harness::{create_user, patch_op, user_body, Scim, Server, TenantCtx};

fn member_ids(scim: &Scim<'_>, group: &str) -> Vec<String> {
    let r = scim.get(&format!("/Groups/{group}"));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut ids: Vec<String> = r.body["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn create_group(scim: &Scim<'_>, name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|m| json!({ "value": m })).collect();
    let r = scim.post("/Groups", &json!({"displayName": name, "members": members}));
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

/// `trash list --json` (of one tenant).
fn trash_list(server: &Server, tenant: &str) -> Vec<Value> {
    let (ok, out, err) = server.cli(&["trash", "list", "--tenant", tenant, "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    v["trash"].as_array().unwrap().clone()
}

/// The resource without what a write moves (meta's version and lastModified) and the user's
/// derived `groups`.
fn attributes(resource: &Value) -> Value {
    let mut v = resource.clone();
    let o = v.as_object_mut().unwrap();
    o.remove("groups");
    let meta = o.get_mut("meta").unwrap().as_object_mut().unwrap();
    meta.remove("version");
    meta.remove("lastModified");
    v
}

fn version(resource: &Value) -> i64 {
    let tag = resource["meta"]["version"].as_str().unwrap();
    tag.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .unwrap()
}

#[test]
fn deleting_a_user_in_two_groups_then_trash_restore_gives_back_the_user_and_both_memberships_and_a_consumer_mirror_follows_both_steps(
) {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let feed = feed_token(&ctx.server, "acme");
    let mirror = ctx.server.dir.path().join("mirror.db");
    let alice = scim.post("/Users", &user_body("alice@contoso.com"));
    assert_eq!(alice.status, 201);
    let alice_id = alice.body["id"].as_str().unwrap().to_string();
    let bob = create_user(&scim, "bob@contoso.com");
    let dispatch = create_group(&scim, "Dispatch", &[&alice_id, &bob]);
    let drivers = create_group(&scim, "Drivers", &[&alice_id]);
    let r = scim.patch(
        &format!("/Users/{alice_id}"),
        &patch_op(json!([{"op": "replace", "path": "title", "value": "Dispatcher"}])),
    );
    assert_eq!(r.status, 200);
    let before = scim.get(&format!("/Users/{alice_id}")).body;
    consume_until_idle(&ctx.server, &feed, &mirror);
    assert_mirror_equals_scim(&mirror_from_file(&mirror), &ctx);

    // The DELETE answers as it always did: 404 afterwards, in no group any more.
    assert_eq!(scim.delete(&format!("/Users/{alice_id}")).status, 204);
    assert_eq!(scim.get(&format!("/Users/{alice_id}")).status, 404);
    assert_eq!(member_ids(&scim, &dispatch), vec![bob.clone()]);
    assert!(member_ids(&scim, &drivers).is_empty());
    let r = scim.filter("/Users", "userName eq \"alice@contoso.com\"");
    assert_eq!(r.body["totalResults"], 0);
    consume_until_idle(&ctx.server, &feed, &mirror);
    assert_mirror_equals_scim(&mirror_from_file(&mirror), &ctx);

    // It is in the trash, with its two memberships.
    let trash = trash_list(&ctx.server, "acme");
    assert_eq!(trash.len(), 1, "{trash:?}");
    assert_eq!(trash[0]["id"], alice_id.as_str());
    assert_eq!(trash[0]["name"], "alice@contoso.com");
    assert_eq!(trash[0]["groups"], 2);
    let (ok, table, _) = ctx.server.cli(&["trash", "list"]);
    assert!(
        ok && table.contains(&alice_id) && table.contains("alice@contoso.com"),
        "{table}"
    );

    let (ok, out, err) = ctx.server.cli(&["trash", "restore", &alice_id]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&alice_id) && out.contains("2 group(s)"),
        "{out}"
    );
    assert!(err.contains("warning") && err.contains("scope"), "{err}");

    // Back: same id and attributes, a newer version, both memberships.
    let after = scim.get(&format!("/Users/{alice_id}"));
    assert_eq!(after.status, 200);
    assert_eq!(attributes(&after.body), attributes(&before));
    assert!(
        version(&after.body) > version(&before) + 1,
        "above the delete's revision: {} vs {}",
        version(&after.body),
        version(&before)
    );
    let mut groups: Vec<&str> = after.body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    groups.sort();
    let mut want = vec![dispatch.as_str(), drivers.as_str()];
    want.sort();
    assert_eq!(groups, want);
    let mut both = vec![alice_id.clone(), bob.clone()];
    both.sort();
    assert_eq!(member_ids(&scim, &dispatch), both);
    assert_eq!(member_ids(&scim, &drivers), vec![alice_id.clone()]);
    assert!(trash_list(&ctx.server, "acme").is_empty());

    // The feed told the consumer: its mirror equals the SCIM state again.
    consume_until_idle(&ctx.server, &feed, &mirror);
    assert_mirror_equals_scim(&mirror_from_file(&mirror), &ctx);

    // The feed's own words: a create of alice above her delete's revision, and each group's
    // update with her in `added`.
    let feed_client = crate::feed::Feed::new(&ctx.server, &feed);
    let page = feed_client.get("/changes?after=0&limit=1000");
    let changes = page.body["changes"].as_array().unwrap();
    let of = |id: &str| -> Vec<&Value> { changes.iter().filter(|c| c["id"] == id).collect() };
    let alice_changes = of(&alice_id);
    let ops: Vec<&str> = alice_changes
        .iter()
        .map(|c| c["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["create", "update", "delete", "create"]);
    assert!(alice_changes[3]["revision"].as_i64() > alice_changes[2]["revision"].as_i64());
    for g in [&dispatch, &drivers] {
        let last = *of(g).last().unwrap();
        assert_eq!(last["members"]["added"], json!([alice_id]), "{last}");
    }
}

#[test]
fn a_deleted_group_comes_back_with_the_members_that_still_exist() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let (a, b, c) = (
        create_user(&scim, "a@contoso.com"),
        create_user(&scim, "b@contoso.com"),
        create_user(&scim, "c@contoso.com"),
    );
    let g = create_group(&scim, "Night shift", &[&a, &b, &c]);
    assert_eq!(scim.delete(&format!("/Groups/{g}")).status, 204);
    assert_eq!(scim.get(&format!("/Groups/{g}")).status, 404);
    // A new group of that name is fine while the old one is in the trash…
    let other = create_group(&scim, "Night shift", &[]);
    let (ok, _, err) = ctx
        .server
        .cli(&["trash", "restore", &g, "--tenant", "acme"]);
    assert!(!ok);
    assert!(err.contains(&other) && err.contains("displayName"), "{err}");
    // …and once it is gone, the old one comes back, without the member deleted meanwhile.
    assert_eq!(scim.delete(&format!("/Groups/{other}")).status, 204);
    assert_eq!(scim.delete(&format!("/Users/{c}")).status, 204);
    let (ok, out, err) = ctx
        .server
        .cli(&["trash", "restore", &g, "--tenant", "acme"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("2 member(s)") && out.contains("not given back"),
        "{out}"
    );
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(member_ids(&scim, &g), want);
    assert_eq!(
        scim.get(&format!("/Groups/{g}")).body["displayName"],
        "Night shift"
    );
}

/// Entra's sequence: the user it deleted is restored; its next cycle looks it up by
/// `userName eq`, finds it, and PATCHes it — no duplicate is created.
#[test]
fn after_trash_restore_entra_finds_the_user_by_username_and_patches_it_instead_of_creating_a_duplicate(
) {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let r = scim.post("/Users", &user_body("radio.7@contoso.com"));
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(scim.delete(&format!("/Users/{id}")).status, 204);
    let (ok, _, err) = ctx.server.cli(&["trash", "restore", &id]);
    assert!(ok, "{err}");

    let found = scim.filter("/Users", "userName eq \"radio.7@contoso.com\"");
    assert_eq!(found.status, 200);
    assert_eq!(found.body["totalResults"], 1, "{:?}", found.body);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());
    let r = scim.patch(
        &format!("/Users/{id}"),
        &patch_op(json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "displayName", "value": "Radio Seven"}
        ])),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["active"], false);
    let all = scim.get("/Users");
    assert_eq!(all.body["totalResults"], 1, "no duplicate: {:?}", all.body);
}

#[test]
fn restore_refuses_when_a_live_user_now_holds_its_username_and_says_which() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let old = create_user(&scim, "Carol@Contoso.com");
    assert_eq!(scim.delete(&format!("/Users/{old}")).status, 204);
    // The trash never blocks a create (compared case-insensitively, as userName is).
    let new = create_user(&scim, "carol@contoso.com");
    let (ok, _, err) = ctx.server.cli(&["trash", "restore", &old]);
    assert!(!ok);
    assert!(
        err.starts_with("error:") && err.contains(&new) && err.contains("userName"),
        "{err}"
    );
    // Nothing changed: the new user is untouched, the old one still in the trash.
    assert_eq!(scim.get(&format!("/Users/{old}")).status, 404);
    assert_eq!(scim.get(&format!("/Users/{new}")).status, 200);
    assert_eq!(trash_list(&ctx.server, "acme").len(), 1);
    let (ok, _, err) = ctx.server.cli(&["trash", "restore", "no-such-id"]);
    assert!(
        !ok && err.contains("no user or group") && err.contains("trash"),
        "{err}"
    );
}

#[test]
fn attack_another_tenants_id_with_trash_restore_tenant_refuses() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let other_token = ctx.server.tenant_token("globex");
    let id = create_user(&scim, "dave@contoso.com");
    assert_eq!(scim.delete(&format!("/Users/{id}")).status, 204);
    let (ok, _, err) = ctx
        .server
        .cli(&["trash", "restore", &id, "--tenant", "globex"]);
    assert!(!ok);
    assert!(
        err.contains("globex") && err.contains("no user or group"),
        "{err}"
    );
    assert!(trash_list(&ctx.server, "globex").is_empty());
    assert_eq!(trash_list(&ctx.server, "acme").len(), 1);
    // Neither tenant sees it.
    let globex = ctx.server.as_tenant(&other_token);
    assert_eq!(globex.get(&format!("/Users/{id}")).status, 404);
    assert_eq!(scim.get(&format!("/Users/{id}")).status, 404);
    // Restored into its own tenant only.
    let (ok, _, err) = ctx
        .server
        .cli(&["trash", "restore", &id, "--tenant", "acme"]);
    assert!(ok, "{err}");
    assert_eq!(scim.get(&format!("/Users/{id}")).status, 200);
    assert_eq!(globex.get(&format!("/Users/{id}")).status, 404);
    let (ok, _, err) = ctx.server.cli(&["trash", "list", "--tenant", "nope"]);
    assert!(!ok && err.contains("no tenant"), "{err}");
}
