//! `check-config`: print the effective configuration and check what can be checked without
//! starting: values, data directory, TLS certificate and key; where the dashboard is and how it is
//! protected; then what Entra's OAuth connection needs: the token endpoint to paste and the
//! clients with their secrets' expiry.

use std::path::Path;

use crate::config::Config;
use crate::domain::Timestamp;
use crate::store::{self, clients};

/// Secrets that expire within this many days are called out.
const SOON_DAYS: i64 = 30;

pub fn run(explicit: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(Config::default(), explicit)?;
    print!("{}", config.to_toml());
    if config.tls.enabled {
        crate::tls::load_certified_key(&config.tls.cert, &config.tls.key)?;
        eprintln!("TLS certificate and key: ok");
    } else {
        eprintln!("TLS disabled: serve only behind a TLS-terminating proxy");
    }
    let settings = config.settings()?;
    if let Some(ca) = &settings.jwks_ca_file {
        crate::auth::jwks::trust_anchors(Some(ca))?;
        eprintln!("oauth.jwks_ca_file {}: ok", ca.display());
    }
    if config.data_dir.exists() && !config.data_dir.is_dir() {
        anyhow::bail!(
            "data_dir {} exists but is not a directory",
            config.data_dir.display()
        );
    }
    admin_summary(&config)?;
    oauth_summary(&config)?;
    eprintln!("configuration ok");
    Ok(())
}

/// Where the dashboard is and how it is protected (`Config::load` has already refused a
/// non-loopback listener without TLS and a token).
fn admin_summary(config: &Config) -> anyhow::Result<()> {
    let Some(addr) = config.settings()?.admin_listen else {
        eprintln!("Dashboard: off (admin.listen is empty)");
        return Ok(());
    };
    let scheme = if config.admin.tls { "https" } else { "http" };
    let token = if config.admin.token.is_empty() {
        "no token"
    } else {
        "admin.token required (HTTP Basic)"
    };
    if addr.ip().is_loopback() {
        eprintln!(
            "Dashboard: {scheme}://{addr}/ ({token}; from elsewhere: ssh -L {port}:{addr} this-host)",
            port = addr.port()
        );
    } else {
        eprintln!("Dashboard: {scheme}://{addr}/ ({token})");
    }
    Ok(())
}

/// The OAuth token endpoint (or why there is none) and every client that is not revoked, with
/// how many active secrets it has and when the first of them expires. Read-only.
fn oauth_summary(config: &Config) -> anyhow::Result<()> {
    let public_url = config.server.public_url.trim_end_matches('/');
    if public_url.is_empty() {
        eprintln!("OAuth token endpoint: off (set server.public_url to serve /oauth2/token)");
    } else {
        eprintln!(
            "OAuth token endpoint: {public_url}/oauth2/token (access tokens valid {} s)",
            config.oauth.access_token_lifetime_secs
        );
    }
    let Some(conn) = store::open_for_inspection(&config.database_path())? else {
        eprintln!("OAuth clients: no database yet");
        return Ok(());
    };
    let now = Timestamp::now().unix_seconds();
    let active: Vec<_> = clients::list(&conn, None)?
        .into_iter()
        .filter(|c| c.revoked.is_none())
        .collect();
    eprintln!("OAuth clients: {}", active.len());
    for client in active {
        let secrets: Vec<_> = clients::secrets(&conn, &client.id)?
            .into_iter()
            .filter(|s| s.revoked.is_none())
            .collect();
        let usable = secrets
            .iter()
            .filter(|s| s.expires.unix_seconds() > now)
            .count();
        let first = secrets.iter().map(|s| s.expires).min();
        let warning = match first.map(|e| (e.unix_seconds() - now).div_euclid(86_400)) {
            None => " (no secret: add one with `client secret add`)".to_string(),
            Some(d) if d < 0 => " (a secret has EXPIRED)".to_string(),
            Some(d) if d < SOON_DAYS => format!(" (a secret expires in {d} days)"),
            Some(_) => String::new(),
        };
        let first = first.map(|e| e.to_string()).unwrap_or_else(|| "-".into());
        eprintln!(
            "  client {} tenant {} scopes {}: {usable} usable secret(s), first expiry {first}{warning}",
            client.id, client.tenant_name, client.scopes
        );
    }
    Ok(())
}
