//! What the admin dashboard shows, read in one go: per tenant its counts (the `tenant_counts`
//! row the writes keep, `store::counts`), its last request, credentials with their expiry,
//! requests per hour (`request_hours`, kept by `request_log::insert`), the last failures and
//! changes; and one resource's history for the search box. Every statement is an index point
//! lookup or a bounded index range, so the page costs the same at a million users as at ten
//! (the bench's `dashboard` phase measures it). Read-only.

use rusqlite::{params, Connection, OptionalExtension};

use super::query::fold;
use super::stats::TenantCounts;
use super::Result;
use crate::domain::{TenantId, Timestamp};
use crate::scim::diff::Diff;

/// Failures shown per tenant.
pub const FAILURES_SHOWN: i64 = 10;
/// Change rows and provisioning-log entries shown per resource in a history.
pub const HISTORY_ROWS: i64 = 50;

/// Everything the dashboard's main page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub tenants: Vec<TenantOverview>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantOverview {
    pub name: String,
    pub id: TenantId,
    pub counts: TenantCounts,
    /// The newest provisioning-log entry of this tenant (any credential of it).
    pub last_request: Option<Timestamp>,
    /// Tokens not revoked.
    pub tokens: Vec<TokenExpiry>,
    /// OAuth clients not revoked, with their secrets not revoked.
    pub clients: Vec<ClientExpiry>,
    /// Requests per UTC hour and status class since the cutoff given to `overview`.
    pub hours: Vec<HourCount>,
    /// The newest failures (status ≥ 400), newest first.
    pub failures: Vec<Failure>,
    /// The newest change rows, newest first, with the resource's current names.
    pub recent: Vec<RecentChange>,
}

/// A change row with the names its resource has now (None once deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentChange {
    pub at: Timestamp,
    pub kind: String,
    pub resource_id: String,
    pub operation: String,
    pub user_name: Option<String>,
    pub display_name: Option<String>,
}

/// Change rows shown per tenant.
pub const RECENT_SHOWN: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenExpiry {
    pub id: String,
    pub label: Option<String>,
    pub scopes: String,
    pub expires: Option<Timestamp>,
    pub last_request: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientExpiry {
    pub id: String,
    pub label: Option<String>,
    pub scopes: String,
    pub last_request: Option<Timestamp>,
    /// (secret id, expiry) of the secrets not revoked.
    pub secrets: Vec<(String, Timestamp)>,
}

/// Requests in one UTC hour (`2026-12-05T07`) with one status class (2, 4, 5…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourCount {
    pub hour: String,
    pub class: i64,
    pub n: i64,
}

/// A provisioning-log entry, as the dashboard shows failures and histories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub at: Timestamp,
    pub tenant: Option<String>,
    pub method: String,
    pub path: String,
    pub resource_id: Option<String>,
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    /// What the write changed (`request_details.diff`), on the history page only.
    pub diff: Option<Diff>,
}

pub type Failure = LoggedRequest;

/// The page for every tenant. `since_hour` is the first UTC hour (`YYYY-MM-DDTHH`) of the chart.
pub fn overview(conn: &Connection, since_hour: &str) -> Result<Overview> {
    let mut stmt = conn.prepare_cached("SELECT key, id, name FROM tenants ORDER BY name")?;
    let tenants = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, TenantId>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::with_capacity(tenants.len());
    for (key, id, name) in tenants {
        out.push(TenantOverview {
            counts: counts(conn, key)?,
            last_request: last_request(conn, &id)?,
            tokens: tokens(conn, &id)?,
            clients: clients(conn, &id)?,
            hours: hours(conn, &id, since_hour)?,
            failures: failures(conn, &id, &name)?,
            recent: recent(conn, key)?,
            name,
            id,
        });
    }
    Ok(Overview { tenants: out })
}

