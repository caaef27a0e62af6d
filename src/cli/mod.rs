//! The command line: the contract administrators and scripts depend on. One file per command.
//!
//! Commands print results on stdout and everything else on stderr; errors are one line
//! (`error: …`), never a backtrace.

mod backup;
mod check_config;
mod client;
mod log;
mod serve;
mod stats;
mod tenant;
mod token;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use rusqlite::Connection;

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "grouptalk-scim",
    version,
    about = "SCIM 2.0 provisioning endpoint for self-hosted GroupTalk, fed by Microsoft Entra ID"
)]
pub struct Cli {
    /// Configuration file (default: $GROUPTALK_SCIM_CONFIG, else /etc/grouptalk-scim/config.toml)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTPS SCIM server
    Serve(serve::ServeArgs),
    /// Manage tenants (one per Entra ID tenant)
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Issue, list and revoke the secret tokens Entra ID presents
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// OAuth clients for Entra's client-credentials grant: create, list, secrets, revoke
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Print the effective configuration and check that it is usable
    CheckConfig,
    /// Show the provisioning log: what Entra ID sent and what was answered
    Log(log::LogArgs),
    /// Users, groups, memberships, recent requests and token health per tenant
    Stats(stats::StatsArgs),
    /// Write a consistent copy of the database while the server runs (or --verify one)
    Backup(backup::BackupArgs),
    /// Replace the database with a backup (the server must be stopped)
    Restore(backup::RestoreArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(cli.config.as_deref(), args),
        Command::Tenant(cmd) => tenant::run(&load_config(cli.config.as_deref())?, cmd),
        Command::Token(cmd) => token::run(&load_config(cli.config.as_deref())?, cmd),
        Command::Client(cmd) => client::run(&load_config(cli.config.as_deref())?, cmd),
        Command::CheckConfig => check_config::run(cli.config.as_deref()),
        Command::Log(args) => log::run(&load_config(cli.config.as_deref())?, args),
        Command::Stats(args) => stats::run(&load_config(cli.config.as_deref())?, args),
        Command::Backup(args) => backup::run_backup(&load_config(cli.config.as_deref())?, args),
        Command::Restore(args) => backup::run_restore(&load_config(cli.config.as_deref())?, args),
    }
}

fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    Config::load(Config::default(), explicit)
}

/// Open the database for a CLI command. Files the command creates as root inside a data dir
/// owned by the service user are handed to that user, so the service can still write them.
pub(crate) fn open_db(config: &Config) -> anyhow::Result<Connection> {
    crate::fsutil::ensure_data_dir(&config.data_dir)?;
    let conn = crate::store::open_connection(&config.database_path())?;
    hand_over_to_owner(config);
    Ok(conn)
}

pub(crate) fn hand_over_to_owner(config: &Config) {
    let running_as_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let Ok(dir) = std::fs::metadata(&config.data_dir) else {
        return;
    };
    if !running_as_root || dir.uid() == 0 {
        return;
    }
    let db = config.database_path();
    let mut files = vec![config.signing_key_path(), db.clone()];
    for suffix in ["-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        files.push(PathBuf::from(p));
    }
    for f in files.iter().filter(|f| f.exists()) {
        if let Err(e) = std::os::unix::fs::chown(f, Some(dir.uid()), Some(dir.gid())) {
            eprintln!(
                "warning: cannot hand {} to the data directory's owner: {e}",
                f.display()
            );
        }
    }
}

/// Load the token signing key, creating it on first use — but never silently replace a key that
/// tokens were issued with: every token Entra holds would stop working without a word.
pub(crate) fn signing_key(
    config: &Config,
    conn: &Connection,
) -> anyhow::Result<crate::auth::SigningKey> {
    let path = config.signing_key_path();
    if !path.exists() {
        let active = crate::store::tokens::count_active(conn)?;
        if active > 0 {
            anyhow::bail!(
                "signing key {} is missing but {active} unrevoked token(s) were issued with it; restore it from a backup \
                 (to start over instead, revoke every token with `grouptalk-scim token revoke`)",
                path.display()
            );
        }
    }
    let key = crate::auth::SigningKey::load_or_create(&path)?;
    hand_over_to_owner(config);
    Ok(key)
}
