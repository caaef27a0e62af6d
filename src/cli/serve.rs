//! `serve` and `serve --dev`: start the HTTPS server.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use tokio::sync::watch;

use crate::app::App;
use crate::auth::SigningKey;
use crate::config::Config;
use crate::http::{admin, server};
use crate::lifecycle::sd_notify;
use crate::store::{tenants, Store};
use crate::tls;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Development mode: data in ./grouptalk-scim-dev/, self-signed certificate for localhost,
    /// listen on 127.0.0.1:8443, tenant `dev` and a printed token. No config file needed.
    #[arg(long)]
    pub dev: bool,
    /// Once listening, write the bound addresses to FILE as one JSON object
    /// (`{"public": "127.0.0.1:8443", "admin": "127.0.0.1:9464"}`; `admin` is null when the
    /// admin listener is off). For scripts and tests that bind port 0; written atomically.
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<std::path::PathBuf>,
}

pub fn run(explicit: Option<&Path>, args: ServeArgs) -> anyhow::Result<()> {
    let base = if args.dev {
        Config::dev()
    } else {
        Config::default()
    };
    // In dev mode the system config file is not read unless asked for.
    let config = if args.dev
        && explicit.is_none()
        && std::env::var_os(crate::config::CONFIG_ENV).is_none()
    {
        Config::load(base, Some(Path::new("/dev/null")))?
    } else {
        Config::load(base, explicit)?
    };
    crate::init_tracing(&config.log.level);
    crate::fsutil::ensure_data_dir(&config.data_dir)?;
    let _lock = crate::lock::acquire(&config.data_dir)?;
    if args.dev {
        tls::ensure_self_signed(&config.tls.cert, &config.tls.key)?;
    }
    if let Some((from, to)) = crate::store::pending_migration(&config.database_path()) {
        // Some upgrades rewrite tables (v3→v4 took about a minute per million users; others are
        // instant): tell systemd (Type=notify) to wait instead of killing a start still migrating.
        tracing::info!(
            from,
            to,
            "migrating the database from schema v{from} to v{to}; a step that rewrites tables \
             takes about a minute per million users, the server starts when it is done"
        );
        sd_notify("EXTEND_TIMEOUT_USEC=1800000000");
        sd_notify(&format!("STATUS=Migrating the database to schema v{to}"));
    }
    let key = super::signing_key(
        &config,
        &crate::store::open_connection(&config.database_path())?,
    )?;
    let store = Store::open(
        &config.database_path(),
        std::time::Duration::from_secs(config.limits.read_budget_secs),
    )?;
    let cert = if config.tls.enabled {
        Some(tls::ReloadableCert::load(
            &config.tls.cert,
            &config.tls.key,
        )?)
    } else {
        None
    };
    if args.dev {
        print_dev_credentials(&config, &key)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run_server(
        config,
        store.clone(),
        key,
        cert,
        args.ready_file.as_deref(),
    ));
    store.shutdown();
    tracing::info!("stopped");
    result
}

