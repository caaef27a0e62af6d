//! Prometheus metrics (prometheus-client, OpenMetrics text): request counts and latency by route,
//! in-flight requests, writer batch size and commit latency, database size, resources per
//! tenant, and per token the seconds since its last request ("is Entra still talking to us?")
//! and until it expires. Directory-level gauges are read from the database at scrape time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::store::{feed, stats, Store};

/// The method as a metrics label: the methods HTTP defines, anything else `other`. A label
/// taken from the request as sent would let any client add series without bound.
pub fn method_label(method: &hyper::Method) -> &'static str {
    use hyper::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Every label is drawn from a bounded set: route templates, `method_label`, the statuses and
/// `scimType`s this server answers with.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: String,
    pub scim_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    tenant: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    tenant: String,
    token: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SecretLabels {
    tenant: String,
    client: String,
    secret: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabels {
    tenant: String,
    consumer: String,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub in_flight: Gauge,
    db_size: Gauge,
    resources: Family<ResourceLabels, Gauge>,
    memberships: Family<TenantLabels, Gauge>,
    brake_held: Family<TenantLabels, Gauge>,
    token_idle: Family<TokenLabels, Gauge>,
    token_expiry: Family<TokenLabels, Gauge>,
    secret_expiry: Family<SecretLabels, Gauge>,
    feed_lag_changes: Family<ConsumerLabels, Gauge>,
    feed_lag_seconds: Family<ConsumerLabels, Gauge>,
    feed_since_position: Family<ConsumerLabels, Gauge>,
    log_dropped: Counter,
    log_dropped_seen: AtomicU64,
    /// Provisioning-log entries of unauthenticated requests beyond their address's budget.
    pub log_suppressed: Counter,
    oauth_requests: Family<OutcomeLabels, Counter>,
    /// Last request time per token id, kept in memory (the database copy is updated lazily).
    last_seen: Mutex<HashMap<String, SystemTime>>,
}

impl Metrics {
    pub fn new(store: &Store) -> Metrics {
        let mut registry = Registry::with_prefix("grouptalk_scim");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "SCIM requests by route, method, status and scimType",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0002, 2.0, 18))
        });
        registry.register(
            "request_duration_seconds",
            "Request latency by route",
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Requests being handled",
            in_flight.clone(),
        );
        let writer = store.writer_metrics();
        registry.register(
            "writer_batch_size",
            "Jobs committed together by the writer",
            writer.batch_size.clone(),
        );
        registry.register(
            "writer_commit_seconds",
            "Duration of the writer's COMMIT (fsync)",
            writer.commit_seconds.clone(),
        );
        let db_size = Gauge::default();
        registry.register(
            "database_size_bytes",
            "Size of the SQLite database and its WAL",
            db_size.clone(),
        );
        let resources = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "resources",
            "Users and groups per tenant",
            resources.clone(),
        );
        let memberships = Family::<TenantLabels, Gauge>::default();
        registry.register(
            "memberships",
            "Group memberships per tenant",
            memberships.clone(),
        );
        let brake_held = Family::<TenantLabels, Gauge>::default();
        registry.register(
            "brake_held_changes",
            "Changes the deletion brake holds from the change feed per tenant (brake release / discard)",
            brake_held.clone(),
        );
        let token_idle = Family::<TokenLabels, Gauge>::default();
        registry.register(
            "token_seconds_since_last_request",
            "Seconds since a token was last used (-1: never)",
            token_idle.clone(),
        );
        let token_expiry = Family::<TokenLabels, Gauge>::default();
        registry.register(
            "token_seconds_until_expiry",
            "Seconds until a token expires (only tokens that expire)",
            token_expiry.clone(),
        );
        let secret_expiry = Family::<SecretLabels, Gauge>::default();
        registry.register(
            "client_secret_seconds_until_expiry",
            "Seconds until an OAuth client secret expires (negative: expired)",
            secret_expiry.clone(),
        );
        let feed_lag_changes = Family::<ConsumerLabels, Gauge>::default();
        registry.register(
            "feed_consumer_lag_changes",
            "Changes of its tenant a feed consumer has not read (after its recorded position)",
            feed_lag_changes.clone(),
        );
        let feed_lag_seconds = Family::<ConsumerLabels, Gauge>::default();
        registry.register(
            "feed_consumer_lag_seconds",
            "Age of the oldest change a feed consumer has not read (0: none)",
            feed_lag_seconds.clone(),
        );
        let feed_since_position = Family::<ConsumerLabels, Gauge>::default();
        registry.register(
            "feed_consumer_seconds_since_position",
            "Seconds since a feed consumer last recorded its position",
            feed_since_position.clone(),
        );
        let log_dropped = Counter::default();
        registry.register(
            "provisioning_log_dropped",
            "Provisioning-log entries dropped because the queue was full",
            log_dropped.clone(),
        );
        let log_suppressed = Counter::default();
        registry.register(
            "provisioning_log_suppressed",
            "Entries of unauthenticated requests not logged (over the per-address budget)",
            log_suppressed.clone(),
        );
        let oauth_requests = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "oauth_token_requests",
            "POST /oauth2/token by outcome (issued, invalid_client, invalid_request, invalid_scope, throttled, unavailable)",
            oauth_requests.clone(),
        );
        Metrics {
            oauth_requests,
            log_suppressed,
            registry,
            requests,
            latency,
            in_flight,
            db_size,
            resources,
            memberships,
            brake_held,
            token_idle,
            token_expiry,
            secret_expiry,
            feed_lag_changes,
            feed_lag_seconds,
            feed_since_position,
            log_dropped,
            log_dropped_seen: AtomicU64::new(0),
            last_seen: Mutex::new(HashMap::new()),
        }
    }

    /// Count one token request by its outcome (a fixed set of names).
    pub fn oauth_outcome(&self, outcome: &'static str) {
        self.oauth_requests
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn saw_token(&self, token_id: &str) {
        if let Ok(mut m) = self.last_seen.lock() {
            m.insert(token_id.to_string(), SystemTime::now());
        }
    }

    /// Refresh the directory gauges from the database and render the OpenMetrics text.
    pub async fn render(&self, store: &Store, log_dropped_total: u64) -> anyhow::Result<String> {
        let path = store.path().to_path_buf();
        let snapshot = store
            .read(move |conn| stats::directory_snapshot(conn, &path))
            .await?;
        self.db_size.set(snapshot.db_size);
        self.resources.clear();
        for (tenant, kind, n) in snapshot.resources {
            self.resources
                .get_or_create(&ResourceLabels { tenant, kind })
                .set(n);
        }
        self.memberships.clear();
        for (tenant, n) in snapshot.memberships {
            self.memberships
                .get_or_create(&TenantLabels { tenant })
                .set(n);
        }
        self.brake_held.clear();
        for (tenant, n) in snapshot.brake_held {
            self.brake_held
                .get_or_create(&TenantLabels { tenant })
                .set(n);
        }
        self.token_idle.clear();
        self.token_expiry.clear();
        let now = SystemTime::now();
        let now_unix = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let seen = self.last_seen.lock().map(|m| m.clone()).unwrap_or_default();
        for t in snapshot.tokens {
            let labels = TokenLabels {
                tenant: t.tenant,
                token: t.id.clone(),
            };
            let mem = seen
                .get(&t.id)
                .and_then(|s| now.duration_since(*s).ok())
                .map(|d| d.as_secs() as i64);
            let db = t.last_used_unix.map(|u| now_unix - u);
            let idle = match (mem, db) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => -1,
            };
            self.token_idle.get_or_create(&labels).set(idle);
            if let Some(exp) = t.expires_unix {
                self.token_expiry.get_or_create(&labels).set(exp - now_unix);
            }
        }
        self.secret_expiry.clear();
        for s in snapshot.client_secrets {
            let labels = SecretLabels {
                tenant: s.tenant,
                client: s.client,
                secret: s.secret,
            };
            self.secret_expiry
                .get_or_create(&labels)
                .set(s.expires_unix - now_unix);
        }
        let feed = store.read(|conn| feed::status(conn, None)).await?;
        self.feed_lag_changes.clear();
        self.feed_lag_seconds.clear();
        self.feed_since_position.clear();
        for c in feed.consumers {
            let labels = ConsumerLabels {
                tenant: c.tenant,
                consumer: c.consumer,
            };
            self.feed_lag_changes
                .get_or_create(&labels)
                .set(c.lag_changes);
            self.feed_lag_seconds
                .get_or_create(&labels)
                .set(c.lag_seconds);
            let updated = crate::domain::Timestamp::parse(&c.updated).map(|t| t.unix_seconds());
            self.feed_since_position
                .get_or_create(&labels)
                .set(updated.map_or(-1, |u| (now_unix - u).max(0)));
        }
        let seen_before = self
            .log_dropped_seen
            .swap(log_dropped_total, Ordering::Relaxed);
        self.log_dropped
            .inc_by(log_dropped_total.saturating_sub(seen_before));
        let mut out = String::new();
        encode(&mut out, &self.registry).map_err(|e| anyhow::anyhow!("metrics encoding: {e}"))?;
        Ok(out)
    }
}