/// The maintained counts: one primary-key lookup.
fn counts(conn: &Connection, tenant_key: i64) -> Result<TenantCounts> {
    let row = conn
        .prepare_cached(
            "SELECT users, active_users, groups, memberships FROM tenant_counts WHERE tenant = ?1",
        )?
        .query_row([tenant_key], |r| {
            Ok(TenantCounts {
                users: r.get(0)?,
                active_users: r.get(1)?,
                groups: r.get(2)?,
                memberships: r.get(3)?,
            })
        })
        .optional()?;
    Ok(row.unwrap_or(TenantCounts {
        users: 0,
        active_users: 0,
        groups: 0,
        memberships: 0,
    }))
}

/// Newest entry by the (tenant_id, seq) index: one probe from the end.
fn last_request(conn: &Connection, tenant: &TenantId) -> Result<Option<Timestamp>> {
    Ok(conn
        .prepare_cached(
            "SELECT at FROM request_log WHERE tenant_id = ?1 ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([tenant], |r| r.get(0))
        .optional()?)
}

/// A credential's newest request by the (token_id, seq) index (clients are logged by their id).
fn credential_last_request(conn: &Connection, id: &str) -> Result<Option<Timestamp>> {
    Ok(conn
        .prepare_cached("SELECT at FROM request_log WHERE token_id = ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

fn tokens(conn: &Connection, tenant: &TenantId) -> Result<Vec<TokenExpiry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, label, scopes, expires FROM tokens WHERE tenant_id = ?1 AND revoked IS NULL \
         ORDER BY rowid",
    )?;
    let rows = stmt
        .query_map([tenant], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<Timestamp>>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, label, scopes, expires)| {
            Ok(TokenExpiry {
                last_request: credential_last_request(conn, &id)?,
                id,
                label,
                scopes,
                expires,
            })
        })
        .collect()
}

fn clients(conn: &Connection, tenant: &TenantId) -> Result<Vec<ClientExpiry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.id, c.label, c.scopes, s.id, s.expires FROM clients c \
         LEFT JOIN client_secrets s ON s.client_id = c.id AND s.revoked IS NULL \
         WHERE c.tenant_id = ?1 AND c.revoked IS NULL ORDER BY c.rowid, s.rowid",
    )?;
    let mut rows = stmt.query([tenant])?;
    let mut out: Vec<ClientExpiry> = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        if out.last().is_none_or(|c| c.id != id) {
            out.push(ClientExpiry {
                last_request: credential_last_request(conn, &id)?,
                id,
                label: r.get(1)?,
                scopes: r.get(2)?,
                secrets: Vec::new(),
            });
        }
        if let (Some(secret), Some(client)) = (r.get::<_, Option<String>>(3)?, out.last_mut()) {
            client.secrets.push((secret, r.get(4)?));
        }
    }
    Ok(out)
}

