//! Configuration: built-in defaults < TOML file < `GROUPTALK_SCIM_*` environment (figment).
//!
//! The file comes from `--config FILE`, else `$GROUPTALK_SCIM_CONFIG`, else
//! `/etc/grouptalk-scim/config.toml`; an absent default file means "defaults". Unknown keys are an
//! error that names the key, so a typo never silently falls back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/grouptalk-scim/config.toml";
pub const ENV_PREFIX: &str = "GROUPTALK_SCIM_";
pub const CONFIG_ENV: &str = "GROUPTALK_SCIM_CONFIG";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the SQLite database and the token signing key live.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port of the HTTPS listener.
    pub listen: String,
    /// External base URL (scheme, host, port) used in `meta.location` and `Location`.
    /// Empty: derived from the request's `Host` header.
    pub public_url: String,
    /// Path prefix of the SCIM endpoints. Entra's tenant URL is public_url + base_path + "/".
    pub base_path: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// false only behind a TLS-terminating reverse proxy.
    pub enabled: bool,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// tracing filter, e.g. "info" or "grouptalk_scim=debug". `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/grouptalk-scim"),
            server: ServerConfig {
                listen: "0.0.0.0:8443".into(),
                public_url: String::new(),
                base_path: "/api/scim".into(),
            },
            tls: TlsConfig {
                enabled: true,
                cert: PathBuf::from("/etc/grouptalk-scim/tls/fullchain.pem"),
                key: PathBuf::from("/etc/grouptalk-scim/tls/privkey.pem"),
            },
            log: LogConfig {
                level: "info".into(),
            },
        }
    }
}

impl Config {
    /// The development defaults of `serve --dev`: local data dir, loopback, self-signed cert.
    pub fn dev() -> Self {
        let data_dir = PathBuf::from("grouptalk-scim-dev");
        let mut c = Config::default();
        c.server.listen = "127.0.0.1:8443".into();
        c.tls.cert = data_dir.join("tls/cert.pem");
        c.tls.key = data_dir.join("tls/key.pem");
        c.data_dir = data_dir;
        c
    }

    /// Load from `base` defaults, the chosen file, and the environment.
    ///
    /// `explicit` is `--config FILE`: that file, or the one named by `$GROUPTALK_SCIM_CONFIG`,
    /// must exist; only the built-in default path may be absent.
    pub fn load(base: Config, explicit: Option<&Path>) -> anyhow::Result<Config> {
        let from_env = std::env::var_os(CONFIG_ENV).map(PathBuf::from);
        let (path, required) = match (explicit, from_env) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) => (p, true),
            (None, None) => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let mut figment = Figment::from(Serialized::defaults(base));
        if path.exists() {
            // Read it ourselves so an unreadable file is an error, not silently "no file".
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            figment = figment.merge(Toml::string(&text));
        } else if required {
            bail!("config file {} does not exist", path.display());
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).ignore(&["config"]).split("__"));
        let config: Config = figment.extract().map_err(|e| {
            anyhow::anyhow!(
                "invalid configuration ({}): {}",
                path.display(),
                describe_figment_error(e)
            )
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that need no I/O: values that parse and fit together.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        let bp = &self.server.base_path;
        if !bp.starts_with('/') || bp.contains(['?', '#', ' ']) {
            bail!("server.base_path must start with '/' and contain no '?', '#' or spaces (got {bp:?})");
        }
        let url = &self.server.public_url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            bail!("server.public_url must start with https:// or http:// (got {url:?})");
        }
        if self.data_dir.as_os_str().is_empty() {
            bail!("data_dir must not be empty");
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.server.listen.parse().with_context(|| {
            format!(
                "server.listen must be an address:port such as 0.0.0.0:8443 (got {:?})",
                self.server.listen
            )
        })
    }

    /// `base_path` without a trailing slash ("" when it is "/").
    pub fn base_path(&self) -> &str {
        self.server.base_path.trim_end_matches('/')
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("grouptalk-scim.db")
    }

    pub fn signing_key_path(&self) -> PathBuf {
        self.data_dir.join("signing.key")
    }

    /// The effective configuration as TOML, for `check-config`. Holds no secrets: keys and
    /// tokens live in files, which are named, never printed.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

fn describe_figment_error(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            match &e.kind {
                figment::error::Kind::UnknownField(field, _) => {
                    let at = if key.is_empty() {
                        String::new()
                    } else {
                        format!(" in [{key}]")
                    };
                    format!("unknown key '{field}'{at}")
                }
                _ if key.is_empty() => e.kind.to_string(),
                _ => format!("{key}: {}", e.kind),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text)?;
        Config::load(Config::default(), Some(&path))
    }

    #[test]
    fn file_overrides_defaults() {
        let c =
            load_text("data_dir = \"/tmp/x\"\n[server]\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.server.listen, "127.0.0.1:9000");
        assert_eq!(c.server.base_path, "/api/scim");
        assert!(c.tls.enabled);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load_text("[server]\nlisen = \"1\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn bad_listen_is_rejected() {
        let err = load_text("[server]\nlisten = \"nope\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.listen"), "{err}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Config::load(Config::default(), Some(Path::new("/nonexistent/c.toml")));
        assert!(err.is_err());
    }

    #[test]
    fn shipped_config_file_is_the_default() {
        let text = include_str!("../config/grouptalk-scim.toml");
        let c = load_text(text).unwrap();
        assert_eq!(c, Config::default());
    }
}
