//! `feed status` (consumers, positions, lag, oldest retained change) and `feed tail` (the
//! change log, `--follow`): the change feed as the administrator sees it (docs/feed.md).

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::config::Config;
use crate::store::feed;

#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Consumers and their positions and lag, the retained log
    Status(StatusArgs),
    /// Print the newest changes (and, with --follow, new ones as they commit)
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Keep printing changes as they commit (Ctrl-C to stop)
    #[arg(long)]
    pub follow: bool,
    /// One JSON object per line
    #[arg(long)]
    pub json: bool,
    /// How many of the newest changes to show first
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: u32,
}

pub fn run(config: &Config, cmd: FeedCommand) -> anyhow::Result<()> {
    let conn = super::open_db(config)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        FeedCommand::Status(args) => {
            let tenant = super::tenant_option(&conn, args.tenant.as_deref())?;
            let s = feed::status(&conn, tenant.as_ref())?;
            if args.json {
                writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?;
                return Ok(());
            }
            writeln!(
                out,
                "epoch {}  latest seq {}  retained {} changes (oldest {})  pruned through {}",
                s.epoch,
                s.latest_seq,
                s.retained_changes,
                s.oldest_retained.as_deref().unwrap_or("-"),
                s.pruned_through
            )?;
            writeln!(
                out,
                "{:<16} {:<38} {:>10} {:>10} {:>10}  UPDATED",
                "TENANT", "CONSUMER", "POSITION", "LAG", "LAG_SECS"
            )?;
            for c in &s.consumers {
                writeln!(
                    out,
                    "{:<16} {:<38} {:>10} {:>10} {:>10}  {}",
                    c.tenant, c.consumer, c.position, c.lag_changes, c.lag_seconds, c.updated
                )?;
            }
            if s.consumers.is_empty() {
                writeln!(out, "(no consumer has recorded a position)")?;
            }
            Ok(())
        }
        FeedCommand::Tail(args) => {
            let tenant = super::tenant_option(&conn, args.tenant.as_deref())?;
            let mut after = feed::tail_start(&conn, tenant.as_ref(), args.limit as usize)?;
            if !args.json {
                writeln!(
                    out,
                    "{:>8} {:<24} {:<16} {:<5} {:<36} {:<10} {:>4}  MEMBERS",
                    "SEQ", "TIME", "TENANT", "TYPE", "ID", "OP", "REV"
                )?;
            }
            loop {
                let rows = feed::tail(&conn, tenant.as_ref(), after, 1000)?;
                for r in &rows {
                    if args.json {
                        writeln!(out, "{}", serde_json::to_string(r)?)?;
                    } else {
                        writeln!(
                            out,
                            "{:>8} {:<24} {:<16} {:<5} {:<36} {:<10} {:>4}  +{} -{}",
                            r.seq,
                            r.time,
                            r.tenant,
                            r.kind,
                            r.id,
                            r.op,
                            r.revision,
                            r.added,
                            r.removed
                        )?;
                    }
                    after = r.seq;
                }
                out.flush()?;
                if !args.follow {
                    return Ok(());
                }
                if rows.is_empty() {
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }
}
