//! The shared state of a running server: configuration, store, signing key. Travels in one
//! `Arc<App>`; there is no global mutable state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::SigningKey;
use crate::config::Config;
use crate::store::Store;

/// Largest request body accepted (413 above).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// `last_used` of a token is written at most this often, so auth does not turn reads into writes.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

pub struct App {
    pub config: Config,
    pub store: Store,
    pub key: SigningKey,
    last_touch: Mutex<HashMap<String, Instant>>,
}

impl App {
    pub fn new(config: Config, store: Store, key: SigningKey) -> App {
        App {
            config,
            store,
            key,
            last_touch: Mutex::new(HashMap::new()),
        }
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
