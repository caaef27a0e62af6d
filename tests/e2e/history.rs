//! `grouptalk-scim history`: every request that touched a user or group, with what each write
//! changed; by id, userName or displayName, live or in the trash. With `log.keep_bodies`, the
//! bodies too — never a password, never the token endpoint's form, never more than 16 KiB.

use serde_json::{json, Value};

use crate::harness::{patch_op, user_body, Server, TenantCtx};

fn history(server: &Server, args: &[&str]) -> Value {
    let mut all = vec!["history"];
    all.extend_from_slice(args);
    all.push("--json");
    let (ok, out, err) = server.cli(&all);
    assert!(ok, "history {args:?}: {err}");
    serde_json::from_str(out.trim()).unwrap()
}

/// The change of `attr` in an event's diff.
fn change<'a>(event: &'a Value, attr: &str) -> Option<&'a Value> {
    event["diff"]["changes"]
        .as_array()?
        .iter()
        .find(|c| c["attr"] == attr)
}

#[test]
fn history_shows_a_users_create_patches_and_delete_with_the_changed_attributes() {
    let ctx = TenantCtx::start("acme");
    let scim = ctx.scim();
    let r = scim.post("/Users", &user_body("erin@contoso.com"));
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = scim.patch(
        &format!("/Users/{id}"),
        &patch_op(json!([
            {"op": "Replace", "path": "name.familyName", "value": "Berg"},
            {"op": "Add", "path": "title", "value": "Dispatcher"}
        ])),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    // Entra's string boolean: normalised, and the note says so.
    let r = scim.patch(
        &format!("/Users/{id}"),
        &patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}])),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let g = scim.post(
        "/Groups",
        &json!({"displayName": "Ops", "members": [{"value": id}]}),
    );
    assert_eq!(g.status, 201);
    let gid = g.body["id"].as_str().unwrap().to_string();
    assert_eq!(scim.delete(&format!("/Users/{id}")).status, 204);

    // By userName (the user is in the trash now), then by id: the same answer.
    let h = history(&ctx.server, &["erin@contoso.com"]);
    assert_eq!(h["object"]["id"], id.as_str());
    assert_eq!(h["object"]["place"], "trash");
    assert_eq!(
        history(&ctx.server, &[&id, "--tenant", "acme"])["events"],
        h["events"]
    );
    let events = h["events"].as_array().unwrap();
    let methods: Vec<&str> = events
        .iter()
        .map(|e| e["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["POST", "PATCH", "PATCH", "DELETE"], "{events:?}");
    let statuses: Vec<u64> = events
        .iter()
        .map(|e| e["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 200, 200, 204]);
    assert!(events.iter().all(|e| e["credential"].is_string()));

    let created = &events[0];
    assert_eq!(created["diff"]["op"], "create");
    assert_eq!(
        change(created, "userName").unwrap(),
        &json!({"attr": "userName", "to": "erin@contoso.com"})
    );
    assert_eq!(
        change(&events[1], "name.familyName").unwrap(),
        &json!({"attr": "name.familyName", "from": "Andersson", "to": "Berg"})
    );
    assert_eq!(
        change(&events[1], "title").unwrap(),
        &json!({"attr": "title", "to": "Dispatcher"})
    );
    assert_eq!(events[1]["diff"]["changes"].as_array().unwrap().len(), 2);
    assert_eq!(events[2]["diff"]["op"], "deactivate");
    assert_eq!(
        change(&events[2], "active").unwrap(),
        &json!({"attr": "active", "from": true, "to": false})
    );
    assert!(
        !events[2]["notes"].as_array().unwrap().is_empty(),
        "the normalisation is named: {:?}",
        events[2]
    );
    assert_eq!(events[3]["diff"]["op"], "delete");
    assert_eq!(
        change(&events[3], "title").unwrap(),
        &json!({"attr": "title", "from": "Dispatcher"})
    );
    assert!(
        events.iter().all(|e| e["body"].is_null()),
        "bodies are off by default"
    );

    // A group's history names the members added.
    let gh = history(&ctx.server, &["Ops", "--tenant", "acme"]);
    assert_eq!(gh["object"]["id"], gid.as_str());
    assert_eq!(gh["events"][0]["diff"]["members"]["added"], json!([id]));

    // The table for people: each change on its own line.
    let (ok, text, err) = ctx.server.cli(&["history", "erin@contoso.com"]);
    assert!(ok, "{err}");
    assert!(
        text.contains("name.familyName: \"Andersson\" -> \"Berg\""),
        "{text}"
    );
    assert!(text.contains("DELETE 204"), "{text}");

    // Another tenant's name or id is unknown there.
    ctx.server.tenant_token("globex");
    let (ok, _, err) = ctx.server.cli(&["history", &id, "--tenant", "globex"]);
    assert!(!ok && err.contains("globex"), "{err}");
}

#[test]
fn keep_bodies_never_stores_a_password_or_the_token_endpoint_form() {
    let ctx = TenantCtx::start_with("acme", "[log]\nkeep_bodies = true\n", &[]);
    let scim = ctx.scim();
    let mut body = user_body("frank@contoso.com");
    body["password"] = json!("Hunter2-create-secret");
    let r = scim.post("/Users", &body);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = scim.patch(
        &format!("/Users/{id}"),
        &patch_op(json!([
            {"op": "replace", "path": "password", "value": "Hunter2-path-secret"},
            {"op": "replace", "value": {"password": "Hunter2-value-secret", "title": "Driver"}}
        ])),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    // A failed write keeps its body too (why did Entra's request fail?), password stripped.
    let r = scim.post(
        "/Users",
        &json!({"userName": "frank@contoso.com", "password": "Hunter2-conflict-secret"}),
    );
    assert_eq!(r.status, 409);
    std::thread::sleep(std::time::Duration::from_millis(800));

    let h = history(&ctx.server, &[&id]);
    let events = h["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    let created: Value = serde_json::from_str(events[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(created["userName"], "frank@contoso.com");
    assert!(created.get("password").is_none(), "{created}");
    let patched = events[1]["body"].as_str().unwrap();
    assert!(
        patched.contains("Driver") && patched.contains("(redacted)"),
        "{patched}"
    );
    assert_eq!(
        change(&events[1], "title").unwrap(),
        &json!({"attr": "title", "to": "Driver"})
    );

    let conn = ctx.server.open_db_read_only();
    let kept: i64 = conn
        .query_row(
            "SELECT count(*) FROM request_details WHERE body IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 3, "both writes and the failed POST");
    drop(conn);
    for suffix in ["", "-wal"] {
        let path = format!("{}{suffix}", ctx.server.db_path().display());
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        assert!(
            !bytes.windows(7).any(|w| w == b"Hunter2"),
            "a password in {path}"
        );
    }
    let (ok, log, _) = ctx.server.cli(&["log", "--json"]);
    assert!(ok && !log.contains("Hunter2"));
}

#[test]
fn a_huge_body_is_capped_in_the_kept_log() {
    let ctx = TenantCtx::start_with("acme", "[log]\nkeep_bodies = true\n", &[]);
    let scim = ctx.scim();
    let mut body = user_body("gina@contoso.com");
    body["title"] = json!("t".repeat(1_000_000));
    let r = scim.post("/Users", &body);
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let h = history(&ctx.server, &[&id]);
    let kept = h["events"][0]["body"].as_str().unwrap();
    assert!(kept.len() <= 16 * 1024 + 64, "{} bytes kept", kept.len());
    assert!(
        kept.ends_with("bytes in all)"),
        "{}",
        &kept[kept.len() - 60..]
    );
    let title = change(&h["events"][0], "title").unwrap()["to"]
        .as_str()
        .unwrap();
    assert!(
        title.chars().count() <= 201,
        "the diff's value is capped too"
    );
    let conn = ctx.server.open_db_read_only();
    let largest: i64 = conn
        .query_row(
            "SELECT max(length(body) + length(diff)) FROM request_details",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(largest < 24 * 1024, "{largest} bytes in one row");
}
