//! The command line: the contract administrators and scripts depend on. One file per command.
//!
//! Commands print results on stdout and everything else on stderr; errors are one line
//! (`error: …`), never a backtrace.

mod backup;
mod brake;
mod check_config;
mod client;
mod feed;
mod history;
mod log;
mod selftest;
mod serve;
mod stats;
mod tenant;
mod token;
mod trash;

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
    /// Users, groups, memberships, recent requests, tokens and OAuth clients per tenant
    Stats(stats::StatsArgs),
    /// Write a consistent copy of the database while the server runs (or --verify one)
    Backup(backup::BackupArgs),
    /// Replace the database with a backup (the server must be stopped)
    Restore(backup::RestoreArgs),
    /// Run Microsoft's gallery validation checks against a running appliance (makes and
    /// deletes test users and groups in the token's tenant)
    Selftest(selftest::SelftestArgs),
    /// The change feed GroupTalk reads: consumers, lag, and the change log
    #[command(subcommand)]
    Feed(feed::FeedCommand),
    /// The deletion brake: changes the feed holds after many removals; release or discard them
    #[command(subcommand)]
    Brake(brake::BrakeCommand),
    /// Deleted users and groups: list them, restore one (same id, attributes, memberships)
    #[command(subcommand)]
    Trash(trash::TrashCommand),
    /// Every request that touched a user or group, and what each write changed
    History(history::HistoryArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(cli.config.as_deref(), args),
        Command::Tenant(cmd) => tenant::run(&load_config(cli.config.as_deref())?, cmd),
        Command::Token(cmd) => token::run(&load_config(cli.config.as_deref())?, cmd),
        Command::Client(cmd) => client::run(&load_config(cli.config.as_deref())?, cmd),
        Command::CheckConfig => check_config::run(cli.config.as_deref()),
        Command::Log(args) => log::run(&load_config(cli.config.as_deref())?, args),
        Command::Feed(cmd) => feed::run(&load_config(cli.config.as_deref())?, cmd),
        Command::Brake(cmd) => brake::run(&load_config(cli.config.as_deref())?, cmd),
        Command::Trash(cmd) => trash::run(&load_config(cli.config.as_deref())?, cmd),
        Command::History(args) => history::run(&load_config(cli.config.as_deref())?, args),
        Command::Stats(args) => stats::run(&load_config(cli.config.as_deref())?, args),
        Command::Backup(args) => backup::run_backup(&load_config(cli.config.as_deref())?, args),
        Command::Restore(args) => backup::run_restore(&load_config(cli.config.as_deref())?, args),
        Command::Selftest(args) => selftest::run(args),
    }
}

fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    Config::load(Config::default(), explicit)
}

/// Open the database for a CLI command. Files the command creates as root inside a data dir
/// owned by the service user are handed to that user, so the service can still write them.
/// `store::open_connection` never reaches the database through a symbolic link.
pub(crate) fn open_db(config: &Config) -> anyhow::Result<Connection> {
    crate::fsutil::ensure_data_dir(&config.data_dir)?;
    let conn = crate::store::open_connection(&config.database_path())?;
    hand_over_to_owner(config);
    Ok(conn)
}

/// The files of the data directory a CLI run as root may create or replace: the signing key,
/// the database with its side files, and what `restore` leaves.
fn owned_files(config: &Config) -> Vec<String> {
    let name = |p: PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let db = name(config.database_path());
    let mut names = vec![name(config.signing_key_path()), db.clone()];
    names.extend(
        crate::fsutil::DATABASE_SIDE_FILES
            .iter()
            .map(|suffix| format!("{db}{suffix}")),
    );
    names.push(format!("{db}{}", crate::store::backup::BEFORE_RESTORE));
    names
}

/// When run as root on a data dir another user owns (the service account), give that user the
/// files root created there. The service account can plant anything under those names, so
/// `fsutil::hand_over` gives only regular files root owns, opened without following links, and
/// never the target of a link; what it refuses is said on stderr.
pub(crate) fn hand_over_to_owner(config: &Config) {
    let running_as_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !running_as_root {
        return;
    }
    let names = owned_files(config);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    match crate::fsutil::hand_over(&config.data_dir, &names) {
        Ok(outcome) => {
            for (name, what) in outcome {
                if let crate::fsutil::HandOver::Refused(why) = what {
                    eprintln!(
                        "warning: left {} as it is instead of handing it to the data directory's owner: {why}",
                        config.data_dir.join(name).display()
                    );
                }
            }
        }
        Err(e) => eprintln!(
            "warning: cannot hand files in {} to the data directory's owner: {e:#}",
            config.data_dir.display()
        ),
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

/// The id of the tenant named `name` (a `--tenant` argument), or an error that says none is.
fn tenant_named(
    conn: &rusqlite::Connection,
    name: &str,
) -> anyhow::Result<crate::domain::TenantId> {
    use anyhow::Context;
    Ok(crate::store::tenants::get_by_name(conn, name)?
        .with_context(|| format!("no tenant named {name:?}"))?
        .id)
}

/// `tenant_named` for an optional `--tenant`.
fn tenant_option(
    conn: &rusqlite::Connection,
    name: Option<&str>,
) -> anyhow::Result<Option<crate::domain::TenantId>> {
    name.map(|name| tenant_named(conn, name)).transpose()
}
