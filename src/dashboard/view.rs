//! The pages: the overview (`/`) and one resource's history (`/history?q=…`). Data in, `String`
//! out; "now" is a parameter so the highlighting (Entra silent for two cycles, a credential
//! expiring within 14 days) is decided here and tested without a clock.
//!
//! Two sections come from other parts of the appliance: the change feed's consumers and their
//! lag, and the deletion brake's held changes. They are their own render functions
//! (`feed_consumers`, `held_changes`) fed through `TenantExtras` (`http::admin` fills it); a
//! section whose entry is None is left out.

use std::collections::HashMap;
use std::fmt::Write;

use time::OffsetDateTime;

use super::chart;
use super::html::{attr, query_value, text};
use crate::domain::{TenantId, Timestamp};
use crate::scim::diff::Diff;
use crate::store::dashboard::{
    ClientExpiry, History, LoggedRequest, Overview, RecentChange, TenantOverview, TokenExpiry,
    LAG_COUNTED_UP_TO,
};

/// Entra's incremental cycles run about every 40 minutes (docs/entra-id-behaviour.md, "Requests
/// and headers"); silence for two cycles is worth a look.
pub const SILENT_AFTER_SECS: i64 = 2 * 40 * 60;
/// Credentials that expire within this many days are highlighted.
pub const EXPIRY_WARNING_DAYS: i64 = 14;
/// Longest search text accepted (longer is refused before any query).
pub const MAX_SEARCH_CHARS: usize = 256;

/// A change-feed consumer as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedConsumer {
    pub name: String,
    /// Change rows it has not yet read.
    pub lag: i64,
    pub last_read: Option<Timestamp>,
}

/// Changes the deletion brake holds, as the dashboard shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldChange {
    pub at: Timestamp,
    pub kind: String,
    pub resource_id: String,
    pub operation: String,
}

/// What a tenant's section shows beyond `TenantOverview`; None: that feature is not in this
/// build (the section is left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantExtras {
    pub consumers: Option<Vec<FeedConsumer>>,
    pub held: Option<Vec<HeldChange>>,
    /// How many the brake holds in all (`held` lists the oldest of them).
    pub held_total: usize,
}

/// The page skeleton: no script, one stylesheet from this server.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body>{body}</body></html>\n",
        text(title)
    )
}

fn header(out: &mut String, now: OffsetDateTime, query: &str) {
    let _ = write!(
        out,
        "<header><h1><a href=\"/\">grouptalk-scim</a></h1><p class=\"muted\">{} · read-only · \
         {}</p><form method=\"get\" action=\"/history\" role=\"search\">\
         <label for=\"q\">History of a user or group</label><div class=\"row\">\
         <input id=\"q\" name=\"q\" type=\"search\" maxlength=\"{MAX_SEARCH_CHARS}\" \
         placeholder=\"id, userName or group displayName\" value=\"{}\">\
         <button type=\"submit\">Show</button></div></form></header>",
        text(&format!("version {}", env!("CARGO_PKG_VERSION"))),
        text(&Timestamp::from(now).to_string()),
        attr(query)
    );
}

/// `/`: every tenant.
pub fn overview(
    o: &Overview,
    extras: &HashMap<TenantId, TenantExtras>,
    now: OffsetDateTime,
) -> String {
    let mut out = String::new();
    header(&mut out, now, "");
    out.push_str("<main>");
    if o.tenants.is_empty() {
        out.push_str("<p>No tenants yet: create one with <code>grouptalk-scim tenant create NAME</code>.</p>");
    }
    let keys = chart::hour_keys(now);
    let none = TenantExtras::default();
    for t in &o.tenants {
        tenant(&mut out, t, extras.get(&t.id).unwrap_or(&none), &keys, now);
    }
    out.push_str("</main>");
    page("grouptalk-scim dashboard", &out)
}

