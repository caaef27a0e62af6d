//! Budgets that keep one client from taking what every client needs: connections per source
//! address, authentication failures per address, anonymous provisioning-log entries per address,
//! and concurrent blocking reads per tenant.
//!
//! Addresses are the client's, as `http::client_addr` resolved them (behind a trusted reverse
//! proxy, the address its `X-Forwarded-For` names). Every map is bounded: past `MAX_TRACKED`
//! addresses the stale windows are dropped, and if every window is live the map starts over
//! (forgetting is the safe failure: it lets a client in, it never locks one out).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::TenantId;

/// Addresses (or tenants) a budget remembers at most.
const MAX_TRACKED: usize = 100_000;

/// A count per key (an address, or an address and a client id) in fixed windows: "at most
/// `limit` per `window`".
pub struct WindowCounter<K = IpAddr> {
    window: Duration,
    limit: u32,
    counts: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: std::hash::Hash + Eq + Clone> WindowCounter<K> {
    pub fn new(limit: u32, window: Duration) -> WindowCounter<K> {
        WindowCounter {
            window,
            limit,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `addr` has used up its budget in the current window (counts nothing).
    pub fn exhausted(&self, addr: &K) -> bool {
        let Ok(counts) = self.counts.lock() else {
            return false;
        };
        counts
            .get(addr)
            .is_some_and(|(start, n)| start.elapsed() < self.window && *n >= self.limit)
    }

    /// Count one for `addr`; true while it is within its budget (this one included).
    pub fn take(&self, addr: &K) -> bool {
        let Ok(mut counts) = self.counts.lock() else {
            return true;
        };
        let now = Instant::now();
        if counts.len() >= MAX_TRACKED && !counts.contains_key(addr) {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
            if counts.len() >= MAX_TRACKED {
                counts.clear();
            }
        }
        let entry = counts.entry(addr.clone()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.limit
    }
}

/// Open connections per source address.
pub struct ConnectionCounts {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection's place in its address's count; given back when dropped.
pub struct ConnectionSlot {
    counts: Arc<ConnectionCounts>,
    addr: IpAddr,
}

impl ConnectionCounts {
    pub fn new(limit: usize) -> Arc<ConnectionCounts> {
        Arc::new(ConnectionCounts {
            limit,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a new connection from `addr`, or None when it already holds `limit`.
    pub fn admit(self: &Arc<Self>, addr: IpAddr) -> Option<ConnectionSlot> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(addr).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            counts: self.clone(),
            addr,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.counts.open.lock() {
            if let Some(n) = open.get_mut(&self.addr) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&self.addr);
                }
            }
        }
    }
}

/// Concurrent blocking reads per tenant: one tenant's slow queries can hold at most `per_tenant`
/// of the read connections, so the others' reads and token checks always find one.
pub struct TenantReads {
    per_tenant: usize,
    gates: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

impl TenantReads {
    pub fn new(per_tenant: usize) -> TenantReads {
        TenantReads {
            per_tenant: per_tenant.max(1),
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// Wait for one of `tenant`'s read slots.
    pub async fn enter(&self, tenant: &TenantId) -> Option<OwnedSemaphorePermit> {
        let gate = {
            let mut gates = self.gates.lock().ok()?;
            if gates.len() >= MAX_TRACKED && !gates.contains_key(tenant) {
                // Only idle gates can go: a gate in use has permits out.
                gates.retain(|_, g| g.available_permits() < self.per_tenant);
            }
            gates
                .entry(tenant.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
                .clone()
        };
        gate.acquire_owned().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn a_window_counts_per_address_and_starts_over() {
        let c = WindowCounter::new(2, Duration::from_millis(50));
        assert!(c.take(&ip(1)) && c.take(&ip(1)));
        assert!(!c.take(&ip(1)));
        assert!(c.exhausted(&ip(1)));
        assert!(!c.exhausted(&ip(2)) && c.take(&ip(2)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!c.exhausted(&ip(1)) && c.take(&ip(1)));
    }

    #[test]
    fn connection_slots_are_given_back() {
        let counts = ConnectionCounts::new(2);
        let a = counts.admit(ip(1));
        let b = counts.admit(ip(1));
        assert!(a.is_some() && b.is_some());
        assert!(counts.admit(ip(1)).is_none());
        assert!(counts.admit(ip(2)).is_some());
        drop(a);
        assert!(counts.admit(ip(1)).is_some());
    }
}
