//! The feed's store functions against a real SQLite file.

use super::*;
use crate::scim::patch;
use crate::scim::resource::MemberRef;
use serde_json::json;

fn setup() -> (tempfile::TempDir, Connection, TenantId) {
    let dir = tempfile::tempdir().unwrap();
    let conn = super::super::open_connection(&dir.path().join("t.db")).unwrap();
    let t = super::super::tenants::create(&conn, "acme", None)
        .unwrap()
        .id;
    (dir, conn, t)
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

fn patch_req(body: serde_json::Value) -> patch::PatchRequest {
    patch::parse_request(&body).unwrap()
}

#[test]
fn cursors_round_trip_and_refuse_anything_else() {
    let c = Cursor {
        epoch: "0123456789abcdef".into(),
        seq: 42,
    };
    assert_eq!(Cursor::parse(&c.encode()), Ok(c.clone()));
    for bad in [
        "",
        "42",
        "0123456789abcdef",
        "0123456789abcdef-",
        "0123456789abcdeF-1",
        "0123456789abcdef--1",
        "0123456789abcdef-+1",
        "0123456789abcdef-99999999999999999999999",
        "x-1",
    ] {
        assert!(Cursor::parse(bad).is_err(), "{bad}");
    }
    let s = SnapshotCursor {
        watermark: c,
        kind: ResourceKind::Group,
        seq: 7,
        inside: None,
    };
    assert_eq!(SnapshotCursor::parse(&s.encode()), Ok(s));
    assert!(SnapshotCursor::parse("0123456789abcdef-1-x7").is_err());
    assert!(SnapshotCursor::parse("0123456789abcdef-1-g").is_err());
}

#[test]
fn changes_carry_revisions_ops_and_member_deltas() {
    let (_d, conn, t) = setup();
    let a = user(&conn, &t, "a");
    let b = user(&conn, &t, "b");
    let g = resources::create(
        &conn,
        &t,
        ResourceKind::Group,
        json!({"displayName": "G"}),
        Some(&[MemberRef {
            value: a.id.to_string(),
            kind: None,
        }]),
    )
    .unwrap();
    let add_b = patch_req(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": b.id.as_str()}]}]
    }));
    resources::patch(&conn, &t, ResourceKind::Group, &g.id, &add_b, None).unwrap();
    let off = patch_req(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": "False"}]
    }));
    resources::patch(&conn, &t, ResourceKind::User, &a.id, &off, None).unwrap();
    let on = patch_req(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": true}]
    }));
    resources::patch(&conn, &t, ResourceKind::User, &a.id, &on, None).unwrap();
    resources::delete(&conn, &t, ResourceKind::User, &b.id, None).unwrap();

    let page = changes_after(&conn, &t, None, 100).unwrap();
    type Seen = (String, String, i64, Vec<String>, Vec<String>, bool);
    let got: Vec<Seen> = page
        .changes
        .iter()
        .map(|c| {
            (
                c.id.to_string(),
                c.op.clone(),
                c.revision,
                c.added.clone(),
                c.removed.clone(),
                c.resource.is_some(),
            )
        })
        .collect();
    let (a, b, g) = (a.id.to_string(), b.id.to_string(), g.id.to_string());
    let none = Vec::<String>::new;
    assert_eq!(
        got,
        vec![
            (a.clone(), "create".into(), 1, none(), none(), true),
            (b.clone(), "create".into(), 1, none(), none(), false),
            (g.clone(), "create".into(), 1, vec![a.clone()], none(), true),
            (g.clone(), "update".into(), 2, vec![b.clone()], none(), true),
            (a.clone(), "deactivate".into(), 2, none(), none(), true),
            (a.clone(), "reactivate".into(), 3, none(), none(), true),
            (g.clone(), "update".into(), 3, none(), vec![b.clone()], true),
            (b.clone(), "delete".into(), 2, none(), none(), false),
        ]
    );
    assert!(!page.more);
    // Paging: two at a time reaches the same end.
    let first = changes_after(&conn, &t, None, 2).unwrap();
    assert!(first.more);
    let rest = changes_after(&conn, &t, Some(&first.next_after.encode()), 100).unwrap();
    assert_eq!(rest.changes.len(), 6);
    assert_eq!(rest.next_after, page.next_after);
}

