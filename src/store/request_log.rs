//! The provisioning log: what arrived, what we answered, and which Entra normalisations were
//! applied — so an administrator can see from our side why a user did not arrive.

use rusqlite::{params, Connection};

use super::Result;

/// One logged request. Holds no token and no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: String,
    pub request_id: String,
    pub tenant_id: Option<String>,
    pub token_id: Option<String>,
    pub method: String,
    pub path: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub status: u16,
    pub scim_type: Option<String>,
    pub duration_ms: u64,
    pub notes: Vec<String>,
    pub detail: Option<String>,
    /// The request body, with `log.keep_bodies` only: passwords stripped and capped
    /// (`scim::diff::redact_body`). Kept in `request_details`, never in a log line.
    pub body: Option<String>,
}

/// A logged request as read back, with the tenant's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub seq: i64,
    pub tenant: Option<String>,
    pub entry: Entry,
}

/// Insert an entry (and its body, if it has one); returns its sequence number.
pub fn insert(conn: &Connection, e: &Entry) -> Result<i64> {
    let notes = (!e.notes.is_empty()).then(|| e.notes.join(","));
    conn.prepare_cached(
        "INSERT INTO request_log (at, request_id, tenant_id, token_id, method, path, resource_type, resource_id, \
         status, scim_type, duration_ms, notes, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        e.at,
        e.request_id,
        e.tenant_id,
        e.token_id,
        e.method,
        e.path,
        e.resource_type,
        e.resource_id,
        e.status,
        e.scim_type,
        e.duration_ms as i64,
        notes,
        e.detail,
    ])?;
    let seq = conn.last_insert_rowid();
    // The dashboard's requests per hour, counted here rather than by a trigger (see
    // `store::counts` for why).
    conn.prepare_cached(
        "INSERT INTO request_hours (tenant_id, hour, class, n) \
         VALUES (COALESCE(?1, ''), substr(?2, 1, 13), ?3 / 100, 1) \
         ON CONFLICT (tenant_id, hour, class) DO UPDATE SET n = n + 1",
    )?
    .execute(params![e.tenant_id, e.at, e.status])?;
    if let Some(body) = &e.body {
        super::history::keep_body(conn, seq, body)?;
    }
    Ok(seq)
}

/// Delete entries older than `before` (RFC 3339) and beyond the newest `keep_rows`, at most
/// `chunk` rows per call so the writer is never held for long. Returns rows deleted.
pub fn prune(conn: &Connection, before: &str, keep_rows: i64, chunk: i64) -> Result<usize> {
    let by_age = conn
        .prepare_cached(
            "DELETE FROM request_log WHERE seq IN (SELECT seq FROM request_log WHERE at < ?1 ORDER BY seq LIMIT ?2)",
        )?
        .execute(params![before, chunk])?;
    let by_count = conn
        .prepare_cached(
            "DELETE FROM request_log WHERE seq IN (SELECT seq FROM request_log WHERE seq <= \
             (SELECT max(seq) FROM request_log) - ?1 ORDER BY seq LIMIT ?2)",
        )?
        .execute(params![keep_rows, chunk])?;
    // The dashboard's hourly counts (kept by `insert`) age out with the log.
    conn.prepare_cached("DELETE FROM request_hours WHERE hour < substr(?1, 1, 13)")?
        .execute([before])?;
    Ok(by_age + by_count)
}

/// What `grouptalk-scim log` asks for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub tenant_id: Option<crate::domain::TenantId>,
    pub since: Option<String>,
    /// Inclusive status range, e.g. 400..=499.
    pub status: Option<(u16, u16)>,
    pub resource_id: Option<String>,
    /// Only entries after this sequence number (for --follow).
    pub after_seq: Option<i64>,
    pub limit: i64,
}

pub fn query(conn: &Connection, q: &Query) -> Result<Vec<Row>> {
    let (lo, hi) = q.status.map_or((None, None), |(a, b)| (Some(a), Some(b)));
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM (SELECT l.seq, n.name, l.at, l.request_id, l.tenant_id, l.token_id, l.method, l.path, \
         l.resource_type, l.resource_id, l.status, l.scim_type, l.duration_ms, l.notes, l.detail \
         FROM request_log l LEFT JOIN tenants n ON n.id = l.tenant_id \
         WHERE (?1 IS NULL OR l.tenant_id = ?1) AND (?2 IS NULL OR l.at >= ?2) \
         AND (?3 IS NULL OR l.status BETWEEN ?3 AND ?4) AND (?5 IS NULL OR l.resource_id = ?5) \
         AND (?6 IS NULL OR l.seq > ?6) ORDER BY l.seq DESC LIMIT ?7) ORDER BY seq",
    )?;
    let rows = stmt.query_map(
        params![
            q.tenant_id,
            q.since,
            lo,
            hi,
            q.resource_id,
            q.after_seq,
            q.limit
        ],
        |r| {
            let notes: Option<String> = r.get(13)?;
            Ok(Row {
                seq: r.get(0)?,
                tenant: r.get(1)?,
                entry: Entry {
                    at: r.get(2)?,
                    request_id: r.get(3)?,
                    tenant_id: r.get(4)?,
                    token_id: r.get(5)?,
                    method: r.get(6)?,
                    path: r.get(7)?,
                    resource_type: r.get(8)?,
                    resource_id: r.get(9)?,
                    status: r.get(10)?,
                    scim_type: r.get(11)?,
                    duration_ms: r.get::<_, i64>(12)? as u64,
                    notes: notes
                        .map(|n| n.split(',').map(str::to_string).collect())
                        .unwrap_or_default(),
                    detail: r.get(14)?,
                    body: None,
                },
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The newest entry's sequence number (0 when the log is empty): where `log --follow` starts.
pub fn last_seq(conn: &Connection) -> Result<i64> {
    Ok(
        conn.query_row("SELECT COALESCE(max(seq), 0) FROM request_log", [], |r| {
            r.get(0)
        })?,
    )
}
