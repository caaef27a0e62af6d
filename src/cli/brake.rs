//! `brake status`, `brake release`, `brake discard`: the deletion brake as the administrator
//! decides it (docs/brake.md). Opens the database directly, like every CLI command; a release
//! reaches waiting feed consumers within a second (their long-poll looks again on its own).

use std::io::Write;

use clap::{Args, Subcommand};

use crate::config::Config;
use crate::domain::TenantId;
use crate::store::{brake, tenants};

#[derive(Debug, Subcommand)]
pub enum BrakeCommand {
    /// Held changes per tenant, since when, and the tenant's threshold
    Status(StatusArgs),
    /// Deliver the held changes to the change feed, in their order
    Release(Which),
    /// Drop the held changes: never delivered (the SCIM state stays as Entra left it)
    Discard(Which),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// One JSON object: {"tenants": [{"tenant", "held", "since", "threshold"}]}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Which {
    /// The tenant whose held changes to decide
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Every tenant's
    #[arg(long)]
    pub all: bool,
}

pub fn run(config: &Config, cmd: BrakeCommand) -> anyhow::Result<()> {
    let mut conn = super::open_db(config)?;
    let settings = config.brake.settings();
    let mut out = std::io::stdout().lock();
    match cmd {
        BrakeCommand::Status(args) => {
            let tenant = args
                .tenant
                .as_deref()
                .map(|n| super::tenant_named(&conn, n))
                .transpose()?;
            let rows = brake::status(&conn, tenant.as_ref(), &settings)?;
            if args.json {
                let body = serde_json::json!({ "tenants": rows });
                writeln!(out, "{body}")?;
                return Ok(());
            }
            if !settings.enabled() {
                writeln!(out, "(the brake is off: brake.max_removals = 0)")?;
            }
            writeln!(
                out,
                "{:<24} {:>8} {:>10}  SINCE",
                "TENANT", "HELD", "THRESHOLD"
            )?;
            for r in &rows {
                writeln!(
                    out,
                    "{:<24} {:>8} {:>10}  {}",
                    r.tenant,
                    r.held,
                    r.threshold,
                    r.since.as_deref().unwrap_or("-")
                )?;
            }
            Ok(())
        }
        BrakeCommand::Release(which) => decide(&mut conn, &mut out, which, Decision::Release),
        BrakeCommand::Discard(which) => decide(&mut conn, &mut out, which, Decision::Discard),
    }
}

#[derive(Clone, Copy)]
enum Decision {
    Release,
    Discard,
}

fn decide(
    conn: &mut rusqlite::Connection,
    out: &mut impl Write,
    which: Which,
    decision: Decision,
) -> anyhow::Result<()> {
    let targets: Vec<(TenantId, String)> = match which.tenant {
        Some(name) => vec![(super::tenant_named(conn, &name)?, name)],
        None => tenants::list(conn)?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect(),
    };
    // One transaction: every tenant's held changes are decided, or none.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut done = Vec::new();
    for (id, name) in targets {
        let n = match decision {
            Decision::Release => brake::release(&tx, &id)?,
            Decision::Discard => brake::discard(&tx, &id)?,
        };
        done.push((name, n));
    }
    tx.commit()?;
    for (name, n) in done {
        match decision {
            Decision::Release => writeln!(
                out,
                "{name}: released {n} held change(s) to the change feed"
            )?,
            Decision::Discard => writeln!(
                out,
                "{name}: discarded {n} held change(s); the feed will never deliver them (the \
                 SCIM state keeps them: consumers differ from it for those resources until \
                 their next change)"
            )?,
        }
    }
    Ok(())
}
