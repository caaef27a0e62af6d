//! RFC 9865 cursor paging of `GET /Users`, `GET /Groups` (and their `.search`): the cursor's
//! codec and the list glue (docs/pagination.md). Index paging (`startIndex`, what Entra uses)
//! stays in `resources` and is the default.
//!
//! A walk is a keyset walk in `seq` (creation) order: each page is an index seek to the last
//! row of the page before, never an OFFSET, so a page deep in a million users costs what the
//! first does. The cursor names that row: the database's epoch and the row's `seq`, in the
//! change feed's own cursor text (`store::feed::Cursor`: a restore makes it expired, as it
//! does the feed's), and the walk's `totalResults`, with the resource type, under a version
//! byte and a tag (HMAC-SHA256 with a key derived from the signing key,
//! `SigningKey::cursor_tag`) over all of it and the tenant it was made for. The total is
//! counted once, for the first page, and carried: counting a million matches on every page
//! would make each page cost what the whole walk costs (34 ms of server CPU per page at 1M
//! users, against an index seek). Another tenant's cursor, one of `/Users` sent to `/Groups`, or any byte
//! changed is `invalidCursor`; a cursor carries no access of its own either way (the walk is
//! always of the caller's tenant). Cursors do not time out.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rusqlite::Connection;
use serde_json::Value;

use super::list::{with_related, PageRows};
use super::resources::{read_as, read_confirming, render_with, Ctx, Handled};
use super::response::{self, Body};
use crate::auth::{Claimed, Principal, SigningKey, CURSOR_TAG_LEN};
use crate::domain::TenantId;
use crate::scim::error::ScimError;
use crate::scim::list::{self, ListRequest};
use crate::scim::schema::ResourceKind;
use crate::store as storage;
use crate::store::feed::{self, CursorError};
use crate::store::resources as store;

/// Longest cursor text read at all: ours are under 70 characters. Anything longer is refused
/// before it is decoded.
pub const MAX_CURSOR_LEN: usize = 128;

/// The cursor format's version (first byte).
const VERSION: u8 = 1;

const NOT_OURS: &str = "the cursor is not one this server made for this tenant and resource \
                        type; send cursor= (empty) for the first page, then each page's nextCursor";

fn kind_byte(kind: ResourceKind) -> u8 {
    match kind {
        ResourceKind::User => b'u',
        ResourceKind::Group => b'g',
    }
}

/// What the tag covers: the version, the tenant, the resource type and the position.
fn message(tenant: &TenantId, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(tenant.as_str().len() + body.len() + 1);
    m.extend_from_slice(tenant.as_str().as_bytes());
    m.push(0);
    m.extend_from_slice(body);
    m
}

/// Where a walk is: after the resource at `at` (its epoch and `seq`), in a walk whose first
/// page counted `total` matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub at: feed::Cursor,
    pub total: usize,
}

/// The cursor of `position` in a walk of the tenant's `kind`.
pub fn encode(
    key: &SigningKey,
    tenant: &TenantId,
    kind: ResourceKind,
    position: &Position,
) -> String {
    let mut bytes = vec![VERSION, kind_byte(kind)];
    let text = format!("{}/{}", position.at.encode(), position.total);
    bytes.extend_from_slice(text.as_bytes());
    let tag = key.cursor_tag(&message(tenant, &bytes));
    bytes.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Read a cursor a client sent for a walk of the tenant's `kind`: the position after which the
/// next page starts. Its epoch is checked against the database in the page's read.
pub fn decode(
    key: &SigningKey,
    tenant: &TenantId,
    kind: ResourceKind,
    text: &str,
) -> Result<Position, ScimError> {
    let bad = || ScimError::invalid_cursor(NOT_OURS);
    if text.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let Some(split) = bytes.len().checked_sub(CURSOR_TAG_LEN).filter(|&n| n > 2) else {
        return Err(bad());
    };
    let (body, tag) = bytes.split_at(split);
    if !key.cursor_tag_matches(&message(tenant, body), tag) {
        return Err(bad());
    }
    if body[0] != VERSION || body[1] != kind_byte(kind) {
        return Err(bad());
    }
    let text = std::str::from_utf8(&body[2..]).map_err(|_| bad())?;
    let (at, total) = text.split_once('/').ok_or_else(bad)?;
    Ok(Position {
        at: feed::Cursor::parse(at).map_err(|_| bad())?,
        total: total.parse().map_err(|_| bad())?,
    })
}

/// A cursor page as read: the walk's total, the page (each resource with its members/groups
/// when wanted), and the position of the next page if there is one.
struct CursorPage {
    total: usize,
    rows: PageRows,
    next: Option<Position>,
}

/// The read of one cursor page. `after`: None for the first page. A cursor from before a
/// restore is `expiredCursor` with 400 (RFC 9865), where the change feed's is 410.
fn page_read(
    kind: ResourceKind,
    req: &ListRequest,
    after: Option<Position>,
    member_budget: usize,
) -> impl FnOnce(&Connection, &TenantId) -> storage::Result<Result<CursorPage, ScimError>> + Send + 'static
{
    let (filter, proj, count) = (req.filter.clone(), req.projection.clone(), req.count);
    move |conn: &Connection, tenant: &TenantId| {
        let epoch = feed::epoch(conn)?;
        let (from, total) = match &after {
            None => (0, None),
            Some(p) => match feed::check_epoch(&epoch, &p.at.epoch) {
                Ok(()) => (p.at.seq, Some(p.total)),
                Err(CursorError::Expired(why) | CursorError::Invalid(why)) => {
                    return Ok(Err(ScimError::expired_page_cursor(why)))
                }
            },
        };
        let page = store::list_after(conn, tenant, kind, filter.as_ref(), from, count, total)?;
        let fetched = page.rows.len();
        // Never a point read: the inline limit does not apply, so this is always Some.
        let rows = with_related(conn, page.rows, &proj, false, member_budget)?.unwrap_or_default();
        // The member budget may end the page early: the next one starts after the last row
        // sent, so nothing is skipped.
        let more = page.more || rows.len() < fetched;
        let next = more.then(|| Position {
            at: feed::Cursor {
                epoch,
                seq: rows.last().map_or(from, |(s, _)| s.seq),
            },
            total: page.total,
        });
        Ok(Ok(CursorPage {
            total: page.total,
            rows,
            next,
        }))
    }
}

fn render(
    ctx: &Ctx,
    tenant: &TenantId,
    kind: ResourceKind,
    req: &ListRequest,
    page: CursorPage,
) -> Value {
    let next = page.next.map(|at| encode(&ctx.app.key, tenant, kind, &at));
    let resources = page
        .rows
        .into_iter()
        .map(|(s, related)| render_with(ctx, s, related, &req.projection))
        .collect();
    list::cursor_response(page.total, resources, next)
}

fn start(
    ctx: &Ctx,
    tenant: &TenantId,
    kind: ResourceKind,
    req: &ListRequest,
) -> Result<Option<Position>, ScimError> {
    match req.cursor.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => decode(&ctx.app.key, tenant, kind, text).map(Some),
    }
}

