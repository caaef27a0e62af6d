//! `client create`, `client list`, `client secret add`, `client secret revoke`, `client revoke`,
//! `client federate`, `client unfederate`: the OAuth clients Entra's client-credentials grant
//! authenticates as, with a secret or (federated) with a JWT its identity provider signs.
//!
//! A secret is printed once, when it is made (`create`, `secret add`): alone on the last line of
//! stdout, or as `client_secret` in the one JSON object `--json` prints. The database keeps only
//! its argon2id hash; nothing prints or logs a secret afterwards, and an argument that holds
//! one (`secret revoke` given the secret instead of its id) is never echoed.

use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use rusqlite::Connection;
use serde_json::json;

use crate::auth::assertion::KeySet;
use crate::auth::jwks::JwksSource;
use crate::auth::secrets;
use crate::config::Config;
use crate::domain::{ClientId, Scope, Scopes, SecretId, Timestamp};
use crate::store::clients::{self, SecretRecord};
use crate::store::federations::{self, FederationRecord, NewFederation};
use crate::store::tenants;

/// A new secret's lifetime when none is given.
const DEFAULT_SECRET_DAYS: i64 = 365;
/// The longest a secret may live: 3 years.
const MAX_SECRET_DAYS: i64 = 1095;

/// A scope as the command line names it (`--scope`, repeatable); shared with `token issue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// Read and write the tenant's directory over SCIM (what Entra needs)
    #[value(name = "scim")]
    Scim,
    /// Read only (GET on SCIM resources, the change feed)
    #[value(name = "feed.read")]
    FeedRead,
}

