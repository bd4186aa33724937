//! A typed async client for the WeCom server API.
//!
//! One [`WecomClient`] per app. The access token lives in the cache layer (shared by every
//! instance when Redis is configured) and is fetched by one caller at a time; a rejected token is
//! dropped and the call retried once. Transient failures are retried with exponential backoff and
//! full jitter, bounded in attempts and in total time. A per-API call budget shared through the cache
//! and a concurrency cap keep us inside what WeCom accepts; WeCom's per-member message limits are
//! kept by the outbox, the one place messages are sent from (`notify::limit`). Logs carry the call name, errcode and latency, never a
//! secret, a token or a URL with a token in it.

mod calls;
pub mod card;
pub mod error;
mod token;
pub mod types;
mod web;

pub use self::web::SignedIn;

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, Semaphore};

pub use self::error::{WecomError, codes};
pub use self::types::*;
use crate::cache::Cache;
use crate::clock::{Backoff, Clock};
use crate::config::WecomConfig;

/// Tuning of the client, from the `[wecom]` configuration section.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Attempts for a call failing transiently (the first one included).
    pub max_attempts: u32,
    /// Total time a call may spend retrying.
    pub retry_budget: Duration,
    pub retry_base: Duration,
    /// Calls in flight at once from this instance.
    pub max_concurrency: usize,
    /// Calls per API per minute from all instances together.
    pub api_calls_per_minute: i64,
    /// The cached token is dropped this long before WeCom says it expires.
    pub token_refresh_margin: Duration,
}

impl ApiSettings {
    pub fn from_config(config: &WecomConfig) -> Self {
        Self {
            request_timeout: Duration::from_millis(config.request_timeout_ms.max(1)),
            connect_timeout: Duration::from_millis(config.connect_timeout_ms.max(1)),
            max_attempts: config.max_attempts.max(1),
            retry_budget: Duration::from_millis(config.retry_budget_ms),
            retry_base: Duration::from_millis(config.retry_base_ms.max(1)),
            max_concurrency: config.max_concurrency.max(1),
            api_calls_per_minute: config.api_calls_per_minute.max(1),
            token_refresh_margin: Duration::from_secs(config.token_refresh_margin_secs),
        }
    }
}

/// The WeCom API of one app; cheap to clone.
#[derive(Clone)]
pub struct WecomClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    corp_id: String,
    agent_id: i64,
    secret: SecretString,
    cache: Cache,
    settings: ApiSettings,
    /// Single flight for token fetches within this process.
    refresh: Mutex<()>,
    /// Single flight for JS-SDK ticket fetches (apart from the token's: a ticket fetch needs one).
    tickets: Mutex<()>,
    in_flight: Semaphore,
    token_key: String,
    /// The time the call budgets' minute windows follow.
    clock: Clock,
}

impl std::fmt::Debug for WecomClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomClient")
            .field("base", &self.inner.base)
            .field("corp_id", &self.inner.corp_id)
            .field("agent_id", &self.inner.agent_id)
            .finish_non_exhaustive()
    }
}

impl WecomClient {
    pub fn new(config: &WecomConfig, cache: Cache) -> Self {
        Self::with_settings(config, cache, ApiSettings::from_config(config))
    }

    pub fn with_settings(config: &WecomConfig, cache: Cache, settings: ApiSettings) -> Self {
        Self::build(config, cache, settings, Clock::system())
    }

    /// A client whose per-minute call budgets run on `clock` (tests and simulations move it).
    pub fn with_clock(config: &WecomConfig, cache: Cache, clock: Clock) -> Self {
        Self::build(config, cache, ApiSettings::from_config(config), clock)
    }

    fn build(config: &WecomConfig, cache: Cache, settings: ApiSettings, clock: Clock) -> Self {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("wecom-scrm/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is valid");
        let token_key = token::cache_key(&config.corp_id, config.agent_id, &config.secret);
        Self {
            inner: Arc::new(Inner {
                http,
                base: config.api_base.trim_end_matches('/').to_owned(),
                corp_id: config.corp_id.trim().to_owned(),
                agent_id: config.agent_id,
                secret: config.secret.clone(),
                in_flight: Semaphore::new(settings.max_concurrency),
                cache,
                settings,
                refresh: Mutex::new(()),
                tickets: Mutex::new(()),
                token_key,
                clock,
            }),
        }
    }

    pub fn agent_id(&self) -> i64 {
        self.inner.agent_id
    }

    pub fn corp_id(&self) -> &str {
        &self.inner.corp_id
    }

    fn url(&self, call: &str) -> String {
        format!("{}/cgi-bin/{call}", self.inner.base)
    }

    /// Runs one API call with token handling, limits and retries, and decodes its answer.
    async fn call<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        call: &'static str,
        method: Method,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<R, WecomError> {
        self.call_with(call, method, query, body, &Once::retried()).await
    }