#[test]
fn a_put_records_the_net_member_delta() {
    let (_d, conn, t) = setup();
    let a = user(&conn, &t, "a");
    let b = user(&conn, &t, "b");
    let c = user(&conn, &t, "c");
    let refs = |us: &[&Stored]| -> Vec<MemberRef> {
        us.iter()
            .map(|u| MemberRef {
                value: u.id.to_string(),
                kind: None,
            })
            .collect()
    };
    let g = resources::create(
        &conn,
        &t,
        ResourceKind::Group,
        json!({"displayName": "G"}),
        Some(&refs(&[&a, &b])),
    )
    .unwrap();
    resources::replace(
        &conn,
        &t,
        ResourceKind::Group,
        &g.id,
        json!({"displayName": "G"}),
        Some(&refs(&[&b, &c])),
        None,
    )
    .unwrap();
    let page = changes_after(&conn, &t, None, 100).unwrap();
    let last = page.changes.last().unwrap();
    assert_eq!(last.added, vec![c.id.to_string()]);
    assert_eq!(last.removed, vec![a.id.to_string()]);
}

#[test]
fn cursors_of_another_epoch_or_pruned_are_expired_and_future_ones_invalid() {
    let (_d, conn, t) = setup();
    user(&conn, &t, "a");
    let page = changes_after(&conn, &t, None, 10).unwrap();
    let cursor = page.next_after.encode();
    assert!(changes_after(&conn, &t, Some(&cursor), 10).is_ok());
    let future = Cursor {
        seq: page.next_after.seq + 1,
        ..page.next_after.clone()
    };
    assert!(matches!(
        changes_after(&conn, &t, Some(&future.encode()), 10),
        Err(StoreError::Cursor(CursorError::Invalid(_)))
    ));
    new_epoch(&conn).unwrap();
    assert!(matches!(
        changes_after(&conn, &t, Some(&cursor), 10),
        Err(StoreError::Cursor(CursorError::Expired(_)))
    ));
    let fresh = changes_after(&conn, &t, None, 10).unwrap().next_after;
    conn.execute("UPDATE feed_meta SET pruned_through = ?1", [fresh.seq])
        .unwrap();
    user(&conn, &t, "b");
    let old = Cursor {
        seq: fresh.seq - 1,
        ..fresh.clone()
    };
    assert!(matches!(
        changes_after(&conn, &t, Some(&old.encode()), 10),
        Err(StoreError::Cursor(CursorError::Expired(_)))
    ));
    assert_eq!(
        changes_after(&conn, &t, Some(&fresh.encode()), 10)
            .unwrap()
            .changes
            .len(),
        1
    );
}