fn ago(then: Timestamp, now: OffsetDateTime) -> String {
    let secs = now.unix_timestamp() - then.unix_seconds();
    match secs {
        ..=59 => "just now".into(),
        60..=5_399 => format!("{} min ago", secs / 60),
        5_400..=172_799 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

fn tenant(
    out: &mut String,
    t: &TenantOverview,
    extras: &TenantExtras,
    keys: &[String],
    now: OffsetDateTime,
) {
    let c = &t.counts;
    let _ = write!(
        out,
        "<section class=\"tenant\" id=\"tenant-{}\"><h2>{}</h2><dl class=\"counts\">\
         <div><dt>users</dt><dd data-count=\"users\">{}</dd></div>\
         <div><dt>active</dt><dd data-count=\"active\">{}</dd></div>\
         <div><dt>inactive</dt><dd data-count=\"inactive\">{}</dd></div>\
         <div><dt>groups</dt><dd data-count=\"groups\">{}</dd></div>\
         <div><dt>memberships</dt><dd data-count=\"memberships\">{}</dd></div></dl>",
        attr(&t.name),
        text(&t.name),
        c.users,
        c.active_users,
        c.users - c.active_users,
        c.groups,
        c.memberships
    );
    last_call(out, t.last_request, now);
    let totals = chart::buckets(keys, &t.hours)
        .iter()
        .fold([0i64; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]]);
    let _ = write!(
        out,
        "<h3>Requests per hour, last 24 h</h3><figure>{}<figcaption class=\"legend\">\
         <span class=\"key ok\"></span>2xx <b data-total=\"2xx\">{}</b> \
         <span class=\"key client\"></span>4xx <b data-total=\"4xx\">{}</b> \
         <span class=\"key server\"></span>5xx <b data-total=\"5xx\">{}</b></figcaption></figure>",
        chart::svg(keys, &t.hours),
        totals[0],
        totals[1],
        totals[2]
    );
    credentials(out, &t.tokens, &t.clients, now);
    failures(out, &t.failures, now);
    recent(out, &t.recent, now);
    if let Some(consumers) = &extras.consumers {
        out.push_str(&feed_consumers(consumers, now));
    }
    if let Some(held) = &extras.held {
        out.push_str(&held_changes(held, extras.held_total, now));
    }
    out.push_str("</section>");
}

fn last_call(out: &mut String, last: Option<Timestamp>, now: OffsetDateTime) {
    match last {
        None => out.push_str(
            "<p class=\"last-call warn\" data-silent=\"true\">Entra has not called yet.</p>",
        ),
        Some(at) => {
            let silent = now.unix_timestamp() - at.unix_seconds() > SILENT_AFTER_SECS;
            let _ = write!(
                out,
                "<p class=\"last-call{}\" data-silent=\"{silent}\">Last request: \
                 <time datetime=\"{}\">{}</time> ({}){}</p>",
                if silent { " warn" } else { "" },
                attr(&at.to_string()),
                text(&at.to_string()),
                ago(at, now),
                if silent {
                    " — longer than two provisioning cycles"
                } else {
                    ""
                }
            );
        }
    }
}

/// The expiry cell: highlighted when within `EXPIRY_WARNING_DAYS` (or past).
fn expiry(expires: Option<Timestamp>, now: OffsetDateTime) -> String {
    let Some(e) = expires else {
        return "<td>never</td>".into();
    };
    let left = e.unix_seconds() - now.unix_timestamp();
    let (class, note) = if left <= 0 {
        (
            " class=\"warn\" data-expiring=\"true\"",
            " EXPIRED".to_string(),
        )
    } else if left <= EXPIRY_WARNING_DAYS * 86_400 {
        (
            " class=\"warn\" data-expiring=\"true\"",
            format!(" (in {} days)", left / 86_400),
        )
    } else {
        ("", String::new())
    };
    format!("<td{class}>{}{note}</td>", text(&e.to_string()))
}

fn credentials(
    out: &mut String,
    tokens: &[TokenExpiry],
    clients: &[ClientExpiry],
    now: OffsetDateTime,
) {
    out.push_str(
        "<h3>Credentials</h3><div class=\"scroll\"><table><thead><tr><th>kind</th><th>id</th>\
         <th>label</th><th>scopes</th><th>expires</th><th>last request</th></tr></thead><tbody>",
    );
    let last = |l: Option<Timestamp>| l.map_or("never".to_string(), |t| ago(t, now));
    for t in tokens {
        let _ = write!(
            out,
            "<tr><td>token</td><td><code>{}</code></td><td>{}</td><td>{}</td>{}<td>{}</td></tr>",
            text(&t.id),
            text(t.label.as_deref().unwrap_or("")),
            text(&t.scopes),
            expiry(t.expires, now),
            last(t.last_request)
        );
    }
    for c in clients {
        let first = c.secrets.iter().map(|(_, e)| *e).min();
        let _ = write!(
            out,
            "<tr><td>OAuth client</td><td><code>{}</code></td><td>{}</td><td>{}</td>{}<td>{}</td></tr>",
            text(&c.id),
            text(c.label.as_deref().unwrap_or("")),
            text(&c.scopes),
            if first.is_some() {
                expiry(first, now)
            } else {
                "<td class=\"warn\">no secret</td>".into()
            },
            last(c.last_request)
        );
        for (id, e) in &c.secrets {
            let _ = write!(
                out,
                "<tr class=\"sub\"><td>secret</td><td><code>{}</code></td><td></td><td></td>{}<td></td></tr>",
                text(id),
                expiry(Some(*e), now)
            );
        }
    }
    if tokens.is_empty() && clients.is_empty() {
        out.push_str("<tr><td colspan=\"6\">none</td></tr>");
    }
    out.push_str("</tbody></table></div>");
}

/// What one write changed, under its request (the same lines `grouptalk-scim history` prints;
/// a password never reaches a stored diff).
fn diff_list(out: &mut String, d: &Diff) {
    let value =
        |v: &Option<serde_json::Value>| v.as_ref().map_or("(none)".to_string(), |v| v.to_string());
    out.push_str("<ul class=\"diff\">");
    for c in &d.changes {
        let _ = write!(
            out,
            "<li><code>{}</code>: {} → {}</li>",
            text(&c.attr),
            text(&value(&c.from)),
            text(&value(&c.to))
        );
    }
    if d.more > 0 {
        let _ = write!(out, "<li>… and {} more attribute(s)</li>", d.more);
    }
    if let Some(m) = &d.members {
        for (label, count, ids) in [
            ("added", m.added_count, &m.added),
            ("removed", m.removed_count, &m.removed),
        ] {
            if count > 0 {
                let _ = write!(
                    out,
                    "<li>members {label} ({count}): {}</li>",
                    text(&ids.join(", "))
                );
            }
        }
    }
    out.push_str("</ul>");
}

fn requests_table(
    out: &mut String,
    rows: &[LoggedRequest],
    now: OffsetDateTime,
    with_tenant: bool,
) {
    out.push_str("<div class=\"scroll\"><table><thead><tr><th>when</th>");
    if with_tenant {
        out.push_str("<th>tenant</th>");
    }
    out.push_str(
        "<th>request</th><th>status</th><th>scimType</th><th>detail</th></tr></thead><tbody>",
    );
    for r in rows {
        let _ = write!(
            out,
            "<tr><td><time datetime=\"{}\" title=\"{}\">{}</time></td>",
            attr(&r.at.to_string()),
            attr(&r.at.to_string()),
            ago(r.at, now)
        );
        if with_tenant {
            let _ = write!(out, "<td>{}</td>", text(r.tenant.as_deref().unwrap_or("-")));
        }
        let _ = write!(
            out,
            "<td>{} <code>{}</code></td><td class=\"{}\">{}</td><td>{}</td><td>{}",
            text(&r.method),
            text(&r.path),
            if r.status >= 400 { "warn" } else { "" },
            r.status,
            text(r.scim_type.as_deref().unwrap_or("")),
            text(r.detail.as_deref().unwrap_or(""))
        );
        if let Some(d) = &r.diff {
            diff_list(out, d);
        }
        out.push_str("</td></tr>");
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"6\">none</td></tr>");
    }
    out.push_str("</tbody></table></div>");
}

