//! List reads of `/Users` and `/Groups`: `GET` with index paging, `POST …/.search` and the
//! root `POST /.search`. Kept apart from the per-resource handlers in `resources` because a
//! list has its own concerns: point-lookup vs. blocking-thread reads, and the member budget that
//! ends a page of groups early. Cursor paging (RFC 9865) is handed to `paging`.

use hyper::Response;
use rusqlite::Connection;
use serde_json::Value;

use super::paging;
use super::resources::{
    heavy_related, read_as, read_confirming, related_rows, render_with, wants_related, Ctx,
    Handled, Related,
};
use super::response::{self, Body};
use crate::auth::{Claimed, Principal};
use crate::domain::TenantId;
use crate::scim::error::{ScimError, ScimType};
use crate::scim::list::{self, ListParams, ListRequest};
use crate::scim::render::Projection;
use crate::scim::schema::ResourceKind;
use crate::store::resources::{self as store, ListQuery, Member, Stored};
use crate::store::{self as storage, query};

/// A page's resources, each with its members/groups when wanted.
pub(super) type PageRows = Vec<(Stored, Option<Vec<Member>>)>;

/// One page of a list: the total and its resources.
type Page = (usize, PageRows);

/// What a list read came to: a page, or (only in a point read) a resource with more
/// members/groups than a point read fetches inline — then the page is read again on a blocking
/// thread.
enum PageRead {
    Page(Page),
    TooManyInline,
}

/// The read of one list query for a resource type, and whether it is a point lookup (runs on
/// the calling thread).
#[allow(clippy::type_complexity)]
fn list_read(
    kind: ResourceKind,
    req: &ListRequest,
    start: usize,
    count: usize,
    member_budget: usize,
) -> Result<
    (
        bool,
        impl FnOnce(&Connection, &TenantId) -> storage::Result<PageRead> + Send + 'static,
    ),
    ScimError,
> {
    list_read_as(kind, req, start, count, member_budget, None)
}

/// `list_read`, with `point` forced (`Some(false)`: on a blocking thread whatever the filter).
#[allow(clippy::type_complexity)]
fn list_read_as(
    kind: ResourceKind,
    req: &ListRequest,
    start: usize,
    count: usize,
    member_budget: usize,
    point: Option<bool>,
) -> Result<
    (
        bool,
        impl FnOnce(&Connection, &TenantId) -> storage::Result<PageRead> + Send + 'static,
    ),
    ScimError,
> {
    let rt = kind.resource_type();
    let sort = match &req.sort_by {
        Some(p) => Some((query::sort_expression(p, rt)?, req.descending)),
        None => None,
    };
    let q = ListQuery {
        filter: req.filter.clone(),
        sort,
        start_index: start,
        count,
    };
    let proj = req.projection.clone();
    let point = point.unwrap_or_else(|| {
        req.filter
            .as_ref()
            .is_some_and(|f| query::is_point_lookup(f, rt))
            && !heavy_related(kind, &req.projection)
    });
    // One read for the page and, when wanted, each resource's members/groups. Groups' members
    // count against `member_budget`: a page ends early (never inside a group) once the next
    // group would take it past the budget, and `itemsPerPage` tells the client where to go on.
    let page = move |conn: &Connection, tenant: &TenantId| {
        let (total, rows) = store::list(conn, tenant, kind, &q)?;
        Ok(
            match with_related(conn, rows, &proj, point, member_budget)? {
                Some(out) => PageRead::Page((total, out)),
                None => PageRead::TooManyInline,
            },
        )
    };
    Ok((point, page))
}

/// A page's resources, each with its members/groups when the projection wants them. Groups'
/// members count against `member_budget`: the page ends early (never inside a group, and never
/// before its first resource) once the next group would take it past the budget. None: a point
/// read met a resource with more related rows than it fetches inline.
pub(super) fn with_related(
    conn: &Connection,
    rows: Vec<Stored>,
    proj: &Projection,
    point: bool,
    member_budget: usize,
) -> storage::Result<Option<PageRows>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut members = 0usize;
    for s in rows {
        if s.kind == ResourceKind::Group && wants_related(&s, proj) {
            members += storage::stats::member_count(conn, s.seq)?;
            if members > member_budget && !out.is_empty() {
                break;
            }
        }
        match related_rows(conn, &s, proj, point)? {
            Related::TooManyInline => return Ok(None),
            related => out.push((s, related.rows())),
        }
    }
    Ok(Some(out))
}