#[test]
fn sequence_numbers_never_restart_after_pruning() {
    let (_d, conn, t) = setup();
    user(&conn, &t, "a");
    user(&conn, &t, "b");
    let top: i64 = conn
        .query_row("SELECT max(seq) FROM changes", [], |r| r.get(0))
        .unwrap();
    conn.execute("DELETE FROM changes", []).unwrap();
    user(&conn, &t, "c");
    let next: i64 = conn
        .query_row("SELECT max(seq) FROM changes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(next, top + 1);
}

#[test]
fn retention_prunes_old_changes_read_by_every_recent_consumer_and_never_past_the_hard_limit() {
    let (_d, conn, t) = setup();
    for i in 0..5 {
        user(&conn, &t, &format!("u{i}"));
    }
    let seqs: Vec<i64> = conn
        .prepare("SELECT seq FROM changes ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let day = |d: i64| Timestamp::from(time::OffsetDateTime::now_utc() + time::Duration::days(d));
    // Nothing is older than the retention: nothing goes.
    assert_eq!(prune(&conn, day(-30), day(-90), 100).unwrap(), 0);
    // Everything is old enough, but a consumer has read only through the second change.
    let at = |seq: i64| Cursor {
        epoch: meta(&conn).unwrap().epoch,
        seq,
    };
    record_position(&conn, &t, "reader", &at(seqs[1]).encode()).unwrap();
    assert_eq!(prune(&conn, day(1), day(-90), 100).unwrap(), 2);
    assert_eq!(meta(&conn).unwrap().pruned_through, seqs[1]);
    assert!(matches!(
        changes_after(&conn, &t, Some(&at(seqs[0]).encode()), 10),
        Err(StoreError::Cursor(CursorError::Expired(_)))
    ));
    assert_eq!(
        changes_after(&conn, &t, None, 10).unwrap().changes.len(),
        3,
        "after=0 starts at the oldest retained change"
    );
    // Past the hard limit the slow consumer no longer holds changes back; in chunks.
    assert_eq!(prune(&conn, day(1), day(1), 2).unwrap(), 2);
    assert_eq!(prune(&conn, day(1), day(1), 2).unwrap(), 1);
    assert_eq!(prune(&conn, day(1), day(1), 2).unwrap(), 0);
    assert_eq!(meta(&conn).unwrap().pruned_through, seqs[4]);
    // Sequence numbers go on from where they were.
    user(&conn, &t, "later");
    let page = changes_after(&conn, &t, None, 10).unwrap();
    assert_eq!(page.changes[0].seq, seqs[4] + 1);
}

#[test]
fn snapshot_pages_stop_at_the_member_budget_but_always_carry_one_resource() {
    let (_d, conn, t) = setup();
    let users: Vec<Stored> = (0..4).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    let refs = |n: usize| -> Vec<MemberRef> {
        users[..n]
            .iter()
            .map(|u| MemberRef {
                value: u.id.to_string(),
                kind: None,
            })
            .collect()
    };
    for (name, n) in [("small", 2), ("big", 4), ("also", 1)] {
        resources::create(
            &conn,
            &t,
            ResourceKind::Group,
            json!({"displayName": name}),
            Some(&refs(n)),
        )
        .unwrap();
    }
    // Budget 3 members: [4 users, small], [big's first 3 (a group starts a page when it does
    // not fit)], [big's last 1 (continued), also].
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let page = snapshot_page_within(&conn, &t, cursor.as_deref(), 10, 3).unwrap();
        pages.push((
            page.continues,
            page.resources
                .iter()
                .map(|(s, m)| (s.kind, m.as_ref().map_or(0, Vec::len)))
                .collect::<Vec<_>>(),
        ));
        match page.next {
            Some(n) => cursor = Some(n.encode()),
            None => break,
        }
    }
    let u = (ResourceKind::User, 0);
    let g = |n| (ResourceKind::Group, n);
    assert_eq!(
        pages,
        vec![
            (false, vec![u, u, u, u, g(2)]),
            (false, vec![g(3)]),
            (true, vec![g(1), g(1)]),
        ]
    );
}

/// A group larger than the member budget comes in slices, read at different times while its
/// members change. A consumer that adds a continued group's members and keeps the revision of
/// its first appearance, then applies the changes after the watermark by revision, ends with
/// exactly the group's members.
#[test]
fn a_group_split_across_snapshot_pages_replays_to_its_members_under_writes_between_pages() {
    let (_d, conn, t) = setup();
    let users: Vec<Stored> = (0..9).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    let refs: Vec<MemberRef> = users[..7]
        .iter()
        .map(|u| MemberRef {
            value: u.id.to_string(),
            kind: None,
        })
        .collect();
    let g = resources::create(
        &conn,
        &t,
        ResourceKind::Group,
        json!({"displayName": "big"}),
        Some(&refs),
    )
    .unwrap();
    let members_op = |op: &str, who: &Stored| {
        let req = patch_req(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": op, "path": "members", "value": [{"value": who.id.as_str()}]}]
        }));
        resources::patch(&conn, &t, ResourceKind::Group, &g.id, &req, None).unwrap();
    };
    let mut held: std::collections::BTreeSet<String> = Default::default();
    let mut revision = None;
    let mut watermark;
    let mut cursor: Option<String> = None;
    let mut page_no = 0;
    loop {
        // Budget 3 with count 1: the 9 users one per page, then the group in slices of 3.
        let page = snapshot_page_within(&conn, &t, cursor.as_deref(), 1, 3).unwrap();
        watermark = page.watermark.encode();
        for (i, (s, m)) in page.resources.iter().enumerate() {
            if s.kind != ResourceKind::Group {
                continue;
            }
            let ids = m.as_ref().unwrap().iter().map(|m| m.id.to_string());
            if page.continues && i == 0 {
                held.extend(ids);
            } else {
                held = ids.collect();
                revision = Some(s.version.0);
            }
        }
        page_no += 1;
        match page_no {
            // After the group's first slice: remove one already sent, one still to come, and add
            // one; after the second slice, add one that sorts before the slice.
            10 => {
                members_op("remove", &users[1]);
                members_op("remove", &users[5]);
                members_op("add", &users[7]);
            }
            11 => members_op("add", &users[8]),
            _ => {}
        }
        match page.next {
            Some(n) => cursor = Some(n.encode()),
            None => break,
        }
    }
    // 9 user pages, the group in 3 slices, and (count 1 being filled) an empty last page.
    assert_eq!(page_no, 13);
    let revision = revision.unwrap();
    let changes = changes_after(&conn, &t, Some(&watermark), 100).unwrap();
    for c in changes.changes.iter().filter(|c| c.id == g.id) {
        if c.revision > revision {
            held.extend(c.added.iter().cloned());
            for r in &c.removed {
                held.remove(r);
            }
        }
    }
    let live: std::collections::BTreeSet<String> = resources::members(&conn, g.seq)
        .unwrap()
        .into_iter()
        .map(|m| m.id.to_string())
        .collect();
    assert_eq!(held, live);
    assert_eq!(live.len(), 7);
}

