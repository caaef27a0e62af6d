//! The deletion brake against real SQLite: what is held, what the feed shows meanwhile
//! (changes and snapshot), cancelling, release and discard.

use rusqlite::Connection;
use serde_json::{json, Value};

use super::*;
use crate::scim::patch;
use crate::scim::resource::MemberRef;
use crate::store::feed;
use crate::store::resources;

const TWO: Settings = Settings {
    max_removals: 2,
    max_fraction: 0.0,
    window_minutes: 60,
};

fn setup() -> (tempfile::TempDir, Connection, TenantId, TenantId) {
    let dir = tempfile::tempdir().unwrap();
    let conn = crate::store::open_connection(&dir.path().join("t.db")).unwrap();
    let a = crate::store::tenants::create(&conn, "acme", None)
        .unwrap()
        .id;
    let b = crate::store::tenants::create(&conn, "other", None)
        .unwrap()
        .id;
    (dir, conn, a, b)
}

fn user(conn: &Connection, t: &TenantId, name: &str) -> Stored {
    resources::create(
        conn,
        t,
        ResourceKind::User,
        json!({"userName": name, "active": true}),
        None,
    )
    .unwrap()
}

fn group(conn: &Connection, t: &TenantId, name: &str, members: &[&Stored]) -> Stored {
    let refs: Vec<MemberRef> = members
        .iter()
        .map(|m| MemberRef {
            value: m.id.to_string(),
            kind: None,
        })
        .collect();
    resources::create(
        conn,
        t,
        ResourceKind::Group,
        json!({"displayName": name}),
        Some(&refs),
    )
    .unwrap()
}

fn patch_with(conn: &Connection, t: &TenantId, kind: ResourceKind, id: &ResourceId, ops: Value) {
    let req = patch::parse_request(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": ops
    }))
    .unwrap();
    within(TWO, || resources::patch(conn, t, kind, id, &req, None))
        .0
        .unwrap();
}

fn set_active(conn: &Connection, t: &TenantId, u: &Stored, active: bool) {
    patch_with(
        conn,
        t,
        ResourceKind::User,
        &u.id,
        json!([{"op": "replace", "path": "active", "value": active}]),
    );
}

/// A PATCH removing `u` from `g` (Entra's filter-path form).
fn remove_member(conn: &Connection, t: &TenantId, g: &Stored, u: &Stored) {
    patch_with(
        conn,
        t,
        ResourceKind::Group,
        &g.id,
        json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", u.id)}]),
    );
}

/// A PATCH adding `users` to `g`.
fn add_members(conn: &Connection, t: &TenantId, g: &Stored, users: &[&Stored]) {
    let value: Vec<Value> = users
        .iter()
        .map(|u| json!({"value": u.id.as_str()}))
        .collect();
    patch_with(
        conn,
        t,
        ResourceKind::Group,
        &g.id,
        json!([{"op": "add", "path": "members", "value": value}]),
    );
}

/// (id, op, revision) of every delivered change.
fn delivered(conn: &Connection, t: &TenantId) -> Vec<(String, String, i64)> {
    feed::changes_after(conn, t, None, 1000)
        .unwrap()
        .changes
        .iter()
        .map(|c| (c.id.to_string(), c.op.clone(), c.revision))
        .collect()
}

fn held(conn: &Connection, t: &TenantId) -> i64 {
    status(conn, Some(t), &TWO).unwrap()[0].held
}

/// The snapshot as (id, active, revision, member ids).
fn snapshot(conn: &Connection, t: &TenantId) -> Vec<(String, Option<bool>, i64, Vec<String>)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = feed::snapshot_page(conn, t, cursor.as_deref(), 2).unwrap();
        for (s, m) in &page.resources {
            out.push((
                s.id.to_string(),
                s.doc.get("active").and_then(Value::as_bool),
                s.version.0,
                m.iter().flatten().map(|m| m.id.to_string()).collect(),
            ));
        }
        match page.next {
            Some(n) => cursor = Some(n.encode()),
            None => return out,
        }
    }
}

#[test]
fn removals_beyond_the_threshold_are_held_and_the_feed_shows_them_as_last_delivered() {
    let (_d, conn, t, _) = setup();
    let users: Vec<Stored> = (0..4).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    for u in &users {
        set_active(&conn, &t, u, false);
    }
    let ops: Vec<String> = delivered(&conn, &t).into_iter().map(|c| c.1).collect();
    assert_eq!(
        ops.iter().filter(|o| *o == "deactivate").count(),
        2,
        "{ops:?}"
    );
    assert_eq!(held(&conn, &t), 2);
    // The held users' create changes show them as delivered: active, revision 1.
    let page = feed::changes_after(&conn, &t, None, 100).unwrap();
    for c in page.changes.iter().filter(|c| c.op == "create") {
        let active = c.resource.as_ref().unwrap().doc["active"].as_bool();
        let is_held = c.id == users[2].id || c.id == users[3].id;
        assert_eq!(active, Some(is_held), "{}", c.id);
    }
    let snap = snapshot(&conn, &t);
    assert_eq!(snap.len(), 4);
    assert_eq!(snap[2], (users[2].id.to_string(), Some(true), 1, vec![]));
    assert_eq!(snap[0].1, Some(false));
    // SCIM itself says inactive.
    let live = resources::get(&conn, &t, ResourceKind::User, &users[2].id)
        .unwrap()
        .unwrap();
    assert_eq!(live.doc["active"], json!(false));
}

