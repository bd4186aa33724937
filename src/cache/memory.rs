//! The in-process cache: a map with per-entry expiry and a size bound. One mutex makes every
//! operation atomic, matching Redis semantics for set-if-absent, compare-and-delete and counters.
//! When full, expired entries go first, then the entries closest to expiry.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::CacheError;

#[derive(Clone)]
pub struct MemoryCache {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    capacity: usize,
    entries: HashMap<String, Entry>,
    /// (expiry, key): the eviction and purge order.
    by_expiry: BTreeSet<(Instant, String)>,
}

struct Entry {
    value: String,
    expires_at: Instant,
}

impl MemoryCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                capacity: capacity.max(1),
                entries: HashMap::new(),
                by_expiry: BTreeSet::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-updated in a way that matters
        // for a cache, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let mut inner = self.lock();
        inner.live(key, Instant::now()).map(|e| e.value.clone())
    }

    pub fn set(&self, key: &str, value: &str, ttl: Duration) {
        let now = Instant::now();
        self.lock().insert(key, value.to_owned(), now + ttl, now);
    }

    pub fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.live(key, now).is_some() {
            return false;
        }
        inner.insert(key, value.to_owned(), now + ttl, now);
        true
    }

    pub fn delete(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        let existed = inner.live(key, now).is_some();
        inner.remove(key);
        existed
    }

    pub fn delete_if_equals(&self, key: &str, expected: &str) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.live(key, now).is_some_and(|e| e.value == expected) {
            inner.remove(key);
            true
        } else {
            false
        }
    }

    pub fn incr(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, CacheError> {
        let now = Instant::now();
        let mut inner = self.lock();
        let (current, expires_at) = match inner.live(key, now) {
            Some(e) => (
                e.value
                    .parse::<i64>()
                    .map_err(|_| CacheError::Type(format!("{key} is not a counter")))?,
                e.expires_at,
            ),
            None => (0, now + ttl),
        };
        let next = current
            .checked_add(by)
            .ok_or_else(|| CacheError::Type(format!("{key} overflowed")))?;
        inner.insert(key, next.to_string(), expires_at, now);
        Ok(next)
    }

    pub fn ttl(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut inner = self.lock();
        inner
            .live(key, now)
            .map(|e| e.expires_at.saturating_duration_since(now))
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// The entry if present and not expired; an expired one is dropped on the way.
    fn live(&mut self, key: &str, now: Instant) -> Option<&Entry> {
        let expired = self.entries.get(key).is_some_and(|e| e.expires_at <= now);
        if expired {
            self.remove(key);
        }
        self.entries.get(key)
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.by_expiry.remove(&(old.expires_at, key.to_owned()));
        }
    }

    fn insert(&mut self, key: &str, value: String, expires_at: Instant, now: Instant) {
        self.remove(key);
        while self.entries.len() >= self.capacity {
            self.evict_one(now);
        }
        self.by_expiry.insert((expires_at, key.to_owned()));
        self.entries.insert(key.to_owned(), Entry { value, expires_at });
    }

    /// Drops the entry closest to expiry (an expired one if there is any).
    fn evict_one(&mut self, _now: Instant) {
        if let Some((_, key)) = self.by_expiry.pop_first() {
            self.entries.remove(&key);
        }
    }
}