/// At most 24 × classes rows of the maintained hourly counts (a primary-key range).
fn hours(conn: &Connection, tenant: &TenantId, since_hour: &str) -> Result<Vec<HourCount>> {
    let mut stmt = conn.prepare_cached(
        "SELECT hour, class, n FROM request_hours WHERE tenant_id = ?1 AND hour >= ?2 \
         ORDER BY hour, class",
    )?;
    let rows = stmt.query_map(params![tenant, since_hour], |r| {
        Ok(HourCount {
            hour: r.get(0)?,
            class: r.get(1)?,
            n: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The newest failures by the partial index `request_log_failures` (`status >= 400` is the
/// index's own condition, written the same way so SQLite uses it).
fn failures(conn: &Connection, tenant: &TenantId, name: &str) -> Result<Vec<Failure>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, method, path, resource_id, status, scim_type, detail FROM request_log \
         WHERE tenant_id = ?1 AND status >= 400 ORDER BY seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![tenant, FAILURES_SHOWN], |r| {
        Ok(LoggedRequest {
            at: r.get(0)?,
            tenant: Some(name.to_string()),
            method: r.get(1)?,
            path: r.get(2)?,
            resource_id: r.get(3)?,
            status: r.get(4)?,
            scim_type: r.get(5)?,
            detail: r.get(6)?,
            diff: None,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The newest change rows by the (tenant, seq) index, each resource by its unique id index.
fn recent(conn: &Connection, tenant_key: i64) -> Result<Vec<RecentChange>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.at, c.kind, c.resource_id, c.operation, r.user_name, r.display_name \
         FROM changes c LEFT JOIN resources r ON r.id = c.resource_id \
         WHERE c.tenant = ?1 ORDER BY c.seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![tenant_key, RECENT_SHOWN], |r| {
        Ok(RecentChange {
            at: r.get(0)?,
            kind: r.get(1)?,
            resource_id: r.get(2)?,
            operation: r.get(3)?,
            user_name: r.get(4)?,
            display_name: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A resource the search text names: by id, by a tenant's userName or by a group's displayName.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub tenant: String,
    pub kind: String,
    pub id: String,
    pub name: Option<String>,
}

/// A row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub at: Timestamp,
    pub tenant: Option<String>,
    pub kind: String,
    pub resource_id: String,
    pub operation: String,
    pub revision: Option<i64>,
}

/// One resource's history: what the text matched, its change rows and its logged requests,
/// each newest first and at most `HISTORY_ROWS` per resource id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    pub matches: Vec<Match>,
    pub changes: Vec<Change>,
    pub requests: Vec<LoggedRequest>,
}

/// The search box: `text` is a resource id (also of a deleted resource: its history remains),
/// a userName or a group's displayName (case-insensitively, in every tenant). Index lookups
/// only: `resources_id`, `resources_user_name`, `resources_group_name`, `changes_resource`,
/// `request_log_resource`.
pub fn history(conn: &Connection, text: &str) -> Result<History> {
    let key = fold(text);
    let mut matches = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT n.name, r.kind, r.id, COALESCE(r.user_name, r.display_name) FROM resources r \
         JOIN tenants n ON n.key = r.tenant WHERE r.id = ?1 \
         UNION ALL SELECT n.name, r.kind, r.id, r.user_name FROM tenants n CROSS \
         JOIN resources r ON r.tenant = n.key AND r.kind = 'User' AND r.user_name_key = ?2 \
         UNION ALL SELECT n.name, r.kind, r.id, r.display_name FROM tenants n CROSS \
         JOIN resources r ON r.tenant = n.key AND r.kind = 'Group' AND r.display_name_key = ?2",
    )?;
    let rows = stmt.query_map(params![text, key], |r| {
        Ok(Match {
            tenant: r.get(0)?,
            kind: r.get(1)?,
            id: r.get(2)?,
            name: r.get(3)?,
        })
    })?;
    for m in rows {
        let m = m?;
        if !matches.iter().any(|x: &Match| x.id == m.id) {
            matches.push(m);
        }
    }
    // A deleted resource matches nothing in `resources`; its id still finds its history.
    let mut ids: Vec<String> = matches.iter().map(|m| m.id.clone()).collect();
    if !ids.iter().any(|id| id == text) {
        ids.push(text.to_string());
    }
    let mut history = History {
        matches,
        ..History::default()
    };
    for id in &ids {
        history.changes.extend(changes_of(conn, id)?);
        history.requests.extend(requests_of(conn, id)?);
    }
    history.changes.sort_by_key(|c| std::cmp::Reverse(c.at));
    history.requests.sort_by_key(|r| std::cmp::Reverse(r.at));
    Ok(history)
}

fn changes_of(conn: &Connection, id: &str) -> Result<Vec<Change>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.at, n.name, c.kind, c.resource_id, c.operation, c.revision FROM changes c \
         LEFT JOIN tenants n ON n.key = c.tenant WHERE c.resource_id = ?1 \
         ORDER BY c.seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![id, HISTORY_ROWS], |r| {
        Ok(Change {
            at: r.get(0)?,
            tenant: r.get(1)?,
            kind: r.get(2)?,
            resource_id: r.get(3)?,
            operation: r.get(4)?,
            revision: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn requests_of(conn: &Connection, id: &str) -> Result<Vec<LoggedRequest>> {
    let mut stmt = conn.prepare_cached(
        "SELECT l.at, n.name, l.method, l.path, l.resource_id, l.status, l.scim_type, l.detail, \
         d.diff FROM request_log l LEFT JOIN tenants n ON n.id = l.tenant_id \
         LEFT JOIN request_details d ON d.log_seq = l.seq WHERE l.resource_id = ?1 \
         ORDER BY l.seq DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![id, HISTORY_ROWS], |r| {
        Ok(LoggedRequest {
            at: r.get(0)?,
            tenant: r.get(1)?,
            method: r.get(2)?,
            path: r.get(3)?,
            resource_id: r.get(4)?,
            status: r.get(5)?,
            scim_type: r.get(6)?,
            detail: r.get(7)?,
            // Written by this binary (`diff::parse_stored`); anything else is shown as no diff.
            diff: r
                .get::<_, Option<String>>(8)?
                .and_then(|t| crate::scim::diff::parse_stored(&t).ok()),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

#[cfg(test)]
mod tests;

/// Lag counts stop here: counting a consumer that is a million changes behind must not cost a
/// million index steps per page view ("100000+" says enough).
pub const LAG_COUNTED_UP_TO: i64 = 100_000;

/// A change-feed consumer of a tenant and how far behind its recorded position is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerLag {
    pub tenant: TenantId,
    /// The long-lived token's id or the OAuth client's id it reads with.
    pub consumer: String,
    /// Changes of its tenant after its position, at most `LAG_COUNTED_UP_TO`.
    pub lag: i64,
    /// When it last recorded its position.
    pub updated: Option<Timestamp>,
}

/// Every feed consumer with its lag: the consumers' primary key, then a bounded range of the
/// (tenant, seq) index per consumer.
pub fn feed_consumers(conn: &Connection) -> Result<Vec<ConsumerLag>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, c.consumer, c.updated, \
         (SELECT count(*) FROM (SELECT 1 FROM changes x \
           WHERE x.tenant = c.tenant AND x.seq > c.position LIMIT ?1)) \
         FROM feed_consumers c JOIN tenants t ON t.key = c.tenant ORDER BY t.id, c.consumer",
    )?;
    let rows = stmt.query_map([LAG_COUNTED_UP_TO], |r| {
        Ok(ConsumerLag {
            tenant: r.get(0)?,
            consumer: r.get(1)?,
            updated: r
                .get::<_, Option<String>>(2)?
                .and_then(|s| Timestamp::parse(&s)),
            lag: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Held changes listed per tenant (the oldest; the heading counts them all).
pub const HELD_SHOWN: i64 = 20;

/// The deletion brake's held changes of a tenant: how many, and the oldest `HELD_SHOWN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub tenant: TenantId,
    pub total: i64,
    /// (when it was held, kind, resource id, operation), oldest first.
    pub oldest: Vec<(Timestamp, String, String, String)>,
}

/// Every tenant's held changes. A mass event holds thousands at most (the brake exists to stop
/// one); the count walks the (tenant, resource_id) index, the list takes the first ids.
pub fn held(conn: &Connection) -> Result<Vec<Held>> {
    let mut tenants = conn.prepare_cached(
        "SELECT t.key, t.id, (SELECT count(*) FROM held_changes h WHERE h.tenant = t.key) \
         FROM tenants t",
    )?;
    let counted = tenants
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, TenantId>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut list = conn.prepare_cached(
        "SELECT at, kind, resource_id, operation FROM held_changes \
         WHERE tenant = ?1 ORDER BY id LIMIT ?2",
    )?;
    let mut out = Vec::new();
    for (key, tenant, total) in counted {
        let oldest = if total == 0 {
            Vec::new()
        } else {
            list.query_map(params![key, HELD_SHOWN], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?
        };
        out.push(Held {
            tenant,
            total,
            oldest,
        });
    }
    Ok(out)
}
