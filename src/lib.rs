//! grouptalk-scim: a SCIM 2.0 endpoint (RFC 7643/7644) that Microsoft Entra ID provisions
//! GroupTalk users and groups into. See ARCHITECTURE.md for the map.

pub mod app;
pub mod auth;
pub mod brake;
pub mod budget;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod domain;
pub mod fsutil;
pub mod gallery;
pub mod http;
pub mod lifecycle;
pub mod lock;
pub mod maintenance;
pub mod scim;
pub mod store;
pub mod telemetry;
pub mod tls;

/// Logs to stderr as plain lines (journald adds its own timestamps and levels are kept).
/// `RUST_LOG` wins over the configured level.
pub fn init_tracing(level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