    /// [`WecomClient::call`] under `policy`: with or without retries of transient failures, and
    /// only while the caller's condition holds right before each request goes out.
    async fn call_with<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        call: &'static str,
        method: Method,
        query: &[(&str, &str)],
        body: Option<&B>,
        policy: &Once<'_>,
    ) -> Result<R, WecomError> {
        let settings = &self.inner.settings;
        let started = Instant::now();
        let mut attempt = 0u32;
        let mut token_refreshed = false;
        loop {
            attempt += 1;
            let result = match self.check_api_budget(call).await {
                Ok(()) => {
                    let token = self.token().await?;
                    if !(policy.on_time)() {
                        return Err(WecomError::Late { call });
                    }
                    let result = self.send_once(call, method.clone(), query, body, &token).await;
                    if let Err(e) = &result
                        && e.is_token_rejected()
                    {
                        self.invalidate_token(&token).await;
                    }
                    result
                }
                Err(e) => Err(e),
            };
            let error = match result {
                Ok(value) => return Ok(value),
                Err(e) => e,
            };
            if error.is_token_rejected() && !token_refreshed {
                token_refreshed = true;
                attempt -= 1;
                continue;
            }
            let delay = match &error {
                _ if !policy.retried => None,
                WecomError::RateLimited { retry_after, .. } => Some(*retry_after),
                e if e.is_transient() => Some(backoff(settings.retry_base, attempt)),
                _ => None,
            };
            match delay {
                Some(delay)
                    if attempt < settings.max_attempts && started.elapsed() + delay <= settings.retry_budget =>
                {
                    tracing::debug!(call, attempt, retry_in_ms = delay.as_millis() as u64, error = %error, "retrying WeCom call");
                    tokio::time::sleep(delay).await;
                }
                _ => return Err(error),
            }
        }
    }

    /// One HTTP exchange. Success is decided by `errcode` alone.
    async fn send_once<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        call: &'static str,
        method: Method,
        query: &[(&str, &str)],
        body: Option<&B>,
        token: &str,
    ) -> Result<R, WecomError> {
        let _permit = self
            .inner
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let started = Instant::now();
        let mut request = self
            .inner
            .http
            .request(method, self.url(call))
            .query(&[("access_token", token)])
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let outcome = async {
            let response = request.send().await.map_err(|e| transport(call, e))?;
            let status = response.status();
            if status != reqwest::StatusCode::OK {
                return Err(WecomError::Http {
                    call,
                    status: status.as_u16(),
                });
            }
            let bytes = response.bytes().await.map_err(|e| transport(call, e))?;
            decode(call, &bytes)
        }
        .await;
        let latency_ms = started.elapsed().as_millis() as u64;
        match &outcome {
            Ok(_) => tracing::debug!(call, errcode = 0, latency_ms, "WeCom call"),
            Err(e) => {
                tracing::warn!(call, errcode = e.code(), latency_ms, error = %e, "WeCom call failed")
            }
        }
        outcome
    }

    /// A fixed-window budget per API per minute, shared by every instance through the cache. The
    /// default stays under half of WeCom's 10,000/min, so even a burst across a window boundary
    /// cannot reach it.
    async fn check_api_budget(&self, call: &'static str) -> Result<(), WecomError> {
        let now_ms = self.inner.clock.now_ms();
        let minute = now_ms.div_euclid(60_000);
        let key = format!("wecom:budget:{call}:{minute}");
        match self.inner.cache.incr(&key, 1, Duration::from_secs(120)).await {
            Ok(count) if count > self.inner.settings.api_calls_per_minute => {
                let into_minute = now_ms.rem_euclid(60_000) as u64;
                Err(WecomError::RateLimited {
                    call,
                    retry_after: Duration::from_millis(60_000 - into_minute),
                })
            }
            Ok(_) => Ok(()),
            Err(e) => {
                // Without the cache the budget cannot be shared; WeCom's own 45009 still protects us.
                tracing::warn!(call, error = %e, "API budget unavailable; calling anyway");
                Ok(())
            }
        }
    }
}

/// How one call is made: retried within the client's budget or not, and under a condition that
/// must still hold right before each request goes out.
pub(super) struct Once<'a> {
    retried: bool,
    on_time: &'a (dyn Fn() -> bool + Send + Sync),
}

impl Once<'_> {
    fn retried() -> Self {
        Once {
            retried: true,
            on_time: &|| true,
        }
    }
}

fn transport(call: &'static str, e: reqwest::Error) -> WecomError {
    // `without_url`: the URL carries the access token.
    let timeout = e.is_timeout();
    WecomError::Transport {
        call,
        message: e.without_url().to_string(),
        timeout,
    }
}

fn decode<R: DeserializeOwned>(call: &'static str, bytes: &[u8]) -> Result<R, WecomError> {
    let status: types::Status = serde_json::from_slice(bytes).map_err(|e| WecomError::Decode {
        call,
        message: e.to_string(),
    })?;
    if status.errcode != 0 {
        return Err(WecomError::Api {
            call,
            code: status.errcode,
            message: status.errmsg,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| WecomError::Decode {
        call,
        message: e.to_string(),
    })
}

/// A call retried within its budget: full jitter, at most 30 s.
fn backoff(base: Duration, attempt: u32) -> Duration {
    Backoff::new(base, Duration::from_secs(30)).full_jitter(attempt)
}
