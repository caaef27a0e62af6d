//! The pages, rendered from hand-made data: hostile text comes out escaped, and the highlights
//! (Entra silent for two cycles, credentials expiring within 14 days) follow "now".

use time::macros::datetime;

use super::*;
use crate::store::dashboard::{Change, HourCount, Match, RecentChange};
use crate::store::stats::TenantCounts;

const HOSTILE: [&str; 2] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
];

fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn tenant(last: &str) -> TenantOverview {
    TenantOverview {
        name: "contoso".into(),
        id: TenantId::new("t1"),
        counts: TenantCounts {
            users: 3,
            active_users: 2,
            groups: 1,
            memberships: 2,
        },
        last_request: Some(ts(last)),
        tokens: vec![
            TokenExpiry {
                id: "tok-soon".into(),
                label: Some(HOSTILE[0].into()),
                scopes: "scim".into(),
                expires: Some(ts("2026-12-15T00:00:00Z")),
                last_request: None,
            },
            TokenExpiry {
                id: "tok-later".into(),
                label: None,
                scopes: "scim".into(),
                expires: Some(ts("2027-06-01T00:00:00Z")),
                last_request: None,
            },
        ],
        clients: vec![],
        hours: vec![HourCount {
            hour: "2026-12-05T07".into(),
            class: 4,
            n: 2,
        }],
        failures: vec![LoggedRequest {
            at: ts("2026-12-05T07:00:00Z"),
            tenant: None,
            method: "POST".into(),
            path: "/api/scim/Users".into(),
            resource_id: None,
            status: 409,
            scim_type: Some("uniqueness".into()),
            detail: Some(format!("userName {} is taken", HOSTILE[1])),
            diff: None,
        }],
        recent: vec![RecentChange {
            at: ts("2026-12-05T07:00:00Z"),
            kind: "User".into(),
            resource_id: HOSTILE[1].into(),
            operation: "create".into(),
            user_name: Some(HOSTILE[0].into()),
            display_name: Some(HOSTILE[1].into()),
        }],
    }
}

fn assert_no_injected_markup(html: &str) {
    for h in HOSTILE {
        assert!(!html.contains(h), "raw {h:?} in the page");
    }
    assert!(!html.contains("<script"));
    assert!(!html.contains("<img"));
}

#[test]
fn overview_escapes_and_highlights() {
    let now = datetime!(2026-12-05 07:30 UTC);
    let o = Overview {
        tenants: vec![tenant("2026-12-05T07:10:00Z")],
    };
    let html = overview(&o, &HashMap::new(), now);
    assert_no_injected_markup(&html);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("data-count=\"inactive\">1<"));
    assert!(html.contains("data-silent=\"false\""));
    assert!(html.contains("data-total=\"4xx\">2<"));
    assert_eq!(html.matches("data-expiring=\"true\"").count(), 1, "{html}");
    assert!(html.contains("uniqueness"));
    // Sections of features not in this build are left out.
    assert!(!html.contains("Change-feed consumers"));
    // Silent for more than two cycles: highlighted.
    let o = Overview {
        tenants: vec![tenant("2026-12-05T06:09:00Z")],
    };
    let html = overview(&o, &HashMap::new(), now);
    assert!(html.contains("data-silent=\"true\""));
}

#[test]
fn pending_sections_render_when_fed() {
    let now = datetime!(2026-12-05 07:30 UTC);
    let o = Overview {
        tenants: vec![tenant("2026-12-05T07:10:00Z")],
    };
    let extras = HashMap::from([(
        TenantId::new("t1"),
        TenantExtras {
            consumers: Some(vec![FeedConsumer {
                name: HOSTILE[0].into(),
                lag: 12,
                last_read: None,
            }]),
            held: Some(vec![HeldChange {
                at: ts("2026-12-05T07:00:00Z"),
                kind: "User".into(),
                resource_id: HOSTILE[1].into(),
                operation: "delete".into(),
            }]),
            held_total: 1,
        },
    )]);
    let html = overview(&o, &extras, now);
    assert_no_injected_markup(&html);
    assert!(html.contains("Change-feed consumers"));
    assert!(html.contains("Held by the deletion brake"));
}

#[test]
fn history_escapes_the_query_and_every_row() {
    let now = datetime!(2026-12-05 07:30 UTC);
    let h = History {
        matches: vec![Match {
            tenant: "contoso".into(),
            kind: "User".into(),
            id: "u1".into(),
            name: Some(HOSTILE[0].into()),
        }],
        changes: vec![Change {
            at: ts("2026-12-05T07:00:00Z"),
            tenant: Some("contoso".into()),
            kind: "User".into(),
            resource_id: "u1".into(),
            operation: "create".into(),
            revision: Some(1),
        }],
        requests: vec![LoggedRequest {
            at: ts("2026-12-05T07:00:00Z"),
            tenant: Some("contoso".into()),
            method: "PATCH".into(),
            path: "/api/scim/Users/u1".into(),
            resource_id: Some("u1".into()),
            status: 200,
            scim_type: None,
            detail: None,
            diff: Some(crate::scim::diff::Diff {
                op: "update".into(),
                changes: vec![crate::scim::diff::AttrChange {
                    attr: "displayName".into(),
                    from: Some(HOSTILE[0].into()),
                    to: Some(HOSTILE[1].into()),
                }],
                more: 2,
                members: Some(crate::scim::diff::MemberChanges::of(&[HOSTILE[1]], &[])),
            }),
        }],
    };
    let html = history(HOSTILE[1], Ok(&h), now);
    assert_no_injected_markup(&html);
    assert!(html.contains("value=\"&quot;&gt;&lt;img"));
    // The write's diff, escaped: before → after, what was not listed, members added.
    assert!(
        html.contains("<li><code>displayName</code>: &quot;&lt;script&gt;"),
        "{html}"
    );
    assert!(html.contains("… and 2 more attribute(s)"));
    assert!(html.contains("<li>members added (1): &quot;&gt;&lt;img"));
    let refused = history(HOSTILE[0], Err("too long"), now);
    assert_no_injected_markup(&refused);
}