/// The set of scopes named on the command line.
pub(crate) fn scope_set(args: &[ScopeArg]) -> Scopes {
    args.iter().fold(Scopes::default(), |set, a| {
        set.with(match a {
            ScopeArg::Scim => Scope::Scim,
            ScopeArg::FeedRead => Scope::FeedRead,
        })
    })
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create an OAuth client for a tenant with its first secret (the secret is printed once,
    /// alone on the last line of stdout; the client id on the line before)
    Create {
        #[arg(long, value_name = "NAME")]
        tenant: String,
        /// A note to recognise the client by in `client list`
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
        /// What the client may ask for (repeat for both): scim = read and write the
        /// directory, feed.read = read only
        #[arg(long = "scope", value_name = "SCOPE", default_value = "scim")]
        scopes: Vec<ScopeArg>,
        /// The secret expires after N days (1 to 1095)
        #[arg(long, value_name = "N", default_value_t = DEFAULT_SECRET_DAYS, allow_negative_numbers = true)]
        secret_expires_in_days: i64,
        /// Print one JSON object: client_id, client_secret, secret_id, expires_at
        #[arg(long)]
        json: bool,
    },
    /// List clients with their secrets' ids and expiry (never the secrets)
    List {
        #[arg(long, value_name = "NAME")]
        tenant: Option<String>,
        /// Print one JSON object: {"clients": [...]}
        #[arg(long)]
        json: bool,
    },
    /// Add or revoke a client's secrets (several may be valid at once, for rotation)
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Revoke a client: no new access tokens, and those it holds stop on their next request
    Revoke {
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
    },
    /// Let a client authenticate with a JWT its identity provider signs (workload identity
    /// federation, RFC 7523) instead of a secret; replaces the client's earlier federation
    Federate {
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
        /// The identity provider's keys: an absolute path to a JWKS file, or an https:// URL
        /// (fetched and refreshed by the server)
        #[arg(long, value_name = "FILE_OR_HTTPS_URL")]
        jwks: String,
        /// The assertion's `iss`, exactly
        #[arg(long, value_name = "ISS")]
        issuer: String,
        /// The assertion's `sub`, exactly
        #[arg(long, value_name = "SUB")]
        subject: String,
        /// The assertion's `aud` (default: this server's token endpoint URL)
        #[arg(long, value_name = "AUD")]
        audience: Option<String>,
        /// Print one JSON object: the federation
        #[arg(long)]
        json: bool,
    },
    /// Remove a client's federation: no access token on an assertion any more, and those
    /// issued on one stop on their next request (its secrets, if any, go on working)
    Unfederate {
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Add a secret to a client (printed once, alone on the last line of stdout)
    Add {
        #[arg(value_name = "CLIENT_ID")]
        client_id: String,
        /// The secret expires after N days (1 to 1095)
        #[arg(long, value_name = "N", default_value_t = DEFAULT_SECRET_DAYS, allow_negative_numbers = true)]
        expires_in_days: i64,
        /// Print one JSON object: client_id, client_secret, secret_id, expires_at
        #[arg(long)]
        json: bool,
    },
    /// Revoke a secret: no new access tokens with it, and those issued with it stop on their
    /// next request (the client's other secrets go on working)
    Revoke {
        #[arg(value_name = "SECRET_ID")]
        secret_id: String,
    },
}

pub fn run(config: &Config, cmd: ClientCommand) -> anyhow::Result<()> {
    let mut conn = super::open_db(config)?;
    match cmd {
        ClientCommand::Create {
            tenant,
            label,
            scopes,
            secret_expires_in_days,
            json,
        } => {
            let expires = expiry("--secret-expires-in-days", secret_expires_in_days)?;
            let t = tenants::get_by_name(&conn, &tenant)?.with_context(|| {
                format!(
                    "no tenant named {tenant:?}; create it with `grouptalk-scim tenant create {tenant}`"
                )
            })?;
            let scopes = scope_set(&scopes);
            let (secret_id, secret, phc) = new_secret()?;
            // The client and its first secret together, or neither.
            let tx = conn.transaction()?;
            let client = clients::create(&tx, &t.id, label.as_deref(), scopes)?;
            let record = clients::add_secret(&tx, &client.id, &secret_id, &phc, expires)?;
            tx.commit()?;
            eprintln!(
                "created client {} for tenant {} (scopes: {scopes})",
                client.id, t.name
            );
            print_secret(&record, &secret, json, true);
        }
        ClientCommand::List { tenant, json } => list(&conn, config, tenant.as_deref(), json)?,
        ClientCommand::Secret(SecretCommand::Add {
            client_id,
            expires_in_days,
            json,
        }) => {
            let expires = expiry("--expires-in-days", expires_in_days)?;
            let id = ClientId::new(client_id.trim());
            let client = clients::get(&conn, &id)?.with_context(|| {
                format!("no client with id {id} (see `grouptalk-scim client list`)")
            })?;
            if client.revoked.is_some() {
                bail!(
                    "client {id} is revoked; create a new one with `grouptalk-scim client create`"
                );
            }
            let (secret_id, secret, phc) = new_secret()?;
            let record = clients::add_secret(&conn, &id, &secret_id, &phc, expires)?;
            eprintln!("added secret {secret_id} to client {id}");
            print_secret(&record, &secret, json, false);
        }
        ClientCommand::Secret(SecretCommand::Revoke { secret_id }) => {
            let id = secret_id_of(&secret_id);
            let Some(secret) = clients::get_secret(&conn, &id)? else {
                bail!("no client secret with id {id} (see `grouptalk-scim client list`)");
            };
            clients::revoke_secret(&conn, &id)?;
            eprintln!("revoked secret {id} of client {}", secret.client_id);
        }
        ClientCommand::Federate {
            client_id,
            jwks,
            issuer,
            subject,
            audience,
            json,
        } => {
            let id = ClientId::new(client_id.trim());
            let new = NewFederation {
                jwks: jwks.trim(),
                issuer: issuer.trim(),
                subject: subject.trim(),
                audience: audience.as_deref().map(str::trim),
            };
            let record = federate(&mut conn, config, &id, &new)?;
            eprintln!(
                "client {id} now accepts assertions of issuer {:?} and subject {:?} signed by a key of {}",
                record.issuer, record.subject, record.jwks
            );
            if json {
                println!("{}", federation_json(&record, config));
            } else {
                println!("{}", record.id);
            }
        }
        ClientCommand::Unfederate { client_id } => {
            let id = ClientId::new(client_id.trim());
            if clients::get(&conn, &id)?.is_none() {
                bail!("no client with id {id} (see `grouptalk-scim client list`)");
            }
            if !federations::unfederate(&conn, &id)? {
                bail!("client {id} is not federated");
            }
            eprintln!("removed the federation of client {id}");
        }
        ClientCommand::Revoke { client_id } => {
            let id = ClientId::new(client_id.trim());
            if !clients::revoke(&conn, &id)? {
                bail!("no client with id {id} (see `grouptalk-scim client list`)");
            }
            eprintln!("revoked client {id}");
        }
    }
    Ok(())
}

/// Check and store a federation (in one transaction with the removal of the one it replaces).
fn federate(
    conn: &mut Connection,
    config: &Config,
    id: &ClientId,
    new: &NewFederation<'_>,
) -> anyhow::Result<FederationRecord> {
    let client = clients::get(conn, id)?
        .with_context(|| format!("no client with id {id} (see `grouptalk-scim client list`)"))?;
    if client.revoked.is_some() {
        bail!("client {id} is revoked; create a new one with `grouptalk-scim client create`");
    }
    for (flag, value) in [("--issuer", new.issuer), ("--subject", new.subject)] {
        if value.is_empty() || value.len() > 1024 {
            bail!("{flag} must be 1 to 1024 characters");
        }
    }
    if new.audience.is_some_and(|a| a.is_empty() || a.len() > 1024) {
        bail!("--audience must be 1 to 1024 characters");
    }
    if new.audience.is_none() && config.server.public_url.trim().is_empty() {
        eprintln!(
            "warning: server.public_url is not set in this configuration: the token endpoint, \
             and the default audience (its URL), need it"
        );
    }
    match JwksSource::parse(new.jwks).map_err(anyhow::Error::msg)? {
        JwksSource::File(path) => {
            // Read now so a typo is found here, not by the first token request.
            let bytes = std::fs::read(&path)
                .with_context(|| format!("cannot read the JWKS file {}", path.display()))?;
            let keys = KeySet::from_jwks(&bytes)
                .map_err(|e| anyhow::anyhow!("{} is not a usable JWKS: {e}", path.display()))?;
            eprintln!(
                "{}: {} signing key(s); the server reads it again when it changes (it must be \
                 readable by the service account)",
                path.display(),
                keys.len()
            );
        }
        JwksSource::Https { .. } => {}
    }
    if let Some(other) = federations::federation_by_subject(conn, new.issuer, new.subject)? {
        if other.client_id != *id {
            bail!(
                "client {} is already federated with this issuer and subject; unfederate it first",
                other.client_id
            );
        }
    }
    let tx = conn.transaction()?;
    let record = federations::federate(&tx, id, new)?;
    tx.commit()?;
    Ok(record)
}

/// A federation as `federate --json` and `list --json` show it: `audience` is the one in
/// force (the token endpoint's URL when none was given), `audience_is_default` says which.
fn federation_json(f: &FederationRecord, config: &Config) -> serde_json::Value {
    let public = config.server.public_url.trim().trim_end_matches('/');
    let audience = match &f.audience {
        Some(a) => Some(a.clone()),
        None if public.is_empty() => None,
        None => Some(format!("{public}{}", crate::http::oauth::TOKEN_PATH)),
    };
    json!({
        "client_id": f.client_id.as_str(),
        "federation_id": f.id.as_str(),
        "jwks": f.jwks,
        "issuer": f.issuer,
        "subject": f.subject,
        "audience": audience,
        "audience_is_default": f.audience.is_none(),
        "created": f.created.to_string(),
    })
}

/// `now + days`, once `days` is within 1..=1095.
fn expiry(flag: &str, days: i64) -> anyhow::Result<Timestamp> {
    if !(1..=MAX_SECRET_DAYS).contains(&days) {
        bail!("{flag} must be from 1 to {MAX_SECRET_DAYS} days (3 years), not {days}");
    }
    Ok(Timestamp::from(
        time::OffsetDateTime::now_utc() + time::Duration::days(days),
    ))
}

/// A fresh secret: (its id, its text, its argon2id hash).
fn new_secret() -> anyhow::Result<(SecretId, String, String)> {
    let (id, text) = secrets::generate();
    let phc = secrets::hash(&text)?;
    Ok((id, text, phc))
}

/// The one time a secret is shown. Without `--json`: the client id (for `create`), then the
/// secret alone on the last line; what it is and until when goes to stderr.
fn print_secret(record: &SecretRecord, secret: &str, json: bool, with_client_id: bool) {
    if json {
        let v = json!({
            "client_id": record.client_id.as_str(),
            "client_secret": secret,
            "secret_id": record.id.as_str(),
            "expires_at": record.expires.to_string(),
        });
        println!("{v}");
        return;
    }
    eprintln!(
        "secret {} expires {}; it is shown only now: paste it into Entra ID (Client Secret)",
        record.id, record.expires
    );
    if with_client_id {
        println!("{}", record.client_id);
    }
    println!("{secret}");
}

/// A secret id, or the id part of a secret pasted in its place (never echoed).
fn secret_id_of(arg: &str) -> SecretId {
    let arg = arg.trim();
    match secrets::split(arg) {
        Some((id, _)) => id,
        None => SecretId::new(arg.split('.').next().unwrap_or_default()),
    }
}

fn list(
    conn: &Connection,
    config: &Config,
    tenant: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    if let Some(t) = tenant {
        if tenants::get_by_name(conn, t)?.is_none() {
            bail!("no tenant named {t:?} (see `grouptalk-scim tenant list`)");
        }
    }
    let now = Timestamp::now();
    let mut out = Vec::new();
    if !json {
        println!(
            "{:<36}  {:<16}  {:<16}  {:<15}  {:<24}  REVOKED",
            "CLIENT ID", "TENANT", "LABEL", "SCOPES", "CREATED"
        );
    }
    for c in clients::list(conn, tenant)? {
        let secrets = clients::secrets(conn, &c.id)?;
        let federation = federations::federation(conn, &c.id)?;
        if json {
            out.push(json!({
                "client_id": c.id.as_str(),
                "tenant": c.tenant_name,
                "label": c.label,
                "scopes": c.scopes.to_string(),
                "created": c.created.to_string(),
                "revoked": c.revoked.map(|r| r.to_string()),
                "secrets": secrets.iter().map(|s| json!({
                    "secret_id": s.id.as_str(),
                    "created": s.created.to_string(),
                    "expires_at": s.expires.to_string(),
                    "revoked": s.revoked.map(|r| r.to_string()),
                })).collect::<Vec<_>>(),
                "federation": federation.as_ref().map(|f| federation_json(f, config)),
            }));
            continue;
        }
        println!(
            "{:<36}  {:<16}  {:<16}  {:<15}  {:<24}  {}",
            c.id,
            c.tenant_name,
            c.label.as_deref().unwrap_or("-"),
            // As strings: the domain types' Display ignores width.
            c.scopes.to_string(),
            c.created.to_string(),
            c.revoked.map_or("-".into(), |r| r.to_string()),
        );
        for s in &secrets {
            let state = match s.revoked {
                Some(r) => format!("revoked {r}"),
                None if s.expires <= now => "EXPIRED".to_string(),
                None => "active".to_string(),
            };
            println!("  secret {}  expires {}  {state}", s.id, s.expires);
        }
        if let Some(f) = &federation {
            let aud = federation_json(f, config)["audience"]
                .as_str()
                .unwrap_or("(server.public_url not set)")
                .to_string();
            println!(
                "  federated  jwks {}  issuer {}  subject {}  audience {aud}",
                f.jwks, f.issuer, f.subject
            );
        }
    }
    if json {
        println!("{}", json!({ "clients": out }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_lifetimes_outside_one_day_to_three_years_are_refused() {
        for days in [0, -1, 1096, 100_000] {
            let e = expiry("--expires-in-days", days).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("--expires-in-days must be from 1 to 1095 days (3 years), not {days}")
            );
        }
        let now = Timestamp::now();
        for days in [1, 365, 1095] {
            let at = expiry("--expires-in-days", days).unwrap();
            let secs = at.unix_seconds() - now.unix_seconds();
            assert!((secs - days * 86_400).abs() < 5, "{days}: {secs}");
        }
    }

    #[test]
    fn scope_flags_make_a_set() {
        assert_eq!(scope_set(&[ScopeArg::Scim]), Scopes::SCIM);
        let both = scope_set(&[ScopeArg::FeedRead, ScopeArg::Scim, ScopeArg::FeedRead]);
        assert_eq!(both.to_string(), "scim feed.read");
    }

    #[test]
    fn a_pasted_secret_revokes_by_its_id_only() {
        let (id, text) = secrets::generate();
        assert_eq!(secret_id_of(&text), id);
        assert_eq!(secret_id_of(&format!("  {id} ")), id);
        assert_eq!(
            secret_id_of("not-a-uuid.some-secret").as_str(),
            "not-a-uuid"
        );
    }
}