#[test]
fn snapshot_cursors_inside_a_group_round_trip_and_refuse_a_user_position() {
    let watermark = Cursor {
        epoch: "0123456789abcdef".into(),
        seq: 9,
    };
    for inside in [
        None,
        Some(MemberPosition::Seq(17)),
        Some(MemberPosition::Offset(3)),
    ] {
        let c = SnapshotCursor {
            watermark: watermark.clone(),
            kind: ResourceKind::Group,
            seq: 12,
            inside,
        };
        assert_eq!(SnapshotCursor::parse(&c.encode()), Ok(c));
    }
    for bad in ["u12m3", "g12m", "g12x3", "gm3", "g12m3o4", "g12o-1"] {
        let text = format!("{}-{bad}", watermark.encode());
        assert!(SnapshotCursor::parse(&text).is_err(), "{text}");
    }
}

#[test]
fn snapshot_pages_keep_their_watermark_and_cover_users_then_groups() {
    let (_d, conn, t) = setup();
    let users: Vec<Stored> = (0..5).map(|i| user(&conn, &t, &format!("u{i}"))).collect();
    resources::create(
        &conn,
        &t,
        ResourceKind::Group,
        json!({"displayName": "G"}),
        Some(&[MemberRef {
            value: users[0].id.to_string(),
            kind: None,
        }]),
    )
    .unwrap();
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    let mut marks = Vec::new();
    loop {
        let page = snapshot_page(&conn, &t, cursor.as_deref(), 2).unwrap();
        marks.push(page.watermark.clone());
        // A write between pages moves nothing of the snapshot's watermark.
        user(&conn, &t, &format!("late{}", seen.len()));
        for (s, m) in &page.resources {
            seen.push((s.kind, m.as_ref().map(Vec::len)));
        }
        match page.next {
            Some(next) => cursor = Some(next.encode()),
            None => break,
        }
    }
    assert!(marks.windows(2).all(|w| w[0] == w[1]));
    let users_seen = seen
        .iter()
        .filter(|(k, _)| *k == ResourceKind::User)
        .count();
    assert!(users_seen >= 5, "{seen:?}");
    assert_eq!(
        seen.last(),
        Some(&(ResourceKind::Group, Some(1))),
        "groups come last, with their members"
    );
}