#[test]
fn a_reactivation_cancels_the_held_deactivation_and_goes_on_as_an_update() {
    let (_d, conn, t, _) = setup();
    let users: Vec<Stored> = (0..3).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    for u in &users {
        set_active(&conn, &t, u, false);
    }
    assert_eq!(held(&conn, &t), 1);
    set_active(&conn, &t, &users[2], true);
    assert_eq!(held(&conn, &t), 0);
    let mine: Vec<(String, i64)> = delivered(&conn, &t)
        .into_iter()
        .filter(|c| c.0 == users[2].id.as_str())
        .map(|c| (c.1, c.2))
        .collect();
    assert_eq!(mine, vec![("create".into(), 1), ("update".into(), 3)]);
    assert!(!any_images(&conn, &t).unwrap());
}

#[test]
fn release_appends_the_held_changes_in_order_at_new_sequence_numbers_and_discard_drops_them() {
    let (_d, conn, t, _) = setup();
    let users: Vec<Stored> = (0..5).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    for u in &users {
        set_active(&conn, &t, u, false);
    }
    let before = feed::changes_after(&conn, &t, None, 100).unwrap();
    assert_eq!(held(&conn, &t), 3);
    assert_eq!(release(&conn, &t).unwrap(), 3);
    let after = feed::changes_after(&conn, &t, Some(&before.next_after.encode()), 100).unwrap();
    let got: Vec<(String, String, i64)> = after
        .changes
        .iter()
        .map(|c| (c.id.to_string(), c.op.clone(), c.revision))
        .collect();
    let want: Vec<(String, String, i64)> = users[2..]
        .iter()
        .map(|u| (u.id.to_string(), "deactivate".to_string(), 2))
        .collect();
    assert_eq!(got, want);
    assert!(after.changes[0].seq > before.next_after.seq);
    assert_eq!(held(&conn, &t), 0);
    // A new episode: the count starts again, so two more removals flow.
    let more: Vec<Stored> = (0..3).map(|i| user(&conn, &t, &format!("v{i}"))).collect();
    for u in &more {
        set_active(&conn, &t, u, false);
    }
    assert_eq!(held(&conn, &t), 1);
    let mark = feed::changes_after(&conn, &t, None, 1000)
        .unwrap()
        .next_after;
    assert_eq!(discard(&conn, &t).unwrap(), 1);
    assert!(feed::changes_after(&conn, &t, Some(&mark.encode()), 100)
        .unwrap()
        .changes
        .is_empty());
    assert_eq!(held(&conn, &t), 0);
}

#[test]
fn a_held_user_delete_keeps_the_user_and_its_memberships_in_the_feed_until_release() {
    let (_d, conn, t, _) = setup();
    let users: Vec<Stored> = (0..3).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    let g = group(&conn, &t, "G", &[&users[2]]);
    let h = group(&conn, &t, "H", &[&users[2], &users[0]]);
    set_active(&conn, &t, &users[0], false);
    set_active(&conn, &t, &users[1], false);
    let mark = feed::changes_after(&conn, &t, None, 1000)
        .unwrap()
        .next_after;
    within(TWO, || {
        resources::delete(&conn, &t, ResourceKind::User, &users[2].id, None)
    })
    .0
    .unwrap();
    // SCIM: gone, and out of both groups.
    assert!(resources::get(&conn, &t, ResourceKind::User, &users[2].id)
        .unwrap()
        .is_none());
    // The feed: nothing delivered, 3 held (the delete and the two group updates it implies).
    assert!(feed::changes_after(&conn, &t, Some(&mark.encode()), 100)
        .unwrap()
        .changes
        .is_empty());
    assert_eq!(held(&conn, &t), 3);
    let snap = snapshot(&conn, &t);
    let u2 = users[2].id.to_string();
    assert!(snap.iter().any(|r| r.0 == u2), "{snap:?}");
    let members_of = |id: &ResourceId| {
        snap.iter()
            .find(|r| r.0 == id.as_str())
            .map(|r| r.3.clone())
            .unwrap()
    };
    assert_eq!(members_of(&g.id), vec![u2.clone()]);
    assert!(members_of(&h.id).contains(&u2));
    // A later change of a frozen group is held too: no leak of the removal through it.
    let extra = user(&conn, &t, "x");
    patch_with(
        &conn,
        &t,
        ResourceKind::Group,
        &g.id,
        json!([{"op": "add", "path": "members", "value": [{"value": extra.id.as_str()}]}]),
    );
    let after: Vec<String> = feed::changes_after(&conn, &t, Some(&mark.encode()), 100)
        .unwrap()
        .changes
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(
        after,
        vec![extra.id.to_string()],
        "only the new user's create"
    );
    assert_eq!(held(&conn, &t), 4);
    release(&conn, &t).unwrap();
    let released: Vec<(String, String)> = feed::changes_after(&conn, &t, Some(&mark.encode()), 100)
        .unwrap()
        .changes
        .iter()
        .map(|c| (c.id.to_string(), c.op.clone()))
        .collect();
    assert_eq!(released.len(), 5);
    assert_eq!(released[3], (u2, "delete".into()));
    assert_eq!(released[4], (g.id.to_string(), "update".into()));
    let snap = snapshot(&conn, &t);
    assert!(!snap.iter().any(|r| r.0 == users[2].id.as_str()));
}

