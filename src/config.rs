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
    pub admin: AdminConfig,
    pub limits: LimitsConfig,
    pub backup: BackupConfig,
    pub oauth: OAuthConfig,
    pub feed: FeedConfig,
    pub brake: BrakeConfig,
    pub trash: TrashConfig,
}

/// The deletion brake (docs/brake.md): how many removals (deactivations, deletions, membership
/// removals) a tenant may make within a sliding window before the change feed holds the rest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BrakeConfig {
    /// Removals allowed in the window; 0 disables the brake.
    pub max_removals: u32,
    /// The same as a fraction of the tenant's active users, in [0, 1]; the larger applies.
    pub max_fraction: f64,
    /// The sliding window, minutes (at least 1).
    pub window_minutes: u32,
}

impl BrakeConfig {
    /// What the store reads during a write.
    pub fn settings(&self) -> crate::brake::Settings {
        crate::brake::Settings {
            max_removals: self.max_removals,
            max_fraction: self.max_fraction,
            window_minutes: self.window_minutes,
        }
    }
}

/// The trash (docs/trash-and-history.md): how long a deleted user or group can be restored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrashConfig {
    /// Deleted users and groups are kept this many days (1..=365), then purged.
    pub retention_days: u32,
}

/// The change feed (`/feed/v1/`, docs/feed.md): how long its changes are kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Changes are kept at least this many days.
    pub retention_days: u32,
    /// Beyond `retention_days`, a change is kept until every consumer that recorded a position
    /// (`PUT /feed/v1/position`) within this many days has read past it — but never longer.
    pub max_retention_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// Seconds an access token from `/oauth2/token` is valid (3600..=21600: Microsoft's gallery
    /// asks for 60 minutes to 6 hours).
    pub access_token_lifetime_secs: u64,
    /// A PEM file of CA certificates trusted, besides Mozilla's roots, when a federated
    /// client's JWKS is fetched over HTTPS (an identity provider with a private CA). Empty: none.
    pub jwks_ca_file: String,
}

/// What `Config::settings` parsed out of the file's text fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `server.listen`.
    pub listen: SocketAddr,
    /// `admin.listen`; None when the file says `""` (off).
    pub admin_listen: Option<SocketAddr>,
    /// `server.public_url` without a trailing slash; None when empty (then derived from `Host`).
    pub public_url: Option<String>,
    /// `backup.dir`; None when empty (scheduled backups off).
    pub backup_dir: Option<PathBuf>,
    /// `server.trusted_proxies`, parsed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `oauth.jwks_ca_file`; None when empty.
    pub jwks_ca_file: Option<PathBuf>,
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
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
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
    /// Provisioning-log entries older than this are pruned.
    pub retention_days: u32,
    /// At most this many provisioning-log entries are kept.
    pub retention_rows: u64,
    /// Keep the bodies of SCIM writes with their provisioning-log entries (passwords stripped,
    /// at most 16 KiB each), for `history`. Never the OAuth token endpoint's form.
    pub keep_bodies: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Listener for the dashboard (/), /metrics, /healthz, /readyz, /livez. Empty disables it.
    /// Anything but a loopback address needs `tls = true` and a `token`.
    pub listen: String,
    /// Also serve /metrics on the public HTTPS listener (off: metrics stay private).
    pub metrics_on_public_port: bool,
    /// Serve the admin listener over HTTPS with the server's certificate (`[tls]`).
    pub tls: bool,
    /// When set, the dashboard and /metrics ask for it with HTTP Basic (any user name, this as
    /// the password). At least 16 characters. Never printed by `check-config`.
    pub token: String,
    /// Host names (besides IP addresses and `localhost`) the dashboard answers to: the `Host`
    /// header is checked so a web page cannot reach it through DNS rebinding.
    pub allowed_hosts: Vec<String>,
}