fn failures(out: &mut String, rows: &[LoggedRequest], now: OffsetDateTime) {
    out.push_str("<h3>Last failures</h3>");
    requests_table(out, rows, now, false);
}

fn recent(out: &mut String, rows: &[RecentChange], now: OffsetDateTime) {
    out.push_str(
        "<h3>Last changes</h3><div class=\"scroll\"><table><thead><tr><th>when</th><th>change</th>\
         <th>userName</th><th>displayName</th><th>id</th></tr></thead><tbody>",
    );
    for c in rows {
        let _ = write!(
            out,
            "<tr><td><time datetime=\"{}\">{}</time></td><td>{} {}</td><td>{}</td><td>{}</td>\
             <td><a href=\"/history?q={}\"><code>{}</code></a></td></tr>",
            attr(&c.at.to_string()),
            ago(c.at, now),
            text(&c.kind),
            text(&c.operation),
            text(c.user_name.as_deref().unwrap_or("")),
            text(c.display_name.as_deref().unwrap_or("")),
            query_value(&c.resource_id),
            text(&c.resource_id)
        );
    }
    if rows.is_empty() {
        out.push_str("<tr><td colspan=\"5\">none</td></tr>");
    }
    out.push_str("</tbody></table></div>");
}

/// The change feed's consumers and how far behind each is (the change feed plugs in here).
pub fn feed_consumers(consumers: &[FeedConsumer], now: OffsetDateTime) -> String {
    let mut out = String::from(
        "<h3>Change-feed consumers</h3><div class=\"scroll\"><table><thead><tr><th>consumer</th>\
         <th>lag (changes)</th><th>last read</th></tr></thead><tbody>",
    );
    for c in consumers {
        let _ = write!(
            out,
            "<tr><td>{}</td><td{}>{}</td><td>{}</td></tr>",
            text(&c.name),
            if c.lag > 0 { " class=\"warn\"" } else { "" },
            if c.lag >= LAG_COUNTED_UP_TO {
                format!("{}+", c.lag)
            } else {
                c.lag.to_string()
            },
            c.last_read.map_or("never".to_string(), |t| ago(t, now))
        );
    }
    if consumers.is_empty() {
        out.push_str("<tr><td colspan=\"3\">none</td></tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// The deletion brake's held changes: how many, and the oldest of them (`total` counts all).
pub fn held_changes(held: &[HeldChange], total: usize, now: OffsetDateTime) -> String {
    let total = total.max(held.len());
    let mut out = format!(
        "<h3>Held by the deletion brake: <span{} data-held=\"{total}\">{total}</span></h3>",
        if total == 0 { "" } else { " class=\"warn\"" },
    );
    if held.is_empty() {
        return out;
    }
    if total > held.len() {
        let _ = write!(
            out,
            "<p class=\"muted\">the oldest {} of them; <code>grouptalk-scim brake status</code> \
             shows all</p>",
            held.len()
        );
    }
    out.push_str(
        "<div class=\"scroll\"><table><thead><tr><th>when</th><th>kind</th><th>id</th>\
         <th>operation</th></tr></thead><tbody>",
    );
    for h in held {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td><a href=\"/history?q={}\"><code>{}</code></a></td><td>{}</td></tr>",
            ago(h.at, now),
            text(&h.kind),
            query_value(&h.resource_id),
            text(&h.resource_id),
            text(&h.operation)
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

/// `/history?q=…`: what the text matched, its change rows and its logged requests. `error` is
/// shown instead when the search was refused (too long).
pub fn history(query: &str, found: Result<&History, &str>, now: OffsetDateTime) -> String {
    let mut out = String::new();
    header(&mut out, now, query);
    out.push_str("<main><section>");
    let h = match found {
        Err(message) => {
            let _ = write!(
                out,
                "<p class=\"warn\">{}</p></section></main>",
                text(message)
            );
            return page("history — grouptalk-scim", &out);
        }
        Ok(h) => h,
    };
    let _ = write!(out, "<h2>History of <q>{}</q></h2>", text(query));
    if h.matches.is_empty() {
        out.push_str("<p>No user or group has this id, userName or displayName now.</p>");
    } else {
        out.push_str("<ul class=\"matches\">");
        for m in &h.matches {
            let _ = write!(
                out,
                "<li>{} <b>{}</b> in tenant {} — id <code>{}</code></li>",
                text(&m.kind),
                text(m.name.as_deref().unwrap_or("")),
                text(&m.tenant),
                text(&m.id)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str(
        "<h3>Changes</h3><div class=\"scroll\"><table><thead><tr><th>when</th><th>tenant</th>\
         <th>kind</th><th>id</th><th>operation</th><th>revision</th></tr></thead><tbody>",
    );
    for c in &h.changes {
        let _ = write!(
            out,
            "<tr><td><time datetime=\"{}\">{}</time></td><td>{}</td><td>{}</td><td><code>{}</code></td>\
             <td>{}</td><td>{}</td></tr>",
            attr(&c.at.to_string()),
            text(&c.at.to_string()),
            text(c.tenant.as_deref().unwrap_or("-")),
            text(&c.kind),
            text(&c.resource_id),
            text(&c.operation),
            c.revision.map(|v| v.to_string()).unwrap_or_default()
        );
    }
    if h.changes.is_empty() {
        out.push_str("<tr><td colspan=\"6\">none</td></tr>");
    }
    out.push_str("</tbody></table></div><h3>Requests</h3>");
    requests_table(&mut out, &h.requests, now, true);
    out.push_str("</section></main>");
    page("history — grouptalk-scim", &out)
}

#[cfg(test)]
mod tests;