#[test]
fn a_re_added_member_cancels_its_held_removal() {
    let (_d, conn, t, _) = setup();
    let users: Vec<Stored> = (0..4).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    let refs: Vec<&Stored> = users.iter().collect();
    let g = group(&conn, &t, "G", &refs);
    remove_member(&conn, &t, &g, &users[0]);
    remove_member(&conn, &t, &g, &users[1]);
    remove_member(&conn, &t, &g, &users[2]); // the third removal: held
    assert_eq!(held(&conn, &t), 1);
    let snap = snapshot(&conn, &t);
    let members = &snap.iter().find(|r| r.0 == g.id.as_str()).unwrap().3;
    assert_eq!(members.len(), 2, "u2 and u3: the removal of u2 is held");
    add_members(&conn, &t, &g, &[&users[2]]);
    assert_eq!(held(&conn, &t), 0);
    let last = feed::changes_after(&conn, &t, None, 100)
        .unwrap()
        .changes
        .pop()
        .unwrap();
    assert_eq!((last.op.as_str(), last.revision), ("update", 5));
    assert!(last.added.is_empty() && last.removed.is_empty());
}

#[test]
fn a_flood_of_removals_in_one_tenant_holds_nothing_of_another() {
    let (_d, conn, t, other) = setup();
    let users: Vec<Stored> = (0..6).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    let theirs: Vec<Stored> = (0..2)
        .map(|i| user(&conn, &other, &format!("u{i}")))
        .collect();
    for u in &users {
        set_active(&conn, &t, u, false);
    }
    for u in &theirs {
        set_active(&conn, &other, u, false);
    }
    assert_eq!(held(&conn, &t), 4);
    assert_eq!(held(&conn, &other), 0);
    assert_eq!(
        delivered(&conn, &other)
            .iter()
            .filter(|c| c.1 == "deactivate")
            .count(),
        2
    );
}

#[test]
fn max_removals_zero_holds_nothing() {
    let (_d, conn, t, _) = setup();
    let users: Vec<Stored> = (0..4).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    let off = Settings {
        max_removals: 0,
        ..TWO
    };
    let req = patch::parse_request(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]
    }))
    .unwrap();
    for u in &users {
        within(off, || {
            resources::patch(&conn, &t, ResourceKind::User, &u.id, &req, None)
        })
        .0
        .unwrap();
    }
    assert_eq!(held(&conn, &t), 0);
}

#[test]
fn held_changes_are_never_pruned_and_release_still_delivers_them_after_the_log_is_pruned() {
    let (_d, conn, t, _) = setup();
    let users: Vec<Stored> = (0..3).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    for u in &users {
        set_active(&conn, &t, u, false);
    }
    assert_eq!(held(&conn, &t), 1);
    // Past the hard retention: every change of the log goes.
    let later = Timestamp::from(time::OffsetDateTime::now_utc() + time::Duration::days(1));
    while feed::prune(&conn, later, later, 100).unwrap() > 0 {}
    assert!(feed::changes_after(&conn, &t, None, 100)
        .unwrap()
        .changes
        .is_empty());
    assert_eq!(held(&conn, &t), 1, "the held change is not part of the log");
    assert_eq!(release(&conn, &t).unwrap(), 1);
    let page = feed::changes_after(&conn, &t, None, 100).unwrap();
    let got: Vec<(String, String)> = page
        .changes
        .iter()
        .map(|c| (c.id.to_string(), c.op.clone()))
        .collect();
    assert_eq!(got, vec![(users[2].id.to_string(), "deactivate".into())]);
}

