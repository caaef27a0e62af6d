//! The shared state of a running server: configuration, store, signing key, metrics, the
//! provisioning-log queue and the per-token rate limiter. Travels in one `Arc<App>`; there is no
//! global mutable state.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::grant::Granter;
use crate::auth::SigningKey;
use crate::budget::{TenantReads, WindowCounter};
use crate::config::{Config, Settings};
use crate::store::Store;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::reqlog::LogQueue;

/// `last_used` of a token is written at most this often, so auth does not turn reads into writes.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);
const MINUTE: Duration = Duration::from_secs(60);
/// Unauthenticated provisioning-log entries per minute from every address together.
pub const ANONYMOUS_LOG_PER_MINUTE_TOTAL: u32 = 600;

pub struct App {
    pub config: Config,
    /// The config's text fields, parsed once (`Config::settings`).
    pub settings: Settings,
    pub store: Store,
    pub key: SigningKey,
    pub metrics: Metrics,
    pub log: LogQueue,
    pub limiter: DefaultKeyedRateLimiter<String>,
    /// Failed authentications per client address (429 beyond, before any token work).
    pub auth_failures: WindowCounter,
    /// Provisioning-log entries of unauthenticated requests per client address, and from all
    /// addresses together (keyed by the unspecified address): many addresses cannot fill the
    /// disk between two prunes either.
    pub anonymous_log: WindowCounter,
    pub anonymous_log_total: WindowCounter,
    /// Concurrent data-sized reads per tenant.
    pub tenant_reads: TenantReads,
    /// The OAuth client-credentials grant and its argon2 budgets.
    pub granter: Granter,
    /// Set once the TLS certificate (if any) is loaded and the listener is bound.
    pub ready: AtomicBool,
    last_touch: Mutex<HashMap<String, Instant>>,
}

impl App {
    /// Must be called inside the tokio runtime (it starts the log flusher).
    pub fn new(config: Config, settings: Settings, store: Store, key: SigningKey) -> App {
        let rate = NonZeroU32::new(config.limits.rate_per_token).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.limits.rate_burst).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst));
        App {
            metrics: Metrics::new(&store),
            log: LogQueue::start(store.clone()),
            limiter,
            auth_failures: WindowCounter::new(config.limits.auth_failures_per_minute, MINUTE),
            anonymous_log: WindowCounter::new(config.limits.anonymous_log_per_minute, MINUTE),
            anonymous_log_total: WindowCounter::new(ANONYMOUS_LOG_PER_MINUTE_TOTAL, MINUTE),
            tenant_reads: TenantReads::new(config.limits.reads_per_tenant),
            granter: Granter::new(),
            config,
            settings,
            store,
            key,
            ready: AtomicBool::new(false),
            last_touch: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && self.store.writer_running()
    }

    /// Whether this token's `last_used` is due to be written now (and remember that it was).
    pub fn touch_due(&self, token_id: &str) -> bool {
        let Ok(mut map) = self.last_touch.lock() else {
            return false;
        };
        let now = Instant::now();
        match map.get(token_id) {
            Some(t) if now.duration_since(*t) < TOUCH_INTERVAL => false,
            _ => {
                map.insert(token_id.to_string(), now);
                true
            }
        }
    }
}
