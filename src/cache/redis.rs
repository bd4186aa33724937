//! The Redis cache: one multiplexed [`ConnectionManager`] that reconnects by itself. Timeouts are
//! short so a dead Redis costs a fast error instead of a stalled request.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use secrecy::ExposeSecret;

use super::{CacheError, ttl_ms};
use crate::config::{RedisConfig, redact_url};

/// INCRBY, and set the expiry only when the key has none (it was just created).
const INCR_WITH_TTL: &str = r"
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v";

/// Compare-and-delete: never remove a value someone else has set since.
const DELETE_IF_EQUALS: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    incr_script: Script,
    delete_if_equals_script: Script,
}

fn unavailable(e: redis::RedisError) -> CacheError {
    CacheError::Unavailable(e.to_string())
}

impl RedisCache {
    pub async fn connect(config: &RedisConfig) -> Result<Self, CacheError> {
        let url = config.url.expose_secret().trim();
        let shown = redact_url(url);
        let client =
            redis::Client::open(url).map_err(|e| CacheError::Unavailable(format!("invalid redis.url {shown}: {e}")))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(Some(Duration::from_millis(config.connect_timeout_ms.max(1))))
            .set_response_timeout(Some(Duration::from_millis(config.response_timeout_ms.max(1))));
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(|e| CacheError::Unavailable(format!("cannot use Redis at {shown}: {e}")))?;
        let cache = Self {
            conn,
            incr_script: Script::new(INCR_WITH_TTL),
            delete_if_equals_script: Script::new(DELETE_IF_EQUALS),
        };
        cache
            .ping()
            .await
            .map_err(|e| CacheError::Unavailable(format!("cannot reach Redis at {shown}: {e}")))?;
        Ok(cache)
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        self.conn.clone().get(key).await.map_err(unavailable)
    }

    pub async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(ttl_ms(ttl))
            .query_async::<()>(&mut self.conn.clone())
            .await
            .map_err(unavailable)
    }

    pub async fn set_nx(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, CacheError> {
        let reply: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(ttl_ms(ttl))
            .arg("NX")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(reply.is_some())
    }

    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let removed: i64 = self.conn.clone().del(key).await.map_err(unavailable)?;
        Ok(removed > 0)
    }

    pub async fn delete_if_equals(&self, key: &str, expected: &str) -> Result<bool, CacheError> {
        let removed: i64 = self
            .delete_if_equals_script
            .key(key)
            .arg(expected)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(removed > 0)
    }

    pub async fn incr(&self, key: &str, by: i64, ttl: Duration) -> Result<i64, CacheError> {
        self.incr_script
            .key(key)
            .arg(by)
            .arg(ttl_ms(ttl))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| match e.kind() {
                redis::ErrorKind::Server(_) => CacheError::Type(e.to_string()),
                _ => unavailable(e),
            })
    }

    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let ms: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(match ms {
            -2 => None,
            -1 => Some(Duration::MAX),
            ms => Some(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    pub async fn ping(&self) -> Result<(), CacheError> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
