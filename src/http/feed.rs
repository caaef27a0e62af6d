//! The change feed under `/feed/v1/` (docs/feed.md): `GET changes` (with long-poll),
//! `GET snapshot`, `PUT position`. Thin: parameters in, `store::feed` reads, JSON out. Only a
//! credential with scope `feed.read` gets an answer (any other: 403).
//!
//! A long-poll holds nothing while it waits: each attempt is one read transaction (with the
//! tenant's read slot), then the request sleeps on the writer's commit signal
//! (`Store::commits`) until something commits or its `wait` ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::Response;
use rusqlite::Connection;
use serde_json::{json, Map, Value};

use super::auth::{self, Refusal};
use super::errors::scim_error;
use super::resources::{member_json, render_with, Ctx, Handled};
use super::response::{self, Body};
use crate::auth::{Claimed, Permission, Principal, TokenError};
use crate::domain::TenantId;
use crate::scim::error::ScimError;
use crate::scim::render::Projection;
use crate::scim::schema::ResourceKind;
use crate::store::feed::{self, Change, ChangesPage, SnapshotPage, MAX_PAGE};
use crate::store::resources::{Member, Stored};
use crate::store::{self as storage};

/// The path prefix of the feed (not below `server.base_path`).
pub const PREFIX: &str = "/feed/v1";

/// Longest `wait` of a long-poll, seconds; the router allows a `changes` request this much
/// beyond `limits.request_timeout_secs`.
pub const MAX_WAIT_SECS: u64 = 60;

/// Page size when the request names none.
const DEFAULT_PAGE: usize = 100;

/// How often a waiting long-poll looks again even without a commit signal (a write by the CLI,
/// another process, signals nothing: `brake release` appends changes that way).
const RECHECK: Duration = Duration::from_secs(1);

fn forbidden() -> ScimError {
    ScimError::forbidden(
        "This credential's scope does not allow reading the change feed (it needs scope \
         feed.read)",
    )
}

/// A non-negative integer parameter: absent → `default`; above `max` → `max` (a client asking
/// for more gets the most the server gives); anything else → 400.
fn number(ctx: &Ctx, name: &str, default: u64, max: u64) -> Result<u64, ScimError> {
    match ctx.param(name) {
        None | Some("") => Ok(default),
        Some(text) if text.bytes().all(|b| b.is_ascii_digit()) => {
            // All digits: too many of them is simply "a lot".
            Ok(text.parse::<u64>().unwrap_or(u64::MAX).min(max))
        }
        Some(_) => Err(ScimError::invalid_value(format!(
            "{name} must be a non-negative integer"
        ))),
    }
}

/// Run a read for a claim that must be a `feed.read` credential: the token's database check
/// first, in the same read transaction; `f` runs only for a principal that may read the feed.
async fn read_feed<T, F>(
    ctx: &Ctx,
    claimed: &Claimed,
    f: F,
) -> Result<(Principal, Result<T, ScimError>), Handled>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &TenantId) -> storage::Result<T> + Send + 'static,
{
    let _slot = ctx.app.tenant_reads.enter(claimed.tenant()).await;
    let claim = claimed.clone();
    type Confirmed<T> = Result<(Principal, Option<storage::Result<T>>), TokenError>;
    let job = move |conn: &Connection| -> storage::Result<Confirmed<T>> {
        Ok(claim.confirm(conn)?.map(|who| {
            let value = who.may(Permission::ReadFeed).then(|| f(conn, who.tenant()));
            (who, value)
        }))
    };
    match ctx.app.store.read(job).await {
        Err(e) => Err(Handled::Refused(Refusal::Unavailable(scim_error(e)))),
        Ok(Err(why)) => Err(Handled::Refused(Refusal::Token(why))),
        Ok(Ok((who, value))) => {
            auth::accepted(&ctx.app, ctx.draft(), &who);
            let value = match value {
                None => Err(forbidden()),
                Some(v) => v.map_err(scim_error),
            };
            Ok((who, value))
        }
    }
}

/// `GET /feed/v1/{changes|snapshot}`, on behalf of a claim.
pub async fn get(ctx: &Ctx, claimed: &Claimed, segs: &[&str]) -> Handled {
    let outcome = match segs {
        ["changes"] => changes(ctx, claimed).await,
        ["snapshot"] => snapshot(ctx, claimed).await,
        ["position"] => Err(ScimError::method_not_allowed("position takes PUT").into()),
        _ => Err(ScimError::not_found("no such feed endpoint").into()),
    };
    outcome.unwrap_or_else(|handled| handled)
}

/// `GET /feed/v1/changes?after=&limit=&wait=`.
async fn changes(ctx: &Ctx, claimed: &Claimed) -> Result<Handled, Handled> {
    let limit = number(ctx, "limit", DEFAULT_PAGE as u64, MAX_PAGE as u64)? as usize;
    let wait = number(ctx, "wait", 0, MAX_WAIT_SECS)?;
    let after = ctx.param("after").map(str::to_string);
    let until = Instant::now() + Duration::from_secs(wait);
    let mut commits = ctx.app.store.commits();
    loop {
        // Marked seen before the read: a commit after this point wakes the wait below.
        commits.borrow_and_update();
        let after = after.clone();
        let (who, page) = read_feed(ctx, claimed, move |conn, tenant| {
            feed::changes_after(conn, tenant, after.as_deref(), limit)
        })
        .await?;
        let now = Instant::now();
        match page {
            Ok(page) if page.changes.is_empty() && now < until => {}
            Ok(page) => {
                let body = render_changes(ctx, page);
                return Ok(Handled::Confirmed(who, Ok(response::json(200, &body))));
            }
            Err(e) => return Ok(Handled::Confirmed(who, Err(e))),
        }
        // Nothing yet: wait for a commit, holding no read connection, slot or transaction.
        drop(who);
        let left = until.saturating_duration_since(now).min(RECHECK);
        let _ = tokio::time::timeout(left, commits.changed()).await;
    }
}

