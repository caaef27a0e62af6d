//! List reads of users and groups: a page by index (`list`, SCIM `startIndex`/`count`) and a
//! keyset walk by sequence number (`list_after`, RFC 9865 cursor paging), with the shared WHERE
//! clause and count. Apart from the single-resource reads and writes of `resources` because these
//! queries are compiled from a filter and sorted, and their cost is the page, not the tenant.

use rusqlite::Connection;

use super::{from_row, kind_sql, to_stored, Stored, COLUMNS};
use crate::domain::TenantId;
use crate::scim::filter::Filter;
use crate::scim::schema::ResourceKind;
use crate::store::query;
use crate::store::Result;

/// What a list request asks for.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// ORDER BY expression from `query::sort_expression`, and whether descending.
    pub sort: Option<(String, bool)>,
    /// 1-based, as in SCIM.
    pub start_index: usize,
    pub count: usize,
}

/// Run a list query: total matches and the requested page, in a stable order.
pub fn list(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    q: &ListQuery,
) -> Result<(usize, Vec<Stored>)> {
    let (where_sql, params) = list_where(tenant, kind, q.filter.as_ref())?;
    let count_all = |params: &[rusqlite::types::Value]| count_where(conn, &where_sql, params);
    if q.count == 0 {
        return Ok((count_all(&params)?, Vec::new()));
    }
    let order = match &q.sort {
        Some((expr, desc)) => format!(
            "{expr} IS NULL, {expr} {}, r.seq",
            if *desc { "DESC" } else { "ASC" }
        ),
        None => "r.seq".to_string(),
    };
    // LIMIT is SQL text (an integer of ours): a bound LIMIT is read while planning, so SQLite
    // would re-prepare the statement on every execution (as with `kind_sql`).
    let sql = format!(
        "SELECT {COLUMNS} FROM resources r WHERE {where_sql} ORDER BY {order} LIMIT {} OFFSET ?",
        q.count
    );
    let offset = q.start_index.saturating_sub(1);
    let mut page_params = params.clone();
    page_params.push((offset as i64).into());
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(page_params.iter()), from_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(to_stored(row?)?);
    }
    // A first page that is not full holds every match: that is the total, without counting
    // again (Entra's `userName eq` lookups are all such pages).
    let total = if offset == 0 && out.len() < q.count {
        out.len()
    } else {
        count_all(&params)?
    };
    Ok((total, out))
}

/// The WHERE clause of a list of the tenant's resources of `kind` matching `filter`, and its
/// parameters (the tenant first).
fn list_where(
    tenant: &TenantId,
    kind: ResourceKind,
    filter: Option<&Filter>,
) -> Result<(String, Vec<rusqlite::types::Value>)> {
    let mut where_sql = format!(
        "r.tenant = (SELECT key FROM tenants WHERE id = ?) AND r.kind = {}",
        kind_sql(kind)
    );
    let mut params: Vec<rusqlite::types::Value> = vec![tenant.as_str().to_string().into()];
    if let Some(f) = filter {
        let compiled = query::compile(f, kind.resource_type(), tenant)?;
        where_sql.push_str(" AND (");
        where_sql.push_str(&compiled.text);
        where_sql.push(')');
        params.extend(compiled.params);
    }
    Ok((where_sql, params))
}

/// How many resources a `list_where` clause matches.
fn count_where(
    conn: &Connection,
    where_sql: &str,
    params: &[rusqlite::types::Value],
) -> Result<usize> {
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM resources r WHERE {where_sql}"
        ))?
        .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))?;
    Ok(n as usize)
}

/// A page of a keyset walk (RFC 9865 cursor paging): the resources after a position, in `seq`
/// order.
#[derive(Debug, Clone)]
pub struct KeysetPage {
    /// The walk's total: counted now, or the one its first page counted.
    pub total: usize,
    pub rows: Vec<Stored>,
    /// Whether more matches follow the last row.
    pub more: bool,
}

/// The tenant's resources of `kind` matching `filter` with `seq` above `after`, at most
/// `count` of them. The cost is an index seek to `after` and a scan of the page (the
/// `resources_kind` index ends in `seq`), however deep the walk; never an OFFSET. A row
/// created during a walk comes later in it (sequence numbers only grow), a deleted one is
/// simply not there: every row that exists for the whole walk is seen exactly once. `total`:
/// the walk's total when an earlier page counted it; None counts the matches (O(matches):
/// only a walk's first page does).
pub fn list_after(
    conn: &Connection,
    tenant: &TenantId,
    kind: ResourceKind,
    filter: Option<&Filter>,
    after: i64,
    count: usize,
    total: Option<usize>,
) -> Result<KeysetPage> {
    let (where_sql, params) = list_where(tenant, kind, filter)?;
    let mut page_params = params.clone();
    page_params.push(after.into());
    // One row more than asked says whether a next page exists; LIMIT is SQL text, as in `list`.
    let sql = format!(
        "SELECT {COLUMNS} FROM resources r WHERE {where_sql} AND r.seq > ? \
         ORDER BY r.seq LIMIT {}",
        count + 1
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let found = stmt.query_map(rusqlite::params_from_iter(page_params.iter()), from_row)?;
    let mut rows = Vec::new();
    let mut more = false;
    for row in found {
        if rows.len() == count {
            more = true;
            break;
        }
        rows.push(to_stored(row?)?);
    }
    // A first page that holds every match needs no count (as in `list`).
    let total = match total {
        Some(t) => t,
        None if after == 0 && !more => rows.len(),
        None => count_where(conn, &where_sql, &params)?,
    };
    Ok(KeysetPage { total, rows, more })
}
