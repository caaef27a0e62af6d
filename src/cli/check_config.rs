//! `check-config`: print the effective configuration and check what can be checked without
//! starting: values, data directory, TLS certificate and key.

use std::path::Path;

use crate::config::Config;

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
    eprintln!("configuration ok");
    Ok(())
}