fn render_changes(ctx: &Ctx, page: ChangesPage) -> Value {
    let changes: Vec<Value> = page
        .changes
        .into_iter()
        .map(|c| render_change(ctx, &page.next_after.epoch, c))
        .collect();
    json!({
        "changes": changes,
        "nextAfter": page.next_after.encode(),
        "moreAvailable": page.more,
    })
}

fn render_change(ctx: &Ctx, epoch: &str, c: Change) -> Value {
    let cursor = feed::Cursor {
        epoch: epoch.to_string(),
        seq: c.seq,
    };
    let external_id = c
        .resource
        .as_ref()
        .and_then(|s| s.doc.get("externalId").cloned())
        .unwrap_or(Value::Null);
    let deleted = c.op == "delete";
    let mut out = Map::new();
    out.insert("seq".into(), cursor.encode().into());
    out.insert("time".into(), c.at.to_rfc3339().into());
    out.insert("resourceType".into(), c.kind.name().into());
    out.insert("id".into(), c.id.as_str().into());
    out.insert("externalId".into(), external_id);
    out.insert("op".into(), c.op.clone().into());
    out.insert(
        "version".into(),
        match deleted {
            true => Value::Null,
            false => crate::domain::Version(c.revision).etag().into(),
        },
    );
    out.insert("revision".into(), c.revision.into());
    let resource = match c.resource {
        Some(s) if !deleted => render_resource(ctx, s, None),
        _ => Value::Null,
    };
    out.insert("resource".into(), resource);
    if c.kind == ResourceKind::Group {
        out.insert(
            "members".into(),
            json!({"added": c.added, "removed": c.removed}),
        );
    }
    Value::Object(out)
}

/// A resource as the feed sends it: the SCIM resource (a group's `members` only when given;
/// never a user's `groups`, which follow from the groups' members), with its revision in
/// `meta.revision`.
fn render_resource(ctx: &Ctx, s: Stored, members: Option<Vec<Member>>) -> Value {
    let revision = s.version.0;
    let mut v = render_with(ctx, s, members, &Projection::default());
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.insert("revision".into(), revision.into());
    }
    v
}

/// `GET /feed/v1/snapshot?cursor=&count=`.
async fn snapshot(ctx: &Ctx, claimed: &Claimed) -> Result<Handled, Handled> {
    let count = number(ctx, "count", DEFAULT_PAGE as u64, MAX_PAGE as u64)? as usize;
    let cursor = ctx.param("cursor").map(str::to_string);
    let (who, page) = read_feed(ctx, claimed, move |conn, tenant| {
        feed::snapshot_page(conn, tenant, cursor.as_deref(), count)
    })
    .await?;
    let answer = page.map(|page| response::json_bytes(200, render_snapshot(ctx, page)));
    Ok(Handled::Confirmed(who, answer))
}

/// The snapshot page's JSON, written one resource — and one group member — at a time (a page
/// holds up to `SNAPSHOT_MEMBER_BUDGET` members; as `Value`s they would cost several times
/// their JSON).
fn render_snapshot(ctx: &Ctx, page: SnapshotPage) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * 1024);
    out.extend_from_slice(b"{\"watermark\":");
    write_json(&mut out, &Value::from(page.watermark.encode()));
    if page.continues {
        out.extend_from_slice(b",\"continues\":true");
    }
    out.extend_from_slice(b",\"resources\":[");
    for (i, (s, members)) in page.resources.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let resource = render_resource(ctx, s, None);
        match members {
            None => write_json(&mut out, &resource),
            Some(members) => {
                // The group without members, its closing brace replaced by the members array.
                write_json(&mut out, &resource);
                if out.last() == Some(&b'}') {
                    out.pop();
                    out.extend_from_slice(b",\"members\":[");
                    for (j, m) in members.iter().enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        write_json(&mut out, &member_json(ctx, m, false));
                    }
                    out.extend_from_slice(b"]}");
                }
            }
        }
    }
    out.push(b']');
    if let Some(next) = page.next {
        out.extend_from_slice(b",\"nextCursor\":");
        write_json(&mut out, &Value::from(next.encode()));
    }
    out.push(b'}');
    out
}

/// Append `v` as JSON (writing into a `Vec` cannot fail).
fn write_json(out: &mut Vec<u8>, v: &Value) {
    let _ = serde_json::to_writer(&mut *out, v);
}

/// `PUT /feed/v1/position` `{"after": "…"}`: the calling consumer has read through `after`.
/// Keyed by the long-lived token's id or the OAuth client's id.
pub async fn put_position(
    app: &Arc<crate::app::App>,
    who: &Principal,
    body: Value,
) -> Result<Response<Body>, ScimError> {
    if !who.may(Permission::ReadFeed) {
        return Err(forbidden());
    }
    let after = body
        .get("after")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_value("the body must be {\"after\": \"<cursor>\"}"))?
        .to_string();
    if after.len() > 64 {
        return Err(ScimError::invalid_cursor(
            "the cursor is not one this server made",
        ));
    }
    let tenant = who.tenant().clone();
    let consumer = who.credential().id().to_string();
    let text = after.clone();
    app.store
        .write(move |conn| feed::record_position(conn, &tenant, &consumer, &text))
        .await
        .map_err(scim_error)?;
    Ok(response::json(200, &json!({ "after": after })))
}
