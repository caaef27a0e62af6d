//! `stats`: the directory and its traffic at a glance, per tenant: counts, requests, and the
//! credentials (tokens, OAuth clients and their secrets) with what expires soon.

use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::store::{brake, stats, tenants};

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
        let counts = stats::tenant_counts(&conn, &t.id)?;
        println!("tenant {} ({})", t.name, t.id);
        println!("  users        {}", counts.users);
        println!("  active users {}", counts.active_users);
        println!("  groups       {}", counts.groups);
        println!("  memberships  {}", counts.memberships);
        for b in brake::status(&conn, Some(&t.id), &config.brake.settings())? {
            match &b.since {
                Some(since) => println!(
                    "  brake        HOLDING {} change(s) since {since} (threshold {}): \
                     `grouptalk-scim brake release` or `brake discard`",
                    b.held, b.threshold
                ),
                None => println!("  brake        nothing held (threshold {})", b.threshold),
            }
        }
        for (label, since) in [("last hour", &hour_ago), ("last day", &day_ago)] {
            let classes = stats::request_classes(&conn, &t.id, since)?;
            let shown = if classes.is_empty() {
                "no requests".to_string()
            } else {
                classes
                    .iter()
                    .map(|(class, n)| format!("{class}xx: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!("  requests, {label}: {shown}");
        }
        for token in stats::token_uses(&conn, &t.id)? {
            let mut state = String::new();
            if token.revoked.is_some() {
                state.push_str(" REVOKED");
            } else if let Some(e) = &token.expires {
                if e.as_str() <= soon.as_str() {
                    state.push_str(&format!(" EXPIRES SOON ({e})"));
                }
            }
            println!(
                "  token {} [{}] last request: {}{state}",
                token.id,
                token.label.as_deref().unwrap_or("-"),
                token.last_request.as_deref().unwrap_or("never")
            );
        }
        let soon_at = crate::domain::Timestamp::from(now + time::Duration::days(30));
        let now_at = crate::domain::Timestamp::from(now);
        for client in stats::client_uses(&conn, &t.id)? {
            println!(
                "  client {} [{}] scopes: {} last request: {}{}",
                client.id,
                client.label.as_deref().unwrap_or("-"),
                client.scopes,
                client.last_request.as_deref().unwrap_or("never"),
                if client.revoked { " REVOKED" } else { "" }
            );
            for secret in &client.secrets {
                let state = if secret.revoked {
                    " REVOKED"
                } else if secret.expires <= now_at {
                    " EXPIRED"
                } else if secret.expires <= soon_at {
                    " EXPIRES SOON"
                } else {
                    ""
                };
                println!("    secret {} expires {}{state}", secret.id, secret.expires);
            }
            let id = crate::domain::ClientId::new(client.id.as_str());
            if let Some(f) = crate::store::federations::federation(&conn, &id)? {
                println!(
                    "    federated: jwks {} issuer {} subject {}",
                    f.jwks, f.issuer, f.subject
                );
            }
        }
    }
    Ok(())
}
