//! One cache interface for sessions, the access token, dedupe keys, counters and locks, with two
//! implementations: Redis (shared by every instance) and an in-process map (a single instance, no
//! set-up). Both honour TTLs and give the same atomic semantics, and the same test suite runs
//! against both.

mod memory;
mod redis;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use self::memory::MemoryCache;
pub use self::redis::RedisCache;
use crate::config::RedisConfig;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    #[error("cache value has an unexpected type: {0}")]
    Type(String),
}

#[derive(Clone)]
enum Backend {
    Redis(RedisCache),
    Memory(MemoryCache),
}

/// A handle to the cache; cheap to clone. Every key is prefixed with the configured prefix.
#[derive(Clone)]
pub struct Cache {
    backend: Arc<Backend>,
    prefix: Arc<str>,
    /// Set by [`Cache::simulate_outage`]: every call fails as if the server were gone.
    outage: Arc<AtomicBool>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.backend_name())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A held lock; release it with [`Cache::unlock`]. If the holder dies the TTL frees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    key: String,
    token: String,
}

impl Cache {
    /// Redis when `redis.url` is set (fails fast if it cannot be reached), otherwise in-process.
    pub async fn connect(config: &RedisConfig) -> Result<Self, CacheError> {
        if config.is_configured() {
            let redis = RedisCache::connect(config).await?;
            Ok(Self::from_backend(Backend::Redis(redis), &config.key_prefix))
        } else {
            Ok(Self::memory(config.memory_capacity, &config.key_prefix))
        }
    }

    pub fn memory(capacity: usize, prefix: &str) -> Self {
        Self::from_backend(Backend::Memory(MemoryCache::new(capacity)), prefix)
    }

    fn from_backend(backend: Backend, prefix: &str) -> Self {
        Self {
            backend: Arc::new(backend),
            prefix: prefix.into(),
            outage: Arc::default(),
        }
    }

    /// Fault injection for resilience tests and simulations: while on, every call through this
    /// store (every handle sharing it) fails with [`CacheError::Unavailable`], as when Redis is down.
    pub fn simulate_outage(&self, on: bool) {
        self.outage.store(on, Ordering::SeqCst);
    }

    fn backend(&self) -> Result<&Backend, CacheError> {
        if self.outage.load(Ordering::SeqCst) {
            return Err(CacheError::Unavailable("simulated outage".into()));
        }
        Ok(&self.backend)
    }

    /// The same store under a longer prefix, e.g. for one subsystem or one test.
    pub fn scoped(&self, sub_prefix: &str) -> Self {
        Self {
            backend: self.backend.clone(),
            prefix: format!("{}{}", self.prefix, sub_prefix).into(),
            outage: self.outage.clone(),
        }
    }

    /// The prefix of every key this handle touches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Redis(_) => "redis",
            Backend::Memory(_) => "memory",
        }
    }

    /// True when every instance sees the same data (Redis); false for the in-process cache.
    pub fn is_shared(&self) -> bool {
        matches!(&*self.backend, Backend::Redis(_))
    }

    fn key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.prefix.len() + key.len());
        full.push_str(&self.prefix);
        full.push_str(key);
        full
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let key = self.key(key);
        match self.backend()? {
            Backend::Redis(r) => r.get(&key).await,
            Backend::Memory(m) => Ok(m.get(&key)),
        }
    }

    pub async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        let key = self.key(key);
        match self.backend()? {
            Backend::Redis(r) => r.set(&key, value, ttl).await,
            Backend::Memory(m) => {
                m.set(&key, value, ttl);
                Ok(())
            }
        }
    }

    /// Sets the key only if it does not exist; true when this call set it. The building block of
    /// dedupe keys and locks.
    pub async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, CacheError> {
        let key = self.key(key);
        match self.backend()? {
            Backend::Redis(r) => r.set_nx(&key, value, ttl).await,
            Backend::Memory(m) => Ok(m.set_nx(&key, value, ttl)),
        }
    }

    /// Deletes the key; true when it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let key = self.key(key);
        match self.backend()? {
            Backend::Redis(r) => r.delete(&key).await,
            Backend::Memory(m) => Ok(m.delete(&key)),
        }
    }

    /// Deletes the key only while it still holds `expected`; true when it did.
    pub async fn delete_if_equals(&self, key: &str, expected: &str) -> Result<bool, CacheError> {
        let key = self.key(key);
        match self.backend()? {
            Backend::Redis(r) => r.delete_if_equals(&key, expected).await,
            Backend::Memory(m) => Ok(m.delete_if_equals(&key, expected)),
        }
    }

    /// Adds `by` to a counter and returns the new value. The TTL is set when the counter is
    /// created and not extended afterwards, so this is a fixed-window counter.
    pub async fn incr(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, CacheError> {
        let key = self.key(key);
        match self.backend()? {
            Backend::Redis(r) => r.incr(&key, by, ttl).await,
            Backend::Memory(m) => m.incr(&key, by, ttl),
        }
    }

    /// Remaining time to live, `None` when the key does not exist.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let key = self.key(key);
        match self.backend()? {
            Backend::Redis(r) => r.ttl(&key).await,
            Backend::Memory(m) => Ok(m.ttl(&key)),
        }
    }

    /// Tries to take a named lock for `ttl`; `None` when someone else holds it.
    pub async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<Lock>, CacheError> {
        let key = format!("lock:{name}");
        let token = format!("{:032x}", rand::random::<u128>());
        Ok(self.set_nx(&key, &token, ttl).await?.then_some(Lock { key, token }))
    }

    /// Releases a lock if it is still ours (it may have expired and been taken by another holder).
    pub async fn unlock(&self, lock: Lock) -> Result<bool, CacheError> {
        self.delete_if_equals(&lock.key, &lock.token).await
    }

    pub async fn ping(&self) -> Result<(), CacheError> {
        match self.backend()? {
            Backend::Redis(r) => r.ping().await,
            Backend::Memory(_) => Ok(()),
        }
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}
