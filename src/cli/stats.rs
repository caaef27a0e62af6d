//! `stats`: the directory and its traffic at a glance, per tenant.

use anyhow::Context;
use clap::Args;
use rusqlite::params;

use crate::config::Config;
use crate::store::tenants;

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
}

pub fn run(config: &Config, args: StatsArgs) -> anyhow::Result<()> {
    let conn = super::open_db(config)?;
    let list = match &args.tenant {
        Some(name) => vec![tenants::get_by_name(&conn, name)?
            .with_context(|| format!("no tenant named {name:?}"))?],
        None => tenants::list(&conn)?,
    };
    let rfc = &time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    let hour_ago = (now - time::Duration::hours(1)).format(rfc)?;
    let day_ago = (now - time::Duration::days(1)).format(rfc)?;
    let soon = (now + time::Duration::days(30)).format(rfc)?;
    for t in list {
        let count =
            |sql: &str| -> anyhow::Result<i64> { Ok(conn.query_row(sql, [&t.id], |r| r.get(0))?) };
        println!("tenant {} ({})", t.name, t.id);
        println!(
            "  users        {}",
            count("SELECT count(*) FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND kind = 'User'")?
        );
        println!("  active users {}", count("SELECT count(*) FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND kind = 'User' AND active = 1")?);
        println!(
            "  groups       {}",
            count("SELECT count(*) FROM resources WHERE tenant = (SELECT key FROM tenants WHERE id = ?1) AND kind = 'Group'")?
        );
        println!(
            "  memberships  {}",
            count(
                "SELECT count(*) FROM members m JOIN resources g ON g.seq = m.group_seq \
                 WHERE g.tenant = (SELECT key FROM tenants WHERE id = ?1)"
            )?
        );
        for (label, since) in [("last hour", &hour_ago), ("last day", &day_ago)] {
            let mut stmt = conn.prepare_cached(
                "SELECT status / 100, count(*) FROM request_log WHERE tenant_id = ?1 AND at >= ?2 GROUP BY 1 ORDER BY 1",
            )?;
            let classes: Vec<String> = stmt
                .query_map(params![t.id, since], |r| {
                    Ok(format!(
                        "{}xx: {}",
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let shown = if classes.is_empty() {
                "no requests".to_string()
            } else {
                classes.join(", ")
            };
            println!("  requests, {label}: {shown}");
        }
        let mut stmt = conn.prepare_cached(
            "SELECT k.id, k.label, (SELECT max(at) FROM request_log l WHERE l.token_id = k.id), k.expires, k.revoked \
             FROM tokens k WHERE k.tenant_id = ?1 ORDER BY k.created",
        )?;
        let rows = stmt.query_map([&t.id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        for row in rows {
            let (id, label, last, expires, revoked) = row?;
            let mut state = String::new();
            if revoked.is_some() {
                state.push_str(" REVOKED");
            } else if let Some(e) = &expires {
                if e.as_str() <= soon.as_str() {
                    state.push_str(&format!(" EXPIRES SOON ({e})"));
                }
            }
            println!(
                "  token {id} [{}] last request: {}{state}",
                label.as_deref().unwrap_or("-"),
                last.as_deref().unwrap_or("never")
            );
        }
    }
    Ok(())
}