fn render_page(
    ctx: &Ctx,
    page: PageRead,
    projection: &Projection,
) -> Result<(usize, Vec<Value>), ScimError> {
    // Only a point read stops for too many related rows, and every caller reads such a page
    // again on a blocking thread before rendering.
    let PageRead::Page((total, rows)) = page else {
        return Err(ScimError::internal());
    };
    let out = rows
        .into_iter()
        .map(|(s, related)| render_with(ctx, s, related, projection))
        .collect();
    Ok((total, out))
}

/// `GET /Users`, `GET /Groups`: the token is checked in the page's own read.
pub async fn list(
    ctx: &Ctx,
    claimed: &Claimed,
    kind: ResourceKind,
    params: ListParams,
) -> Result<Handled, Handled> {
    let req = params.parse(kind.resource_type())?;
    if req.cursor.is_some() {
        return paging::list(ctx, claimed, kind, req).await;
    }
    let budget = ctx.app.config.limits.max_members_per_page;
    let (point, read) = list_read(kind, &req, req.start_index, req.count, budget)?;
    let (who, page) = read_confirming(ctx, claimed, point, read).await?;
    let page = match page {
        Ok(PageRead::TooManyInline) => {
            match list_read_as(kind, &req, req.start_index, req.count, budget, Some(false)) {
                Ok((_, read)) => read_as(ctx, &who, false, read).await,
                Err(e) => Err(e),
            }
        }
        other => other,
    };
    let answer = page.and_then(|page| {
        let (total, resources) = render_page(ctx, page, &req.projection)?;
        Ok(response::json(
            200,
            &list::response(total, req.start_index, resources),
        ))
    });
    Ok(Handled::Confirmed(who, answer))
}

/// `POST /Users/.search`, `POST /Groups/.search`.
pub async fn search(
    ctx: &Ctx,
    who: &Principal,
    kind: ResourceKind,
    params: ListParams,
) -> Result<Response<Body>, ScimError> {
    let req = params.parse(kind.resource_type())?;
    if req.cursor.is_some() {
        return paging::search(ctx, who, kind, req).await;
    }
    // `.search` is not Entra's path to a user: always on a blocking thread.
    let budget = ctx.app.config.limits.max_members_per_page;
    let (_, read) = list_read_as(kind, &req, req.start_index, req.count, budget, Some(false))?;
    let page = read_as(ctx, who, false, read).await?;
    let (total, resources) = render_page(ctx, page, &req.projection)?;
    Ok(response::json(
        200,
        &list::response(total, req.start_index, resources),
    ))
}

/// `POST /.search` at the root: Users then Groups, paged over the concatenation. An attribute
/// that one type does not have simply matches nothing of that type.
pub async fn search_all(
    ctx: &Ctx,
    who: &Principal,
    params: ListParams,
) -> Result<Response<Body>, ScimError> {
    if params.cursor.is_some() {
        return Err(ScimError::invalid_value(
            "cursor paging is per resource type: POST /Users/.search or /Groups/.search",
        ));
    }
    let mut total = 0;
    let mut page = Vec::new();
    let mut start = None;
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let req = match params.parse(kind.resource_type()) {
            Ok(r) => r,
            Err(e) if e.scim_type == Some(ScimType::InvalidFilter) => continue,
            Err(e) => return Err(e),
        };
        let skip = req.start_index.saturating_sub(1).saturating_sub(total);
        let want = req.count.saturating_sub(page.len());
        start.get_or_insert(req.start_index);
        let budget = ctx.app.config.limits.max_members_per_page;
        let rows = match list_read_as(kind, &req, skip + 1, want, budget, Some(false)) {
            Ok((_, read)) => read_as(ctx, who, false, read).await,
            Err(e) => Err(e),
        };
        match rows.and_then(|rows| render_page(ctx, rows, &req.projection)) {
            Ok((n, mut rows)) => {
                total += n;
                page.append(&mut rows);
            }
            Err(e) if e.scim_type == Some(ScimType::InvalidFilter) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(response::json(
        200,
        &list::response(total, start.unwrap_or(1), page),
    ))
}
