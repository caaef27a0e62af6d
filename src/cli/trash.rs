//! `trash list` and `trash restore`: deleted users and groups, and undoing a deletion
//! (docs/trash-and-history.md). Opens the database directly, next to a running server.

use std::io::Write;

use anyhow::bail;
use clap::{Args, Subcommand};
use rusqlite::TransactionBehavior;

use super::log::{json_line, printable};
use crate::config::Config;
use crate::store::trash::{self, Restore};

#[derive(Debug, Subcommand)]
pub enum TrashCommand {
    /// Deleted users and groups that can still be restored, most recent first
    List(ListArgs),
    /// Put a deleted user or group back: same id, attributes and memberships, a new version
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// One JSON object: {"trash": [...]}
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The id of the deleted user or group (`trash list`)
    pub id: String,
    /// Only restore it from this tenant's trash
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// One JSON object describing what was restored
    #[arg(long)]
    pub json: bool,
}

pub fn run(config: &Config, cmd: TrashCommand) -> anyhow::Result<()> {
    let mut conn = super::open_db(config)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        TrashCommand::List(args) => {
            let tenant = super::tenant_option(&conn, args.tenant.as_deref())?;
            let rows = trash::list(&conn, tenant.as_ref())?;
            if args.json {
                let v = serde_json::json!({ "trash": rows });
                writeln!(out, "{}", json_line(&v))?;
                return Ok(());
            }
            writeln!(
                out,
                "{:<24} {:<16} {:<5} {:<36} {:>7} {:>7}  NAME",
                "DELETED", "TENANT", "TYPE", "ID", "MEMBERS", "GROUPS"
            )?;
            for r in &rows {
                writeln!(
                    out,
                    "{:<24} {:<16} {:<5} {:<36} {:>7} {:>7}  {}",
                    printable(&r.deleted),
                    printable(&r.tenant),
                    r.kind,
                    printable(&r.id),
                    r.members,
                    r.groups,
                    printable(r.name.as_deref().unwrap_or("-"))
                )?;
            }
            if rows.is_empty() {
                writeln!(out, "(the trash is empty)")?;
            }
            Ok(())
        }
        TrashCommand::Restore(args) => {
            let tenant = super::tenant_option(&conn, args.tenant.as_deref())?;
            // IMMEDIATE: take the write lock first, so a running server's writer and this
            // transaction never deadlock on an upgrade; busy_timeout waits for its commit.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let outcome = trash::restore(&tx, tenant.as_ref(), &args.id)?;
            let r = match outcome {
                Restore::Restored(r) => r,
                Restore::NotInTrash => match &args.tenant {
                    Some(name) => bail!(
                        "no user or group {:?} in the trash of tenant {name:?} (see `grouptalk-scim trash list`)",
                        printable(&args.id)
                    ),
                    None => bail!(
                        "no user or group {:?} in the trash (see `grouptalk-scim trash list`)",
                        printable(&args.id)
                    ),
                },
                Restore::Taken {
                    attribute,
                    value,
                    by,
                } => bail!(
                    "cannot restore {}: live resource {by} now has {attribute} {:?}; delete or rename it first",
                    printable(&args.id),
                    printable(&value)
                ),
            };
            tx.commit()?;
            if args.json {
                writeln!(out, "{}", json_line(&serde_json::to_value(&r)?))?;
            } else {
                writeln!(
                    out,
                    "restored {} {} ({}) in tenant {} at version {}: {} member(s), {} group(s) given back",
                    r.kind,
                    r.id,
                    printable(r.name.as_deref().unwrap_or("-")),
                    printable(&r.tenant),
                    r.version,
                    r.members_restored,
                    r.groups_restored
                )?;
                if r.members_gone + r.groups_gone > 0 {
                    writeln!(
                        out,
                        "not given back ({} member(s), {} group(s)): they no longer exist",
                        r.members_gone, r.groups_gone
                    )?;
                }
            }
            eprintln!(
                "warning: Entra ID manages this {} again only once it is back in the scope of the \
                 Entra app's provisioning (assigned, or in an assigned group); until then Entra \
                 leaves it as it is — or deletes it again if it is still out of scope",
                if r.kind == "Group" { "group" } else { "user" }
            );
            Ok(())
        }
    }
}
