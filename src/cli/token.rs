//! `token issue`, `token list`, `token revoke`. The token is printed once, as the last line of
//! stdout, and never stored: the database keeps only its id and its scopes (`--scope`).

use anyhow::{bail, Context};
use base64::Engine;
use clap::Subcommand;
use rusqlite::Connection;

use super::client::{scope_set, ScopeArg};
use crate::auth::{unix_now, Claims, SigningKey};
use crate::config::Config;
use crate::domain::{Scopes, Timestamp, TokenId};
use crate::store::{tenants, tokens};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a secret token for a tenant (printed alone on the last line of stdout)
    Issue {
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// A note to recognise the token by in `token list`
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
        /// Expire the token after N days (default: never; Entra quarantines on expiry, so plan renewal)
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=36500))]
        expires_in_days: Option<u32>,
        /// What the token may do (repeat for both): scim = read and write the directory,
        /// feed.read = read only
        #[arg(long = "scope", value_name = "SCOPE", default_value = "scim")]
        scopes: Vec<ScopeArg>,
    },
    /// List tokens (never shows the token itself)
    List {
        #[arg(long, value_name = "NAME")]
        tenant: Option<String>,
    },
    /// Revoke a token by its id or by the token itself; takes effect on the next request
    Revoke {
        #[arg(value_name = "ID_OR_TOKEN")]
        id_or_token: String,
    },
}

pub fn run(config: &Config, cmd: TokenCommand) -> anyhow::Result<()> {
    let conn = super::open_db(config)?;
    match cmd {
        TokenCommand::Issue {
            tenant,
            label,
            expires_in_days,
            scopes,
        } => {
            let key = super::signing_key(config, &conn)?;
            let scopes = scope_set(&scopes);
            let (id, token) = issue(
                &conn,
                &key,
                &tenant,
                label.as_deref(),
                expires_in_days,
                scopes,
            )?;
            eprintln!("issued token {id} for tenant {tenant} (scopes: {scopes})");
            println!("{token}");
        }
        TokenCommand::List { tenant } => {
            if let Some(t) = &tenant {
                if tenants::get_by_name(&conn, t)?.is_none() {
                    bail!("no tenant named {t:?} (see `grouptalk-scim tenant list`)");
                }
            }
            println!(
                "{:<36}  {:<16}  {:<16}  {:<24}  {:<24}  {:<24}  {:<24}  SCOPES",
                "ID", "TENANT", "LABEL", "CREATED", "EXPIRES", "REVOKED", "LAST USED"
            );
            for t in tokens::list(&conn, tenant.as_deref())? {
                println!(
                    "{:<36}  {:<16}  {:<16}  {:<24}  {:<24}  {:<24}  {:<24}  {}",
                    t.id,
                    t.tenant_name,
                    t.label.as_deref().unwrap_or("-"),
                    t.created,
                    t.expires.map_or("never".into(), |e| e.to_string()),
                    t.revoked.map_or("-".into(), |r| r.to_string()),
                    t.last_used.map_or("never".into(), |u| u.to_string()),
                    t.scopes,
                );
            }
        }
        TokenCommand::Revoke { id_or_token } => {
            let id = token_id(&id_or_token)?;
            if !tokens::revoke(&conn, &id)? {
                bail!("no token with id {id}");
            }
            eprintln!("revoked token {id}");
        }
    }
    Ok(())
}

/// Create the token record and sign the JWT. Shared with `serve --dev`.
pub(crate) fn issue(
    conn: &Connection,
    key: &SigningKey,
    tenant: &str,
    label: Option<&str>,
    days: Option<u32>,
    scopes: Scopes,
) -> anyhow::Result<(TokenId, String)> {
    let t = tenants::get_by_name(conn, tenant)?.with_context(|| {
        format!(
            "no tenant named {tenant:?}; create it with `grouptalk-scim tenant create {tenant}`"
        )
    })?;
    let id = TokenId::new(uuid::Uuid::new_v4().to_string());
    let iat = unix_now();
    let exp = days.map(|d| iat + i64::from(d) * 86_400);
    let at = |secs: i64| -> anyhow::Result<Timestamp> {
        Ok(time::OffsetDateTime::from_unix_timestamp(secs)?.into())
    };
    let token = key.issue(&Claims::new(id.to_string(), t.id.to_string(), iat, exp))?;
    tokens::insert(
        conn,
        &id,
        &t.id,
        label,
        at(iat)?,
        exp.map(at).transpose()?,
        scopes,
    )?;
    Ok((id, token))
}

/// A token id, or the `jti` read from a token (no signature check: revoking is always safe).
fn token_id(arg: &str) -> anyhow::Result<TokenId> {
    let arg = arg.trim();
    if uuid::Uuid::parse_str(arg).is_ok() {
        return Ok(TokenId::new(arg));
    }
    let payload = arg
        .split('.')
        .nth(1)
        .context("argument is neither a token id nor a token")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .context("argument is neither a token id nor a token")?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).context("token payload is not JSON")?;
    v.get("jti")
        .and_then(|j| j.as_str())
        .map(TokenId::new)
        .context("token has no id (jti)")
}