/// `GET /Users?cursor=…`, `GET /Groups?cursor=…`: the token is checked in the page's own read.
/// A bad cursor is answered (400) only once the token is confirmed, like every other answer.
pub async fn list(
    ctx: &Ctx,
    claimed: &Claimed,
    kind: ResourceKind,
    req: ListRequest,
) -> Result<Handled, Handled> {
    let after = start(ctx, claimed.tenant(), kind, &req)?;
    let budget = ctx.app.config.limits.max_members_per_page;
    let read = page_read(kind, &req, after, budget);
    let (who, page) = read_confirming(ctx, claimed, false, read).await?;
    let answer = page
        .and_then(|page| page)
        .map(|page| response::json(200, &render(ctx, who.tenant(), kind, &req, page)));
    Ok(Handled::Confirmed(who, answer))
}

/// `POST /Users/.search`, `POST /Groups/.search` with a `cursor`.
pub async fn search(
    ctx: &Ctx,
    who: &Principal,
    kind: ResourceKind,
    req: ListRequest,
) -> Result<hyper::Response<Body>, ScimError> {
    let after = start(ctx, who.tenant(), kind, &req)?;
    let budget = ctx.app.config.limits.max_members_per_page;
    let page = read_as(ctx, who, false, page_read(kind, &req, after, budget)).await??;
    Ok(response::json(
        200,
        &render(ctx, who.tenant(), kind, &req, page),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::error::ScimType;

    use crate::auth::test_key as key;

    fn at(seq: i64) -> Position {
        Position {
            at: feed::Cursor {
                epoch: "0123456789abcdef".into(),
                seq,
            },
            total: 2_503,
        }
    }

    fn invalid(r: Result<Position, ScimError>) -> bool {
        matches!(r, Err(e) if e.status == 400 && e.scim_type == Some(ScimType::InvalidCursor))
    }

    #[test]
    fn a_cursor_reads_back_as_the_position_it_was_made_for() {
        let (_dir, key) = key();
        let tenant = TenantId::new("t1");
        for seq in [0, 1, 2_503, i64::MAX] {
            let text = encode(&key, &tenant, ResourceKind::User, &at(seq));
            assert!(text.len() <= MAX_CURSOR_LEN, "{text}");
            assert!(text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(
                decode(&key, &tenant, ResourceKind::User, &text).unwrap(),
                at(seq)
            );
        }
    }

    #[test]
    fn another_tenants_type_or_key_makes_the_cursor_invalid() {
        let (_dir, key) = key();
        let (_dir2, other_key) = crate::auth::test_key();
        let tenant = TenantId::new("t1");
        let text = encode(&key, &tenant, ResourceKind::User, &at(42));
        assert!(invalid(decode(
            &key,
            &TenantId::new("t2"),
            ResourceKind::User,
            &text
        )));
        assert!(invalid(decode(&key, &tenant, ResourceKind::Group, &text)));
        assert!(invalid(decode(
            &other_key,
            &tenant,
            ResourceKind::User,
            &text
        )));
    }

    #[test]
    fn a_changed_byte_garbage_or_a_huge_cursor_is_invalid() {
        let (_dir, key) = key();
        let tenant = TenantId::new("t1");
        let text = encode(&key, &tenant, ResourceKind::Group, &at(7));
        let mut bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            let forged = URL_SAFE_NO_PAD.encode(&bytes);
            assert!(
                invalid(decode(&key, &tenant, ResourceKind::Group, &forged)),
                "byte {i}"
            );
            bytes[i] ^= 1;
        }
        // A position the server never signed, in the feed's plain cursor text.
        let plain = at(7).at.encode();
        for bad in [
            "",
            "x",
            "!!!!",
            plain.as_str(),
            &"A".repeat(MAX_CURSOR_LEN + 1),
        ] {
            assert!(
                invalid(decode(&key, &tenant, ResourceKind::Group, bad)),
                "{bad}"
            );
        }
    }
}