/// Shortest `admin.token` accepted.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// Largest request head (request line + headers); larger ones are refused.
    pub max_header_bytes: usize,
    /// A client must send its request headers within this time (slow clients are cut off).
    pub header_read_timeout_secs: u64,
    /// A TLS handshake must finish within this time.
    pub handshake_timeout_secs: u64,
    /// A request is answered 503 if it takes longer than this (Entra gives up after ~60 s).
    pub request_timeout_secs: u64,
    /// Connections beyond this are closed at once.
    pub max_connections: usize,
    /// Sustained requests per second allowed per token (429 with Retry-After above it).
    pub rate_per_token: u32,
    /// Burst allowed per token above the sustained rate.
    pub rate_burst: u32,
    /// Open connections per client address; more are closed at once.
    pub max_connections_per_address: usize,
    /// A connection with no request in flight for this long is closed (HTTP/1 and HTTP/2).
    pub idle_timeout_secs: u64,
    /// Failed authentications per client address per minute before 429.
    pub auth_failures_per_minute: u32,
    /// Provisioning-log entries per client address per minute for unauthenticated requests.
    pub anonymous_log_per_minute: u32,
    /// Concurrent data-sized reads per tenant.
    pub reads_per_tenant: usize,
    /// How long one read may run before it is stopped.
    pub read_budget_secs: u64,
    /// Group members one list page may carry.
    pub max_members_per_page: usize,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_grace_secs: u64,
    /// Values one multi-valued attribute (`emails`, `phoneNumbers`, `addresses`, `roles`…) of
    /// a resource may hold; more is 400 invalidValue. Group members are not counted here.
    pub max_values_per_attribute: usize,
    /// Operations one PATCH request may carry; more is 400 invalidValue.
    pub max_patch_operations: usize,
    /// Group members one request may name (a POST/PUT body, or all operations of a PATCH);
    /// more is 400 invalidValue. A group may have any number of members.
    pub max_members_per_request: usize,
    /// Milliseconds one write may hold the database writer; past it the write is rolled back and
    /// answered 503 (nothing changed). 0: no limit.
    pub writer_job_budget_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// Directory for scheduled backups. Empty disables scheduled backups.
    pub dir: String,
    /// Hours between scheduled backups.
    pub interval_hours: u32,
    /// Scheduled backups kept; older ones are deleted.
    pub keep: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/grouptalk-scim"),
            server: ServerConfig {
                listen: "0.0.0.0:8443".into(),
                public_url: String::new(),
                base_path: "/api/scim".into(),
                trusted_proxies: Vec::new(),
            },
            tls: TlsConfig {
                enabled: true,
                cert: PathBuf::from("/etc/grouptalk-scim/tls/fullchain.pem"),
                key: PathBuf::from("/etc/grouptalk-scim/tls/privkey.pem"),
            },
            log: LogConfig {
                level: "info".into(),
                retention_days: 30,
                retention_rows: 1_000_000,
                keep_bodies: false,
            },
            admin: AdminConfig {
                listen: "127.0.0.1:9464".into(),
                metrics_on_public_port: false,
                tls: false,
                token: String::new(),
                allowed_hosts: Vec::new(),
            },
            limits: LimitsConfig {
                max_body_bytes: 2 * 1024 * 1024,
                max_header_bytes: 256 * 1024,
                header_read_timeout_secs: 15,
                handshake_timeout_secs: 10,
                request_timeout_secs: 60,
                max_connections: 1024,
                rate_per_token: 200,
                rate_burst: 400,
                max_connections_per_address: 64,
                idle_timeout_secs: 120,
                auth_failures_per_minute: 60,
                anonymous_log_per_minute: 30,
                reads_per_tenant: 4,
                read_budget_secs: 20,
                max_members_per_page: 100_000,
                shutdown_grace_secs: 20,
                max_values_per_attribute: 100,
                max_patch_operations: 1000,
                max_members_per_request: 10_000,
                writer_job_budget_ms: 5000,
            },
            backup: BackupConfig {
                dir: String::new(),
                interval_hours: 24,
                keep: 7,
            },
            oauth: OAuthConfig {
                access_token_lifetime_secs: 3600,
                jwks_ca_file: String::new(),
            },
            feed: FeedConfig {
                retention_days: 30,
                max_retention_days: 90,
            },
            brake: BrakeConfig {
                max_removals: crate::brake::Settings::DEFAULT.max_removals,
                max_fraction: crate::brake::Settings::DEFAULT.max_fraction,
                window_minutes: crate::brake::Settings::DEFAULT.window_minutes,
            },
            trash: TrashConfig { retention_days: 30 },
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
        self.settings().map(|_| ())
    }

    /// The values a file writes as text, parsed once: addresses, the public URL, and what an
    /// empty string switches off (`admin.listen = ""`, `backup.dir = ""`) as `None`. Every
    /// config file that loads is accepted here; `load` has already called it.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let listen = self.listen_addr()?;
        let bp = &self.server.base_path;
        if !bp.starts_with('/') || bp.contains(['?', '#', ' ']) {
            bail!("server.base_path must start with '/' and contain no '?', '#' or spaces (got {bp:?})");
        }
        let url = &self.server.public_url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            bail!("server.public_url must start with https:// or http:// (got {url:?})");
        }
        let public_url = (!url.is_empty()).then(|| url.trim_end_matches('/').to_string());
        if self.data_dir.as_os_str().is_empty() {
            bail!("data_dir must not be empty");
        }
        let admin_listen = match self.admin.listen.as_str() {
            "" => None,
            text => Some(text.parse::<SocketAddr>().with_context(|| {
                format!("admin.listen must be an address:port or empty (got {text:?})")
            })?),
        };
        self.check_admin(admin_listen)?;
        let l = &self.limits;
        if l.max_body_bytes < 1024 || l.max_header_bytes < 8192 {
            bail!("limits.max_body_bytes must be at least 1024 and limits.max_header_bytes at least 8192");
        }
        if l.max_connections == 0 || l.rate_per_token == 0 || l.rate_burst == 0 {
            bail!("limits.max_connections, limits.rate_per_token and limits.rate_burst must be at least 1");
        }
        if l.header_read_timeout_secs == 0
            || l.handshake_timeout_secs == 0
            || l.request_timeout_secs == 0
        {
            bail!("limits.*_timeout_secs must be at least 1");
        }
        let lifetime = self.oauth.access_token_lifetime_secs;
        if !(3600..=21600).contains(&lifetime) {
            bail!(
                "oauth.access_token_lifetime_secs must be between 3600 and 21600 (got {lifetime})"
            );
        }
        let jwks_ca_file =
            (!self.oauth.jwks_ca_file.is_empty()).then(|| PathBuf::from(&self.oauth.jwks_ca_file));
        let days = self.trash.retention_days;
        if !(1..=365).contains(&days) {
            bail!("trash.retention_days must be between 1 and 365 (got {days})");
        }
        let f = &self.feed;
        if f.retention_days == 0 || f.max_retention_days < f.retention_days {
            bail!(
                "feed.retention_days must be at least 1 and feed.max_retention_days at least \
                 feed.retention_days (got {} and {})",
                f.retention_days,
                f.max_retention_days
            );
        }
        let b = &self.brake;
        if !(0.0..=1.0).contains(&b.max_fraction) || b.window_minutes == 0 {
            bail!(
                "brake.max_fraction must be between 0 and 1 and brake.window_minutes at least 1 \
                 (got {} and {})",
                b.max_fraction,
                b.window_minutes
            );
        }
        let backup_dir = (!self.backup.dir.is_empty()).then(|| PathBuf::from(&self.backup.dir));
        if backup_dir.is_some() && (self.backup.interval_hours == 0 || self.backup.keep == 0) {
            bail!("backup.interval_hours and backup.keep must be at least 1");
        }
        let trusted_proxies = self
            .server
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .with_context(|| {
                        format!("server.trusted_proxies: {p:?} is not an address or CIDR range")
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let l = &self.limits;
        if l.max_connections_per_address == 0
            || l.idle_timeout_secs == 0
            || l.auth_failures_per_minute == 0
            || l.reads_per_tenant == 0
            || l.read_budget_secs == 0
            || l.max_members_per_page == 0
        {
            bail!(
                "limits.max_connections_per_address, idle_timeout_secs, auth_failures_per_minute, \
                   reads_per_tenant, read_budget_secs and max_members_per_page must be at least 1"
            );
        }
        // Zero here would refuse every write that carries a value, an operation or a member.
        if l.max_values_per_attribute == 0
            || l.max_patch_operations == 0
            || l.max_members_per_request == 0
        {
            bail!(
                "limits.max_values_per_attribute, max_patch_operations and \
                   max_members_per_request must be at least 1"
            );
        }
        Ok(Settings {
            listen,
            admin_listen,
            public_url,
            backup_dir,
            trusted_proxies,
            jwks_ca_file,
        })
    }

    /// The admin listener off loopback serves the dashboard and /metrics to a network: only over
    /// TLS and with a token, so neither a passive listener nor a web page in a browser there
    /// can read them.
    fn check_admin(&self, admin_listen: Option<SocketAddr>) -> anyhow::Result<()> {
        let a = &self.admin;
        if !a.token.is_empty() && a.token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
            bail!("admin.token must be at least {MIN_ADMIN_TOKEN_CHARS} characters");
        }
        if a.tls && !self.tls.enabled {
            bail!("admin.tls needs the server's certificate: tls.enabled must be true");
        }
        if let Some(addr) = admin_listen {
            if !addr.ip().is_loopback() && (!a.tls || a.token.is_empty()) {
                bail!(
                    "admin.listen {addr} is not a loopback address: the dashboard and /metrics \
                     would be open to the network; set admin.tls = true and admin.token (or \
                     keep admin.listen on 127.0.0.1 and use an SSH tunnel)"
                );
            }
        }
        for h in &a.allowed_hosts {
            if h.is_empty() || h.contains([':', '/', ' ']) {
                bail!("admin.allowed_hosts: {h:?} is not a host name (no port, no scheme)");
            }
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
    /// tokens live in files, which are named, never printed; `admin.token` is replaced.
    pub fn to_toml(&self) -> String {
        let mut shown = self.clone();
        if !shown.admin.token.is_empty() {
            shown.admin.token = "(set, not shown)".into();
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
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
    fn trash_retention_and_keep_bodies_are_read_and_checked() {
        let c = Config::default();
        assert_eq!((c.trash.retention_days, c.log.keep_bodies), (30, false));
        let c = load_text("[trash]\nretention_days = 7\n[log]\nkeep_bodies = true\n").unwrap();
        assert_eq!((c.trash.retention_days, c.log.keep_bodies), (7, true));
        for bad in [0, 366] {
            let err = load_text(&format!("[trash]\nretention_days = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("trash.retention_days"), "{err}");
        }
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
    fn empty_strings_switch_off_and_urls_are_parsed_once() {
        let c = load_text(
            "[admin]\nlisten = \"\"\n[server]\npublic_url = \"https://scim.example.org:8443/\"\n",
        )
        .unwrap();
        let s = c.settings().unwrap();
        assert_eq!(s.admin_listen, None);
        assert_eq!(s.backup_dir, None);
        assert_eq!(
            s.public_url.as_deref(),
            Some("https://scim.example.org:8443")
        );
        let d = Config::default().settings().unwrap();
        assert_eq!(d.admin_listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(d.public_url, None);
        let err = load_text("[admin]\nlisten = \"nope\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("admin.listen"), "{err}");
    }

    #[test]
    fn write_limits_of_zero_are_refused_by_name() {
        for key in [
            "max_values_per_attribute",
            "max_patch_operations",
            "max_members_per_request",
        ] {
            let err = load_text(&format!("[limits]\n{key} = 0\n"))
                .and_then(|c| c.settings().map(|_| ()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn admin_off_loopback_needs_tls_and_a_token() {
        let refused = [
            "[admin]\nlisten = \"0.0.0.0:9464\"\n",
            "[admin]\nlisten = \"10.0.0.5:9464\"\ntls = true\n",
            "[admin]\nlisten = \"10.0.0.5:9464\"\ntoken = \"0123456789abcdef\"\n",
            "[admin]\ntoken = \"short\"\n",
            "[admin]\nallowed_hosts = [\"evil.example:80\"]\n",
        ];
        for text in refused {
            assert!(load_text(text).is_err(), "{text}");
        }
        let c = load_text(
            "[admin]\nlisten = \"[::]:9464\"\ntls = true\ntoken = \"0123456789abcdef\"\n",
        )
        .unwrap();
        assert!(!c.to_toml().contains("0123456789abcdef"));
        assert!(load_text("[admin]\nlisten = \"[::1]:9464\"\n").is_ok());
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