#[test]
fn removals_older_than_the_window_no_longer_count() {
    let (_d, conn, t, _) = setup();
    let users: Vec<Stored> = (0..4).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    set_active(&conn, &t, &users[0], false);
    set_active(&conn, &t, &users[1], false);
    // Those two happened 62 minutes ago: out of the 60-minute window (the minute it starts in
    // counts whole). Their changes and the per-minute count they went into, moved back.
    let old = Timestamp::from(time::OffsetDateTime::now_utc() - time::Duration::minutes(62));
    conn.execute("UPDATE changes SET at = ?1 WHERE removals > 0", [old])
        .unwrap();
    conn.execute("UPDATE brake_minutes SET minute = minute - 62", [])
        .unwrap();
    set_active(&conn, &t, &users[2], false);
    set_active(&conn, &t, &users[3], false);
    assert_eq!(held(&conn, &t), 0);
    // Two in the window now: the next one is held.
    let more = user(&conn, &t, "v");
    set_active(&conn, &t, &more, false);
    assert_eq!(held(&conn, &t), 1);
}

#[test]
fn the_fraction_of_active_users_raises_the_threshold_above_max_removals() {
    let (_d, conn, t, _) = setup();
    let users: Vec<Stored> = (0..6).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    let half = Settings {
        max_removals: 1,
        max_fraction: 0.5,
        window_minutes: 60,
    };
    let req = patch::parse_request(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": false}]
    }))
    .unwrap();
    for u in &users[..4] {
        within(half, || {
            resources::patch(&conn, &t, ResourceKind::User, &u.id, &req, None)
        })
        .0
        .unwrap();
    }
    // Counted when first needed, at the second deactivation (already applied): 4 active,
    // ceil(0.5 × 4) = 2 > max_removals: two delivered, two held.
    assert_eq!(held(&conn, &t), 2);
    assert_eq!(status(&conn, Some(&t), &half).unwrap()[0].threshold, 1); // 2 active now
}

#[test]
fn a_cancelled_held_removal_no_longer_counts_in_the_window() {
    let (_d, conn, t, _) = setup();
    let users: Vec<Stored> = (0..4).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    let g = group(&conn, &t, "G", &[&users[1], &users[2]]);
    set_active(&conn, &t, &users[0], false); // 1 of 2: delivered
    let both = json!([{"value": users[1].id.as_str()}, {"value": users[2].id.as_str()}]);
    patch_with(
        &conn,
        &t,
        ResourceKind::Group,
        &g.id,
        json!([{"op": "remove", "path": "members", "value": both}]),
    );
    assert_eq!(held(&conn, &t), 1, "1 + 2 removals > 2: held whole");
    // Each add cancels its member's held removal; what is left of it (an update with nothing
    // in it) waits behind the group's held changes, counting nothing.
    add_members(&conn, &t, &g, &[&users[1]]);
    assert_eq!(held(&conn, &t), 2, "u2's removal, and u1's add");
    add_members(&conn, &t, &g, &[&users[2]]);
    assert_eq!(
        held(&conn, &t),
        2,
        "the removal is gone: the two adds' updates"
    );
    // The window holds one removal again (u0's): one more fits under the threshold of 2.
    set_active(&conn, &t, &users[3], false);
    assert_eq!(held(&conn, &t), 2, "a cancelled removal still counted");
    let last = delivered(&conn, &t).pop().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1.as_str()),
        (users[3].id.as_str(), "deactivate")
    );
}

#[test]
fn a_long_episode_keeps_every_write_to_a_bounded_number_of_rows_read() {
    // 400 members removed one PATCH each beyond the threshold, then each added back: every
    // add finds its own held removal by id (not by reading the group's 400 held changes), and
    // the count in the window goes back down as they cancel.
    let (_d, conn, t, _) = setup();
    let users: Vec<Stored> = (0..400)
        .map(|i| user(&conn, &t, &format!("u{i}")))
        .collect();
    let refs: Vec<&Stored> = users.iter().collect();
    let g = group(&conn, &t, "G", &refs);
    for u in &users {
        remove_member(&conn, &t, &g, u);
    }
    assert_eq!(
        held(&conn, &t),
        398,
        "the first two delivered, then one held change each"
    );
    // (delivered, held) removals counted in the window.
    let counted = |conn: &Connection| -> (i64, i64) {
        conn.query_row(
            "SELECT sum(delivered), sum(held) FROM brake_minutes",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!(counted(&conn), (2, 398));
    for u in users.iter().rev() {
        add_members(&conn, &t, &g, &[u]);
    }
    // Every held removal cancelled by its own re-add; the adds themselves wait behind the
    // group's held changes (one held update each, removing nothing).
    assert_eq!(held(&conn, &t), 400);
    assert_eq!(counted(&conn), (2, 0));
    let left: i64 = conn
        .query_row("SELECT count(*) FROM held_removals", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}