async fn run_server(
    config: Config,
    store: Store,
    key: SigningKey,
    cert: Option<Arc<tls::ReloadableCert>>,
    ready_file: Option<&Path>,
) -> anyhow::Result<()> {
    let settings = config.settings()?;
    let listener = server::bind(settings.listen).await?;
    let admin_listener = match settings.admin_listen {
        None => None,
        Some(addr) => Some(server::bind(addr).await?),
    };
    let acceptor = match &cert {
        Some(c) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
            c.clone(),
        )?)),
        None => None,
    };
    let local = listener.local_addr()?;
    let jwks_roots = crate::auth::jwks::trust_anchors(settings.jwks_ca_file.as_deref())?;
    let mut app = App::new(config.clone(), settings, store, key);
    app.granter = crate::auth::grant::Granter::with_jwks(crate::auth::jwks::Jwks::with_roots(
        jwks_roots,
        crate::auth::jwks::REFRESH_EVERY,
        crate::auth::jwks::FETCH_TIMEOUT,
    ));
    let app = Arc::new(app);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Installed before the server reports ready: a SIGHUP that arrived before the handler
    // existed would take the default action and terminate the process.
    let signals = Signals::install()?;
    tokio::spawn(watch_signals(signals, config, cert.clone(), stop_tx));
    crate::maintenance::start(app.clone(), cert, stop_rx.clone());
    let admin_addr = match &admin_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    // `config` has refused admin.tls without a certificate, so the acceptor exists when asked.
    let admin_tls = acceptor.clone().filter(|_| app.config.admin.tls);
    let admin = admin_listener.map(|l| {
        if let Ok(a) = l.local_addr() {
            let scheme = if admin_tls.is_some() { "https" } else { "http" };
            tracing::info!(address = %a, "admin listening: dashboard on {scheme}://{a}/");
        }
        tokio::spawn(admin::serve(app.clone(), l, admin_tls, stop_rx.clone()))
    });
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    tracing::info!(address = %local, "listening on {scheme}://{local}{}", app.config.base_path());
    if let Some(path) = ready_file {
        write_ready_file(path, local, admin_addr)?;
    }
    app.ready.store(true, std::sync::atomic::Ordering::Relaxed);
    sd_notify("READY=1");
    server::serve(app.clone(), listener, acceptor, stop_rx).await;
    if let Some(a) = admin {
        let _ = a.await;
    }
    // Everything answered: write out the queued provisioning-log entries, then the caller
    // stops the writer once it has committed every job.
    app.log.close().await;
    Ok(())
}

/// `--ready-file`: the bound addresses as JSON, written to a temporary name and renamed, so a
/// reader never sees half a file.
fn write_ready_file(
    path: &Path,
    public: std::net::SocketAddr,
    admin: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "public": public.to_string(),
        "admin": admin.map(|a| a.to_string()),
    });
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{body}\n"))
        .with_context(|| format!("cannot write ready file {}", Path::new(&tmp).display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot write ready file {}", path.display()))?;
    Ok(())
}

/// The signals the server acts on, registered with tokio.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let context = "cannot install signal handlers";
        Ok(Signals {
            term: signal(SignalKind::terminate()).context(context)?,
            int: signal(SignalKind::interrupt()).context(context)?,
            hup: signal(SignalKind::hangup()).context(context)?,
        })
    }
}

/// SIGTERM/SIGINT stop the server; SIGHUP reloads the TLS certificate and key.
async fn watch_signals(
    signals: Signals,
    config: Config,
    cert: Option<Arc<tls::ReloadableCert>>,
    stop: watch::Sender<bool>,
) {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = signals;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                sd_notify("RELOADING=1");
                match &cert {
                    Some(c) => match c.reload(&config.tls.cert, &config.tls.key) {
                        Ok(()) => tracing::info!("TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %format!("{e:#}"), "TLS reload refused; keeping the current certificate"),
                    },
                    None => tracing::info!("SIGHUP: TLS is disabled, nothing to reload"),
                }
                sd_notify("READY=1");
            }
        }
    }
    tracing::info!("shutting down: finishing in-flight requests");
    sd_notify("STOPPING=1");
    let _ = stop.send(true);
}

/// Dev mode: make sure tenant `dev` exists and print a fresh token and the tenant URL.
fn print_dev_credentials(config: &Config, key: &SigningKey) -> anyhow::Result<()> {
    let conn = crate::store::open_connection(&config.database_path())?;
    if tenants::get_by_name(&conn, "dev")?.is_none() {
        tenants::create(&conn, "dev", None)?;
    }
    let (_, token) = super::token::issue(
        &conn,
        key,
        "dev",
        Some("serve --dev"),
        None,
        crate::domain::Scopes::SCIM,
    )?;
    let url = format!(
        "https://localhost:{}{}/",
        config.listen_addr()?.port(),
        config.base_path()
    );
    eprintln!(
        "grouptalk-scim development server (data in {}/)",
        config.data_dir.display()
    );
    eprintln!("  Tenant URL:   {url}");
    eprintln!("  Secret Token: {token}");
    eprintln!("  try: curl -k -H 'Authorization: Bearer <token>' '{url}Users?filter=userName%20eq%20%22x%22'");
    Ok(())
}
